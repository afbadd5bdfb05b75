"""Jobs announced with ``expect()``: asynchronous work whose webhook is awaited, and its turnaround.

A job (a speech-to-text ``request_id``, a conversation id, ...) is matched by the first
event whose ``request_id`` or ``conversation_id`` is its id, whichever comes first; that
event's ``turnaround_s`` is the time from submission to arrival.
"""

from __future__ import annotations

import contextlib
import sqlite3
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
    event_id INTEGER
)"""


@dataclass
class Job:
    job_id: str
    kind: str | None
    submitted_ns: int
    event_id: int | None


class Jobs:
    """The announced jobs, kept in the file's ``jobs`` table and matched to ``events``' rows.

    Callers hold the store's lock.
    """

    def __init__(self, events: Columns) -> None:
        self._events = events
        self._jobs: dict[str, Job] = {}

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def load(self, db: sqlite3.Connection) -> None:
        """Read the file's jobs (once the events are in memory)."""
        for job_id, kind, submitted, event_id in db.execute("SELECT * FROM jobs ORDER BY rowid"):
            self._jobs[job_id] = Job(job_id, kind, submitted, event_id)
            if event_id is not None:
                self._set_turnaround(event_id, submitted)

    def expect(self, db: sqlite3.Connection, job_id: str, submitted_ns: int, kind: str | None) -> None:
        """Record a job (raises sqlite3.Error when the file refuses it), matched if its event is in."""
        row = db.execute(
            "SELECT id FROM events WHERE request_id = ? OR conversation_id = ? ORDER BY id LIMIT 1",
            (job_id, job_id),
        ).fetchone()
        event_id = None if row is None else int(row[0])
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET"
            " kind = excluded.kind, submitted_ns = excluded.submitted_ns,"
            " event_id = excluded.event_id",
            (job_id, kind, submitted_ns, event_id),
        )
        self._jobs[job_id] = Job(job_id, kind, submitted_ns, event_id)
        if event_id is not None:
            self._set_turnaround(event_id, submitted_ns)

    def match(self, db: sqlite3.Connection, row: dict[str, Any]) -> None:
        """Match a newly stored event's row to a job waiting for it."""
        for key in (row["request_id"], row["conversation_id"]):
            job = self._jobs.get(key) if key else None
            if job is not None and job.event_id is None:
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


def jobs_frame(jobs: list[Job], received: dict[str, int]) -> pd.DataFrame:
    """One row per job: waiting, or arrived with its turnaround."""
    return pd.DataFrame(
        {
            "job_id": [j.job_id for j in jobs],
            "kind": [j.kind for j in jobs],
            "submitted_at": pd.to_datetime([j.submitted_ns for j in jobs], unit="ns", utc=True),
            "status": ["arrived" if j.event_id is not None else "waiting" for j in jobs],
            "event_id": pd.array([j.event_id for j in jobs], dtype="Int64"),
            "turnaround_s": [
                (received[j.job_id] - j.submitted_ns) / 1e9 if j.job_id in received else np.nan for j in jobs
            ],
        }
    )
