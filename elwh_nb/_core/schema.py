"""The columns of the store's two tables, each named once, and everything derived from them.

A :class:`Column` says where a value lives (the SQLite file, memory, or both), its kind
(which fixes its in-memory dtype and how it converts between a normalised record, the file
and memory) and whether it comes from the normalised record. From :data:`EVENTS` and
:data:`FAILURES` come the DDL, the INSERT and its parameters, the SELECT that loads a
file, the in-memory row and the dtypes. Adding an event column is one line here plus its
normaliser in :mod:`.normalize`; old files gain it with ``ALTER TABLE`` when opened.
Stdlib only (NumPy takes the dtypes by name).
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any

NAT = -(1 << 63)  # how a missing time is kept in memory (pandas' NaT); NULL in the file
_MAX_NS = (1 << 63) - 1  # 2262-04-11; NAT + 1 is 1677-09-21
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_ns(value: datetime | float | None) -> int:
    """Nanoseconds since the epoch; NAT for None and for times pandas cannot hold (1677-2262)."""
    if value is None:
        return NAT
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        delta = value - _EPOCH
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    else:
        ns = int(value * 1e9)
    return ns if NAT < ns <= _MAX_NS else NAT


def given_ns(value: datetime | float | None, name: str) -> int:
    """A time passed in by the caller (now when None), which must be one pandas can hold."""
    if value is None:
        return time.time_ns()
    ns = to_ns(value)
    if ns == NAT:
        raise ValueError(f"{name}={value!r} is outside the times pandas can hold (1677 to 2262)")
    return ns


def _intern(value: str | None) -> str | None:
    return None if value is None else sys.intern(value)


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _null_nat(value: int) -> int | None:
    return None if value == NAT else value


def _interned(column: Sequence[str | None]) -> list[str | None]:
    return [None if v is None else sys.intern(v) for v in column]


def _parsed(column: Sequence[str]) -> list[Any]:
    return [json.loads(v) for v in column]


def _maybe_to_file(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _maybe(column: Sequence[int | None]) -> list[bool | None]:
    return [None if v is None else bool(v) for v in column]


#: How much of a long text (a tool's result) memory and the frames hold; the file keeps it whole.
CLIP_CHARS = 200


def clip(value: str | None) -> str | None:
    """A "clipped" column's value in memory: at most CLIP_CHARS characters."""
    return value if value is None or len(value) <= CLIP_CHARS else value[: CLIP_CHARS - 1] + "…"


def _clipped(column: Sequence[str | None]) -> list[str | None]:
    return list(map(clip, column))


@dataclass(frozen=True)
class Kind:
    """How one kind of value is held in memory and converted from a record, to and from the file.

    A missing conversion means the value passes as it is; NumPy converts whole columns as
    they go into memory (a NULL read into a float64 column is NaN, 0/1 into bool).
    """

    dtype: str | None  # NumPy dtype in memory (category codes start as int8); None: file only
    from_record: Callable[[Any], Any] | None = None  # a normalised record's value -> memory
    to_file: Callable[[Any], Any] | None = None  # memory -> the file (an INSERT parameter)
    from_file: Callable[[Sequence[Any]], Sequence[Any]] | None = None  # a column read -> memory
    read: str = "{}"  # the SELECT's expression for the column


KINDS: dict[str, Kind] = {
    "int": Kind("int64"),
    "text": Kind("object"),
    "interned": Kind("object", _intern, from_file=_interned),  # few distinct values, one object each
    # NaN in memory, NULL in the file: SQLite binds a NaN as NULL itself (no conversion per value).
    "number": Kind("float64", _nan),
    # ns since the epoch (UTC), NaT when missing; NULL in the file, which names it <stem>_ns.
    "time": Kind("int64", to_ns, _null_nat, read=f"ifnull({{}}, {NAT})"),
    "category": Kind("int8"),  # codes into the store's categories (see codes.Codes); text in the file
    "flag": Kind("bool", bool, int),
    "maybe": Kind("object", to_file=_maybe_to_file, from_file=_maybe),  # True, False or None
    "clipped": Kind("object", from_file=_clipped),  # whole in the file, CLIP_CHARS in memory
    "json": Kind("object", to_file=json.dumps, from_file=_parsed),
    "object": Kind("object"),  # memory only
    "blob": Kind(None),  # file only
}


@dataclass(frozen=True)
class Column:
    """One column: its name in memory, its kind, its SQLite declaration, and its source."""

    name: str
    kind: str
    sql: str | None = None  # type and constraints in the file; None: held in memory only
    record: bool = False  # its value is the normalised record's field of the same name

    @property
    def file_name(self) -> str:
        """Its name in the file: times are ``<name without _at>_ns``."""
        return self.name.removesuffix("_at") + "_ns" if self.kind == "time" else self.name

    @property
    def in_memory(self) -> bool:
        return KINDS[self.kind].dtype is not None


class Table:
    """A table's columns and what follows from them: DDL, INSERT, SELECT, rows and dtypes."""

    def __init__(self, name: str, columns: tuple[Column, ...]) -> None:
        self.name = name
        self.columns = columns
        self.stored = tuple(c for c in columns if c.sql is not None)
        self.memory = tuple(c for c in columns if c.in_memory)
        #: Columns both in the file and in memory (what :attr:`select` reads), in memory order.
        self.loaded = tuple(c for c in self.memory if c.sql is not None)
        #: The normalised record's fields, in order.
        self.record_fields = tuple(c.name for c in columns if c.record)
        self.dtypes: dict[str, str] = {c.name: str(KINDS[c.kind].dtype) for c in self.memory}
        self.times = tuple(c.name for c in self.memory if c.kind == "time")
        self.ddl = (
            f"CREATE TABLE IF NOT EXISTS {name} (\n"
            + ",\n".join(f"    {c.file_name} {c.sql}" for c in self.stored)
            + "\n)"
        )
        self.select = self._select({c.file_name for c in self.stored})
        self._inserted = tuple(c for c in self.stored if c.name != "id")
        self._params = itemgetter(*(c.name for c in self._inserted))
        self._to_file = tuple((i, f) for i, c in enumerate(self._inserted) if (f := KINDS[c.kind].to_file))
        self._from_record = tuple((c.name, KINDS[c.kind].from_record) for c in columns if c.record)
        self._from_file = tuple((c.name, KINDS[c.kind].from_file) for c in self.loaded)

    def _select(self, have: set[str]) -> str:
        reads = (
            KINDS[c.kind].read.format(c.file_name if c.file_name in have else "NULL") for c in self.loaded
        )
        return f"SELECT {', '.join(reads)} FROM {self.name}"

    def in_file(self, db: sqlite3.Connection) -> set[str]:
        """The names of the table's columns in ``db``'s file."""
        return {row[1] for row in db.execute(f"PRAGMA table_info({self.name})")}

    def select_in(self, db: sqlite3.Connection) -> str:
        """:attr:`select` for ``db``: a column an older file lacks reads as missing.

        A writable file gains its missing columns on opening; one opened read-only cannot.
        """
        have = self.in_file(db)
        return self.select if have.issuperset(c.file_name for c in self.stored) else self._select(have)

    def insert(self, **values: str) -> str:
        """The INSERT of one row: ``?`` for each column but ``id``, or the SQL given by name."""
        exprs = ",".join(values.get(c.name, "?") for c in self._inserted)
        return f"INSERT INTO {self.name} ({', '.join(c.file_name for c in self._inserted)}) VALUES ({exprs})"

    def update(self) -> str:
        """The UPDATE of one row's stored columns (but ``id``), by ``id`` (its last parameter)."""
        sets = ", ".join(f"{c.file_name} = ?" for c in self._inserted)
        return f"UPDATE {self.name} SET {sets} WHERE id = ?"

    def add_column(self, file_name: str) -> str:
        """The ALTER TABLE that gives an older file a column it lacks."""
        (column,) = (c for c in self.stored if c.file_name == file_name)
        return f"ALTER TABLE {self.name} ADD COLUMN {column.file_name} {column.sql}"

    def from_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The in-memory values of a normalised record's fields."""
        return {name: record[name] if f is None else f(record[name]) for name, f in self._from_record}

    def params(self, row: Mapping[str, Any]) -> list[Any]:
        """The INSERT's parameters, from a row of in-memory values (and the file-only ones)."""
        params = list(self._params(row))
        for i, convert in self._to_file:
            params[i] = convert(params[i])
        return params

    def from_file(self, rows: list[tuple[Any, ...]]) -> dict[str, Sequence[Any]]:
        """Rows as :attr:`select` reads them, as in-memory columns (categories still names)."""
        columns = zip(*rows, strict=True)
        return {
            name: column if f is None else f(column)
            for (name, f), column in zip(self._from_file, columns, strict=True)
        }


#: Accepted events, one row per distinct body; in memory in this order (``store.events``).
EVENTS = Table(
    "events",
    (
        Column("id", "int", "INTEGER PRIMARY KEY"),
        Column("event_type", "category", "TEXT", record=True),
        Column("event_timestamp", "time", "INTEGER", record=True),
        Column("received_at", "time", "INTEGER NOT NULL"),
        Column("conversation_id", "text", "TEXT", record=True),
        Column("agent_id", "text", "TEXT", record=True),
        Column("agent_name", "interned", "TEXT", record=True),
        Column("environment", "interned", "TEXT", record=True),  # the agent's: production, ...
        Column("request_id", "text", "TEXT", record=True),
        Column("voice_id", "text", "TEXT", record=True),
        # Studio's conversion callbacks (project_conversion_status, chapter_conversion_status)
        Column("project_id", "text", "TEXT", record=True),
        Column("chapter_id", "text", "TEXT", record=True),
        Column("conversion_status", "interned", "TEXT", record=True),  # success, error
        Column("snapshot_id", "text", "TEXT", record=True),  # the project's or the chapter's
        Column("error_details", "text", "TEXT", record=True),
        Column("status", "interned", "TEXT", record=True),
        Column("duration_s", "number", "REAL", record=True),
        Column("call_started_at", "time", "INTEGER", record=True),
        Column("failure_reason", "interned", "TEXT", record=True),
        Column("submitted_at", "time", "INTEGER", record=True),  # data.webhook_metadata.submitted_at
        Column("delivery_lag_s", "number"),  # received_at - event_timestamp
        # received_at - the signature's t, when verified (see .clock); below 0: signed in our future
        Column("skew_s", "number", "REAL"),
        # signature, or url (a callback URL's token, unsigned); null: appended by code, not received
        Column("authenticated_by", "interned", "TEXT"),
        Column("turnaround_s", "number"),  # received_at - (the expect()ed job's or submitted_at)
        Column("deliveries", "int", "INTEGER NOT NULL DEFAULT 1"),
        Column("last_received_at", "time", "INTEGER NOT NULL"),
        Column("body_bytes", "int", "INTEGER NOT NULL"),
        Column("kept_while_away", "flag", "INTEGER NOT NULL DEFAULT 0"),  # kept by the route
        Column("payload", "object"),  # a StoredPayload: the body stays in the file
        Column("body_sha256", "blob", "BLOB NOT NULL UNIQUE"),
        Column("body", "blob", "BLOB NOT NULL"),
    ),
)

#: Rejected deliveries (the newest ``max_failures`` kept).
FAILURES = Table(
    "failures",
    (
        Column("id", "int", "INTEGER PRIMARY KEY"),
        Column("received_at", "time", "INTEGER NOT NULL"),
        Column("reason", "category", "TEXT NOT NULL"),
        Column("status", "int", "INTEGER NOT NULL"),
        Column("explanation", "text", "TEXT NOT NULL"),
        Column("headers", "json", "TEXT NOT NULL"),  # redacted
        Column("body_preview", "text", "TEXT NOT NULL"),
        Column("body_bytes", "int", "INTEGER NOT NULL"),
        Column("remote", "text", "TEXT"),
        Column("path", "text", "TEXT"),
        Column("details", "text", "TEXT"),
    ),
)

#: Calls that expect an answer (agent tools, call personalisation), every one, oldest first.
CALLS = Table(
    "calls",
    (
        Column("id", "int", "INTEGER PRIMARY KEY"),
        Column("received_at", "time", "INTEGER NOT NULL"),
        Column("kind", "category", "TEXT NOT NULL"),  # "tool" or "initiation"
        Column("name", "category", "TEXT NOT NULL"),  # the tool's name; "initiation"
        Column("method", "interned", "TEXT NOT NULL"),
        Column("status", "int", "INTEGER NOT NULL"),  # what was answered
        Column("latency_s", "number", "REAL"),  # from the request in to the answer out
        Column("parameters", "json", "TEXT NOT NULL"),  # the function's arguments, and what else came
        Column("answer", "text", "TEXT"),  # the JSON answered (shortened past ANSWER_CHARS)
        Column("error", "text", "TEXT"),  # why it was not a 200 (a traceback stays here, never sent)
        Column("conversation_id", "text", "TEXT"),  # system__conversation_id, or the call's call_sid
        Column("headers", "json", "TEXT NOT NULL"),  # redacted
        Column("remote", "text", "TEXT"),
    ),
)


# What is inside each call (see .derive): rows the store derives from post-call events as
# they are stored, so that analysis never re-parses a body. Each row names its event; a turn's
# or tool call's conversation and agent are in memory only (the file has them once, in the
# conversation row whose event_id is that event: a third less to write per turn).
_STAGE_COLUMNS = tuple(
    Column(name, "number", "REAL")
    for name in (
        "convai_asr_trailing_service_latency",
        "convai_llm_service_ttfb",
        "convai_llm_service_ttf_sentence",
        "convai_llm_service_tt_last_sentence",
        "convai_llm_tool_request_generation_latency",
        "convai_tts_service_ttfb",
    )
)

#: One row per transcript turn (``store.turns``).
TURNS = Table(
    "turns",
    (
        Column("id", "int", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Column("event_id", "int", "INTEGER NOT NULL"),
        Column("conversation_id", "text"),
        Column("agent_id", "interned"),
        Column("turn", "int", "INTEGER NOT NULL"),  # its place in the transcript, from 0
        Column("role", "interned", "TEXT"),  # agent, user
        Column("said_at", "time", "INTEGER"),  # the call's start + time_in_call_secs
        Column("time_in_call_secs", "number", "REAL"),
        Column("message_chars", "int", "INTEGER NOT NULL"),
        Column("interrupted", "flag", "INTEGER NOT NULL"),
        Column("source_medium", "interned", "TEXT"),
        Column("tool_calls", "int", "INTEGER NOT NULL"),
        Column("llm_input_tokens", "number", "REAL"),
        Column("llm_output_tokens", "number", "REAL"),
        Column("wait_s", "number", "REAL"),  # the caller's wait before an agent turn (derive.wait_s)
        *_STAGE_COLUMNS,  # seconds; metrics with other names: one column each in memory
        Column("other_metrics", "blob", "TEXT"),  # {name: seconds} of the names not above
    ),
)
#: The stage metrics with columns of their own in the file.
STAGES = tuple(c.name for c in _STAGE_COLUMNS)

#: One row per tool call, joined to its result (``store.tool_calls``).
TOOL_CALLS = Table(
    "tool_calls",
    (
        Column("id", "int", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Column("event_id", "int", "INTEGER NOT NULL"),
        Column("conversation_id", "text"),
        Column("agent_id", "interned"),
        Column("turn", "int", "INTEGER NOT NULL"),  # the turn that made it (-1: none)
        Column("called_at", "time", "INTEGER"),
        Column("tool_name", "interned", "TEXT"),
        Column("tool_type", "interned", "TEXT"),  # webhook, system, client, workflow
        Column("request_id", "text", "TEXT"),
        Column("method", "interned", "TEXT"),  # webhook tools
        Column("url", "text", "TEXT"),  # webhook tools
        Column("parameters", "text", "TEXT"),  # JSON text, as sent
        Column("latency_s", "number", "REAL"),  # tool_latency_secs
        Column("is_error", "maybe", "INTEGER"),
        Column("tool_has_been_called", "maybe", "INTEGER"),
        Column("result", "clipped", "TEXT"),  # whole in the file (store.tool_result)
    ),
)

#: One row per conversation, however many events told of it (``store.conversations``).
CONVERSATIONS = Table(
    "conversations",
    (
        Column(
            "id", "int", "INTEGER PRIMARY KEY AUTOINCREMENT"
        ),  # a new one each time another event adds to it
        Column("conversation_id", "text", "TEXT NOT NULL UNIQUE"),
        Column("event_id", "int", "INTEGER NOT NULL"),  # the event whose turns are kept
        Column("events", "int", "INTEGER NOT NULL"),  # how many events told of it
        Column("received_at", "time", "INTEGER NOT NULL"),  # the first
        Column("agent_id", "interned", "TEXT"),
        Column("agent_name", "interned", "TEXT"),
        Column("environment", "interned", "TEXT"),
        Column("status", "interned", "TEXT"),  # done, failed, initiation_failed, ...
        Column("started_at", "time", "INTEGER"),  # a call that never started: when it failed
        Column("duration_s", "number", "REAL"),
        Column("cost", "number", "REAL"),  # credits
        Column("llm_price", "number", "REAL"),  # dollars
        Column("llm_charge", "number", "REAL"),
        Column("call_charge", "number", "REAL"),
        Column("tier", "interned", "TEXT"),
        Column("termination_reason", "interned", "TEXT"),
        Column("error", "text", "TEXT"),  # metadata.error as JSON ({code, reason}), or text
        Column("failure_reason", "interned", "TEXT"),  # a call that never started: busy, no-answer
        Column("main_language", "interned", "TEXT"),
        Column("direction", "interned", "TEXT"),  # inbound, outbound (phone calls)
        Column("phone_type", "interned", "TEXT"),  # twilio, sip
        Column("call_sid", "text", "TEXT"),
        Column("call_successful", "interned", "TEXT"),  # success, failure, unknown
        Column("call_summary_title", "text", "TEXT"),
        Column("transcript_summary", "text", "TEXT"),
        Column("formats", "interned", "TEXT NOT NULL"),  # json, otel, json+otel, initiation_failure
        Column("turns", "int", "INTEGER NOT NULL"),
        Column("user_turns", "int", "INTEGER NOT NULL"),
        Column("agent_turns", "int", "INTEGER NOT NULL"),
        Column("tool_calls", "int", "INTEGER NOT NULL"),
        Column("tool_errors", "int", "INTEGER NOT NULL"),
        Column("llm_input_tokens", "number", "REAL"),
        Column("llm_output_tokens", "number", "REAL"),
        Column("wait_p50_s", "number", "REAL"),  # the median of its turns' wait_s
        # {"evaluation": {id: result}, "data": {id: value}, "tokens": {model: n}, "p50": {metric: s}}:
        # in memory one column each, eval.<id>, data.<id>, tokens.<model>, <metric>_p50
        Column("extra", "blob", "TEXT NOT NULL"),
    ),
)
