"""The headless demo: realistic deliveries, signed, verified and stored, then summarised.

It goes through the same core a receiver uses (sign, verify, explain, store), so it shows
what the kit keeps and how failures read, without a network or an ElevenLabs account.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ._exceptions import SignatureError
from ._explain import explain
from ._payloads import PayloadFactory
from ._signature import sign, verify
from ._store import EventStore

_STATUS = {"malformed_header": 400, "invalid_json": 400}


def _faults(factory: PayloadFactory, secret: str, now: float) -> list[tuple[str, bytes, str | None]]:
    """Deliveries that must be rejected, each with what went wrong."""
    good = factory.body(factory.post_call_transcription(at=now - 5))
    tampered = good.replace(b'"status":"done"', b'"status":"failed"')
    reserialised = json.dumps(json.loads(good)).encode()  # what request.json round-trips to
    other = "wsec_test_" + secrets.token_hex(16)
    return [
        ("tampered body", tampered, sign(good, secret, now)),
        ("re-serialised JSON", reserialised, sign(good, secret, now)),
        ("wrong secret", good, sign(good, other, now)),
        ("signed an hour ago", good, sign(good, secret, now - 3600)),
        ("no signature header", good, None),
        ("not JSON", b"hello", sign(b"hello", secret, now)),
    ]


def run(
    events: int = 200,
    *,
    store: str | Path | None = None,
    seed: int | None = None,
    audio_bytes: int = 64_000,
    out: Callable[[str], Any] = print,
) -> EventStore:
    """Sign, verify and store ``events`` realistic deliveries plus a few bad ones; print a summary."""
    secret = "wsec_test_" + secrets.token_hex(32)  # fake, made for this run, never shown
    factory = PayloadFactory(seed if seed is not None else secrets.randbits(32))
    db = EventStore(store)
    now = time.time()
    t0 = time.perf_counter()
    accepted = duplicates = 0
    batch = factory.batch(events, span_s=1200, end=now - 2, audio_bytes=audio_bytes)
    for i, event in enumerate(batch):
        body = factory.body(event)
        result = db.append(body, verify(body, sign(body, secret), secret))
        accepted += 1
        if i % 25 == 0:  # ElevenLabs retries: the same body again is a duplicate, not a new row
            db.append(body, verify(body, sign(body, secret), secret))
            duplicates += 1
        assert not result.duplicate or i > 0
    for label, body, header in _faults(factory, secret, now):
        try:
            verify(body, header, secret)
        except SignatureError as exc:
            diagnosis = explain(body, header, secret)
            db.add_failure(
                exc.reason,
                status=_STATUS.get(exc.reason, 401),
                explanation=diagnosis.summary,
                headers={"Content-Type": "application/json"}
                | ({"ElevenLabs-Signature": header} if header else {}),
                body=body,
                remote="demo",
                path=f"/demo ({label})",
            )
    elapsed = time.perf_counter() - t0

    frame = db.events
    counts = db.counts
    out(f"elwh-nb demo: {accepted} deliveries signed, verified and stored in {elapsed:.2f} s")
    out(f"store: {db.path or 'in memory'}")
    out(
        f"  {counts['events']} events in the store ({counts['duplicates']} repeat deliveries "
        f"folded into their first), {counts['failures']} rejected deliveries"
    )
    out("\nLatest events (rx.events in a notebook):")
    cols = ["event_type", "event_timestamp", "conversation_id", "request_id", "status", "duration_s"]
    with pd.option_context("display.width", 140, "display.max_columns", 10, "display.max_colwidth", 32):
        out(frame[cols].tail(8).to_string())
        out("\nEvents by type:")
        out(frame["event_type"].value_counts().to_string())
        calls = frame[frame["duration_s"].notna()]
        if len(calls):
            out("\nCall duration (s) by type:")
            out(
                calls.groupby("event_type", observed=True)["duration_s"]
                .describe()[["count", "50%", "max"]]
                .to_string()
            )
        out("\nRejected deliveries (rx.failures), with the plain-words explanation:")
        for row in db.failures.tail(6).itertuples():
            out(f"  {row.status} {row.reason:<20} {row.path}\n      {row.explanation}")
    return db
