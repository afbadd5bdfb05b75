"""The tutorial chapter's two invented events, with ``event_type`` and ``timestamp`` at top level."""

from __future__ import annotations

import string
from typing import Any

from .base import Seeded


class TutorialEvents(Seeded):
    """Makes ``speech.completed`` and ``voice.created``."""

    def speech_completed(self, *, at: float | None = None, job_id: str | None = None) -> dict[str, Any]:
        """The tutorial's ``speech.completed``: top-level ``event_type``, ``id``, ``timestamp``."""
        return {
            "event_type": "speech.completed",
            "id": job_id or self._id("", 6),
            "project_id": self._id("proj", 3, string.digits),
            "status": "completed",
            "timestamp": int(self._at(at)),
        }

    def voice_created(self, *, at: float | None = None) -> dict[str, Any]:
        """The tutorial's ``voice.created``."""
        return {
            "event_type": "voice.created",
            "id": self._voice_id(),
            "project_id": self._id("proj", 3, string.digits),
            "status": "created",
            "timestamp": int(self._at(at)),
        }
