"""Out of file descriptors: the receiver refuses early, says so once, does not spin, and recovers.

A receiver in its own process with a low file limit (RLIMIT_NOFILE 256). A stranger holds
more idle connections than that; or the process's other files use nearly all of them. Once,
1,100 idle connections against 1,024 files cost 98% CPU and 159 MB of "Too many open files"
tracebacks in about 20 s, and real webhooks timed out.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from elwh_nb import EventStore

from ..conftest import SECRET
from ..helpers import signed, wait_for

pytestmark = pytest.mark.slow

LIMIT = 256

RECEIVER = textwrap.dedent(
    """
    import logging, os, sys, elwh_nb
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with elwh_nb.start(sys.argv[2], store=sys.argv[1]) as rx:
        held = []
        if sys.argv[3] == "use-up":  # the process's other files take all but a few
            try:
                while True:
                    held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                for fd in held[-3:]:
                    os.close(fd)
                del held[-3:]
        print(rx.local_url, flush=True)
        sys.stdin.readline()
        for fd in held:  # "free": the other files are closed
            os.close(fd)
        sys.stdin.read()
    """
)


def low_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


@contextlib.contextmanager
def receiver(tmp_path: Path, mode: str) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    store = tmp_path / f"{mode}.sqlite"
    log = tmp_path / f"{mode}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, str(store), SECRET, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            preexec_fn=low_limit,
        )
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), log.read_text()
        try:
            yield proc, url, log
        finally:
            proc.communicate("\n", timeout=60)


def connect_many(url: str, n: int) -> list[socket.socket]:
    parts = urlsplit(url)
    assert parts.port is not None
    held = []
    for _ in range(n):
        with contextlib.suppress(OSError):
            held.append(socket.create_connection((parts.hostname or "127.0.0.1", parts.port), timeout=5))
    return held


def post(url: str, seed: int, timeout: float = 10) -> int:
    body, headers = signed("post_call_transcription", seed=seed)
    try:
        return httpx.post(url, content=body, headers=headers, timeout=timeout).status_code
    except httpx.TimeoutException:
        return -1  # hung: what must not happen
    except httpx.TransportError:
        return 0  # refused at the door: ElevenLabs retries, nothing was acknowledged


def cpu_s(process: psutil.Process) -> float:
    return float(sum(process.cpu_times()[:2]))


def test_strangers_holding_connections_are_capped_below_the_file_limit(tmp_path: Path) -> None:
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 2 * LIMIT + 100  # this process holds the sockets
    with receiver(tmp_path, "strangers") as (proc, url, log):
        process = psutil.Process(proc.pid)
        held = connect_many(url, 2 * LIMIT)
        try:
            cpu = cpu_s(process)
            # While they are held, deliveries are refused at the door at once (ElevenLabs
            # retries), never left hanging, and the receiver does not spin.
            answers = [post(url, seed) for seed in range(20)]
            assert set(answers) <= {0, 200}, answers
            assert cpu_s(process) - cpu < 5, "it spun"
        finally:
            for sock in held:
                sock.close()
        wait_for(lambda: post(url, 100) == 200, 30, "the receiver to take deliveries again")
        text = log.read_text()
        assert "Traceback" not in text and len(text) < 2_000, text[:2000]  # one line, not one per turn
        assert text.count("connections are open") == 1, text
        stored = answers.count(200)
    with EventStore(tmp_path / "strangers.sqlite", readonly=True) as store:
        assert len(store.events) == stored + 1


def test_a_process_out_of_files_pauses_accepting_and_serves_the_waiting_after(tmp_path: Path) -> None:
    with receiver(tmp_path, "use-up") as (proc, url, log):
        process = psutil.Process(proc.pid)
        held = connect_many(url, 10)  # take the few files left
        box: list[int] = []
        senders = [
            threading.Thread(target=lambda s=seed: box.append(post(url, s, timeout=120))) for seed in range(5)
        ]
        try:
            for sender in senders:
                sender.start()
            wait_for(
                lambda: "no file descriptor left" in log.read_text(), 30, "the receiver to run out of files"
            )
            # Out of files, it waits (the senders' connections queue in the kernel) without
            # spinning: its CPU over two seconds (once: all of one core).
            assert process.cpu_percent(interval=2.0) < 50, "it spun"
            assert box == []  # nothing answered yet: nothing was lost either
        finally:
            for sock in held:
                sock.close()
        proc.stdin.write("free\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        for sender in senders:
            sender.join(120)
        assert box == [200] * 5  # the deliveries that waited are served once files are free
        text = log.read_text()
        assert "Traceback" not in text and text.count("no file descriptor left") == 1, text[:2000]
    with EventStore(tmp_path / "use-up.sqlite", readonly=True) as store:
        assert len(store.events) == 5
