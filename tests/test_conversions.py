"""Studio's conversion callbacks, received for real: their columns, their jobs' turnaround, timings.

A Studio project created or updated with ``callback_url`` gets ``project_conversion_status``
and, per chapter, ``chapter_conversion_status`` (the SDK's ``callback_url`` docs give both
shapes). The person converting knows the project's or chapter's id, so that is what
``rx.expect`` takes; the callback arrives on a real receiver on loopback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import elwh_nb
from elwh_nb import sign, timings

from .conftest import SECRET
from .helpers import CHAPTER_ERROR, PROJECT_OK


@pytest.fixture
def rx(tmp_path: Path) -> Iterator[elwh_nb.Receiver]:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as receiver:
        yield receiver


def deliver(rx: elwh_nb.Receiver, event: dict[str, Any]) -> int:
    """POST ``event`` as ElevenLabs does (Python ``json.dumps`` bytes), signed; its event id."""
    body = json.dumps(event).encode()
    r = httpx.post(
        rx.local_url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)}, timeout=10
    )
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def test_the_sdks_examples_become_columns(rx: elwh_nb.Receiver) -> None:
    first, second = deliver(rx, PROJECT_OK), deliver(rx, CHAPTER_ERROR)
    events = rx.events
    project, chapter = events.loc[first], events.loc[second]
    assert (
        project.event_type == "project_conversion_status"
        and chapter.event_type == "chapter_conversion_status"
    )
    assert (project.project_id, project.chapter_id) == ("21m00Tcm4TlvDq8ikWAM", None)
    assert (project.conversion_status, project.snapshot_id, project.error_details) == (
        "success",
        "22m00Tcm4TlvDq8ikMAT",
        None,
    )
    assert (chapter.project_id, chapter.chapter_id) == ("21m00Tcm4TlvDq8ikWAM", "22m00Tcm4TlvDq8ikMAT")
    assert (chapter.conversion_status, chapter.snapshot_id) == ("error", None)
    assert chapter.error_details == "Error details if conversion failed"
    assert project.request_id == "1234567890"
    assert events.conversion_status.tolist() == ["success", "error"]  # filterable as it is


def test_a_conversion_expected_by_project_or_chapter_id_gets_its_turnaround(rx: elwh_nb.Receiver) -> None:
    submitted = time.time() - 120  # converted two minutes ago
    rx.expect("21m00Tcm4TlvDq8ikWAM", submitted_at=submitted)  # the project
    rx.expect("22m00Tcm4TlvDq8ikMAT", submitted_at=submitted - 30)  # one of its chapters
    chapter_id = deliver(rx, CHAPTER_ERROR)
    jobs = rx.jobs.set_index("job_id")
    # A chapter's callback names its project too, but is not the project's own.
    assert jobs.loc["21m00Tcm4TlvDq8ikWAM", "status"] == "waiting"
    assert jobs.loc["22m00Tcm4TlvDq8ikMAT", "status"] == "arrived"
    assert jobs.loc["22m00Tcm4TlvDq8ikMAT", "kind"] == "chapter"  # from the event, none was given
    assert jobs.loc["22m00Tcm4TlvDq8ikMAT", "outcome"] == "error"
    project_id = deliver(rx, PROJECT_OK)
    jobs, events = rx.jobs.set_index("job_id"), rx.events
    assert jobs.loc["21m00Tcm4TlvDq8ikWAM", ["status", "kind", "outcome"]].tolist() == [
        "arrived",
        "project",
        "success",
    ]
    assert jobs.loc["21m00Tcm4TlvDq8ikWAM", "event_id"] == project_id
    received = events.received_at.astype("int64") / 1e9
    assert events.loc[project_id, "turnaround_s"] == pytest.approx(received[project_id] - submitted, abs=1e-3)
    assert events.loc[chapter_id, "turnaround_s"] == pytest.approx(
        received[chapter_id] - submitted + 30, abs=1e-3
    )
    assert 120 <= float(events.turnaround_s[project_id]) < 180


def test_a_project_converted_again_waits_for_its_new_callback(rx: elwh_nb.Receiver) -> None:
    first = deliver(rx, PROJECT_OK)
    rx.expect("21m00Tcm4TlvDq8ikWAM")  # converted again, after that first callback
    job = rx.jobs.set_index("job_id").loc["21m00Tcm4TlvDq8ikWAM"]
    assert job.status == "waiting" and pd.isna(job.event_id)
    again = dict(PROJECT_OK, event_timestamp=1234567999)  # another body: another event
    second = deliver(rx, again)
    job = rx.jobs.set_index("job_id").loc["21m00Tcm4TlvDq8ikWAM"]
    assert job.event_id == second != first
    assert np.isnan(rx.events.turnaround_s[first])


def test_a_callback_before_its_expect_still_counts(rx: elwh_nb.Receiver) -> None:
    """The webhook can win the race against the cell that announces the job."""
    submitted = time.time() - 60
    event_id = deliver(rx, CHAPTER_ERROR)
    rx.expect("22m00Tcm4TlvDq8ikMAT", submitted_at=submitted)
    assert rx.jobs.set_index("job_id").loc["22m00Tcm4TlvDq8ikMAT", "event_id"] == event_id
    assert float(rx.events.turnaround_s[event_id]) >= 60


def test_a_job_that_never_comes_back_shows_as_overdue(tmp_path: Path) -> None:
    path = tmp_path / "rx.sqlite"
    with elwh_nb.start(SECRET, store=path) as rx:
        rx.expect("proj_lost", submitted_at=time.time() - 3600, kind="project")
        rx.expect("chap_slow", submitted_at=time.time() - 30, kind="chapter", overdue_after=7200)
        rx.expect("chap_new", kind="chapter")
        jobs = rx.jobs.set_index("job_id")
        assert jobs.status.to_dict() == {
            "proj_lost": "overdue",
            "chap_slow": "waiting",
            "chap_new": "waiting",
        }
        assert 3600 <= jobs.loc["proj_lost", "waiting_s"] < 3700
        with pytest.raises(ValueError, match="overdue_after"):
            rx.expect("x", overdue_after=0)
        with pytest.raises(ValueError, match="job_id"):
            rx.expect("")
    with elwh_nb.EventStore(path) as store:  # each job's bound is kept with it
        assert store.jobs.set_index("job_id").status.to_dict()["chap_slow"] == "waiting"
        assert store.jobs.set_index("job_id").status.to_dict()["proj_lost"] == "overdue"


def test_simulate_sends_conversions_with_their_jobs_and_turnaround(rx: elwh_nb.Receiver) -> None:
    types = ["project_conversion_status", "chapter_conversion_status", "speech_to_text_transcription"]
    sent = rx.simulate(30, types=types, seed=4, via="direct", progress=False)
    assert sent.ok.all()
    events, jobs = rx.events, rx.jobs
    assert set(events.event_type) == set(types)
    assert len(jobs) == 30 and (jobs.status == "arrived").all()
    assert set(jobs.kind) == {"project", "chapter", "speech-to-text"}
    assert events.turnaround_s.notna().all()
    conversions = events[events.event_type != "speech_to_text_transcription"]
    assert (conversions.turnaround_s > 5).all()  # conversions take seconds to minutes
    assert set(conversions.conversion_status) <= {"success", "error"}


def test_timings_by_kind_of_job_and_outcome(rx: elwh_nb.Receiver) -> None:
    factory = elwh_nb.payloads(7)
    now = time.time()
    for ok, seconds in [(True, 100), (True, 300), (False, 40)]:
        event = factory.project_conversion_status(success=ok, at=now)
        rx.expect(event["data"]["project_id"], submitted_at=now - seconds)
        deliver(rx, event)
    chapter = factory.chapter_conversion_status(success=True, at=now)
    rx.expect(chapter["data"]["chapter_id"], submitted_at=now - 20)
    deliver(rx, chapter)
    table = timings(rx.events, by=["job", "outcome"]).query("measure == 'turnaround_s'")
    rows = {(r.job, r.outcome): r for r in table.itertuples()}
    assert set(rows) == {("project", "success"), ("project", "error"), ("chapter", "success")}
    assert rows["project", "success"].count == 2
    assert 100 <= rows["project", "success"].p50 <= 300 and rows["project", "error"].max >= 40
    figure = elwh_nb.plot_turnaround(rx.events)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert sorted(labels) == ["chapter · success", "project · error", "project · success"]
    # Without conversions the plot says so instead of failing.
    empty = elwh_nb.plot_turnaround(rx.events.iloc[:0])
    assert [t.get_text() for t in empty.axes[0].texts] == ["no data yet"]


def test_the_factory_makes_successes_and_errors_with_realistic_times() -> None:
    factory = elwh_nb.payloads(1, now=1_800_000_000)
    events = [factory.make(t) for t in ["project_conversion_status", "chapter_conversion_status"] * 100]
    statuses = {e["data"]["conversion_status"] for e in events}
    assert statuses == {"success", "error"}
    for event in events:
        data = event["data"]
        snapshot = data.get("project_snapshot_id", data.get("chapter_snapshot_id"))
        assert (
            (snapshot is None)
            == (data["conversion_status"] == "error")
            == (data["error_details"] is not None)
        )
    waited = {
        kind: [1_800_000_000 - at for k, at in factory.submitted.values() if k == kind]
        for kind in ("project", "chapter")
    }
    assert min(waited["project"]) >= 45 and max(waited["project"]) <= 902
    assert min(waited["chapter"]) >= 8 and max(waited["chapter"]) <= 242
    # Chapters belong to a few projects, so grouping by project means something.
    assert len({e["data"]["project_id"] for e in events if e["type"] == "chapter_conversion_status"}) == 3
