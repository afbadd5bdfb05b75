"""send()'s verdict: what matters to ElevenLabs is the class of an answer, not this kit's exact codes.

ElevenLabs takes 200 as done, never retries another 4xx, and retries a 5xx, 429 or 408.
A receiver written from ElevenLabs' docs answers 401 to every signature problem (a
malformed header too, where this kit says 400): it is correct by default and only differs
under ``strict=True``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

import elwh_nb
from elwh_nb import send

from .conftest import SECRET

SIGNATURE_FAULTS = {"wrong_secret": 1, "expired": 1, "tampered": 1, "reserialised": 1, "malformed_header": 2}


class DocsReceiver(BaseHTTPRequestHandler):
    """A webhook handler as ElevenLabs' docs show it: any problem with the delivery is a 401."""

    protocol_version = "HTTP/1.1"  # so that it answers "Expect: 100-continue" (big bodies)
    answers: ClassVar[list[int]] = []  # what to answer first (e.g. an outage), before the docs' logic

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.answers:
            self.reply(self.answers.pop(0))
            return
        try:
            parts = dict(p.split("=", 1) for p in self.headers["ElevenLabs-Signature"].split(","))
            if int(parts["t"]) < time.time() - 30 * 60:
                raise ValueError("expired")
            mac = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(mac, parts["v0"]):
                raise ValueError("signature")
            json.loads(body)
        except Exception:
            self.reply(401)
            return
        self.reply(200)

    def reply(self, status: int) -> None:
        body = b"" if status == 204 else b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def docs_receiver() -> Iterator[tuple[str, list[int]]]:
    answers: list[int] = []
    handler = type("Handler", (DocsReceiver,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhook", answers
    finally:
        server.shutdown()
        server.server_close()


def test_a_receiver_written_from_the_docs_is_correct(docs_receiver: tuple[str, list[int]]) -> None:
    url, _ = docs_receiver
    sent = send(url, SECRET, 10, faults={**SIGNATURE_FAULTS, "duplicate": 1}, seed=1, progress=False)
    assert set(sent.status) == {200, 401}
    assert (sent.status[sent.fault == "malformed_header"] == 401).all()  # the kit itself says 400
    assert sent.ok.all(), sent[~sent.ok]
    strict = send(url, SECRET, 10, faults=SIGNATURE_FAULTS, seed=1, progress=False, strict=True)
    assert strict.ok.tolist() == (strict.fault != "malformed_header").tolist()


def test_answers_of_the_wrong_class_are_wrong(docs_receiver: tuple[str, list[int]]) -> None:
    url, answers = docs_receiver
    answers += [500, 400, 204, 429]  # a crash, a refusal, not 200, an overloaded receiver
    sent = send(url, SECRET, 4, types=["speech_to_text_transcription"], concurrency=1, progress=False)
    assert sent.status.tolist() == [500, 400, 204, 429] and not sent.ok.any()  # never retried: lost
    answers += [200]  # a refusal that should have been a 4xx
    tampered = send(url, SECRET, 1, faults=["tampered"], progress=False)
    assert tampered.status.tolist() == [200] and not tampered.ok.any()


def test_a_5xx_then_a_200_is_a_success(docs_receiver: tuple[str, list[int]]) -> None:
    url, answers = docs_receiver
    answers += [503, 429]
    sent = send(url, SECRET, 1, types=["post_call_transcription"], retry_scale=0.0001, progress=False)
    assert sent.status.tolist() == [503, 429, 200]
    assert sent.ok.all()  # ElevenLabs retried, and the delivery got through
    assert send(url, SECRET, 1, progress=False, strict=True).ok.all()
    answers += [503] * 6  # an outage longer than ElevenLabs' schedule: the delivery is lost
    lost = send(url, SECRET, 1, types=["post_call_transcription"], retry_scale=0.0001, progress=False)
    assert lost.status.tolist() == [503] * 6 and not lost.ok.any()


def test_the_kit_receiver_is_right_by_either_rule() -> None:
    faults = {name: 1 for name in elwh_nb.FAULTS}
    with elwh_nb.start(SECRET, store=":memory:", max_body=200_000) as rx:
        rx.simulate_outage(1)
        sent = rx.simulate(12, faults=faults, types=["post_call_transcription"], via="direct", strict=True)
    assert (sent.status == 503).sum() == 1 and sent.ok.all(), sent[~sent.ok]
