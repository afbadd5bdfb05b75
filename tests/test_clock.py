"""Clock skew: a slow clock here loses no delivery, each one's skew is kept, and one warning says so.

The receiver is real (loopback HTTP); a receiver whose clock is slow sees deliveries signed
in its future, which is what signing ahead of this process's clock gives. The same with a
real process whose clock is shifted by libfaketime is in tests/reliability/test_clock.py.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import elwh_nb
from elwh_nb import EventStore, payloads, sign
from elwh_nb._core import colcache, inbox
from elwh_nb._core.clock import AHEAD_WARN_S, ClockWatch
from elwh_nb._core.events import Arrays
from elwh_nb._notebook import render

from .conftest import SECRET


def deliver(rx: elwh_nb.Receiver, seed: int, ahead: float) -> httpx.Response:
    """A realistic delivery signed ``ahead`` seconds after this clock's now."""
    factory = payloads(seed)
    body = factory.body(factory.post_call_transcription())
    header = sign(body, SECRET, time.time() + ahead)
    return httpx.post(rx.local_url, content=body, headers={"ElevenLabs-Signature": header}, timeout=30)


def clock_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "clock" in r.getMessage()
    ]


def test_a_slow_clock_loses_nothing_and_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="elwh_nb")
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx:
        assert deliver(rx, 1, 60).status_code == 200  # within the threshold: no warning
        assert rx.url_note is None or "clock" not in rx.url_note
        # 6, 10 and 40 minutes slow: once every one of these got a 401, which is never retried.
        for seed, ahead in ((2, 360), (3, 600), (4, 2400)):
            r = deliver(rx, seed, ahead)
            assert r.status_code == 200, r.text
        events = rx.events
        assert len(events) == 4 and len(rx.failures) == 0
        # received_at minus the signature's t: negative, about as far as it was signed ahead.
        expected = np.array([-60, -360, -600, -2400])
        assert (np.abs(events.skew_s.to_numpy() - expected) < 30).all(), events.skew_s
        assert len(clock_warnings(caplog)) == 1
        assert "behind by about 6 minutes" in clock_warnings(caplog)[0]
        note = rx.url_note
        assert note is not None and "This machine's clock is behind by about 40 minutes" in note
        assert "behind by about 40 minutes" in render.header(rx, time.time())
    with EventStore(tmp_path / "rx.sqlite", readonly=True) as again:  # kept in the file
        assert (np.abs(again.events.skew_s.to_numpy() - expected) < 30).all()


def test_a_fast_clock_keeps_the_replay_protection_and_warns_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="elwh_nb")
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx:
        assert deliver(rx, 1, -1200).status_code == 200  # 20 minutes old: inside the 30 minutes
        r = deliver(rx, 2, -1900)
        assert r.status_code == 401 and r.json()["reason"] == "timestamp_expired"
        assert abs(rx.events.skew_s.iloc[0] - 1200) < 30
        assert clock_warnings(caplog) == [] and (rx.url_note is None or "clock" not in rx.url_note)


def test_future_tolerance_still_bounds_when_given(tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", future_tolerance=300) as rx:
        assert deliver(rx, 1, 200).status_code == 200
        r = deliver(rx, 2, 600)
        assert r.status_code == 401 and r.json()["reason"] == "timestamp_in_future"
        failure = rx.failures.iloc[-1]
        assert "clock is behind" in failure.details and "future_tolerance=None" in failure.details


def test_a_kept_delivery_is_measured_against_its_arrival(tmp_path: Path) -> None:
    """Kept while away: its skew is its arrival minus t (not now minus t), and it counts."""
    path = tmp_path / "rx.sqlite"
    EventStore(path).close()
    # Kept a while ago; verified only when the receiver starts. A whole second, as a signature's
    # t is: otherwise the skews are 5.x and 600.x and rounding them depends on the fraction.
    arrived = float(int(time.time()) - 1000)
    factory = payloads(5)
    for i, signed_at in enumerate((arrived - 5, arrived + 600)):  # the second: this clock was slow
        body = factory.body(factory.post_call_transcription())
        headers = {"elevenlabs-signature": sign(body, SECRET, signed_at), "content-type": "application/json"}
        inbox.keep(
            str(path),
            body,
            headers,
            remote="1.2.3.4",
            received_ns=int(arrived * 1e9) + i,
            limits=inbox.Limits(),
        )
    with elwh_nb.start(SECRET, store=path) as rx:
        events = rx.events
        assert len(events) == 2 and events.kept_while_away.all()
        assert events.skew_s.round().tolist() == [5, -600]
        assert rx.url_note is not None and "behind by about 10 minutes" in rx.url_note


def test_the_skew_flows_to_the_column_copy_and_to_a_hub_reader(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from elwh_nb._server import wire

    path = tmp_path / "big.sqlite"
    factory = payloads(6)
    bodies = [factory.body(e) for e in factory.batch(colcache.MIN_ROWS)]
    assert len(set(bodies)) == len(bodies)  # each one stored: the skews line up with the rows
    skews = [(i % 700) - 350.5 for i in range(len(bodies))]
    with EventStore(path) as store:
        store.append_many([(b, None, s) for b, s in zip(bodies, skews, strict=True)])
        store.append(b'{"type": "unsigned"}')  # stored without a signature: no skew
        sent = wire.events_arrays(wire.events_stream(store.arrays_after(0, len(bodies) + 1)))
    assert sent.columns["skew_s"][:-1].tolist() == skews and math.isnan(sent.columns["skew_s"][-1])
    assert colcache.path_for(path).exists()
    with EventStore(path) as again:
        assert again._copied is not None  # reopened from the column copy
        assert again.events.skew_s.iloc[:-1].tolist() == skews


def test_a_stream_from_an_older_service_reads_a_newer_column_as_missing() -> None:
    pytest.importorskip("pyarrow")
    from elwh_nb._server import wire

    with EventStore(":memory:") as store:
        store.append(b'{"type": "x"}', skew_s=-1.0)
        arrays = store.arrays_after(0, 10)
    older = Arrays(
        {k: v for k, v in arrays.columns.items() if k != "skew_s"}, arrays.types, arrays.deliveries
    )
    got = wire.events_arrays(wire.events_stream(older))
    assert len(got.columns["skew_s"]) == 1 and math.isnan(got.columns["skew_s"][0])


def test_the_warning_is_given_once_past_the_threshold_and_follows_the_largest() -> None:
    watch = ClockWatch()
    for skew in (3.0, -0.5, 2000.0, -AHEAD_WARN_S):  # network lag, retries, noise: no warning
        watch.observe(skew)
    assert watch.note is None and watch.warned_at is None
    watch.observe(-AHEAD_WARN_S - 1)
    first = watch.warned_at
    assert first is not None and watch.note is not None and "about 2 minutes" in watch.note
    watch.observe(-3 * 3600)
    assert watch.warned_at == first and "about 3.0 hours" in watch.note
