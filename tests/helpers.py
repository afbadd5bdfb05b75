"""Small helpers shared by the HTTP tests (the ones benchmarks need too live in testkit)."""

from __future__ import annotations

from elwh_nb import payloads, sign
from testkit.processes import stop_process, wait_for

from .conftest import SECRET

__all__ = ["signed", "stop_process", "wait_for"]


def signed(
    event_type: str = "post_call_transcription", seed: int = 0, secret: str = SECRET, **kw: object
) -> tuple[bytes, dict[str, str]]:
    """A realistic body and the headers ElevenLabs would send with it."""
    factory = payloads(seed)
    body = factory.body(factory.make(event_type, **kw))
    return body, {"ElevenLabs-Signature": sign(body, secret), "Content-Type": "application/json"}
