"""The turns, tool calls and conversations the store derives from post-call events, in the file and in memory.

Each post-call event is derived (:func:`.derive.derive`) once, as it is stored, in the same
transaction: its rows go to the ``turns``, ``tool_calls`` and ``conversations`` tables, so
a reopened store reads rows, never bodies. Memory loads them on first use (a store nobody
analyses pays nothing) and then follows each commit, so that reading a frame costs O(1),
whatever the store holds. A conversation is one row however many events tell of it: both
transcript formats, or a body sent again. Its turns are those of the first event that had
any, except that a JSON transcript's replace an OpenTelemetry one's (they say more); the
conversation's fields are merged (:func:`.derive.merge`).

Names of their own become columns of their own in memory: a stage metric nobody listed, an
evaluation criterion (``eval.<id>``), a data-collection item (``data.<id>``), a model's tokens
(``tokens.<model>``), a stage's median (``<metric>_p50``); at most :data:`.derive.MAX_NAMES`
of each (the rest stay in the file). Callers hold the store's lock.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import derived_copy
from .columns import Columns
from .derive import DERIVED_TYPES, MAX_NAMES, Conversation, Derived, ToolCall, Turn, derive, merge
from .frames import frame
from .schema import CONVERSATIONS, NAT, STAGES, TOOL_CALLS, TURNS, Table, clip, to_ns

#: The tables' indexes (made with the tables; see .storefile).
DDL = (
    TURNS.ddl,
    TOOL_CALLS.ddl,
    CONVERSATIONS.ddl,
    "CREATE INDEX IF NOT EXISTS turns_event ON turns (event_id)",
    "CREATE INDEX IF NOT EXISTS tool_calls_event ON tool_calls (event_id)",
    "CREATE INDEX IF NOT EXISTS conversations_event ON conversations (event_id)",
)
TABLES = (TURNS, TOOL_CALLS, CONVERSATIONS)
#: The meta key counting replaced turns (an OpenTelemetry transcript's by a JSON one's):
#: a reader in another process that sees it move reloads.
REPLACED_KEY = "turns_replaced"
#: The meta key naming the first event derived as it was stored: a file from before this
#: version derives its older post-call events once, at the first read (see :meth:`DerivedTables.load`).
SINCE_KEY = "derived_since"
SINCE_DDL = (
    f"INSERT OR IGNORE INTO meta VALUES ('{SINCE_KEY}', (SELECT coalesce(max(id), 0) + 1 FROM events))"
)
#: Names and the kind of column they make: (prefix, Conversation field, dtype, fill).
_DYNAMIC = (
    ("eval.", "evaluation", object, None),
    ("data.", "data", object, None),
    ("tokens.", "tokens", np.float64, math.nan),
)
_P50 = "_p50"
_CONVERSATION_FIELDS = tuple(Conversation.__dataclass_fields__)


def _fills(table: Table) -> dict[str, Any]:
    return {c.name: math.nan for c in table.memory if c.kind == "number"}


def _ns(seconds: float) -> int:
    return NAT if math.isnan(seconds) else to_ns(seconds)


class _Rows:
    """One table's rows in memory: its fixed columns and the named ones that came since."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.columns = Columns(table.dtypes, fills=_fills(table))
        self.named: dict[str, int] = {}  # names added by kind (prefix)
        self._have: set[str] = set(table.dtypes)
        self._frame: tuple[int, pd.DataFrame] | None = None  # (columns' version, frame)

    def ensure(self, name: str, dtype: Any, fill: Any, kind: str) -> bool:
        """Make column ``name`` if it is new and its kind has room; whether it exists."""
        if name in self.table.dtypes:
            return False  # a name that is a column already stays in the file only
        if name in self._have:
            return True
        if self.named.get(kind, 0) >= MAX_NAMES:
            return False
        self.named[kind] = self.named.get(kind, 0) + 1
        self.columns.add_column(name, dtype, fill)
        self._have.add(name)
        return True

    def restore(self, columns: dict[str, np.ndarray[Any, Any]], kind: Any) -> None:
        """Append rows given as whole columns (a saved copy's), its named columns made first."""
        for name, values in columns.items():
            if name not in self.table.dtypes:
                fill = None if values.dtype == object else math.nan
                self.ensure(name, values.dtype, fill, kind(name))
        self.columns.append_rows({k: v for k, v in columns.items() if k in self._have})

    def last_id(self) -> int:
        if not len(self.columns):
            return 0
        return int(self.columns.snapshot()["id"].max())

    def frame(self, index: str = "id") -> pd.DataFrame:
        """The rows as a DataFrame, built again only after a change (the dashboard reads it at
        each refresh); a shallow copy, so a column the caller adds stays theirs."""
        version = self.columns.version
        if self._frame is None or self._frame[0] != version:
            self._frame = (version, frame(self.table, self.columns.snapshot(), {}, index=index))
        return self._frame[1].copy(deep=False)


@dataclass
class _Staged:
    """What a transaction wrote, for memory to follow once it is committed."""

    turns: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    replaced: bool = False


_STAGE_SET = frozenset(STAGES)


def _turn_row(turn: Turn, event_id: int, conversation: Conversation, started_ns: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": event_id,
        "conversation_id": conversation.conversation_id,
        "agent_id": conversation.agent_id,
        "turn": turn.turn,
        "role": turn.role,
        "said_at": (
            NAT
            if started_ns == NAT or math.isnan(turn.time_in_call_secs)
            else started_ns + int(turn.time_in_call_secs * 1e9)
        ),
        "time_in_call_secs": turn.time_in_call_secs,
        "message_chars": turn.message_chars,
        "interrupted": turn.interrupted,
        "source_medium": turn.source_medium,
        "tool_calls": turn.tool_calls,
        "llm_input_tokens": turn.llm_input_tokens,
        "llm_output_tokens": turn.llm_output_tokens,
        "wait_s": turn.wait_s,
    }
    metrics = turn.metrics
    for name in STAGES:
        row[name] = metrics.get(name, math.nan)
    others = {} if metrics.keys() <= _STAGE_SET else {k: v for k, v in metrics.items() if k not in _STAGE_SET}
    row["other_metrics"] = json.dumps(others) if others else None
    row["_others"] = others
    return row


def _tool_row(call: ToolCall, event_id: int, conversation: Conversation, started_ns: int) -> dict[str, Any]:
    at = call.time_in_call_secs
    return {
        "event_id": event_id,
        "conversation_id": conversation.conversation_id,
        "agent_id": conversation.agent_id,
        "turn": call.turn,
        "called_at": NAT if started_ns == NAT or math.isnan(at) else started_ns + int(at * 1e9),
        "tool_name": call.tool_name,
        "tool_type": call.tool_type,
        "request_id": call.request_id,
        "method": call.method,
        "url": call.url,
        "parameters": call.parameters,
        "latency_s": call.latency_s,
        "is_error": call.is_error,
        "tool_has_been_called": call.tool_has_been_called,
        "result": call.result,
    }


def _conversation_row(c: Conversation, event_id: int, events: int, received_ns: int) -> dict[str, Any]:
    row = {name: getattr(c, name) for name in _CONVERSATION_FIELDS if name in CONVERSATIONS.dtypes}
    row.update(
        event_id=event_id,
        events=events,
        received_at=received_ns,
        started_at=_ns(c.started_at),
        extra=json.dumps(c.extra, ensure_ascii=False, default=str),
        _conversation=c,
    )
    return row


def _conversation_from_file(row: Mapping[str, Any], extra: str) -> Conversation:
    """A conversation as the file holds it (to merge another event's into)."""
    c = Conversation(conversation_id=row["conversation_id"])
    for name in _CONVERSATION_FIELDS:
        if name in row and name not in ("started_at",):
            value = row[name]
            setattr(c, name, math.nan if value is None and isinstance(getattr(c, name), float) else value)
    started = row.get("started_at")
    c.started_at = math.nan if started is None else started / 1e9
    parts = json.loads(extra) if extra else {}
    for name in ("evaluation", "data", "tokens", "p50"):
        setattr(c, name, dict(parts.get(name) or {}))
    return c


def _insert_with_id(table: Table) -> str:
    return (
        table.insert()
        .replace(f"INSERT INTO {table.name} (", f"INSERT INTO {table.name} (id, ", 1)
        .replace("VALUES (", "VALUES (?,", 1)
    )


_INSERTS = {t.name: _insert_with_id(t) for t in TABLES}


def _next_id(db: sqlite3.Connection, table: Table) -> int:
    """An id above every id the table ever had (AUTOINCREMENT keeps the highest, deleted or not),
    so that a reader following ids (another process, an export) finds every new row after its last."""
    row = db.execute(
        f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "
        f"coalesce((SELECT max(id) FROM {table.name}), 0)) + 1",
        (table.name,),
    ).fetchone()
    return int(row[0])


def _insert(
    db: sqlite3.Connection, table: Table, rows: list[dict[str, Any]], first: int | None = None
) -> None:
    """Insert rows with ids from ``first`` (default: after the table's last; the caller holds the
    write transaction). Ids only grow, so a reader elsewhere finds new and changed rows after its last."""
    if not rows:
        return
    start = _next_id(db, table) if first is None else first
    for i, row in enumerate(rows, start=start):
        row["id"] = i
    db.executemany(_INSERTS[table.name], ([row["id"], *table.params(row)] for row in rows))


class DerivedTables:
    """The three tables in memory, loaded on first use, following each commit after that."""

    def __init__(self) -> None:
        self.loaded = False
        self._staged = _Staged()
        self._reset()

    def _reset(self) -> None:
        self.turns = _Rows(TURNS)
        self.tool_calls = _Rows(TOOL_CALLS)
        self.conversations = _Rows(CONVERSATIONS)
        self._where: dict[str, int] = {}  # conversation_id -> position in memory
        self._replaced: str | None = None

    @staticmethod
    def wants(record: Mapping[str, Any]) -> bool:
        """Whether a normalised record's event has rows to derive."""
        return record.get("event_type") in DERIVED_TYPES

    # -- writing (inside the store's transaction) ---------------------------------------
    def write(
        self, db: sqlite3.Connection, event_id: int, received_ns: int, event: Mapping[str, Any]
    ) -> None:
        """Derive an event's rows and write them; memory follows at :meth:`commit`."""
        derived = derive(event)
        if derived is None:
            return
        new = derived.conversation
        cid = new.conversation_id
        assert cid is not None
        cur = db.execute(f"{CONVERSATIONS.select} WHERE conversation_id = ?", (cid,)).fetchone()
        keep_rows: Derived | None = derived
        conversation_id = _next_id(db, CONVERSATIONS)
        if cur is None:
            merged, events, owner, first_ns = new, 1, event_id, received_ns
        else:
            names = [c.name for c in CONVERSATIONS.loaded]
            old_row = dict(zip(names, cur, strict=True))
            extra = db.execute("SELECT extra FROM conversations WHERE id = ?", (old_row["id"],)).fetchone()[0]
            old_row["started_at"] = None if old_row["started_at"] == NAT else old_row["started_at"]
            old = _conversation_from_file(old_row, extra)
            replace = "json" in new.formats and "json" not in old.formats and new.turns > 0
            if replace or (old.turns == 0 and old.tool_calls == 0 and new.turns > 0):
                if old.turns or old.tool_calls:
                    db.execute("DELETE FROM turns WHERE event_id = ?", (old_row["event_id"],))
                    db.execute("DELETE FROM tool_calls WHERE event_id = ?", (old_row["event_id"],))
                    db.execute(
                        "INSERT INTO meta VALUES (?, '1') ON CONFLICT (key) "
                        "DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                        (REPLACED_KEY,),
                    )
                    self._staged.replaced = True
                merged, owner = merge(old, new, new), event_id
            else:
                keep_rows = None
                merged, owner = merge(old, new, old), old_row["event_id"]
            events, first_ns = old_row["events"] + 1, old_row["received_at"]
            db.execute("DELETE FROM conversations WHERE id = ?", (old_row["id"],))
        if keep_rows is not None:
            started = _ns(new.started_at if not math.isnan(new.started_at) else merged.started_at)
            turns = [_turn_row(t, event_id, merged, started) for t in keep_rows.turns]
            calls = [_tool_row(c, event_id, merged, started) for c in keep_rows.tool_calls]
            _insert(db, TURNS, turns)
            _insert(db, TOOL_CALLS, calls)
            self._staged.turns += turns
            self._staged.tool_calls += calls
        row = _conversation_row(merged, owner, events, first_ns)
        _insert(db, CONVERSATIONS, [row], conversation_id)
        self._staged.conversations[cid] = row

    def commit(self) -> None:
        """Memory follows a committed write (when it is loaded; else the next load reads it)."""
        staged, self._staged = self._staged, _Staged()
        if not self.loaded:
            return
        if staged.replaced:
            self.loaded = False  # rows left the file: read it again when next used
            self._reset()
            return
        self._append_turns(staged.turns)
        self._append(self.tool_calls, staged.tool_calls)
        for cid, row in staged.conversations.items():
            self._put_conversation(cid, row)

    def discard(self) -> None:
        """Forget what a rolled-back transaction wrote."""
        self._staged = _Staged()

    def _append(self, rows: _Rows, new: list[dict[str, Any]]) -> None:
        clipped = [c.name for c in rows.table.memory if c.kind == "clipped"]
        for row in new:
            values = {k: v for k, v in row.items() if k in rows.table.dtypes}
            for name in clipped:  # as a read of the file gives it
                values[name] = clip(values.get(name))
            rows.columns.append(values)

    def _append_turns(self, new: list[dict[str, Any]]) -> None:
        for row in new:
            values = {k: v for k, v in row.items() if k in TURNS.dtypes}
            for name, seconds in row["_others"].items():
                if self.turns.ensure(name, np.float64, math.nan, "metric"):
                    values[name] = seconds
            self.turns.columns.append(values)

    def _conversation_values(self, row: Mapping[str, Any]) -> dict[str, Any]:
        c: Conversation = row["_conversation"]
        values = {k: v for k, v in row.items() if k in CONVERSATIONS.dtypes}
        for prefix, part, dtype, fill in _DYNAMIC:
            for key, value in getattr(c, part).items():
                if self.conversations.ensure(prefix + key, dtype, fill, prefix):
                    values[prefix + key] = value
        for metric, seconds in c.p50.items():
            if self.conversations.ensure(metric + _P50, np.float64, math.nan, _P50):
                values[metric + _P50] = seconds
        return values

    def _put_conversation(self, cid: str, row: Mapping[str, Any]) -> None:
        values = self._conversation_values(row)
        position = self._where.get(cid)
        if position is None:
            self._where[cid] = self.conversations.columns.append(values)
        else:
            # The named columns it no longer has are emptied too (the merge kept what it had).
            for name in self.conversations.columns.names:
                if name not in values and name not in CONVERSATIONS.dtypes:
                    values[name] = None if name.startswith(("eval.", "data.")) else math.nan
            self.conversations.columns.update(position, values)

    # -- reading ------------------------------------------------------------------------
    def backfill(self, db: sqlite3.Connection) -> int:
        """Derive the post-call events a file kept before it derived them as they came; how many.

        Each body is parsed once, here, and never again (its rows stay in the file).
        """
        since = int(_meta(db, SINCE_KEY) or 1)
        if since <= 1:
            return 0
        from .jsonparse import loads
        from .storefile import transaction  # (it imports this module)

        done = 0
        with transaction(db):
            types = ",".join("?" * len(DERIVED_TYPES))
            cur = db.execute(
                f"SELECT id, received_ns, body FROM events "
                f"WHERE id < ? AND event_type IN ({types}) ORDER BY id",
                (since, *DERIVED_TYPES),
            )
            for event_id, received_ns, body in cur.fetchall():
                try:
                    event = loads(bytes(body))
                except (ValueError, RecursionError):
                    continue
                if isinstance(event, dict):
                    self.write(db, int(event_id), int(received_ns), event)
                    done += 1
            db.execute("UPDATE meta SET value = '1' WHERE key = ?", (SINCE_KEY,))
        self.discard()  # what it wrote is read from the file next
        return done

    def load(
        self,
        db: sqlite3.Connection,
        writable: bool = True,
        path: Path | None = None,
        store_id: str | None = None,
    ) -> None:
        """Read the tables (all of them the first time; afterwards what was added since).

        A writable file from before this version first derives its older events (:meth:`backfill`).
        The first time, a copy of the columns beside ``path`` that matches the file gives the
        rows it holds (see :mod:`.derived_copy`).
        """
        if not self.loaded and writable:
            self.backfill(db)
        if not writable and not _has_tables(db):
            self.loaded = True  # an older file, opened read-only: it has none to give
            return
        # One read transaction: a writer elsewhere commits between our statements otherwise.
        snapshot = not db.in_transaction
        if snapshot:
            db.execute("BEGIN")
        try:
            self._read_file(db, path, store_id)
        finally:
            if snapshot and db.in_transaction:
                db.execute("COMMIT")

    def _read_file(self, db: sqlite3.Connection, path: Path | None, store_id: str | None) -> None:
        replaced = _meta(db, REPLACED_KEY)
        if self.loaded and replaced != self._replaced:
            self.loaded = False
            self._reset()
        self._replaced = replaced
        if not self.loaded and path is not None and store_id is not None:
            copy = derived_copy.load(path, store_id, db)
            if copy is not None:
                self._restore(copy)
        for rows in (self.turns, self.tool_calls):
            after = rows.last_id()
            first = len(rows.columns)
            for columns in _read(db, rows.table, after):
                rows.columns.append_rows(columns)
            if rows is self.turns:
                self._load_other_metrics(db, after, first)
        after = self.conversations.last_id()
        for columns in _read(db, CONVERSATIONS, after):
            extras = dict(
                db.execute(
                    "SELECT id, extra FROM conversations WHERE id > ? AND id <= ?", (after, columns["id"][-1])
                )
            )
            for i in range(len(columns["id"])):
                row = {name: values[i] for name, values in columns.items()}
                c = _conversation_from_file(
                    {**row, "started_at": None if row["started_at"] == NAT else row["started_at"]},
                    extras.get(row["id"], ""),
                )
                row["_conversation"] = c
                self._put_conversation(row["conversation_id"], row)
            after = int(columns["id"][-1])
        self.loaded = True

    def _restore(self, copy: derived_copy.Tables) -> None:
        self.turns.restore(copy["turns"], lambda name: "metric")
        self.tool_calls.restore(copy["tool_calls"], lambda name: "metric")
        self.conversations.restore(
            copy["conversations"],
            lambda name: _P50 if name.endswith(_P50) else name.split(".", 1)[0] + ".",
        )
        self._where = {cid: i for i, cid in enumerate(copy["conversations"]["conversation_id"].tolist())}

    def save(self, db: sqlite3.Connection, path: Path, store_id: str) -> bool:
        """Keep a copy of the columns beside ``path`` when there are many turns (and they are loaded)."""
        if not self.loaded or len(self.turns.columns) < derived_copy.MIN_TURNS:
            return False
        tables = {
            rows.table.name: rows.columns.snapshot()
            for rows in (self.turns, self.tool_calls, self.conversations)
        }
        return derived_copy.save(path, store_id, db, tables)

    def _load_other_metrics(self, db: sqlite3.Connection, after: int, first: int) -> None:
        rows = db.execute(
            "SELECT id, other_metrics FROM turns WHERE id > ? AND other_metrics IS NOT NULL ORDER BY id",
            (after,),
        ).fetchall()
        if not rows:
            return
        ids = self.turns.columns.snapshot()["id"][first:]
        for turn_id, text in rows:
            position = first + int(np.searchsorted(ids, turn_id))
            values = {
                name: seconds
                for name, seconds in json.loads(text).items()
                if self.turns.ensure(name, np.float64, math.nan, "metric")
            }
            self.turns.columns.update(position, values)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(turns, tool_calls, conversations) as they are now (the caller has loaded)."""
        return self.turns.frame(), self.tool_calls.frame(), self.conversations.frame("conversation_id")


def _has_tables(db: sqlite3.Connection) -> bool:
    names = {t.name for t in TABLES}
    have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return names <= have


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _read(db: sqlite3.Connection, table: Table, after: int) -> Any:
    """The table's rows with ids over ``after``, as in-memory columns, 50,000 at a time; turns
    and tool calls with their conversation's id and agent (from its row: see .schema)."""
    cur = db.execute(f"{table.select_in(db)} WHERE id > ? ORDER BY id", (after,))
    while rows := cur.fetchmany(50_000):
        columns = table.from_file(rows)
        if table is not CONVERSATIONS:
            columns.update(_owners(db, np.asarray(columns["event_id"], dtype=np.int64)))
        yield columns


def _owners(db: sqlite3.Connection, event_ids: np.ndarray[Any, Any]) -> dict[str, list[Any]]:
    """The conversation id and agent of the conversation each event's rows belong to."""
    found = db.execute(
        "SELECT event_id, conversation_id, agent_id FROM conversations WHERE event_id BETWEEN ? AND ?",
        (int(event_ids.min()), int(event_ids.max())),
    ).fetchall()
    owners, cids, agents = zip(*found, strict=True) if found else ((), (), ())
    where = pd.Index(np.asarray(owners, dtype=np.int64)).get_indexer(pd.Index(event_ids))
    cid_of = np.asarray([*cids, None], dtype=object)  # -1 (none found) takes the None
    agent_of = np.asarray([*(None if a is None else sys.intern(a) for a in agents), None], dtype=object)
    return {"conversation_id": cid_of[where].tolist(), "agent_id": agent_of[where].tolist()}
