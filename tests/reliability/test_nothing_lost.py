"""Load with nothing lost: each 200 is stored exactly once, each other answer is a failure, counts add up."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import elwh_nb
from testkit.jupyter import JupyterServer, jupyter_server

from ..conftest import SECRET

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it

SCALE = int(os.environ.get("ELWH_RELIABILITY_SCALE", "1"))  # larger settings for local runs
FAULTS = {"wrong_secret": 20, "expired": 20, "tampered": 20, "malformed_header": 10, "duplicate": 60}


def check_books(rx: elwh_nb.Receiver, sent: pd.DataFrame) -> None:
    """The receiver's tables account for every answer the senders got, exactly."""
    ok = sent[sent.status == 200]
    bad = sent[sent.status != 200]
    assert sent.status.notna().all(), sent[sent.status.isna()].error.tolist()[:3]
    events = rx.events
    # every acknowledged delivery is stored, once per distinct body
    assert set(ok.id.astype(int)) == set(events.index)
    assert events.index.is_unique
    assert int(events.deliveries.sum()) == len(ok)
    assert rx.store.counts["duplicates"] == int(ok.duplicate.astype(bool).sum())
    # every refused delivery is a failure, with the status that was answered
    failures = rx.failures
    assert len(failures) == len(bad) == rx.store.counts["failures"]
    assert sorted(failures.status.tolist()) == sorted(bad.status.astype(int).tolist())
    bodies = [rx.store.raw_body(i) for i in events.index]
    assert len({hashlib.sha256(b).digest() for b in bodies}) == len(bodies)


def test_many_concurrent_senders_direct(tmp_path: Path) -> None:
    n = 3000 * SCALE
    with elwh_nb.start(SECRET, store=tmp_path / "load.sqlite") as rx:
        sent = elwh_nb.send(
            rx.local_url,
            SECRET,
            n,
            faults=FAULTS,
            concurrency=64,
            types=["speech_to_text_transcription"],
            seed=1,
            progress=False,
        )
        assert sent.ok.all()
        check_books(rx, sent)
    with elwh_nb.EventStore(tmp_path / "load.sqlite") as again:  # and all of it is in the file
        assert again.counts["events"] == len(sent[(sent.status == 200) & ~sent.duplicate.astype(bool)])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with jupyter_server(tmp_path_factory.mktemp("rel-jupyter")) as s:
        yield s


def test_many_concurrent_senders_through_the_public_route(
    server: JupyterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    n = 1500 * SCALE
    with elwh_nb.start(SECRET, store=":memory:") as rx:
        assert rx.public_url is not None
        sent = elwh_nb.send(rx.public_url, SECRET, n, faults=FAULTS, concurrency=32, seed=2, progress=False)
        assert sent.ok.all()
        check_books(rx, sent)


def test_retries_after_5xx_are_counted_once(tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "retry.sqlite") as rx:
        rx.simulate_outage(25)
        sent = elwh_nb.send(
            rx.local_url,
            SECRET,
            60,
            types=["post_call_transcription"],
            concurrency=16,
            retry_scale=0.0001,
            seed=3,
            progress=False,
        )
        final = sent.sort_values("attempt").groupby("seq").last()
        assert (final.status == 200).all()  # every delivery got through in the end
        assert len(rx.events) == 60 and rx.store.counts["failures"] == 25
        assert (sent.status == 503).sum() == 25
        check_books(rx, sent)
    assert json.loads(json.dumps(int(final.attempt.max()))) >= 2
