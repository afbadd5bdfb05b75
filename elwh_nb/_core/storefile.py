"""An open store file: the connection and its lock, the tables made and migrated, the URL's meta.

:class:`StoreFile` is what :class:`~.store.EventStore` stands on: it opens the SQLite file
(write-ahead log, the durability asked for, or read-only), makes the tables that
:mod:`.schema` and the parts name and gives an older file the columns it lacks, and keeps
the store's public URL (its route id) and inbox, which live in the same file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import callback_urls as _callback_urls
from . import derived as _derived
from . import inbox as _inbox
from . import jobs as _jobs
from .colcache import STORE_ID_KEY
from .exceptions import StoreError
from .failures import BODIES_DDL, COUNTS_DDL
from .fileuri import file_uri
from .protocol import new_route_id
from .schema import CALLS, EVENTS, FAILURES, Table

DEFAULT_FILENAME = "elwh_events.sqlite"
_META_DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_TABLES = (
    EVENTS.ddl,
    FAILURES.ddl,
    CALLS.ddl,
    COUNTS_DDL,
    BODIES_DDL,
    _jobs.DDL,
    _META_DDL,
    _inbox.SCHEMA,
    *_derived.DDL,
)
SCHEMA = "".join(f"{ddl.strip()};\n" for ddl in _TABLES)
AUTOCHECKPOINT = 1000  # log pages after which a commit checkpoints (SQLite's default)
SCHEMA_VERSION = "1"  # columns are added without a new version: older files gain them on opening


def migrate(
    db: sqlite3.Connection, tables: tuple[Table, ...] = (EVENTS, FAILURES, CALLS, *_derived.TABLES)
) -> None:
    """Make a file's tables, and give an older file the columns of ``tables`` it lacks."""
    db.executescript(SCHEMA)
    db.execute(_derived.SINCE_DDL)
    _jobs.migrate(db)
    for table in tables:
        have = table.in_file(db)
        for column in table.stored:
            if column.file_name not in have:
                db.execute(table.add_column(column.file_name))


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    try:
        db.execute("BEGIN IMMEDIATE")
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


class StoreFile:
    """The SQLite file under a store (or an in-memory database), and the store's URL in it."""

    def __init__(
        self, path: str | os.PathLike[str] | None, durability: str, lock_timeout: float, readonly: bool
    ) -> None:
        if durability not in ("process", "power"):
            raise ValueError("durability must be 'process' or 'power'")
        if path is None:
            path = Path.cwd() / DEFAULT_FILENAME
        self.path: Path | None = None if str(path) == ":memory:" else Path(path).resolve()
        self.readonly = readonly and self.path is not None
        self.lock_timeout = lock_timeout  # seconds to wait for another writer before failing
        self._lock = threading.RLock()
        self._closed = False
        self._memory_tokens: dict[str, str] = {}  # a store in memory's callback tokens
        try:
            self._db = self._connect(durability)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the event store {self._where()}: {exc}{self._free()}") from exc

    def _where(self) -> str:
        return "in memory" if self.path is None else f"at {self.path}"

    def _free(self) -> str:
        """How much its disk has free, for an error (a full disk fails with "disk I/O error")."""
        if self.path is None:
            return ""
        try:
            return f" ({_inbox.free_bytes(self.path)} bytes free on its disk)"
        except OSError:
            return ""

    def _connect(self, durability: str) -> sqlite3.Connection:
        target = ":memory:" if self.path is None else str(self.path)
        if self.readonly:
            db = sqlite3.connect(
                file_uri(target, "ro"), uri=True, check_same_thread=False, isolation_level=None
            )
            db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()  # fail now if not a store
            return db
        db = sqlite3.connect(target, check_same_thread=False, isolation_level=None, timeout=self.lock_timeout)
        if self.path is not None:
            db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit is in the OS before it returns, so it outlives the
        # process; FULL also waits for the disk.
        db.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
        migrate(db)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path} has store schema {row[0]}; this elwh_nb reads {SCHEMA_VERSION}")
        # Names this file (not secret) for the copies of its columns kept beside it (colcache).
        db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (STORE_ID_KEY, uuid.uuid4().hex))
        return db

    @property
    def store_id(self) -> str | None:
        """The file's own random id, not secret (None in memory, or for an older file opened read-only)."""
        return self._store_id()

    def _store_id(self) -> str | None:
        if self.path is None:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (STORE_ID_KEY,)).fetchone()
        return None if row is None else str(row[0])

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the event store is closed")

    def _check_writable(self) -> None:
        if self.readonly:
            raise StoreError(f"the event store {self._where()} was opened read-only")

    # -- the write-ahead log -----------------------------------------------------------
    def checkpoint(self) -> int:
        """Copy the write-ahead log into the file, waiting for no one (PASSIVE); returns its pages.

        Once every page is copied, the next commit writes the log from its start again.
        """
        if self.path is None or self.readonly:
            return 0
        with self._lock:
            self._check_open()
            try:
                _, pages, _ = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"could not checkpoint the event store {self._where()}: {exc}") from exc
        return int(pages)

    def autocheckpoint(self, pages: int) -> None:
        """Let a commit checkpoint the log itself once it has ``pages`` (0: never; SQLite's default is 1000).

        A receiver's writer thread turns this off and checkpoints after answering instead.
        """
        if self.path is None or self.readonly:
            return
        with self._lock:
            if not self._closed:
                self._db.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")

    # -- the webhook URL and its inbox (see _inbox and _routes) --------------------------
    def route(self, *, create: bool = True) -> tuple[str, int] | None:
        """The store's route id and when it was made (ns since epoch), made on first use.

        The id is the last part of the store's public URL: kept in the file, it lasts as
        long as the store (or until :meth:`forget_route`). None for a store in memory (or,
        with ``create=False``, for a file that has none yet).
        """
        if self.path is None:
            return None
        keys = (_inbox.ROUTE_ID_KEY, _inbox.ROUTE_CREATED_KEY)
        with self._lock:
            self._check_open()
            meta = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN (?, ?)", keys).fetchall())
            if keys[0] in meta:
                return meta[keys[0]], int(meta.get(keys[1], 0))
            if not create:
                return None
            self._check_writable()
            made = (new_route_id(), time.time_ns())
            try:
                with transaction(self._db) as db:
                    db.executemany(
                        "INSERT INTO meta VALUES (?, ?)", zip(keys, (made[0], str(made[1])), strict=True)
                    )
            except sqlite3.Error as exc:
                raise StoreError(f"could not record the store's URL {self._where()}: {exc}") from exc
            return made

    def callback_token(self, name: str, *, create: bool = True) -> str | None:
        """The token of the store's callback URL ``name`` (see :mod:`.callback_urls`), made on first
        use. Kept in the file beside the route id, so the URL lasts as long as the store's (a
        store in memory keeps it while open); None with ``create=False`` when there is none."""
        name = _callback_urls.checked_name(name)
        key = _callback_urls.META_PREFIX + name
        with self._lock:
            self._check_open()
            if self.path is None:
                if name not in self._memory_tokens and create:
                    self._memory_tokens[name] = _callback_urls.new_token()
                return self._memory_tokens.get(name)
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None or not create:
                return None if row is None else str(row[0])
            self._check_writable()
            token = _callback_urls.new_token()
            try:
                with transaction(self._db) as db:
                    db.execute("INSERT INTO meta VALUES (?, ?)", (key, token))
            except sqlite3.Error as exc:
                raise StoreError(f"could not record a callback URL {self._where()}: {exc}") from exc
            return token

    def forget_route(self) -> None:
        """Drop the route id, the callback URLs' tokens and whatever waits in the inbox (retiring the URL)."""
        self._check_writable()
        keys = (_inbox.ROUTE_ID_KEY, _inbox.ROUTE_CREATED_KEY, _inbox.REFUSED_KEY)
        with self._lock:
            self._check_open()
            try:
                with transaction(self._db) as db:
                    db.execute("DELETE FROM meta WHERE key IN (?, ?, ?)", keys)
                    db.execute("DELETE FROM meta WHERE key LIKE ?", (_callback_urls.META_PREFIX + "%",))
                    db.execute("DELETE FROM inbox")
            except sqlite3.Error as exc:
                raise StoreError(f"could not retire the store's URL {self._where()}: {exc}") from exc

    def inbox(self, after: int = 0, limit: int = 16) -> list[_inbox.Kept]:
        """Deliveries kept while the receiver was away (inbox id over ``after``), oldest first."""
        with self._lock:
            self._check_open()
            try:
                return list(_inbox.pending(self._db, after, limit))
            except sqlite3.Error as exc:
                raise StoreError(f"could not read the inbox {self._where()}: {exc}") from exc

    @property
    def inbox_waiting(self) -> int:
        """How many deliveries kept while the receiver was away wait in the inbox."""
        with self._lock:
            self._check_open()
            try:
                return _inbox.waiting(self._db)
            except sqlite3.Error as exc:
                raise StoreError(f"could not read the inbox {self._where()}: {exc}") from exc

    @property
    def inbox_refused(self) -> int:
        """Deliveries the public route answered 503 because this store's inbox was full."""
        with self._lock:
            self._check_open()
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (_inbox.REFUSED_KEY,)).fetchone()
        return 0 if row is None else int(row[0])

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for a long read: a read-only one of its own for a file (writers go on),
        the store's own, locked, in memory."""
        if self.path is None:
            with self._lock:
                self._check_open()
                yield self._db
            return
        self._check_open()
        db = sqlite3.connect(file_uri(self.path, "ro"), uri=True, timeout=self.lock_timeout)
        try:
            yield db
        finally:
            db.close()

    # -- bodies ------------------------------------------------------------------------
    def raw_body(self, event_id: int) -> bytes:
        """The exact bytes of an event's body, as delivered."""
        with self._lock:
            self._check_open()
            row = self._db.execute("SELECT body FROM events WHERE id=?", (int(event_id),)).fetchone()
        if row is None:
            raise KeyError(f"no event with id {event_id}")
        return bytes(row[0])

    def payload(self, event_id: int) -> dict[str, Any]:
        """An event's parsed body, as a new dict each time."""
        parsed: dict[str, Any] = json.loads(self.raw_body(event_id))
        return parsed

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the file; DataFrames handed out stay usable, their payloads no longer load."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()
