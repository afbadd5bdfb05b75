"""``post_call_transcription_otel``: a finished call's transcript as OpenTelemetry traces (OTLP JSON).

An agent whose ``transcript_format`` is ``opentelemetry`` sends this instead of
``post_call_transcription``: a root ``elevenlabs.conversation`` span over the call, a child
span per turn (``elevenlabs.recv.user_transcript``, ``elevenlabs.recv.agent_response``) and
per tool call (``elevenlabs.tool.<name>``), times as nanosecond digit strings, attributes as
``{key, value: {stringValue|intValue|...}}``, parameters cut at 4 KB. No audio. The attribute
names are not documented; a turn's stage metrics are ``elevenlabs.metrics.<name>`` here.
"""

from __future__ import annotations

import json
from typing import Any

from .transcript import Transcripts

ATTRIBUTE_CHARS = 4096  # ElevenLabs cuts tool parameters and results here
_OK, _ERROR = 1, 2  # OTLP's STATUS_CODE_OK and STATUS_CODE_ERROR


def _attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, value in values.items():
        typed: dict[str, Any]
        if isinstance(value, bool):
            typed = {"boolValue": value}
        elif isinstance(value, int):
            typed = {"intValue": str(value)}  # OTLP JSON writes 64-bit integers as strings
        elif isinstance(value, float):
            typed = {"doubleValue": value}
        else:
            typed = {"stringValue": str(value)[:ATTRIBUTE_CHARS]}
        out.append({"key": key, "value": typed})
    return out


class OtelEvents(Transcripts):
    """Makes ``post_call_transcription_otel`` events."""

    def post_call_transcription_otel(
        self, *, at: float | None = None, turns: int | None = None, failed: bool | None = None
    ) -> dict[str, Any]:
        """A finished call as OTLP traces; ``failed`` (about one in ten) sets the root span's error status."""
        rng = self._rng
        call = self._call(at, turns, (6, 24))
        sent, agent_id, agent_name, conversation_id = (
            call.sent,
            call.agent_id,
            call.agent_name,
            call.conversation_id,
        )
        transcript, duration = call.transcript, call.duration
        if failed is None:
            failed = rng.random() < 0.1
        start_ns = int((sent - rng.uniform(2.0, 25.0) - duration) * 1e9)
        end_ns = start_ns + int(duration * 1e9)
        trace_id = self._id("", 32, "0123456789abcdef")
        root_id = self._id("", 16, "0123456789abcdef")

        def span(
            name: str, start: int, end: int, attributes: dict[str, Any], code: int = _OK
        ) -> dict[str, Any]:
            return {
                "traceId": trace_id,
                "spanId": self._id("", 16, "0123456789abcdef"),
                "parentSpanId": root_id,
                "name": name,
                "kind": 1,
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(end),
                "attributes": _attributes(attributes),
                "status": {"code": code},
            }

        spans = []
        for i, turn in enumerate(transcript):
            begin = start_ns + int(turn["time_in_call_secs"] * 1e9)
            after = (
                transcript[i + 1]["time_in_call_secs"] * 1e9 + start_ns if i + 1 < len(transcript) else end_ns
            )
            agent = turn["role"] == "agent"
            said = {"elevenlabs.agent.text" if agent else "elevenlabs.user.text": turn["message"]}
            metrics = (turn["conversation_turn_metrics"] or {}).get("metrics", {})
            said.update({f"elevenlabs.metrics.{k}": float(v["elapsed_time"]) for k, v in metrics.items()})
            spans.append(
                span(
                    "elevenlabs.recv.agent_response" if agent else "elevenlabs.recv.user_transcript",
                    begin,
                    max(begin, int(after)),
                    said,
                )
            )
            for call, result in zip(turn["tool_calls"], turn["tool_results"], strict=True):
                latency = int(result["tool_latency_secs"] * 1e9)
                spans.append(
                    span(
                        f"elevenlabs.tool.{call['tool_name']}",
                        begin,
                        begin + latency,
                        {
                            **({"elevenlabs.tool.type": call["type"]} if call["type"] else {}),
                            "elevenlabs.tool.parameters": call["params_as_json"],
                            "elevenlabs.tool.result": result["result_value"],
                            "elevenlabs.tool.is_error": result["is_error"],
                        },
                        _ERROR if result["is_error"] else _OK,
                    )
                )
        root = {
            "traceId": trace_id,
            "spanId": root_id,
            "name": "elevenlabs.conversation",
            "kind": 1,
            "startTimeUnixNano": str(start_ns),
            "endTimeUnixNano": str(end_ns),
            "attributes": _attributes(
                {
                    "elevenlabs.conversation.id": conversation_id,
                    "elevenlabs.agent.id": agent_id,
                    "elevenlabs.agent.name": agent_name,
                    "elevenlabs.conversation.turns": len(transcript),
                }
            ),
            "status": (
                {"code": _ERROR, "message": json.dumps({"reason": "websocket closed abnormally"})}
                if failed
                else {"code": _OK}
            ),
        }
        traces = {
            "resourceSpans": [
                {
                    "resource": {"attributes": _attributes({"service.name": "elevenlabs-convai"})},
                    "scopeSpans": [{"scope": {"name": "elevenlabs.convai"}, "spans": [root, *spans]}],
                }
            ]
        }
        return self._envelope(
            "post_call_transcription_otel",
            sent,
            {"conversation_id": conversation_id, "agent_id": agent_id, "otlp_traces": traces},
        )
