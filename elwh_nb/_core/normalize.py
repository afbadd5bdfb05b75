"""Flatten any ElevenLabs (or tutorial) event into one record with the columns people filter on.

Real deliveries keep their ids under ``data``; the tutorial's invented events keep them at
the top level with other names. Both map onto the same record. Unknown types and missing
or oddly typed fields give ``None``, never an error: the whole event stays in ``payload``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .schema import EVENTS

#: The columns of a normalised record, in order (``payload`` comes last): the events
#: table's columns that come from the record (see :data:`.schema.EVENTS`).
FIELDS: tuple[str, ...] = EVENTS.record_fields

_TEXT_FIELDS = (
    *("conversation_id", "agent_id", "request_id", "voice_id", "status", "failure_reason"),
    *("project_id", "chapter_id", "conversion_status"),
)

_DIGITS = re.compile(r"\d+(\.\d+)?")

# The tutorial's events carry one top-level `id`; it names the job or voice they report on.
_TUTORIAL_ID_FIELD = {"speech.completed": "request_id", "voice.created": "voice_id"}
# A flows run's `data` is the run, whose `id` is what its webhook reports on.
_DATA_ID_FIELD = {"flows_template_run": "request_id"}
_SNAPSHOT_FIELDS = ("chapter_snapshot_id", "project_snapshot_id")
_OTEL_ERROR = (2, "2", "STATUS_CODE_ERROR")  # OTLP JSON writes the enum as a number or its name

#: Every key :func:`normalize` reads: a string not reached from the top through these keys
#: alone (another key, or a list, on the way) cannot change the record (:mod:`.skim` relies
#: on this; tests/test_skim.py checks it on every event type).
READ_KEYS = frozenset(
    {
        *("type", "event_type", "event_timestamp", "timestamp", "id", "data", "metadata"),
        *_TEXT_FIELDS,
        *("agent_name", "environment", "conversation_initiation_client_data"),
        *("call_duration_secs", "start_time_unix_secs", "webhook_metadata", "submitted_at"),
        *(*_SNAPSHOT_FIELDS, "error_details", "error"),
    }
)
#: Keys whose whole value (lists included) :func:`normalize` or :func:`.derive.derive` may
#: read: an OpenTelemetry transcript's spans give a call's status and times; a transcript,
#: its metadata and analysis give the turns, tool calls and conversation the store derives.
READ_WHOLE = frozenset({"otlp_traces", "transcript", "metadata", "analysis"})


def to_utc(value: Any) -> datetime | None:
    """Unix seconds (int, float or digit string) or an ISO 8601 string as a UTC datetime."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        try:
            return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        except OverflowError:  # year 1 or 9999 shifted past the calendar's ends
            return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            return to_utc(parsed)
    if isinstance(value, (int, float)):
        try:
            if not math.isfinite(value):
                return None
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float
        return None
    return out if math.isfinite(out) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _submitted_at(metadata: Any) -> datetime | None:
    """``submitted_at`` of a job's ``webhook_metadata``: unix seconds as a number or digit string.

    The metadata is the caller's own JSON, an object (or, from a caller who passed the SDK
    ``json.dumps(...)``, that object as text); anything else gives None.
    """
    if isinstance(metadata, str) and metadata.lstrip().startswith("{"):
        try:
            metadata = json.loads(metadata)
        except (ValueError, RecursionError):  # not JSON, too deep, a number past Python's digits
            return None
    value = _mapping(metadata).get("submitted_at")
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value.strip()):
            return None
    elif not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return to_utc(value)


def _details(value: Any) -> str | None:
    """An error's details as text: a string as it is, an object (``{code, reason}``) as JSON."""
    if isinstance(value, (Mapping, list)):
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        except (ValueError, RecursionError):  # a cycle cannot come from JSON; too deep can
            return None
    return _text(value)


def _nanos(value: Any) -> int | None:
    """OTLP's ``*TimeUnixNano``: a digit string (as OTLP JSON writes 64-bit integers) or an int."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _from_nanos(ns: int) -> datetime | None:
    """Unix nanoseconds as a UTC datetime, to the microsecond (no float in between)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    start = to_utc(seconds)
    try:
        return None if start is None else start + timedelta(microseconds=rest // 1000)
    except OverflowError:  # the last second of year 9999
        return None


def _root_span(traces: Any) -> Mapping[str, Any] | None:
    """The conversation's root span in OTLP JSON traces: ``elevenlabs.conversation``, else the
    first span without a parent."""
    spans = [
        span
        for resource in _list(_mapping(traces).get("resourceSpans"))
        for scope in _list(_mapping(resource).get("scopeSpans"))
        for span in _list(_mapping(scope).get("spans"))
        if isinstance(span, Mapping)
    ]
    for span in spans:
        if span.get("name") == "elevenlabs.conversation":
            return span
    return next((span for span in spans if not span.get("parentSpanId")), None)


def _otel(record: dict[str, Any], traces: Any) -> None:
    """Status, start and duration from an OpenTelemetry transcript's root span, where missing."""
    root = _root_span(traces)
    if root is None:
        return
    start, end = _nanos(root.get("startTimeUnixNano")), _nanos(root.get("endTimeUnixNano"))
    if record["status"] is None:
        code = _mapping(root.get("status")).get("code")
        record["status"] = "failed" if code in _OTEL_ERROR else "done"
    if record["call_started_at"] is None and start is not None:
        record["call_started_at"] = _from_nanos(start)
    if record["duration_s"] is None and start is not None and end is not None and end >= start:
        record["duration_s"] = (end - start) / 1e9


def normalize(event: Mapping[str, Any]) -> dict[str, Any]:
    """One flat record for ``event``: the :data:`FIELDS` plus ``payload`` (the event itself)."""
    if not isinstance(event, Mapping):
        raise TypeError(f"an event is a JSON object (dict), not {type(event).__name__}")
    data = _mapping(event.get("data"))
    metadata = _mapping(data.get("metadata"))
    event_type = _text(event.get("type"))
    if event_type is None:
        event_type = _text(event.get("event_type"))  # the tutorial's name
    stamp = event.get("event_timestamp")
    if stamp is None:
        stamp = event.get("timestamp")  # the tutorial's name

    record: dict[str, Any] = {
        "event_type": event_type,
        "event_timestamp": to_utc(stamp),
    }
    for name in _TEXT_FIELDS:
        value = data.get(name)
        record[name] = _text(value if value is not None else event.get(name))
    tutorial_field = _TUTORIAL_ID_FIELD.get(event_type or "")
    if tutorial_field and record[tutorial_field] is None:
        record[tutorial_field] = _text(event.get("id"))
    data_field = _DATA_ID_FIELD.get(event_type or "")
    if data_field and record[data_field] is None:
        record[data_field] = _text(data.get("id"))
    record["snapshot_id"] = next(
        (text for name in _SNAPSHOT_FIELDS if (text := _text(data.get(name))) is not None), None
    )
    details = data.get("error_details")
    record["error_details"] = _details(details if details is not None else metadata.get("error"))
    record["agent_name"] = _text(data.get("agent_name"))
    environment = _text(data.get("environment"))
    client = _mapping(data.get("conversation_initiation_client_data"))  # what the call started with
    record["environment"] = environment if environment is not None else _text(client.get("environment"))
    record["duration_s"] = _seconds(metadata.get("call_duration_secs"))
    record["call_started_at"] = to_utc(metadata.get("start_time_unix_secs"))
    record["submitted_at"] = _submitted_at(data.get("webhook_metadata"))
    if "otlp_traces" in data:
        _otel(record, data["otlp_traces"])
    record["payload"] = event
    return {key: record[key] for key in (*FIELDS, "payload")}
