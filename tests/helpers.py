"""Small helpers shared by the HTTP tests (the ones benchmarks need too live in testkit)."""

from __future__ import annotations

from typing import Any

from elwh_nb import payloads, sign
from testkit.processes import stop_process, wait_for

from .conftest import SECRET

__all__ = ["CHAPTER_ERROR", "PROJECT_OK", "signed", "stop_process", "wait_for"]


def signed(
    event_type: str = "post_call_transcription", seed: int = 0, secret: str = SECRET, **kw: object
) -> tuple[bytes, dict[str, str]]:
    """A realistic body and the headers ElevenLabs would send with it."""
    factory = payloads(seed)
    body = factory.body(factory.make(event_type, **kw))
    return body, {"ElevenLabs-Signature": sign(body, secret), "Content-Type": "application/json"}


# The SDK's own examples for callback_url (studio.projects.create), as they arrive.
PROJECT_OK: dict[str, Any] = {
    "type": "project_conversion_status",
    "event_timestamp": 1234567890,
    "data": {
        "request_id": "1234567890",
        "project_id": "21m00Tcm4TlvDq8ikWAM",
        "conversion_status": "success",
        "project_snapshot_id": "22m00Tcm4TlvDq8ikMAT",
        "error_details": None,
    },
}
CHAPTER_ERROR: dict[str, Any] = {
    "type": "chapter_conversion_status",
    "event_timestamp": 1234567890,
    "data": {
        "request_id": "1234567890",
        "project_id": "21m00Tcm4TlvDq8ikWAM",
        "chapter_id": "22m00Tcm4TlvDq8ikMAT",
        "conversion_status": "error",
        "chapter_snapshot_id": None,
        "error_details": "Error details if conversion failed",
    },
}
