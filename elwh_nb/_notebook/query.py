"""Which rows the dashboard shows: a query over the events or failures table (pandas only).

One :class:`Query` (outcome, types, search, time window, page) gives the rows of the events
table, of the failures view and of the export, through one time-window test
(:func:`in_window`) and one search (:func:`_keep`). A page is found by scanning backwards
from the newest row in steps of ``_SCAN`` rows and stopping once the page, and one match
more, is found: a page costs about the same at any number of stored rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

ID_COLUMNS = ("conversation_id", "request_id", "voice_id", "agent_id")
#: The columns the search looks in, by outcome.
SEARCHED = {"accepted": ID_COLUMNS, "failed": ("reason", "explanation")}
_SCAN = 4096  # rows looked at per step when rows are filtered one by one

Outcome = Literal["accepted", "failed"]
Mask = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True)
class Query:
    """What to show. Rows are stored oldest first; pages count from the newest."""

    outcome: Outcome = "accepted"  # the events table ("accepted") or the failures ("failed")
    types: tuple[str, ...] = ()  # event types to keep (events only); none: every type
    search: str = ""  # literal text, any case, in one of SEARCHED[outcome]; blank: no search
    window: float | None = None  # only rows received in the last this many seconds; None: all
    page: int = 0  # 0 is the newest page
    page_size: int = 20

    @property
    def text(self) -> str:
        """The search as matched: trimmed and lower-case."""
        return self.search.strip().lower()

    @property
    def row_by_row(self) -> bool:
        """Whether rows are tested one by one (types or search), not only by the window."""
        return bool(self.text or (self.types and self.outcome == "accepted"))


@dataclass(frozen=True)
class Page:
    """One page of matching rows, newest first."""

    rows: pd.DataFrame
    first: int  # how many newer matches come before ``rows`` (page * page_size)
    more: bool  # whether older matches exist
    total: int | None  # matches in all; None when types or search were tested and not all rows counted


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def in_window(frame: pd.DataFrame, seconds: float | None, now: float | None = None) -> Mask:
    """Which rows were received in the last ``seconds`` before ``now`` (a ``time.time()``).

    Exact in any row order: rows kept while away, or stored with an earlier
    ``received_at``, are not in arrival order.
    """
    received = frame["received_at"].array.asi8
    if seconds is None:
        return np.ones(len(received), dtype=bool)
    return received >= int(_now(now) * 1e9) - int(seconds * 1e9)


def _keep(frame: pd.DataFrame, query: Query) -> Mask:
    """Which rows match the query's types and search (not its window)."""
    keep = np.ones(len(frame), dtype=bool)
    if query.types and query.outcome == "accepted":
        keep &= frame["event_type"].isin(query.types).to_numpy()
    text = query.text
    if text:
        hit = np.zeros(len(frame), dtype=bool)
        for column in SEARCHED[query.outcome]:
            hit |= (
                frame[column]
                .astype("string")
                .str.lower()
                .str.contains(text, regex=False)
                .fillna(False)
                .to_numpy(bool)
            )
        keep &= hit
    return keep


def run(frame: pd.DataFrame, query: Query, *, now: float | None = None, count: bool = False) -> Page:
    """The query's page of ``frame`` (events or failures, oldest first), newest first.

    ``count`` scans every row so that :attr:`Page.total` is never None (for small
    tables such as the failures); otherwise the scan stops once the page is known.
    """
    n = len(frame)
    first = query.page * query.page_size
    want = first + query.page_size
    if query.window is None and not query.row_by_row:
        start = max(0, n - want)
        return Page(frame.iloc[start : max(start, n - first)].iloc[::-1], first, start > 0, n)
    inside = in_window(frame, query.window, now)
    lo = int(inside.argmax()) if inside.any() else n  # no match before the first row inside
    found: list[np.ndarray[Any, Any]] = []
    got, end = 0, n
    while end > lo and (count or got <= want):
        start = max(lo, end - _SCAN)
        keep = _keep(frame.iloc[start:end], query) & inside[start:end]
        positions = np.flatnonzero(keep)[::-1] + start
        found.append(positions)
        got += len(positions)
        end = start
    hits = np.concatenate(found) if found else np.array([], dtype=np.intp)
    if count:
        total: int | None = len(hits)
    else:
        total = None if query.row_by_row else int(np.count_nonzero(inside))
    return Page(frame.iloc[hits[first:want]], first, len(hits) > want, total)


def matching(frame: pd.DataFrame, query: Query, *, now: float | None = None) -> pd.DataFrame:
    """Every row of ``frame`` the query selects, in stored order (what "Export filtered" writes)."""
    return frame[_keep(frame, query) & in_window(frame, query.window, now)]
