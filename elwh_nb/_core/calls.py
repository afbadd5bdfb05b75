"""The call log: every agent-tool and call-start request the receiver answered, in the file and memory.

Calls come at the pace of conversations, so the log keeps the newest :data:`DEFAULT_MAX_CALLS`
(a stranger who knows the URL can still send refused calls, and those must not grow the
file without end); an answer is kept up to :data:`ANSWER_CHARS`. Headers are redacted, so
the call secret never reaches the file. When the file refuses a record, it is kept in
memory with a negative id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pandas as pd

from .codes import Codes
from .columns import Columns
from .frames import frame
from .schema import CALLS

ANSWER_CHARS = 16_384
DEFAULT_MAX_CALLS = 100_000
_TRIM_EVERY = 256  # rows between trims of the file's table
_INSERT = CALLS.insert()


class CallLog:
    """The calls in memory (columns of :data:`CALLS`). Callers hold the store's lock."""

    def __init__(self, max_calls: int = DEFAULT_MAX_CALLS) -> None:
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        self.max_calls = max_calls
        self.columns = Columns(CALLS.dtypes, max_rows=max_calls)
        self.kinds = Codes(self.columns, "kind")
        self.names = Codes(self.columns, "name")
        self._unsaved = 0

    def __len__(self) -> int:
        return len(self.columns)

    def last_id(self) -> int:
        ids = self.columns.snapshot()["id"]
        return max(int(ids.max()), 0) if len(ids) else 0

    def load(self, db: sqlite3.Connection, after: int = 0) -> None:
        """Read the rows with ids over ``after`` (an older file opened read-only has no table)."""
        if (
            db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'").fetchone()
            is None
        ):
            return
        rows = db.execute(
            f"{CALLS.select_in(db)} WHERE id > ? ORDER BY id DESC LIMIT ?", (after, self.max_calls)
        ).fetchall()
        if rows:
            rows.reverse()
            columns = CALLS.from_file(rows)
            columns["kind"] = [self.kinds.code(k) for k in columns["kind"]]
            columns["name"] = [self.names.code(n) for n in columns["name"]]
            self.columns.append_rows(columns)

    def add(self, db: sqlite3.Connection, row: dict[str, Any]) -> int:
        """Record a call (a row of :data:`CALLS` but ``id``, headers already redacted); returns its id."""
        answer = row.get("answer")
        if answer is not None and len(answer) > ANSWER_CHARS:
            row = {**row, "answer": f"{answer[:ANSWER_CHARS]}… ({len(answer)} characters in all)"}
        try:
            call_id = int(db.execute(_INSERT, CALLS.params(row)).lastrowid or 0)
            if call_id % _TRIM_EVERY == 0:  # now and then, not every time
                db.execute("DELETE FROM calls WHERE id <= ?", (call_id - self.max_calls,))
        except sqlite3.Error as exc:
            self._unsaved += 1
            call_id = -self._unsaved
            row = {**row, "error": f"{row.get('error') or ''} [not saved to the store file: {exc}]".strip()}
        self.columns.append(
            {**row, "id": call_id, "kind": self.kinds.code(row["kind"]), "name": self.names.code(row["name"])}
        )
        return call_id

    def snapshot(self) -> Callable[[], pd.DataFrame]:
        """The calls as they are now: call the result (without the lock) for the frame."""
        views, kinds, names = self.columns.snapshot(), self.kinds.dtype(), self.names.dtype()
        return lambda: frame(CALLS, views, {"kind": kinds, "name": names})
