"""What is inside a call: a post-call event as rows of turns, tool calls and one conversation.

:func:`derive` takes a parsed ``post_call_transcription`` (the JSON transcript format),
``post_call_transcription_otel`` (the OpenTelemetry format, see :mod:`.derive_otel`) or
``call_initiation_failure`` and gives the rows the store keeps beside the event
(:mod:`.derived`), so that analysis never re-parses stored bodies. Every field is optional:
a failed call with no transcript, a turn with ``null`` metrics, a metric nobody has seen
before, a body without ``event_timestamp``, all give rows with what is known, never an error.

Turn metrics come nested (``{"metrics": {NAME: {"elapsed_time": s}}}``, real deliveries) or
flat (``{NAME: {"elapsed_time": s}}`` or ``{NAME: s}``, the docs' example); both give one
float per name, in seconds. A caller's wait before an agent turn is :func:`wait_s`.
Pure: stdlib only.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .normalize import to_utc
from .schema import STAGES

__all__ = ["STAGES", "Conversation", "Derived", "ToolCall", "Turn", "derive", "merge", "wait_s"]

#: Event types that carry a conversation's transcript, one per transcript format.
TRANSCRIPT_TYPES = ("post_call_transcription", "post_call_transcription_otel")
DERIVED_TYPES = (*TRANSCRIPT_TYPES, "call_initiation_failure")
#: At most this many distinct names become columns of their own per kind (metrics,
#: evaluation criteria, data items, models); more are kept in the file, not as columns.
MAX_NAMES = 256


# dict first: what JSON gives, checked without the ABC machinery (a hot path at ingest).
_MAPS = (dict, Mapping)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, _MAPS) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def number(value: Any) -> float:
    """A finite float, or NaN (None, text that is no number, bools, infinities)."""
    if type(value) is float:  # the usual case, quickly
        return value if math.isfinite(value) else math.nan
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def _json_text(value: Any) -> str | None:
    """Text as it is; anything else as compact JSON (a tool's parameters, a result object)."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (ValueError, RecursionError):
        return None


@dataclass
class Turn:
    """One transcript turn."""

    turn: int
    role: str | None
    time_in_call_secs: float = math.nan
    message_chars: int = 0
    interrupted: bool = False
    source_medium: str | None = None
    tool_calls: int = 0
    llm_input_tokens: float = math.nan
    llm_output_tokens: float = math.nan
    wait_s: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)
    message: str | None = field(default=None, repr=False)  # for the conversation view; not kept


@dataclass
class ToolCall:
    """One tool call, joined to its result by ``request_id`` (or by position)."""

    turn: int
    tool_name: str | None
    tool_type: str | None = None
    request_id: str | None = None
    method: str | None = None
    url: str | None = None
    parameters: str | None = None
    latency_s: float = math.nan
    is_error: bool | None = None
    tool_has_been_called: bool | None = None
    result: str | None = None
    time_in_call_secs: float = math.nan


@dataclass
class Conversation:
    """One conversation, as one event tells it (:meth:`merge` adds what another format tells)."""

    conversation_id: str | None
    agent_id: str | None = None
    agent_name: str | None = None
    environment: str | None = None
    status: str | None = None
    started_at: float = math.nan  # unix seconds
    duration_s: float = math.nan
    cost: float = math.nan
    llm_price: float = math.nan
    llm_charge: float = math.nan
    call_charge: float = math.nan
    tier: str | None = None
    termination_reason: str | None = None
    error: str | None = None
    failure_reason: str | None = None
    main_language: str | None = None
    direction: str | None = None
    phone_type: str | None = None
    call_sid: str | None = None
    call_successful: str | None = None
    call_summary_title: str | None = None
    transcript_summary: str | None = None
    formats: str = ""
    turns: int = 0
    user_turns: int = 0
    agent_turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    llm_input_tokens: float = math.nan
    llm_output_tokens: float = math.nan
    wait_p50_s: float = math.nan
    evaluation: dict[str, Any] = field(default_factory=dict)  # criterion id -> result
    data: dict[str, Any] = field(default_factory=dict)  # data-collection id -> value
    tokens: dict[str, float] = field(default_factory=dict)  # model -> tokens (in and out)
    p50: dict[str, float] = field(default_factory=dict)  # stage metric -> median over turns

    @property
    def extra(self) -> dict[str, Any]:
        """The parts with names of their own (kept in the file as one JSON object)."""
        return {"evaluation": self.evaluation, "data": self.data, "tokens": self.tokens, "p50": self.p50}


@dataclass
class Derived:
    """Everything one event says about its conversation."""

    conversation: Conversation
    turns: list[Turn]
    tool_calls: list[ToolCall]


# -- the JSON transcript format ------------------------------------------------------------


def turn_metrics(value: Any) -> dict[str, float]:
    """``conversation_turn_metrics`` as ``{name: seconds}``, nested or flat; odd entries skipped."""
    metrics = _mapping(value)
    if isinstance(metrics.get("metrics"), _MAPS):
        metrics = metrics["metrics"]
    out: dict[str, float] = {}
    for name, item in metrics.items():
        seconds = number(item.get("elapsed_time") if isinstance(item, _MAPS) else item)
        if seconds == seconds and isinstance(name, str):  # not NaN
            out[name] = seconds
    return out


def _tokens(use: Mapping[str, Any], kinds: tuple[str, ...]) -> float:
    """The sum of ``use[kind].tokens`` over the kinds it has; NaN if none."""
    total = math.nan
    for kind in kinds:
        entry = use.get(kind)
        if isinstance(entry, _MAPS):
            tokens = number(entry.get("tokens"))
            if tokens == tokens:  # not NaN
                total = tokens if total != total else total + tokens
    return total


_INPUT = ("input", "input_cache_read", "input_cache_write")
_OUTPUT = ("output_total",)
_OUTPUT_OLD = ("output",)  # an older name, read when output_total is missing


def llm_tokens(usage: Any) -> tuple[float, float, dict[str, float]]:
    """Tokens in and out of an ``llm_usage`` (``model_usage.<model>.{input,...,output_total}``),
    and each model's total. NaN where it says nothing."""
    tokens_in, tokens_out = math.nan, math.nan
    by_model: dict[str, float] = {}
    if not isinstance(usage, _MAPS):
        return tokens_in, tokens_out, by_model
    for model, use in _mapping(usage.get("model_usage")).items():
        if not isinstance(use, _MAPS):
            continue
        got_in = _tokens(use, _INPUT)
        got_out = _tokens(use, _OUTPUT if "output_total" in use else _OUTPUT_OLD)
        if got_in == got_in:
            tokens_in = got_in if tokens_in != tokens_in else tokens_in + got_in
        if got_out == got_out:
            tokens_out = got_out if tokens_out != tokens_out else tokens_out + got_out
        both = [v for v in (got_in, got_out) if v == v]
        if both and isinstance(model, str):
            by_model[model] = sum(both)
    return tokens_in, tokens_out, by_model


def wait_s(user_metrics: Mapping[str, float] | None, agent_metrics: Mapping[str, float]) -> float:
    """How long the caller waits from the end of their speech to the agent's first audio.

    The sum of the stages that exist: the user turn's trailing transcription latency
    (``convai_asr_trailing_service_latency``), the agent turn's time to the LLM's first
    sentence (``convai_llm_service_ttf_sentence``, else its first token,
    ``convai_llm_service_ttfb``), and the speech's first byte (``convai_tts_service_ttfb``).
    NaN for an agent turn that answers no user turn (the greeting, a second agent turn in a
    row: nobody was waiting), and when the agent turn has neither LLM nor TTS stage.
    """
    if user_metrics is None:
        return math.nan
    llm = agent_metrics.get("convai_llm_service_ttf_sentence", agent_metrics.get("convai_llm_service_ttfb"))
    tts = agent_metrics.get("convai_tts_service_ttfb")
    if llm is None and tts is None:
        return math.nan
    asr = (user_metrics or {}).get("convai_asr_trailing_service_latency")
    return sum(v for v in (asr, llm, tts) if v is not None)


def _tool_call(turn: int, call: Mapping[str, Any], result: Mapping[str, Any], at: float) -> ToolCall:
    details = _mapping(call.get("tool_details"))
    params = call.get("params_as_json")
    error, called = (
        result.get("is_error"),
        call.get("tool_has_been_called", result.get("tool_has_been_called")),
    )
    value = result.get("result_value")
    if value is None:
        value = result.get("result")
    return ToolCall(
        turn=turn,
        tool_name=_text(call.get("tool_name")) or _text(result.get("tool_name")),
        tool_type=_text(call.get("type")) or _text(result.get("type")),
        request_id=_text(call.get("request_id")) or _text(result.get("request_id")),
        method=_text(details.get("method")),
        url=_text(details.get("url")),
        parameters=_json_text(params),
        latency_s=number(result.get("tool_latency_secs")),
        is_error=error if isinstance(error, bool) else None,
        tool_has_been_called=called if isinstance(called, bool) else None,
        result=_json_text(value),
        time_in_call_secs=at,
    )


def _results_only(turn: int, result: Mapping[str, Any], at: float) -> ToolCall:
    """A result whose call is not in the transcript (it came in a turn of its own)."""
    return _tool_call(turn, {}, result, at)


def _tools(index: int, turn: Mapping[str, Any], at: float, pending: dict[str, ToolCall]) -> list[ToolCall]:
    """The turn's calls, each joined to its result (by request id, else in order)."""
    made, answered = turn.get("tool_calls"), turn.get("tool_results")
    if not made and not answered:  # most turns
        return []
    calls = [c for c in _list(made) if isinstance(c, _MAPS)]
    results = [r for r in _list(answered) if isinstance(r, _MAPS)]
    by_id = {r["request_id"]: r for r in results if isinstance(r.get("request_id"), str)}
    used: set[int] = set()
    out = []
    for i, call in enumerate(calls):
        rid = call.get("request_id")
        result = by_id.get(rid) if isinstance(rid, str) else None
        if result is None and i < len(results) and not isinstance(results[i].get("request_id"), str):
            result = results[i]
        if result is not None:
            used.add(id(result))
        row = _tool_call(index, call, result or {}, at)
        out.append(row)
        if result is None and row.request_id is not None:
            pending[row.request_id] = row  # its result may come in a later turn
    for result in results:
        if id(result) in used:
            continue
        rid = result.get("request_id")
        earlier = pending.pop(rid, None) if isinstance(rid, str) else None
        if earlier is not None:
            joined = _tool_call(earlier.turn, {}, result, earlier.time_in_call_secs)
            for name in ("tool_type", "method", "url", "parameters"):
                setattr(joined, name, getattr(earlier, name) or getattr(joined, name))
            joined.tool_name = earlier.tool_name or joined.tool_name
            if earlier.tool_has_been_called is not None:
                joined.tool_has_been_called = earlier.tool_has_been_called
            earlier.__dict__.update(joined.__dict__)
        else:
            out.append(_results_only(index, result, at))
    return out


def _transcript(transcript: list[Any]) -> tuple[list[Turn], list[ToolCall], dict[str, float]]:
    turns: list[Turn] = []
    calls: list[ToolCall] = []
    models: dict[str, float] = {}
    pending: dict[str, ToolCall] = {}
    last_user: dict[str, float] | None = None
    for index, item in enumerate(t for t in transcript if isinstance(t, _MAPS)):
        role = _text(item.get("role"))
        metrics = turn_metrics(item.get("conversation_turn_metrics"))
        tokens_in, tokens_out, by_model = llm_tokens(item.get("llm_usage"))
        for model, n in by_model.items():
            models[model] = models.get(model, 0.0) + n
        at = number(item.get("time_in_call_secs"))
        message = item.get("message")
        interrupted = item.get("interrupted")
        row = Turn(
            turn=index,
            role=role,
            time_in_call_secs=at,
            message_chars=len(message) if isinstance(message, str) else 0,
            message=message if isinstance(message, str) else None,
            interrupted=interrupted is True,
            source_medium=_text(item.get("source_medium")),
            llm_input_tokens=tokens_in,
            llm_output_tokens=tokens_out,
            metrics=metrics,
        )
        tools = _tools(index, item, at, pending)
        row.tool_calls = sum(1 for t in tools if t.turn == index)
        calls.extend(tools)
        if role == "agent":
            row.wait_s = wait_s(last_user, metrics)
            last_user = None
        elif role == "user":
            last_user = metrics  # {} when it has none: the agent's stages still count
        turns.append(row)
    return turns, calls, models


def _evaluation(results: Any) -> dict[str, Any]:
    out = {}
    for key, item in _mapping(results).items():
        item = _mapping(item)
        name = _text(item.get("criteria_id")) or _text(key)
        if name is not None:
            out[name] = _text(item.get("result"))
    return out


def _data(results: Any) -> dict[str, Any]:
    out = {}
    for key, item in _mapping(results).items():
        item = _mapping(item)
        name = _text(item.get("data_collection_id")) or _text(key)
        if name is None:
            continue
        value = item.get("value")
        out[name] = (
            value if value is None or isinstance(value, (str, int, float, bool)) else _json_text(value)
        )
    return out


def summarise(conversation: Conversation, turns: list[Turn], calls: list[ToolCall]) -> None:
    """Fill in the conversation's counts, token totals and per-stage medians from its rows."""
    conversation.turns = len(turns)
    conversation.user_turns = sum(1 for t in turns if t.role == "user")
    conversation.agent_turns = sum(1 for t in turns if t.role == "agent")
    conversation.tool_calls = len(calls)
    conversation.tool_errors = sum(1 for c in calls if c.is_error)
    for name in ("llm_input_tokens", "llm_output_tokens"):
        values = [getattr(t, name) for t in turns if not math.isnan(getattr(t, name))]
        if values and math.isnan(getattr(conversation, name)):
            setattr(conversation, name, sum(values))
    waits = [t.wait_s for t in turns if not math.isnan(t.wait_s)]
    conversation.wait_p50_s = statistics.median(waits) if waits else math.nan
    stages: dict[str, list[float]] = {}
    for t in turns:
        for name, seconds in t.metrics.items():
            stages.setdefault(name, []).append(seconds)
    conversation.p50 = {name: statistics.median(v) for name, v in stages.items()}


def _json_format(data: Mapping[str, Any]) -> Derived:
    metadata, analysis = _mapping(data.get("metadata")), _mapping(data.get("analysis"))
    charging, phone = _mapping(metadata.get("charging")), _mapping(metadata.get("phone_call"))
    client = _mapping(data.get("conversation_initiation_client_data"))
    started = to_utc(metadata.get("start_time_unix_secs"))
    error = metadata.get("error")
    conversation = Conversation(
        conversation_id=_text(data.get("conversation_id")),
        agent_id=_text(data.get("agent_id")),
        agent_name=_text(data.get("agent_name")),
        environment=_text(data.get("environment")) or _text(client.get("environment")),
        status=_text(data.get("status")),
        started_at=math.nan if started is None else started.timestamp(),
        duration_s=number(metadata.get("call_duration_secs")),
        cost=number(metadata.get("cost")),
        llm_price=number(charging.get("llm_price")),
        llm_charge=number(charging.get("llm_charge")),
        call_charge=number(charging.get("call_charge")),
        tier=_text(charging.get("tier")),
        termination_reason=_text(metadata.get("termination_reason")),
        error=None if error is None else _json_text(error),
        main_language=_text(metadata.get("main_language")),
        direction=_text(phone.get("direction")),
        phone_type=_text(phone.get("type")),
        call_sid=_text(phone.get("call_sid")),
        call_successful=_text(analysis.get("call_successful")),
        call_summary_title=_text(analysis.get("call_summary_title")),
        transcript_summary=_text(analysis.get("transcript_summary")),
        formats="json",
        evaluation=_evaluation(analysis.get("evaluation_criteria_results")),
        data=_data(analysis.get("data_collection_results")),
    )
    turns, calls, models = _transcript(_list(data.get("transcript")))
    charged: dict[str, float] = {}
    for generation in _mapping(charging.get("llm_usage")).values():
        for model, n in llm_tokens(generation)[2].items():
            charged[model] = charged.get(model, 0.0) + n
    conversation.tokens = charged or models  # the bill's count when it has one
    summarise(conversation, turns, calls)
    return Derived(conversation, turns, calls)


def _initiation_failure(data: Mapping[str, Any], stamp: Any) -> Derived:
    """A call that never started: ``started_at`` is when it failed (the event's timestamp)."""
    metadata = _mapping(data.get("metadata"))
    failed_at = to_utc(stamp)
    body = _mapping(metadata.get("body"))
    conversation = Conversation(
        conversation_id=_text(data.get("conversation_id")),
        agent_id=_text(data.get("agent_id")),
        status="initiation_failed",
        started_at=math.nan if failed_at is None else failed_at.timestamp(),
        failure_reason=_text(data.get("failure_reason")),
        phone_type=_text(metadata.get("type")),
        call_sid=_text(body.get("call_sid")) or _text(body.get("CallSid")),
        error=_text(body.get("error_reason")),
        formats="initiation_failure",
    )
    return Derived(conversation, [], [])


def derive(event: Mapping[str, Any]) -> Derived | None:
    """The rows of a post-call event, or None for an event of another type (or no conversation)."""
    kind = event.get("type")
    data = _mapping(event.get("data"))
    if kind == "post_call_transcription":
        derived = _json_format(data)
    elif kind == "post_call_transcription_otel":
        from .derive_otel import otel_format

        derived = otel_format(data)
    elif kind == "call_initiation_failure":
        derived = _initiation_failure(data, event.get("event_timestamp"))
    else:
        return None
    return derived if derived.conversation.conversation_id is not None else None


def merge(old: Conversation, new: Conversation, counts: Conversation) -> Conversation:
    """One conversation told by two events (both transcript formats, or a re-sent one).

    Each field is the newer event's where it says something, the older's where not, except
    that a JSON transcript's fields win over an OpenTelemetry one's (it says more); the turn
    and tool counts, medians and wait are those of ``counts``, the event whose turns are kept.
    """
    json_first = "json" in old.formats and "json" not in new.formats
    base, over = (new, old) if json_first else (old, new)
    out = Conversation(conversation_id=old.conversation_id)
    kept = ("turns", "user_turns", "agent_turns", "tool_calls", "tool_errors", "wait_p50_s", "p50")
    for name in out.__dataclass_fields__:
        a, b = getattr(base, name), getattr(over, name)
        if name in kept:
            value = getattr(counts, name)
        elif name == "formats":
            value = "+".join(
                dict.fromkeys(p for p in (*old.formats.split("+"), *new.formats.split("+")) if p)
            )
        elif isinstance(a, dict):
            value = {**a, **b}
        elif b is None or (isinstance(b, float) and math.isnan(b)):
            value = a
        else:
            value = b
        setattr(out, name, value)
    return out
