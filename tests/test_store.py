"""EventStore: durable, deduplicating, capped failures, and DataFrames that are cheap to read."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elwh_nb import EventStore, StoredPayload, StoreError, payloads
from elwh_nb._core.store import REDACTED

NOW = 1_739_537_297.0


def bodies(n: int, seed: int = 1, **options: object) -> list[bytes]:
    factory = payloads(seed, now=NOW)
    return [factory.body(e) for e in factory.batch(n, **options)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.sqlite") as s:
        yield s


def test_append_and_read_back(store: EventStore) -> None:
    factory = payloads(1, now=NOW)
    event = factory.post_call_transcription()
    body = factory.body(event)
    result = store.append(body, received_at=NOW + 2.5)
    assert (result.id, result.duplicate, result.deliveries) == (1, False, 1)
    df = store.events
    assert list(df.index) == [1] and df.index.name == "id"
    row = df.loc[1]
    assert row.event_type == "post_call_transcription"
    assert row.conversation_id == event["data"]["conversation_id"]
    assert row.duration_s == event["data"]["metadata"]["call_duration_secs"]
    assert row.event_timestamp == pd.Timestamp(int(NOW), unit="s", tz="UTC")
    assert row.received_at == pd.Timestamp(NOW + 2.5, unit="s", tz="UTC")
    assert row.delivery_lag_s == pytest.approx(2.5, abs=1e-3)
    assert row.body_bytes == len(body)
    assert store.raw_body(1) == body
    assert store.payload(1) == event
    assert isinstance(row.payload, StoredPayload)
    assert row.payload["data"]["agent_id"] == event["data"]["agent_id"] and "data" in row.payload
    assert dict(row.payload) == event and row.payload.to_dict() == event
    with pytest.raises(KeyError):
        store.raw_body(99)


def test_the_newer_fields_are_columns_and_unknown_ones_stay_in_the_payload(tmp_path: Path) -> None:
    factory = payloads(1, now=NOW)
    event = factory.post_call_transcription()
    event["data"]["sentiment_v9"] = {"score": 0.7, "labels": ["calm"]}  # a field nobody knows yet
    event["trace"] = "x-1"
    body = factory.body(event)
    with EventStore(tmp_path / "s.sqlite") as store:
        store.append(body)
    with EventStore(tmp_path / "s.sqlite") as store:  # from the file
        row = store.events.loc[1]
        assert (row.agent_name, row.environment) == (
            event["data"]["agent_name"],
            event["data"]["environment"],
        )
        assert row.payload["data"]["sentiment_v9"] == {"score": 0.7, "labels": ["calm"]}
        assert row.payload["trace"] == "x-1" and store.raw_body(1) == body


def test_turnaround_from_webhook_metadata_is_kept_and_expect_wins(tmp_path: Path) -> None:
    """A job submitted with webhook_metadata={"submitted_at": <unix s>} needs no expect()."""
    factory = payloads(1, now=NOW)

    def job(submitted: object, request_id: str | None = None) -> bytes:
        meta = {"submitted_at": submitted, "note": "x"}
        return factory.body(
            factory.speech_to_text_transcription(request_id=request_id, webhook_metadata=meta)
        )

    path = tmp_path / "s.sqlite"
    with EventStore(path) as store:
        store.expect("announced", submitted_at=NOW - 5)  # before its event: matched on arrival
        store.append_many(
            [job(NOW - 40), job(str(int(NOW) - 30)), job("soon"), bodies(1)[0], job(NOW - 100, "announced")],
            received_at=NOW + 2,
        )
        store.append(job(NOW - 60, "late"), received_at=NOW + 3)
        store.expect("late", submitted_at=NOW - 1)  # after its event: replaces the metadata's
        before = store.events
        expected = [42.0, 32.0, math.nan, math.nan, 7.0, 4.0]
        assert before.turnaround_s.tolist() == pytest.approx(expected, nan_ok=True)
        assert before.submitted_at.iloc[1] == pd.Timestamp(int(NOW) - 30, unit="s", tz="UTC")
        assert before.submitted_at.isna().tolist() == [False, False, True, True, False, False]
        assert store._db.execute("SELECT count(submitted_ns) FROM events").fetchone() == (4,)
    with EventStore(path) as again:
        pd.testing.assert_series_equal(again.events.turnaround_s, before.turnaround_s)
        pd.testing.assert_series_equal(again.events.submitted_at, before.submitted_at)


def test_dtypes(store: EventStore) -> None:
    store.append_many(bodies(30))
    dtypes = store.events.dtypes
    assert isinstance(dtypes["event_type"], pd.CategoricalDtype)
    for col in ("event_timestamp", "received_at", "call_started_at", "last_received_at"):
        assert str(dtypes[col]) == "datetime64[ns, UTC]", col
    for col in ("duration_s", "delivery_lag_s"):
        assert dtypes[col] == np.float64
    assert dtypes["deliveries"] == np.int64
    # The frame groups and filters like any other.
    df = store.events
    assert df.groupby("event_type", observed=True).size().sum() == 30
    calls = df[df.event_type == "post_call_transcription"].duration_s
    assert (calls >= 0).all() and (calls > 0).sum() >= len(calls) - 2  # a failed call lasts 0 s


def test_payload_repr_does_not_load_bodies(store: EventStore) -> None:
    store.append_many(bodies(5, types=["post_call_audio"], audio_bytes=200_000))
    text = store.events.to_string()
    assert "<post_call_audio #1>" in text
    assert len(text) < 5_000  # no base64 audio in the printout


def test_duplicates_count_deliveries_not_rows(store: EventStore) -> None:
    body = bodies(1)[0]
    first = store.append(body)
    again = store.append(body.decode())  # str or bytes, the same bytes
    third = store.append(body)
    assert (again.duplicate, again.id, third.deliveries) == (True, first.id, 3)
    assert len(store.events) == 1 and store.events.deliveries.iloc[0] == 3
    assert store.counts == {"events": 1, "deliveries": 3, "duplicates": 2, "failures": 0}
    results = store.append_many([body, bodies(2, seed=9)[1], bodies(2, seed=9)[1]])
    assert [r.duplicate for r in results] == [True, False, True]
    assert store.events.deliveries.tolist() == [4, 2]


def test_reopening_restores_everything(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with EventStore(path) as s:
        s.append_many(bodies(40))
        s.append(bodies(40)[3])
        s.add_failure("signature_mismatch", status=401, explanation="why", body=b"{}", remote="1.2.3.4")
        before_events, before_failures, counts = s.events, s.failures, s.counts
    with EventStore(path) as again:
        pd.testing.assert_frame_equal(
            again.events.drop(columns="payload"),
            before_events.drop(columns="payload"),
            check_categorical=False,
        )
        pd.testing.assert_frame_equal(again.failures, before_failures, check_categorical=False)
        assert again.counts == counts
        assert again.events.payload.iloc[3].to_dict() == json.loads(bodies(40)[3])
        assert again.append(bodies(40)[0]).duplicate  # dedupe survives reopening


def test_default_file_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with EventStore() as s:
        s.append(bodies(1)[0])
        assert s.path == tmp_path / "elwh_events.sqlite"
    assert (tmp_path / "elwh_events.sqlite").exists()


def test_in_memory_store_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with EventStore(":memory:") as s:
        s.append_many(bodies(5))
        assert len(s) == 5 and s.path is None and "in memory" in repr(s)
        assert s.raw_body(2) == bodies(5)[1]
    assert list(tmp_path.iterdir()) == []


def test_failures_are_capped_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite"
    with EventStore(path, max_failures=50) as s:
        for i in range(700):
            s.add_failure(
                "signature_mismatch" if i % 2 else "missing_header",
                status=401,
                explanation=f"failure {i}",
                body=b"x" * 5000,
            )
        f = s.failures
        assert len(f) == 50
        assert f.explanation.iloc[-1] == "failure 699" and f.explanation.iloc[0] == "failure 650"
        assert s.failure_counts == {"missing_header": 350, "signature_mismatch": 350}
        assert s.counts["failures"] == 700
        rows = s._db.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
        assert rows <= 50 + 256  # the file's table is trimmed too
    with EventStore(path, max_failures=50) as again:
        assert len(again.failures) == 50 and again.counts["failures"] == 700
        assert again.failures.explanation.iloc[-1] == "failure 699"


def test_failure_records_are_redacted_and_previewed(store: EventStore) -> None:
    store.add_failure(
        "signature_mismatch",
        status=401,
        explanation="no match",
        headers={
            "Authorization": "token abc",
            "Cookie": "_xsrf=1",
            "xi-api-key": "sk_live",
            "X-Jupyter-Token": "t",
            "ElevenLabs-Signature": "t=1,v0=ab",
            "Content-Type": "application/json",
        },
        body=b"y" * 10_000,
        remote="34.67.146.145",
        path="/webhook",
    )
    row = store.failures.iloc[0]
    assert row.headers["Authorization"] == REDACTED and row.headers["Cookie"] == REDACTED
    assert row.headers["xi-api-key"] == REDACTED and row.headers["X-Jupyter-Token"] == REDACTED
    assert row.headers["ElevenLabs-Signature"] == "t=1,v0=ab"
    assert row.body_bytes == 10_000 and len(row.body_preview) < 400 and "10000 bytes" in row.body_preview
    assert (row.status, row.remote, row.path, row.reason) == (
        401,
        "34.67.146.145",
        "/webhook",
        "signature_mismatch",
    )
    assert "sk_live" not in (store.path.read_bytes() if store.path else b"").decode("latin-1")


def test_snapshots_never_change_after_they_are_taken(store: EventStore) -> None:
    all_bodies = bodies(10)
    store.append_many(all_bodies[:5])
    before = store.events
    store.append_many(all_bodies[5:])
    store.append(all_bodies[0])  # a duplicate updates a row in place
    assert len(before) == 5 and before.deliveries.tolist() == [1] * 5
    after = store.events
    assert len(after) == 10 and after.deliveries.iloc[0] == 2


def test_snapshots_are_read_only(store: EventStore) -> None:
    store.append_many(bodies(3))
    df = store.events
    with pytest.raises(ValueError, match="read-only"):
        df.loc[1, "duration_s"] = 5.0
    mine = df.copy()
    mine.loc[1, "duration_s"] = 5.0
    assert store.events.loc[1, "duration_s"] != 5.0


def raw(column: pd.Series) -> np.ndarray:
    """The memory behind a column, whatever its dtype."""
    values = column.array
    if isinstance(values, pd.Categorical):
        return values.codes
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return values.asi8
    return np.asarray(values)


@pytest.mark.slow  # a large store
def test_reading_after_new_events_copies_nothing(tmp_path: Path) -> None:
    # O(k) reads: a new snapshot is views onto the same buffers as the last one,
    # so reading at a million rows costs the same as at ten.
    with EventStore(":memory:") as s:
        s.append_many(bodies(3000))
        old = s.events
        s.append(bodies(1, seed=77)[0])
        new = s.events
        assert len(new) == len(old) + 1
        for col in ("received_at", "duration_s", "conversation_id", "event_type"):
            assert np.shares_memory(raw(old[col]), raw(new[col])), col


def test_memory_per_event_stays_small_whatever_the_body_size() -> None:
    with EventStore(":memory:") as s:
        s.append_many(bodies(100, types=["post_call_audio"], audio_bytes=1_000_000))
        s.append_many(bodies(100, seed=2, types=["post_call_transcription"]))
        usage = s.events.memory_usage(deep=True, index=True).sum()
        id_strings = sum(
            s.events[c].dropna().map(sys.getsizeof).sum()
            for c in ("conversation_id", "agent_id", "request_id")
        )
        assert (usage - id_strings) / len(s) < 1024


def test_concurrent_appends_lose_nothing(store: EventStore) -> None:
    all_bodies = bodies(800)
    shared = bodies(20, seed=3)
    results: list[int] = []
    lock = threading.Lock()

    def worker(part: list[bytes]) -> None:
        for body in part:
            r = store.append(body)
            with lock:
                results.append(r.id)

    threads = [threading.Thread(target=worker, args=(all_bodies[i::8] + shared,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store) == 820 and len(set(store.events.index)) == 820
    assert store.counts["deliveries"] == 800 + 8 * 20
    assert store.events.deliveries.sum() == 800 + 8 * 20
    assert store.events.index.is_monotonic_increasing


def test_errors_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        EventStore(tmp_path / "no" / "such" / "dir" / "x.sqlite")
    s = EventStore(":memory:")
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.append(bodies(1)[0])
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        EventStore(tmp_path / "junk.sqlite")


def test_a_failed_write_changes_nothing_in_memory(tmp_path: Path) -> None:
    with EventStore(tmp_path / "w.sqlite") as s:
        s.append(bodies(1)[0])
        s._db.execute(
            "CREATE TRIGGER nope BEFORE INSERT ON events BEGIN SELECT RAISE(FAIL, 'disk full'); END"
        )
        with pytest.raises(StoreError, match="disk full"):
            s.append(bodies(2, seed=4)[0])
        assert len(s) == 1 and s.counts["deliveries"] == 1
        s._db.execute("DROP TRIGGER nope")
        assert s.append(bodies(2, seed=4)[0]).id == 2  # recovers once the cause is gone


CHILD = textwrap.dedent(
    """
    import sys
    from elwh_nb import EventStore, payloads
    store = EventStore(sys.argv[1])
    factory = payloads(int(sys.argv[2]))
    while True:
        body = factory.body(factory.make("post_call_transcription"))
        result = store.append(body)
        sys.stdout.write(f"{result.id} {__import__('hashlib').sha256(body).hexdigest()}\\n")
        sys.stdout.flush()
    """
)


@pytest.mark.slow
def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), "11"], stdout=subprocess.PIPE, text=True
    )
    acked: dict[int, str] = {}
    deadline = time.monotonic() + 60
    assert child.stdout is not None
    while len(acked) < 300 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        number, digest = line.split()
        acked[int(number)] = digest
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= 300, "the child did not get going"
    with EventStore(path) as s:
        found = set(s.events.index)
        assert set(acked) <= found
        for event_id, digest in acked.items():
            assert hashlib.sha256(s.raw_body(event_id)).hexdigest() == digest


def test_many_event_types_widen_the_category_codes() -> None:
    with EventStore(":memory:") as s:
        s.append_many([b'{"type": "t%d"}' % i for i in range(300)])
        before = s.events
        s.append(b'{"type": "t5", "again": 1}')
        df = s.events
        assert df.event_type.tolist()[:3] == ["t0", "t1", "t2"] and df.event_type.iloc[-1] == "t5"
        assert len(df.event_type.cat.categories) == 300
        assert np.shares_memory(raw(before.event_type), raw(df.event_type))


@pytest.mark.parametrize(
    "stamp",
    [10**11, -(10**10), 10**12, "9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "2262-04-12T00:00:00Z"],
)
def test_times_pandas_cannot_hold_are_stored_as_nat(tmp_path: Path, stamp: object) -> None:
    # Valid datetimes outside 1677-2262 (pandas' nanosecond range): the event is kept, the time is NaT.
    event = {
        "type": "post_call_transcription",
        "event_timestamp": stamp,
        "data": {
            "conversation_id": "c1",
            "metadata": {"start_time_unix_secs": stamp, "call_duration_secs": 3},
        },
    }
    with EventStore(tmp_path / "t.sqlite") as s:
        result = s.append(json.dumps(event).encode())
        assert result.id == 1
        row = s.events.loc[1]
        assert pd.isna(row.event_timestamp) and pd.isna(row.call_started_at) and pd.isna(row.delivery_lag_s)
        assert row.conversation_id == "c1" and row.duration_s == 3
    with EventStore(tmp_path / "t.sqlite") as again:  # and so it reads back
        assert pd.isna(again.events.event_timestamp.iloc[0]) and len(again) == 1


def test_a_time_passed_in_must_be_one_pandas_can_hold(store: EventStore) -> None:
    with pytest.raises(ValueError, match="received_at"):
        store.append(bodies(1)[0], received_at=10**11)
    with pytest.raises(ValueError, match="submitted_at"):
        store.expect("job", submitted_at=-(10**10))
    assert len(store) == 0 and store.jobs.empty


def test_a_rolled_back_batch_leaves_no_event_type_behind(store: EventStore) -> None:
    store.append(b'{"type": "kept"}')
    # A real SQLite failure mid-way through a batch: the first body is inserted, the second fails.
    store._db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.event_type = 'poison'"
        " BEGIN SELECT RAISE(FAIL, 'disk full'); END"
    )
    with pytest.raises(StoreError, match="disk full"):
        store.append_many([b'{"type": "brand_new"}', b'{"type": "poison"}'])
    df = store.events
    assert list(df.event_type.cat.categories) == ["kept"]  # only types that have rows
    assert set(df.event_type.cat.categories) == set(df.event_type)
    store._db.execute("DROP TRIGGER poison")
    store.append_many([b'{"type": "brand_new"}', b'{"type": "later"}'])
    assert list(store.events.event_type) == ["kept", "brand_new", "later"]
    assert list(store.events.event_type.cat.categories) == ["kept", "brand_new", "later"]
