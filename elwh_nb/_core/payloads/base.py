"""What every event maker shares: one seeded random stream, its ids, the clock, the envelope.

The families (conversation, speech, voices, tutorial) are mixins over :class:`Seeded`; they
all draw from the same ``random.Random``, in call order, so a seed gives the same events.
"""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Mapping
from typing import Any

ALNUM = string.ascii_lowercase + string.digits
_AGENTS = ("Support Agent", "Booking Assistant", "Survey Bot")
NAMES = ("Ana", "José", "Zoë", "Kenji", "Priya", "Oluwaseun", "Marie", "Liam")


def to_body(event: Mapping[str, Any]) -> bytes:
    """Serialise an event as ElevenLabs sends it: compact UTF-8 JSON."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Seeded:
    """The random stream, the agent and voice pools, and the clock that all makers share."""

    def __init__(self, seed: int | None = 0, *, now: float | None = None) -> None:
        self._rng = random.Random(seed)
        self._now = now
        self._agents = [
            (self._id("agent_", 26), name) for name in _AGENTS
        ]  # a small pool, so grouping by agent means something
        self._voices = [self._voice_id() for _ in range(4)]
        self._voice_notices: set[tuple[str, str, int]] = set()  # (type, voice, second) made so far
        self._project_pool: list[str] = []
        #: The jobs behind the callbacks made so far, as the person who submitted them knows
        #: them: job id (a project's, a chapter's or a speech-to-text request's) -> (kind, unix
        #: seconds submitted). ``rx.simulate`` announces them with ``rx.expect``.
        self.submitted: dict[str, tuple[str, float]] = {}

    def _id(self, prefix: str, n: int, alphabet: str = ALNUM) -> str:
        return prefix + "".join(self._rng.choice(alphabet) for _ in range(n))

    def _voice_id(self) -> str:
        return self._id("", 20, string.ascii_letters + string.digits)

    def _phone(self) -> str:
        return "+1" + "".join(self._rng.choice(string.digits) for _ in range(10))

    def _at(self, at: float | None) -> float:
        if at is not None:
            return float(at)
        return self._now if self._now is not None else time.time()

    def _envelope(self, event_type: str, sent: float, data: dict[str, Any]) -> dict[str, Any]:
        return {"type": event_type, "event_timestamp": int(sent), "data": data}
