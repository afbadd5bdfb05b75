"""``speech_to_text_transcription``: an asynchronous speech-to-text result with word timings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Seeded, to_body

_STT_TEXTS = (
    "Welcome back to the show. Today we're talking about how small teams ship fast.",
    "Please leave a message after the tone and we will get back to you shortly.",
    "The quarterly numbers look good, but churn in the enterprise segment is up.",
    "Bonjour à tous, merci d'être venus si nombreux ce soir.",
)
# What ElevenLabs accepts as webhook_metadata: an object at most 2 levels deep and 16 KB.
MAX_METADATA_DEPTH = 2
MAX_METADATA_BYTES = 16 * 1024


def _depth(value: Any) -> int:
    """Levels of objects and arrays: ``{"a": 1}`` is 1, ``{"a": [1]}`` is 2."""
    if isinstance(value, Mapping):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, (list, tuple)):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _checked_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` as ElevenLabs would accept it, or a ValueError saying which limit it breaks."""
    if not isinstance(metadata, Mapping):
        raise ValueError(f"webhook_metadata is a JSON object (dict), not {type(metadata).__name__}")
    if (depth := _depth(metadata)) > MAX_METADATA_DEPTH:
        raise ValueError(f"webhook_metadata is {depth} levels deep; ElevenLabs allows {MAX_METADATA_DEPTH}")
    if (size := len(to_body(metadata))) > MAX_METADATA_BYTES:
        raise ValueError(f"webhook_metadata is {size:,} bytes as JSON; ElevenLabs allows 16 KB")
    return dict(metadata)


class SpeechEvents(Seeded):
    """Makes ``speech_to_text_transcription`` events."""

    def speech_to_text_transcription(
        self,
        *,
        at: float | None = None,
        request_id: str | None = None,
        submitted_at: float | None = None,
        webhook_metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An asynchronous speech-to-text result (``webhook=true``), with word timings.

        ``webhook_metadata`` is the caller's own object, sent back as given (at most 2 levels
        deep and 16 KB, as ElevenLabs allows); by default a small one of the notebook's.
        """
        rng = self._rng
        sent = self._at(at)
        text = rng.choice(_STT_TEXTS)
        words: list[dict[str, Any]] = []
        clock = rng.uniform(0.1, 0.6)
        for i, word in enumerate(text.split(" ")):
            if i:
                words.append(
                    {
                        "text": " ",
                        "start": round(clock, 3),
                        "end": round(clock + 0.05, 3),
                        "type": "spacing",
                        "speaker_id": "speaker_0",
                        "logprob": 0.0,
                    }
                )
                clock += 0.05
            length = 0.08 * len(word) + rng.uniform(0.05, 0.2)
            words.append(
                {
                    "text": word,
                    "start": round(clock, 3),
                    "end": round(clock + length, 3),
                    "type": "word",
                    "speaker_id": "speaker_0",
                    "logprob": round(-rng.uniform(0, 0.6), 3),
                }
            )
            clock += length
        french = text.startswith("Bonjour")
        if submitted_at is None:
            submitted_at = sent - clock * rng.uniform(0.3, 1.5) - rng.uniform(1, 8)
        metadata = (
            _checked_metadata(webhook_metadata)
            if webhook_metadata is not None
            else {
                "source": "notebook",
                "submitted_at_unix": round(submitted_at, 3),
            }
        )
        request_id = request_id or self._id("", 32, "0123456789abcdef")
        self.submitted[request_id] = ("speech-to-text", float(submitted_at))
        return self._envelope(
            "speech_to_text_transcription",
            sent,
            {
                "request_id": request_id,
                "transcription": {
                    "language_code": "fra" if french else "eng",
                    "language_probability": round(rng.uniform(0.9, 1.0), 4),
                    "text": text,
                    "words": words,
                },
                "webhook_metadata": metadata,
            },
        )
