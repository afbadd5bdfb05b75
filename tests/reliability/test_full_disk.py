"""A full disk while the kernel is away: the inbox leaves room, and nothing acknowledged is lost.

The store lives on a small tmpfs mounted for the test (root only), a real `jupyter server`
keeps deliveries for it while no receiver runs, and ``start()`` comes back on a disk that
something else has nearly filled.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import elwh_nb
from elwh_nb._core import inbox as _inbox
from elwh_nb._core.exceptions import InboxRefused
from testkit.jupyter import JupyterServer, jupyter_server

from ..conftest import SECRET, require
from ..helpers import signed, wait_for

pytestmark = pytest.mark.slow

DISK = 8 * 1024**2
RESERVE = 2 * 1024**2  # c.ElwhHook.inbox_min_free for the test's server


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = (
        shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)], capture_output=True
        ).returncode
        == 0
    )
    require(mounted, "mounting a small tmpfs", "run the tests as root (mount -t tmpfs) to test a full disk")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JupyterServer]:
    """A Jupyter server (its own files off the small disk); this process is one of its kernels."""
    with jupyter_server(tmp_path / "jupyter", args=(f"--ElwhHook.inbox_min_free={RESERVE}",)) as s:
        for key, value in s.env().items():
            monkeypatch.setenv(key, value)
        yield s


def conversation(seed: int) -> str:
    return str(elwh_nb.payloads(seed).make("post_call_transcription", turns=20)["data"]["conversation_id"])


def test_a_full_disk_refuses_with_503_first_and_loses_nothing_acknowledged(
    small_disk: Path, server: JupyterServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = small_disk / "events.sqlite"
    with elwh_nb.start(SECRET, store=store) as rx:
        url = rx.url
    # The kernel is away: send real-sized deliveries (about 24 kB each) until the route refuses.
    answers: dict[int, int] = {}
    seed = 0
    with httpx.Client(timeout=30) as client:
        while list(answers.values()).count(503) < 5:
            assert seed < 2000, "the route never refused"
            # Calls of one size: a smaller body could still fit after a bigger one was refused.
            body, headers = signed("post_call_transcription", seed=seed, turns=20)
            answers[seed] = client.post(url, content=body, headers=headers).status_code
            seed += 1
    statuses = list(answers.values())
    first_refusal = statuses.index(503)
    assert first_refusal > 100  # the disk held that many before the reserve
    assert set(statuses[:first_refusal]) == {200}
    assert set(statuses[first_refusal:]) == {503}  # retryable, and each one since
    free = shutil.disk_usage(small_disk).free
    assert free > RESERVE // 2, free  # refused before the disk was full
    assert "nearly full" in server.log.read_text()  # the server's log says why
    acknowledged = {conversation(s) for s, status in answers.items() if status == 200}
    with sqlite3.connect(store) as db:  # each 200 was committed
        assert db.execute("SELECT count(*) FROM inbox").fetchone()[0] == len(acknowledged)

    # Something else nearly fills the disk; the receiver comes back.
    filler = small_disk / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * (shutil.disk_usage(small_disk).free - 400 * 1024))
    with caplog.at_level(logging.WARNING, logger="elwh_nb"):
        rx = elwh_nb.start(SECRET, store=store)  # opens, and moves what fits
    try:
        assert rx.running
        moved = len(rx.events)
        assert 0 < moved < len(acknowledged), moved
        assert rx.url_note is not None and "wait in the store's inbox" in rx.url_note, rx.url_note
        assert "disk is full" in rx.url_note
        assert any("wait in the store's inbox" in r.getMessage() for r in caplog.records)
        # Space comes back (the filler goes, the disk grows: in events, a call also takes the
        # turns and conversation derived from it, about a sixth more than its body): the rest
        # moves on its own, each acknowledged delivery once.
        filler.unlink()
        subprocess.run(["mount", "-o", f"remount,size={2 * DISK}", str(small_disk)], check=True)
        wait_for(lambda: len(rx.events) >= len(acknowledged), timeout=60, what="the rest of the inbox")
        assert set(rx.events.conversation_id) == acknowledged
        assert len(rx.events) == len(acknowledged)
        assert rx.events.kept_while_away.all()
        assert rx.url_note is None or "inbox" not in rx.url_note
        assert rx.store.inbox_waiting == 0
    finally:
        rx.stop()


def test_the_reserve_refuses_a_delivery_that_would_eat_into_it(tmp_path: Path) -> None:
    store = tmp_path / "events.sqlite"
    elwh_nb.EventStore(store).close()
    body, headers = signed("post_call_transcription", seed=1)
    free = _inbox.free_bytes(store)
    now = time.time_ns()
    # More kept free than this disk has: refused as full (503), counted, nothing kept.
    near = _inbox.Limits(min_free=free + 1024**3)
    with pytest.raises(InboxRefused, match="nearly full") as refused:
        _inbox.keep(
            str(store), body, _inbox.kept_headers(headers), remote="127.0.0.1", received_ns=now, limits=near
        )
    assert refused.value.full
    # Well inside it: kept.
    assert _inbox.keep(
        str(store),
        body,
        _inbox.kept_headers(headers),
        remote="127.0.0.1",
        received_ns=now,
        limits=_inbox.Limits(min_free=0),
    )
    with elwh_nb.EventStore(store) as reopened:
        assert reopened.inbox_refused == 1 and reopened.inbox_waiting == 1
    assert _inbox.Limits().min_free == 64 * 1024**2


def test_a_store_on_a_full_disk_says_so_and_opens_once_there_is_room(small_disk: Path) -> None:
    store = small_disk / "events.sqlite"
    elwh_nb.EventStore(store).close()  # its write-ahead log and index go with the last close
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while out.write(b"\0" * 65536):  # until "no space left on device"
            pass
    assert shutil.disk_usage(small_disk).free == 0
    with pytest.raises(elwh_nb.StoreError, match="0 bytes free on its disk"):
        elwh_nb.EventStore(store)  # SQLite says only "disk I/O error"
    filler.unlink()
    with elwh_nb.EventStore(store) as reopened:
        assert len(reopened.events) == 0
