"""How long things take: conversion and job turnaround, delivery lag, call duration, post-call processing.

:func:`timings` gives a tidy table (one row per event type and measure) that can be
grouped further; the ``plot_*`` helpers return matplotlib figures without showing them,
as pandas and matplotlib conventions go (a notebook displays a returned figure as a
picture, even in a fresh kernel where pyplot was never imported).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._core.jobs import JOB_KINDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The measures :func:`timings` reports, in seconds.
MEASURES: dict[str, str] = {
    "delivery_lag_s": "received minus event_timestamp",
    "duration_s": "call duration",
    "processing_s": "event time minus (call start + duration): post-call analysis",
    "turnaround_s": "callback received minus job submitted (rx.expect, or webhook_metadata's submitted_at)",
    "latency_s": "a tool's or call start's answer: request in to answer out (rx.calls)",
}
QUANTILES = (0.5, 0.9, 0.99)


def with_measures(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` plus ``processing_s`` (and ``turnaround_s`` if missing), and for grouping:
    ``job``, the kind of job an event reports on (``project``, ``chapter`` for Studio's
    conversions, ``speech-to-text``, ...) and ``outcome`` (a conversion's status, else the
    event's ``status``)."""
    out = events.copy(deep=False)
    if "event_type" in out.columns:
        out["job"] = out["event_type"].astype(object).map(JOB_KINDS)
        outcome = out["conversion_status"] if "conversion_status" in out.columns else None
        status = out["status"].astype(object) if "status" in out.columns else None
        if outcome is not None and status is not None:
            out["outcome"] = outcome.astype(object).where(outcome.notna(), status)
        elif outcome is not None or status is not None:
            out["outcome"] = outcome if outcome is not None else status
        if "outcome" in out.columns:  # a job's outcome is known once it came back: "arrived" at least
            out["outcome"] = out["outcome"].where(out["outcome"].notna() | out["job"].isna(), "arrived")
    if {"event_timestamp", "call_started_at", "duration_s"} <= set(out.columns):
        ended = out["call_started_at"] + pd.to_timedelta(out["duration_s"], unit="s")
        out["processing_s"] = (out["event_timestamp"] - ended).dt.total_seconds()
    if "turnaround_s" not in out.columns:
        out["turnaround_s"] = np.nan
    return out


def timings(events: pd.DataFrame, *, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Per event type (or ``by``) and measure: count, p50, p90, p99 and max, in seconds.

    Tidy: one row per group and measure, so ``.query("measure == 'duration_s'")`` or a
    further ``groupby`` works. Measures without data for a group are left out.
    ``by=["job", "outcome"]`` gives conversion turnaround by kind (Studio project, chapter,
    speech-to-text) and outcome (``success``, ``error``). Given ``rx.calls``, it reports
    each tool's (and the call start's) answer latency, by ``name``.
    """
    frame = with_measures(events)
    if by is None:
        by = "event_type" if "event_type" in frame.columns or "name" not in frame.columns else "name"
    keys = [by] if isinstance(by, str) else list(by)
    measures = [m for m in MEASURES if m in frame.columns]
    long = (
        frame[keys + measures]
        .melt(id_vars=keys, var_name="measure", value_name="seconds")
        .dropna(subset=["seconds"])
    )
    if long.empty:
        return pd.DataFrame(columns=[*keys, "measure", "count", "p50", "p90", "p99", "max"])
    grouped = long.groupby([*keys, "measure"], observed=True)["seconds"]
    table = grouped.quantile(list(QUANTILES)).unstack()
    table.columns = [f"p{round(q * 100)}" for q in QUANTILES]
    table.insert(0, "count", grouped.size())
    table["max"] = grouped.max()
    table = table.reset_index()
    table["measure"] = pd.Categorical(table["measure"], categories=list(MEASURES), ordered=True)
    return table.sort_values([*keys, "measure"], ignore_index=True)


def _figure(width: float = 7.0, height: float = 3.5) -> Figure:
    from .figure import Figure  # matplotlib is imported only when a plot is asked for

    return Figure(figsize=(width, height), layout="constrained")


def _by_type(
    events: pd.DataFrame, column: str, by: Sequence[str] = ("event_type",)
) -> list[tuple[str, np.ndarray]]:
    frame = with_measures(events)
    if column not in frame.columns or not set(by) <= set(frame.columns):
        return []
    groups = frame.dropna(subset=[column]).groupby(list(by), observed=True)[column]
    return [
        (" · ".join(map(str, name if isinstance(name, tuple) else (name,))), values.to_numpy(dtype=float))
        for name, values in groups
        if len(values)
    ]


def _distribution(
    events: pd.DataFrame, column: str, title: str, by: Sequence[str] = ("event_type",)
) -> Figure:
    fig = _figure()
    ax = fig.subplots()
    data = _by_type(events, column, by)
    if data:
        from .figure import colour

        boxes = ax.boxplot(
            [v for _, v in data],
            orientation="horizontal",
            tick_labels=[n for n, _ in data],
            patch_artist=True,
        )
        if tuple(by) == ("event_type",):  # each type its colour, as in every plot
            for box, (name, _) in zip(boxes["boxes"], data, strict=True):
                box.set_facecolor(colour(name))
                box.set_alpha(0.8)
        ax.set_xlabel("seconds")
    else:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    return fig


def plot_turnaround(events: pd.DataFrame) -> Figure:
    """Distribution of job turnaround (submitted to callback received) by kind of job and outcome."""
    return _distribution(events, "turnaround_s", "Turnaround by job and outcome", ("job", "outcome"))


def plot_delivery_lag(events: pd.DataFrame) -> Figure:
    """Distribution of delivery lag (received minus event_timestamp) by event type."""
    return _distribution(events, "delivery_lag_s", "Delivery lag by event type")


def plot_durations(events: pd.DataFrame) -> Figure:
    """Distribution of call durations by event type (calls only)."""
    return _distribution(events, "duration_s", "Call duration by event type")


def plot_processing(events: pd.DataFrame) -> Figure:
    """Distribution of post-call processing time (call end to webhook) by event type."""
    return _distribution(events, "processing_s", "Post-call processing by event type")


def events_per_interval(
    events: pd.DataFrame, freq: str = "1min", column: str = "received_at"
) -> pd.DataFrame:
    """Events per ``freq`` interval and event type, every interval from the first to the last
    (an idle one is a row of zeros: a plot that skipped it would draw a slope across it)."""
    counts = (
        events.groupby([pd.Grouper(key=column, freq=freq), "event_type"], observed=True)
        .size()
        .unstack(fill_value=0)
    )
    return counts.resample(freq).sum() if len(counts) else counts


def plot_events_over_time(events: pd.DataFrame, freq: str = "1min", *, column: str = "received_at") -> Figure:
    """Events per ``freq`` interval, stacked by event type (each type its colour in every plot)."""
    from .figure import colour

    fig = _figure()
    ax = fig.subplots()
    if len(events):
        counts = events_per_interval(events, freq, column)
        colours: list[Any] = [colour(t) for t in counts.columns]
        if len(counts) > 1:
            counts.plot.area(ax=ax, linewidth=0, color=colours)
        else:  # one interval: an area needs two points
            counts.plot.bar(ax=ax, stacked=True, rot=0, color=colours)
        ax.set_ylabel(f"events per {freq}")
        ax.set_xlabel(f"{column.removesuffix('_at')} (UTC)")
        # Beside the plot, not over a third of it.
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        ax.text(0.5, 0.5, "no events yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Events over time")
    return fig


def plot_failures(failures: pd.DataFrame) -> Figure:
    """Rejected deliveries by reason."""
    fig = _figure()
    ax = fig.subplots()
    if len(failures):
        failures["reason"].value_counts().sort_values().plot.barh(ax=ax)
        ax.set_xlabel("deliveries")
    else:
        ax.text(0.5, 0.5, "no failures", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Failures by reason")
    return fig
