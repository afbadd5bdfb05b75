"""The hook path at the socket: HEAD, headers, keep-alive, clients that leave, and a bug answered 500."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import elwh_nb

from .conftest import SECRET
from .helpers import signed, wait_for


@pytest.fixture
def rx(tmp_path: Path) -> Iterator[elwh_nb.Receiver]:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", max_body=2_000_000) as receiver:
        yield receiver


def request_bytes(body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST /webhook HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_answers_carry_json_no_store_and_a_date(rx: elwh_nb.Receiver) -> None:
    body, headers = signed(seed=41)
    with httpx.Client(timeout=10) as client:
        for r in (client.post(rx.local_url, content=body, headers=headers), client.get(rx.local_url)):
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            assert r.headers["cache-control"] == "no-store" and r.headers["date"].endswith(" GMT")
            assert r.headers.get("connection") != "close"
        assert client.get(rx.local_url).json() == {"ok": True, "service": "elwh-nb", "accepts": "POST"}
        head = client.head(rx.local_url)
        assert head.status_code == 200 and head.content == b""
        assert client.post(rx.local_url, content=body, headers=headers).json()["duplicate"] is True
    assert len(rx.failures) == 0


def test_whole_bodies_on_one_kept_alive_connection_are_each_answered(rx: elwh_nb.Receiver) -> None:
    with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as s:
        for seed in (42, 43, 44):
            s.sendall(request_bytes(*signed("speech_to_text_transcription", seed=seed)))
            answer = b""
            while not answer.rstrip().endswith(b"}"):
                answer += s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ") and b"Connection: close" not in answer
    assert len(rx.events) == 3


def test_a_client_that_leaves_mid_body_gets_nothing_and_leaves_no_record(
    rx: elwh_nb.Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body, headers = signed(seed=45)
    whole = request_bytes(body, headers)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as s:
            s.sendall(whole[: len(whole) - len(body) // 2])
    body, headers = signed(seed=46)
    assert httpx.post(rx.local_url, content=body, headers=headers, timeout=10).status_code == 200
    assert len(rx.events) == 1 and len(rx.failures) == 0
    assert errors(caplog) == []


def test_a_client_that_leaves_while_its_delivery_commits_gets_it_stored_quietly(
    rx: elwh_nb.Receiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    committing, go_on = threading.Event(), threading.Event()
    append_many = rx.store.append_many

    def held(*args: Any, **kwargs: Any) -> Any:
        committing.set()
        go_on.wait(10)
        return append_many(*args, **kwargs)

    monkeypatch.setattr(rx.store, "append_many", held)
    with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as s:
        s.sendall(request_bytes(*signed(seed=47)))
        assert committing.wait(10)
    go_on.set()
    monkeypatch.undo()
    wait_for(lambda: len(rx.events) == 1, what="the delivery to be committed")
    body, headers = signed(seed=48)
    assert httpx.post(rx.local_url, content=body, headers=headers, timeout=10).status_code == 200
    assert len(rx.failures) == 0 and errors(caplog) == []


@pytest.mark.parametrize("where", ["check", "stored"])
def test_a_bug_on_the_hook_path_is_answered_500_and_recorded(
    rx: elwh_nb.Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    def bug(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(rx._intake, where, bug)
    body, headers = signed(seed=49)
    with httpx.Client(timeout=10) as client:
        r = client.post(rx.local_url, content=body, headers=headers)
        assert r.status_code == 500 and r.json() == {"ok": False, "reason": "receiver_error"}
        monkeypatch.undo()
        assert client.post(rx.local_url, content=body, headers=headers).status_code == 200  # kept alive
    failure = rx.failures.iloc[-1]
    assert failure.reason == "receiver_error" and "RuntimeError" in failure.explanation
    assert failure.body_bytes == len(body) and failure.path == "/webhook"
    assert any("receiver failed" in r.getMessage() for r in caplog.records)
