"""The events table: appending with deduplication by body, and its columns in memory.

A body seen before only counts up its row's ``deliveries``. Memory follows the file only
after a commit (see :meth:`Events.commit`), so a rolled-back batch leaves nothing behind,
not even a new event type.
"""

from __future__ import annotations

import contextlib
import gc
import math
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from . import inbox as _inbox
from .codes import Codes
from .columns import Columns
from .frames import PayloadMaker, frame
from .schema import EVENTS, NAT

#: The INSERT for a body written at once (``?``) or in pieces after it (``zeroblob(?)``).
_INSERT = {value: EVENTS.insert(body=value) for value in ("?", "zeroblob(?)")}
#: A raw body, its SHA-256, its normalised record, its skew (see :mod:`.clock`; None: unsigned),
#: and how it was authenticated (see :mod:`.callback_urls`; None: appended by code, not received).
Prepared = tuple[bytes | bytearray, bytes, dict[str, Any], float | None, str | None]


class Derive(Protocol):
    """What writes the rows derived from an event (see :mod:`.derived`)."""

    def wants(self, record: dict[str, Any]) -> bool: ...

    def write(self, db: sqlite3.Connection, event_id: int, received_ns: int, event: Any) -> None: ...


@dataclass(frozen=True)
class Appended:
    """What :meth:`EventStore.append` did: the event's ``id``, and whether it was a repeat."""

    __module__ = "elwh_nb"  # shown where it is imported from (as httpx does)

    id: int
    duplicate: bool
    deliveries: int


@dataclass
class Arrays:
    """Rows as whole columns (those of the file's SELECT), from a column copy or a hub service.

    ``event_type`` holds codes into ``types`` (-1: none); ``deliveries`` is their total.
    """

    columns: dict[str, np.ndarray[Any, Any]]
    types: list[str]
    deliveries: int


@dataclass
class Written:
    """What a transaction wrote, for memory to follow once it is committed."""

    results: list[Appended]
    new_rows: list[dict[str, Any]]
    repeats: list[tuple[int, int]]  # (position in memory, deliveries now)


def _since(start_ns: int, received_ns: int) -> float:
    """Seconds from ``start_ns`` to arrival (delivery lag, turnaround); NaN without a start."""
    return math.nan if start_ns == NAT else (received_ns - start_ns) / 1e9


def _all_since(start: np.ndarray[Any, Any], received: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """:func:`_since` of whole columns."""
    return np.where(start != NAT, (received - start) / 1e9, math.nan)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off the garbage collector while a million payload objects are made at once.

    Each batch of new objects would otherwise set off collections that walk all of them
    again (about half of a big store's reopening); they are freed by reference counting as usual.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class Events:
    """Accepted events in memory (columns of :data:`EVENTS`), their types and delivery count.

    Callers hold the store's lock.
    """

    def __init__(self, payload: PayloadMaker) -> None:
        self.columns = Columns(EVENTS.dtypes)
        self.types = Codes(self.columns, "event_type")
        self.deliveries = 0  # repeats included
        self._payload = payload

    def __len__(self) -> int:
        return len(self.columns)

    def last_id(self) -> int:
        return int(self.columns.snapshot()["id"][-1]) if len(self.columns) else 0

    def load(self, db: sqlite3.Connection, after: int = 0) -> int:
        """Read the rows with ids over ``after``, a column at a time; returns how many."""
        cur = db.execute(f"{EVENTS.select_in(db)} WHERE id > ? ORDER BY id", (after,))
        read = 0
        while rows := cur.fetchmany(50_000):
            read += len(rows)
            columns = EVENTS.from_file(rows)
            ids, types = columns["id"], columns["event_type"]
            columns["event_type"] = [self.types.code(t) for t in types]
            received = columns["received_at"]
            columns["delivery_lag_s"] = list(map(_since, columns["event_timestamp"], received))
            # Jobs announced with expect() replace it (Jobs.load, after this).
            columns["turnaround_s"] = list(map(_since, columns["submitted_at"], received))
            with _collector_paused():
                columns["payload"] = list(map(self._payload, ids, types))
            self.columns.append_rows(columns)
            self.deliveries += sum(columns["deliveries"])
        return read

    def restore(self, cached: Arrays) -> None:
        """Append rows given as arrays (newer than those in memory), without a row at a time."""
        columns: dict[str, Any] = dict(cached.columns)
        recode = np.array([*(self.types.code(t) for t in cached.types), -1])  # code -1 stays -1
        columns["event_type"] = codes = recode[columns["event_type"]]
        names = np.array([*self.types.names, None], dtype=object)[codes]
        received = columns["received_at"]
        columns["delivery_lag_s"] = _all_since(columns["event_timestamp"], received)
        columns["turnaround_s"] = _all_since(columns["submitted_at"], received)
        with _collector_paused():
            columns["payload"] = list(map(self._payload, columns["id"].tolist(), names.tolist()))
        self.columns.append_rows(columns)
        self.deliveries += cached.deliveries

    def write(
        self,
        db: sqlite3.Connection,
        prepared: list[Prepared],
        now: int,
        away: bool,
        from_inbox: int | None,
        derive: Derive | None = None,
    ) -> Written:
        """Insert the deliveries in one transaction (raises, rolled back, on any error).

        ``derive`` writes what is derived from each new event, in the same transaction.
        """
        done = Written([], [], [])
        pending: dict[bytes, int] = {}  # repeats inside this batch
        # One statement commits by itself; a batch, a body written in pieces, or an event with
        # rows derived from it is one transaction.
        batch = (
            len(prepared) > 1
            or from_inbox is not None
            or any(_inbox.in_pieces(p[0]) for p in prepared)
            or (derive is not None and any(derive.wants(p[2]) for p in prepared))
        )
        if batch:
            db.execute("BEGIN IMMEDIATE")
        try:
            for raw, digest, record, skew, authenticated_by in prepared:
                row = EVENTS.from_record(record)  # event_type stays a name until the commit
                row.update(received_at=now, last_received_at=now, deliveries=1, body_bytes=len(raw))
                row["skew_s"] = math.nan if skew is None else skew
                row["authenticated_by"] = authenticated_by
                row["kept_while_away"] = away
                value, blob = _inbox.blob_value(db, raw)
                # A big body seen before: counted without building its row, whose record
                # SQLite would hold whole (twice) before the unique index refused it.
                if value != "?" and self._repeat(db, digest, now, done, pending):
                    continue
                try:
                    cur = db.execute(
                        _INSERT[value], EVENTS.params({**row, "body_sha256": digest, "body": blob})
                    )
                    _inbox.fill_blob(db, "events", "body", int(cur.lastrowid or 0), raw)
                except sqlite3.IntegrityError:  # the same body again: count a delivery
                    if not self._repeat(db, digest, now, done, pending):
                        raise  # some other constraint failed
                    continue
                event_id = int(cur.lastrowid or 0)
                done.results.append(Appended(event_id, False, 1))
                pending[digest] = len(done.new_rows)
                row["id"] = event_id
                row["delivery_lag_s"] = _since(row["event_timestamp"], now)
                row["turnaround_s"] = _since(row["submitted_at"], now)  # an expect()ed job's on commit
                row["payload"] = self._payload(event_id, row["event_type"])
                done.new_rows.append(row)
                if derive is not None and derive.wants(record):
                    derive.write(db, event_id, now, record["payload"])
            if from_inbox is not None:
                db.execute("DELETE FROM inbox WHERE id = ?", (from_inbox,))
            if batch:
                db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return done

    def _repeat(
        self, db: sqlite3.Connection, digest: bytes, now: int, done: Written, pending: dict[bytes, int]
    ) -> bool:
        updated = db.execute(
            "UPDATE events SET deliveries = deliveries + 1, last_received_ns = ? WHERE body_sha256 = ?",
            (now, digest),
        )
        if updated.rowcount != 1:
            return False
        event_id, count = db.execute(
            "SELECT id, deliveries FROM events WHERE body_sha256 = ?", (digest,)
        ).fetchone()
        done.results.append(Appended(event_id, True, count))
        if digest in pending:
            done.new_rows[pending[digest]].update(deliveries=count, last_received_at=now)
        elif (position := self.columns.position("id", event_id)) is not None:
            done.repeats.append((position, count))
        return True

    def commit(self, done: Written, now: int, added: Callable[[dict[str, Any]], None] | None) -> None:
        """Memory follows a committed write; ``added`` sees each new row."""
        for row in done.new_rows:
            row["event_type"] = self.types.code(row["event_type"])
            self.columns.append(row)
            if added is not None:
                added(row)
        for position, count in done.repeats:
            self.columns.update(position, {"deliveries": count, "last_received_at": now})
        self.deliveries += len(done.results)

    def snapshot(self) -> Callable[[], pd.DataFrame]:
        """The events as they are now: call the result (without the lock) for the frame."""
        views, types = self.columns.snapshot(), self.types.dtype()
        return lambda: frame(EVENTS, views, {"event_type": types})
