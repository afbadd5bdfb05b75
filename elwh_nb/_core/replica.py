"""A store in memory that holds rows another store made: what a hub connection reads into.

The rows come already made (events as column arrays, failures and the derived tables as
rows of their :mod:`.schema` tables), so this store never verifies, derives or appends; its
methods are the only ones that write it, each under the store's lock. Who fetches the rows,
and how, is the caller's business (see ``_server/hubclient.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .calls import CallLog
from .derived import REPLACED_KEY, DerivedTables
from .events import Events
from .failures import FailureLog
from .frames import StoredPayload
from .jobs import Jobs
from .schema import FAILURES, TURNS, Table
from .store import EventStore


def _insert(table: Table, names: Sequence[str], *, replace: bool = False) -> str:
    """An INSERT of rows holding the columns ``names`` of ``table`` (its file names), in order."""
    known = {c.file_name for c in table.stored}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{table.name} has no columns {unknown}")
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    return f"{verb} INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


class Replica(EventStore):
    """An in-memory :class:`EventStore` filled with another store's rows, as they are pulled."""

    def __init__(self, max_failures: int) -> None:
        super().__init__(":memory:", max_failures=max_failures)

    def touch(self) -> None:
        """Say that something changed (a dashboard over this store refreshes)."""
        with self._lock:
            self._changes += 1

    def last_event_id(self) -> int:
        with self._lock:
            return self._events.last_id()

    def last_failure_id(self) -> int:
        with self._lock:
            return self._failures.last_id()

    def add_events(self, arrays: Any, deliveries: int | None) -> bool:
        """Events as the wire brings them (column arrays of the events table), and the source's
        count of deliveries (repeats included); False once closed (a pull may end after close())."""
        with self._lock:
            if self._closed:
                return False
            self._events.restore(arrays)
            if deliveries is not None:
                self._events.deliveries = deliveries
            return True

    def add_failures(
        self, names: Sequence[str], rows: Sequence[Sequence[Any]], counts: Mapping[str, int]
    ) -> bool:
        """Failure rows (the columns ``names`` of :data:`.schema.FAILURES`) and the source's
        counts by reason; False when the store is closed."""
        with self._lock:
            if self._closed:
                return False
            self._db.executemany(_insert(FAILURES, names), rows)
            self._db.execute("DELETE FROM failure_counts")
            self._db.executemany("INSERT INTO failure_counts VALUES (?, ?)", counts.items())
            self._failures.load(self._db, after=self._failures.last_id())
            self._db.execute("DELETE FROM failures")  # memory holds them; the file part stays small
            return True

    def derived_after(self, table: Table) -> int | None:
        """The last id of ``table`` (turns, tool calls, conversations) held; None once closed."""
        with self._lock:
            if self._closed:
                return None
            return int(self._db.execute(f"SELECT coalesce(max(id), 0) FROM {table.name}").fetchone()[0])

    def add_derived(self, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]) -> bool:
        """Rows of a derived table (its columns ``names``; a row seen before is replaced);
        False once closed."""
        with self._lock:
            if self._closed:
                return False
            self._db.executemany(_insert(table, names, replace=True), rows)
            return True

    def reload_derived(self) -> None:
        """Let the three frames follow what was added (if they were ever read)."""
        with self._lock:
            if self._derived.loaded and not self._closed:
                self._derived.load(self._db, writable=False)

    def replaced_seen(self) -> str:
        """The source's count of replaced turns when its turns were last read ("" for never)."""
        with self._lock:
            if self._closed:
                return ""
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (REPLACED_KEY,)).fetchone()
            return "" if row is None else str(row[0])

    def turns_replaced(self, replaced: str) -> None:
        """The source replaced turns: forget the turns and tool calls held, to read them again."""
        with self._lock:
            if self._closed:
                return
            self._db.execute(f"DELETE FROM {TURNS.name}")
            self._db.execute("DELETE FROM tool_calls")
            self._db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (REPLACED_KEY, replaced),
            )

    def forget(self) -> None:
        """Hold nothing (the source's store was replaced: its rows are read again from the first)."""
        with self._lock:
            if self._closed:
                return
            self._events = Events(functools.partial(StoredPayload, self))
            self._jobs = Jobs(self._events.columns)
            self._failures = FailureLog(self._failures.max_failures, self._failures.max_bytes)
            self._calls = CallLog(self._calls.max_rows, self._calls.max_bytes)
            self._db.execute("DELETE FROM failure_counts")
            self._db.executescript("DELETE FROM turns; DELETE FROM tool_calls; DELETE FROM conversations;")
            self._derived = DerivedTables()
            self._changes += 1
