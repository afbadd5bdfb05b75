"""Jobs announced with ``expect()``: asynchronous work whose webhook is awaited, and its turnaround.

A job (a Studio project or chapter conversion, a speech-to-text ``request_id``, a
conversation id, ...) is matched by the first event after its submission that reports on
it, whichever of the two comes first; that event's ``turnaround_s`` is the time from
submission to arrival. A job that does not come back shows as overdue.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .columns import Columns

DDL = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT,
    submitted_ns INTEGER NOT NULL,
    event_id INTEGER,
    overdue_s REAL
)"""
#: A job still waiting this long after its submission shows as ``overdue`` (``expect(overdue_after=)``).
OVERDUE_S = 15 * 60.0
#: The kind of job each event type reports on, for a job announced without ``kind``.
JOB_KINDS = {
    "project_conversion_status": "project",
    "chapter_conversion_status": "chapter",
    "speech_to_text_transcription": "speech-to-text",
    "flows_template_run": "flows run",
    "post_call_transcription": "conversation",
    "post_call_transcription_otel": "conversation",
    "speech.completed": "speech (tutorial)",
}
# An event reports on a job by one of these ids; a project conversion's ``project_id`` only
# when it is not a chapter's (a chapter's callback names its project too).
_MATCH_SQL = (
    "SELECT id FROM events WHERE received_ns >= ? AND (request_id = ? OR conversation_id = ?"
    " OR chapter_id = ? OR (project_id = ? AND chapter_id IS NULL)) ORDER BY id LIMIT 1"
)


def migrate(db: sqlite3.Connection) -> None:
    """Give a file from before ``overdue_s`` the column."""
    if "overdue_s" not in {row[1] for row in db.execute("PRAGMA table_info(jobs)")}:
        db.execute("ALTER TABLE jobs ADD COLUMN overdue_s REAL")


def job_keys(row: Mapping[str, Any]) -> tuple[str | None, ...]:
    """The ids by which an event's row answers a job."""
    project = row.get("project_id") if row.get("chapter_id") is None else None
    return (row.get("request_id"), row.get("conversation_id"), row.get("chapter_id"), project)


@dataclass
class Job:
    job_id: str
    kind: str | None
    submitted_ns: int
    event_id: int | None
    overdue_s: float = OVERDUE_S


class Jobs:
    """The announced jobs, kept in the file's ``jobs`` table and matched to ``events``' rows.

    A job is answered by the first event to arrive after its submission whose id is the
    job's (see :func:`job_keys`), so a project converted again waits for its new callback.
    Callers hold the store's lock.
    """

    def __init__(self, events: Columns) -> None:
        self._events = events
        self._jobs: dict[str, Job] = {}

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def load(self, db: sqlite3.Connection) -> None:
        """Read the file's jobs (once the events are in memory)."""
        have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        overdue = "overdue_s" if "overdue_s" in have else "NULL"  # a read-only file from before it
        query = f"SELECT job_id, kind, submitted_ns, event_id, {overdue} FROM jobs ORDER BY rowid"
        for job_id, kind, submitted, event_id, overdue_s in db.execute(query):
            self._jobs[job_id] = Job(
                job_id, kind, submitted, event_id, OVERDUE_S if overdue_s is None else overdue_s
            )
            if event_id is not None:
                self._set_turnaround(event_id, submitted)

    def expect(
        self,
        db: sqlite3.Connection,
        job_id: str,
        submitted_ns: int,
        kind: str | None,
        overdue_s: float = OVERDUE_S,
    ) -> None:
        """Record a job (raises sqlite3.Error when the file refuses it), matched if its event is in."""
        row = db.execute(_MATCH_SQL, (submitted_ns, *[job_id] * 4)).fetchone()
        event_id = None if row is None else int(row[0])
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET"
            " kind = excluded.kind, submitted_ns = excluded.submitted_ns,"
            " event_id = excluded.event_id, overdue_s = excluded.overdue_s",
            (job_id, kind, submitted_ns, event_id, overdue_s),
        )
        self._jobs[job_id] = Job(job_id, kind, submitted_ns, event_id, overdue_s)
        if event_id is not None:
            self._set_turnaround(event_id, submitted_ns)

    def match(self, db: sqlite3.Connection, row: dict[str, Any]) -> None:
        """Match a newly stored event's row to a job waiting for it."""
        for key in job_keys(row):
            job = self._jobs.get(key) if key else None
            if job is not None and job.event_id is None and row["received_at"] >= job.submitted_ns:
                job.event_id = row["id"]
                with contextlib.suppress(sqlite3.Error):  # the turnaround is derived; the event is safe
                    db.execute("UPDATE jobs SET event_id = ? WHERE job_id = ?", (row["id"], job.job_id))
                self._set_turnaround(row["id"], job.submitted_ns)

    def _set_turnaround(self, event_id: int, submitted_ns: int) -> None:
        position = self._events.position("id", event_id)
        if position is not None:
            received = int(self._events.position_value("received_at", position))
            self._events.update(position, {"turnaround_s": (received - submitted_ns) / 1e9})

    def snapshot(self) -> tuple[list[Job], dict[str, int]]:
        """The jobs and, for those arrived, their event's arrival (ns)."""
        jobs = list(self._jobs.values())
        received = {
            job.job_id: self._events.position_value("received_at", pos)
            for job in jobs
            if job.event_id is not None and (pos := self._events.position("id", job.event_id)) is not None
        }
        return jobs, received


def jobs_frame(jobs: list[Job], received: dict[str, int], events: pd.DataFrame, now_ns: int) -> pd.DataFrame:
    """One row per job: ``arrived`` with its turnaround and outcome, ``waiting``, or ``overdue``.

    ``events`` is the store's events frame, from which an arrived job takes its event's type
    (its ``kind`` when none was given) and outcome (a conversion's ``conversion_status``, else
    the event's ``status``).
    """
    event_ids = [j.event_id for j in jobs]
    known = [i for i in event_ids if i is not None and i in events.index]
    matched = events.loc[known, [c for c in ("event_type", "conversion_status", "status") if c in events]]
    kinds, outcomes = [], []
    for job in jobs:
        row = matched.loc[job.event_id] if job.event_id in matched.index else None
        event_type = None if row is None else row["event_type"]
        kinds.append(job.kind if job.kind is not None else JOB_KINDS.get(str(event_type)))
        outcome = None
        if row is not None:
            outcome = row.get("conversion_status")
            if not isinstance(outcome, str):
                outcome = row.get("status") if isinstance(row.get("status"), str) else None
        outcomes.append(outcome)
    waited = [(now_ns - j.submitted_ns) / 1e9 for j in jobs]
    status = [
        "arrived" if j.event_id is not None else "overdue" if w > j.overdue_s else "waiting"
        for j, w in zip(jobs, waited, strict=True)
    ]
    return pd.DataFrame(
        {
            "job_id": [j.job_id for j in jobs],
            "kind": kinds,
            "submitted_at": pd.to_datetime([j.submitted_ns for j in jobs], unit="ns", utc=True),
            "status": pd.Categorical(status, categories=["waiting", "overdue", "arrived"]),
            "event_id": pd.array(event_ids, dtype="Int64"),
            "turnaround_s": [
                (received[j.job_id] - j.submitted_ns) / 1e9 if j.job_id in received else np.nan for j in jobs
            ],
            "outcome": outcomes,
            "waiting_s": [np.nan if j.event_id is not None else w for j, w in zip(jobs, waited, strict=True)],
        }
    )
