"""The hook-only port: what a tunnel may point at, and nothing of Jupyter behind it.

A real `jupyter server` with the extension listens on a second, loopback-only port that
serves the public hook routes and nothing else. Through it, Jupyter's API, lab and proxy
paths are 404 even with the Jupyter token; the hook routes answer exactly as on the main
port (live, kept while away, retired, unknown).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

import elwh_nb
from elwh_nb import sign
from elwh_nb._server import routes as _routes
from testkit.jupyter import JupyterServer, free_port, jupyter_server

from .conftest import OTHER_SECRET, SECRET
from .helpers import signed

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it

NOT_HERE = {"ok": False, "status": 404}


@pytest.fixture(scope="module")
def hook_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hook_port: int) -> Iterator[JupyterServer]:
    with jupyter_server(tmp_path_factory.mktemp("jupyter"), args=(f"--ElwhHook.hook_port={hook_port}",)) as s:
        yield s


@pytest.fixture
def as_kernel(server: JupyterServer, monkeypatch: pytest.MonkeyPatch) -> JupyterServer:
    """This process gets the environment a kernel of ``server`` has."""
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ELWH_PUBLIC_URL", raising=False)
    return server


@pytest.fixture
def rx(as_kernel: JupyterServer) -> Iterator[elwh_nb.Receiver]:
    with elwh_nb.start(SECRET, store=":memory:", max_body=3_000_000) as receiver:
        yield receiver


def via_hook_port(port: int, route_id: str) -> str:
    return f"http://127.0.0.1:{port}/elwh/hook/{route_id}"


def marker(server: JupyterServer) -> dict[str, object]:
    data = json.loads((server.runtime / "elwh_nb" / "servers" / f"{server.pid}.json").read_text())
    assert isinstance(data, dict)
    return data


def listening(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs the process ``pid`` listens on."""
    proc = psutil.Process(pid)
    conns = proc.net_connections(kind="inet") if hasattr(proc, "net_connections") else proc.connections()
    return {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}


def test_the_hook_port_is_the_configured_one_on_loopback_only(
    server: JupyterServer, hook_port: int, rx: elwh_nb.Receiver
) -> None:
    assert marker(server)["hook_port"] == hook_port
    assert _routes.server_hook_port(server.pid) == hook_port
    assert rx.hook_port == hook_port
    assert {ip for ip, port in listening(server.pid) if port == hook_port} == {"127.0.0.1"}
    assert f"127.0.0.1:{hook_port}" in server.log.read_text()  # the server says where it is


def test_nothing_of_jupyter_is_reachable_through_the_hook_port(
    server: JupyterServer, hook_port: int, rx: elwh_nb.Receiver
) -> None:
    main, hook = server.origin, f"http://127.0.0.1:{hook_port}"
    # The token is good: on the main port these paths answer (the proxy reaches the receiver).
    assert httpx.get(f"{main}/jbase/api/status", headers=server.auth).status_code == 200
    assert httpx.get(f"{main}/jbase/api/kernels", headers=server.auth).status_code == 200
    assert httpx.get(f"{main}/jbase/api/contents", headers=server.auth).status_code == 200
    proxied = httpx.post(f"{main}/jbase/proxy/{rx.port}/webhook", content=b"{}", headers=server.auth)
    assert proxied.status_code == 401 and len(rx.failures) == 1  # the receiver's own answer: unsigned
    paths = [
        "/api/contents",
        "/api/kernels",
        "/api/status",
        "/api/sessions",
        "/api/terminals",
        "/lab",
        "/tree",
        "/login",
        "/",
        "/jbase/",
        "/jbase/api/contents",
        "/jbase/api/kernels",
        "/jbase/api/status",
        "/jbase/lab",
        "/jbase/files/server.log",
        "/jbase/static/style/bootstrap.min.css",
        f"/proxy/{rx.port}/webhook",
        f"/jbase/proxy/{rx.port}/webhook",
        f"/jbase/elwh/hook/{rx.route_id}",  # the main port's route path is not this port's
        "/elwh/hook/../../api/status",
        "/elwh/hook/%2e%2e%2f%2e%2e%2fapi%2fstatus/extra",
    ]
    answers = []
    with httpx.Client(base_url=hook, timeout=10) as client:
        for path in paths:
            for params in ({}, {"token": server.token}):
                answers.append((path, "GET", client.get(path, headers=server.auth, params=params)))
                answers.append(
                    (path, "POST", client.post(path, content=b"{}", headers=server.auth, params=params))
                )
            answers.append((path, "PUT", client.put(path, content=b"{}", headers=server.auth)))
            answers.append((path, "DELETE", client.delete(path, headers=server.auth)))
    wrong = [(path, method, a.status_code) for path, method, a in answers if a.status_code != 404]
    assert not wrong
    assert all(a.json() == NOT_HERE for _, _, a in answers)
    assert {a.headers["Content-Type"] for _, _, a in answers} == {"application/json"}
    log = server.log.read_text()  # the Jupyter token and the route id are not in the server's log
    assert "404 GET /api/kernels?token=[secret]" in log and server.token not in log
    assert rx.route_id is not None and rx.route_id not in log
    assert len(rx.events) == 0 and len(rx.failures) == 1  # nothing more reached the receiver


def test_hook_routes_answer_as_on_the_main_port(
    server: JupyterServer, hook_port: int, rx: elwh_nb.Receiver
) -> None:
    assert rx.route_id is not None and rx.public_url is not None
    hooked = via_hook_port(hook_port, rx.route_id)
    unknown = "B" * 32
    for url, other, seed in (
        (rx.public_url, f"{server.origin}/jbase/elwh/hook/{unknown}", 1),
        (hooked, via_hook_port(hook_port, unknown), 2),
    ):
        body, headers = signed(seed=seed)
        ok = httpx.post(url, content=body, headers=headers)
        assert ok.status_code == 200, ok.text
        assert rx.store.raw_body(ok.json()["id"]) == body  # byte for byte
        tampered = httpx.post(url, content=body + b" ", headers=headers)
        assert tampered.status_code == 401 and tampered.json()["reason"] == "signature_mismatch"
        assert rx.failures.iloc[-1].remote == "127.0.0.1 (via 127.0.0.1)"
        assert httpx.post(other, content=body, headers=headers).status_code == 404
        assert [httpx.get(u).status_code for u in (url, other)] == [405, 405]
        assert httpx.put(url, content=b"{}").status_code == 405
    assert len(rx.events) == 2 and rx.failures.reason.tolist() == ["signature_mismatch"] * 2
    # Same short answers, byte for byte, on both ports.
    for path_main, path_hook in (
        (rx.public_url, hooked),
        (f"{server.origin}/jbase/elwh/hook/{unknown}", via_hook_port(hook_port, unknown)),
    ):
        assert httpx.get(path_main).text == httpx.get(path_hook).text
        assert httpx.post(path_main.replace(rx.route_id, unknown), content=b"{}").text == (
            httpx.post(path_hook.replace(rx.route_id, unknown), content=b"{}").text
        )


def test_bodies_up_to_the_receivers_cap_pass_and_bigger_ones_are_refused(
    hook_port: int, rx: elwh_nb.Receiver
) -> None:
    assert rx.route_id is not None
    url = via_hook_port(hook_port, rx.route_id)
    body = b'{"type":"post_call_audio","data":{"full_audio":"' + b"A" * 2_500_000 + b'"}}'
    r = httpx.post(url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)}, timeout=30)
    assert r.status_code == 200 and rx.store.raw_body(r.json()["id"]) == body
    big = b'{"type":"x","pad":"' + b"A" * 3_100_000 + b'"}'
    assert (
        httpx.post(url, content=big, headers={"ElevenLabs-Signature": sign(big, SECRET)}).status_code == 413
    )
    head = (
        f"POST /elwh/hook/{rx.route_id} HTTP/1.1\r\nHost: 127.0.0.1:{hook_port}\r\n"
        "Content-Length: 100000000000\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", hook_port), timeout=10) as s:
        s.sendall(head.encode() + b"{")
        assert s.recv(65536).startswith(b"HTTP/1.1 413")
    reasons = rx.failures.reason.tolist()
    assert reasons == ["body_too_large", "body_too_large"]
    assert "refused by the public hook route without being read" in rx.failures.explanation.iloc[-1]


def test_kept_while_away_and_retired_through_the_hook_port(
    as_kernel: JupyterServer, hook_port: int, tmp_path: Path
) -> None:
    store = tmp_path / "events.sqlite"
    with elwh_nb.start(SECRET, store=store) as first:
        route_id = first.route_id
    assert route_id is not None
    url = via_hook_port(hook_port, route_id)
    answers = []
    for seed, secret in ((1, SECRET), (2, SECRET), (3, OTHER_SECRET)):
        body, headers = signed(seed=seed, secret=secret)
        answers.append(httpx.post(url, content=body, headers=headers))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.json()["kept"] is True for a in answers)
    rx = elwh_nb.start(SECRET, store=store)
    try:
        assert rx.route_id == route_id and rx.kept_while_away == 3
        assert len(rx.events) == 2 and rx.events.kept_while_away.all()
        assert rx.failures.reason.tolist() == ["signature_mismatch"]  # the forged one
        rx.retire()
    finally:
        rx.stop()
    body, headers = signed(seed=4)
    gone = httpx.post(url, content=body, headers=headers)
    assert gone.status_code == 410 and gone.json() == {"ok": False, "status": 410}
    assert httpx.post(via_hook_port(hook_port, "C" * 32), content=body, headers=headers).status_code == 404
    # The route id is the URL's secret part: the server's log shows a stand-in, on this port too.
    log = as_kernel.log.read_text()
    assert route_id not in log and "POST /elwh/hook/<route id>" in log


def pair_of_free_ports(offset: int) -> int:
    """A free port ``p`` whose ``p + offset`` is free too."""
    for _ in range(50):
        port = free_port()
        if port + offset > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
        return port
    raise AssertionError("no pair of free ports")


def test_the_default_port_follows_the_jupyter_port_and_survives_a_restart(tmp_path: Path) -> None:
    root, port = tmp_path / "jupyter", pair_of_free_ports(1000)
    ports = []
    for _ in range(2):  # the same server configuration, started twice
        with jupyter_server(root, port=port) as server:
            ports.append(marker(server)["hook_port"])
            body, headers = signed(seed=1)
            r = httpx.post(via_hook_port(port + 1000, "D" * 32), content=body, headers=headers)
            assert r.status_code == 404 and r.json() == NOT_HERE
    assert ports == [port + 1000, port + 1000]


def test_a_busy_hook_port_leaves_the_server_running_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        with jupyter_server(tmp_path / "jupyter", args=(f"--ElwhHook.hook_port={busy}",)) as server:
            assert marker(server)["hook_port"] is None
            log = server.log.read_text()
            assert f"cannot listen on 127.0.0.1:{busy}" in log and "c.ElwhHook.hook_port" in log
            line = next(x for x in log.splitlines() if f"cannot listen on 127.0.0.1:{busy}" in x)
            assert line.startswith("[W ")  # a warning in the server's log
            for key, value in server.env().items():
                monkeypatch.setenv(key, value)
            with elwh_nb.start(SECRET, store=":memory:") as rx:
                assert rx.hook_port is None
                body, headers = signed(seed=1)  # the main port's route still works
                assert httpx.post(rx.url, content=body, headers=headers).status_code == 200
    with jupyter_server(tmp_path / "off", args=("--ElwhHook.hook_port=0",)) as off:
        assert marker(off)["hook_port"] is None
        assert {port for _, port in listening(off.pid)} == {off.port}  # 0: no second port at all


def test_server_hook_port_reads_the_marker_of_a_live_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess
    import sys

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    _routes.mark_server(os.getpid(), hook_port=9888)
    assert _routes.server_hook_port(os.getpid()) == 9888
    _routes.mark_server(os.getpid())
    assert _routes.server_hook_port(os.getpid()) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    _routes.mark_server(child.pid, hook_port=9889)
    assert _routes.server_hook_port(child.pid) is None  # a dead server's port is nobody's
    assert _routes.server_hook_port(child.pid + 10_000_000) is None  # no marker at all


def test_outside_jupyter_there_is_no_hook_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_PARENT_PID", raising=False)
    with elwh_nb.start(SECRET, store=":memory:") as rx:
        assert rx.hook_port is None


def test_a_kept_alive_connection_survives_the_hook_ports_refusals(
    hook_port: int, rx: elwh_nb.Receiver
) -> None:
    # A tunnel keeps its connections to the hook port open: each answer after which the
    # connection is closed says so, so the tunnel's next delivery does not fail.
    assert rx.route_id is not None
    url = via_hook_port(hook_port, rx.route_id)
    with httpx.Client(timeout=10) as client:
        answers = []
        for seed in range(10):
            body, headers = signed(seed=seed)
            answers.append(client.post(via_hook_port(hook_port, "E" * 32), content=body, headers=headers))
            answers.append(client.post(f"http://127.0.0.1:{hook_port}/api/kernels", content=body))
            answers.append(client.get(url))
            answers.append(client.post(url, content=body, headers=headers))
    assert [a.status_code for a in answers] == [404, 404, 405, 200] * 10
    assert {a.headers["Connection"] for a in answers if a.status_code != 200} == {"close"}
    assert len(rx.events) == 10


def test_agent_tools_are_answered_through_the_hook_port_too(
    as_kernel: JupyterServer, hook_port: int, tmp_path: Path
) -> None:
    call_secret = "wsec_test_call_" + "7" * 32
    with elwh_nb.start(SECRET, store=tmp_path / "t.sqlite", call_secret=call_secret) as rx:

        @rx.tool("echo", method="GET")
        def echo(word: str) -> dict[str, str]:
            """Say it back."""
            return {"word": word}

        url = via_hook_port(hook_port, rx.route_id or "") + "/tools/echo?word=hi"
        got = httpx.get(url, headers={"X-Callback-Secret": call_secret})
        assert got.status_code == 200 and got.json() == {"word": "hi"}
        assert httpx.get(url).status_code == 401
        assert len(rx.calls) == 2
