"""Studio's conversion callbacks: ``project_conversion_status`` and ``chapter_conversion_status``.

A Studio project created or updated with a ``callback_url`` gets one of these when a
conversion ends, with the shape the SDK documents for ``callback_url``. The callback says
nothing of when the conversion was submitted, so the factory keeps that in :attr:`submitted`
(what a notebook passes to ``rx.expect``), as the person converting would know it.
"""

from __future__ import annotations

import string
from typing import Any

from .base import Seeded

_ERRORS = (
    "Insufficient credits to convert this project.",
    "Chapter 'Epilogue' has no text to convert.",
    "Voice 'Narrator (old)' is no longer available.",
    "Conversion timed out, please try again.",
)
_ID = string.ascii_letters + string.digits


class StudioEvents(Seeded):
    """Makes Studio's conversion callbacks, successes and errors, with realistic conversion times."""

    def _studio_id(self) -> str:
        return self._id("", 20, _ID)

    def _projects(self) -> list[str]:
        if not self._project_pool:  # made on first use, so other types' streams stay as they were
            self._project_pool = [self._studio_id() for _ in range(3)]
        return self._project_pool

    def _conversion(
        self,
        kind: str,
        job_id: str,
        sent: float,
        ok: bool | None,
        submitted_at: float | None,
        seconds: tuple[float, float],
    ) -> tuple[str, str | None]:
        """(conversion_status, error_details), and the job's submission recorded."""
        rng = self._rng
        if ok is None:
            ok = rng.random() < 0.9
        if submitted_at is None:
            submitted_at = sent - rng.uniform(*seconds) - rng.random()  # the callback leaves a moment after
        self.submitted[job_id] = (kind, float(submitted_at))
        return ("success", None) if ok else ("error", rng.choice(_ERRORS))

    def project_conversion_status(
        self,
        *,
        at: float | None = None,
        project_id: str | None = None,
        request_id: str | None = None,
        success: bool | None = None,
        submitted_at: float | None = None,
    ) -> dict[str, Any]:
        """A Studio project's conversion ended (``success``: about nine in ten; a project takes minutes)."""
        sent = self._at(at)
        project_id = project_id or self._studio_id()
        status, details = self._conversion("project", project_id, sent, success, submitted_at, (45.0, 900.0))
        return self._envelope(
            "project_conversion_status",
            sent,
            {
                "request_id": request_id or self._id("", 32, "0123456789abcdef"),
                "project_id": project_id,
                "conversion_status": status,
                "project_snapshot_id": self._studio_id() if status == "success" else None,
                "error_details": details,
            },
        )

    def chapter_conversion_status(
        self,
        *,
        at: float | None = None,
        project_id: str | None = None,
        chapter_id: str | None = None,
        request_id: str | None = None,
        success: bool | None = None,
        submitted_at: float | None = None,
    ) -> dict[str, Any]:
        """One chapter of a Studio project converted (``success``: about nine in ten; seconds to minutes)."""
        sent = self._at(at)
        project_id = project_id or self._rng.choice(self._projects())
        chapter_id = chapter_id or self._studio_id()
        status, details = self._conversion("chapter", chapter_id, sent, success, submitted_at, (8.0, 240.0))
        return self._envelope(
            "chapter_conversion_status",
            sent,
            {
                "request_id": request_id or self._id("", 32, "0123456789abcdef"),
                "project_id": project_id,
                "chapter_id": chapter_id,
                "conversion_status": status,
                "chapter_snapshot_id": self._studio_id() if status == "success" else None,
                "error_details": details,
            },
        )
