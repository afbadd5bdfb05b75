"""The durable event store: an SQLite file behind two always-current pandas DataFrames.

Accepted events go to ``events`` (one row per distinct raw body; a repeat delivery of
the same body only counts up ``deliveries``), rejected deliveries to ``failures``
(capped; the per-reason counters are not). Once :meth:`EventStore.append` returns, the
event is committed to the SQLite write-ahead log and survives ``kill -9`` of the process.
Raw bodies stay in the file; the DataFrames hold small columns and a lazy ``payload``.

:class:`EventStore` is a thin facade: the file, its connection and lock come from
:class:`.storefile.StoreFile`; the work is done by its parts, :mod:`.events` (append and
dedupe), :mod:`.failures` (the capped, redacted failure log) and :mod:`.jobs`
(``expect()``), over the columns that :mod:`.schema` names once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import colcache as _colcache
from . import derived as _derived
from . import history as _history
from . import history_calls as _history_calls
from . import jobs as _jobs
from .calls import DEFAULT_MAX_CALLS, CallLog
from .cappedlog import DEFAULT_MAX_BYTES as DEFAULT_MAX_LOG_BYTES
from .events import Appended, Arrays, Events
from .exceptions import StoreError
from .failures import DEFAULT_MAX_FAILURES, PREVIEW_BYTES, REDACTED, FailureLog, body_preview, redact_headers
from .frames import StoredPayload
from .normalize import normalize
from .schema import EVENTS, given_ns
from .signature import Body, body_bytes, parse_event
from .storefile import DEFAULT_FILENAME, StoreFile

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DEFAULT_FILENAME",
    "DEFAULT_MAX_FAILURES",
    "PREVIEW_BYTES",
    "REDACTED",
    "Appended",
    "EventStore",
    "StoredPayload",
    "body_preview",
    "redact_headers",
]


class EventStore(StoreFile):
    """Thread-safe, append-only store of verified events and rejected deliveries.

    ``path`` is an SQLite file (default ``elwh_events.sqlite`` in the working directory,
    resolved when the store is made) or ``":memory:"``. Reopening a file restores
    everything. ``durability="power"`` also syncs to disk on each commit (survives a
    power cut, not only a process crash), at a cost in speed. ``lock_timeout`` is how long
    a write waits for another process holding the file before it fails. ``readonly=True``
    opens a file that a receiver elsewhere writes to: reads never write, and every read
    first picks up rows written since (see :meth:`refresh`). ``max_failures`` and
    ``max_calls`` are how many of the newest failures and agent-tool calls are kept, and
    ``max_log_bytes`` the most text each of the two logs keeps (the oldest go first): strangers
    who know the URL write to both.
    """

    __module__ = "elwh_nb"  # shown where it is imported from (as httpx does)

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_failures: int = DEFAULT_MAX_FAILURES,
        max_calls: int = DEFAULT_MAX_CALLS,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        durability: str = "process",
        lock_timeout: float = 5.0,
        readonly: bool = False,
    ) -> None:
        self._failures = FailureLog(max_failures, max_log_bytes)
        self._calls = CallLog(max_calls, max_log_bytes)
        self._events = Events(functools.partial(StoredPayload, self))
        self._jobs = _jobs.Jobs(self._events.columns)
        self._derived = _derived.DerivedTables()
        self._changes = 0
        self._seen_version: int | None = None  # PRAGMA data_version at the last refresh
        super().__init__(path, durability, lock_timeout, readonly)
        self._copied: tuple[int, int] | None = None  # (rows, deliveries) in the column copy
        try:
            self._load()
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"cannot open the event store {self._where()}: {exc}") from exc

    def _load(self) -> None:
        """Memory from the file: the column copy beside it when it matches, then the newer rows."""
        store_id = self._store_id()
        cached = (
            None if self.path is None or store_id is None else _colcache.load(self.path, store_id, self._db)
        )
        if cached is not None:
            self._events.restore(cached)
            self._copied = (len(self._events), self._events.deliveries)
        read = self._events.load(self._db, after=self._events.last_id())
        self._jobs.load(self._db)
        self._failures.load(self._db)
        self._calls.load(self._db)
        if read >= _colcache.MIN_ROWS:
            self._keep_columns()

    def _keep_columns(self) -> None:
        """Save the columns beside the file (see :mod:`.colcache`) if they moved since the last copy.

        Only a writable file's store keeps a copy, and only of many rows. Callers hold the lock
        (or are the constructor).
        """
        now = (len(self._events), self._events.deliveries)
        if self.path is None or self.readonly or now[0] < _colcache.MIN_ROWS or now == self._copied:
            return
        store_id = self._store_id()
        if store_id is None:
            return
        views = self._events.columns.snapshot()
        try:
            if _colcache.save(self.path, store_id, self._db, views, list(self._events.types.names)):
                self._copied = now
        except (OSError, sqlite3.Error, ValueError, TypeError) as exc:
            _colcache.log.warning("could not keep a copy of the columns beside %s: %s", self.path, exc)

    @property
    def max_failures(self) -> int:
        """How many rejected deliveries are kept (the newest)."""
        return self._failures.max_failures

    # -- writing -----------------------------------------------------------------------
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
            before = (len(self._events), len(self._failures), len(self._calls))
            self._events.load(self._db, after=self._events.last_id())
            self._failures.load(self._db, after=self._failures.last_id())
            self._calls.load(self._db, after=self._calls.last_id())
            if self._derived.loaded:
                self._derived.load(self._db, writable=False)
            total = self._db.execute("SELECT coalesce(sum(deliveries), 0) FROM events").fetchone()[0]
            self._events.deliveries = int(total)
            changed = before != (len(self._events), len(self._failures), len(self._calls))
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
        skew_s: float | None = None,
        authenticated_by: str | None = None,
    ) -> Appended:
        """Store a verified delivery; a body seen before only counts up its ``deliveries``.

        ``event`` is the parsed body (parsed here when left out). Returns once the event
        is committed; raises :class:`StoreError` if the file cannot be written.
        ``from_inbox`` is the inbox id of a delivery kept while the receiver was away: it
        leaves the inbox in the same transaction (``kept_while_away`` marks the row).
        ``skew_s``: its arrival minus its signature's time (the row's ``skew_s``).
        ``authenticated_by``: ``"signature"``, or ``"url"`` for a callback URL's unsigned request.
        """
        return self.append_many(
            [(body, event, skew_s, authenticated_by)],
            received_at=received_at,
            kept_while_away=kept_while_away,
            from_inbox=from_inbox,
        )[0]

    def append_many(
        self,
        deliveries: Iterable[
            Body
            | tuple[Body, Mapping[str, Any] | None]
            | tuple[Body, Mapping[str, Any] | None, float | None]
            | tuple[Body, Mapping[str, Any] | None, float | None, str | None]
        ],
        *,
        received_at: datetime | float | None = None,
        kept_while_away: bool = False,
        from_inbox: int | None = None,
    ) -> list[Appended]:
        """Store many deliveries in one transaction (bulk imports, replays, benchmarks).

        Each is a body, or ``(body, parsed event or None)``, or that and its ``skew_s``, or
        that and how it was authenticated.
        """
        self._check_writable()
        prepared = []
        for item in deliveries:
            body, event, skew, by = (
                (*item, None, None)[:4] if isinstance(item, tuple) else (item, None, None, None)
            )
            raw = body_bytes(body)
            parsed = parse_event(raw) if event is None else event
            prepared.append((raw, hashlib.sha256(raw).digest(), normalize(parsed), skew, by))
        now = given_ns(received_at, "received_at")
        with self._lock:
            self._check_open()
            try:
                done = self._events.write(
                    self._db, prepared, now, kept_while_away, from_inbox, derive=self._derived
                )
            except sqlite3.Error as exc:
                self._derived.discard()
                raise StoreError(f"could not write to the event store {self._where()}: {exc}") from exc
            except Exception as exc:  # rolled back; a caller must still be told (a receiver answers 500)
                self._derived.discard()
                raise StoreError(
                    f"the event store {self._where()} failed: {type(exc).__name__}: {exc}"
                ) from exc
            self._derived.commit()
            # Memory follows the file only after the commit succeeded (type categories too).
            self._events.commit(
                done, now, (lambda row: self._jobs.match(self._db, row)) if self._jobs else None
            )
            self._changes += 1
            return done.results

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
        row = {
            "received_at": given_ns(received_at, "received_at"),
            "reason": reason,
            "status": int(status),
            "explanation": explanation,
            "headers": redact_headers(headers),
            "body_preview": body_preview(raw),
            "body_bytes": len(raw),
            "remote": remote,
            "path": path,
            "details": details,
        }
        self._check_writable()
        with self._lock:
            self._check_open()
            failure_id = self._failures.add(self._db, row, from_inbox, raw)
            self._changes += 1
            return failure_id

    def add_call(
        self,
        kind: str,
        name: str,
        *,
        method: str,
        status: int,
        latency_s: float,
        parameters: Mapping[str, Any],
        answer: str | None = None,
        error: str | None = None,
        conversation_id: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        remote: str | None = None,
        received_at: datetime | float | None = None,
    ) -> int:
        """Record an answered agent-tool or call-start request (headers redacted); returns its id."""
        row = {
            "received_at": given_ns(received_at, "received_at"),
            "kind": kind,
            "name": name,
            "method": method,
            "status": int(status),
            "latency_s": float(latency_s),
            "parameters": dict(parameters),
            "answer": answer,
            "error": error,
            "conversation_id": conversation_id,
            "headers": redact_headers(headers),
            "remote": remote,
        }
        self._check_writable()
        with self._lock:
            self._check_open()
            call_id = self._calls.add(self._db, row)
            self._changes += 1
            return call_id

    def expect(
        self,
        job_id: str,
        *,
        submitted_at: datetime | float | None = None,
        kind: str | None = None,
        overdue_after: float = _jobs.OVERDUE_S,
    ) -> None:
        """Announce a submitted job: a Studio project or chapter conversion (its ``project_id``
        or ``chapter_id``), a speech-to-text ``request_id``, a conversation id, ...

        When its callback arrives (the first event after ``submitted_at``, default now, whose
        ``request_id``, ``conversation_id`` or ``chapter_id`` is ``job_id``, or a project
        conversion's ``project_id``), the event's ``turnaround_s`` is the time from submission
        to arrival; it works whichever comes first. Still waiting ``overdue_after`` seconds
        later, the job shows as ``overdue`` in :attr:`jobs`.
        """
        submitted = given_ns(submitted_at, "submitted_at")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"job_id is the id of the job (a non-empty string), not {job_id!r}")
        overdue = float(overdue_after)
        if not overdue > 0:
            raise ValueError(f"overdue_after={overdue_after!r}: give a number of seconds above 0")
        with self._lock:
            self._check_open()
            try:
                self._jobs.expect(self._db, job_id, submitted, kind, overdue)
            except sqlite3.Error as exc:
                raise StoreError(f"could not record a job in the event store {self._where()}: {exc}") from exc
            self._changes += 1

    # -- reading -----------------------------------------------------------------------
    @property
    def jobs(self) -> pd.DataFrame:
        """Jobs announced with :meth:`expect`: waiting, overdue, or arrived with turnaround and outcome."""
        with self._lock:
            jobs, received = self._jobs.snapshot()
        return _jobs.jobs_frame(jobs, received, self.events, time.time_ns())

    @property
    def events(self) -> pd.DataFrame:
        """Every accepted event, oldest first, indexed by ``id`` (a read-only snapshot; O(1) to get)."""
        self._fresh()
        with self._lock:
            make = self._events.snapshot()
        return make()

    def failure_body(self, failure_id: int) -> bytes:
        """The whole body of a rejected delivery, to replay it; kept up to 1 MiB a body and 64 MiB
        in all (the newest), in the file only. Raises KeyError when it is not kept."""
        with self._lock:
            self._check_open()
            body = self._failures.body(self._db, int(failure_id)) if failure_id > 0 else None
        if body is None:
            raise KeyError(
                f"the body of failure {failure_id} is not kept (none came, it was over 1 MiB, it was "
                "let go to keep the newest 64 MiB, or the failure was never saved to the file)"
            )
        return body

    @property
    def failures(self) -> pd.DataFrame:
        """The newest ``max_failures`` rejected deliveries, oldest first, indexed by ``id``."""
        self._fresh()
        with self._lock:
            make = self._failures.snapshot()
        return make()

    def _derived_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        self._fresh()
        with self._lock:
            # A closed store keeps what it had loaded, as its events do (none if never read).
            if not self._derived.loaded and not self._closed:
                try:
                    self._derived.load(
                        self._db, writable=not self.readonly, path=self.path, store_id=self._store_id()
                    )
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot read the event store {self._where()}: {exc}") from exc
            return self._derived.frames()

    @property
    def turns(self) -> pd.DataFrame:
        """One row per transcript turn of every post-call event, oldest first, indexed by ``id``.

        Its conversation and agent, ``turn`` (from 0), ``role``, ``said_at`` and
        ``time_in_call_secs``, ``message_chars``, ``interrupted``, ``source_medium``, its
        ``tool_calls``, LLM tokens in and out, the caller's ``wait_s`` before an agent turn
        (see :func:`elwh_nb.latency`) and one column of seconds per stage metric
        (``convai_llm_service_ttfb``, ..., and any new name). Derived once, when the event was
        stored; reading is O(1).
        """
        return self._derived_frames()[0]

    @property
    def tool_calls(self) -> pd.DataFrame:
        """One row per tool call in a transcript, joined to its result, indexed by ``id``.

        ``result`` is shortened here; :meth:`tool_result` gives it whole.
        """
        return self._derived_frames()[1]

    @property
    def conversations(self) -> pd.DataFrame:
        """One row per conversation, indexed by ``conversation_id``, however many events told of it.

        Agent, status, times, cost and its charging split, termination, error, language, phone
        direction and call sid, ``call_successful``, summary, one column per evaluation
        criterion (``eval.<id>``: its result) and data-collection item (``data.<id>``: its
        value), tokens by model, turn and tool counts, the median ``wait_s`` and per-stage
        medians (``<metric>_p50``) of its turns, and ``formats`` (json, otel or both).
        """
        return self._derived_frames()[2]

    def tool_result(self, tool_call_id: int) -> str | None:
        """A tool call's whole result, as the transcript gave it."""
        with self._reading() as db:
            row = db.execute("SELECT result FROM tool_calls WHERE id = ?", (int(tool_call_id),)).fetchone()
        if row is None:
            raise KeyError(tool_call_id)
        return None if row[0] is None else str(row[0])

    def arrays_after(self, after: int, limit: int) -> Arrays:
        """Up to ``limit`` events with ids over ``after``, as whole columns of the file's values.

        Read from memory, not the file (what the hub service sends a reader; see :mod:`.colcache`
        for the columns). ``deliveries`` of the result is their total.
        """
        self._fresh()
        with self._lock:
            views = self._events.columns.snapshot()
            types = list(self._events.types.names)
        start = int(np.searchsorted(views["id"], after, side="right"))
        columns = {c.name: views[c.name][start : start + limit] for c in EVENTS.loaded}
        return Arrays(columns, types, int(columns["deliveries"].sum()))

    @property
    def calls(self) -> pd.DataFrame:
        """Every agent-tool and call-start request answered, oldest first, indexed by ``id``."""
        self._fresh()
        with self._lock:
            make = self._calls.snapshot()
        return make()

    # -- history -----------------------------------------------------------------------
    def history_batch(self, after: int, max_rows: int, max_bytes: int = _history.BATCH_BYTES) -> pa.Table:
        """Events with ids over ``after`` as an Arrow table of the export's columns (needs pyarrow)."""
        with self._reading() as db:
            return _history.read_batch(db, after, max_rows, max_bytes)

    def derived_batch(self, table: str, after: int, max_rows: int) -> pa.Table:
        """Turns or tool calls (``table``) with ids over ``after`` as Arrow, as exported (needs pyarrow)."""
        with self._reading() as db:
            return _history_calls.read_batch(db, _history_calls.APPENDED[table], after, max_rows)

    def export_parquet(self, directory: str | os.PathLike[str]) -> _history.Exported:
        """Append the events not yet exported to ``directory/events/`` as Parquet, partitioned by
        day, with the turns and tool calls since the last export and every conversation.

        Rows are snapshots (``deliveries`` as at the export); see :mod:`elwh_nb._core.history`.
        Needs pyarrow (``pip install 'elwh-nb[history]'``).
        """
        return _history.export(self, directory)

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
            return dict(self._failures.counts)

    @property
    def counts(self) -> dict[str, int]:
        """Counters: ``events`` (distinct), ``deliveries`` (repeats too), ``duplicates``, ``failures``."""
        self._fresh()
        with self._lock:
            n, deliveries = len(self._events), self._events.deliveries
            return {
                "events": n,
                "deliveries": deliveries,
                "duplicates": deliveries - n,
                "failures": sum(self._failures.counts.values()),
            }

    def close(self) -> None:
        """Close the file (a big store first saves its columns beside it, for a quick reopening).

        DataFrames handed out stay usable; their payloads no longer load.
        """
        with self._lock:
            if not self._closed:
                self._keep_columns()
                self._keep_derived()
            super().close()

    def _keep_derived(self) -> None:
        """Save the derived tables' columns beside the file (see :mod:`.derived_copy`), if many."""
        store_id = self._store_id()
        if self.path is None or self.readonly or store_id is None:
            return
        try:
            self._derived.save(self._db, self.path, store_id)
        except (OSError, sqlite3.Error, ValueError, TypeError) as exc:
            _colcache.log.warning("could not keep a copy of the turns beside %s: %s", self.path, exc)

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
