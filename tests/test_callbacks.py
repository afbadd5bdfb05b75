"""rx.on_event: callbacks routed by event type, as the tutorial's process_webhook routes.

Deliveries go over HTTP to a real receiver on loopback; callbacks run on its worker thread.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest

import elwh_nb

from .helpers import wait_for

TYPES = [
    "post_call_transcription",
    "speech_to_text_transcription",
    "voice_removed",
    "speech.completed",  # the tutorial's invented type
    "post_call_transcription",
    "voice_removed",
    "post_call_audio",
]


def test_each_callback_sees_only_its_types(rx: elwh_nb.Receiver) -> None:
    seen: dict[str, list[str]] = defaultdict(list)

    def recorder(name: str) -> Any:
        return lambda event: seen[name].append(elwh_nb.normalize(event)["event_type"])

    rx.on_event(recorder("every"))
    rx.on_event(recorder("calls"), types=["post_call_transcription", "post_call_audio"])

    @rx.on_event
    def bare(event: dict[str, Any]) -> None:
        seen["bare"].append(elwh_nb.normalize(event)["event_type"])

    @rx.on_event(types=["speech_to_text_transcription", "speech.completed"])
    def jobs(event: dict[str, Any]) -> None:
        seen["jobs"].append(elwh_nb.normalize(event)["event_type"])

    @rx.on_event(types="voice_removed")  # a plain string is one type, not its letters
    def voices(event: dict[str, Any]) -> None:
        seen["voices"].append(elwh_nb.normalize(event)["event_type"])

    @rx.on_event(types=["a_type_from_the_future"])  # unknown names are allowed
    def future(event: dict[str, Any]) -> None:
        seen["future"].append(elwh_nb.normalize(event)["event_type"])

    assert bare.__name__ == "bare" and callable(jobs)  # the decorators return the function
    factory = elwh_nb.payloads(11)
    sent = rx.simulate([factory.make(t) for t in TYPES], via="direct", progress=False)
    assert (sent.status == 200).all()

    expected = {
        "every": TYPES,
        "bare": TYPES,
        "calls": [t for t in TYPES if t.startswith("post_call")],
        "jobs": ["speech_to_text_transcription", "speech.completed"],
        "voices": ["voice_removed", "voice_removed"],
    }
    wait_for(
        lambda: all(len(seen[name]) >= len(types) for name, types in expected.items()),
        10,
        "every callback to see its events",
    )
    for name, types in expected.items():
        assert Counter(seen[name]) == Counter(types), name
    assert "future" not in seen
    assert rx.callback_errors.empty


def test_types_must_be_names(rx: elwh_nb.Receiver) -> None:
    def fn(event: dict[str, Any]) -> None:
        return None

    with pytest.raises(TypeError, match="types="):
        rx.on_event(["voice_removed"])  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="event type names"):
        rx.on_event(fn, types=[1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="no event types"):
        rx.on_event(fn, types=[])
    with pytest.raises(ValueError, match="no event types"):
        rx.on_event(types=())  # as a decorator: fails before decorating
