"""How long callers wait, at which stage, and whether it is getting worse: :func:`latency` and its plots.

Everything here reads the frames the store derives (``rx.turns``, ``rx.tool_calls``,
``rx.conversations``); give a receiver, a store, a hub connection, an events frame, or the
frame itself. Plots return matplotlib figures without showing them, as :mod:`.timings` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._core import analysis
from .._core.schema import STAGES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

QUANTILES = (0.5, 0.9, 0.99)
#: The caller's wait (see :func:`elwh_nb._core.derive.wait_s`), reported with the stages.
WAIT = "wait_s"
#: What each short stage name in the plots stands for.
SHORT = {
    "convai_asr_trailing_service_latency": "ASR trailing",
    "convai_llm_service_ttfb": "LLM first token",
    "convai_llm_service_ttf_sentence": "LLM first sentence",
    "convai_llm_service_tt_last_sentence": "LLM last sentence",
    "convai_llm_tool_request_generation_latency": "LLM tool request",
    "convai_tts_service_ttfb": "TTS first byte",
    WAIT: "caller waits",
}

# Markers of each frame, to tell a frame given as it is from an events frame.
_MARKS = {
    "turns": {"turn", "role", "wait_s"},
    "tool_calls": {"tool_name", "latency_s"},
    "conversations": {"turns", "formats"},
}


def _frame(source: Any, name: str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame) and _MARKS[name] <= set(source.columns):
        return source
    frame: pd.DataFrame = getattr(analysis, name)(source)
    return frame


def stage_columns(turns: pd.DataFrame) -> list[str]:
    """The stage metric columns of a turns frame: the known ones, then any new ``convai_*`` name."""
    known = [s for s in STAGES if s in turns.columns]
    return known + [c for c in turns.columns if c.startswith("convai_") and c not in known]


def _agents(source: Any, turns: pd.DataFrame) -> pd.Series:
    """Each row's agent: its name where a conversation gave one, else its id."""
    names: pd.Series = pd.Series(dtype=object)
    if not (isinstance(source, pd.DataFrame) and _MARKS["turns"] <= set(source.columns)):
        try:
            conversations = _frame(source, "conversations")
        except (TypeError, ValueError):
            conversations = None
        if conversations is not None and "agent_name" in conversations.columns:
            named = conversations.dropna(subset=["agent_name"])
            names = pd.Series(named["agent_name"].to_numpy(), index=named["agent_id"].to_numpy())
            names = names[~names.index.duplicated()]
    ids = turns["agent_id"].astype(object)
    return ids.map(names).where(lambda s: s.notna(), ids) if len(names) else ids


def with_keys(source: Any, frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``frame`` plus the grouping keys that are not its columns: ``agent`` (its name, else its
    id), ``day`` and ``hour`` (of ``said_at``, ``called_at`` or ``started_at``, UTC)."""
    out = frame.copy(deep=False)
    time = next((c for c in ("said_at", "called_at", "started_at") if c in out.columns), None)
    for key in keys:
        if key in out.columns:
            continue
        if key == "agent" and "agent_id" in out.columns:
            out["agent"] = _agents(source, out)
        elif key == "day" and time:
            out["day"] = out[time].dt.floor("D")
        elif key == "hour" and time:
            out["hour"] = out[time].dt.hour
        else:
            raise KeyError(f"cannot group by {key!r}: not a column, nor agent, day or hour")
    return out


def latency(
    source: Any, *, by: str | Sequence[str] | None = "agent", stages: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per-stage turn latency: count, p50, p90, p99 and max in seconds, by agent (or ``by``).

    One row per group and stage (tidy). The stages are the turns' ``conversation_turn_metrics``
    (``convai_llm_service_ttfb``, ..., and any new name), and ``wait_s``: how long the caller
    waits from the end of their speech to the agent's first audio, the sum of the stages that
    exist for that answer: the user turn's trailing transcription
    (``convai_asr_trailing_service_latency``), the agent turn's LLM first sentence (else its
    first token) and its TTS first byte. ``by``: columns of ``rx.turns`` (``agent_id``,
    ``conversation_id``, ``role``, ``turn``), or ``agent`` (its name), ``day``, ``hour``;
    None for one group. ``stages``: which to report (default all, then ``wait_s``).
    ``source``: a receiver, store, hub connection, events frame or ``rx.turns`` itself.
    """
    turns = _frame(source, "turns")
    keys = [] if by is None else [by] if isinstance(by, str) else list(by)
    chosen = list(stages) if stages is not None else [*stage_columns(turns), WAIT]
    frame = with_keys(source, turns, keys)[[*keys, *chosen]]
    columns = [*keys, "stage", "count", *(f"p{round(q * 100)}" for q in QUANTILES), "max"]
    long = frame.melt(id_vars=keys, var_name="stage", value_name="seconds").dropna(subset=["seconds"])
    if long.empty:
        return pd.DataFrame(columns=columns)
    grouped = long.groupby([*keys, "stage"], observed=True, sort=False)["seconds"]
    table = grouped.quantile(list(QUANTILES)).unstack()
    table.columns = [f"p{round(q * 100)}" for q in QUANTILES]
    table.insert(0, "count", grouped.size())
    table["max"] = grouped.max()
    table = table.reset_index()
    table["stage"] = pd.Categorical(table["stage"], categories=chosen, ordered=True)
    return table.sort_values([*keys, "stage"], ignore_index=True)[columns]


# -- plots ---------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 3.5, cols: int = 1) -> tuple[Figure, Any]:
    from .figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, cols) if cols > 1 else fig.subplots()


def _empty(ax: Any, title: str, what: str = "no calls yet") -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)


def plot_stage_latency(source: Any, *, by: str = "agent") -> Figure:
    """Distribution of each stage's latency and the caller's wait, by agent (or ``by``)."""
    turns = with_keys(source, _frame(source, "turns"), [by])
    chosen = [*stage_columns(turns), WAIT]
    boxes, labels = [], []
    for stage in chosen:
        for group, values in turns.groupby(by, observed=True, sort=True)[stage]:
            values = values.dropna()
            if len(values):
                boxes.append(values.to_numpy(dtype=float))
                labels.append(f"{SHORT.get(stage, stage)} · {group}")
    fig, ax = _figure(7.5, max(3.0, 0.28 * len(boxes) + 1))
    if not boxes:
        _empty(ax, "Turn latency by stage")
        return fig
    ax.boxplot(boxes[::-1], orientation="horizontal", tick_labels=labels[::-1], showfliers=False)
    ax.set_xlabel("seconds (whiskers: 1.5 IQR; outliers hidden)")
    ax.set_title(f"Turn latency by stage and {by}")
    return fig


def _lines(ax: Any, frame: pd.DataFrame, x: str, by: str, column: str, min_count: int = 3) -> bool:
    stats = frame.dropna(subset=[column]).groupby([by, x], observed=True)[column].agg(["median", "size"])
    stats = stats[stats["size"] >= min_count]
    if stats.empty:
        return False
    for group, rows in stats.groupby(level=0, observed=True):
        ax.plot(rows.index.get_level_values(1), rows["median"], marker=".", label=str(group))
    ax.legend(fontsize="small")
    return True


def plot_latency_by_hour(source: Any, *, stage: str = WAIT, by: str = "agent") -> Figure:
    """The median of a stage (default: the caller's wait) by hour of the day (UTC), per agent."""
    turns = with_keys(source, _frame(source, "turns"), [by, "hour"])
    fig, ax = _figure()
    title = f"{SHORT.get(stage, stage)} over the day (median)"
    if not _lines(ax, turns, "hour", by, stage):
        _empty(ax, title)
        return fig
    ax.set_xlabel("hour of the day (UTC)")
    ax.set_ylabel("seconds")
    ax.set_title(title)
    return fig


def plot_latency_in_call(source: Any, *, stage: str = "convai_llm_service_ttfb", by: str = "agent") -> Figure:
    """The median of a stage by turn number within the call, per agent: does it slow down as
    the conversation (the LLM's context) grows?"""
    turns = with_keys(source, _frame(source, "turns"), [by])
    fig, ax = _figure()
    title = f"{SHORT.get(stage, stage)} by turn in the call (median)"
    if stage not in turns.columns or not _lines(ax, turns, "turn", by, stage):
        _empty(ax, title)
        return fig
    ax.set_xlabel("turn")
    ax.set_ylabel("seconds")
    ax.set_title(title)
    return fig


def cost_per_minute(source: Any) -> pd.Series:
    """Each conversation's cost (credits) per minute of call; calls of no length left out."""
    c = _frame(source, "conversations")
    minutes = c["duration_s"] / 60
    return (c["cost"] / minutes).where(minutes > 0).dropna()


def plot_cost_per_minute(source: Any, *, by: str = "agent") -> Figure:
    """Distribution of cost per minute of call (credits), by agent (or ``by``)."""
    c = with_keys(source, _frame(source, "conversations"), [by])
    c = c.assign(cost_per_min=cost_per_minute(c).reindex(c.index))
    fig, ax = _figure()
    groups = [
        (str(g), v.dropna().to_numpy(dtype=float)) for g, v in c.groupby(by, observed=True)["cost_per_min"]
    ]
    groups = [(g, v) for g, v in groups if len(v)]
    if not groups:
        _empty(ax, "Cost per minute")
        return fig
    ax.boxplot([v for _, v in groups], orientation="horizontal", tick_labels=[g for g, _ in groups])
    ax.set_xlabel("credits per minute")
    ax.set_title(f"Cost per minute by {by}")
    return fig


def outcomes(source: Any) -> pd.Series:
    """Each conversation's outcome: ``call_successful`` (``success``, ``failure``, ``unknown``),
    else ``failed call`` (status failed), ``never started`` (a call initiation failure) or
    ``not analysed`` (an OpenTelemetry transcript, which carries no analysis)."""
    c = _frame(source, "conversations")
    status = c["status"].astype(object)
    out = c["call_successful"].astype(object)
    out = out.where(status != "failed", "failed call").where(status != "initiation_failed", "never started")
    return out.fillna("not analysed")


def plot_outcomes(source: Any, *, freq: str = "1h") -> Figure:
    """Calls per ``freq`` by outcome (see :func:`outcomes`), and why calls ended."""
    c = _frame(source, "conversations")
    fig, (left, right) = _figure(10, 3.5, cols=2)
    if c.empty:
        _empty(left, "Outcomes over time")
        _empty(right, "Why calls ended")
        return fig
    when = c["started_at"].where(c["started_at"].notna(), c["received_at"])
    counts = (
        pd.DataFrame({"when": when, "outcome": outcomes(c)})
        .groupby([pd.Grouper(key="when", freq=freq), "outcome"], observed=True)
        .size()
        .unstack(fill_value=0)
    )
    if len(counts) > 1:
        counts.plot.area(ax=left, linewidth=0)
    else:
        counts.plot.bar(ax=left, stacked=True, rot=0)
    left.set_xlabel("")
    left.set_ylabel(f"calls per {freq}")
    left.set_title("Outcomes over time")
    left.legend(fontsize="small", loc="upper left")
    reasons = c["termination_reason"].astype(object).replace("", np.nan)
    reasons = reasons.fillna(
        c["failure_reason"].astype(object).map(lambda r: f"never started: {r}", na_action="ignore")
    )
    reasons.fillna("(none given)").value_counts().head(10).sort_values().plot.barh(ax=right)
    right.set_xlabel("calls")
    right.set_ylabel("")
    right.set_title("Why calls ended")
    return fig


def tool_summary(source: Any) -> pd.DataFrame:
    """Per tool: calls, errors, error rate, latency p50 and p90 (seconds), and its type."""
    t = _frame(source, "tool_calls")
    columns = ["tool_type", "calls", "errors", "error_rate", "p50_s", "p90_s"]
    if t.empty:
        return pd.DataFrame(columns=columns)
    errors = t["is_error"].map(lambda v: v is True)
    grouped = t.assign(error=errors).groupby("tool_name", observed=True)
    out = pd.DataFrame(
        {
            "tool_type": grouped["tool_type"].agg(
                lambda s: s.dropna().mode().iloc[0] if s.notna().any() else None
            ),
            "calls": grouped.size(),
            "errors": grouped["error"].sum(),
        }
    )
    out["error_rate"] = out["errors"] / out["calls"]
    out["p50_s"] = grouped["latency_s"].median()
    out["p90_s"] = grouped["latency_s"].quantile(0.9)
    return out.sort_values("calls", ascending=False)[columns]


def plot_tool_calls(source: Any) -> Figure:
    """Each tool's latency distribution and its error rate."""
    t = _frame(source, "tool_calls")
    fig, (left, right) = _figure(10, 3.5, cols=2)
    summary = tool_summary(t)
    if summary.empty:
        _empty(left, "Tool latency", "no tool calls yet")
        _empty(right, "Tool errors", "no tool calls yet")
        return fig
    names = list(summary.index[::-1])
    data = [t.loc[t["tool_name"] == n, "latency_s"].dropna().to_numpy(dtype=float) for n in names]
    kept = [(n, d) for n, d in zip(names, data, strict=True) if len(d)]
    left.boxplot(
        [d for _, d in kept], orientation="horizontal", tick_labels=[n for n, _ in kept], showfliers=False
    )
    left.set_xlabel("seconds")
    left.set_title("Tool latency")
    (summary["error_rate"] * 100).iloc[::-1].plot.barh(ax=right)
    right.set_xlabel("% of calls with is_error")
    right.set_title("Tool errors")
    return fig
