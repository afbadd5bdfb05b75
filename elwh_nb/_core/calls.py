"""The call log: every agent-tool and call-start request the receiver answered, in the file and memory.

Calls come at the pace of conversations, so the log keeps the newest :data:`DEFAULT_MAX_CALLS`
within its bytes (a stranger who knows the URL can still send refused calls, and those must
not grow memory or the file without end); an answer is kept up to :data:`ANSWER_CHARS`.
Headers are redacted, so the call secret never reaches the file. When the file refuses a record, it is kept in
memory with a negative id.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .cappedlog import DEFAULT_MAX_BYTES, CappedLog, bounded, shortened
from .schema import CALLS

ANSWER_CHARS = 16_384
DEFAULT_MAX_CALLS = 100_000
_INSERT = CALLS.insert()


class CallLog(CappedLog):
    """The newest ``max_calls`` calls in memory and in the file. Callers hold the store's lock."""

    def __init__(self, max_calls: int = DEFAULT_MAX_CALLS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(CALLS, max_calls, ("kind", "name"), "max_calls", max_bytes)

    def load(self, db: sqlite3.Connection, after: int = 0) -> None:
        """Read the newest rows with ids over ``after`` (an older file opened read-only has no table)."""
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'").fetchone()
        if exists is not None:
            super().load(db, after)

    def add(self, db: sqlite3.Connection, row: dict[str, Any]) -> int:
        """Record a call (a row of :data:`CALLS` but ``id``, headers already redacted); returns its id."""
        row = bounded(CALLS, row, keep_whole=("answer",))
        if row.get("answer") is not None:
            row["answer"] = shortened(row["answer"], ANSWER_CHARS)
        try:
            call_id = int(db.execute(_INSERT, CALLS.params(row)).lastrowid or 0)
            self.trim(db, call_id)
        except sqlite3.Error as exc:
            call_id = self.unsaved_id()
            row = {**row, "error": f"{row.get('error') or ''} [not saved to the store file: {exc}]".strip()}
        self.remember(row, call_id)
        return call_id
