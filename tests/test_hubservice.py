"""The hub service's app on loopback, without a hub: its hook routes, health, log lines, read API.

Only the hub's answer to "whose token is this, with which scopes" is stubbed (:class:`Readers`),
since no hub runs here; tests/test_jupyterhub.py runs the service under a real hub.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import elwh_nb
from elwh_nb import sign
from elwh_nb._server.hubapi import read_scope
from elwh_nb._server.hubservice import HubService, secret_variable
from testkit.processes import free_port

from .conftest import SECRET
from .helpers import signed, stop_process, wait_for

pytest.importorskip("pyarrow")

OTHER = "wsec_test_" + "f" * 64
PREFIX = "/hubbase/services/elwh/"


class Readers:
    """Stands in for the hub: tokens to (user, scopes)."""

    def __init__(self, tokens: dict[str, tuple[str, set[str]]]) -> None:
        self.tokens = tokens

    async def scopes(self, token: str) -> tuple[str, set[str]] | None:
        return self.tokens.get(token)


READERS = Readers({"alice-token": ("alice", {read_scope("calls")}), "bob-token": ("bob", set())})


def service(root: Path) -> tuple[HubService, str]:
    svc = HubService(
        {"calls": SECRET, "tts": OTHER},
        data_dir=root,
        prefix=PREFIX,
        readers=READERS,
        max_failures=50,
        max_body=2**20,
    )
    port = svc.start("127.0.0.1", 0)
    return svc, f"http://127.0.0.1:{port}{PREFIX}"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[HubService, str]]:
    svc, base = service(tmp_path)
    yield svc, base
    svc.stop()


def hook_url(svc: HubService, base: str, name: str) -> str:
    return base + "hook/" + svc.webhooks[name].route_id


def test_each_webhook_its_store_same_statuses(running: tuple[HubService, str]) -> None:
    svc, base = running
    calls, tts = hook_url(svc, base, "calls"), hook_url(svc, base, "tts")
    assert len(svc.webhooks["calls"].route_id) == 32  # 192 random bits, as the per-user routes
    body, headers = signed(seed=1)
    assert httpx.post(calls, content=body, headers=headers).json()["duplicate"] is False
    assert httpx.post(calls, content=body, headers=headers).json()["duplicate"] is True
    assert httpx.post(tts, content=body, headers=headers).status_code == 401  # another webhook's secret
    forged = httpx.post(calls, content=body, headers={"ElevenLabs-Signature": sign(body + b" ", SECRET)})
    assert forged.status_code == 401
    big = httpx.post(calls, content=b"x" * (2 * svc.max_body), headers=headers)
    assert big.status_code == 413
    wrong = httpx.post(base + "hook/" + "Z" * 32, content=body, headers=headers)
    assert (wrong.status_code, wrong.headers["content-type"]) == (404, "application/json")
    calls_store, tts_store = svc.webhooks["calls"].store, svc.webhooks["tts"].store
    assert calls_store.counts["events"] == 1 and calls_store.counts["duplicates"] == 1
    assert list(calls_store.failures.reason) == ["signature_mismatch", "body_too_large"]
    assert len(tts_store.events) == 0 and list(tts_store.failures.reason) == ["signature_mismatch"]


def test_health_says_nothing_secret(running: tuple[HubService, str]) -> None:
    svc, base = running
    r = httpx.get(base + "health")
    assert r.status_code == 200 and r.json() == {"ok": True, "service": "elwh-nb", "webhooks": 2}
    assert all(hook.route_id not in r.text for hook in svc.webhooks.values())


def test_one_info_line_per_delivery_without_secrets(
    running: tuple[HubService, str], caplog: pytest.LogCaptureFixture
) -> None:
    svc, base = running
    body, headers = signed(seed=2)
    with caplog.at_level(logging.INFO, logger="elwh_nb"):
        httpx.post(hook_url(svc, base, "calls"), content=body, headers=headers)
        httpx.post(hook_url(svc, base, "calls"), content=body, headers={"ElevenLabs-Signature": "t=1,v0=00"})
        wait_for(lambda: len([r for r in caplog.records if r.getMessage().startswith("calls ")]) == 2)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("calls ")]
    assert lines[0].startswith("calls POST 200 ") and lines[1].startswith("calls POST 400 malformed_header ")
    assert f"{len(body)}B" in lines[0]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert svc.webhooks["calls"].route_id not in text and SECRET not in text and "t=1,v0" not in text


def test_restart_keeps_events_and_url(tmp_path: Path) -> None:
    svc, base = service(tmp_path)
    url = hook_url(svc, base, "calls")
    body, headers = signed(seed=3)
    assert httpx.post(url, content=body, headers=headers).status_code == 200
    svc.stop()
    again, base2 = service(tmp_path)
    try:
        assert hook_url(again, base2, "calls").rsplit("/", 1)[1] == url.rsplit("/", 1)[1]
        assert len(again.webhooks["calls"].store.events) == 1
    finally:
        again.stop()


def test_readers_need_the_scope(running: tuple[HubService, str]) -> None:
    _, base = running
    assert httpx.get(base + "api/calls/events").status_code == 401
    refused = httpx.get(base + "api/calls/events", headers={"Authorization": "token bob-token"})
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/json"
    assert read_scope("calls") in refused.json()["error"]
    # A webhook that does not exist is refused alike: names are not given away.
    nothing = httpx.get(base + "api/nope/events", headers={"Authorization": "token alice-token"})
    assert nothing.status_code == 403
    with pytest.raises(elwh_nb.ReceiverError, match="403"):
        elwh_nb.connect("calls", url=base, token="bob-token")


def test_connect_mirrors_new_rows(running: tuple[HubService, str]) -> None:
    svc, base = running
    url = hook_url(svc, base, "calls")
    for seed in range(3):
        body, headers = signed(seed=seed)
        assert httpx.post(url, content=body, headers=headers).status_code == 200
    conn = elwh_nb.connect("calls", url=base, token="alice-token")
    try:
        assert conn.url == svc.hook_path(svc.webhooks["calls"])
        local = svc.webhooks["calls"].store.events
        assert list(conn.events.index) == list(local.index)
        assert list(conn.events.columns) == list(local.columns)
        assert (conn.events.dtypes == local.dtypes).all()
        assert conn.events.conversation_id.tolist() == local.conversation_id.tolist()
        first = conn.events.payload.iloc[0]
        assert first["data"] == local.payload.iloc[0]["data"]

        body, headers = signed(seed=10)
        httpx.post(url, content=body, headers=headers)
        httpx.post(url, content=body, headers={"ElevenLabs-Signature": "t=1,v0=00"})
        wait_for(lambda: len(conn.events) == 4 and len(conn.failures) == 1, what="the new rows")
        assert conn.failures.reason.tolist() == svc.webhooks["calls"].store.failures.reason.tolist()
        assert conn.store.counts == svc.webhooks["calls"].store.counts
        assert len(elwh_nb.timings(conn.events)) > 0
        with pytest.raises(elwh_nb.ReceiverError, match="only reads"):
            conn.simulate(1)
        # The dashboard shows a connection as it shows a receiver: rows, failures, an event.
        dash = conn.dashboard(autorefresh=False)
        try:
            assert "<b>4</b> accepted" in dash.counters.value and "<b>1</b> failure (" in dash.counters.value
            assert "rows 1-4 of 4" in dash.page_label.value
            dash.pick.value = dash.pick.options[0][1]
            assert f"event #{conn.events.index[-1]}" in dash.detail.value
            dash.outcome.value = "failed"
            assert "malformed_header" in dash.table.value
        finally:
            dash.close()
    finally:
        conn.close()


def test_connect_gets_the_services_frame_exactly_over_many_pages(
    running: tuple[HubService, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every type, missing times and ids, repeats: the mirror equals the service's own frame."""
    import pandas as pd

    from elwh_nb._server import wire

    monkeypatch.setattr(wire, "PAGE", 7)  # the service's pages and the reader's loop
    svc, base = running
    url = hook_url(svc, base, "calls")
    factory = elwh_nb.payloads(seed=4)
    events = factory.batch(40, types=list(elwh_nb.EVENT_TYPES), audio_bytes=2000)
    events.append({"type": "some_future_type", "data": {}})  # no time, no ids
    for event in events:
        body = factory.body(event)
        headers = {"ElevenLabs-Signature": sign(body, SECRET)}
        assert httpx.post(url, content=body, headers=headers).status_code == 200
    httpx.post(
        url,
        content=factory.body(events[3]),
        headers={"ElevenLabs-Signature": sign(factory.body(events[3]), SECRET)},
    )
    conn = elwh_nb.connect("calls", url=base, token="alice-token")
    try:
        local = svc.webhooks["calls"].store.events
        mirrored = conn.events
        assert len(mirrored) == 41
        pd.testing.assert_frame_equal(mirrored.drop(columns="payload"), local.drop(columns="payload"))
        assert mirrored.event_timestamp.isna().sum() >= 1 and mirrored.agent_id.isna().sum() >= 1
        assert [p.event_type for p in mirrored.payload] == [p.event_type for p in local.payload]
    finally:
        conn.close()


def test_connect_serves_the_three_frames_as_the_service_derived_them(
    running: tuple[HubService, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Turns, tool calls and conversations, over pages, followed as calls come, and read again
    when the service replaces a call's turns (its JSON transcript after the OpenTelemetry one)."""
    import pandas as pd

    from elwh_nb._server import wire

    from . import real_calls

    monkeypatch.setattr(wire, "PAGE", 9)
    svc, base = running
    url = hook_url(svc, base, "calls")
    store = svc.webhooks["calls"].store

    def post(event: dict) -> None:
        body = real_calls.body(event)
        assert (
            httpx.post(url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)}).status_code
            == 200
        )

    factory = elwh_nb.payloads(seed=8)
    for _ in range(3):
        post(factory.post_call_transcription(turns=6, failed=False))
    otel = factory.post_call_transcription_otel(turns=10, failed=False)
    post(otel)
    conn = elwh_nb.connect("calls", url=base, token="alice-token")
    try:

        def same() -> bool:
            return (
                conn.turns.equals(store.turns)
                and conn.tool_calls.equals(store.tool_calls)
                and conn.conversations.equals(store.conversations)
            )

        assert len(conn.turns) == 28 and same()
        pd.testing.assert_frame_equal(conn.turns, store.turns)
        pd.testing.assert_frame_equal(conn.conversations, store.conversations)
        assert elwh_nb.latency(conn).equals(elwh_nb.latency(store))
        post(real_calls.transcription())  # a real call: tool calls with results, analysis, charging
        wait_for(lambda: real_calls.CONVERSATION in conn.conversations.index and same(), what="the new call")
        assert "lookup_order" in conn.conversation(real_calls.CONVERSATION)._repr_html_()
        plain = factory.post_call_transcription(turns=4, failed=False)  # the OTel call's JSON transcript
        plain["data"]["conversation_id"] = otel["data"]["conversation_id"]
        post(plain)
        wait_for(lambda: len(conn.turns) == len(store.turns) and same(), what="the replaced turns")
        assert len(conn.conversations) == 5 and len(conn.turns) == 3 * 6 + 4 + len(
            real_calls.transcription()["data"]["transcript"]
        )
    finally:
        conn.close()


def test_a_pull_after_close_leaves_the_closed_mirror_alone(
    running: tuple[HubService, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() runs on the kernel's thread while a pull may be under way on the puller's (stop()
    does not wait for it): every use of the mirror's file holds the lock and finds it closed.
    (An unlocked read of it once crashed the process: SQLite used after close.)"""
    from elwh_nb._server import wire

    monkeypatch.setattr(wire, "PAGE", 3)
    svc, base = running
    url = hook_url(svc, base, "calls")
    factory = elwh_nb.payloads(seed=12)
    for _ in range(4):
        body = factory.body(factory.post_call_transcription(turns=4))
        assert (
            httpx.post(url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)}).status_code
            == 200
        )
    conn = elwh_nb.connect("calls", url=base, token="alice-token")
    assert len(conn.turns) == 16
    conn.close()
    for _ in range(3):  # as the puller's last pull would, after the close
        assert conn.store.pull() is False
    assert len(conn.store.turns) == 16  # what was read stays readable


@pytest.mark.slow
def test_cli_drains_on_sigterm_and_exits_0(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        secret_variable("calls"): SECRET,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
    }
    env.pop("JUPYTERHUB_API_TOKEN", None)
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "elwh_nb",
                "hub-service",
                "--webhook",
                "calls",
                "--data-dir",
                str(tmp_path),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}{PREFIX}health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30, what="the hub service")
        from elwh_nb import EventStore

        with EventStore(tmp_path / "calls.sqlite", readonly=True) as store:
            route = store.route(create=False)
        assert route is not None
        body, headers = signed(seed=4)
        url = f"http://127.0.0.1:{port}{PREFIX}hook/{route[0]}"
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        stop_process(proc)
    text = log.read_text()
    assert "calls POST 200" in text and route[0] not in text and SECRET not in text
    with EventStore(tmp_path / "calls.sqlite", readonly=True) as store:
        assert len(store.events) == 1
