"""The durable event store: an SQLite file behind two always-current pandas DataFrames.

Accepted events go to ``events`` (one row per distinct raw body; a repeat delivery of
the same body only counts up ``deliveries``), rejected deliveries to ``failures``
(capped; the per-reason counters are not). Once :meth:`EventStore.append` returns, the
event is committed to the SQLite write-ahead log and survives ``kill -9`` of the process.
Raw bodies stay in the file; the DataFrames hold small columns and a lazy ``payload``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import inbox as _inbox
from .columns import NAT, Columns
from .exceptions import StoreError
from .normalize import normalize
from .signature import Body, body_bytes, parse_event

DEFAULT_FILENAME = "elwh_events.sqlite"
DEFAULT_MAX_FAILURES = 5000
PREVIEW_BYTES = 300

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    body_sha256 BLOB NOT NULL UNIQUE,
    received_ns INTEGER NOT NULL,
    last_received_ns INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    event_type TEXT,
    event_timestamp_ns INTEGER,
    conversation_id TEXT,
    agent_id TEXT,
    request_id TEXT,
    voice_id TEXT,
    status TEXT,
    duration_s REAL,
    call_started_ns INTEGER,
    failure_reason TEXT,
    body_bytes INTEGER NOT NULL,
    body BLOB NOT NULL,
    kept_while_away INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY,
    received_ns INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status INTEGER NOT NULL,
    explanation TEXT NOT NULL,
    headers TEXT NOT NULL,
    body_preview TEXT NOT NULL,
    body_bytes INTEGER NOT NULL,
    remote TEXT,
    path TEXT,
    details TEXT
);
CREATE TABLE IF NOT EXISTS failure_counts (
    reason TEXT PRIMARY KEY,
    n INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT,
    submitted_ns INTEGER NOT NULL,
    event_id INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
    + _inbox.SCHEMA
    + ";"
)
_SCHEMA_VERSION = "1"
_INSERT = (
    "INSERT INTO events (body_sha256, received_ns, last_received_ns, deliveries, event_type,"
    " event_timestamp_ns, conversation_id, agent_id, request_id, voice_id, status, duration_s,"
    " call_started_ns, failure_reason, body_bytes, body, kept_while_away)"
    " VALUES (?,?,?,1,?,?,?,?,?,?,?,?,?,?,?,{body},?)"
)


def _insert_params(
    digest: bytes, now: int, rec: dict[str, Any], ets: int, blob: object, away: bool, size: int
) -> tuple[Any, ...]:
    started = _ns(rec["call_started_at"])
    return (
        digest,
        now,
        now,
        rec["event_type"],
        None if ets == NAT else ets,
        rec["conversation_id"],
        rec["agent_id"],
        rec["request_id"],
        rec["voice_id"],
        rec["status"],
        rec["duration_s"],
        None if started == NAT else started,
        rec["failure_reason"],
        size,
        blob,
        int(away),
    )


# Columns of store.events, in order, with their storage dtype in memory.
_EVENT_DTYPES: dict[str, Any] = {
    "id": np.int64,
    "event_type": np.int8,  # category codes, widened as categories grow (see _code_dtype)
    "event_timestamp": np.int64,  # ns since epoch, UTC
    "received_at": np.int64,
    "conversation_id": object,
    "agent_id": object,
    "request_id": object,
    "voice_id": object,
    "status": object,
    "duration_s": np.float64,
    "call_started_at": np.int64,
    "failure_reason": object,
    "delivery_lag_s": np.float64,
    "turnaround_s": np.float64,  # for jobs announced with expect()
    "deliveries": np.int64,
    "last_received_at": np.int64,
    "body_bytes": np.int64,
    "kept_while_away": np.bool_,  # kept by the public route while no receiver ran
    "payload": object,
}
_TIME_COLUMNS = ("event_timestamp", "received_at", "call_started_at", "last_received_at")
_INTERNED = ("status", "failure_reason")

_FAILURE_DTYPES: dict[str, Any] = {
    "id": np.int64,
    "received_at": np.int64,
    "reason": np.int8,
    "status": np.int64,
    "explanation": object,
    "headers": object,
    "body_preview": object,
    "body_bytes": np.int64,
    "remote": object,
    "path": object,
    "details": object,
}

_SENSITIVE_WORDS = ("auth", "cookie", "token", "secret", "password", "api-key", "apikey", "xsrf", "session")
REDACTED = "[redacted]"


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


def body_preview(raw: bytes, limit: int = PREVIEW_BYTES) -> str:
    """The start of a body as text, marked when shortened."""
    text = raw[:limit].decode("utf-8", "replace")
    return text if len(raw) <= limit else f"{text}… ({len(raw)} bytes in all)"


_MAX_NS = np.iinfo(np.int64).max  # 2262-04-11; NAT + 1 is 1677-09-21


def _ns(value: datetime | float | None) -> int:
    """Nanoseconds since the epoch; NAT for None and for times pandas cannot hold (1677-2262)."""
    if value is None:
        return NAT
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    else:
        ns = int(value * 1e9)
    return ns if NAT < ns <= _MAX_NS else NAT


def _given_ns(value: datetime | float, name: str) -> int:
    """A time passed in by the caller, which must be one pandas can hold."""
    ns = _ns(value)
    if ns == NAT:
        raise ValueError(f"{name}={value!r} is outside the times pandas can hold (1677 to 2262)")
    return ns


def _now_ns() -> int:
    return time.time_ns()


@dataclass
class _Job:
    job_id: str
    kind: str | None
    submitted_ns: int
    event_id: int | None


@dataclass(frozen=True)
class Appended:
    """What :meth:`EventStore.append` did: the event's ``id``, and whether it was a repeat."""

    id: int
    duplicate: bool
    deliveries: int


class StoredPayload:
    """An event's parsed body, read from the store file when used (keeps DataFrames small).

    Reads like a dict (``p["data"]``, ``p.get``, ``p.keys()``, ``dict(p)``); ``to_dict()``
    gives the whole event. It deliberately has no ``__contains__`` or ``__len__`` (``in``
    still works through ``__iter__``): pandas then prints its short repr instead of loading every
    displayed body, which for audio events is megabytes.
    """

    __slots__ = ("_store", "event_type", "id")

    def __init__(self, store: EventStore, event_id: int, event_type: str | None) -> None:
        self._store = store
        self.id = event_id
        self.event_type = event_type

    def to_dict(self) -> dict[str, Any]:
        """The whole event as a new dict."""
        return self._store.payload(self.id)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def keys(self) -> Any:
        return self.to_dict().keys()

    def items(self) -> Any:
        return self.to_dict().items()

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredPayload):
            return self._store is other._store and self.id == other.id
        return isinstance(other, Mapping) and self.to_dict() == dict(other)

    def __hash__(self) -> int:
        return hash((id(self._store), self.id))

    def __repr__(self) -> str:
        return f"<{self.event_type or 'event'} #{self.id}>"


class EventStore:
    """Thread-safe, append-only store of verified events and rejected deliveries.

    ``path`` is an SQLite file (default ``elwh_events.sqlite`` in the working directory,
    resolved when the store is made) or ``":memory:"``. Reopening a file restores
    everything. ``durability="power"`` also syncs to disk on each commit (survives a
    power cut, not only a process crash), at a cost in speed. ``lock_timeout`` is how long
    a write waits for another process holding the file before it fails. ``readonly=True``
    opens a file that a receiver elsewhere writes to: reads never write, and every read
    first picks up rows written since (see :meth:`refresh`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_failures: int = DEFAULT_MAX_FAILURES,
        durability: str = "process",
        lock_timeout: float = 5.0,
        readonly: bool = False,
    ) -> None:
        if durability not in ("process", "power"):
            raise ValueError("durability must be 'process' or 'power'")
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if path is None:
            path = Path.cwd() / DEFAULT_FILENAME
        self._memory = str(path) == ":memory:"
        self.path: Path | None = None if self._memory else Path(path).resolve()
        self.readonly = readonly and not self._memory
        self._seen_version: int | None = None  # PRAGMA data_version at the last refresh
        self.max_failures = max_failures
        self.lock_timeout = lock_timeout  # seconds to wait for another writer before failing
        self._lock = threading.RLock()
        self._changes = 0
        self._closed = False
        self._events = Columns(_EVENT_DTYPES)
        self._failures = Columns(_FAILURE_DTYPES, max_rows=max_failures)
        self._types: list[str] = []
        self._type_codes: dict[str, int] = {}
        self._reasons: list[str] = []
        self._reason_codes: dict[str, int] = {}
        self._dtype_cache: dict[str, pd.CategoricalDtype] = {}
        self._failure_counts: dict[str, int] = {}
        self._deliveries = 0
        self._unsaved_failures = 0  # failures kept only in memory (the file refused them)
        self._jobs: dict[str, _Job] = {}
        try:
            self._db = self._connect(durability)
            self._load()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the event store {self._where()}: {exc}") from exc

    # -- opening -----------------------------------------------------------------------
    def _where(self) -> str:
        return "in memory" if self.path is None else f"at {self.path}"

    def _connect(self, durability: str) -> sqlite3.Connection:
        target = ":memory:" if self.path is None else str(self.path)
        if self.readonly:
            from urllib.parse import quote

            db = sqlite3.connect(
                f"file:{quote(target)}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
            )
            db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()  # fail now if not a store
            return db
        db = sqlite3.connect(target, check_same_thread=False, isolation_level=None, timeout=self.lock_timeout)
        if self.path is not None:
            db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit is in the OS before it returns, so it outlives the
        # process; FULL also waits for the disk.
        db.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(failures)")}
        if "details" not in columns:  # files from before the failure inspector
            db.execute("ALTER TABLE failures ADD COLUMN details TEXT")
        if "kept_while_away" not in {row[1] for row in db.execute("PRAGMA table_info(events)")}:
            db.execute("ALTER TABLE events ADD COLUMN kept_while_away INTEGER NOT NULL DEFAULT 0")
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
        elif row[0] != _SCHEMA_VERSION:
            raise StoreError(f"{self.path} has store schema {row[0]}; this elwh_nb reads {_SCHEMA_VERSION}")
        return db

    def _load(self, after_event: int = 0, after_failure: int = 0) -> None:
        """Read rows with ids over the given ones into memory (all of them when opening)."""
        cur = self._db.execute(
            "SELECT id, event_type, event_timestamp_ns, received_ns, conversation_id, agent_id,"
            " request_id, voice_id, status, duration_s, call_started_ns, failure_reason,"
            " deliveries, last_received_ns, body_bytes, kept_while_away FROM events WHERE id > ? ORDER BY id",
            (after_event,),
        )
        while rows := cur.fetchmany(50_000):
            cols = list(zip(*rows, strict=True))
            types = [self._type_code(t) for t in cols[1]]
            ets = [NAT if v is None else v for v in cols[2]]
            self._events.append_rows(
                {
                    "id": cols[0],
                    "event_type": types,
                    "event_timestamp": ets,
                    "received_at": cols[3],
                    "conversation_id": cols[4],
                    "agent_id": cols[5],
                    "request_id": cols[6],
                    "voice_id": cols[7],
                    "status": [_intern(v) for v in cols[8]],
                    "duration_s": [np.nan if v is None else v for v in cols[9]],
                    "call_started_at": [NAT if v is None else v for v in cols[10]],
                    "failure_reason": [_intern(v) for v in cols[11]],
                    "delivery_lag_s": [_lag(e, r) for e, r in zip(ets, cols[3], strict=True)],
                    "turnaround_s": [np.nan] * len(rows),
                    "deliveries": cols[12],
                    "last_received_at": cols[13],
                    "body_bytes": cols[14],
                    "kept_while_away": [bool(v) for v in cols[15]],
                    "payload": [StoredPayload(self, i, t) for i, t in zip(cols[0], cols[1], strict=True)],
                }
            )
            self._deliveries += sum(cols[12])
        if not after_event:
            for job_id, kind, submitted, event_id in self._db.execute("SELECT * FROM jobs ORDER BY rowid"):
                self._jobs[job_id] = _Job(job_id, kind, submitted, event_id)
                if event_id is not None:
                    self._set_turnaround(event_id, submitted)
        self._failure_counts = dict(self._db.execute("SELECT reason, n FROM failure_counts").fetchall())
        rows = self._db.execute(
            "SELECT id, received_ns, reason, status, explanation, headers, body_preview,"
            " body_bytes, remote, path, details FROM failures WHERE id > ? ORDER BY id DESC LIMIT ?",
            (after_failure, self.max_failures),
        ).fetchall()
        for row in reversed(rows):
            self._failures.append(
                {
                    "id": row[0],
                    "received_at": row[1],
                    "reason": self._reason_code(row[2]),
                    "status": row[3],
                    "explanation": row[4],
                    "headers": json.loads(row[5]),
                    "body_preview": row[6],
                    "body_bytes": row[7],
                    "remote": row[8],
                    "path": row[9],
                    "details": row[10],
                }
            )

    def _type_code(self, name: str | None) -> int:
        if name is None:
            return -1
        code = self._type_codes.get(name)
        if code is None:
            code = self._type_codes[name] = len(self._types)
            self._types.append(name)
            self._dtype_cache.pop("event_type", None)
            _widen_codes(self._events, "event_type", len(self._types))
        return code

    def _reason_code(self, name: str) -> int:
        code = self._reason_codes.get(name)
        if code is None:
            code = self._reason_codes[name] = len(self._reasons)
            self._reasons.append(name)
            self._dtype_cache.pop("reason", None)
            _widen_codes(self._failures, "reason", len(self._reasons))
        return code

    # -- writing -----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the event store is closed")

    def _check_writable(self) -> None:
        if self.readonly:
            raise StoreError(f"the event store {self._where()} was opened read-only")

    # -- the webhook URL and its inbox (see _inbox and _routes) --------------------------
    def route(self, *, create: bool = True) -> tuple[str, int] | None:
        """The store's route id and when it was made (ns since epoch), made on first use.

        The id is the last part of the store's public URL: kept in the file, it lasts as
        long as the store (or until :meth:`forget_route`). None for a store in memory (or,
        with ``create=False``, for a file that has none yet).
        """
        if self.path is None:
            return None
        with self._lock:
            self._check_open()
            meta = dict(
                self._db.execute(
                    "SELECT key, value FROM meta WHERE key IN (?, ?)",
                    (_inbox.ROUTE_ID_KEY, _inbox.ROUTE_CREATED_KEY),
                ).fetchall()
            )
            if _inbox.ROUTE_ID_KEY in meta:
                return meta[_inbox.ROUTE_ID_KEY], int(meta.get(_inbox.ROUTE_CREATED_KEY, 0))
            if not create:
                return None
            self._check_writable()
            from .._server.routes import new_route_id

            made = (new_route_id(), _now_ns())
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT INTO meta VALUES (?, ?)", (_inbox.ROUTE_ID_KEY, made[0]))
                self._db.execute("INSERT INTO meta VALUES (?, ?)", (_inbox.ROUTE_CREATED_KEY, str(made[1])))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"could not record the store's URL {self._where()}: {exc}") from exc
            return made

    def forget_route(self) -> None:
        """Drop the route id and whatever waits in the inbox (retiring the URL)."""
        self._check_writable()
        with self._lock:
            self._check_open()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "DELETE FROM meta WHERE key IN (?, ?, ?)",
                    (_inbox.ROUTE_ID_KEY, _inbox.ROUTE_CREATED_KEY, _inbox.REFUSED_KEY),
                )
                self._db.execute("DELETE FROM inbox")
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
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
    def inbox_refused(self) -> int:
        """Deliveries the public route answered 503 because this store's inbox was full."""
        with self._lock:
            self._check_open()
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (_inbox.REFUSED_KEY,)).fetchone()
        return 0 if row is None else int(row[0])

    def refresh(self) -> bool:
        """Pick up rows another process wrote since the last read; returns whether there were any.

        A store opened with ``readonly=True`` does this on every read. Repeat counts of rows
        already read are not updated; :attr:`counts` is.
        """
        with self._lock:
            self._check_open()
            version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            if version == self._seen_version:
                return False
            self._seen_version = version
            before = (len(self._events), len(self._failures))
            last_event = int(self._events.snapshot()["id"][-1]) if len(self._events) else 0
            failure_ids = self._failures.snapshot()["id"]
            last_failure = int(failure_ids.max()) if len(failure_ids) else 0
            self._load(after_event=last_event, after_failure=max(last_failure, 0))
            total = self._db.execute("SELECT coalesce(sum(deliveries), 0) FROM events").fetchone()[0]
            self._deliveries = int(total)
            changed = before != (len(self._events), len(self._failures))
            if changed:
                self._changes += 1
            return changed

    def _fresh(self) -> None:
        if self.readonly and not self._closed:
            self.refresh()

    def append(
        self,
        body: Body,
        event: Mapping[str, Any] | None = None,
        *,
        received_at: datetime | float | None = None,
        kept_while_away: bool = False,
        from_inbox: int | None = None,
    ) -> Appended:
        """Store a verified delivery; a body seen before only counts up its ``deliveries``.

        ``event`` is the parsed body (parsed here when left out). Returns once the event
        is committed; raises :class:`StoreError` if the file cannot be written.
        ``from_inbox`` is the inbox id of a delivery kept while the receiver was away: it
        leaves the inbox in the same transaction (``kept_while_away`` marks the row).
        """
        return self.append_many(
            [(body, event)], received_at=received_at, kept_while_away=kept_while_away, from_inbox=from_inbox
        )[0]

    def append_many(
        self,
        deliveries: Iterable[Body | tuple[Body, Mapping[str, Any] | None]],
        *,
        received_at: datetime | float | None = None,
        kept_while_away: bool = False,
        from_inbox: int | None = None,
    ) -> list[Appended]:
        """Store many deliveries in one transaction (bulk imports, replays, benchmarks)."""
        self._check_writable()
        prepared = []
        for item in deliveries:
            body, event = item if isinstance(item, tuple) else (item, None)
            raw = body_bytes(body)
            parsed = parse_event(raw) if event is None else event
            prepared.append((raw, hashlib.sha256(raw).digest(), normalize(parsed)))
        now = _given_ns(received_at, "received_at") if received_at is not None else _now_ns()
        with self._lock:
            self._check_open()
            try:
                results, new_rows, repeats = self._write(prepared, now, kept_while_away, from_inbox)
            except sqlite3.Error as exc:
                raise StoreError(f"could not write to the event store {self._where()}: {exc}") from exc
            except Exception as exc:  # rolled back; a caller must still be told (a receiver answers 500)
                raise StoreError(
                    f"the event store {self._where()} failed: {type(exc).__name__}: {exc}"
                ) from exc
            # Memory follows the file only after the commit succeeded (type categories too).
            for row in new_rows:
                row["event_type"] = self._type_code(row["event_type"])
                self._events.append(row)
                if self._jobs:
                    self._match_job(row)
            for position, deliveries_now in repeats:
                self._events.update(position, {"deliveries": deliveries_now, "last_received_at": now})
            self._deliveries += len(prepared)
            self._changes += 1
            return results

    def _write(
        self,
        prepared: list[tuple[bytes, bytes, dict[str, Any]]],
        now: int,
        away: bool = False,
        from_inbox: int | None = None,
    ) -> tuple[list[Appended], list[dict[str, Any]], list[tuple[int, int]]]:
        db = self._db
        results: list[Appended] = []
        new_rows: list[dict[str, Any]] = []
        repeats: list[tuple[int, int]] = []
        pending: dict[bytes, int] = {}  # repeats inside this batch
        # One statement commits by itself; a batch, or a body written in pieces, is one transaction.
        batch = (
            len(prepared) > 1
            or from_inbox is not None
            or any(_inbox.in_pieces(raw) for raw, _, _ in prepared)
        )
        if batch:
            db.execute("BEGIN IMMEDIATE")
        try:
            for raw, digest, rec in prepared:
                ets = _ns(rec["event_timestamp"])
                try:
                    value, blob = _inbox.blob_value(db, raw)
                    cur = db.execute(
                        _INSERT.format(body=value),
                        _insert_params(digest, now, rec, ets, blob, away, len(raw)),
                    )
                    _inbox.fill_blob(db, "events", "body", int(cur.lastrowid or 0), raw)
                except sqlite3.IntegrityError:  # the same body again: count a delivery
                    updated = db.execute(
                        "UPDATE events SET deliveries = deliveries + 1, last_received_ns = ?"
                        " WHERE body_sha256 = ?",
                        (now, digest),
                    )
                    if updated.rowcount != 1:  # some other constraint failed
                        raise
                    event_id, count = db.execute(
                        "SELECT id, deliveries FROM events WHERE body_sha256 = ?", (digest,)
                    ).fetchone()
                    results.append(Appended(event_id, True, count))
                    if digest in pending:
                        new_rows[pending[digest]]["deliveries"] = count
                        new_rows[pending[digest]]["last_received_at"] = now
                    else:
                        position = self._events.position("id", event_id)
                        if position is not None:
                            repeats.append((position, count))
                    continue
                event_id = int(cur.lastrowid or 0)
                results.append(Appended(event_id, False, 1))
                pending[digest] = len(new_rows)
                new_rows.append(self._memory_row(event_id, rec, ets, now, len(raw), away))
            if from_inbox is not None:
                db.execute("DELETE FROM inbox WHERE id = ?", (from_inbox,))
            if batch:
                db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return results, new_rows, repeats

    def _memory_row(
        self, event_id: int, rec: dict[str, Any], ets: int, now: int, size: int, away: bool = False
    ) -> dict[str, Any]:
        return {
            "id": event_id,
            "event_type": rec["event_type"],  # a category code once committed
            "event_timestamp": ets,
            "received_at": now,
            "conversation_id": rec["conversation_id"],
            "agent_id": rec["agent_id"],
            "request_id": rec["request_id"],
            "voice_id": rec["voice_id"],
            "status": _intern(rec["status"]),
            "duration_s": np.nan if rec["duration_s"] is None else rec["duration_s"],
            "call_started_at": _ns(rec["call_started_at"]),
            "failure_reason": _intern(rec["failure_reason"]),
            "delivery_lag_s": _lag(ets, now),
            "turnaround_s": np.nan,
            "deliveries": 1,
            "last_received_at": now,
            "body_bytes": size,
            "kept_while_away": away,
            "payload": StoredPayload(self, event_id, rec["event_type"]),
        }

    def add_failure(
        self,
        reason: str,
        *,
        status: int,
        explanation: str = "",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: Body = b"",
        remote: str | None = None,
        path: str | None = None,
        received_at: datetime | float | None = None,
        details: str | None = None,
        from_inbox: int | None = None,
    ) -> int:
        """Record a rejected delivery (headers are redacted, the body shortened); returns its id.

        ``explanation`` is one line; ``details`` may hold a whole :func:`explain` report.
        ``from_inbox``: a kept delivery that leaves the inbox in the same transaction.
        When the file refuses the write (disk full, locked, read-only), the record is kept
        in memory with a negative id and the reason it is not saved, and nothing is raised.
        """
        raw = body_bytes(body)
        clean = redact_headers(headers)
        preview = body_preview(raw)
        now = _given_ns(received_at, "received_at") if received_at is not None else _now_ns()
        self._check_writable()
        with self._lock:
            self._check_open()
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                if from_inbox is not None:
                    db.execute("DELETE FROM inbox WHERE id = ?", (from_inbox,))
                cur = db.execute(
                    "INSERT INTO failures (received_ns, reason, status, explanation, headers,"
                    " body_preview, body_bytes, remote, path, details) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        now,
                        reason,
                        int(status),
                        explanation,
                        json.dumps(clean),
                        preview,
                        len(raw),
                        remote,
                        path,
                        details,
                    ),
                )
                failure_id = int(cur.lastrowid or 0)
                db.execute(
                    "INSERT INTO failure_counts VALUES (?, 1) ON CONFLICT(reason) DO UPDATE SET n = n + 1",
                    (reason,),
                )
                if failure_id % 256 == 0:  # trim the file's table now and then, not every time
                    db.execute("DELETE FROM failures WHERE id <= ?", (failure_id - self.max_failures,))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                # The file cannot take it (disk full, locked, read-only): keep the record in
                # memory so that rx.failures still says what happened, with why it is not saved.
                self._unsaved_failures += 1
                failure_id = -self._unsaved_failures
                explanation = f"{explanation} [not saved to the store file: {exc}]"
            self._failures.append(
                {
                    "id": failure_id,
                    "received_at": now,
                    "reason": self._reason_code(reason),
                    "status": int(status),
                    "explanation": explanation,
                    "headers": clean,
                    "body_preview": preview,
                    "body_bytes": len(raw),
                    "remote": remote,
                    "path": path,
                    "details": details,
                }
            )
            self._failure_counts[reason] = self._failure_counts.get(reason, 0) + 1
            self._changes += 1
            return failure_id

    # -- jobs: asynchronous work whose webhook is awaited -----------------------------------
    def expect(
        self, job_id: str, *, submitted_at: datetime | float | None = None, kind: str | None = None
    ) -> None:
        """Announce a submitted job (a speech-to-text ``request_id``, a conversation id, ...).

        When its webhook arrives (an event whose ``request_id`` or ``conversation_id`` is
        ``job_id``), the event's ``turnaround_s`` is the time from ``submitted_at`` (default
        now) to its arrival; it works whichever comes first.
        """
        submitted = _given_ns(submitted_at, "submitted_at") if submitted_at is not None else _now_ns()
        with self._lock:
            self._check_open()
            event_id = self._find_event(job_id)
            try:
                self._db.execute(
                    "INSERT INTO jobs VALUES (?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET"
                    " kind = excluded.kind, submitted_ns = excluded.submitted_ns,"
                    " event_id = excluded.event_id",
                    (job_id, kind, submitted, event_id),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"could not record a job in the event store {self._where()}: {exc}") from exc
            self._jobs[job_id] = _Job(job_id, kind, submitted, event_id)
            if event_id is not None:
                self._set_turnaround(event_id, submitted)
            self._changes += 1

    def _find_event(self, job_id: str) -> int | None:
        row = self._db.execute(
            "SELECT id FROM events WHERE request_id = ? OR conversation_id = ? ORDER BY id LIMIT 1",
            (job_id, job_id),
        ).fetchone()
        return None if row is None else int(row[0])

    def _match_job(self, row: dict[str, Any]) -> None:
        for key in (row["request_id"], row["conversation_id"]):
            job = self._jobs.get(key) if key else None
            if job is not None and job.event_id is None:
                job.event_id = row["id"]
                with contextlib.suppress(sqlite3.Error):  # the turnaround is derived; the event is safe
                    self._db.execute("UPDATE jobs SET event_id = ? WHERE job_id = ?", (row["id"], job.job_id))
                self._set_turnaround(row["id"], job.submitted_ns)

    def _set_turnaround(self, event_id: int, submitted_ns: int) -> None:
        position = self._events.position("id", event_id)
        if position is not None:
            received = int(self._events.position_value("received_at", position))
            self._events.update(position, {"turnaround_s": (received - submitted_ns) / 1e9})

    @property
    def jobs(self) -> pd.DataFrame:
        """Jobs announced with :meth:`expect`: waiting, or arrived with their turnaround."""
        with self._lock:
            jobs = list(self._jobs.values())
            received = {
                job.job_id: self._events.position_value("received_at", pos)
                for job in jobs
                if job.event_id is not None and (pos := self._events.position("id", job.event_id)) is not None
            }
        frame = pd.DataFrame(
            {
                "job_id": [j.job_id for j in jobs],
                "kind": [j.kind for j in jobs],
                "submitted_at": pd.to_datetime([j.submitted_ns for j in jobs], unit="ns", utc=True),
                "status": ["arrived" if j.event_id is not None else "waiting" for j in jobs],
                "event_id": pd.array([j.event_id for j in jobs], dtype="Int64"),
                "turnaround_s": [
                    (received[j.job_id] - j.submitted_ns) / 1e9 if j.job_id in received else np.nan
                    for j in jobs
                ],
            }
        )
        return frame

    # -- reading -----------------------------------------------------------------------
    def _categories(self, key: str, names: list[str]) -> pd.CategoricalDtype:
        dtype = self._dtype_cache.get(key)
        if dtype is None:
            dtype = self._dtype_cache[key] = pd.CategoricalDtype(list(names))
        return dtype

    @property
    def events(self) -> pd.DataFrame:
        """Every accepted event, oldest first, indexed by ``id`` (a read-only snapshot; O(1) to get)."""
        self._fresh()
        with self._lock:
            views = self._events.snapshot()
            types = self._categories("event_type", self._types)
        return _frame(views, {"event_type": types}, _TIME_COLUMNS)

    @property
    def failures(self) -> pd.DataFrame:
        """The newest ``max_failures`` rejected deliveries, oldest first, indexed by ``id``."""
        self._fresh()
        with self._lock:
            views = self._failures.snapshot()
            reasons = self._categories("reason", self._reasons)
        return _frame(views, {"reason": reasons}, ("received_at",))

    def __len__(self) -> int:
        return len(self._events)

    @property
    def changes(self) -> int:
        """A counter that moves whenever something is stored (for views that refresh)."""
        return self._changes

    @property
    def failure_counts(self) -> dict[str, int]:
        """Rejected deliveries by reason since the file was created (not capped)."""
        with self._lock:
            return dict(self._failure_counts)

    @property
    def counts(self) -> dict[str, int]:
        """Counters: ``events`` (distinct), ``deliveries`` (repeats too), ``duplicates``, ``failures``."""
        self._fresh()
        with self._lock:
            n = len(self._events)
            return {
                "events": n,
                "deliveries": self._deliveries,
                "duplicates": self._deliveries - n,
                "failures": sum(self._failure_counts.values()),
            }

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

    def close(self) -> None:
        """Close the file; DataFrames handed out stay usable, their payloads no longer load."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"<EventStore {self._where()}: {c['events']} events, "
            f"{c['duplicates']} duplicates, {c['failures']} failures>"
        )


def _code_dtype(n_categories: int) -> type[np.signedinteger[Any]]:
    """The codes dtype pandas itself picks, so that from_codes need not copy."""
    if n_categories < 127:
        return np.int8
    if n_categories < 32767:
        return np.int16
    return np.int32


def _widen_codes(columns: Columns, name: str, n_categories: int) -> None:
    if n_categories in (127, 32767):
        columns.retype(name, _code_dtype(n_categories))


def _intern(value: str | None) -> str | None:
    return None if value is None else sys.intern(value)


def _lag(event_ns: int, received_ns: int) -> float:
    return np.nan if event_ns == NAT else (received_ns - event_ns) / 1e9


_UTC = pd.DatetimeTZDtype("ns", "UTC")


def _frame(
    views: dict[str, np.ndarray[Any, Any]],
    categories: Mapping[str, pd.CategoricalDtype],
    times: tuple[str, ...],
) -> pd.DataFrame:
    """Wrap read-only views in a DataFrame without copying them."""
    index = pd.Index(views.pop("id"), name="id", copy=False)
    columns: dict[str, Any] = {}
    for name, view in views.items():
        if name in categories:
            columns[name] = pd.Categorical.from_codes(view, dtype=categories[name], validate=False)
        elif name in times:
            columns[name] = pd.Series(view, dtype=_UTC, copy=False, index=index)
        elif view.dtype == object:
            # dtype=object keeps pandas 3 from converting to its string dtype (an O(n) copy).
            columns[name] = pd.Series(view, dtype=object, copy=False, index=index)
        else:
            columns[name] = pd.Series(view, copy=False, index=index)
    return pd.DataFrame(columns, index=index, copy=False)
