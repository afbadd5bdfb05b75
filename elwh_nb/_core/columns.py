"""Append-only column buffers whose snapshots are read-only views, so reading is O(1).

A snapshot is a set of NumPy views onto the first ``n`` rows; later appends write past
``n`` and never touch it. Growth (capacity doubling) moves to new arrays and leaves old
snapshots on the old ones. The rare in-place update (a duplicate's delivery count)
copies the column first if a snapshot may be looking at it. With ``max_rows``, only the
newest rows are kept (compaction to a fresh buffer keeps appends amortised O(1)).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

_OBJECT = np.dtype(object)
# pandas 2.x's Cython code (memory_usage(deep=True), df.info) cannot read read-only object
# arrays; there, object views stay writable (an edit to a snapshot's text cell shows in
# later snapshots until reload, never in the file).
READ_ONLY_OBJECTS = int(pd.__version__.split(".")[0]) >= 3


class Columns:
    """Columns of fixed NumPy dtypes with amortised O(1) append and O(1) snapshots."""

    def __init__(
        self,
        dtypes: Mapping[str, Any],
        *,
        capacity: int = 1024,
        max_rows: int | None = None,
        fills: Mapping[str, Any] | None = None,
    ) -> None:
        self._dtypes = {name: np.dtype(dt) for name, dt in dtypes.items()}
        self._fills: dict[str, Any] = dict(fills or {})  # a missing value other than 0 / None
        self._max_rows = max_rows
        cap = max(16, capacity if max_rows is None else min(capacity, 2 * max_rows))
        self._arrays = {
            name: self._empty(dt, cap, self._fills.get(name)) for name, dt in self._dtypes.items()
        }
        self._lo = 0  # first live row (moves only with max_rows)
        self._hi = 0  # one past the last row
        self._shared: set[str] = set()
        self._lock = threading.Lock()
        self.version = 0  # counts changes: a frame built at one version holds until the next

    @staticmethod
    def _empty(dtype: np.dtype[Any], n: int, fill: Any = None) -> np.ndarray[Any, Any]:
        if fill is not None:
            return np.full(n, fill, dtype=dtype)
        return np.full(n, None, dtype=object) if dtype == np.dtype(object) else np.zeros(n, dtype=dtype)

    @property
    def names(self) -> list[str]:
        """The columns, in order."""
        return list(self._arrays)

    def add_column(self, name: str, dtype: Any, fill: Any = None) -> None:
        """A new column, ``fill`` (or the dtype's empty value) in every row so far."""
        with self._lock:
            self.version += 1
            if name in self._arrays:
                return
            self._dtypes[name] = np.dtype(dtype)
            if fill is not None:
                self._fills[name] = fill
            cap = len(next(iter(self._arrays.values())))
            self._arrays[name] = self._empty(self._dtypes[name], cap, fill)

    def __len__(self) -> int:
        return self._hi - self._lo if self._max_rows is None else min(self._hi - self._lo, self._max_rows)

    def _grow(self, extra: int) -> None:
        cap = len(next(iter(self._arrays.values())))
        if self._hi + extra <= cap:
            return
        self._compact(extra, cap)

    def _compact(self, extra: int, cap: int = 0) -> None:
        """The live rows into fresh arrays with room for ``extra`` more (snapshots keep the old)."""
        live = self._hi - self._lo
        if self._max_rows is not None:
            keep = min(live, self._max_rows)
            new_cap = max(2 * self._max_rows, keep + extra)
        else:
            keep = live
            new_cap = max(2 * cap, live + extra)
        start = self._hi - keep
        new = {}
        for name, arr in self._arrays.items():
            fresh = self._empty(arr.dtype, new_cap, self._fills.get(name))
            fresh[:keep] = arr[start : self._hi]
            new[name] = fresh
        self._arrays = new
        self._lo, self._hi = 0, keep
        self._shared.clear()

    def append_rows(self, rows: Mapping[str, Sequence[Any] | np.ndarray[Any, Any]]) -> int:
        """Append columns of equal length; returns the position of the first new row."""
        k = len(next(iter(rows.values())))
        with self._lock:
            self.version += 1
            self._grow(k)
            first = self._hi
            for name, values in rows.items():
                self._arrays[name][first : first + k] = values
            self._hi = first + k
            return first - self._lo

    def append(self, row: Mapping[str, Any]) -> int:
        """Append one row (missing columns keep their empty value); returns its position."""
        with self._lock:
            self.version += 1
            self._grow(1)
            pos = self._hi
            for name, value in row.items():
                self._arrays[name][pos] = value
            self._hi = pos + 1
            return pos - self._lo

    def keep_newest(self, n: int) -> None:
        """Forget all but the ``n`` newest rows (a log kept within its bytes); their cells are
        let go of at the next compaction, which comes once the forgotten outnumber the live."""
        with self._lock:
            self.version += 1
            self._lo = max(self._lo, self._hi - n)
            if self._lo > max(16, self._hi - self._lo):
                self._compact(0)

    def update(self, position: int, values: Mapping[str, Any]) -> None:
        """Change one row in place, copying a column first if a snapshot may share it."""
        with self._lock:
            self.version += 1
            index = self._lo + position
            if not self._lo <= index < self._hi:
                return  # compacted away
            for name, value in values.items():
                if name in self._shared:
                    self._arrays[name] = self._arrays[name].copy()
                    self._shared.discard(name)
                self._arrays[name][index] = value

    def position(self, name: str, value: Any) -> int | None:
        """Where ``value`` is in a sorted column (ids), without sharing the buffers."""
        with self._lock:
            live = self._arrays[name][self._lo : self._hi]
            index = int(np.searchsorted(live, value))
            return index if index < len(live) and live[index] == value else None

    def position_value(self, name: str, position: int) -> Any:
        """One cell, read without sharing the buffers."""
        with self._lock:
            return self._arrays[name][self._lo + position]

    def retype(self, name: str, dtype: Any) -> None:
        """Give a column a wider dtype (a copy; snapshots keep the old array)."""
        with self._lock:
            self.version += 1
            self._dtypes[name] = np.dtype(dtype)
            self._arrays[name] = self._arrays[name].astype(dtype)
            self._shared.discard(name)

    def snapshot(self) -> dict[str, np.ndarray[Any, Any]]:
        """Read-only views of the live rows, one per column."""
        with self._lock:
            lo = self._lo if self._max_rows is None else max(self._lo, self._hi - self._max_rows)
            views = {}
            for name, arr in self._arrays.items():
                view = arr[lo : self._hi]
                view.flags.writeable = arr.dtype == _OBJECT and not READ_ONLY_OBJECTS
                views[name] = view
            self._shared = set(self._arrays)
            return views
