"""The call route against strangers: no way out of a tool's path, bodies capped unread, every error answered.

A real `jupyter server` with the extension and its hook-only port, and a real receiver
(this process has a kernel's environment). Requests go out with ``http.client``, which
sends a path exactly as written (httpx would fold ``..`` away before sending).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import elwh_nb
from elwh_nb._core.protocol import ACK_HEADER, CALL_HEADER, MAX_CALL_BODY, ROUTE_TOKEN_HEADER, ack
from elwh_nb._core.tools import Tool
from elwh_nb._server import routes as _routes
from testkit.jupyter import JupyterServer, free_port, jupyter_server
from testkit.processes import rss_bytes

from .conftest import SECRET
from .helpers import signed

pytestmark = pytest.mark.slow  # a real server: `make test-fast` skips it

CALL_SECRET = "wsec_test_call_" + "5" * 32
AUTH = {"X-Callback-Secret": CALL_SECRET}


@pytest.fixture(scope="module")
def hook_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hook_port: int) -> Iterator[JupyterServer]:
    with jupyter_server(tmp_path_factory.mktemp("jupyter"), args=(f"--ElwhHook.hook_port={hook_port}",)) as s:
        yield s


@pytest.fixture
def rx(server: JupyterServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[elwh_nb.Receiver]:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ELWH_PUBLIC_URL", raising=False)
    with elwh_nb.start(SECRET, store=tmp_path / "calls.sqlite", call_secret=CALL_SECRET) as receiver:

        @receiver.tool("echo", method="POST")
        def echo(word: str) -> dict[str, str]:
            """Say it back."""
            return {"word": word}

        yield receiver


def bases(rx: elwh_nb.Receiver, server: JupyterServer, hook_port: int) -> dict[str, tuple[int, str]]:
    """The route's path on each port that serves it: Jupyter's, and the hook-only one."""
    path = urlsplit(rx.url).path
    return {"jupyter port": (server.port, path), "hook port": (hook_port, f"/elwh/hook/{rx.route_id}")}


def request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {}, **kw)
        got = conn.getresponse()
        return got.status, {k.lower(): v for k, v in got.getheaders()}, got.read()
    finally:
        conn.close()


DOTTED = [
    "/tools/echo/../..",
    "/tools/echo/..",
    "/tools/echo/../../..",
    "/tools/echo/%2e%2e/%2E%2E",
    "/tools/echo/.%2e/..",
    "/tools/echo/./x",
    "/initiation/../..",
]


def test_dot_segments_never_leave_the_tool_path(
    rx: elwh_nb.Receiver, server: JupyterServer, hook_port: int
) -> None:
    """Once, ``<route>/tools/echo/../..`` reached the receiver's webhook path with the route token."""
    body, headers = signed("post_call_transcription", seed=3)
    for where, (port, base) in bases(rx, server, hook_port).items():
        for dotted in DOTTED:
            for method in ("POST", "GET"):
                status, _, answer = request(
                    port, method, base + dotted, body if method == "POST" else None, headers
                )
                assert status == 400, (where, dotted, method, status, answer)
                assert b"dot segment" in answer and b"elwh-nb" not in answer  # not the receiver's health
    assert len(rx.events) == 0  # the signed webhook posted there was not stored
    # A tool whose parameter is a path segment named ".." by a caller's mistake: still refused
    # whole, not folded into another URL; a plain tool call still passes.
    port, base = bases(rx, server, hook_port)["jupyter port"]
    status, _, answer = request(port, "POST", base + "/tools/echo", json.dumps({"word": "hi"}), AUTH)
    assert status == 200 and json.loads(answer) == {"word": "hi"}


def test_the_receiver_answers_a_relayed_call_only_on_its_call_paths(rx: elwh_nb.Receiver) -> None:
    """Whatever URL a call was relayed to, the webhook path does not take it (and says so, acked)."""
    route = _routes.lookup(rx.route_id or "")
    assert route is not None and route.receiver is not None
    token = route.receiver.token  # what the route, and only it, sends
    body, headers = signed("post_call_transcription", seed=4)
    port, path = urlsplit(rx.local_url).port, urlsplit(rx.local_url).path
    assert port is not None
    relayed = {**headers, ROUTE_TOKEN_HEADER: token, CALL_HEADER: "1"}
    for method in ("POST", "GET"):
        status, got, answer = request(port, method, path, body if method == "POST" else None, relayed)
        assert status == 404 and b"not a tool" in answer
        assert got[ACK_HEADER.lower()] == ack(token)  # the route passes it on, not "not running"
    assert len(rx.events) == 0
    # The same delivery relayed as a delivery (no call header) is stored.
    status, _, _ = request(port, "POST", path, body, {**headers, ROUTE_TOKEN_HEADER: token})
    assert status == 200 and len(rx.events) == 1


def chunks(total: int, size: int = 1 << 16) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = b"x" * min(size, total - sent)
        sent += len(piece)
        yield piece


def test_call_bodies_over_the_cap_get_a_413_and_a_record_on_every_path(
    rx: elwh_nb.Receiver, server: JupyterServer, hook_port: int
) -> None:
    """Directly, through Jupyter's port and through the hook port; declared, chunked, just over."""
    local = urlsplit(rx.local_url)
    assert local.port is not None
    paths = {"direct": (local.port, local.path), **bases(rx, server, hook_port)}
    over = {
        "1 MB + 10 B": lambda: (b"x" * (MAX_CALL_BODY + 10), {}),
        "3 MB chunked": lambda: (chunks(3_000_000), {"Transfer-Encoding": "chunked"}),
        "10 GB declared": lambda: (b"x" * 10, {"Content-Length": str(10 * 2**30)}),
    }
    expected = 0
    for where, (port, base) in paths.items():
        for what, make in over.items():
            body, extra = make()
            try:
                status, _, answer = request(
                    port,
                    "POST",
                    base + "/tools/echo",
                    body,
                    {**AUTH, **extra},
                    encode_chunked="chunked" in what,
                )
            except (BrokenPipeError, ConnectionResetError) as exc:  # once: a reset, no answer
                pytest.fail(f"{where}, {what}: {exc!r}")
            expected += 1
            assert status == 413, (where, what, status, answer)
            assert b"over the 1048576 bytes" in answer, answer
            calls = rx.calls
            assert len(calls) == expected, (where, what)  # recorded, whichever door it came by
            assert calls.status.iloc[-1] == 413 and "1048576" in calls.error.iloc[-1]
    assert (rx.calls.name == "echo").all()


def test_the_jupyter_port_refuses_a_big_call_body_before_reading_it(
    rx: elwh_nb.Receiver, server: JupyterServer
) -> None:
    """Once it read a whole 300 MB body first (+591 MB of server memory)."""
    port, base = (server.port, urlsplit(rx.url).path)
    # Declared 300 MB, and only 10 bytes sent: the answer comes without the rest (it is not awaited).
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = (
            f"POST {base}/tools/echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 300000000\r\n"
            f"X-Callback-Secret: {CALL_SECRET}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"x" * 10)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Streamed in without a length: cut off after a few MB; the server does not grow by the body.
    before = rss_bytes(server.pid)
    box: list[Any] = []

    def send() -> None:
        try:
            box.append(
                request(
                    port,
                    "POST",
                    base + "/tools/echo",
                    chunks(300_000_000, 1 << 20),
                    AUTH,
                    encode_chunked=True,
                )
            )
        except OSError as exc:  # the server closed the connection while the rest was being sent
            box.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(120)
    assert not sender.is_alive()
    assert rss_bytes(server.pid) - before < 100_000_000
    assert rx.calls.status.tolist()[-2:] == [413, 413]


def test_an_error_nobody_foresaw_is_answered_recorded_and_acked(
    rx: elwh_nb.Receiver, server: JupyterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once: a 200,000-deep JSON body raised RecursionError, and the route said "not running" (503)."""
    port, base = (server.port, urlsplit(rx.url).path)
    deep = b"[" * 200_000 + b"]" * 200_000
    status, _, answer = request(
        port, "POST", base + "/tools/echo", deep, {**AUTH, "Content-Type": "application/json"}
    )
    assert status == 400 and b"nested too deeply" in answer, answer
    rx.initiation(lambda caller_id: {"name": "Ada"})
    status, _, answer = request(port, "POST", base + "/initiation", deep, AUTH)
    assert status == 400 and b"nested too deeply" in answer, answer

    # Any other failure in handling (here, one planted where users never reach): a 500 that
    # says so, recorded, and through the route as it is, not as "the notebook is not running".
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise LookupError("planted")

    monkeypatch.setattr(Tool, "arguments", broken)
    status, _, answer = request(port, "POST", base + "/tools/echo", b'{"word": "x"}', AUTH)
    assert status == 500 and b"LookupError" in answer and b"not running" not in answer, answer
    calls = rx.calls
    assert calls.status.tolist() == [400, 400, 500]
    assert "LookupError: planted" in calls.error.iloc[-1]
