"""A receiver whose clock is minutes slow (libfaketime shifts a real process's clock) loses nothing.

ElevenLabs signs each delivery with the time it sends and never retries a 4xx, so a bound
into the future turned a slow clock into lost deliveries: 6, 10 and 40 minutes slow, every
one answered 401. Now every one is stored, with its skew, and the receiver says once which
clock is off and by how much. The sender here is the kit's own, on this machine's real clock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import elwh_nb

from ..conftest import SECRET, require

#: A receiver in its own process: prints its URL, waits for stdin to close, prints its note.
RECEIVER = textwrap.dedent(
    """
    import logging, sys, elwh_nb
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    options = {} if sys.argv[2] == "default" else {"future_tolerance": float(sys.argv[2])}
    with elwh_nb.start(sys.argv[3], store=sys.argv[1], **options) as rx:
        print(rx.local_url, flush=True)
        sys.stdin.read()
        print(rx.url_note, flush=True)
    """
)


def run_slow(tmp_path: Path, minutes: int, option: str, events: int = 30) -> tuple[object, str, str]:
    """Send ``events`` deliveries to a receiver ``minutes`` slow; its sent frame, note and log."""
    store = tmp_path / f"slow{minutes}-{option}.sqlite"
    proc = subprocess.Popen(
        ["faketime", "-f", f"-{minutes}m", sys.executable, "-c", RECEIVER, str(store), option, SECRET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "1"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), proc.stderr.read() if proc.stderr else url
        sent = elwh_nb.send(url, SECRET, events, seed=minutes, retry=False, progress=False, concurrency=4)
        out, err = proc.communicate("", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return sent, out.strip(), err


@pytest.fixture(autouse=True)
def _faketime() -> None:
    require(shutil.which("faketime") is not None, "libfaketime", "apt-get install faketime")


@pytest.mark.parametrize("minutes", [4, 6, 10, 40])
def test_a_slow_receiver_stores_every_delivery_and_says_its_clock_is_behind(
    tmp_path: Path, minutes: int
) -> None:
    sent, note, log = run_slow(tmp_path, minutes, "default")
    assert (sent.status == 200).all(), sent.status.value_counts()  # type: ignore[attr-defined]
    with elwh_nb.EventStore(tmp_path / f"slow{minutes}-default.sqlite", readonly=True) as store:
        events = store.events
        assert len(events) == len(sent) and len(store.failures) == 0  # type: ignore[arg-type]
        # Signed on the real clock, received on one `minutes` slow: that far ahead, give or take.
        assert ((events.skew_s + minutes * 60).abs() < 30).all(), events.skew_s.describe()
    said = f"behind by about {minutes} minutes"
    assert said in note and note.count("clock is behind") == 1
    assert log.count("clock is behind") == 1 and said in log


def test_the_old_bound_is_still_there_for_who_asks_for_it(tmp_path: Path) -> None:
    """future_tolerance=300 (the old default) on a receiver 6 minutes slow: every delivery 401."""
    sent, _, _ = run_slow(tmp_path, 6, "300", events=10)
    assert (sent.status == 401).all(), sent.status.value_counts()  # type: ignore[attr-defined]
    with elwh_nb.EventStore(tmp_path / "slow6-300.sqlite", readonly=True) as store:
        assert len(store.events) == 0
        assert set(store.failures.reason) == {"timestamp_in_future"}
