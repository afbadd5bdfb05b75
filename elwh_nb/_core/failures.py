"""The failure log: rejected deliveries, redacted and shortened, capped; their counts are not.

The file keeps the newest rows (trimmed now and then) and a count per reason since the
file was made. When the file refuses a record (disk full, locked, read-only), it is kept
in memory with a negative id and why, so that ``rx.failures`` still says what happened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from .cappedlog import DEFAULT_MAX_BYTES, CappedLog, bounded
from .schema import FAILURES

DEFAULT_MAX_FAILURES = 5000
PREVIEW_BYTES = 300
REDACTED = "[redacted]"
_SENSITIVE_WORDS = (
    *("auth", "cookie", "token", "secret", "password", "api-key", "apikey", "xsrf", "session"),
    "x-elwh-callback",  # a callback URL's token (see .callback_urls)
)

COUNTS_DDL = """
CREATE TABLE IF NOT EXISTS failure_counts (
    reason TEXT PRIMARY KEY,
    n INTEGER NOT NULL
)"""
_INSERT = FAILURES.insert()


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """Headers with credentials (cookies, tokens, API keys) replaced by ``[redacted]``."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        lowered = str(name).lower()
        if any(word in lowered for word in _SENSITIVE_WORDS):
            value = REDACTED
        key = str(name)
        out[key] = f"{out[key]}, {value}" if key in out else str(value)
    return out


def body_preview(raw: bytes | bytearray, limit: int = PREVIEW_BYTES) -> str:
    """The start of a body as text, marked when shortened."""
    text = raw[:limit].decode("utf-8", "replace")
    return text if len(raw) <= limit else f"{text}… ({len(raw)} bytes in all)"


class FailureLog(CappedLog):
    """The newest ``max_failures`` failures in memory and in the file, and counts by reason.

    Callers hold the store's lock.
    """

    def __init__(self, max_failures: int = DEFAULT_MAX_FAILURES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(FAILURES, max_failures, ("reason",), "max_failures", max_bytes)
        self.counts: dict[str, int] = {}

    @property
    def max_failures(self) -> int:
        return self.max_rows

    def load(self, db: sqlite3.Connection, after: int = 0) -> None:
        """Read the newest rows with ids over ``after``, and the counts."""
        self.counts = dict(db.execute("SELECT reason, n FROM failure_counts").fetchall())
        super().load(db, after)

    def add(self, db: sqlite3.Connection, row: dict[str, Any], from_inbox: int | None = None) -> int:
        """Record a failure (a row of :data:`FAILURES` but ``id``, already redacted); returns its id.

        ``from_inbox``: a kept delivery that leaves the inbox in the same transaction.
        """
        row = bounded(FAILURES, row)
        reason = row["reason"]
        try:
            db.execute("BEGIN IMMEDIATE")
            if from_inbox is not None:
                db.execute("DELETE FROM inbox WHERE id = ?", (from_inbox,))
            failure_id = int(db.execute(_INSERT, FAILURES.params(row)).lastrowid or 0)
            db.execute(
                "INSERT INTO failure_counts VALUES (?, 1) ON CONFLICT(reason) DO UPDATE SET n = n + 1",
                (reason,),
            )
            self.trim(db, failure_id)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            failure_id = self.unsaved_id()
            row = {**row, "explanation": f"{row['explanation']} [not saved to the store file: {exc}]"}
        self.remember(row, failure_id)
        self.counts[reason] = self.counts.get(reason, 0) + 1
        return failure_id
