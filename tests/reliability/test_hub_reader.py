"""A reader of the hub service meets a hung, a dead and a replaced service, and strangers' numbers.

The service is real: its app on loopback, in a process of its own where it must hang (SIGSTOP)
or die (SIGKILL). Only the hub's answer to "whose token is this" is stubbed, as in
tests/test_hubservice.py, since no hub runs here.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import elwh_nb
from elwh_nb._server import hubclient
from elwh_nb._server.hubservice import HubService
from testkit.processes import free_port

from ..conftest import SECRET
from ..helpers import signed, stop_process, wait_for
from ..test_hubservice import PREFIX, READERS

pytest.importorskip("pyarrow")

SERVICE = """
import os, sys, threading
from pathlib import Path
from elwh_nb._server.hubapi import read_scope
from elwh_nb._server.hubservice import HubService

class Readers:
    async def scopes(self, token):
        return ("alice", {read_scope("calls")}) if token == "alice-token" else None

svc = HubService({"calls": os.environ["TEST_SECRET"]}, data_dir=Path(sys.argv[1]), prefix=sys.argv[3],
                 readers=Readers(), max_failures=50, max_body=2**20)
svc.start("127.0.0.1", int(sys.argv[2]))
print(svc.webhooks["calls"].route_id, flush=True)
threading.Event().wait()
"""


class Service:
    """The hub service in a process of its own, on a fixed port (so it can come back there)."""

    def __init__(self, data: Path, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE, str(data), str(port), PREFIX],
            env={**os.environ, "TEST_SECRET": SECRET},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.route_id = self.proc.stdout.readline().strip()
        self.base = f"http://127.0.0.1:{port}{PREFIX}"

    def deliver(self, seed: int) -> None:
        body, headers = signed(seed=seed)
        r = httpx.post(self.base + "hook/" + self.route_id, content=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hubclient, "TIMEOUT_S", 2.0, raising=False)
    monkeypatch.setattr(hubclient, "MAX_BACKOFF_S", 2.0, raising=False)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path / "data", free_port())
    yield svc
    svc.proc.send_signal(signal.SIGCONT)
    stop_process(svc.proc)


def test_a_hung_service_freezes_no_refresh_and_says_since_when(
    served: Service, fast_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hubclient, "TIMEOUT_S", 8.0, raising=False)  # far more than 20 refreshes take
    for seed in range(3):
        served.deliver(seed)
    conn = elwh_nb.connect("calls", url=served.base, token="alice-token")
    dash = conn.dashboard(autorefresh=False)
    try:
        assert len(conn.events) == 3
        os.kill(served.proc.pid, signal.SIGSTOP)  # hung: connections are accepted, never answered
        started = time.monotonic()
        for _ in range(20):  # what the dashboard's timer does on the kernel's loop, 20 times
            dash.tick()
            conn.store.changes  # noqa: B018
        # Before: each refresh waited 30 s for the service. Now none waits on it at all.
        assert time.monotonic() - started < hubclient.TIMEOUT_S
        started = time.monotonic()
        assert len(conn.events) == 3  # a cell's read waits for one pull, no longer
        assert time.monotonic() - started < 3 * hubclient.TIMEOUT_S
        wait_for(lambda: (conn.url_note or "").startswith("Service unreachable since"), 30, "the note")
        assert served.base.rstrip("/") in (conn.url_note or "")
        dash.refresh(force=True)
        assert "Service unreachable since" in dash.header.value
        started = time.monotonic()
        assert len(conn.failures) == 0  # known unreachable: no waiting at all
        assert time.monotonic() - started < hubclient.TIMEOUT_S
        os.kill(served.proc.pid, signal.SIGCONT)
        served.deliver(10)
        wait_for(
            lambda: len(conn.events) == 4 and "unreachable" not in (conn.url_note or ""),
            60,
            "the rows and the note after the service came back",
        )
    finally:
        dash.close()
        conn.close()


def test_a_dead_service_is_one_clear_error_and_its_reader_keeps_its_rows(
    served: Service, fast_backoff: None
) -> None:
    served.deliver(1)
    conn = elwh_nb.connect("calls", url=served.base, token="alice-token")
    try:
        assert len(conn.events) == 1
        served.proc.kill()
        served.proc.wait()
        assert len(conn.events) == 1  # the rows read before
        wait_for(lambda: "unreachable" in (conn.url_note or ""), 30, "the note")
        with pytest.raises(elwh_nb.ReceiverError, match="unreachable") as raised:
            elwh_nb.connect("calls", url=served.base, token="alice-token")
        assert served.base.rstrip("/") in str(raised.value)
        assert isinstance(raised.value.__cause__, type(None))  # no raw URLError chained for the user
    finally:
        conn.close()


def test_a_reader_notices_its_services_store_was_replaced(tmp_path: Path, fast_backoff: None) -> None:
    port = free_port()
    first = Service(tmp_path / "one", port)
    try:
        for seed in range(10):
            first.deliver(seed)
        conn = elwh_nb.connect("calls", url=first.base, token="alice-token")
        assert conn.events.index.tolist() == list(range(1, 11))
    finally:
        stop_process(first.proc)
    second = Service(tmp_path / "two", port)  # the data directory replaced: a new store
    try:
        for seed in range(100, 115):
            second.deliver(seed)
        with elwh_nb.EventStore(tmp_path / "two" / "calls.sqlite", readonly=True) as store:
            theirs = store.events.conversation_id.tolist()
        # Before: the reader kept its 10 old rows and added the new store's ids 11-15 only.
        wait_for(lambda: conn.events.conversation_id.tolist() == theirs, 30, "the new store's rows")
        assert conn.events.index.tolist() == list(range(1, 16))
    finally:
        conn.close()
        stop_process(second.proc)


@pytest.fixture
def odd_dir(tmp_path: Path) -> Iterator[tuple[HubService, str, Path]]:
    data = tmp_path / "data #1 ?x=%41"
    svc = HubService({"calls": SECRET}, data_dir=data, prefix=PREFIX, readers=READERS, max_failures=50)
    port = svc.start("127.0.0.1", 0)
    yield svc, f"http://127.0.0.1:{port}{PREFIX}", data
    svc.stop()


def test_a_data_directory_with_hash_question_mark_and_percent_is_read(
    odd_dir: tuple[HubService, str, Path], tmp_path: Path
) -> None:
    svc, base, data = odd_dir
    url = base + "hook/" + svc.webhooks["calls"].route_id
    body, headers = signed(seed=1)
    assert httpx.post(url, content=body, headers=headers).status_code == 200
    assert httpx.post(url, content=body, headers={"ElevenLabs-Signature": "t=1,v0=00"}).status_code == 400
    conn = elwh_nb.connect("calls", url=base, token="alice-token")
    try:
        assert len(conn.events) == 1 and conn.failures.reason.tolist() == ["malformed_header"]
    finally:
        conn.close()
    # Before, the unquoted URI opened "<tmp>/data " (cut at the "#"): an empty database there.
    assert sorted(p.name for p in tmp_path.iterdir()) == [data.name]


@pytest.mark.parametrize(
    "path",
    [
        "events?after=abc",
        "events?after=1e3",
        "events?after=-1",
        "events?after=" + "9" * 5000,
        "failures?after=1.5",
        "payload/" + "1" * 30,
    ],
)
def test_bad_numbers_are_a_400_with_a_short_reason(
    odd_dir: tuple[HubService, str, Path], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, base, _ = odd_dir
    with caplog.at_level(logging.WARNING):
        r = httpx.get(base + "api/calls/" + path, headers={"Authorization": "token alice-token"})
    assert r.status_code == 400, r.text
    assert "row id" in r.json()["error"] and len(r.reason_phrase) < 100
    assert not [rec for rec in caplog.records if rec.exc_info]  # no traceback in the service's log


def test_a_long_webhook_name_is_not_echoed_whole(odd_dir: tuple[HubService, str, Path]) -> None:
    _, base, _ = odd_dir
    name = "w" * 60_000
    r = httpx.get(base + "api/" + name, headers={"Authorization": "token alice-token"})
    assert r.status_code == 403
    assert len(r.reason_phrase) < 300 and "characters)" in r.reason_phrase
    assert name not in r.text


def test_pulls_from_a_cell_and_the_reader_thread_add_each_row_once(
    odd_dir: tuple[HubService, str, Path],
) -> None:
    svc, base, _ = odd_dir
    url = base + "hook/" + svc.webhooks["calls"].route_id
    conn = elwh_nb.connect("calls", url=base, token="alice-token")
    try:
        for seed in range(30):
            body, headers = signed(seed=seed)
            assert httpx.post(url, content=body, headers=headers).status_code == 200
            conn.store.puller.ask(urgent=True)  # the reader's thread pulls ...
            conn.store.pull()  # ... while a cell pulls too
        events = conn.events
        assert events.index.tolist() == list(range(1, 31))  # before: rows added twice
    finally:
        conn.close()
