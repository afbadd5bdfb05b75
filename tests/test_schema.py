"""The column spec: every artefact derived from it (DDL, INSERT, SELECT, frames) names exactly its columns.

Adding a column is one line in ``elwh_nb._core.schema`` plus its normaliser; these tests
check that nothing else in the store spells the columns out again, and that files made
before the spec (schema 1, from before the failure inspector and the inbox) still open.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elwh_nb import FIELDS, EventStore, normalize, payloads
from elwh_nb._core.schema import EVENTS, FAILURES, NAT, Column, Table
from elwh_nb._core.storefile import migrate

NOW = 1_739_537_297.0

# The tables as elwh_nb wrote them before the spec (schema "1"), less the columns that were
# added later by ALTER TABLE (V1_ADDED).
V1_DDL = """
CREATE TABLE events (
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
    body BLOB NOT NULL
);
CREATE TABLE failures (
    id INTEGER PRIMARY KEY,
    received_ns INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status INTEGER NOT NULL,
    explanation TEXT NOT NULL,
    headers TEXT NOT NULL,
    body_preview TEXT NOT NULL,
    body_bytes INTEGER NOT NULL,
    remote TEXT,
    path TEXT
);
CREATE TABLE failure_counts (reason TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE jobs (job_id TEXT PRIMARY KEY, kind TEXT, submitted_ns INTEGER NOT NULL, event_id INTEGER);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
"""
V1_ADDED: dict[str, list[tuple[object, ...]]] = {
    "events": [
        ("kept_while_away", "INTEGER", 1, "0", 0),
        ("agent_name", "TEXT", 0, None, 0),
        ("environment", "TEXT", 0, None, 0),
        ("submitted_ns", "INTEGER", 0, None, 0),
        ("skew_s", "REAL", 0, None, 0),
        ("project_id", "TEXT", 0, None, 0),
        ("chapter_id", "TEXT", 0, None, 0),
        ("conversion_status", "TEXT", 0, None, 0),
        ("snapshot_id", "TEXT", 0, None, 0),
        ("error_details", "TEXT", 0, None, 0),
        ("authenticated_by", "TEXT", 0, None, 0),
    ],
    "failures": [("details", "TEXT", 0, None, 0)],
}
TABLES = (EVENTS, FAILURES)


def table_info(db: sqlite3.Connection, table: str) -> list[tuple[object, ...]]:
    """(name, type, notnull, default, pk) of each column, in the file's order."""
    return [tuple(row[1:]) for row in db.execute(f"PRAGMA table_info({table})")]


def sql_columns(sql: str) -> list[str]:
    """The column names an INSERT lists or a SELECT reads (ifnull(x, ...) reads x)."""
    listed = re.search(r"\((.*?)\) VALUES", sql) or re.search(r"SELECT (.*) FROM", sql)
    assert listed is not None, sql
    return [c.strip() for c in re.sub(r"ifnull\((\w+), -?\d+\)", r"\1", listed.group(1)).split(", ")]


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_the_file_has_exactly_the_spec_columns(tmp_path: Path, table: Table) -> None:
    with EventStore(tmp_path / "s.sqlite") as store:
        info = table_info(store._db, table.name)
    assert [row[0] for row in info] == [c.file_name for c in table.stored]
    # Each column as declared before the spec: the same names, types, constraints and defaults.
    v1 = sqlite3.connect(":memory:")
    v1.executescript(V1_DDL)
    before = table_info(v1, table.name) + V1_ADDED[table.name]
    assert sorted(map(str, info)) == sorted(map(str, before))


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_insert_and_select_name_exactly_the_spec_columns(table: Table) -> None:
    assert sql_columns(table.insert()) == [c.file_name for c in table.stored if c.name != "id"]
    loaded = [c.file_name for c in table.memory if c.sql is not None]
    assert sql_columns(table.select) == loaded


def test_frames_have_exactly_the_spec_columns_and_dtypes(tmp_path: Path) -> None:
    factory = payloads(1, now=NOW)
    with EventStore(tmp_path / "s.sqlite") as store:
        store.append_many([factory.body(e) for e in factory.batch(20)])
        store.add_failure("signature_mismatch", status=401, headers={"a": "b"})
        frames = {"events": store.events, "failures": store.failures}
    for table in TABLES:
        df = frames[table.name]
        assert df.index.name == "id" and df.index.dtype == np.int64
        assert ["id", *df.columns] == [c.name for c in table.memory]
        expected = {
            "time": "datetime64[ns, UTC]",
            "category": "category",
            "number": "float64",
            "int": "int64",
            "flag": "bool",
        }
        for column in table.memory[1:]:
            assert str(df[column.name].dtype) == expected.get(column.kind, "object"), column


def test_the_record_fields_are_the_spec_columns_from_the_record() -> None:
    assert tuple(c.name for c in EVENTS.columns if c.record) == FIELDS
    record = normalize(payloads(1).post_call_transcription())
    assert list(record) == [*FIELDS, "payload"]
    assert list(EVENTS.from_record(record)) == list(FIELDS)


def test_a_column_added_to_the_spec_reaches_the_file_the_insert_and_memory(tmp_path: Path) -> None:
    """What one more line in the spec gives, on a file made without it."""
    added = Column("language_code", "text", "TEXT", record=True)
    spec = Table("events", (*EVENTS.columns, added))
    path = tmp_path / "s.sqlite"
    factory = payloads(1, now=NOW)
    event = factory.post_call_transcription()
    with EventStore(path) as store:
        store.append(factory.body(event))
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, (spec, FAILURES))  # what opening the file does
    assert table_info(db, "events")[-1] == ("language_code", "TEXT", 0, None, 0)
    assert "language_code" in spec.ddl and spec.record_fields[-1] == "language_code"
    assert spec.dtypes["language_code"] == "object" and sql_columns(spec.insert())[-1] == "language_code"

    row = spec.from_record({**normalize(event), "language_code": "Ada"})
    row.update(
        received_at=2,
        last_received_at=2,
        deliveries=1,
        body_bytes=2,
        kept_while_away=False,
        skew_s=0.5,
        authenticated_by="signature",
    )
    db.execute(spec.insert(), spec.params({**row, "body_sha256": b"x" * 32, "body": b"{}"}))
    loaded = spec.from_file(db.execute(f"{spec.select} ORDER BY id").fetchall())
    assert list(loaded) == [c.name for c in spec.loaded]
    assert list(loaded["language_code"]) == [None, "Ada"]  # the older row has none
    assert list(loaded["event_timestamp"]) == [int(NOW) * 10**9, row["event_timestamp"]]
    db.close()
    with EventStore(path) as store:  # today's store still reads the file
        assert len(store) == 2


def test_a_file_from_before_the_spec_opens_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(V1_DDL)
    db.execute(
        "INSERT INTO events (body_sha256, received_ns, last_received_ns, deliveries, event_type,"
        " event_timestamp_ns, conversation_id, status, duration_s, body_bytes, body)"
        " VALUES (?, ?, ?, 2, 'call_initiation_failure', NULL, 'c1', 'failed', NULL, 2, ?)",
        (b"h" * 32, 5 * 10**18, 6 * 10**18, b"{}"),
    )
    db.execute(
        "INSERT INTO failures (received_ns, reason, status, explanation, headers, body_preview, body_bytes)"
        " VALUES (7, 'stale_timestamp', 400, 'old', ?, '', 0)",
        (json.dumps({"cookie": "[redacted]"}),),
    )
    db.commit()
    db.close()
    with EventStore(path) as store:
        row = store.events.loc[1]
        assert row.event_type == "call_initiation_failure" and row.status == "failed"
        assert row.agent_name is None and row.environment is None  # columns added since
        assert pd.isna(row.event_timestamp) and pd.isna(row.duration_s) and pd.isna(row.call_started_at)
        assert pd.isna(row.skew_s)  # measured only since the column came
        assert row.received_at == pd.Timestamp(5 * 10**18, unit="ns", tz="UTC")
        assert row.deliveries == 2 and row.kept_while_away is np.False_
        failure = store.failures.loc[1]
        assert failure.details is None and failure.headers == {"cookie": "[redacted]"}
        assert store.append(b'{"type": "later"}', kept_while_away=True).id == 2
        factory = payloads(1, now=NOW)
        call = factory.post_call_transcription()
        assert store.append(factory.body(call)).id == 3
        for table in TABLES:
            added = {name for name, *_ in V1_ADDED[table.name]}
            in_spec_order = [c.file_name for c in table.stored if c.file_name in added]
            assert [r[0] for r in table_info(store._db, table.name)][-len(added) :] == in_spec_order
    with EventStore(path) as again:
        assert list(again.events.kept_while_away) == [False, True, False]
        assert again.counts["deliveries"] == 4
        assert list(again.events.agent_name) == [None, None, call["data"]["agent_name"]]
        assert list(again.events.environment) == [None, None, call["data"]["environment"]]


def test_a_file_from_before_the_spec_opens_read_only(tmp_path: Path) -> None:
    """A reader may run a newer elwh_nb than the writer: columns the file lacks read as missing."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(V1_DDL)
    db.execute(
        "INSERT INTO events (body_sha256, received_ns, last_received_ns, event_type, agent_id,"
        " body_bytes, body) VALUES (?, 5, 5, 'post_call_transcription', 'agent_1', 2, ?)",
        (b"h" * 32, b"{}"),
    )
    db.execute(
        "INSERT INTO failures (received_ns, reason, status, explanation, headers, body_preview, body_bytes)"
        " VALUES (7, 'stale_timestamp', 400, 'old', '{}', '', 0)"
    )
    db.commit()
    db.close()
    with EventStore(path, readonly=True) as store:
        row = store.events.loc[1]
        assert row.agent_id == "agent_1" and row.agent_name is None and row.environment is None
        assert row.kept_while_away is np.False_ and store.failures.loc[1].details is None
        assert str(store.events.agent_name.dtype) == "object"
    assert [r[0] for r in table_info(sqlite3.connect(path), "events")][-1] == "body"  # left as it was


def test_missing_times_are_nat_in_memory_and_null_in_the_file(tmp_path: Path) -> None:
    with EventStore(tmp_path / "s.sqlite") as store:
        store.append(b'{"type": "bare"}')
        (stamp, started) = store._db.execute(
            "SELECT event_timestamp_ns, call_started_ns FROM events"
        ).fetchone()
        assert stamp is None and started is None
        raw = store._events.columns.snapshot()
        assert raw["event_timestamp"][0] == NAT and raw["call_started_at"][0] == NAT
