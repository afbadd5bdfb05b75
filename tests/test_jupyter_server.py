"""Through a real `jupyter server` with jupyter-server-proxy and the elwh_nb extension.

The receiver runs in this test process with the environment a kernel of that server has
(JPY_PARENT_PID, the runtime directory), so it finds the server as it would in a kernel.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import elwh_nb
from elwh_nb import sign
from testkit.jupyter import JupyterServer, jupyter_server
from testkit.processes import rss_bytes

from .conftest import OTHER_SECRET, SECRET
from .helpers import signed, wait_for

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with jupyter_server(tmp_path_factory.mktemp("jupyter")) as s:
        yield s


@pytest.fixture
def rx(server: JupyterServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[elwh_nb.Receiver]:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ELWH_PUBLIC_URL", raising=False)
    with elwh_nb.start(SECRET, store=":memory:", max_body=3_000_000) as receiver:
        yield receiver


def test_the_extension_is_enabled_by_installing_the_package(server: JupyterServer) -> None:
    # No config was passed: the server loaded elwh_nb from the installed config file.
    assert "elwh_nb" in server.log.read_text()


def test_urls_point_at_the_public_route_and_the_proxy(rx: elwh_nb.Receiver, server: JupyterServer) -> None:
    assert rx.public_url is not None and rx.url == rx.public_url
    assert rx.url.startswith(f"{server.origin}/jbase/elwh/hook/")
    assert rx.proxy_url == f"{server.origin}/jbase/proxy/{rx.port}/webhook"
    assert rx.url_note is not None and "ELWH_PUBLIC_URL" in rx.url_note  # local host in the URL
    for text in (rx.url, rx.proxy_url, repr(rx), rx.url_note):
        assert server.token not in text


def test_public_route_needs_no_token(rx: elwh_nb.Receiver) -> None:
    body, headers = signed(seed=1)
    r = httpx.post(rx.url, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["id"] == 1
    assert rx.store.raw_body(1) == body  # byte for byte through the route


def test_public_route_passes_rejections_through_and_they_are_recorded(rx: elwh_nb.Receiver) -> None:
    body, _ = signed(seed=2)
    r = httpx.post(
        rx.url, content=body, headers={"ElevenLabs-Signature": sign(body, OTHER_SECRET), "Cookie": "x=1"}
    )
    assert r.status_code == 401 and r.json()["reason"] == "signature_mismatch"
    f = rx.failures.iloc[-1]
    assert f.reason == "signature_mismatch" and f.remote == "127.0.0.1 (via 127.0.0.1)"
    assert "Cookie" not in f.headers  # credentials are not forwarded at all


def test_public_route_refuses_big_bodies_and_the_receiver_records_how(
    rx: elwh_nb.Receiver, server: JupyterServer
) -> None:
    big = b'{"type":"x","pad":"' + b"A" * 3_100_000 + b'"}'
    r = httpx.post(rx.url, content=big, headers={"ElevenLabs-Signature": sign(big, SECRET)})
    assert r.status_code == 413
    f = rx.failures.iloc[-1]
    assert f.reason == "body_too_large" and f"{len(big)} bytes" in f.explanation
    assert "read and discarded by the public hook route" in f.explanation  # a little over: read
    assert "max_body=" in f.explanation and "elwh_nb.start(" in f.explanation
    # Far over by its Content-Length: the route refuses it unread.
    path = rx.url.split(str(server.port), 1)[1]
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Content-Length: 100000000000\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head.encode() + b"{")
        assert s.recv(65536).startswith(b"HTTP/1.1 413")
    f = rx.failures.iloc[-1]
    assert "100000000000 bytes" in f.explanation
    assert "refused by the public hook route without being read" in f.explanation

    def chunks() -> Iterator[bytes]:
        for _ in range(1000):  # 10 MB streamed: the route stops reading and closes
            yield b"A" * 10_000

    with contextlib.suppress(httpx.HTTPError):
        httpx.post(rx.url, content=chunks(), headers={"ElevenLabs-Signature": "t=1,v0=a"}, timeout=10)
    wait_for(lambda: len(rx.failures) == 3, what="the third refusal")
    f = rx.failures.iloc[-1]
    assert "at least" in f.explanation and "connection was closed" in f.explanation
    assert "without being read" not in f.explanation


def test_the_route_strips_internal_headers_a_client_sends(rx: elwh_nb.Receiver) -> None:
    body, headers = signed(seed=11)
    internal = {"X-Elwh-Body-Too-Large": "5", "X-Elwh-Route-Token": "a guess", "X-Elwh-Other": "1"}
    r = httpx.post(rx.url, content=body, headers={**headers, **internal})
    assert r.status_code == 200 and rx.store.raw_body(r.json()["id"]) == body  # not refused as too large
    bad = httpx.post(
        rx.url, content=body, headers={"ElevenLabs-Signature": sign(body, OTHER_SECRET), **internal}
    )
    assert bad.status_code == 401
    recorded = rx.failures.headers.iloc[-1]  # what the sender sent, less what it may not send
    assert not [name for name in recorded if name.lower().startswith("x-elwh-")]


def _raw_post(url: str, lines: list[str], body: bytes) -> int:
    """POST with exactly these header lines (as curl sends them; httpx adds its own)."""
    parts = httpx.URL(url)
    with socket.create_connection((parts.host, parts.port or 80), timeout=30) as sock:
        head = [f"POST {parts.raw_path.decode()} HTTP/1.1", *lines, f"Content-Length: {len(body)}"]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return int(sock.recv(65536).split(b" ", 2)[1])


def test_a_failure_shows_the_headers_as_the_sender_sent_them(rx: elwh_nb.Receiver) -> None:
    # Not the route's request to the kernel: no Host 127.0.0.1:<kernel port>, no route token,
    # no Accept-Encoding or User-Agent of the route's HTTP client, no hop it appended.
    body, _ = signed(seed=12)
    host = httpx.URL(rx.url).netloc.decode()
    sent = [
        f"Host: {host}",
        "User-Agent: curl/8.5.0",
        "Accept: */*",
        "Content-Type: application/json",
        f"ElevenLabs-Signature: {sign(body, OTHER_SECRET)}",
        "X-Forwarded-For: 203.0.113.7",  # a proxy in front of the Jupyter server
    ]
    assert _raw_post(rx.url, sent, body) == 401
    recorded = {k.lower(): v for k, v in rx.failures.headers.iloc[-1].items()}
    expected = {k.lower(): v for k, _, v in (line.partition(": ") for line in sent)}
    assert recorded == {**expected, "content-length": str(len(body))}
    assert rx.failures.remote.iloc[-1].startswith("127.0.0.1 (via ")  # the route's peer, not the proxy's


def test_the_route_lets_go_of_each_body_once_forwarded(
    server: JupyterServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A burst of call audio must not pile up in the Jupyter server (a hub pod has 1-2 GiB):
    # each body is freed once forwarded, not when the server has been idle for a minute or two.
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    body = b'{"type":"post_call_audio","data":{"full_audio":"' + b"A" * 20_000_000 + b'"}}'
    headers = {"ElevenLabs-Signature": sign(body, SECRET)}
    with elwh_nb.start(SECRET, store=tmp_path / "audio.sqlite") as rx, httpx.Client(timeout=60) as client:
        assert client.post(rx.url, content=body, headers=headers).status_code == 200  # warm up
        before = rss_bytes(server.proc.pid)
        for _ in range(40):  # 800 MB in all
            assert client.post(rx.url, content=body, headers=headers).status_code == 200
        grown = rss_bytes(server.proc.pid) - before
        assert rx.store.counts["deliveries"] == 41
    assert grown < 250 * 2**20, f"the Jupyter server grew by {grown / 2**20:.0f} MiB"


def test_proxy_url_needs_the_jupyter_token(rx: elwh_nb.Receiver, server: JupyterServer) -> None:
    assert rx.proxy_url is not None
    body, headers = signed(seed=3)
    assert httpx.post(rx.proxy_url, content=body, headers=headers).status_code == 403
    r = httpx.post(rx.proxy_url, content=body, headers={**headers, **server.auth})
    assert r.status_code == 200
    assert len(rx.events) == 1


def test_unknown_ids_and_other_methods_reveal_nothing(rx: elwh_nb.Receiver, server: JupyterServer) -> None:
    base = f"{server.origin}/jbase/elwh/hook/"
    body, headers = signed(seed=4)
    answers = [
        httpx.post(base + "B" * 32, content=body, headers=headers),
        httpx.post(base + "short", content=body, headers=headers),
        httpx.post(base + "..%2F..%2Fapi%2Fstatus", content=body, headers=headers),
        httpx.post(base, content=body, headers=headers),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert len({a.text for a in answers}) == 1
    route = rx.url.rsplit("/", 1)[1]
    gets = [httpx.get(base + route), httpx.get(base + "B" * 32), httpx.put(base + route, content=b"{}")]
    assert [g.status_code for g in gets] == [405, 405, 405]
    assert len({g.text for g in gets}) == 1  # a real id and a made-up one look the same
    assert "signed POST deliveries from ElevenLabs" in gets[0].json()["error"]
    # A browser that opens the URL learns what it is for, and nothing about any id.
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    pages = [httpx.get(base + r, headers=browser) for r in (route, "B" * 32)]
    assert [p.status_code for p in pages] == [405, 405] and pages[0].text == pages[1].text
    assert pages[0].headers["content-type"].startswith("text/html") and pages[0].headers["allow"] == "POST"
    assert "signed <code>POST</code> deliveries from ElevenLabs" in pages[0].text
    assert route not in pages[0].text and "default-src 'none'" in pages[0].headers["content-security-policy"]
    assert len(rx.events) == 0 and len(rx.failures) == 0


def test_a_kept_alive_connection_survives_the_routes_refusals(
    rx: elwh_nb.Receiver, server: JupyterServer
) -> None:
    # Clients that keep connections open (a proxy, a tunnel) send the next delivery on the
    # same one: an answer given before the body was read (404, 405, 410, 413 unread), after
    # which the connection is closed, must say so (Connection: close), or that delivery fails.
    base = f"{server.origin}/jbase/elwh/hook/"
    with httpx.Client(timeout=10) as client:
        answers = []
        for seed in range(10):
            body, headers = signed(seed=seed)
            answers.append(client.post(base + "E" * 32, content=body, headers=headers))
            answers.append(client.get(rx.url))
            answers.append(client.post(rx.url, content=body, headers=headers))
    assert [a.status_code for a in answers] == [404, 405, 200] * 10
    assert {a.headers["Connection"] for a in answers if a.status_code != 200} == {"close"}
    assert len(rx.events) == 10


def test_a_stopped_in_memory_receiver_is_gone_from_the_route(
    server: JupyterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store in memory has no inbox to keep deliveries in: its URL ends with its receiver.
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    rx = elwh_nb.start(SECRET, store=":memory:")
    assert rx.url_note is not None and "new on every start()" in rx.url_note
    route_file = server.data / "elwh_nb" / "routes" / f"{rx.route_id}.json"
    assert route_file.exists()
    if os.name == "posix":
        assert oct(route_file.stat().st_mode & 0o777) == "0o600"
    url = rx.url
    rx.stop()
    assert not route_file.exists()
    body, headers = signed(seed=5)
    assert httpx.post(url, content=body, headers=headers).status_code == 404


def test_simulate_goes_the_way_an_outside_sender_would(rx: elwh_nb.Receiver) -> None:
    public = rx.simulate(12, faults={"tampered": 1, "duplicate": 1}, seed=6)
    assert public.ok.all()
    proxied = rx.simulate(5, via="proxy", seed=7)  # with this kernel's Jupyter credentials
    assert proxied.ok.all()
    assert len(rx.events) == 11 + 5


def test_many_deliveries_through_the_public_route(rx: elwh_nb.Receiver) -> None:
    sent = elwh_nb.send(
        rx.url, SECRET, 200, concurrency=16, seed=8, types=["speech_to_text_transcription"], progress=False
    )
    assert (sent.status == 200).all()
    wait_for(lambda: len(rx.events) == 200)


def test_without_the_extension_url_falls_back_to_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with jupyter_server(tmp_path / "plain", elwh_extension=False) as plain:
        for key, value in plain.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("ELWH_PUBLIC_URL", "https://notebooks.example.org")
        with pytest.warns(UserWarning, match="restart the Jupyter server"):
            rx = elwh_nb.start(SECRET, store=":memory:")
        with rx:
            assert rx.public_url is None and rx.route_id is None
            assert rx.url == f"https://notebooks.example.org/jbase/proxy/{rx.port}/webhook"
            assert rx.url_note is not None and "restart the Jupyter server" in rx.url_note
            assert "ELWH_PUBLIC_URL" not in rx.url_note  # the origin was set explicitly
            body, headers = signed(seed=9)
            local_proxy = rx.url.replace("https://notebooks.example.org", plain.origin)
            assert httpx.post(local_proxy, content=body, headers={**headers, **plain.auth}).status_code == 200
            missing = httpx.post(f"{plain.origin}/jbase/elwh/hook/{'C' * 32}", content=body, headers=headers)
            assert missing.status_code in (403, 404)  # no such route on this server
        assert len(rx.events) == 1


# -- agent tools and call personalisation through the public route ---------------------------
CALL_SECRET = "wsec_test_call_" + "9" * 32


def _tools(rx: elwh_nb.Receiver) -> None:
    @rx.tool("get_order", method="GET", path="{order_id}")
    def get_order(order_id: str, include_items: bool = False) -> dict[str, object]:
        """Look up an order."""
        return {"order_id": order_id, "items": ["tea"] if include_items else []}

    @rx.tool("update_order", method="PATCH")
    def update_order(order_id: str, note: str) -> dict[str, object]:
        """Add a note."""
        return {"order_id": order_id, "note": note}

    @rx.initiation(variables=["name"])
    def personalise(caller_id: str) -> dict[str, object]:
        return {"name": "Ada", "caller": caller_id}


def test_tools_and_call_starts_answered_through_the_public_route(
    server: JupyterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    with elwh_nb.start(SECRET, store=":memory:", call_secret=CALL_SECRET) as rx:
        _tools(rx)
        assert str(rx.tools.loc["get_order", "url"]).startswith(f"{server.origin}/jbase/elwh/hook/")
        secret = {"X-Callback-Secret": CALL_SECRET}
        got = httpx.get(f"{rx.url}/tools/get_order/A%2F1?include_items=true", headers=secret)
        assert got.status_code == 200 and got.json() == {"order_id": "A/1", "items": ["tea"]}
        got = httpx.patch(
            f"{rx.url}/tools/update_order", json={"order_id": "A1", "note": "x"}, headers=secret
        )
        assert got.json() == {"order_id": "A1", "note": "x"}
        # A client's internal headers do not pass, nor does a wrong secret.
        forged = {**secret, "X-Elwh-Route-Token": "guess"}
        assert httpx.get(f"{rx.url}/tools/get_order/A1", headers=forged).status_code == 200
        assert (
            httpx.get(f"{rx.url}/tools/get_order/A1", headers={"X-Callback-Secret": "no"}).status_code == 401
        )
        assert httpx.get(f"{rx.url}/tools/get_order/A1").status_code == 401
        # The simulators take the route ElevenLabs would (via="auto" is the public route here).
        assert rx.simulate_tool_call("get_order", {"order_id": "B2"}) == {"order_id": "B2", "items": []}
        assert rx.simulate_call_start(caller_id="+15550100")["dynamic_variables"] == {
            "name": "Ada",
            "caller": "+15550100",
        }
        calls = rx.calls
        assert calls.status.tolist() == [200, 200, 200, 401, 401, 200, 200]
        assert calls.remote.iloc[0].endswith("(via 127.0.0.1)")  # the route's hop is named
        assert server.token not in calls.to_string() and CALL_SECRET not in calls.to_string()
        base = f"{server.origin}/jbase/elwh/hook/"
        unknown = httpx.get(base + "C" * 32 + "/tools/get_order/A1", headers=secret)
        assert unknown.status_code == 404 and "order" not in unknown.text


def test_calls_while_the_kernel_is_away_get_a_503_at_once_and_nothing_is_kept(
    server: JupyterServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    store = tmp_path / "away.sqlite"
    with elwh_nb.start(SECRET, store=store, call_secret=CALL_SECRET) as rx:
        url = rx.url
    got = httpx.get(f"{url}/tools/get_order/A1", headers={"X-Callback-Secret": CALL_SECRET}, timeout=10)
    assert got.status_code == 503 and "not running" in got.json()["error"]
    with elwh_nb.start(SECRET, store=store, call_secret=CALL_SECRET) as rx:
        assert rx.url == url
        assert len(rx.calls) == 0 and rx.kept_while_away == 0  # a call is not a delivery to keep
        _tools(rx)
        got = httpx.get(f"{url}/tools/get_order/A1", headers={"X-Callback-Secret": CALL_SECRET})
        assert got.status_code == 200
