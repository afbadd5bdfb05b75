"""Replays: a failed delivery verified again once its cause is fixed; an event again, as new.

Real receivers on loopback, real signed deliveries (a real call's body, Python json.dumps
bytes); the failure log keeps bodies bounded in bytes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

import elwh_nb
from elwh_nb import sign
from elwh_nb._core import failures as _failures
from elwh_nb._notebook.dashboard import Dashboard

from . import real_calls
from .conftest import OTHER_SECRET, SECRET
from .helpers import signed, wait_for


def test_a_delivery_refused_for_a_wrong_secret_is_accepted_once_the_right_one_is_given(
    tmp_path: Path,
) -> None:
    store = tmp_path / "fixed.sqlite"
    body = real_calls.body(real_calls.transcription())  # Python json.dumps bytes, nested metrics
    with elwh_nb.start(OTHER_SECRET, store=store) as rx:  # the wrong secret pasted
        r = httpx.post(rx.local_url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)})
        assert r.status_code == 401
        failure_id = int(rx.failures.index[-1])
        assert rx.store.failure_body(failure_id) == body  # kept whole, to replay
        assert rx.replay_failure(failure_id).outcome == "failed"  # same wrong secret: still refused
        assert rx.failures.reason.iloc[-1] == "signature_mismatch" and len(rx.failures) == 2
    with elwh_nb.start(SECRET, store=store) as rx:  # fixed
        replayed = rx.replay_failure(failure_id)
        event_id = replayed.event_id
        assert replayed.outcome == "accepted" and event_id is not None and rx.store.raw_body(event_id) == body
        assert f"stored as event #{event_id}" in str(replayed)
        arrived = pd.Timestamp(rx.failures["received_at"][failure_id])
        came = pd.Timestamp(rx.events["received_at"][event_id])
        assert abs(came - arrived) < pd.Timedelta("1us")  # when it came, not now
        assert len(rx.turns)  # derived like any delivery
        assert rx.replay_failure(failure_id).outcome == "duplicate"


def test_a_replay_measures_the_time_window_from_when_the_delivery_arrived(tmp_path: Path) -> None:
    # Refused an hour ago (the secret was wrong then); its signature was fresh when it came.
    body, _ = signed(seed=3)
    an_hour_ago = time.time() - 3600
    then = {"ElevenLabs-Signature": sign(body, SECRET, timestamp=an_hour_ago)}
    with elwh_nb.start(SECRET, store=tmp_path / "late.sqlite") as rx:
        failure_id = rx.store.add_failure(
            "signature_mismatch",
            status=401,
            explanation="a wrong secret at the time",
            headers=then,
            body=body,
            received_at=an_hour_ago + 2,
        )
        assert rx.replay_failure(failure_id).outcome == "accepted"
        # The same signature arriving now would be an hour old: refused as expired.
        rx.store.add_failure("signature_mismatch", status=401, explanation="e", headers=then, body=body)
        late = rx.replay_failure(int(rx.failures.index[-1]))
        assert late.outcome == "failed" and late.reason == "timestamp_expired"


def test_a_changed_body_still_fails_and_is_recorded_anew(tmp_path: Path) -> None:
    body, headers = signed(seed=4)
    tampered = body.replace(b"conv_", b"conv_X", 1)
    with elwh_nb.start(SECRET, store=tmp_path / "t.sqlite") as rx:
        assert httpx.post(rx.local_url, content=tampered, headers=headers).status_code == 401
        first = int(rx.failures.index[-1])
        again = rx.replay_failure(first)
        assert again.outcome == "failed" and again.reason == "signature_mismatch"
        assert again.failure_id is not None and again.failure_id > first
        assert "replay of failure" in str(rx.failures["path"][again.failure_id])
        assert not len(rx.events)
        with pytest.raises(KeyError, match="no failure #999"):
            rx.replay_failure(999)


def test_failure_bodies_are_bounded_in_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_failures, "BODIES_TOTAL", 3 * 2**20)
    store = elwh_nb.EventStore(tmp_path / "b.sqlite")
    big = b"x" * (_failures.BODY_KEPT_MAX + 1)
    too_big = store.add_failure("signature_mismatch", status=401, explanation="e", body=big)
    with pytest.raises(KeyError, match="not kept"):
        store.failure_body(too_big)
    ids = [
        store.add_failure("signature_mismatch", status=401, explanation="e", body=bytes([i]) * 2**20)
        for i in range(6)
    ]
    kept = [i for i in ids if _kept(store, i)]
    assert kept == ids[-3:]  # the newest 3 MiB
    (total,) = store._db.execute("SELECT SUM(length(body)) FROM failure_bodies").fetchone()
    assert total <= 3 * 2**20
    store.close()
    reopened = elwh_nb.EventStore(tmp_path / "b.sqlite")  # the count survives a reopen
    assert reopened._failures.body_bytes == total
    reopened.close()


def _kept(store: elwh_nb.EventStore, failure_id: int) -> bool:
    try:
        store.failure_body(failure_id)
    except KeyError:
        return False
    return True


def test_replay_as_new_runs_the_callbacks_again(rx: elwh_nb.Receiver) -> None:
    seen: list[str] = []
    done = threading.Event()

    def note(event: dict) -> None:
        seen.append(event["data"]["conversation_id"])
        if len(seen) == 2:
            done.set()

    rx.on_event(note)
    body, headers = signed(seed=5)
    event_id = httpx.post(rx.local_url, content=body, headers=headers).json()["id"]
    wait_for(lambda: len(seen) == 1, what="the first callback")
    plain = rx.replay(event_id)
    assert bool(plain.duplicate.iloc[-1]) and not plain.callbacks_run.iloc[-1]
    again = rx.replay(event_id, as_new=True)
    assert bool(again.duplicate.iloc[-1]) and again.callbacks_run.iloc[-1]
    assert done.wait(10) and seen[0] == seen[1]
    assert len(rx.events) == 1 and rx.events.deliveries.iloc[0] == 3  # kept once, delivered thrice


def test_the_dashboard_replays_the_row_clicked(tmp_path: Path) -> None:
    store = tmp_path / "dash.sqlite"
    body, _ = signed(seed=6)
    with elwh_nb.start(OTHER_SECRET, store=store) as rx:
        httpx.post(rx.local_url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)})
    with elwh_nb.start(SECRET, store=store) as rx:
        dash = Dashboard(rx, autorefresh=False)
        dash.outcome.value = "failed"
        dash.table.clicked = 0  # a click on the first row
        assert dash.pick.value is not None and dash.pick.value[0] == "failure"
        dash.replay_selected()
        assert "verified now: stored as event #" in dash.message.value
        dash.outcome.value = "accepted"
        assert dash.pick.value is None  # the failure is not among the events
        dash.table.clicked = 0
        dash.actions.as_new.value = True
        dash.replay_selected()
        assert "a duplicate, kept once; the on_event callbacks ran on it again" in dash.message.value
        dash.close()
