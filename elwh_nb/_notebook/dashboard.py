"""The live dashboard: one ipywidgets panel over a receiver (any :class:`EventSource`).

Refreshes run on the kernel's main loop (a periodic callback), at most a few times a
second and only when the store changed; while a cell runs they wait, and the next one
shows everything that arrived meanwhile (the store keeps it). The timer stops when the
panel is closed, when the frontend reports no view of it left, or when the receiver stops.
A refresh renders one page of rows (see :mod:`.query`), so its cost does not grow with
the number of stored events (or calls). The panel never sees the webhook secret or the
call secret: sending and replaying go through the receiver, and a call's headers come
redacted from the store.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]
import numpy as np
import pandas as pd
from tornado.ioloop import PeriodicCallback

from . import render
from .actions import FAULT_MIXES, Actions
from .conversations_tab import ConversationsTab
from .query import in_window
from .source import EventSource
from .tabs import WINDOWS, CallsTab, DeliveriesTab, TimingsTab, widget_tree

__all__ = ["FAULT_MIXES", "WINDOWS", "Dashboard"]

CONVERSATIONS_TAB = 3  # the Conversations tab's place among the tabs


class Dashboard(w.VBox):
    """The panel for one receiver, an ipywidgets ``VBox``: display it or put it in a layout.

    Several may watch the same receiver.
    """

    def __init__(
        self,
        receiver: EventSource,
        *,
        page_size: int = 20,
        min_interval: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
        autorefresh: bool = True,
    ) -> None:
        self.rx = receiver
        self.min_interval = min_interval
        self.clock = clock
        self.renders = 0  # how many times the table was rendered (tests watch it)
        self.rows_rendered = 0  # rows in the last render
        self._seen = -1
        self._last = -float("inf")
        self._autorefresh = autorefresh
        self._timer: PeriodicCallback | None = None

        self.header = w.HTML()
        self.counters = w.HTML()
        changed = functools.partial(self.refresh, force=True)
        self.deliveries = DeliveriesTab(receiver, page_size, changed)
        self.timings = TimingsTab(receiver)
        self.calls = CallsTab(receiver, page_size, changed)
        self.conversations = ConversationsTab(receiver, page_size, changed)
        self.actions = Actions(receiver, self.deliveries, changed)
        self.tabs = w.Tab(children=[self.deliveries, self.timings, self.calls, self.conversations])
        self.tabs.titles = ("Deliveries", "Timings", "Calls", "Conversations")
        self._talked: tuple[int, int] | None = None  # (conversations, turns) the counters last saw
        self._talk: dict[str, Any] = {}
        # The tabs' controls by their names on the panel (notebooks set dash.outcome.value).
        d, t = self.deliveries, self.timings
        self.types, self.outcome, self.search, self.window = d.types, d.outcome, d.search, d.window
        self.table, self.page_label, self.pick, self.detail = d.table, d.page_label, d.pick, d.detail
        self.prev_button, self.next_button = d.prev_button, d.next_button
        self.plot_button, self.timing_table, self.plots = t.plot_button, t.timing_table, t.plots
        self.jobs_table = t.jobs_table
        a = self.actions
        self.send_count, self.fault_mix, self.send_button = a.send_count, a.fault_mix, a.send_button
        self.replay_button, self.export_format = a.replay_button, a.export_format
        self.export_button, self.message = a.export_button, a.message
        # _view_count=0 asks the frontend to report how many views show the panel.
        super().__init__([self.header, self.counters, a, self.message, self.tabs], _view_count=0)
        self.observe(self._views_changed, names="_view_count")

        self.tabs.observe(self._tab_chosen, names="selected_index")

        self.refresh(force=True)
        self._start_timer()

    def _tab_chosen(self, change: dict[str, Any]) -> None:
        if change["new"] == 1:
            self.update_plots()
        elif change["new"] == CONVERSATIONS_TAB:
            self.refresh(force=True)

    @property
    def page_size(self) -> int:
        """Rows per page."""
        return self.deliveries.page_size

    @page_size.setter
    def page_size(self, rows: int) -> None:
        self.deliveries.page_size = self.calls.page_size = self.conversations.page_size = rows

    # -- display and lifetime ----------------------------------------------------------
    def __repr__(self) -> str:
        return f"<Dashboard of {self.rx!r}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._start_timer()  # shown again after its views were gone
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = repr(self.rx)
            bundle["text/html"] = self.static_html()
        return bundle

    def static_html(self) -> str:
        """The panel as it is now, as HTML with no widgets: what a page without a kernel shows
        (the rendered docs, GitHub, nbconvert); a live frontend shows the widget instead."""
        return (
            "<div class='elwh-static' style='border:1px solid #8884;padding:6px 10px;border-radius:4px'>"
            f"<div>{self.header.value}</div><div>{self.counters.value}</div><div>{self.table.value}</div>"
            f"<div style='opacity:.7'>{render.esc(self.page_label.value)} · a static view of the "
            "dashboard: run the notebook for the live one</div></div>"
        )

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
        for widget in widget_tree(self):
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
        """Re-render header, counters and the pages of deliveries and calls (throttled unless ``force``)."""
        now = self.clock()
        store = self.rx.store
        changes = store.changes
        if not force and (changes == self._seen or now - self._last < self.min_interval):
            return False
        self._seen, self._last = changes, now
        events, calls = store.events, store.calls
        self.header.value = render.header(self.rx, time.time())
        self.actions.follow(self.rx.running)
        per_minute = int(np.count_nonzero(in_window(events, 60)))
        not_ok = int(np.count_nonzero(calls["status"].to_numpy() != 200))
        conversations = store.conversations
        self.counters.value = render.counters(
            store.counts,
            store.failure_counts,
            per_minute,
            calls=len(calls),
            calls_not_ok=not_ok,
            conversations=self._conversation_counts(conversations),
        )
        self.rows_rendered = self.deliveries.show(events)
        self.calls.show(calls)
        if self.tabs.selected_index == CONVERSATIONS_TAB:  # only while shown: it filters them all
            self.conversations.show(conversations)
        self.renders += 1
        return True

    def _conversation_counts(self, conversations: pd.DataFrame) -> dict[str, Any]:
        """Conversations, the success rate of those rated, and the median of every caller's wait
        (computed again only when a conversation came: the median reads every turn)."""
        turns = self.rx.store.turns
        key = (len(conversations), len(turns))
        if key != self._talked:
            self._talked = key
            rated = conversations["call_successful"].isin(("success", "failure"))
            waits = turns["wait_s"].to_numpy()
            self._talk = {
                "count": len(conversations),
                "success_rate": (
                    float((conversations.loc[rated, "call_successful"] == "success").mean())
                    if rated.any()
                    else None
                ),
                "median_wait_s": float(np.nanmedian(waits)) if np.isfinite(waits).any() else None,
            }
        return self._talk

    # -- the actions row's actions, on the panel too (for code that drives it) ---------
    def send_test_events(self, wait: bool = False) -> threading.Thread:
        """Play ElevenLabs in the background (the receiver answers; the next refresh shows it)."""
        return self.actions.send_test_events(wait)

    def replay_selected(self) -> None:
        """Deliver the selected event again, signed anew: it counts as a duplicate."""
        self.actions.replay_selected()

    def filtered(self) -> pd.DataFrame:
        """All rows matching the filters, events or failures as shown (for export; O(all))."""
        return self.deliveries.selected()

    def export(self, directory: str | Path = ".") -> Path | None:
        """Write the filtered table to CSV or Parquet in ``directory``; returns the file."""
        return self.actions.export(directory)

    def update_plots(self) -> None:
        """Redraw the timing table and plots (on demand: plotting is not cheap)."""
        self.timings.update()
