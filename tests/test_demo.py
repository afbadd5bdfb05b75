"""The headless demo (`make demo`): runs end to end on the default store and says what happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from elwh_nb import EventStore


def test_demo_cli_on_the_default_store(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "elwh_nb", "demo", "--events", "60", "--seed", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    text = out.stdout
    assert "60 deliveries signed, verified and stored" in text
    assert "6 rejected deliveries" in text
    for reason in ("signature_mismatch", "timestamp_expired", "missing_header", "invalid_json"):
        assert reason in text
    assert "re-serialised" in text  # explain() named the cause
    assert "wsec_test_" not in text + out.stderr  # the demo's secret is never shown
    with EventStore(tmp_path / "elwh_events.sqlite") as store:
        assert store.counts["events"] == 60 and store.counts["duplicates"] == 3
        assert store.counts["failures"] == 6


def test_demo_twice_adds_new_events(tmp_path: Path) -> None:
    from elwh_nb._demo import run

    lines: list[str] = []
    run(10, store=tmp_path / "d.sqlite", seed=1, out=lines.append).close()
    store = run(10, store=tmp_path / "d.sqlite", seed=2, out=lines.append)
    assert store.counts["events"] == 20
    store.close()


def test_cli_needs_a_command() -> None:
    from elwh_nb.__main__ import main

    with pytest.raises(SystemExit):
        main([])
