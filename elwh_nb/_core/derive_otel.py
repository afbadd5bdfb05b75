"""The OpenTelemetry transcript format (``post_call_transcription_otel``) as the same rows as JSON's.

The spans are OTLP JSON: a root ``elevenlabs.conversation`` span over the call, a span per
turn (``elevenlabs.recv.user_transcript``, ``elevenlabs.recv.agent_response``) and per tool
call (``elevenlabs.tool.<name>``). The format's attribute names are not documented: a
turn's text is any ``*.text`` attribute, a stage metric any attribute whose last dotted part
is a metric's name (``convai_...``, seconds), a tool's parameters and result the
``*.parameters`` and ``*.result`` attributes, its error an ``*.is_error`` attribute or an
error status. What a span does not say stays missing. Times are the spans' own (nanosecond
digit strings); a turn's ``time_in_call_secs`` is its start less the root's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .derive import Conversation, Derived, ToolCall, Turn, number, summarise, wait_s
from .normalize import _OTEL_ERROR, _mapping, _nanos, _root_span, _text

_ROLES = {"elevenlabs.recv.user_transcript": "user", "elevenlabs.recv.agent_response": "agent"}
_TOOL = "elevenlabs.tool."
_VALUE_KEYS = ("stringValue", "boolValue", "intValue", "doubleValue")


def _spans(traces: Any) -> list[Mapping[str, Any]]:
    return [
        span
        for resource in _list(_mapping(traces).get("resourceSpans"))
        for scope in _list(_mapping(resource).get("scopeSpans"))
        for span in _list(_mapping(scope).get("spans"))
        if isinstance(span, Mapping)
    ]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def attributes(span: Mapping[str, Any]) -> dict[str, Any]:
    """A span's ``attributes[]`` as ``{key: value}`` (OTLP's typed values unwrapped)."""
    out: dict[str, Any] = {}
    for item in _list(span.get("attributes")):
        item = _mapping(item)
        key, value = item.get("key"), _mapping(item.get("value"))
        if not isinstance(key, str):
            continue
        for kind in _VALUE_KEYS:
            if kind in value:
                raw = value[kind]
                out[key] = int(raw) if kind == "intValue" and _nanos(raw) is not None else raw
                break
    return out


def _ending(attrs: Mapping[str, Any], suffix: str) -> Any:
    return next((v for k, v in attrs.items() if k.endswith(suffix)), None)


def _metrics(attrs: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in attrs.items():
        name = key.rsplit(".", 1)[-1]
        if name.startswith("convai_") and not math.isnan(seconds := number(value)):
            out[name] = seconds
    return out


def _seconds_between(start: int | None, end: int | None) -> float:
    return math.nan if start is None or end is None or end < start else (end - start) / 1e9


def otel_format(data: Mapping[str, Any]) -> Derived:
    """Turns, tool calls and the conversation of an OpenTelemetry transcript's ``data``."""
    spans = _spans(data.get("otlp_traces"))
    root = _root_span(data.get("otlp_traces"))
    root_attrs = attributes(root) if root is not None else {}
    root_start = None if root is None else _nanos(root.get("startTimeUnixNano"))
    root_end = None if root is None else _nanos(root.get("endTimeUnixNano"))
    code = _mapping(root.get("status")).get("code") if root is not None else None
    conversation = Conversation(
        conversation_id=_text(data.get("conversation_id")) or _text(_ending(root_attrs, "conversation.id")),
        agent_id=_text(data.get("agent_id")) or _text(_ending(root_attrs, "agent.id")),
        agent_name=_text(_ending(root_attrs, "agent.name")),
        status=None if root is None else ("failed" if code in _OTEL_ERROR else "done"),
        started_at=math.nan if root_start is None else root_start / 1e9,
        duration_s=_seconds_between(root_start, root_end),
        error=_text(_mapping(root.get("status")).get("message")) if code in _OTEL_ERROR and root else None,
        formats="otel",
    )

    def start(span: Mapping[str, Any]) -> int:
        ns = _nanos(span.get("startTimeUnixNano"))
        return -1 if ns is None else ns

    def in_call(ns: int | None) -> float:
        return math.nan if ns is None or ns < 0 or root_start is None else (ns - root_start) / 1e9

    said = sorted((s for s in spans if s.get("name") in _ROLES), key=start)
    tools = sorted(
        (s for s in spans if isinstance(s.get("name"), str) and s["name"].startswith(_TOOL)), key=start
    )
    turns: list[Turn] = []
    last_user: dict[str, float] | None = None
    for index, span in enumerate(said):
        attrs = attributes(span)
        text = _ending(attrs, ".text")
        role = _ROLES[span["name"]]
        metrics = _metrics(attrs)
        turn = Turn(
            turn=index,
            role=role,
            time_in_call_secs=in_call(start(span)),
            message_chars=len(text) if isinstance(text, str) else 0,
            message=text if isinstance(text, str) else None,
            interrupted=_ending(attrs, ".interrupted") is True,
            metrics=metrics,
        )
        if role == "agent":
            turn.wait_s = wait_s(last_user, metrics)
            last_user = None
        else:
            last_user = metrics
        turns.append(turn)
    starts = [start(s) for s in said]
    calls: list[ToolCall] = []
    for span in tools:
        attrs = attributes(span)
        began = start(span)
        index = max((i for i, s in enumerate(starts) if s <= began), default=0) if turns else -1
        error = _ending(attrs, ".is_error")
        status = _mapping(span.get("status")).get("code")
        latency = number(_ending(attrs, ".latency_secs"))
        calls.append(
            ToolCall(
                turn=index,
                tool_name=span["name"][len(_TOOL) :] or None,
                tool_type=_text(_ending(attrs, "tool.type")),
                request_id=_text(_ending(attrs, ".request_id")) or _text(span.get("spanId")),
                parameters=_text(_ending(attrs, ".parameters")),
                latency_s=(
                    _seconds_between(began, _nanos(span.get("endTimeUnixNano")))
                    if math.isnan(latency)
                    else latency
                ),
                is_error=error
                if isinstance(error, bool)
                else (None if status is None else status in _OTEL_ERROR),
                result=_text(_ending(attrs, ".result")),
                time_in_call_secs=in_call(began),
            )
        )
        if 0 <= index < len(turns):
            turns[index].tool_calls += 1
    summarise(conversation, turns, calls)
    return Derived(conversation, turns, calls)
