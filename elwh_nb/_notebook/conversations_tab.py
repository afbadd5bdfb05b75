"""The dashboard's Conversations tab: one row per call, filters by agent, outcome, time and text.

Picking a row opens the conversation view (:mod:`.conversation_view`). Conversations are
far fewer than events, so the filters are plain pandas over ``rx.conversations``; the tab
renders only while it is the one shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]
import numpy as np
import pandas as pd

from .conversation_view import conversation_detail
from .latency import outcomes
from .render import esc, table
from .source import EventSource
from .tabs import WINDOWS, PagedTab

#: The outcome toggle: which outcomes (see :func:`elwh_nb.outcomes`) each choice keeps.
OUTCOMES: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "success": ("success",),
    "failure": ("failure",),
    "failed or never started": ("failed call", "never started"),
    "unknown": ("unknown", "not analysed"),
}
SEARCHED = ("call_summary_title", "transcript_summary", "agent_name", "agent_id", "call_sid")
HEADER = [
    "started",
    "agent",
    "outcome",
    "duration",
    "turns",
    "wait p50",
    "tools",
    "cost",
    "title",
    "conversation",
]


def _agent(c: pd.DataFrame) -> pd.Series:
    return c["agent_name"].astype(object).where(c["agent_name"].notna(), c["agent_id"].astype(object))


def select(
    conversations: pd.DataFrame,
    *,
    agents: tuple[str, ...] = (),
    outcome: str = "all",
    search: str = "",
    window: float | None = None,
    now: float | None = None,
) -> pd.DataFrame:
    """The conversations the filters keep, newest first (by start, else arrival)."""
    c = conversations
    keep = np.ones(len(c), dtype=bool)
    if agents:
        keep &= _agent(c).isin(agents).to_numpy()
    wanted = OUTCOMES[outcome]
    if wanted is not None:
        keep &= outcomes(c).isin(wanted).to_numpy()
    text = search.strip().lower()
    if text:
        hit = np.array([text in str(i).lower() for i in c.index], dtype=bool)
        for column in SEARCHED:
            hit |= (
                c[column]
                .astype(object)
                .map(lambda v: isinstance(v, str) and text in v.lower())
                .to_numpy(bool)
            )
        keep &= hit
    when = c["started_at"].where(c["started_at"].notna(), c["received_at"])
    if window is not None:
        now_ns = int(pd.Timestamp.now(tz="UTC").value if now is None else now * 1e9)
        keep &= (when.array.asi8 >= now_ns - int(window * 1e9)) & when.notna().to_numpy()
    chosen = c[keep]
    return chosen.iloc[np.argsort(-when[keep].array.asi8, kind="stable")]


def conversations_table(rows: pd.DataFrame) -> str:
    """One page of conversations, newest first."""
    shown = []
    records: list[Any] = rows.to_dict("records")
    for cid, r, outcome, agent in zip(rows.index, records, outcomes(rows), _agent(rows), strict=True):
        started = r["started_at"] if not pd.isna(r["started_at"]) else r["received_at"]
        shown.append(
            [
                f"{started:%m-%d %H:%M:%S}",
                esc(agent),
                esc(outcome),
                "" if pd.isna(r["duration_s"]) else f"{r['duration_s']:.0f} s",
                str(r["turns"]),
                "" if pd.isna(r["wait_p50_s"]) else f"{r['wait_p50_s']:.2f} s",
                f"{r['tool_calls']}" + (f" ({r['tool_errors']} err)" if r["tool_errors"] else ""),
                "" if pd.isna(r["cost"]) else f"{r['cost']:,.0f}",
                esc(r["call_summary_title"] or ""),
                esc(cid),
            ]
        )
    return table(HEADER, shown, pick=True)


class ConversationsTab(PagedTab):
    """One row per conversation; the inspector shows it as a chat with its latencies."""

    def __init__(self, source: EventSource, page_size: int, changed: Callable[[], object]) -> None:
        self.agents = w.SelectMultiple(options=[], rows=4, description="agents")
        outcome = w.ToggleButtons(options=list(OUTCOMES), value="all", description="outcome")
        super().__init__(source, page_size, changed, self.agents, outcome, "title, summary, agent or id")
        self.summary = w.HTML()
        self.children = (self.summary, *self.children)  # type: ignore[has-type]

    def _agents_offered(self, conversations: pd.DataFrame) -> None:
        options = tuple(sorted({str(a) for a in _agent(conversations).dropna()}))
        if options != self._options:
            chosen = tuple(a for a in self.agents.value if a in options)
            self._options = options
            self.agents.unobserve(self._filters_changed, names="value")
            self.agents.options = options
            self.agents.value = chosen
            self.agents.observe(self._filters_changed, names="value")

    def show(self, conversations: pd.DataFrame) -> int:
        """Render the page the filters select; returns its rows."""
        self._agents_offered(conversations)
        chosen = select(
            conversations,
            agents=tuple(self.agents.value),
            outcome=self.outcome.value,
            search=self.search.value,
            window=WINDOWS[self.window.value],
        )
        first = self.page * self.page_size
        rows = chosen.iloc[first : first + self.page_size]
        self.more = len(chosen) > first + self.page_size
        self.summary.value = _summary(chosen)
        self.table.value = conversations_table(rows) if len(rows) else "<i>no conversations match</i>"
        self.page_label.value = f"{first + 1 if len(rows) else 0}–{first + len(rows)} of {len(chosen)}"
        labels = [f"{cid} · {t or ''}" for cid, t in zip(rows.index, rows["call_summary_title"], strict=True)]
        self._set_pick(
            [(label, ("conversation", cid)) for label, cid in zip(labels, rows.index, strict=True)]
        )
        return len(rows)

    def _show_detail(self) -> None:
        chosen: tuple[str, Any] | None = self.pick.value
        if chosen is None:
            self.detail.value = ""
            return
        store = self.source.store
        self.detail.value = conversation_detail(store.conversations, chosen[1], store.payload)


def _summary(chosen: pd.DataFrame) -> str:
    if not len(chosen):
        return ""
    got = outcomes(chosen)
    rated = got.isin(("success", "failure"))
    rate = f"{(got[rated] == 'success').mean():.0%}" if rated.any() else "–"
    wait = chosen["wait_p50_s"].median()
    cost = chosen["cost"].sum()
    return (
        f"<b>{len(chosen)}</b> conversations · success <b>{rate}</b> of those rated · "
        f"median wait <b>{'–' if pd.isna(wait) else f'{wait:.2f} s'}</b> · cost <b>{cost:,.0f}</b> credits"
    )
