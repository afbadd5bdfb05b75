"""The shared-voice events: a voice's removal scheduled, withdrawn, or done."""

from __future__ import annotations

from typing import Any

from .base import NAMES, Seeded


class VoiceEvents(Seeded):
    """Makes the ``voice_removal_notice``, ``..._withdrawn`` and ``voice_removed`` events."""

    def _voice(self, event_type: str, at: float | None, extra: dict[str, Any]) -> dict[str, Any]:
        sent = self._at(at)
        voice = self._rng.choice(self._voices)
        # The same notice for the same voice in the same second is a retry, not a new event:
        # a batch sent at one instant gets a voice of its own instead (the pool grows).
        while (event_type, voice, int(sent)) in self._voice_notices:
            voice = self._voice_id()
            self._voices.append(voice)
        self._voice_notices.add((event_type, voice, int(sent)))
        data: dict[str, Any] = {
            "voice_id": voice,
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
