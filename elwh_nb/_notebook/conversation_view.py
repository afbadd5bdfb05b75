"""One conversation as the inspector shows it: the analysis, then the transcript as a chat.

Each agent turn shows its stage latencies and the caller's wait, tool calls sit inline with
their latency and any error, and the JSON tree of the body stays one click away. Built from
one stored body (read when the conversation is picked) through :func:`.derive.derive`, so
both transcript formats look the same. HTML only; the panel puts it in a widget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from .._core.derive import Derived, ToolCall, Turn, derive
from .latency import SHORT
from .render import esc, json_view

#: How each role's bubble looks (agent on the left, the caller on the right).
_BUBBLE = {
    "agent": "background:#eef3fb;margin-right:18%",
    "user": "background:#f1f8ee;margin-left:18%",
}
_SLOW_WAIT_S = 2.0  # a caller's wait past this is marked


def _s(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f} s"


def _clock(seconds: float) -> str:
    if math.isnan(seconds):
        return ""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _analysis(event: Mapping[str, Any], row: pd.Series | None) -> str:
    """Title, summary, outcome, evaluation results (with rationale) and data collected."""
    data = _mapping(event.get("data"))
    analysis = _mapping(data.get("analysis"))
    parts = []
    title = analysis.get("call_summary_title")
    outcome = analysis.get("call_successful")
    if title or outcome:
        parts.append(f"<b>{esc(title or '')}</b> · outcome: <b>{esc(outcome or 'unknown')}</b>")
    if analysis.get("transcript_summary"):
        parts.append(f"<div>{esc(analysis['transcript_summary'])}</div>")
    rows = []
    for key, item in _mapping(analysis.get("evaluation_criteria_results")).items():
        item = _mapping(item)
        rows.append(
            f"<tr><td>{esc(item.get('criteria_id') or key)}</td><td><b>{esc(item.get('result'))}</b></td>"
            f"<td>{esc(item.get('rationale') or '')}</td></tr>"
        )
    if rows:
        parts.append(
            "<table><tr><th>criterion</th><th>result</th><th>why</th></tr>" + "".join(rows) + "</table>"
        )
    collected = [
        f"<tr><td>{esc(_mapping(item).get('data_collection_id') or key)}</td>"
        f"<td>{esc(_mapping(item).get('value'))}</td></tr>"
        for key, item in _mapping(analysis.get("data_collection_results")).items()
    ]
    if collected:
        parts.append(
            "<table><tr><th>data collected</th><th>value</th></tr>" + "".join(collected) + "</table>"
        )
    return "".join(parts)


def _facts(derived: Derived, row: pd.Series | None) -> str:
    c = derived.conversation
    facts = [
        ("agent", c.agent_name or c.agent_id),
        ("status", c.status),
        ("duration", _s(c.duration_s)),
        ("cost", None if math.isnan(c.cost) else f"{c.cost:,.0f} credits"),
        ("ended", c.termination_reason),
        ("phone", " ".join(x for x in (c.direction, c.phone_type, c.call_sid) if x) or None),
        ("error", c.error),
        ("never started", c.failure_reason),
        ("caller waits (median)", _s(c.wait_p50_s)),
        ("tool calls", f"{c.tool_calls} ({c.tool_errors} errors)" if c.tool_calls else None),
    ]
    if row is not None and isinstance(row.get("formats"), str):
        facts.append(("formats", row["formats"]))
    shown = " · ".join(f"{name}: <b>{esc(value)}</b>" for name, value in facts if value not in (None, ""))
    return f"<div>{shown}</div>"


def _tool(call: ToolCall) -> str:
    error = call.is_error is True
    style = "border-left:3px solid " + ("#c0392b" if error else "#7f8c8d")
    where = f" {esc(call.method)} {esc(call.url)}" if call.method or call.url else ""
    result = call.result or ""
    return (
        f"<div style='{style};padding:2px 6px;margin:3px 0;font-size:90%'>"
        f"🔧 <b>{esc(call.tool_name)}</b> ({esc(call.tool_type or 'type unknown')}){where}"
        f" · {_s(call.latency_s) or 'no latency'}{' · <b>error</b>' if error else ''}"
        f"<br><code>{esc(call.parameters or '')}</code> → <code>{esc(result[:300])}</code></div>"
    )


def _turn(turn: Turn, calls: list[ToolCall]) -> str:
    role = turn.role or "?"
    bubble = _BUBBLE.get(role, "background:#f4f4f4")
    stages = " · ".join(f"{SHORT.get(k, k)} {v:.2f}" for k, v in turn.metrics.items())
    wait = ""
    if not math.isnan(turn.wait_s):
        slow = "color:#c0392b;font-weight:bold" if turn.wait_s > _SLOW_WAIT_S else ""
        wait = f"<span style='{slow}'>caller waited {turn.wait_s:.2f} s</span>"
    meta = " · ".join(x for x in (wait, stages, "interrupted" if turn.interrupted else "") if x)
    message = esc(turn.message) if turn.message is not None else "<i>(no text)</i>"
    return (
        f"<div style='{bubble};padding:4px 8px;margin:4px 0;border-radius:6px'>"
        f"<small>{esc(role)} · {_clock(turn.time_in_call_secs)}</small><br>{message}"
        + (f"<br><small style='color:#555'>{meta}</small>" if meta else "")
        + "".join(_tool(c) for c in calls)
        + "</div>"
    )


def conversation_view(
    event: Mapping[str, Any], row: pd.Series | None = None, event_id: int | None = None
) -> str:
    """A post-call event (either transcript format) as the analysis, the facts and the chat."""
    derived = derive(event)
    if derived is None:
        return "<i>not a conversation</i>"
    by_turn: dict[int, list[ToolCall]] = {}
    for call in derived.tool_calls:
        by_turn.setdefault(call.turn, []).append(call)
    chat = "".join(_turn(t, by_turn.get(t.turn, [])) for t in derived.turns)
    head = f"<b>conversation {esc(derived.conversation.conversation_id)}</b>"
    if event_id is not None:
        head += f" (event #{event_id})"
    return (
        f"{head}{_facts(derived, row)}{_analysis(event, row)}"
        f"<div style='max-height:480px;overflow:auto;margin-top:6px'>{chat or '<i>no turns</i>'}</div>"
        f"<details><summary>the body as JSON</summary>"
        f"<div style='max-height:400px;overflow:auto'>{json_view(dict(event))}</div></details>"
    )


def conversation_detail(
    conversations: pd.DataFrame, conversation_id: str, payload: Callable[[int], dict[str, Any]]
) -> str:
    """The view of a conversation in ``rx.conversations`` (its body read from the store)."""
    if conversation_id not in conversations.index:
        return "<i>no such conversation</i>"
    row = conversations.loc[conversation_id]
    event_id = int(row["event_id"])
    try:
        event = payload(event_id)
    except (KeyError, ValueError) as exc:
        return f"<i>cannot load event {event_id}: {esc(exc)}</i>"
    return conversation_view(event, row, event_id)


class CallView:
    """One conversation in a notebook: shows as the conversation view; ``row``, ``turns`` and
    ``tool_calls`` are its rows of the three frames (see :meth:`elwh_nb.Receiver.conversation`)."""

    def __init__(self, store: Any, conversation_id: str) -> None:
        conversations = store.conversations
        if conversation_id not in conversations.index:
            raise KeyError(f"no conversation {conversation_id!r} in rx.conversations")
        self._store = store
        self.conversation_id = conversation_id
        self.row: pd.Series = conversations.loc[conversation_id]
        turns, calls = store.turns, store.tool_calls
        self.turns: pd.DataFrame = turns[turns["conversation_id"] == conversation_id]
        self.tool_calls: pd.DataFrame = calls[calls["conversation_id"] == conversation_id]

    def _repr_html_(self) -> str:
        return conversation_detail(self._store.conversations, self.conversation_id, self._store.payload)

    def __repr__(self) -> str:
        return f"<conversation {self.conversation_id}: {self.row['status']}, {self.row['turns']} turns>"
