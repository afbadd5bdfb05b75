"""The factory: which event types exist, their default mix, and making one or many by type name."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .base import to_body
from .call_failure import CallFailures
from .conversation import ConversationEvents
from .otel import OtelEvents
from .speech import SpeechEvents
from .studio import StudioEvents
from .tutorial import TutorialEvents
from .voices import VoiceEvents

#: Event types ElevenLabs sends today (shapes of the voice-removal ones are not confirmed).
#: Studio's conversion callbacks go to a project's ``callback_url`` (``rx.callback_url("studio")``).
REAL_TYPES: tuple[str, ...] = (
    "post_call_transcription",
    "post_call_transcription_otel",
    "post_call_audio",
    "call_initiation_failure",
    "speech_to_text_transcription",
    "project_conversion_status",
    "chapter_conversion_status",
    "voice_removal_notice",
    "voice_removal_notice_withdrawn",
    "voice_removed",
)
#: The invented types of the tutorial chapter (``event_type``/``timestamp`` at top level).
TUTORIAL_TYPES: tuple[str, ...] = ("speech.completed", "voice.created")
#: Every event type the factory makes: the real ones, then the tutorial's.
EVENT_TYPES: tuple[str, ...] = REAL_TYPES + TUTORIAL_TYPES

# A mix resembling an agents-platform workspace: mostly transcriptions.
_DEFAULT_WEIGHTS: dict[str, float] = {
    "post_call_transcription": 10,
    "post_call_transcription_otel": 1,
    "post_call_audio": 3,
    "call_initiation_failure": 2,
    "speech_to_text_transcription": 4,
    "project_conversion_status": 1,
    "chapter_conversion_status": 3,
    "voice_removal_notice": 0.5,
    "voice_removal_notice_withdrawn": 0.2,
    "voice_removed": 0.3,
}


class PayloadFactory(
    ConversationEvents, OtelEvents, CallFailures, SpeechEvents, StudioEvents, VoiceEvents, TutorialEvents
):
    """Makes realistic events; one method per event type, plus :meth:`make` and :meth:`batch`.

    ``at`` (unix seconds) is when an event is sent; it defaults to ``now`` (fixed at
    construction when given, else the clock). Everything else comes from ``seed``.
    """

    __module__ = "elwh_nb"  # shown where it is imported from (as httpx does)

    types: tuple[str, ...] = EVENT_TYPES

    def _maker(self, event_type: str) -> Callable[..., dict[str, Any]]:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
        method: Callable[..., dict[str, Any]] = getattr(self, event_type.replace(".", "_"))
        return method

    def make(self, event_type: str, **options: Any) -> dict[str, Any]:
        """One event of ``event_type`` (a real or tutorial type name)."""
        return self._maker(event_type)(**options)

    def iter_events(
        self,
        n: int,
        *,
        types: Sequence[str] | Mapping[str, float] | None = None,
        span_s: float = 3600.0,
        end: float | None = None,
        **options: Any,
    ) -> Iterator[dict[str, Any]]:
        """``n`` events in time order, spread over the ``span_s`` seconds before ``end``.

        ``types`` is a list (equal weights) or a mapping of type to weight; the default
        is a realistic mix of the real types. ``options`` go to every maker that takes them.
        """
        if isinstance(types, Mapping):
            weights = dict(types)
        elif types is not None:
            weights = dict.fromkeys(types, 1.0)
        else:
            weights = dict(_DEFAULT_WEIGHTS)
        names = list(weights)
        for name in names:
            self._maker(name)
        last = self._at(end)
        stamps = sorted(last - self._rng.uniform(0, span_s) for _ in range(n))
        for sent, event_type in zip(
            stamps, self._rng.choices(names, weights=list(weights.values()), k=n), strict=True
        ):
            yield self.make(event_type, at=sent, **_accepted(self._maker(event_type), options))

    def batch(self, n: int, **kwargs: Any) -> list[dict[str, Any]]:
        """A list of :meth:`iter_events`."""
        return list(self.iter_events(n, **kwargs))

    body = staticmethod(to_body)


def _accepted(method: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    params = inspect.signature(method).parameters
    return {k: v for k, v in options.items() if k in params}


def payloads(seed: int | None = 0, *, now: float | None = None) -> PayloadFactory:
    """A :class:`PayloadFactory`: ``elwh_nb.payloads(seed=1).post_call_transcription()``."""
    return PayloadFactory(seed, now=now)
