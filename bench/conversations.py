"""Turns, tool calls and conversations: the kit next to the obvious pandas code, on the same bodies.

The pandas side is what a user writes today: ``json.loads`` of each body, ``json_normalize``
of its transcript, of its turns' tool calls and of its ``data``, then ``pd.concat``; it
is built again for every read. The kit derives the rows once, as each body is stored
(timed as the ingest with derivation less the same ingest without), and a read is a
snapshot. Both sides are checked to find the same turns, tool calls and conversations, and
the same sum of one stage metric. Every body is distinct (checked), so the ingest path is
measured, not the duplicate path.

    python -m bench.conversations                   # 20,000 calls; reads at 10,000 and 1,000,000 turns
    python -m bench.conversations --quick           # 2,000 calls; reads at 10,000 and 100,000 turns
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import pandas as pd

import elwh_nb
from elwh_nb import EventStore
from elwh_nb._core import derived

TURNS = 20  # per call, as the issue's workload says
METRIC = "convai_llm_service_ttfb"


def bodies(n: int, seed: int) -> list[bytes]:
    factory = elwh_nb.payloads(seed, now=time.time())
    out = [json.dumps(factory.post_call_transcription(turns=TURNS, failed=False)).encode() for _ in range(n)]
    assert len(set(out)) == n, "bodies repeat: the duplicate path would be measured"
    return out


def pandas_frames(raw: list[bytes]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The obvious code: parse each body, normalise its parts, concatenate."""
    turns, calls, conversations = [], [], []
    for body in raw:
        data = json.loads(body)["data"]
        t = pd.json_normalize(data["transcript"])
        t["conversation_id"] = data["conversation_id"]
        turns.append(t)
        made = [c for turn in data["transcript"] for c in turn["tool_calls"]]
        if made:
            calls.append(pd.json_normalize(made))
        conversations.append(pd.json_normalize({k: v for k, v in data.items() if k != "transcript"}))
    return pd.concat(turns), pd.concat(calls), pd.concat(conversations)


def ingest(raw: list[bytes], path: Path, derive: bool) -> float:
    """Seconds to store ``raw`` in batches of 500 (with or without deriving rows)."""
    wants = derived.DerivedTables.__dict__["wants"]  # the staticmethod itself
    if not derive:
        derived.DerivedTables.wants = staticmethod(lambda record: False)  # type: ignore[method-assign]
    try:
        with EventStore(path) as store:
            t0 = time.perf_counter()
            for i in range(0, len(raw), 500):
                store.append_many(raw[i : i + 500])
            return time.perf_counter() - t0
    finally:
        derived.DerivedTables.wants = wants  # type: ignore[method-assign]


def build(n: int, repeats: int) -> list[str]:
    raw = bodies(n, 1)
    kit, reads, reference = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            plain = ingest(raw, Path(tmp) / f"plain{r}.sqlite", derive=False)
            full = ingest(raw, Path(tmp) / f"full{r}.sqlite", derive=True)
            kit.append(full - plain)
            with EventStore(Path(tmp) / f"full{r}.sqlite") as store:
                store.turns  # noqa: B018  (memory loads once; what a receiver has from the start)
                t0 = time.perf_counter()
                ours = (store.turns, store.tool_calls, store.conversations)
                reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs = pandas_frames(raw)
            reference.append(time.perf_counter() - t0)
    assert len(ours[0]) == len(theirs[0]) == n * TURNS
    assert len(ours[1]) == len(theirs[1]) and len(ours[2]) == len(theirs[2]) == n
    column = f"conversation_turn_metrics.metrics.{METRIC}.elapsed_time"
    assert abs(ours[0][METRIC].sum() - theirs[0][column].sum()) < 1e-6 * len(ours[0])
    ratio = [p / k for p, k in zip(reference, kit, strict=True)]
    read_ratio = [p / r for p, r in zip(reference, reads, strict=True)]
    RESULTS["derive_ratio"] = statistics.median(ratio)
    return [
        f"{n:,} calls of {TURNS} turns ({n * TURNS:,} turns, {len(ours[1]):,} tool calls), {repeats} runs, median (range):",
        "",
        "| | seconds | pandas / kit |",
        "|---|---|---|",
        f"| pandas: json.loads + json_normalize + concat | {_spread(reference)} | |",
        f"| kit: deriving at ingest (ingest with rows less without) | {_spread(kit)} | {_spread(ratio, '.1f')}x |",
        f"| kit: reading the three frames | {_spread(reads, '.6f')} | {_spread(read_ratio, ',.0f')}x |",
    ]


def _spread(values: list[float], fmt: str = ".2f") -> str:
    mid = statistics.median(values)
    return f"{mid:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


RESULTS: dict[str, float] = {}  # figures the targets read: last run's


def _store_of(path: Path, calls: int) -> None:
    """A store of ``calls`` distinct calls, its frames loaded once (so a copy is kept at closing)."""
    factory = elwh_nb.payloads(7, now=time.time())
    with EventStore(path) as store:
        for i in range(0, calls, 1000):
            batch = [
                factory.post_call_transcription(turns=TURNS, failed=False)
                for _ in range(min(1000, calls - i))
            ]
            store.append_many([factory.body(e) for e in batch])
        assert len(store.turns) == calls * TURNS


def read_after_one(sizes: list[int], repeats: int) -> list[str]:
    """Per number of stored turns: append one new call and read rx.turns; reopen to the first
    read of turns; memory the turn frames keep per turn."""
    rows = []
    factory = elwh_nb.payloads(8, now=time.time())
    with tempfile.TemporaryDirectory() as tmp:
        for turns in sizes:
            calls = turns // TURNS
            path = Path(tmp) / f"s{turns}.sqlite"
            _store_of(path, calls)
            gc.collect()
            t0 = time.perf_counter()
            store = EventStore(path)
            first = store.turns
            reopen = time.perf_counter() - t0
            assert len(first) == calls * TURNS
            times = []
            for _ in range(repeats):
                body = factory.body(factory.post_call_transcription(turns=TURNS, failed=False))
                t0 = time.perf_counter()
                store.append(body)
                got = store.turns
                times.append((time.perf_counter() - t0) * 1000)
            assert len(got) == (calls + repeats) * TURNS
            store.close()
            # Memory: the three frames' columns as loaded into a reopened store (events not counted).
            store = EventStore(path)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            kept = store.turns, store.tool_calls, store.conversations
            per_turn = (tracemalloc.get_traced_memory()[0] - before) / len(kept[0])
            tracemalloc.stop()
            store.close()
            RESULTS[f"read_ms:{turns}"] = statistics.median(times)
            RESULTS[f"reopen_s:{turns}"] = reopen
            rows.append(f"| {turns:,} | {_spread(times, '.2f')} ms | {reopen:.2f} s | {per_turn:,.0f} B |")
    return [
        f"Median of {repeats} appends (range); the append's commit is timed too.",
        "",
        "| stored turns | append one call, then read rx.turns | reopen, to the first rx.turns | memory per turn (the three frames) |",
        "|---|---|---|---|",
        *rows,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n, sizes, repeats = (2_000, [10_000, 100_000], 3) if args.quick else (20_000, [10_000, 1_000_000], 3)
    print("\n".join(build(n, repeats)), flush=True)
    print()
    print("\n".join(read_after_one(sizes, 5)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
