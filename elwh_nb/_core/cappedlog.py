"""A capped log of records, in the file and in memory: what the failure and call logs share.

The newest rows are kept, at most ``max_rows`` of them and at most ``max_bytes`` of text
(memory drops older ones as it goes; the file's table is trimmed to the same rows now and
then), category columns are held as codes, and a record the file refuses (disk full,
locked, read-only) is kept in memory with a negative id, its note saying why. A stranger
who knows the URL writes these rows, so each is bounded too (:func:`bounded`): a header
value, a parameter, a text field are kept up to a length, then marked as shortened.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from .codes import Codes
from .columns import Columns
from .frames import frame
from .schema import Table

TRIM_EVERY = 256  # rows between trims of the file's table
DEFAULT_MAX_BYTES = 32 * 2**20  # text a log keeps (in memory and file), whatever its rows
# What one row keeps of what a request brought (Tornado takes 64 KB of headers).
ITEM_CHARS = 256  # a header's value, a parameter's JSON
ITEMS = 32  # headers, parameters
NAME_CHARS = 64  # a header's or parameter's name
TEXT_CHARS = 8192  # a text field (an explanation, a traceback, a path)


def shortened(text: str, limit: int) -> str:
    """``text``, or its start and how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters in all)"


def _items(value: Mapping[str, Any], json_values: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (name, item) in enumerate(value.items()):
        if i == ITEMS:
            out["…"] = f"{len(value) - ITEMS} more not kept"
            break
        if json_values and not isinstance(item, str):
            text = json.dumps(item, default=str)
            kept: Any = item if len(text) <= ITEM_CHARS else shortened(text, ITEM_CHARS)
        else:
            kept = shortened(str(item), ITEM_CHARS)
        out[shortened(str(name), NAME_CHARS)] = kept
    return out


def bounded(table: Table, row: Mapping[str, Any], keep_whole: tuple[str, ...] = ()) -> dict[str, Any]:
    """``row`` with each text field, header and parameter kept up to its length (``keep_whole``:
    fields bounded elsewhere)."""
    out = dict(row)
    for column in table.columns:
        value = out.get(column.name)
        if value is None or column.name in keep_whole:
            continue
        if column.kind == "text":
            out[column.name] = shortened(str(value), TEXT_CHARS)
        elif column.kind == "json" and isinstance(value, Mapping):
            out[column.name] = _items(value, json_values=column.name != "headers")
    return out


def row_bytes(row: Mapping[str, Any]) -> int:
    """About what a row costs: its text, and a little for each field."""
    size = 0
    for value in row.values():
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, Mapping):
            size += len(json.dumps(value, default=str))
        size += 16
    return size


class CappedLog:
    """The newest ``max_rows`` rows of ``table``; ``categories`` are its coded columns.

    Callers hold the store's lock.
    """

    def __init__(
        self,
        table: Table,
        max_rows: int,
        categories: tuple[str, ...],
        option: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"{option} must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_log_bytes must be at least 1")
        self.table = table
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.columns = Columns(table.dtypes, max_rows=max_rows)
        self.codes = {name: Codes(self.columns, name) for name in categories}
        self._unsaved = 0  # records kept only in memory (the file refused them)
        self._kept: deque[tuple[int, int]] = deque()  # (id, bytes) of each row held, oldest first
        self.bytes = 0  # of the rows held

    def __len__(self) -> int:
        return len(self.columns)

    def last_id(self) -> int:
        """The highest id saved to the file that memory holds (0 for none)."""
        ids = self.columns.snapshot()["id"]
        return max(int(ids.max()), 0) if len(ids) else 0

    def load(self, db: sqlite3.Connection, after: int = 0) -> None:
        """Read the newest rows with ids over ``after``."""
        rows = db.execute(
            f"{self.table.select_in(db)} WHERE id > ? ORDER BY id DESC LIMIT ?", (after, self.max_rows)
        ).fetchall()
        if rows:
            rows.reverse()
            names = [c.name for c in self.table.loaded]
            sizes = [row_bytes(dict(zip(names, row, strict=True))) for row in rows]
            columns = self.table.from_file(rows)
            for name, codes in self.codes.items():
                columns[name] = [codes.code(v) for v in columns[name]]
            self.columns.append_rows(columns)
            for row_id, size in zip(columns["id"], sizes, strict=True):
                self._held(int(row_id), size)

    def trim(self, db: sqlite3.Connection, row_id: int) -> None:
        """Now and then (not on every row), drop the file's rows older than those memory holds."""
        if row_id % TRIM_EVERY == 0:
            oldest = next((i for i, _ in self._kept if i > 0), row_id)
            db.execute(
                f"DELETE FROM {self.table.name} WHERE id < ?", (max(oldest, row_id - self.max_rows + 1),)
            )

    def unsaved_id(self) -> int:
        """The id of a record the file refused: negative, counting down."""
        self._unsaved += 1
        return -self._unsaved

    def remember(self, row: dict[str, Any], row_id: int) -> None:
        """Hold a recorded row in memory (its categories coded)."""
        coded = {name: codes.code(row[name]) for name, codes in self.codes.items()}
        self.columns.append({**row, "id": row_id, **coded})
        self._held(row_id, row_bytes(row))

    def _held(self, row_id: int, size: int) -> None:
        """Count a row in; let go of the oldest past ``max_rows`` or ``max_bytes`` (the newest stays)."""
        self._kept.append((row_id, size))
        self.bytes += size
        dropped = False
        while len(self._kept) > 1 and (len(self._kept) > self.max_rows or self.bytes > self.max_bytes):
            self.bytes -= self._kept.popleft()[1]
            dropped = True
        if dropped:
            self.columns.keep_newest(len(self._kept))

    def snapshot(self) -> Callable[[], pd.DataFrame]:
        """The kept rows as they are now: call the result (without the lock) for the frame."""
        views = self.columns.snapshot()
        dtypes = {name: codes.dtype() for name, codes in self.codes.items()}
        return lambda: frame(self.table, views, dtypes)
