"""History beyond memory: events exported to Parquet by day, read back by DuckDB and Dask."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from elwh_nb import EventStore, ExportError, payloads
from elwh_nb._core import history
from elwh_nb._core.history import MARK

duckdb = pytest.importorskip("duckdb")
dd = pytest.importorskip("dask.dataframe")

DAY = 86_400.0
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def fill(store: EventStore, n: int, *, day: int = 0, seed: int = 1, **options: Any) -> list[bytes]:
    """``n`` realistic events (every real type, small audio) received on day ``day`` after T0."""
    factory = payloads(seed, now=T0 + day * DAY)
    bodies = [factory.body(e) for e in factory.batch(n, audio_bytes=4_000, **options)]
    store.append_many(bodies, received_at=T0 + day * DAY + 3_600)
    return bodies


def duck(directory: Path, what: str = "*", then: str = "order by id") -> Any:
    return duckdb.sql(
        f"select {what} from read_parquet('{directory}/events/**/*.parquet', hive_partitioning=true) {then}"
    )


def one(directory: Path, aggregates: str) -> Any:
    return duck(directory, aggregates, "").fetchall()[0]


def kind_of_duckdb(type_name: str) -> str:
    return {
        "BIGINT": "int",
        "DOUBLE": "float",
        "VARCHAR": "string",
        "BOOLEAN": "bool",
        "TIMESTAMPTZ_NS": "utc timestamp",  # DuckDB 2's name for a UTC-adjusted ns timestamp
        "TIMESTAMP_NS WITH TIME ZONE": "utc timestamp",
        "TIMESTAMP WITH TIME ZONE": "utc timestamp",
    }[type_name]


def kind_of_dask(dtype: Any) -> str:
    if isinstance(dtype, pd.DatetimeTZDtype):
        assert str(dtype.tz) == "UTC"
        return "utc timestamp"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    assert pd.api.types.is_string_dtype(dtype), dtype
    return "string"


EXPECTED_KINDS = {
    "id": "int",
    "event_type": "string",
    "event_timestamp": "utc timestamp",
    "received_at": "utc timestamp",
    "conversation_id": "string",
    "agent_id": "string",
    "agent_name": "string",
    "environment": "string",
    "request_id": "string",
    "voice_id": "string",
    "project_id": "string",
    "chapter_id": "string",
    "conversion_status": "string",
    "snapshot_id": "string",
    "error_details": "string",
    "status": "string",
    "duration_s": "float",
    "call_started_at": "utc timestamp",
    "failure_reason": "string",
    "submitted_at": "utc timestamp",
    "skew_s": "float",
    "authenticated_by": "string",
    "deliveries": "int",
    "last_received_at": "utc timestamp",
    "body_bytes": "int",
    "kept_while_away": "bool",
    "body_sha256": "string",
    "body": "string",
}


def test_duckdb_and_dask_read_the_same_rows_and_types(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.sqlite")
    fill(store, 40, day=0)
    fill(store, 25, day=1, seed=2)
    done = store.export_parquet(tmp_path / "pq")
    assert done.rows == 65 and done.last_id == 65

    described = {
        row[0]: row[1] for row in duckdb.sql(f"describe {duck(tmp_path / 'pq').sql_query()}").fetchall()
    }
    ddf = dd.read_parquet(tmp_path / "pq" / "events")
    assert described.pop("day") == "DATE"
    assert {name: kind_of_duckdb(t) for name, t in described.items()} == EXPECTED_KINDS
    assert {name: kind_of_dask(t) for name, t in ddf.dtypes.drop("day").items()} == EXPECTED_KINDS
    assert list(ddf.columns.drop("day")) == list(EXPECTED_KINDS)  # the schema's order

    from_dask = ddf.compute().sort_values("id").set_index("id")
    from_duck = duck(tmp_path / "pq").df().set_index("id")
    assert len(from_dask) == len(from_duck) == len(store) == 65
    events = store.events
    for frame in (from_dask, from_duck):
        assert list(frame.index) == list(events.index)
        assert (pd.to_datetime(frame["received_at"], utc=True) == events["received_at"]).all()
        assert frame["event_type"].tolist() == events["event_type"].astype(str).tolist()
        assert frame["duration_s"].isna().tolist() == events["duration_s"].isna().tolist()
        assert frame["conversation_id"].isna().tolist() == events["conversation_id"].isna().tolist()
        # The whole body, as UTF-8 JSON text, audio included.
        assert [json.loads(b) for b in frame["body"]] == [store.payload(i) for i in events.index]
    audio = duckdb.sql(
        f"select count(*) from read_parquet('{tmp_path}/pq/events/**/*.parquet') "
        "where body->>'$.type' = 'post_call_audio' and length(body->>'$.data.full_audio') > 4000"
    ).fetchall()[0]
    assert audio is not None and audio[0] == (events["event_type"] == "post_call_audio").sum() > 0


def test_exporting_twice_exports_nothing_twice_and_new_events_go_next(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.sqlite")
    bodies = fill(store, 30)
    assert store.export_parquet(tmp_path / "pq").rows == 30
    again = store.export_parquet(tmp_path / "pq")
    assert again.rows == 0 and again.files == [] and again.last_id == 30
    # A repeat delivery counts up the store's row; the exported row is a snapshot and stays.
    store.append(bodies[0], received_at=T0 + 7_200)
    fill(store, 12, seed=9)
    assert store.export_parquet(tmp_path / "pq").rows == 12
    rows = duck(tmp_path / "pq", "id, deliveries").fetchall()
    assert [r[0] for r in rows] == list(range(1, 43))
    assert rows[0][1] == 1 and store.events.loc[1, "deliveries"] == 2


def test_events_land_in_the_partition_of_their_utc_day(tmp_path: Path) -> None:
    store = EventStore(":memory:")
    for day in range(3):
        fill(store, 5, day=day, seed=day)
    store.append(payloads(5).body(payloads(5).voice_removed()), received_at=T0 + 3 * DAY - 1)  # 23:59:59
    done = store.export_parquet(tmp_path / "pq")
    days = sorted(p.name for p in (tmp_path / "pq" / "events").iterdir() if p.is_dir())
    assert days == ["day=2026-01-01", "day=2026-01-02", "day=2026-01-03"]
    assert len([f for f in done.files if f.parts[-3] == "events"]) == 3
    mismatched = one(
        tmp_path / "pq",
        "count(*) filter (where day <> cast(received_at at time zone 'UTC' as date)), count(*)",
    )
    assert mismatched == (0, 16)
    ddf = dd.read_parquet(tmp_path / "pq" / "events", filters=[("day", "==", "2026-01-03")]).compute()
    assert len(ddf) == 6


def test_an_empty_store_exports_nothing(tmp_path: Path) -> None:
    done = EventStore(":memory:").export_parquet(tmp_path / "pq")
    assert done.rows == 0 and done.files == []
    assert not list((tmp_path / "pq").rglob("*.parquet"))
    assert "nothing new" in history.describe(done)


def test_a_deleted_directory_starts_afresh_and_a_deleted_file_stays_deleted(tmp_path: Path) -> None:
    store = EventStore(":memory:")
    fill(store, 10, day=0)
    fill(store, 10, day=1, seed=3)
    first = store.export_parquet(tmp_path / "pq")
    shutil.rmtree(tmp_path / "pq")
    assert store.export_parquet(tmp_path / "pq").rows == 20
    (tmp_path / "pq" / "events" / "day=2026-01-01").joinpath(first.files[0].name).unlink()  # deleted by hand
    assert store.export_parquet(tmp_path / "pq").rows == 0
    assert one(tmp_path / "pq", "count(*)") == (10,)


def test_two_stores_share_a_directory_and_a_diverged_copy_is_refused(tmp_path: Path) -> None:
    a, b = EventStore(tmp_path / "a.sqlite"), EventStore(":memory:")
    fill(a, 8, seed=1)
    fill(b, 5, seed=2)
    assert a.export_parquet(tmp_path / "pq").rows == 8
    assert b.export_parquet(tmp_path / "pq").rows == 5
    assert one(tmp_path / "pq", "count(*), count(distinct body_sha256)") == (13, 13)
    a.close()
    shutil.copy(tmp_path / "a.sqlite", tmp_path / "copy.sqlite")
    a, copy = EventStore(tmp_path / "a.sqlite"), EventStore(tmp_path / "copy.sqlite")
    fill(a, 3, seed=3)
    fill(copy, 3, seed=4)
    assert a.export_parquet(tmp_path / "pq").rows == 3
    with pytest.raises(ExportError, match="export to a new directory"):
        copy.export_parquet(tmp_path / "pq")
    assert one(tmp_path / "pq", "count(*)") == (16,)


def test_a_crash_after_the_commit_exports_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EventStore(":memory:")
    fill(store, 10)
    real_replace = os.replace

    def crash(src: Any, dst: Any) -> None:
        if str(dst).endswith(".parquet"):
            raise KeyboardInterrupt("killed between the commit and the renames")
        real_replace(src, dst)

    monkeypatch.setattr(history.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.export_parquet(tmp_path / "pq")
    assert not list((tmp_path / "pq").rglob("*.parquet"))  # nothing readable yet
    monkeypatch.setattr(history.os, "replace", real_replace)
    fill(store, 4, seed=5)
    assert store.export_parquet(tmp_path / "pq").rows == 4  # the committed 10 were finished, not redone
    assert one(tmp_path / "pq", "count(*), count(distinct id)") == (14, 14)
    assert not [p for p in (tmp_path / "pq").rglob("*") if p.name.endswith(".tmp")]


def test_the_command_line_exports_and_then_has_nothing_new(tmp_path: Path) -> None:
    with EventStore(tmp_path / "s.sqlite") as store:
        fill(store, 7)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "elwh_nb",
                "export",
                "--parquet",
                str(tmp_path / "pq"),
                "--store",
                str(tmp_path / "s.sqlite"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = run()
    assert first.returncode == 0, first.stderr
    assert "exported 7 events (up to event 7), " in first.stdout and " into 4 files " in first.stdout
    second = run()
    assert second.returncode == 0 and "nothing new to export" in second.stdout
    assert one(tmp_path / "pq", "count(*)") == (7,)
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "elwh_nb",
            "export",
            "--parquet",
            str(tmp_path / "x"),
            "--store",
            str(tmp_path / "no.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "elwh-nb:" in missing.stderr


def test_a_file_older_than_the_spec_exports_read_only(tmp_path: Path) -> None:
    """Columns added since the file was written (a writer on an older elwh_nb) export as null."""
    path = tmp_path / "s.sqlite"
    with EventStore(path) as store:
        fill(store, 12, types=["post_call_transcription"])
    db = sqlite3.connect(path)
    for column in ("agent_name", "environment"):
        db.execute(f"ALTER TABLE events DROP COLUMN {column}")
    db.commit()
    db.close()
    with EventStore(path, readonly=True) as store:
        assert store.export_parquet(tmp_path / "pq").rows == 12
    assert one(tmp_path / "pq", "count(*), count(agent_id), count(agent_name), count(environment)") == (
        12,
        12,
        0,
        0,
    )


def test_the_mark_is_a_small_json_file_readers_skip(tmp_path: Path) -> None:
    store = EventStore(":memory:")
    fill(store, 3)
    store.export_parquet(tmp_path / "pq")
    mark = json.loads((tmp_path / "pq" / MARK).read_text())
    ((origin, state),) = mark["stores"].items()
    assert state["last_id"] == 3 and len(origin) == 64 and mark["pending"] == []


# -- what is inside each call, beside the events ------------------------------------------


def calls_store(tmp_path: Path) -> EventStore:
    from . import real_calls

    store = EventStore(tmp_path / "calls.sqlite")
    store.append(real_calls.body(real_calls.transcription()), received_at=T0)
    store.append(real_calls.body(real_calls.failed()), received_at=T0 + 60)
    factory = payloads(3, now=T0)
    store.append_many(
        [factory.body(factory.post_call_transcription(turns=8)) for _ in range(6)]
        + [factory.body(factory.post_call_transcription_otel(turns=6)) for _ in range(2)],
        received_at=T0 + 120,
    )
    return store


def table(directory: Path, name: str, then: str = "order by id") -> pd.DataFrame:
    frame: pd.DataFrame = duckdb.sql(
        f"select * from read_parquet('{directory}/{name}/*.parquet') {then}"
    ).df()
    return frame


def test_turns_tool_calls_and_conversations_export_beside_the_events(tmp_path: Path) -> None:
    from . import real_calls

    store = calls_store(tmp_path)
    done = store.export_parquet(tmp_path / "pq")
    assert (done.rows, done.turns, done.tool_calls, done.conversations) == (
        len(store),
        len(store.turns),
        len(store.tool_calls),
        len(store.conversations),
    )
    assert "turns" in history.describe(done) and "conversations" in history.describe(done)
    turns, calls, conversations = store.turns, store.tool_calls, store.conversations
    got = table(tmp_path / "pq", "turns").set_index("id")
    assert list(got.index) == list(turns.index)
    assert got.conversation_id.tolist() == turns.conversation_id.tolist()  # from the conversation's row
    assert got.agent_id.tolist() == turns.agent_id.tolist()
    assert got.wait_s.sum() == pytest.approx(turns.wait_s.sum())
    assert (pd.to_datetime(got.said_at, utc=True).dropna() == turns.said_at.dropna()).all()
    assert got.interrupted.tolist() == turns.interrupted.tolist()
    got_calls = table(tmp_path / "pq", "tool_calls").set_index("id")
    assert list(got_calls.index) == list(calls.index)
    assert got_calls.result.tolist() == [store.tool_result(i) for i in calls.index]  # whole, not clipped
    assert got_calls.is_error.isna().tolist() == calls.is_error.isna().tolist()
    got_conv = (
        table(tmp_path / "pq", "conversations", "").set_index("conversation_id").loc[conversations.index]
    )
    assert got_conv.call_successful.fillna("-").tolist() == conversations.call_successful.fillna("-").tolist()
    real = got_conv.loc[real_calls.CONVERSATION]
    assert real["cost"] == conversations.loc[real_calls.CONVERSATION, "cost"]
    assert {c for c in got_conv.columns if c.startswith("eval.")} == {
        c for c in conversations.columns if c.startswith("eval.")
    }
    assert got_conv.loc["conv_failed_1", "status"] == "failed"
    # Dask reads each table's folder; the events' folder holds only events.
    assert len(dd.read_parquet(tmp_path / "pq" / "turns").compute()) == len(turns)
    assert one(tmp_path / "pq", "count(*)") == (len(store),)


def test_each_export_appends_new_turns_and_writes_the_conversations_again(tmp_path: Path) -> None:
    store = calls_store(tmp_path)
    store.export_parquet(tmp_path / "pq")
    before = len(store.turns)
    factory = payloads(8, now=T0)
    store.append(factory.body(factory.post_call_transcription(turns=5, failed=False)), received_at=T0 + DAY)
    done = store.export_parquet(tmp_path / "pq")
    assert (done.rows, done.turns, done.conversations) == (1, 5, len(store.conversations))
    got = table(tmp_path / "pq", "turns")
    assert len(got) == before + 5 and got.id.is_unique
    assert len(table(tmp_path / "pq", "conversations", "")) == len(store.conversations)
    nothing = store.export_parquet(tmp_path / "pq")
    assert nothing.files == [] and "nothing new" in history.describe(nothing)


def test_turns_replaced_after_an_export_are_told_apart_by_the_conversations_event(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "s.sqlite")
    factory = payloads(9, now=T0)
    otel = factory.post_call_transcription_otel(turns=6, failed=False)
    store.append(factory.body(otel), received_at=T0)
    store.export_parquet(tmp_path / "pq")
    plain = factory.post_call_transcription(turns=4, failed=False)  # its JSON transcript, later
    plain["data"]["conversation_id"] = otel["data"]["conversation_id"]
    store.append(factory.body(plain), received_at=T0 + 60)
    store.export_parquet(tmp_path / "pq")
    assert len(table(tmp_path / "pq", "turns")) == 10  # both sets: Parquet files are never rewritten
    current = duckdb.sql(
        f"select t.* from read_parquet('{tmp_path}/pq/turns/*.parquet') t "
        f"join read_parquet('{tmp_path}/pq/conversations/*.parquet') c using (event_id)"
    ).df()
    assert sorted(current.id) == sorted(store.turns.index)


def test_a_directory_from_before_the_tables_has_its_events_moved_in(tmp_path: Path) -> None:
    store = calls_store(tmp_path)
    first = len(store)
    store.export_parquet(tmp_path / "pq")
    root = tmp_path / "pq"
    for day in (root / "events").iterdir():  # as an export made before 0.2 left it
        os.replace(day, root / day.name)
    (root / "events").rmdir()
    shutil.rmtree(root / "turns")
    fill(store, 5, day=2, seed=11)
    done = store.export_parquet(root)
    assert done.rows == 5 and not list(root.glob("day=*"))
    assert one(root, "count(*), count(distinct id)") == (first + 5, first + 5)


def test_a_data_item_of_mixed_kinds_exports_as_text(tmp_path: Path) -> None:
    from elwh_nb._core.history_calls import conversations_table

    frame = pd.DataFrame(
        {"data.rating": [5, "five", None], "status": ["done", "done", None], "empty": [None] * 3},
        index=pd.Index(["a", "b", "c"], name="conversation_id"),
    )
    got = conversations_table(frame).to_pydict()
    assert got["data.rating"] == ["5", "five", None] and got["conversation_id"] == ["a", "b", "c"]
    assert got["empty"] == [None] * 3
