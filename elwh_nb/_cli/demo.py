"""The headless main job: a real receiver, a realistic burst over real HTTP, then a summary.

It starts a receiver on the embedded default store, plays ElevenLabs with the kit's own
sender (a mixed burst with the faults people meet in practice), and prints the events
table, the failures by reason with their explanations, and a short timing summary.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .._core.store import EventStore
from .._notebook.latency import latency, tool_summary
from .._notebook.timings import timings
from .._server.receiver import start
from .._server.sender import burst, send

FAULT_MIX = {
    "wrong_secret": 2,
    "expired": 2,
    "tampered": 2,
    "reserialised": 2,
    "malformed_header": 1,
    "oversized": 1,
    "duplicate": 4,
}
DEMO_MAX_BODY = 16 * 1024 * 1024


def _ms(series: pd.Series, q: float) -> str:
    return f"{series.quantile(q):,.1f}" if len(series.dropna()) else "-"


def run(
    events: int = 200,
    *,
    store: str | Path | None = None,
    seed: int | None = None,
    out: Callable[[str], Any] = print,
) -> EventStore:
    """Receive ``events`` realistic deliveries plus faults over HTTP; print what happened."""
    secret = "wsec_test_" + secrets.token_hex(32)  # fake, made for this run, never shown
    db = EventStore(store)
    before = db.counts
    with start(secret, store=db, max_body=DEMO_MAX_BODY) as rx:
        out(f"receiver listening on {rx.local_url}, storing in {db.path or 'memory'}")
        t0 = time.perf_counter()
        # ``events`` clean deliveries (a duplicate's first copy counts as one) plus the faults.
        total = events + sum(n for name, n in FAULT_MIX.items() if name != "duplicate")
        made, jobs = burst(total, seed=seed)
        for job_id, (kind, submitted) in jobs.items():  # as whoever converted them would
            rx.expect(job_id, submitted_at=submitted, kind=kind)
        sent = send(
            rx.local_url, secret, made, faults=FAULT_MIX, seed=seed, max_body=DEMO_MAX_BODY, progress=False
        )
        elapsed = time.perf_counter() - t0
        frame = rx.events
        failures = rx.failures

    after = db.counts
    new_events = after["events"] - before["events"]
    out(
        f"sent {len(sent)} deliveries over HTTP in {elapsed:.2f} s ({len(sent) / elapsed:,.0f}/s); "
        f"answers: {', '.join(f'{k} x{v}' for k, v in sent.status.value_counts().sort_index().items())}"
    )
    out(f"every answer as expected: {bool(sent.ok.all())}")
    out(
        f"store now holds {after['events']} events ({new_events} new, "
        f"{after['duplicates'] - before['duplicates']} repeat deliveries folded in) and "
        f"{after['failures']} rejected deliveries"
    )
    recent = frame.tail(new_events)
    with pd.option_context("display.width", 150, "display.max_columns", 12, "display.max_colwidth", 30):
        out("\nLatest events (rx.events in a notebook):")
        cols = ["event_type", "event_timestamp", "conversation_id", "request_id", "status", "duration_s"]
        out(recent[cols].tail(8).to_string())
        out("\nEvents by type:")
        out(recent["event_type"].value_counts().to_string())
        out("\nRejected deliveries by reason (rx.failures):")
        new_failures = failures.tail(after["failures"] - before["failures"])
        out(
            new_failures.groupby("reason", observed=True)
            .status.agg(["count", "first"])
            .rename(columns={"first": "status"})
            .to_string()
        )
        out("\nWhat each kind of failure says:")
        for _, row in new_failures.drop_duplicates("reason").iterrows():
            out(f"  {row.status} {row.reason}: {row.explanation}")
        out(
            "\nConversion turnaround, submitted to callback"
            " (rx.jobs; timings(rx.events, by=['job', 'outcome'])):"
        )
        turnaround = timings(recent, by=["job", "outcome"]).query("measure == 'turnaround_s'")
        out(turnaround.drop(columns="measure").to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
        out("\nTimings:")
        answered = sent[sent.status == 200]
        p50, p99 = _ms(answered.latency_ms, 0.5), _ms(answered.latency_ms, 0.99)
        out(f"  round trip of an accepted delivery: p50 {p50} ms, p99 {p99} ms")
        lag = recent.delivery_lag_s
        out(
            f"  event_timestamp to stored (delivery lag): p50 {lag.median():.1f} s, p99 "
            f"{lag.quantile(0.99):.1f} s (event_timestamp is whole seconds)"
        )
        calls = recent[recent.duration_s.notna()]
        if len(calls):
            out(
                f"  call durations ({len(calls)} calls): p50 {calls.duration_s.median():.0f} s, "
                f"p90 {calls.duration_s.quantile(0.9):.0f} s, max {calls.duration_s.max():.0f} s"
            )
        _inside_the_calls(db, out)
    return db


def _inside_the_calls(db: EventStore, out: Callable[[str], Any]) -> None:
    """Where callers wait, tool errors and outcomes, from the store's derived frames."""
    conversations = db.conversations
    if not len(conversations):
        return
    outcomes = conversations.call_successful.fillna("not rated").value_counts()
    out(
        f"\nInside the calls ({len(conversations)} conversations, {len(db.turns)} turns in the store; "
        f"rx.conversations, rx.turns): {', '.join(f'{k} x{v}' for k, v in outcomes.items())}"
    )
    table = latency(db)
    waits = table[table.stage == "wait_s"].drop(columns="stage")
    if len(waits):
        out("Where callers wait, end of their turn to the agent's first audio, s (elwh_nb.latency(rx)):")
        out(waits.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    tools = tool_summary(db)
    if len(tools):
        out("Tool calls (elwh_nb.tool_summary(rx)):")
        out(tools.to_string(float_format=lambda v: f"{v:.2f}"))
