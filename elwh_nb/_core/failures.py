"""The failure log: rejected deliveries, redacted and shortened, capped; their counts are not.

The file keeps the newest rows (trimmed now and then) and a count per reason since the
file was made. When the file refuses a record (disk full, locked, read-only), it is kept
in memory with a negative id and why, so that ``rx.failures`` still says what happened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from .cappedlog import DEFAULT_MAX_BYTES, TRIM_EVERY, CappedLog, bounded
from .protocol import INTERNAL_PREFIX
from .schema import FAILURES

DEFAULT_MAX_FAILURES = 5000
PREVIEW_BYTES = 300
REDACTED = "[redacted]"
_SENSITIVE_WORDS = (
    *("auth", "cookie", "token", "secret", "password", "api-key", "apikey", "xsrf", "session"),
)

#: A failed delivery's body is kept whole up to this, to replay it (``rx.replay_failure``) once
#: what refused it is fixed; all kept bodies together up to :data:`BODIES_TOTAL` (oldest let go).
BODY_KEPT_MAX = 1 << 20
BODIES_TOTAL = 64 << 20
BODIES_DDL = """
CREATE TABLE IF NOT EXISTS failure_bodies (
    failure_id INTEGER PRIMARY KEY,
    body BLOB NOT NULL
)"""

COUNTS_DDL = """
CREATE TABLE IF NOT EXISTS failure_counts (
    reason TEXT PRIMARY KEY,
    n INTEGER NOT NULL
)"""
_INSERT = FAILURES.insert()


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """Headers as the sender sent them, credentials (cookies, tokens, API keys) replaced by
    ``[redacted]``; the public route's own ``X-Elwh-*`` headers left out (they are not the sender's)."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        lowered = str(name).lower()
        if lowered.startswith(INTERNAL_PREFIX):
            continue
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
        self.body_bytes = 0  # of the bodies kept to replay

    @property
    def max_failures(self) -> int:
        return self.max_rows

    def load(self, db: sqlite3.Connection, after: int = 0) -> None:
        """Read the newest rows with ids over ``after``, and the counts."""
        self.counts = dict(db.execute("SELECT reason, n FROM failure_counts").fetchall())
        try:
            (self.body_bytes,) = db.execute(
                "SELECT COALESCE(SUM(length(body)), 0) FROM failure_bodies"
            ).fetchone()
        except sqlite3.OperationalError:  # a file from before replays, opened read-only: none kept
            self.body_bytes = 0
        super().load(db, after)

    def add(
        self,
        db: sqlite3.Connection,
        row: dict[str, Any],
        from_inbox: int | None = None,
        body: bytes | bytearray | memoryview = b"",
    ) -> int:
        """Record a failure (a row of :data:`FAILURES` but ``id``, already redacted); returns its id.

        ``from_inbox``: a kept delivery that leaves the inbox in the same transaction.
        ``body``: kept whole when it is not over :data:`BODY_KEPT_MAX` (to replay it).
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
            added = self._keep_body(db, failure_id, body)
            db.execute("COMMIT")
            self.body_bytes += added
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            failure_id = self.unsaved_id()
            row = {**row, "explanation": f"{row['explanation']} [not saved to the store file: {exc}]"}
        self.remember(row, failure_id)
        self.counts[reason] = self.counts.get(reason, 0) + 1
        return failure_id

    def _keep_body(
        self, db: sqlite3.Connection, failure_id: int, body: bytes | bytearray | memoryview
    ) -> int:
        """Keep ``body`` for a replay, letting go of the oldest past :data:`BODIES_TOTAL`
        (and of those whose failure the log no longer holds); returns the bytes it changed by."""
        if not 0 < len(body) <= BODY_KEPT_MAX:
            return 0
        db.execute("INSERT INTO failure_bodies VALUES (?, ?)", (failure_id, body))  # no copy: a buffer
        added = len(body)
        if failure_id % TRIM_EVERY == 0:
            gone = db.execute(
                "DELETE FROM failure_bodies WHERE failure_id NOT IN (SELECT id FROM failures) "
                "RETURNING length(body)"
            ).fetchall()
            added -= sum(n for (n,) in gone)
        over = self.body_bytes + added - BODIES_TOTAL
        gone_ids: list[int] = []
        if over > 0:  # the oldest first, only as many as it takes (read lazily, not all rows)
            for old_id, size in db.execute(
                "SELECT failure_id, length(body) FROM failure_bodies "
                "WHERE failure_id < ? ORDER BY failure_id",
                (failure_id,),
            ):
                gone_ids.append(old_id)
                over -= size
                added -= size
                if over <= 0:
                    break
            db.executemany("DELETE FROM failure_bodies WHERE failure_id = ?", [(i,) for i in gone_ids])
        return added

    def body(self, db: sqlite3.Connection, failure_id: int) -> bytes | None:
        """The whole body of failure ``failure_id``, if it is kept."""
        try:
            found = db.execute(
                "SELECT body FROM failure_bodies WHERE failure_id = ?", (failure_id,)
            ).fetchone()
        except sqlite3.OperationalError:  # a file from before replays, opened read-only
            return None
        return None if found is None else bytes(found[0])
