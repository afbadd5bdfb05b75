"""Crashes and a sick store: kill -9 mid-load, a full disk, a locked or read-only file, bad callbacks."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

import elwh_nb
from testkit.jupyter import free_port

from ..conftest import SECRET
from ..helpers import signed, wait_for


@pytest.mark.slow
def test_kill_9_mid_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path, port = tmp_path / "crash.sqlite", free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "elwh_nb", "serve", "--port", str(port), "--store", str(path)],
        env={**os.environ, "ELWH_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and "listening" in proc.stdout.readline()
    box: list[pd.DataFrame] = []
    sender = threading.Thread(
        target=lambda: box.append(
            elwh_nb.send(
                f"http://127.0.0.1:{port}/webhook",
                SECRET,
                4000,
                concurrency=32,
                retry=False,
                seed=4,
                progress=False,
            )
        )
    )
    sender.start()
    wait_for(
        lambda: (
            path.exists() and sqlite3.connect(path).execute("SELECT COUNT(*) FROM events").fetchone()[0] > 300
        ),
        60,
        "the load to be under way",
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    sender.join(120)
    sent = box[0]
    acked = set(sent.loc[sent.status == 200, "id"].astype(int))
    assert 100 <= len(acked) < 4000  # killed mid-load: many answered (300 were stored), some cut off
    assert sent.status.isna().any()
    with elwh_nb.EventStore(path) as store:
        assert acked <= set(store.events.index)


@pytest.fixture
def rx(tmp_path: Path) -> Iterator[elwh_nb.Receiver]:
    store = elwh_nb.EventStore(tmp_path / "sick.sqlite", lock_timeout=0.3)
    receiver = elwh_nb.start(SECRET, store=store)
    yield receiver
    receiver.stop()
    store.close()


def post(rx: elwh_nb.Receiver, seed: int) -> httpx.Response:
    body, headers = signed(seed=seed)
    return httpx.post(rx.local_url, content=body, headers=headers, timeout=30)


def test_a_full_disk_answers_500_says_why_and_recovers(rx: elwh_nb.Receiver) -> None:
    assert post(rx, 1).status_code == 200
    db = rx.store._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages}")  # the file may not grow: SQLITE_FULL
    answers = [post(rx, 10 + i).status_code for i in range(3)]
    assert answers == [500, 500, 500]
    f = rx.failures
    assert (f.reason == "store_error").sum() == 3
    assert f.explanation.str.contains("full").all()
    db.execute("PRAGMA max_page_count=1073741823")  # space again
    assert [post(rx, 10 + i).status_code for i in range(3)] == [200, 200, 200]  # the retries land
    assert len(rx.events) == 4


def test_a_read_only_store_answers_500_and_recovers(rx: elwh_nb.Receiver) -> None:
    rx.store._db.execute("PRAGMA query_only=ON")
    assert post(rx, 2).status_code == 500
    assert "readonly" in rx.failures.explanation.iloc[-1].replace("read-only", "readonly").replace(" ", "")
    rx.store._db.execute("PRAGMA query_only=OFF")
    assert post(rx, 2).status_code == 200


def test_a_locked_store_answers_500_and_recovers(rx: elwh_nb.Receiver) -> None:
    assert rx.store.path is not None
    other = sqlite3.connect(rx.store.path, isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the file
    try:
        assert post(rx, 3).status_code == 500
        assert "locked" in rx.failures.explanation.iloc[-1]
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert post(rx, 3).status_code == 200


@pytest.mark.parametrize(
    "where", ["_events.write", "append_many"]
)  # inside the store's transaction, or its API
def test_whatever_the_store_raises_every_delivery_is_answered(
    rx: elwh_nb.Receiver, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # Every other batch fails with some exception (not only sqlite3's) while many senders
    # wait on it: each gets an answer, 500 store_error for the failed ones, and the books add up.
    *parts, name = where.split(".")
    owner = functools.reduce(getattr, parts, rx.store)
    real_write = getattr(owner, name)
    faults = itertools.cycle(
        [
            OverflowError("Python int too large to convert to SQLite INTEGER"),
            RuntimeError("a bug"),
            KeyError("event_type"),
            MemoryError(),
            sqlite3.OperationalError("disk I/O error"),
            elwh_nb.StoreError("could not write"),
        ]
    )
    calls = itertools.count()

    def sick_write(*args: object, **kwargs: object) -> object:
        if next(calls) % 2:
            raise next(faults)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(owner, name, sick_write)
    sent = elwh_nb.send(
        rx.local_url,
        SECRET,
        300,
        concurrency=32,
        retry=False,
        timeout=20,
        types=["speech_to_text_transcription"],
        seed=6,
        progress=False,
    )
    assert sent.status.notna().all(), sent.error.dropna().tolist()[:3]  # nothing timed out
    assert set(sent.status) == {200, 500}
    assert rx._batcher.largest > 1  # the failures hit whole batches of waiting deliveries
    ok, failed = sent[sent.status == 200], sent[sent.status == 500]
    assert set(ok.id.astype(int)) == set(rx.events.index)
    assert (rx.failures.reason == "store_error").sum() == len(failed) == len(rx.failures)
    monkeypatch.setattr(owner, name, real_write)
    assert post(rx, 7).status_code == 200  # and the receiver goes on


def test_callbacks_that_raise_or_hang_do_not_stall_deliveries(rx: elwh_nb.Receiver) -> None:
    release = threading.Event()
    rx.on_event(lambda event: release.wait(60))  # hangs
    rx.on_event(lambda event: 1 / 0)  # raises
    started = time.monotonic()
    sent = rx.simulate(200, via="direct", seed=5, progress=False)
    assert (sent.status == 200).all()
    assert time.monotonic() - started < 30
    release.set()
    wait_for(lambda: len(rx.callback_errors) == 200, 30, "the raising callback's records")
    assert rx.callback_errors.error.str.startswith("ZeroDivisionError").all()


KILLED_MID_SAVE = """
import os, signal, sys
import numpy as np
from elwh_nb import EventStore, PayloadFactory
from elwh_nb._core import colcache

calls = []
write = np.lib.format.write_array

def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 with the copy half written
    return write(*args, **kwargs)

factory = PayloadFactory(seed=int(sys.argv[2]), now=1_750_000_000)
colcache.MIN_ROWS = 10**9  # no copy while opening: this writer dies saving at its close
store = EventStore(sys.argv[1])
store.append_many([factory.body(e) for e in factory.batch(100)])
colcache.MIN_ROWS = 50
np.lib.format.write_array = dying
store.close()
"""


@pytest.mark.slow
def test_writers_killed_mid_save_leave_no_temporary_copies_and_no_wrong_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from elwh_nb._core import colcache

    path = tmp_path / "big.sqlite"
    for at in (2, 5, 9):  # dies at the 2nd, 5th, 9th column written
        proc = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(path), str(at)], check=False)
        assert proc.returncode == -signal.SIGKILL
    left = list(tmp_path.glob("*.tmp"))
    assert len(left) == 3 and not colcache.path_for(path).exists()
    with sqlite3.connect(path) as db:
        stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert stored == 300  # every append was committed before the copy was written
    monkeypatch.setattr(colcache, "MIN_ROWS", 50)
    monkeypatch.setattr(colcache, "STALE_TMP_S", 0.0)  # the killed writers' files count as old now
    with elwh_nb.EventStore(path) as store:  # reads the 300 from the file and keeps a copy at once
        from_file = store.events
    assert list(tmp_path.glob("*.tmp")) == [] and colcache.path_for(path).exists()
    with elwh_nb.EventStore(path, readonly=True) as again:  # from the copy: the same frame
        pd.testing.assert_frame_equal(again.events.drop(columns="payload"), from_file.drop(columns="payload"))
