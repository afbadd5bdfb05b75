"""The store's parts on their own: category codes, the failure and call logs, the job tracker."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from elwh_nb._core.calls import CallLog
from elwh_nb._core.cappedlog import ITEM_CHARS, ITEMS, NAME_CHARS, TEXT_CHARS
from elwh_nb._core.codes import Codes
from elwh_nb._core.columns import Columns
from elwh_nb._core.failures import REDACTED, FailureLog, body_preview, redact_headers
from elwh_nb._core.jobs import Jobs
from elwh_nb._core.schema import CALLS, EVENTS, FAILURES
from elwh_nb._core.storefile import migrate


@pytest.fixture
def db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    migrate(db)
    return db


def failure(reason: str = "signature_mismatch", **extra: object) -> dict[str, object]:
    row: dict[str, object] = {c.name: None for c in FAILURES.stored if c.name != "id"}
    row.update(received_at=1, reason=reason, status=401, explanation="why", headers={}, body_preview="")
    row.update(body_bytes=0, **extra)
    return row


def test_codes_are_given_in_first_seen_order_and_none_is_missing() -> None:
    columns = Columns({"kind": "int8"})
    codes = Codes(columns, "kind")
    assert [codes.code(n) for n in ("b", "a", "b", None)] == [0, 1, 0, -1]
    assert codes.names == ["b", "a"]
    dtype = codes.dtype()
    assert list(dtype.categories) == ["b", "a"] and codes.dtype() is dtype  # made once
    codes.code("c")
    assert codes.dtype() is not dtype and list(codes.dtype().categories) == ["b", "a", "c"]


def test_codes_widen_their_column_as_pandas_would() -> None:
    columns = Columns({"kind": "int8"})
    codes = Codes(columns, "kind")
    for i in range(126):
        columns.append({"kind": codes.code(f"t{i}")})
    assert columns.snapshot()["kind"].dtype == np.int8
    columns.append({"kind": codes.code("t126")})  # the 127th name
    assert columns.snapshot()["kind"].dtype == np.int16
    assert list(columns.snapshot()["kind"][-2:]) == [125, 126]


def test_the_failure_log_keeps_the_newest_and_counts_all(db: sqlite3.Connection) -> None:
    log = FailureLog(max_failures=3)
    ids = [log.add(db, failure("stale_timestamp" if i % 2 else "signature_mismatch")) for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    df = log.snapshot()()
    assert list(df.index) == [3, 4, 5]
    assert list(df.reason) == ["signature_mismatch", "stale_timestamp", "signature_mismatch"]
    assert log.counts == {"signature_mismatch": 3, "stale_timestamp": 2}
    again = FailureLog(max_failures=3)
    again.load(db)
    assert list(again.snapshot()().index) == [3, 4, 5] and again.counts == log.counts


def test_the_failure_log_trims_the_file_now_and_then(db: sqlite3.Connection) -> None:
    log = FailureLog(max_failures=2)
    for _ in range(600):
        log.add(db, failure())
    kept = db.execute("SELECT min(id), count(*) FROM failures").fetchone()
    assert kept == (511, 90)  # trimmed at ids 256 and 512, each time to the newest 2
    assert len(log) == 2 and log.counts == {"signature_mismatch": 600}


def test_a_failure_the_file_refuses_is_kept_in_memory(db: sqlite3.Connection) -> None:
    log = FailureLog()
    db.execute("CREATE TRIGGER full BEFORE INSERT ON failures BEGIN SELECT RAISE(FAIL, 'disk full'); END")
    assert [log.add(db, failure()), log.add(db, failure())] == [-1, -2]
    df = log.snapshot()()
    assert df.explanation.iloc[0] == "why [not saved to the store file: disk full]"
    assert log.counts == {"signature_mismatch": 2}
    assert db.execute("SELECT count(*) FROM failure_counts").fetchone()[0] == 0  # rolled back
    assert log.last_id() == 0  # refresh then reads the file's rows from the start


def test_redaction_and_preview() -> None:
    assert redact_headers({"Cookie": "c", "X-Api-Key": "k", "Content-Type": "json"}) == {
        "Cookie": REDACTED,
        "X-Api-Key": REDACTED,
        "Content-Type": "json",
    }
    assert redact_headers([("a", "1"), ("a", "2")]) == {"a": "1, 2"}
    assert body_preview(b"x" * 5, limit=3) == "xxx… (5 bytes in all)" and body_preview(b"ab") == "ab"


def test_jobs_match_whichever_comes_first(db: sqlite3.Connection) -> None:
    events = Columns(EVENTS.dtypes)
    jobs = Jobs(events)
    assert not jobs
    db.execute(
        "INSERT INTO events (id, received_ns, last_received_ns, body_bytes, body_sha256, body,"
        " request_id) VALUES (1, 5000000000, 5000000000, 0, x'01', x'', 'early')"
    )
    events.append({"id": 1, "received_at": 5_000_000_000, "turnaround_s": np.nan, "request_id": "early"})
    jobs.expect(db, "early", 2_000_000_000, "stt")  # its event is already in
    jobs.expect(db, "late", 6_000_000_000, None)
    events.append({"id": 2, "received_at": 9_000_000_000, "turnaround_s": np.nan})
    jobs.match(db, {"id": 2, "received_at": 9_000_000_000, "request_id": None, "conversation_id": "late"})
    assert list(events.snapshot()["turnaround_s"]) == [3.0, 3.0]
    listed, received = jobs.snapshot()
    assert [(j.job_id, j.event_id) for j in listed] == [("early", 1), ("late", 2)]
    assert received == {"early": 5_000_000_000, "late": 9_000_000_000}
    assert db.execute("SELECT event_id FROM jobs WHERE job_id = 'late'").fetchone() == (2,)


def stranger_headers() -> dict[str, str]:
    """About what Tornado lets in: 64 KB of headers (60 of 1 KB, one of them 4 KB)."""
    headers = {f"X-Junk-{i:02d}-" + "n" * 100: "v" * 1000 for i in range(60)}
    headers["User-Agent"] = "u" * 4000
    return headers


def test_a_strangers_failure_keeps_a_bounded_row(db: sqlite3.Connection) -> None:
    """Once a refused request kept its whole headers: ~60 KB of memory and file per refusal."""
    log = FailureLog()
    log.add(db, failure(headers=stranger_headers(), path="/webhook/" + "p" * 60_000, details="d" * 100_000))
    row = log.snapshot()().iloc[0]
    assert len(row.headers) == ITEMS + 1 and row.headers["…"] == "29 more not kept"
    assert all(len(k) <= NAME_CHARS + 40 and len(v) <= ITEM_CHARS + 40 for k, v in row.headers.items())
    assert row.path.endswith("(60009 characters in all)") and len(row.details) < TEXT_CHARS + 40
    (stored,) = db.execute("SELECT length(headers) + length(path) + length(details) FROM failures").fetchone()
    assert stored < 30_000 and log.bytes < 30_000


def test_a_calls_parameters_are_kept_bounded(db: sqlite3.Connection) -> None:
    log = CallLog()
    params: dict[str, object] = {"order_id": "A1", "note": "n" * 100_000, "items": list(range(10_000))}
    params.update({f"p{i}": i for i in range(100)})
    row: dict[str, object] = {c.name: None for c in CALLS.stored if c.name != "id"}
    row.update(received_at=1, kind="tool", name="t", method="POST", status=200, latency_s=0.1)
    row.update(parameters=params, headers=stranger_headers(), answer="a" * 100_000, error="e" * 50_000)
    log.add(db, row)
    kept = log.snapshot()().iloc[0]
    assert kept.parameters["order_id"] == "A1"  # small values stay as they came
    assert kept.parameters["note"].endswith("(100000 characters in all)")
    assert kept.parameters["items"].startswith("[0, 1, 2") and "characters in all" in kept.parameters["items"]
    assert (
        len(kept.parameters) == ITEMS + 1
        and len(kept.answer) < 16_384 + 40
        and len(kept.error) < TEXT_CHARS + 40
    )


def test_a_log_keeps_its_newest_rows_within_its_bytes_in_memory_and_in_the_file(
    db: sqlite3.Connection,
) -> None:
    log = FailureLog(max_failures=100_000, max_bytes=200_000)
    for i in range(3000):
        log.add(db, failure(explanation=f"#{i} " + "x" * 2000))
    assert log.bytes <= 200_000 and 50 < len(log) < 100
    df = log.snapshot()()
    assert df.index[-1] == 3000 and list(df.index) == list(range(3001 - len(log), 3001))  # the newest
    assert df.explanation.iloc[-1].startswith("#2999 ")
    (rows, first) = db.execute("SELECT count(*), min(id) FROM failures").fetchone()
    assert rows < len(log) + 256 + 1 and first >= 3001 - len(log) - 256  # the file trimmed to them
    assert log.counts == {"signature_mismatch": 3000}  # counts are not bounded away
    again = FailureLog(max_failures=100_000, max_bytes=200_000)
    again.load(db)  # reopened: within its bytes too, the newest
    assert again.bytes <= 200_000 and again.snapshot()().index[-1] == 3000


def test_keep_newest_forgets_the_oldest_and_compacts() -> None:
    columns = Columns({"id": "int64", "text": "object"}, max_rows=1000)
    for i in range(500):
        columns.append({"id": i, "text": str(i)})
    before = columns.snapshot()
    columns.keep_newest(10)
    assert len(columns) == 10 and list(columns.snapshot()["id"]) == list(range(490, 500))
    assert len(before["id"]) == 500  # a snapshot taken before is untouched
    assert len(columns._arrays["text"]) < 500 or columns._lo == 0  # compacted: the forgotten let go of


def test_a_replica_takes_rows_by_column_name_and_refuses_what_it_has_no_column_for() -> None:
    from elwh_nb._core.replica import Replica
    from elwh_nb._core.schema import FAILURES

    replica = Replica(max_failures=10)
    names = [c.file_name for c in FAILURES.stored][:8]  # id, received_at, ..., body_bytes
    row = (7, 1_765_000_000_000_000_000, "signature_mismatch", 401, "no", "{}", "", 0)
    assert replica.add_failures(names, [row], {"signature_mismatch": 3})
    assert list(replica.failures.index) == [7] and replica.failure_counts == {"signature_mismatch": 3}
    with pytest.raises(ValueError, match="no columns"):
        replica.add_failures([*names[:-1], "secret"], [row], {})
    assert replica.last_failure_id() == 7 and FAILURES.name == "failures"
    replica.close()
    assert replica.closed and replica.add_failures(names, [row], {}) is False  # a pull after close
