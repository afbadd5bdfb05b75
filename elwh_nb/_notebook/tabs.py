"""The dashboard's tabs: deliveries and calls (filters, one page, the inspector) and timings (plots)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]
import pandas as pd

from .._core.derive import TRANSCRIPT_TYPES
from . import render
from .conversation_view import conversation_view
from .query import Query, matching, run
from .rowtable import Picker, RowTable
from .source import EventSource
from .timings import (
    plot_delivery_lag,
    plot_durations,
    plot_events_over_time,
    plot_failures,
    plot_turnaround,
    timings,
)

WINDOWS = {"all time": None, "last 5 min": 300, "last hour": 3600, "last 24 h": 86400}

#: What the inspector's choices stand for: ("event", id), ("failure", id) or ("call", id).
Pick = tuple[str, int]


def widget_tree(root: w.Widget) -> list[w.Widget]:
    """``root`` and every widget it holds (children, layouts, styles), each once."""
    seen: dict[int, w.Widget] = {}
    todo = [root]
    while todo:
        widget = todo.pop()
        if id(widget) in seen:
            continue
        seen[id(widget)] = widget
        for name in widget.keys:
            value = getattr(widget, name, None)
            values = value if isinstance(value, (list, tuple)) else (value,)
            todo.extend(v for v in values if isinstance(v, w.Widget))
    return list(seen.values())


class PagedTab(w.VBox):
    """Filters over one table, one page of it, the pager and the inspector (deliveries, calls).

    ``kinds`` picks among the table's categories (event types, tool names), ``outcome`` is
    the tab's own toggle. A change of filter or page calls ``changed`` (the panel
    re-renders, this tab with it); subclasses say what the filters select (:attr:`query`),
    render a page (``show``) and the chosen row (:meth:`_show_detail`).
    """

    def __init__(
        self,
        source: EventSource,
        page_size: int,
        changed: Callable[[], object],
        kinds: w.SelectMultiple,
        outcome: w.ToggleButtons,
        searched: str,
    ) -> None:
        self.source = source
        self.page_size = page_size
        self.page = 0
        self.more = False  # whether older rows match (the pager's "older" leads somewhere)
        self._changed = changed
        self._kinds = kinds
        self._options: tuple[str, ...] = ()

        self.outcome = outcome
        self.search = w.Text(placeholder=searched, description="search", continuous_update=False)
        self.window = w.Dropdown(options=list(WINDOWS), value="all time", description="when")
        self.table = RowTable()
        self.page_label = w.Label()
        self.prev_button = w.Button(description="◀ newer", layout=w.Layout(width="auto"))
        self.next_button = w.Button(description="older ▶", layout=w.Layout(width="auto"))
        self.pick = Picker(self.table)  # a click on a row picks it
        self.detail = w.HTML()
        filters = w.HBox([kinds, w.VBox([self.outcome, self.search, self.window])])
        pager = w.HBox([self.prev_button, self.next_button, self.page_label])
        super().__init__([filters, self.table, pager, self.detail])

        for control in (kinds, self.outcome, self.search, self.window):
            control.observe(self._filters_changed, names="value")
        self.pick.observe(lambda _: self._show_detail(), names="value")
        self.prev_button.on_click(lambda _: self._turn(-1))
        self.next_button.on_click(lambda _: self._turn(+1))

    def _update_options(self, column: pd.Series) -> None:
        """Offer the categories of ``column`` (new ones appear); what was chosen stays chosen."""
        options = tuple(str(c) for c in column.cat.categories)
        if options != self._options:
            chosen = tuple(t for t in self._kinds.value if t in options)
            self._options = options
            self._kinds.unobserve(self._filters_changed, names="value")
            self._kinds.options = options
            self._kinds.value = chosen
            self._kinds.observe(self._filters_changed, names="value")

    def _filters_changed(self, _: Any = None) -> None:
        self.page = 0
        self._changed()

    def _turn(self, step: int) -> None:
        if (step < 0 and self.page == 0) or (step > 0 and not self.more):
            return
        self.page += step
        self._changed()

    def _set_pick(self, options: list[tuple[str, Pick]]) -> None:
        """The page's rows to pick from; the row inspected stays inspected (also off the page)."""
        self.pick.options = tuple(options)
        self._show_detail()

    def _show_detail(self) -> None:
        raise NotImplementedError


class DeliveriesTab(PagedTab):
    """Accepted events or failed deliveries: by type, a search over ids, a window; the inspector."""

    def __init__(self, source: EventSource, page_size: int, changed: Callable[[], object]) -> None:
        self.types = w.SelectMultiple(options=[], rows=5, description="types")
        outcome = w.ToggleButtons(options=["accepted", "failed"], value="accepted", description="show")
        searched = "conversation, request, voice or agent id"
        super().__init__(source, page_size, changed, self.types, outcome, searched)

    @property
    def query(self) -> Query:
        """What the filters and the pager select now."""
        return Query(
            outcome=self.outcome.value,
            types=tuple(self.types.value),
            search=self.search.value,
            window=WINDOWS[self.window.value],
            page=self.page,
            page_size=self.page_size,
        )

    def show(self, events: pd.DataFrame) -> int:
        """Render the page the filters select (``events``: the store's snapshot); returns its rows."""
        self._update_options(events["event_type"])
        query = self.query
        if query.outcome == "failed":
            page = run(self.source.store.failures, query, count=True)
            assert page.total is not None  # counted
            self.table.value = render.failures_table(page.rows)
            self.page_label.value = render.failures_label(page.total, self.source.store.max_failures)
            # Failure ids can be negative (kept in memory only), so the kind is said, not encoded.
            kind, labels = "failure", page.rows["reason"]
        else:
            page = run(events, query)
            self.table.value = render.events_table(page.rows)
            self.page_label.value = render.events_label(page)
            kind, labels = "event", page.rows["event_type"]
        self.more = page.more
        if self.pick.value is not None and self.pick.value[0] != kind:  # shown the other outcome
            self.pick.value = None
        ids = labels.index.tolist()
        self._set_pick([(f"#{i} {label}", (kind, int(i))) for i, label in zip(ids, labels, strict=True)])
        return len(page.rows)

    def selected(self) -> pd.DataFrame:
        """Every row the filters select, in stored order (what "Export filtered" writes; O(all))."""
        query = self.query
        if query.outcome == "failed":
            return matching(self.source.store.failures, query)
        return matching(self.source.store.events, query).drop(columns=["payload"])

    def _show_detail(self) -> None:
        chosen: Pick | None = self.pick.value
        if chosen is None:
            self.detail.value = ""
        elif chosen[0] == "failure":
            self.detail.value = render.failure_detail(self.source.store.failures, chosen[1])
        else:
            self.detail.value = self._event_detail(chosen[1])

    def _event_detail(self, event_id: int) -> str:
        """A call's event as the conversation view (its JSON one click away), any other as JSON."""
        store = self.source.store
        label = self.pick.label or ""
        if label.split(" ", 1)[-1] in TRANSCRIPT_TYPES:
            try:
                view = conversation_view(store.payload(event_id), event_id=event_id)
            except (KeyError, ValueError) as exc:
                view = f"<i>cannot load event {event_id}: {render.esc(exc)}</i>"
            return view + render.event_detail(event_id, store.raw_body, json_tree=False)
        return render.event_detail(event_id, store.raw_body)


#: The calls tab's outcome toggle: what each choice keeps (see :attr:`Query.ok`).
ANSWERED = {"all": None, "answered 200": True, "not 200": False}


class CallsTab(PagedTab):
    """Agent-tool and call-start calls: by tool, by whether answered 200, a search, a window;
    the inspector shows what came (parameters, redacted headers) and what went back."""

    def __init__(self, source: EventSource, page_size: int, changed: Callable[[], object]) -> None:
        self.names = w.SelectMultiple(options=[], rows=5, description="tools")
        outcome = w.ToggleButtons(options=list(ANSWERED), value="all", description="show")
        searched = "parameters, answer, error or conversation id"
        super().__init__(source, page_size, changed, self.names, outcome, searched)

    @property
    def query(self) -> Query:
        """What the filters and the pager select now."""
        return Query(
            outcome="calls",
            types=tuple(self.names.value),
            search=self.search.value,
            window=WINDOWS[self.window.value],
            page=self.page,
            page_size=self.page_size,
            ok=ANSWERED[self.outcome.value],
        )

    def show(self, calls: pd.DataFrame) -> int:
        """Render the page the filters select (``calls``: the store's snapshot); returns its rows."""
        if not len(calls):  # the usual case (no tools served): rendered once, then nothing to do
            if self.table.value != render.NO_CALLS:
                self.table.value, self.page_label.value = render.NO_CALLS, ""
                self._set_pick([])
            return 0
        self._update_options(calls["name"])
        page = run(calls, self.query)
        self.table.value = render.calls_table(page.rows)
        self.page_label.value = render.events_label(page)
        self.more = page.more
        rows = zip(page.rows.index.tolist(), page.rows["name"], page.rows["status"], strict=True)
        self._set_pick([(f"#{i} {name} {status}", ("call", int(i))) for i, name, status in rows])
        return len(page.rows)

    def _show_detail(self) -> None:
        chosen: Pick | None = self.pick.value
        self.detail.value = "" if chosen is None else render.call_detail(self.source.store.calls, chosen[1])


def _in_ms(table: pd.DataFrame) -> pd.DataFrame:
    """A timings table's seconds as milliseconds (a tool answers in a few: 0.00 s says nothing)."""
    table = table.copy()
    for column in ("p50", "p90", "p99", "max", "mean"):
        if column in table.columns:
            table[column] = table[column] * 1000
    return table


def _html(table: pd.DataFrame) -> str:
    return table.to_html(index=False, float_format=lambda v: f"{v:,.2f}")


def _jobs_html(jobs: pd.DataFrame) -> str:
    """Jobs announced with rx.expect: how many of each status, and those overdue."""
    if not len(jobs):
        return ""
    counts = ", ".join(f"{n} {status}" for status, n in jobs["status"].value_counts(sort=False).items() if n)
    overdue = jobs[jobs["status"] == "overdue"][["job_id", "kind", "submitted_at", "waiting_s"]]
    return f"<b>Jobs (rx.jobs)</b>: {counts}" + (
        f"<br><b>Overdue, not come back</b>{_html(overdue.tail(20))}" if len(overdue) else ""
    )


def _image(fig: Any) -> w.Image:
    """A plot as an image widget: twice the pixels it shows at, in either theme (see .figure)."""
    from .figure import png

    data, size = png(fig)
    return w.Image(value=data, format="png", width=size["width"], height=size["height"])


class TimingsTab(w.VBox):
    """The timing tables (events; calls' latency per tool, when there are calls) and plots,
    drawn on demand (plotting is not cheap)."""

    def __init__(self, source: EventSource) -> None:
        self.source = source
        self.plot_button = w.Button(description="Update plots", icon="chart-line")
        self.timing_table = w.HTML()
        self.call_timing_table = w.HTML()
        self.jobs_table = w.HTML()
        self.plots = w.VBox()
        super().__init__(
            [self.plot_button, self.jobs_table, self.timing_table, self.call_timing_table, self.plots]
        )
        self.plot_button.on_click(lambda _: self.update())

    def update(self) -> None:
        """Redraw the timing table and plots."""
        events = self.source.store.events
        table = timings(events)
        self.timing_table.value = _html(table) if len(table) else "<i>no timings yet</i>"
        self.jobs_table.value = _jobs_html(self.source.store.jobs)
        latency = timings(self.source.store.calls, by="name")
        self.call_timing_table.value = (
            f"<b>Calls: answer latency per tool, ms</b>{_html(_in_ms(latency))}" if len(latency) else ""
        )
        figures = [
            *([plot_turnaround(events)] if events["turnaround_s"].notna().any() else []),
            plot_delivery_lag(events),
            plot_durations(events),
            plot_events_over_time(events),
            plot_failures(self.source.store.failures),
        ]
        old = self.plots.children
        self.plots.children = [_image(fig) for fig in figures]
        for image in old:  # replaced images would otherwise stay open in the kernel
            for widget in widget_tree(image):
                widget.close()
