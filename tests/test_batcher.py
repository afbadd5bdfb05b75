"""The receiver's group commit and its checkpoints: a bounded log, answers whatever a checkpoint does."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import elwh_nb
from elwh_nb._server import batcher

from .conftest import SECRET
from .helpers import signed, wait_for

PAGE = 4096 + 24  # a log frame: a page and its header


@pytest.fixture
def store(tmp_path: Path) -> Iterator[elwh_nb.EventStore]:
    with elwh_nb.EventStore(tmp_path / "events.sqlite") as s:
        yield s


def post_all(url: str, seeds: range, concurrency: int = 16) -> list[int]:
    def one(seed: int) -> int:
        body, headers = signed(seed=seed)
        return httpx.post(url, content=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, seeds))


def wal_bytes(store: elwh_nb.EventStore) -> int:
    assert store.path is not None
    wal = store.path.with_name(store.path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.slow  # a large load
def test_the_log_stays_bounded_under_load_without_pauses(
    store: elwh_nb.EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's own checkpoints are off while a receiver runs: the receiver's must bound the log.
    monkeypatch.setattr(batcher, "CHECKPOINT_PAGES", 60)
    monkeypatch.setattr(batcher, "IDLE_CHECKPOINT_S", 3600)  # no pauses: only the bound checkpoints
    with elwh_nb.start(SECRET, store=store) as rx:
        assert post_all(rx.local_url, range(400)) == [200] * 400
        assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    # 400 calls of some 2 KB, each with its turns and conversation, took well over 1,000 log
    # pages; the log never held much more than 60 (the bound, plus the batch that crossed it).
    assert len(store.events) == 400 and len(store.turns) > 4000
    assert wal_bytes(store) < 4 * 60 * PAGE, wal_bytes(store)


def test_a_pause_checkpoints_what_any_write_left(
    store: elwh_nb.EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = store.checkpoint

    def counted() -> int:
        calls.append(1)
        return real()

    monkeypatch.setattr(store, "checkpoint", counted)
    monkeypatch.setattr(batcher, "IDLE_CHECKPOINT_S", 0.2)
    with elwh_nb.start(SECRET, store=store) as rx:
        assert post_all(rx.local_url, range(3)) == [200] * 3  # far below the bound
        wait_for(lambda: calls, 10, "a checkpoint after the deliveries paused")
        done = len(calls)
        body, headers = signed(seed=9, secret="wsec_test_not_the_one")
        assert httpx.post(rx.local_url, content=body, headers=headers).status_code == 401
        wait_for(lambda: len(calls) > done, 10, "a checkpoint after a recorded failure (no commit of events)")
    # The store goes on without a receiver: its commits checkpoint themselves again.
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_a_failing_checkpoint_stalls_no_delivery(
    store: elwh_nb.EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> int:
        raise elwh_nb.StoreError("disk I/O error")

    monkeypatch.setattr(store, "checkpoint", broken)
    monkeypatch.setattr(batcher, "CHECKPOINT_PAGES", 1)  # a checkpoint after every commit
    with elwh_nb.start(SECRET, store=store) as rx:
        assert post_all(rx.local_url, range(60)) == [200] * 60
    assert len(store.events) == 60


def test_stop_answers_the_deliveries_waiting_on_a_checkpoint(
    store: elwh_nb.EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()
    real = store.checkpoint

    def slow() -> int:
        started.set()
        release.wait(30)
        return real()

    monkeypatch.setattr(store, "checkpoint", slow)
    monkeypatch.setattr(batcher, "CHECKPOINT_PAGES", 1)
    rx = elwh_nb.start(SECRET, store=store)
    try:
        assert post_all(rx.local_url, range(1)) == [200]  # its commit starts the (held) checkpoint
        assert started.wait(10)
        with ThreadPoolExecutor(1) as pool:
            answers = pool.submit(post_all, rx.local_url, range(1, 9), 8)
            wait_for(lambda: len(rx._batcher.pending) == 8, 10, "8 deliveries waiting on the checkpoint")
            stopping = threading.Thread(target=rx.stop)
            stopping.start()
            wait_for(lambda: not _listening(rx.port), 10, "the receiver to stop listening")
            release.set()
            stopping.join(30)
            assert answers.result(30) == [200] * 8  # answered, not cut off by the stop
    finally:
        release.set()
        rx.stop()
    assert len(store.events) == 9


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
