"""The inbox: deliveries kept in a store's own file while its receiver is away.

The public route cannot verify a delivery (the secret lives only in the kernel), so while
no receiver runs it keeps the raw request here, commits, and only then answers 200; the
receiver verifies each one on ``start()`` exactly as a live delivery, against the time it
arrived. A stranger who knows the URL could fill it, so it is capped by count and bytes,
and it leaves a reserve of free space on the store's disk (room for the receiver to move
what waits into events, and for everything else on that disk); past a cap or into the
reserve the route answers 503 (ElevenLabs retries) and counts the refusal. Stdlib only:
the Jupyter server imports this module.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .exceptions import InboxRefused
from .fileuri import file_uri
from .protocol import CALLBACK_HEADER
from .signature import SIGNATURE_HEADERS

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    received_ns INTEGER NOT NULL,
    remote TEXT,
    headers TEXT NOT NULL,
    body_bytes INTEGER NOT NULL,
    body BLOB NOT NULL
)
"""
#: Keys of the store's ``meta`` table that belong to the URL and its inbox.
ROUTE_ID_KEY = "route_id"
ROUTE_CREATED_KEY = "route_created_ns"
REFUSED_KEY = "inbox_refused"
#: The request headers worth keeping: what verification and the failure record need.
KEPT_HEADERS = (
    *(name.lower() for name in SIGNATURE_HEADERS),
    "content-type",
    "user-agent",
    CALLBACK_HEADER.lower(),  # set by the route alone (it strips a client's X-Elwh-* headers)
)
_PIECE = 1 << 20  # bytes copied into the file at a time, so that SQLite never holds a whole copy


@dataclass(frozen=True)
class Limits:
    """How much an inbox may hold; ``c.ElwhHook.inbox_max_*`` in the Jupyter server config."""

    max_deliveries: int = 10_000
    max_bytes: int = 2 * 1024**3
    #: Bytes left free on the store's disk: a delivery that would eat into them is refused.
    min_free: int = 64 * 1024**2


def free_bytes(path: str | Path) -> int:
    """Free space (for this user) on the disk that holds the file at ``path``."""
    return shutil.disk_usage(Path(path).parent).free


@dataclass(frozen=True)
class Kept:
    """A delivery kept while the receiver was away."""

    id: int
    received_ns: int
    remote: str | None
    headers: dict[str, str]
    body: bytes


def kept_headers(headers: Mapping[str, str] | list[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: v for k, v in items if k.lower() in KEPT_HEADERS}


def _connect_existing(path: str) -> sqlite3.Connection:
    # mode=rw: never create a file where the store was (a deleted store keeps nothing).
    return sqlite3.connect(file_uri(path, "rw"), uri=True, timeout=5, isolation_level=None)


def keep(
    path: str,
    body: bytes | bytearray | memoryview,
    headers: dict[str, str],
    *,
    remote: str | None,
    received_ns: int,
    limits: Limits,
) -> int:
    """Commit one delivery to the inbox of the store file at ``path``; returns its inbox id.

    Raises :class:`.InboxRefused` when the inbox is full, the delivery would eat into the free
    space kept on the store's disk (``limits.min_free``), or the file cannot be written. Blocks
    (file I/O): call it off the event loop.
    """
    size = len(body)
    if not Path(path).is_file():  # the store file was removed: there is nowhere to keep it
        raise InboxRefused("the store file is gone", full=False)
    try:
        db = _connect_existing(path)
    except sqlite3.Error as exc:
        raise InboxRefused(f"cannot open the store file: {exc}", full=False) from exc
    try:
        db.execute(SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        count, held = db.execute("SELECT count(*), coalesce(sum(body_bytes), 0) FROM inbox").fetchone()
        free = free_bytes(path)
        why = None
        if count + 1 > limits.max_deliveries or held + size > limits.max_bytes:
            why = (
                f"the inbox is full ({count} deliveries, {held} bytes; limits {limits.max_deliveries}, "
                f"{limits.max_bytes})"
            )
        elif free - size < limits.min_free:
            why = (
                f"the store's disk is nearly full ({free} bytes free, {limits.min_free} kept free; "
                f"the inbox holds {count} deliveries, {held} bytes)"
            )
        if why is not None:
            db.execute(
                "INSERT INTO meta VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET value = value + 1",
                (REFUSED_KEY,),
            )
            db.execute("COMMIT")
            raise InboxRefused(why, full=True)
        value, param = blob_value(db, body)
        cur = db.execute(
            f"INSERT INTO inbox (received_ns, remote, headers, body_bytes, body) VALUES (?,?,?,?,{value})",
            (received_ns, remote, json.dumps(headers), size, param),
        )
        inbox_id = int(cur.lastrowid or 0)
        fill_blob(db, "inbox", "body", inbox_id, body)
        db.execute("COMMIT")
        return inbox_id
    except (sqlite3.Error, OSError) as exc:  # nothing committed: never answered 200
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise InboxRefused(f"cannot write the store file: {exc}", full=False) from exc
    finally:
        db.close()


def pending(db: sqlite3.Connection, after: int = 0, limit: int = 64) -> Iterator[Kept]:
    """Kept deliveries with inbox id over ``after``, oldest first (reads the bodies)."""
    rows = db.execute(
        "SELECT id, received_ns, remote, headers FROM inbox WHERE id > ? ORDER BY id LIMIT ?",
        (after, limit),
    ).fetchall()
    for inbox_id, received_ns, remote, headers in rows:
        yield Kept(
            inbox_id, received_ns, remote, json.loads(headers), read_blob(db, "inbox", "body", inbox_id)
        )


# Big bodies go in and out of the file in pieces (Python 3.11+), so that SQLite never
# holds a second whole copy of a 160 MB call recording next to Python's.
def in_pieces(body: bytes | bytearray | memoryview) -> bool:
    """Whether a body is written in pieces (then its INSERT and the writes share a transaction)."""
    return len(body) > _PIECE and hasattr(sqlite3.Connection, "blobopen")


def blob_value(db: sqlite3.Connection, body: bytes | bytearray | memoryview) -> tuple[str, object]:
    """The SQL value and parameter for a blob column: ``zeroblob(n)`` to fill later, or the bytes."""
    return ("zeroblob(?)", len(body)) if in_pieces(body) else ("?", body)


def fill_blob(
    db: sqlite3.Connection, table: str, column: str, rowid: int, body: bytes | bytearray | memoryview
) -> None:
    """Write ``body`` into a row inserted with :func:`blob_value`'s ``zeroblob`` (no-op otherwise)."""
    if in_pieces(body):
        view = memoryview(body)
        with db.blobopen(table, column, rowid) as blob:  # type: ignore[attr-defined]
            for start in range(0, len(view), _PIECE):
                blob.write(view[start : start + _PIECE])


def read_blob(db: sqlite3.Connection, table: str, column: str, rowid: int) -> bytes:
    """A blob's bytes, read without an intermediate whole copy where Python allows."""
    if hasattr(db, "blobopen"):
        with db.blobopen(table, column, rowid, readonly=True) as blob:
            return blob.read()
    row = db.execute(f"SELECT {column} FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
    return bytes(row[0])


def waiting(db: sqlite3.Connection) -> int:
    """How many deliveries wait in the inbox."""
    return int(db.execute("SELECT count(*) FROM inbox").fetchone()[0])
