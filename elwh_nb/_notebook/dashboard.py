"""The live dashboard: one ipywidgets panel over a receiver.

Refreshes run on the kernel's main loop (a periodic callback), at most a few times a
second and only when the store changed; while a cell runs they wait, and the next one
shows everything that arrived meanwhile (the store keeps it). The timer stops when the
panel is closed, when the frontend reports no view of it left, or when the receiver stops.
A refresh renders one page of rows: the snapshot is O(1) and filters scan backwards only
until the page is full, so its cost does not grow with the number of stored events. The
panel never sees the secret: sending and replaying go through the receiver.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as w  # type: ignore[import-untyped]
import numpy as np
import pandas as pd
from tornado.ioloop import PeriodicCallback

from .query import ID_COLUMNS, Query, in_window, matching, run
from .timings import plot_delivery_lag, plot_durations, plot_events_over_time, plot_failures, timings

if TYPE_CHECKING:
    from .._server.receiver import Receiver

WINDOWS = {"all time": None, "last 5 min": 300, "last hour": 3600, "last 24 h": 86400}
FAULT_MIXES = {"no faults": None, "some faults (20%)": 0.2, "many faults (50%)": 0.5}
_LONG = 160  # strings longer than this are shortened in the JSON view
_DOWNLOAD_MAX = 128 * 1024  # raw bodies up to this size get a download link

#: What the inspector's choices stand for: ("event", id) or ("failure", id).
Pick = tuple[str, int]


def _esc(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    return html.escape(str(value))


def _seconds(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value:,.1f} s"


def json_view(value: Any, key: str = "", depth: int = 0) -> str:
    """Collapsible HTML for a parsed event; long strings shortened, the top level open."""
    label = f"<b>{html.escape(key)}</b>: " if key else ""
    if isinstance(value, dict):
        inner = "".join(f"<li>{json_view(v, str(k), depth + 1)}</li>" for k, v in value.items())
        opened = " open" if depth < 1 else ""
        return f"<details{opened}><summary>{label}{{{len(value)} keys}}</summary><ul>{inner}</ul></details>"
    if isinstance(value, list):
        inner = "".join(f"<li>{json_view(v, str(i), depth + 1)}</li>" for i, v in enumerate(value))
        return f"<details><summary>{label}[{len(value)} items]</summary><ul>{inner}</ul></details>"
    if isinstance(value, str) and len(value) > _LONG:
        text = f'"{html.escape(value[:_LONG])}…" <i>({len(value):,} characters)</i>'
    else:
        text = html.escape(json.dumps(value, ensure_ascii=False))
    return f"{label}<code>{text}</code>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>" for h in header)
    cell = "<td style='padding:2px 8px;white-space:nowrap'>"
    body = "".join("<tr>" + "".join(f"{cell}{c}</td>" for c in row) + "</tr>" for row in rows)
    style = "border-collapse:collapse;font-size:90%"
    return f"<table style='{style}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tree(root: w.Widget) -> list[w.Widget]:
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


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


class Dashboard(w.VBox):
    """The panel for one receiver, an ipywidgets ``VBox``: display it or put it in a layout.

    Several may watch the same receiver.
    """

    def __init__(
        self,
        receiver: Receiver,
        *,
        page_size: int = 20,
        min_interval: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
        autorefresh: bool = True,
    ) -> None:
        self.rx = receiver
        self.page_size = page_size
        self.min_interval = min_interval
        self.clock = clock
        self.renders = 0  # how many times the table was rendered (tests watch it)
        self.rows_rendered = 0  # rows in the last render
        self._seen = -1
        self._last = -float("inf")
        self._page = 0
        self._more = False
        self._types: tuple[str, ...] = ()
        self._autorefresh = autorefresh
        self._timer: PeriodicCallback | None = None

        self.header = w.HTML()
        self.counters = w.HTML()
        self.types = w.SelectMultiple(options=[], rows=5, description="types")
        self.outcome = w.ToggleButtons(options=["accepted", "failed"], value="accepted", description="show")
        self.search = w.Text(
            placeholder="conversation, request, voice or agent id",
            description="search",
            continuous_update=False,
        )
        self.window = w.Dropdown(options=list(WINDOWS), value="all time", description="when")
        self.table = w.HTML()
        self.page_label = w.Label()
        self.prev_button = w.Button(description="◀ newer", layout=w.Layout(width="auto"))
        self.next_button = w.Button(description="older ▶", layout=w.Layout(width="auto"))
        self.pick = w.Dropdown(options=[], description="inspect")
        self.detail = w.HTML()
        self.send_count = w.BoundedIntText(
            value=20, min=1, max=10_000, description="send", layout=w.Layout(width="160px")
        )
        self.fault_mix = w.Dropdown(
            options=list(FAULT_MIXES), value="some faults (20%)", layout=w.Layout(width="180px")
        )
        self.send_button = w.Button(description="Send test events", icon="paper-plane")
        self.replay_button = w.Button(description="Replay selected", icon="redo")
        self.export_format = w.Dropdown(
            options=["csv", "parquet"], value="csv", layout=w.Layout(width="90px")
        )
        self.export_button = w.Button(description="Export filtered", icon="download")
        self.message = w.HTML()
        self.timing_table = w.HTML()
        self.plots = w.VBox()
        self.plot_button = w.Button(description="Update plots", icon="chart-line")

        filters = w.HBox([self.types, w.VBox([self.outcome, self.search, self.window])])
        pager = w.HBox([self.prev_button, self.next_button, self.page_label])
        actions = w.HBox(
            [
                self.send_count,
                self.fault_mix,
                self.send_button,
                self.replay_button,
                self.export_format,
                self.export_button,
            ]
        )
        table_tab = w.VBox([filters, self.table, pager, self.pick, self.detail])
        timing_tab = w.VBox([self.plot_button, self.timing_table, self.plots])
        self.tabs = w.Tab(children=[table_tab, timing_tab])
        self.tabs.set_title(0, "Deliveries")
        self.tabs.set_title(1, "Timings")
        # _view_count=0 asks the frontend to report how many views show the panel.
        super().__init__([self.header, self.counters, actions, self.message, self.tabs], _view_count=0)
        self.observe(self._views_changed, names="_view_count")

        for control in (self.types, self.outcome, self.search, self.window):
            control.observe(self._filters_changed, names="value")
        self.pick.observe(lambda _: self._show_detail(), names="value")
        self.prev_button.on_click(lambda _: self._turn(-1))
        self.next_button.on_click(lambda _: self._turn(+1))
        self.send_button.on_click(lambda _: self.send_test_events())
        self.replay_button.on_click(lambda _: self.replay_selected())
        self.export_button.on_click(lambda _: self.export())
        self.plot_button.on_click(lambda _: self.update_plots())
        self.tabs.observe(
            lambda change: self.update_plots() if change["new"] == 1 else None, names="selected_index"
        )

        self.refresh(force=True)
        self._start_timer()

    # -- display and lifetime ----------------------------------------------------------
    @property
    def widget(self) -> Dashboard:
        """The panel itself (it used to be a separate widget; kept for old code)."""
        return self

    def __repr__(self) -> str:
        return f"<Dashboard of {self.rx!r}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._start_timer()  # shown again after its views were gone
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = repr(self.rx)
        return bundle

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (a closed panel cannot be shown again)."""
        return self.comm is None

    @property
    def refreshing(self) -> bool:
        """Whether the refresh timer runs (it stops when closed, unseen, or the receiver stops)."""
        return self._timer is not None and self._timer.is_running()

    def _start_timer(self) -> None:
        if not self._autorefresh or self.refreshing or self.closed or not self.rx.running:
            return
        try:
            asyncio.get_running_loop()  # the kernel's loop; none in a plain script
        except RuntimeError:
            return
        if self._timer is None:
            self._timer = PeriodicCallback(self._on_timer, 250)
        self._timer.start()

    def _on_timer(self) -> None:
        self.tick()

    def _stop_timer(self) -> None:
        if getattr(self, "_timer", None) is not None:  # also from __del__, maybe half-built
            self._timer.stop()  # type: ignore[union-attr]

    def _views_changed(self, change: dict[str, Any]) -> None:
        # The frontend counts the views showing the panel; none left (output cleared,
        # notebook closed): stop refreshing until it is shown again.
        if change["new"]:
            self._start_timer()
        elif change["old"]:
            self._stop_timer()

    def close(self) -> None:
        """Stop refreshing and close the panel's widgets (and only those: not the user's)."""
        self._stop_timer()
        for widget in _tree(self):
            if widget is not self:
                widget.close()
        super().close()

    def tick(self) -> bool:
        """Refresh if something changed and the last refresh is old enough; True if it did."""
        if not self.rx.running and self.refreshing:
            self._stop_timer()
            return self.refresh(force=True)
        return self.refresh()

    # -- rendering ---------------------------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Re-render header, counters and the visible page (throttled unless ``force``)."""
        now = self.clock()
        changes = self.rx.store.changes
        if not force and (changes == self._seen or now - self._last < self.min_interval):
            return False
        self._seen, self._last = changes, now
        events = self.rx.events
        self._render_header()
        self._render_counters(events)
        self._update_type_options(events)
        self._render_page(events)
        self.renders += 1
        return True

    def _render_header(self) -> None:
        rx = self.rx
        state = "<span style='color:#2a7'>listening</span>" if rx.running else "<b>stopped</b>"
        uptime = int(time.time() - rx.started_at)
        lines = [
            f"<b>elwh-nb receiver</b> {state} on <code>{_esc(rx.local_url)}</code>, "
            f"up {uptime // 3600}h {uptime // 60 % 60}m {uptime % 60}s",
            f"Give ElevenLabs: <code>{_esc(rx.url)}</code> ({_esc(rx.url_story)})",
        ]
        if rx.public_url:
            lines.append(f"public hook route (no login): <code>{_esc(rx.public_url)}</code>")
        if rx.proxy_url:
            lines.append(f"proxy URL (needs a Jupyter login): <code>{_esc(rx.proxy_url)}</code>")
        if rx.url_note:
            lines.append(f"<i>{_esc(rx.url_note)}</i>")
        if rx.tunnel is not None:
            lines.append(f"tunnel: {_esc(rx.tunnel.summary)}")
        self.header.value = "<br>".join(lines)

    def _render_counters(self, events: pd.DataFrame) -> None:
        counts = self.rx.store.counts
        by_reason = self.rx.store.failure_counts
        per_minute = int(np.count_nonzero(in_window(events, 60)))
        reasons = (
            ", ".join(f"{_esc(k)} {v}" for k, v in sorted(by_reason.items(), key=lambda kv: -kv[1])) or "none"
        )
        self.counters.value = (
            f"<b>{counts['events']}</b> accepted · <b>{counts['duplicates']}</b> duplicates · "
            f"<b>{counts['failures']}</b> failures ({reasons}) · "
            f"<b>{per_minute}</b> events in the last minute"
        )

    def _update_type_options(self, events: pd.DataFrame) -> None:
        types = tuple(str(c) for c in events["event_type"].cat.categories)
        if types != self._types:
            chosen = tuple(t for t in self.types.value if t in types)
            self._types = types
            self.types.unobserve(self._filters_changed, names="value")
            self.types.options = types
            self.types.value = chosen
            self.types.observe(self._filters_changed, names="value")

    def _filters_changed(self, _: Any = None) -> None:
        self._page = 0
        self.refresh(force=True)

    def _turn(self, step: int) -> None:
        if (step < 0 and self._page == 0) or (step > 0 and not self._more):
            return
        self._page += step
        self.refresh(force=True)

    def _render_page(self, events: pd.DataFrame) -> None:
        if self.outcome.value == "failed":
            self._render_failures()
            return
        page = run(events, self.query)
        rows, self._more, total = page.rows, page.more, page.total
        self.rows_rendered = len(rows)
        shown = [
            [
                str(i),
                f"{r.received_at:%H:%M:%S}",
                _esc(r.event_type),
                f"{r.event_timestamp:%Y-%m-%d %H:%M:%S}" if not pd.isna(r.event_timestamp) else "",
                _esc(next((getattr(r, c) for c in ID_COLUMNS if getattr(r, c)), "")),
                _esc(r.status),
                _seconds(r.duration_s),
                _seconds(r.delivery_lag_s),
                str(r.deliveries),
            ]
            for i, r in rows.iterrows()
        ]
        header = [
            "id",
            "received",
            "type",
            "event time",
            "conversation / request / voice",
            "status",
            "duration",
            "lag",
            "deliveries",
        ]
        self.table.value = _table(header, shown) if shown else "<i>no events match</i>"
        first = self._page * self.page_size
        of = (
            f"of {total:,}"
            if total is not None
            else ("and older ones" if self._more else f"of {first + len(rows):,}")
        )
        self.page_label.value = (
            f"newest first · rows {first + 1 if len(rows) else 0}-{first + len(rows)} {of}"
        )
        options = [
            (f"#{i} {t}", ("event", int(i))) for i, t in zip(rows.index, rows["event_type"], strict=True)
        ]
        self._set_pick(options)

    def _set_pick(self, options: list[tuple[str, Pick]]) -> None:
        current = self.pick.value
        self.pick.options = options
        values = [v for _, v in options]
        if current in values:
            self.pick.value = current
        elif values and current is None:
            self.pick.value = None
        self._show_detail()

    @property
    def query(self) -> Query:
        """What the filters and the pager select now."""
        return Query(
            outcome=self.outcome.value,
            types=tuple(self.types.value),
            search=self.search.value,
            window=WINDOWS[self.window.value],
            page=self._page,
            page_size=self.page_size,
        )

    def _render_failures(self) -> None:
        found = run(self.rx.failures, self.query, count=True)
        page, self._more = found.rows, found.more
        self.rows_rendered = len(page)
        shown = [
            [
                str(i),
                f"{r.received_at:%H:%M:%S}",
                str(r.status),
                _esc(r.reason),
                _esc(r.explanation[:120]),
                _esc(r.remote),
            ]
            for i, r in page.iterrows()
        ]
        self.table.value = (
            _table(["id", "received", "status", "reason", "explanation", "from"], shown)
            if shown
            else "<i>no failures</i>"
        )
        self.page_label.value = (
            f"newest first · {found.total:,} kept (the newest {self.rx.store.max_failures:,})"
        )
        # Failure ids can be negative (kept in memory only), so the kind is said, not encoded.
        self._set_pick([(f"#{i} {r.reason}", ("failure", int(i))) for i, r in page.iterrows()])

    def _show_detail(self) -> None:
        chosen: Pick | None = self.pick.value
        if chosen is None:
            self.detail.value = ""
        elif chosen[0] == "failure":
            self.detail.value = self.failure_detail(chosen[1])
        else:
            self.detail.value = self.event_detail(chosen[1])

    def event_detail(self, event_id: int) -> str:
        """The whole payload as collapsible JSON, and where to get the raw body."""
        try:
            raw = self.rx.store.raw_body(event_id)
            payload = json.loads(raw)
        except (KeyError, ValueError) as exc:
            return f"<i>cannot load event {event_id}: {_esc(exc)}</i>"
        link = ""
        if len(raw) <= _DOWNLOAD_MAX:  # bigger ones would weigh down the widget state
            data = base64.b64encode(raw).decode("ascii")
            href = f"data:application/json;base64,{data}"
            link = f"<a download='event-{event_id}.json' href='{href}'>download</a> or "
        return (
            f"<b>event #{event_id}</b> ({len(raw):,} bytes). Raw body: {link}"
            f"<code>rx.store.raw_body({event_id})</code>"
            f"<div style='max-height:400px;overflow:auto'>{json_view(payload)}</div>"
        )

    def failure_detail(self, failure_id: int) -> str:
        """Reason, plain-words explanation, redacted headers and the body preview."""
        failures = self.rx.failures
        if failure_id not in failures.index:
            return "<i>that failure is no longer kept</i>"
        f = failures.loc[failure_id]
        headers = _table(["header", "value"], [[_esc(k), _esc(v)] for k, v in f.headers.items()])
        details = (
            f"<pre style='white-space:pre-wrap'>{_esc(f.details)}</pre>" if isinstance(f.details, str) else ""
        )
        return (
            f"<b>failure #{failure_id}: {_esc(f.reason)}</b>, answered {f.status}, from {_esc(f.remote)} "
            f"to {_esc(f.path)} at {f.received_at:%Y-%m-%d %H:%M:%S} UTC"
            f"<p>{_esc(f.explanation)}</p>{details}<b>headers</b> (credentials redacted){headers}"
            f"<b>body</b> ({f.body_bytes:,} bytes)"
            f"<pre style='white-space:pre-wrap'>{_esc(f.body_preview)}</pre>"
        )

    # -- actions -----------------------------------------------------------------------
    def send_test_events(self, wait: bool = False) -> threading.Thread:
        """Play ElevenLabs in the background (the receiver answers; the next refresh shows it)."""
        n, faults = self.send_count.value, FAULT_MIXES[self.fault_mix.value]

        def run() -> None:
            try:
                sent = self.rx.simulate(n, faults=faults, progress=False)
                self.message.value = f"sent {len(sent)} deliveries: {int(sent.ok.sum())} answered as expected"
            except Exception as exc:
                self.message.value = f"sending failed: {_esc(exc)}"

        thread = threading.Thread(target=run, name="elwh-dashboard-send", daemon=True)
        thread.start()
        if wait:
            thread.join()
        return thread

    def replay_selected(self) -> None:
        """Deliver the selected event again, signed anew: it counts as a duplicate."""
        chosen: Pick | None = self.pick.value
        if chosen is None or chosen[0] != "event":
            self.message.value = "pick an accepted event to replay"
            return
        sent = self.rx.replay(chosen[1])
        self.message.value = f"replayed event #{chosen[1]}: answered {sent.status.iloc[-1]}"
        self.refresh(force=True)

    def filtered(self) -> pd.DataFrame:
        """All rows matching the filters (for export; this one is O(all))."""
        if self.outcome.value == "failed":
            return matching(self.rx.failures, self.query)
        return matching(self.rx.events, self.query).drop(columns=["payload"])

    def export(self, directory: str | Path = ".") -> Path | None:
        """Write the filtered table to CSV or Parquet in ``directory``; returns the file."""
        frame = self.filtered()
        if "headers" in frame.columns:
            frame = frame.assign(headers=frame["headers"].map(json.dumps))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(directory) / f"elwh_{self.outcome.value}_{stamp}.{self.export_format.value}"
        try:
            if self.export_format.value == "csv":
                frame.to_csv(path)
            else:
                frame.to_parquet(path)
        except ImportError as exc:
            self.message.value = f"Parquet needs pyarrow: <code>pip install pyarrow</code> ({_esc(exc)})"
            return None
        self.message.value = f"wrote {len(frame):,} rows to <code>{_esc(path)}</code>"
        return path

    def update_plots(self) -> None:
        """Redraw the timing table and plots (on demand: plotting is not cheap)."""
        events = self.rx.events
        table = timings(events)
        self.timing_table.value = (
            table.to_html(index=False, float_format=lambda v: f"{v:,.2f}")
            if len(table)
            else "<i>no timings yet</i>"
        )
        figures = [
            plot_delivery_lag(events),
            plot_durations(events),
            plot_events_over_time(events),
            plot_failures(self.rx.failures),
        ]
        old = self.plots.children
        self.plots.children = [w.Image(value=_png(fig), format="png") for fig in figures]
        for image in old:  # replaced images would otherwise stay open in the kernel
            for widget in _tree(image):
                widget.close()
