"""Which rows the dashboard shows: a query over the events, failures or calls table (pandas only).

One :class:`Query` (outcome, types, search, time window, page) gives the rows of the events
table, of the failures view, of the calls view and of the export, through one time-window test
(:func:`in_window`) and one test of types, status and search (:func:`_row_test`). A page is found
by scanning backwards from the newest row in steps of ``_SCAN`` rows and stopping once the
page, and one match more, is found: a page costs about the same at any number of rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

ID_COLUMNS = ("conversation_id", "request_id", "voice_id", "agent_id")
#: The columns the search looks in, by outcome.
SEARCHED = {
    "accepted": ID_COLUMNS,
    "failed": ("reason", "explanation"),
    "calls": ("parameters", "answer", "error", "conversation_id"),
}
#: The column :attr:`Query.types` picks from, by outcome (failures have none).
TYPED = {"accepted": "event_type", "calls": "name"}
_SCAN = 4096  # rows looked at per step when rows are filtered one by one

Outcome = Literal["accepted", "failed", "calls"]
Mask = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True)
class Query:
    """What to show. Rows are stored oldest first; pages count from the newest."""

    outcome: Outcome = "accepted"  # the events table ("accepted"), the failures ("failed") or the calls
    types: tuple[str, ...] = ()  # event types (events) or tool names (calls) to keep; none: every one
    search: str = ""  # literal text, any case, in one of SEARCHED[outcome]; blank: no search
    window: float | None = None  # only rows received in the last this many seconds; None: all
    page: int = 0  # 0 is the newest page
    page_size: int = 20
    ok: bool | None = None  # calls only: True keeps those answered 200, False the others; None: all

    @property
    def text(self) -> str:
        """The search as matched: trimmed and lower-case."""
        return self.search.strip().lower()

    @property
    def row_by_row(self) -> bool:
        """Whether rows are tested one by one (types, status or search), not only by the window."""
        typed = self.types and self.outcome in TYPED
        return bool(self.text or typed or (self.ok is not None and self.outcome == "calls"))


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


def _row_test(frame: pd.DataFrame, query: Query) -> Callable[[int, int], Mask]:
    """The query's types, status and search (not its window) as a test of the rows ``start:end``.

    The columns are taken out of ``frame`` once; each step then slices plain arrays.
    """
    kinds: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None = None
    if query.types and query.outcome in TYPED:
        column = frame[TYPED[query.outcome]]
        wanted = column.cat.categories.get_indexer(pd.Index(query.types))
        kinds = (column.cat.codes.to_numpy(), wanted[wanted >= 0])
    status = frame["status"].to_numpy() if query.ok is not None and query.outcome == "calls" else None
    text = query.text
    searched = [frame[c].to_numpy(object) for c in SEARCHED[query.outcome]] if text else []

    def test(start: int, end: int) -> Mask:
        keep = np.ones(end - start, dtype=bool)
        if kinds is not None:
            keep &= np.isin(kinds[0][start:end], kinds[1])
        if status is not None:
            keep &= (status[start:end] == 200) == query.ok
        if searched:
            hit = np.zeros(end - start, dtype=bool)
            for values in searched:
                hit |= _contains(values[start:end], text)
            keep &= hit
        return keep

    return test


def _contains(values: np.ndarray[Any, Any], text: str) -> Mask:
    """Which values hold ``text`` (lower-case), ignoring case; missing values never do.

    A plain loop: 2.5 times quicker than pandas' ``astype("string").str.lower().str.contains``
    on a scan step, and several times on small tables.
    """
    return np.fromiter(
        (text in v.lower() if isinstance(v, str) else _other_contains(v, text) for v in values),
        dtype=bool,
        count=len(values),
    )


def _other_contains(value: Any, text: str) -> bool:
    if isinstance(value, (dict, list)):  # a call's parameters: in one of their keys or values
        return any(text in v for v in _texts(value))
    return value is not None and not pd.isna(value) and text in str(value).lower()


def _texts(value: Any) -> Iterator[str]:
    """The keys and values in a parsed JSON value, each as lower-case text; nulls left out."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key).lower()
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif value is not None:
        yield str(value).lower()


def run(frame: pd.DataFrame, query: Query, *, now: float | None = None, count: bool = False) -> Page:
    """The query's page of ``frame`` (events, failures or calls, oldest first), newest first.

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
    test = _row_test(frame, query)
    found: list[np.ndarray[Any, Any]] = []
    got, end = 0, n
    while end > lo and (count or got <= want):
        start = max(lo, end - _SCAN)
        keep = test(start, end) & inside[start:end]
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
    return frame[_row_test(frame, query)(0, len(frame)) & in_window(frame, query.window, now)]
