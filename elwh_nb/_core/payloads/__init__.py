"""A seeded factory of realistic ElevenLabs webhook events, for people without an account.

Every real type from ElevenLabs' documentation, plus the tutorial's two invented types.
Times are consistent: a call starts, lasts, ends, is analysed, and only then is the
event sent (``event_timestamp``). The same seed and ``now`` give the same events.

One module per family of events, each a mixin over the seeded state in ``base``:
``conversation`` (post-call transcription and audio, with ``transcript``), ``call_failure``,
``otel`` (the OpenTelemetry transcript), ``speech`` (speech-to-text), ``studio`` (Studio's
conversion callbacks), ``voices`` (shared-voice removal) and ``tutorial``;
``factory`` puts them together, knows the type names, and makes many at once.
"""

from __future__ import annotations

from .base import to_body
from .factory import (
    _DEFAULT_WEIGHTS,
    EVENT_TYPES,
    REAL_TYPES,
    TUTORIAL_TYPES,
    PayloadFactory,
    _accepted,
    payloads,
)

__all__ = [
    "EVENT_TYPES",
    "REAL_TYPES",
    "TUTORIAL_TYPES",
    "_DEFAULT_WEIGHTS",
    "PayloadFactory",
    "_accepted",
    "payloads",
    "to_body",
]
