"""The shared-voice events: a voice's removal scheduled, withdrawn, or done."""

from __future__ import annotations

from typing import Any

from .base import NAMES, Seeded


class VoiceEvents(Seeded):
    """Makes the ``voice_removal_notice``, ``..._withdrawn`` and ``voice_removed`` events."""

    def _voice(self, event_type: str, at: float | None, extra: dict[str, Any]) -> dict[str, Any]:
        sent = self._at(at)
        data: dict[str, Any] = {
            "voice_id": self._rng.choice(self._voices),
            "voice_name": self._rng.choice(NAMES) + " (shared)",
        }
        data.update(extra)
        return self._envelope(event_type, sent, data)

    def voice_removal_notice(self, *, at: float | None = None) -> dict[str, Any]:
        """A shared voice you use is scheduled for removal (data shape not confirmed)."""
        sent = self._at(at)
        return self._voice(
            "voice_removal_notice",
            sent,
            {
                "removal_scheduled_unix_secs": int(sent) + 30 * 86400,
                "reason": "The voice owner has removed this voice from the Voice Library.",
            },
        )

    def voice_removal_notice_withdrawn(self, *, at: float | None = None) -> dict[str, Any]:
        """A scheduled removal was withdrawn (data shape not confirmed)."""
        return self._voice("voice_removal_notice_withdrawn", at, {})

    def voice_removed(self, *, at: float | None = None) -> dict[str, Any]:
        """A shared voice was removed and no longer works (data shape not confirmed)."""
        sent = self._at(at)
        return self._voice("voice_removed", sent, {"removed_at_unix_secs": int(sent)})
