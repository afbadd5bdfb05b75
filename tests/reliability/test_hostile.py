"""Hostile input: never a 5xx for bad input, the right 4xx, the receiver keeps serving, memory capped."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import elwh_nb
from elwh_nb import sign

from ..conftest import SECRET
from ..helpers import signed

BAD_INPUT_STATUSES = {400, 401, 404, 405, 413}


@pytest.fixture(scope="module")
def rx() -> Iterator[elwh_nb.Receiver]:
    with elwh_nb.start(SECRET, store=":memory:", max_body=100_000) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # One client (a new one per example costs far more than the request: its TLS set-up);
    # a fresh connection per request, as separate senders would open.
    with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        yield c


def still_serving(rx: elwh_nb.Receiver, seed: int = 0) -> None:
    body, headers = signed("speech_to_text_transcription", seed=seed)
    assert httpx.post(rx.local_url, content=body, headers=headers, timeout=10).status_code == 200


header_values = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300),
    st.lists(st.text("0123456789abcdefv=t,", max_size=70), max_size=40).map(",".join),
    st.just("t=1," + ",".join(f"v0={'a' * 64}" for _ in range(500))),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(str.encode)),
    header=header_values,
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
    method=st.sampled_from(["POST", "POST", "POST", "PUT", "PATCH", "DELETE"]),
)
def test_random_requests_get_a_4xx_never_a_5xx(
    rx: elwh_nb.Receiver, client: httpx.Client, body: bytes, header: str, content_type: str, method: str
) -> None:
    headers = {"ElevenLabs-Signature": header.strip()} if header.strip() else {}
    if content_type:
        headers["Content-Type"] = content_type
    r = client.request(method, rx.local_url, content=body, headers=headers)
    assert r.status_code in BAD_INPUT_STATUSES, (r.status_code, r.text)
    assert set(r.json()) <= {"ok", "reason", "status"}  # nothing echoed back


def test_signed_but_nasty_bodies(rx: elwh_nb.Receiver) -> None:
    nasty = [
        b"[" * 50_000 + b"]" * 50_000,  # deep nesting
        b'{"type":' + b"1" * 5000 + b"}",  # a number too long for int()
        b"\xff\xfe{}",  # invalid UTF-8
        json.dumps({"type": "x", "data": "é" * 10}).encode("utf-16"),
        b'{"type": NaN}',
    ]
    for body in nasty:
        r = httpx.post(
            rx.local_url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)}, timeout=10
        )
        assert r.status_code in (200, 400), r.status_code
    still_serving(rx, 1)


def raw(rx: elwh_nb.Receiver, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as s:
        out: list[bytes] = []
        try:
            s.sendall(data)
            while chunk := s.recv(65536):
                out.append(chunk)
        except ConnectionResetError:
            pass  # the server may answer and close while we still write
    return b"".join(out)


def test_what_http_clients_will_not_send(rx: elwh_nb.Receiver) -> None:
    huge_header = (
        b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert raw(rx, huge_header)[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 400", b"")
    head = "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n"
    non_ascii = head + "ElevenLabs-Signature: t=1,v0=é\r\n\r\n{}"
    assert raw(rx, non_ascii.encode("utf-8")).startswith(b"HTTP/1.1 400")
    garbage = b"\x00\x01\x02 not http at all\r\n\r\n"
    assert not raw(rx, garbage).startswith(b"HTTP/1.1 5")
    traversal = head.replace("/webhook", "/webhook/../../etc/passwd").encode() + b"\r\n{}"
    assert raw(rx, traversal).startswith(b"HTTP/1.1 404")
    forged = {"X-Forwarded-For": "6.6.6.6", "ElevenLabs-Signature": "t=1,v0=" + "a" * 64}
    httpx.post(rx.local_url, content=b"{}", headers=forged, timeout=10)
    assert rx.failures.remote.iloc[-1] == "6.6.6.6 (via 127.0.0.1)"  # shown as a claim, with the real peer
    still_serving(rx, 2)


@pytest.mark.slow
def test_a_flood_of_bad_requests_keeps_memory_capped() -> None:
    store = elwh_nb.EventStore(":memory:", max_failures=200)
    with elwh_nb.start(SECRET, store=store) as rx, httpx.Client(timeout=10) as client:
        for i in range(3000):
            client.post(
                rx.local_url,
                content=b'{"n": %d}' % i,
                headers={"ElevenLabs-Signature": f"t={i},v0=" + "b" * 64},
            )
        assert len(rx.failures) == 200  # the table is capped
        assert rx.store.counts["failures"] == 3000  # the counters keep counting
        still_serving(rx, 3)
    store.close()


def test_slow_senders_do_not_block_others(rx: elwh_nb.Receiver) -> None:
    held = []
    try:
        for i in range(100):  # connections that send half a request and then nothing
            s = socket.create_connection(("127.0.0.1", rx.port), timeout=10)
            s.sendall(
                b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
                if i % 2
                else b"POST /web"
            )
            held.append(s)
        body, headers = signed("speech_to_text_transcription", seed=9)
        r = httpx.post(rx.local_url, content=body, headers=headers, timeout=5)
        assert r.status_code == 200  # answered while a hundred senders stall
    finally:
        for s in held:
            s.close()
    still_serving(rx, 10)


@pytest.mark.parametrize("sent", [0, 10, 99])
def test_a_body_shorter_than_its_content_length_is_dropped(sent: int) -> None:
    """The body timeout holds whether none, some or all but one promised byte came with the headers."""
    with elwh_nb.start(SECRET, store=":memory:", body_timeout=1.0) as rx:
        s = socket.create_connection(("127.0.0.1", rx.port), timeout=30)
        s.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"{" * sent)
        still_serving(rx, 13)
        started = time.monotonic()
        assert s.recv(65536) == b""  # dropped, not waited on forever
        assert time.monotonic() - started < 20
        s.close()
        still_serving(rx, 14)


def test_a_whole_body_sent_with_its_headers_is_answered_on_a_kept_alive_connection() -> None:
    """Two deliveries, each in one write with its headers, on one connection: both stored."""
    with elwh_nb.start(SECRET, store=":memory:", body_timeout=1.0) as rx:
        s = socket.create_connection(("127.0.0.1", rx.port), timeout=30)
        for seed in (15, 16):
            body, headers = signed("speech_to_text_transcription", seed=seed)
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            s.sendall(
                f"POST /webhook HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                answer += s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        s.close()
        assert len(rx.events) == 2


def test_a_chunked_body_that_never_ends_is_dropped() -> None:
    with elwh_nb.start(SECRET, store=":memory:", body_timeout=1.0) as rx:
        s = socket.create_connection(("127.0.0.1", rx.port), timeout=30)
        s.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        still_serving(rx, 11)  # others are served meanwhile
        started = time.monotonic()
        assert s.recv(65536) == b""  # the server gives up on it and closes the connection
        assert time.monotonic() - started < 20
        s.close()
        still_serving(rx, 12)
