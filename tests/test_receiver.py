"""The receiver on real loopback HTTP: status codes, failures, callbacks, ports, restarts."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest

import elwh_nb
from elwh_nb import EventStore, ReceiverError, sign

from .conftest import OTHER_SECRET, SECRET
from .helpers import signed, wait_for


@pytest.fixture
def rx(tmp_path: Path) -> Iterator[elwh_nb.Receiver]:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", max_body=2_000_000) as receiver:
        yield receiver


def post(
    rx: elwh_nb.Receiver, body: bytes, headers: dict[str, str] | None = None, path: str | None = None
) -> httpx.Response:
    url = rx.local_url if path is None else rx.local_url.replace(rx.path, path)
    return httpx.post(url, content=body, headers=headers or {}, timeout=10)


def test_accepts_and_stores_a_delivery(rx: elwh_nb.Receiver) -> None:
    body, headers = signed()
    r = post(rx, body, headers)
    assert r.status_code == 200
    assert r.json() == {"ok": True, "id": 1, "duplicate": False}
    assert len(rx.events) == 1 and rx.store.raw_body(1) == body
    again = post(rx, body, {"ElevenLabs-Signature": sign(body, SECRET)})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert rx.events.deliveries.iloc[0] == 2 and len(rx.events) == 1


@pytest.mark.parametrize(
    "name",
    [
        "ElevenLabs-Signature",
        "elevenlabs-signature",
        "ELEVENLABS-SIGNATURE",
        "X-Eleven-Signature",
        "x-eleven-signature",
        "x-elevenlabs-signature",  # the speech-to-text guide's samples
        "X-ElevenLabs-Signature",
    ],
)
def test_reads_every_signature_header_name_in_any_case(rx: elwh_nb.Receiver, name: str) -> None:
    body, _ = signed(seed=3)
    assert post(rx, body, {name: sign(body, SECRET)}).status_code == 200


def _cases() -> list[tuple[str, int, bytes, dict[str, str]]]:
    body, _ = signed(seed=1)
    now = time.time()
    return [
        ("missing_header", 401, body, {}),
        ("signature_mismatch", 401, body, {"ElevenLabs-Signature": sign(body, OTHER_SECRET)}),
        ("timestamp_expired", 401, body, {"ElevenLabs-Signature": sign(body, SECRET, now - 2000)}),
        ("timestamp_in_future", 401, body, {"ElevenLabs-Signature": sign(body, SECRET, now + 2000)}),
        ("malformed_header", 400, body, {"ElevenLabs-Signature": "t=soon,v0=abc"}),
        ("invalid_json", 400, b"not json", {"ElevenLabs-Signature": sign(b"not json", SECRET)}),
    ]


@pytest.mark.parametrize(("reason", "status", "body", "headers"), _cases(), ids=[c[0] for c in _cases()])
def test_rejections_get_the_right_status_and_a_record(
    tmp_path: Path, reason: str, status: int, body: bytes, headers: dict[str, str]
) -> None:
    # A bound into the future is off by default (see tests/test_clock.py); here it is asked for.
    future = 300.0 if reason == "timestamp_in_future" else None
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", future_tolerance=future) as rx:
        check_rejection(rx, reason, status, body, headers)


def check_rejection(
    rx: elwh_nb.Receiver, reason: str, status: int, body: bytes, headers: dict[str, str]
) -> None:
    r = post(rx, body, headers)
    assert r.status_code == status
    assert r.json() == {"ok": False, "reason": reason}  # the answer reveals nothing more
    f = rx.failures.iloc[-1]
    assert (f.reason, f.status, f.path) == (reason, status, "/webhook")
    assert len(f.explanation) > 30 and f.remote == "127.0.0.1"
    assert f.body_bytes == len(body)
    assert len(rx.events) == 0


def test_mismatch_explanation_names_the_likely_cause(rx: elwh_nb.Receiver) -> None:
    body, headers = signed(seed=2)
    post(rx, json.dumps(json.loads(body)).encode(), headers)
    assert "re-serialised" in rx.failures.explanation.iloc[-1]


def says_how_to_raise_the_limit(explanation: str) -> bool:
    return "max_body=" in explanation and "elwh_nb.start(" in explanation


def test_body_over_max_body_is_refused(rx: elwh_nb.Receiver) -> None:
    big = b'{"type":"x","pad":"' + b"A" * 2_100_000 + b'"}'
    r = post(rx, big, {"ElevenLabs-Signature": sign(big, SECRET)})
    assert r.status_code == 413
    f = rx.failures.iloc[-1]
    assert f.reason == "body_too_large" and f.status == 413
    assert f.body_bytes == 0  # nothing kept
    # A little over the cap: read (for a clean answer) and thrown away, and it says so.
    assert f"{len(big)} bytes" in f.explanation and "read and discarded" in f.explanation
    assert "without being read" not in f.explanation and says_how_to_raise_the_limit(f.explanation)


def test_chunked_body_over_max_body_is_read_and_discarded(rx: elwh_nb.Receiver) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(300):
            yield b"A" * 10_000

    r = httpx.post(rx.local_url, content=chunks(), headers={"ElevenLabs-Signature": "t=1,v0=a"}, timeout=10)
    assert r.status_code == 413
    f = rx.failures.iloc[-1]
    assert f.reason == "body_too_large" and "3000000 bytes" in f.explanation
    assert "read and discarded" in f.explanation and "without being read" not in f.explanation
    assert says_how_to_raise_the_limit(f.explanation)


def test_a_chunked_body_far_over_max_body_is_cut_off(rx: elwh_nb.Receiver) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(1000):  # 10 MB, more than the receiver reads before it stops
            yield b"A" * 10_000

    with contextlib.suppress(httpx.HTTPError):  # the receiver closes the connection mid-body
        httpx.post(rx.local_url, content=chunks(), headers={"ElevenLabs-Signature": "t=1,v0=a"}, timeout=10)
    wait_for(lambda: len(rx.failures) == 1, what="the refusal to be recorded")
    f = rx.failures.iloc[-1]
    assert f.reason == "body_too_large" and "at least" in f.explanation
    assert "without being read" not in f.explanation and "connection was closed" in f.explanation
    assert says_how_to_raise_the_limit(f.explanation)


def test_a_big_audio_body_under_the_cap_is_fine(tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "a.sqlite") as rx:
        body, headers = signed("post_call_audio", audio_bytes=5_000_000)
        assert post(rx, body, headers).status_code == 200
        assert rx.store.raw_body(1) == body


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_on_the_hook_path_are_405(rx: elwh_nb.Receiver, method: str) -> None:
    r = httpx.request(method, rx.local_url, content=b"{}", timeout=10)
    assert r.status_code == 405
    assert rx.failures.reason.iloc[-1] == "method_not_allowed"


def test_elsewhere_is_404_and_posts_there_are_recorded(rx: elwh_nb.Receiver) -> None:
    body, headers = signed()
    assert post(rx, body, headers, path="/hook").status_code == 404
    assert rx.failures.reason.iloc[-1] == "not_found" and rx.failures.path.iloc[-1] == "/hook"
    assert httpx.get(rx.local_url.replace("/webhook", "/favicon.ico")).status_code == 404
    assert len(rx.failures) == 1  # a browser's GET is not a delivery


def test_get_on_the_hook_path_is_a_health_record_without_event_data(rx: elwh_nb.Receiver) -> None:
    body, headers = signed()
    post(rx, body, headers)
    r = httpx.get(rx.local_url)
    assert r.status_code == 200 and r.json()["ok"] is True
    conversation = json.loads(body)["data"]["conversation_id"]
    assert conversation not in r.text and '"id"' not in r.text


def test_store_failure_answers_500_and_recovers(rx: elwh_nb.Receiver) -> None:
    rx.store._db.execute(
        "CREATE TRIGGER full BEFORE INSERT ON events BEGIN SELECT RAISE(FAIL, 'disk full'); END"
    )
    body, headers = signed(seed=5)
    r = post(rx, body, headers)
    assert r.status_code == 500 and r.json()["reason"] == "store_error"
    f = rx.failures.iloc[-1]
    assert f.reason == "store_error" and "disk full" in f.explanation
    rx.store._db.execute("DROP TRIGGER full")
    assert post(rx, body, headers).status_code == 200
    assert len(rx.events) == 1


def test_a_signed_event_with_a_time_pandas_cannot_hold_is_stored(rx: elwh_nb.Receiver) -> None:
    # Years past 2262 (or before 1677) are valid JSON and valid signatures: stored, time NaT.
    factory = elwh_nb.payloads(13)
    events = [factory.make("post_call_transcription") for _ in range(24)]
    for i, event in enumerate(events):
        if i % 2:
            event["event_timestamp"] = [10**11, -(10**10), 10**12][i % 3]
            event["data"]["metadata"]["start_time_unix_secs"] = 10**11
    sent = elwh_nb.send(rx.local_url, SECRET, events, concurrency=12, timeout=10, retry=False, progress=False)
    assert sent.status.tolist() == [200] * 24, sent.error.dropna().tolist()[:2]
    stored = rx.events
    assert len(stored) == 24 and stored.event_timestamp.isna().sum() == 12
    assert stored.call_started_at.isna().sum() == 12


def test_sender_retries_after_5xx_on_elevenlabs_schedule(rx: elwh_nb.Receiver) -> None:
    db = rx.store._db
    left = [2]  # failures to come; in Python, which a rolled-back transaction cannot undo

    def outage() -> int:
        left[0] -= 1
        return int(left[0] >= 0)

    db.create_function("outage", 0, outage)
    db.execute(
        "CREATE TEMP TRIGGER flaky BEFORE INSERT ON events WHEN outage() "
        "BEGIN SELECT RAISE(FAIL, 'disk full'); END"
    )
    sent = elwh_nb.send(rx.local_url, SECRET, 1, types=["post_call_transcription"], retry_scale=0.0001)
    assert sent.status.tolist() == [500, 500, 200]
    assert sent.attempt.tolist() == [1, 2, 3]
    assert len(rx.events) == 1 and rx.failures.reason.tolist() == ["store_error"] * 2
    # ElevenLabs retries only post_call_transcription; others are not retried.
    left[0] = 1
    other = elwh_nb.send(rx.local_url, SECRET, 1, types=["speech_to_text_transcription"], retry_scale=0.0001)
    assert other.status.tolist() == [500]


def test_every_fault_gets_its_expected_answer(rx: elwh_nb.Receiver) -> None:
    faults = {name: 2 for name in elwh_nb.FAULTS}
    sent = rx.simulate(20, faults=faults, seed=4)
    assert sent.ok.all(), sent[~sent.ok]
    assert set(sent.fault.dropna()) == set(elwh_nb.FAULTS)
    counts = rx.store.counts
    assert counts["events"] == 20 - 14 + 2  # the clean ones + the first copies of duplicates
    assert counts["duplicates"] == 2
    assert counts["failures"] == 2 * 6


def test_on_event_runs_off_the_request_path_and_errors_are_recorded(rx: elwh_nb.Receiver) -> None:
    seen: list[str] = []
    gate = threading.Event()

    @rx.on_event
    def slow(event: dict[str, object]) -> None:
        gate.wait(30)
        seen.append(str(event["type"]))

    @rx.on_event
    def broken(event: dict[str, object]) -> None:
        raise RuntimeError("oops in my callback")

    t0 = time.monotonic()
    sent = rx.simulate(10, via="direct", seed=8)
    assert (sent.status == 200).all()
    assert time.monotonic() - t0 < 10  # answered while the first callback is still blocked
    assert seen == []
    gate.set()
    wait_for(lambda: len(seen) == 10, what="callbacks")
    wait_for(lambda: len(rx.callback_errors) == 10, what="callback errors")
    assert rx.callback_errors.error.iloc[0] == "RuntimeError: oops in my callback"
    assert rx.callback_errors.callback.iloc[0] == "broken"


def test_repr_shows_place_and_counts_never_the_secret(rx: elwh_nb.Receiver) -> None:
    rx.simulate(3, faults=["tampered"], via="direct")
    text = repr(rx)
    assert "listening on http://127.0.0.1:" in text and "2 events" in text and "1 failures" in text
    assert SECRET not in text and SECRET[5:] not in text
    rx.stop()
    assert "stopped" in repr(rx)


def test_ports(tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=":memory:") as a, elwh_nb.start(SECRET, store=":memory:") as b:
        assert a.port != b.port and a.port > 0
        with pytest.raises(ReceiverError, match=r"in use"):
            elwh_nb.start(SECRET, port=a.port, store=":memory:")
        port = a.port
    with elwh_nb.start(SECRET, port=port, store=":memory:") as again:  # stop() freed it
        assert again.port == port
        assert httpx.get(again.local_url).status_code == 200


def test_stop_closes_the_port_and_the_store(tmp_path: Path) -> None:
    rx = elwh_nb.start(SECRET, store=tmp_path / "s.sqlite")
    rx.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(rx.local_url)
    assert not rx.running
    rx.stop()  # twice is fine
    shared = EventStore(":memory:")
    with elwh_nb.start(SECRET, store=shared):
        pass
    assert shared.append(signed()[0]).id == 1  # a store passed in stays open


def test_start_needs_a_secret() -> None:
    with pytest.raises(elwh_nb.SignatureError) as info:
        elwh_nb.start("", store=":memory:")
    assert info.value.reason == "missing_secret"
    empty: Iterable[str]
    for empty in ([], iter([]), (s for s in [""])):
        with pytest.raises(elwh_nb.SignatureError, match="empty") as info:
            elwh_nb.start(empty, store=":memory:")
        assert info.value.reason == "missing_secret"


@pytest.mark.parametrize(
    "make",
    [
        lambda: (s for s in [SECRET]),
        lambda: filter(None, ["", SECRET]),
        lambda: iter([OTHER_SECRET, SECRET]),
    ],
    ids=["generator", "filter", "iterator"],
)
def test_a_one_shot_iterable_of_secrets_is_read_once_and_kept(make: object) -> None:
    with elwh_nb.start(make(), store=":memory:") as rx:  # type: ignore[operator]
        for seed in (1, 2):  # every delivery, not only the first
            body, headers = signed(seed=seed)
            r = post(rx, body, headers)
            assert r.status_code == 200, r.json()
        body, _ = signed(seed=3)
        post(rx, body, {"ElevenLabs-Signature": "t=1,v0=" + "0" * 64})
        assert rx.failures.reason.iloc[-1] == "timestamp_expired"  # its explanation had the keys too
        assert "no secret" not in (rx.failures.details.iloc[-1] or "")


def test_outside_jupyter_the_url_is_local(rx: elwh_nb.Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    assert rx.url == rx.local_url and rx.proxy_url is None and rx.public_url is None


def test_listening_beyond_loopback_warns() -> None:
    with (
        pytest.warns(UserWarning, match="reachable from other machines"),
        elwh_nb.start(SECRET, host="0.0.0.0", store=":memory:") as rx,
    ):
        assert rx.running


def test_a_restarted_receiver_finds_every_acknowledged_event(tmp_path: Path) -> None:
    path = tmp_path / "restart.sqlite"
    with elwh_nb.start(SECRET, store=path) as first:
        sent = first.simulate(40, faults={"duplicate": 5}, via="direct", seed=9)
    acked = set(sent.loc[sent.status == 200, "id"].astype(int))
    assert len(acked) == 40
    with elwh_nb.start(SECRET, store=path) as second:
        assert set(second.events.index) == acked
        assert second.store.counts["duplicates"] == 5


BUSY_SENDER = textwrap.dedent(
    """
    import json, sys, time
    import httpx
    from elwh_nb import payloads, sign
    url, secret, n, spacing = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    factory = payloads(5)
    latencies = []
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            body = factory.body(factory.make("post_call_transcription"))
            t0 = time.perf_counter()
            r = client.post(url, content=body, headers={"ElevenLabs-Signature": sign(body, secret)})
            latencies.append((r.status_code, time.perf_counter() - t0))
            time.sleep(spacing)  # paces the load over the busy cell; not synchronisation
    print(json.dumps(latencies))
    """
)


@pytest.mark.slow  # seconds of a CPU-bound main thread
def test_answers_while_the_main_thread_is_busy(rx: elwh_nb.Receiver) -> None:
    sender = subprocess.Popen(
        [sys.executable, "-c", BUSY_SENDER, rx.local_url, SECRET, "25", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    end = time.perf_counter() + 5.0
    total = 0
    while time.perf_counter() < end:  # a CPU-bound cell holding the GIL for 5 s
        total += sum(i * i for i in range(2000))
    out, _ = sender.communicate(timeout=60)
    latencies = json.loads(out)
    assert [status for status, _ in latencies] == [200] * 25
    assert max(seconds for _, seconds in latencies) < 0.5, latencies
    assert len(rx.events) == 25 and total > 0


def test_the_secret_never_leaks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with elwh_nb.start(SECRET, store=tmp_path / "leak.sqlite") as rx:
        sent = rx.simulate(
            30, faults={name: 1 for name in elwh_nb.FAULTS if name != "oversized"}, via="direct"
        )
        rx.on_event(lambda e: 1 / 0)
        rx.simulate(2, via="direct")
        wait_for(lambda: len(rx.callback_errors) == 2)
        seen = [
            repr(rx),
            str(rx.__dict__),
            rx.events.to_string(),
            rx.failures.to_json(date_format="iso"),
            sent.to_json(date_format="iso"),
            rx.callback_errors.to_json(date_format="iso"),
            rx.url,
        ]
    out = capsys.readouterr()
    seen += [caplog.text, out.out, out.err]
    seen += [p.read_bytes().decode("latin-1") for p in tmp_path.iterdir()]
    text = "\n".join(seen)
    assert SECRET not in text and SECRET[5:] not in text


def test_free_port_is_really_free() -> None:
    # Guard for the port tests above: binding port 0 gives distinct, usable ports.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with elwh_nb.start(SECRET, port=port, store=":memory:") as rx:
        assert rx.port == port


def raw_request(rx: elwh_nb.Receiver, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes no HTTP client would, and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as s:
        s.sendall(head + body)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_huge_declared_length_is_refused_at_once(rx: elwh_nb.Receiver) -> None:
    head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\nConnection: close\r\n\r\n"
    answer = raw_request(rx, head, b"{")
    assert answer.startswith(b"HTTP/1.1 413")
    f = rx.failures.iloc[-1]
    assert f.reason == "body_too_large" and "refused without being read" in f.explanation
    assert "100000000000 bytes" in f.explanation and says_how_to_raise_the_limit(f.explanation)


def test_a_little_over_is_read_and_answered_cleanly(rx: elwh_nb.Receiver) -> None:
    body = b"A" * (rx.max_body + 10)
    head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    answer = raw_request(rx, head, body)  # a sender that does not wait for 100 Continue
    assert answer.startswith(b"HTTP/1.1 413")
    explanation = rx.failures.explanation.iloc[-1]
    assert "read and discarded" in explanation and "without being read" not in explanation


@pytest.mark.parametrize(
    "internal",
    [
        {"X-Elwh-Body-Too-Large": "5"},
        {"X-Elwh-Body-Too-Large": "5", "X-Elwh-Route-Token": "a guess"},
        {"X-Elwh-Body-Too-Large": "5", "X-Elwh-Route-Token": ""},
    ],
    ids=["notice", "guessed-token", "empty-token"],
)
def test_internal_headers_from_anyone_but_the_route_are_not_trusted(
    rx: elwh_nb.Receiver, internal: dict[str, str]
) -> None:
    # A client on this machine connecting to the receiver's port directly is not the route:
    # the notice is ignored; with a token that is not this receiver's, the request is
    # answered 421 (meant for another receiver: the route keeps such a delivery instead).
    body, headers = signed(seed=21)
    r = post(rx, body, {**headers, **internal})
    if "X-Elwh-Route-Token" in internal:
        assert r.status_code == 421 and "X-Elwh-Ack" not in r.headers
        assert len(rx.events) == 0 and len(rx.failures) == 0
        r = post(rx, body, headers)
    assert r.status_code == 200 and r.json()["id"] == 1
    assert len(rx.events) == 1 and len(rx.failures) == 0


def test_concurrent_deliveries_share_commits(rx: elwh_nb.Receiver) -> None:
    sent = elwh_nb.send(
        rx.local_url,
        SECRET,
        300,
        concurrency=32,
        types=["speech_to_text_transcription"],
        seed=12,
        progress=False,
    )
    assert (sent.status == 200).all() and len(rx.events) == 300
    assert rx._batcher.largest > 1  # group commit happened; each still answered after its commit


def test_an_answer_given_before_the_body_is_read_says_the_connection_closes(rx: elwh_nb.Receiver) -> None:
    # Tornado drops a connection whose request body it did not read; a client told nothing
    # would reuse it and get a reset instead of its next answer.
    with httpx.Client() as client:
        refused = client.put(rx.local_url, content=b"{}" * 1000)
        assert refused.status_code == 405 and refused.headers.get("connection") == "close"
        body, headers = signed(seed=31)
        assert client.post(rx.local_url, content=body, headers=headers).status_code == 200
        kept_alive = client.post(rx.local_url, content=body, headers=headers)
        assert kept_alive.status_code == 200 and kept_alive.headers.get("connection") != "close"
