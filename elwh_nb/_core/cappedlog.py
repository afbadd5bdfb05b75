"""A capped log of records, in the file and in memory: what the failure and call logs share.

The newest ``max_rows`` rows are kept (memory drops older ones as it goes; the file's table
is trimmed now and then), category columns are held as codes, and a record the file refuses
(disk full, locked, read-only) is kept in memory with a negative id, its note saying why.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pandas as pd

from .codes import Codes
from .columns import Columns
from .frames import frame
from .schema import Table

TRIM_EVERY = 256  # rows between trims of the file's table


class CappedLog:
    """The newest ``max_rows`` rows of ``table``; ``categories`` are its coded columns.

    Callers hold the store's lock.
    """

    def __init__(self, table: Table, max_rows: int, categories: tuple[str, ...], option: str) -> None:
        if max_rows < 1:
            raise ValueError(f"{option} must be at least 1")
        self.table = table
        self.max_rows = max_rows
        self.columns = Columns(table.dtypes, max_rows=max_rows)
        self.codes = {name: Codes(self.columns, name) for name in categories}
        self._unsaved = 0  # records kept only in memory (the file refused them)

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
            columns = self.table.from_file(rows)
            for name, codes in self.codes.items():
                columns[name] = [codes.code(v) for v in columns[name]]
            self.columns.append_rows(columns)

    def trim(self, db: sqlite3.Connection, row_id: int) -> None:
        """Now and then (not on every row), drop the file's rows older than the newest ``max_rows``."""
        if row_id % TRIM_EVERY == 0:
            db.execute(f"DELETE FROM {self.table.name} WHERE id <= ?", (row_id - self.max_rows,))

    def unsaved_id(self) -> int:
        """The id of a record the file refused: negative, counting down."""
        self._unsaved += 1
        return -self._unsaved

    def remember(self, row: dict[str, Any], row_id: int) -> None:
        """Hold a recorded row in memory (its categories coded)."""
        coded = {name: codes.code(row[name]) for name, codes in self.codes.items()}
        self.columns.append({**row, "id": row_id, **coded})

    def snapshot(self) -> Callable[[], pd.DataFrame]:
        """The kept rows as they are now: call the result (without the lock) for the frame."""
        views = self.columns.snapshot()
        dtypes = {name: codes.dtype() for name, codes in self.codes.items()}
        return lambda: frame(self.table, views, dtypes)
