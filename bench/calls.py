"""Agent-tool call latency through a real Jupyter server's public route: the kit next to a bare handler.

Both answer the same trivial tool (``GET .../tools/echo?word=...`` -> ``{"word": ...}``)
behind the same public route of the same Jupyter server: the kit's receiver (secret header,
parameters read and typed, the function on a thread of its own, the call recorded in the
store before the answer) and a bare Tornado handler registered as that route's receiver.
Calls go one at a time, as a conversation makes them; runs alternate. Every answer is
checked, and the kit's store must hold every call afterwards.

    python -m bench.calls                 # 3 runs of 300 calls each way
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

WARMUP = 20


def _calls(url: str, n: int, headers: dict[str, str]) -> list[float]:
    """``n`` sequential calls (after a warm-up); their latencies in ms, each answer checked."""
    times = []
    with httpx.Client(timeout=30) as client:
        for i in range(WARMUP + n):
            word = f"w{i}"
            t0 = time.perf_counter()
            answer = client.get(url, params={"word": word}, headers=headers)
            elapsed = (time.perf_counter() - t0) * 1000
            assert answer.status_code == 200 and answer.json() == {"word": word}, answer.text
            if i >= WARMUP:
                times.append(elapsed)
    return times


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(tmp: Path, runs: int, n: int, server: Any, pin: Any = None) -> dict[str, list[list[float]]]:
    """Alternate ``runs`` rounds of ``n`` calls to each; ``server`` is bench.ingest.server."""
    from elwh_nb import EventStore
    from testkit.jupyter import jupyter_server

    from .servers import CALL_SECRET

    results: dict[str, list[list[float]]] = {"bare": [], "kit": []}
    with jupyter_server(tmp / "jupyter-calls") as js:
        if pin is not None:
            pin(js.proc.pid)
        env = js.env()
        for rep in range(runs):
            with server("bare-tool", env=env) as bare:
                url = f"{js.origin}/jbase/elwh/hook/{bare['route_id']}/tools/echo"
                results["bare"].append(_calls(url, n, {}))
            store = tmp / f"calls-{rep}.sqlite"
            with server("kit", store=store, env=env, extra=["--tool"]) as kit:
                assert "/elwh/hook/" in kit["url"], kit["url"]
                results["kit"].append(
                    _calls(kit["url"] + "/tools/echo", n, {"X-Callback-Secret": CALL_SECRET})
                )
            with EventStore(store, readonly=True) as kept:
                calls = kept.calls
                assert len(calls) == WARMUP + n and (calls.status == 200).all(), (
                    "a call is missing from the store"
                )
            print(
                f"tool calls (run {rep + 1}): bare p50 {statistics.median(results['bare'][-1]):.2f} ms, "
                f"kit p50 {statistics.median(results['kit'][-1]):.2f} ms",
                flush=True,
            )
    return results


def table(results: dict[str, list[list[float]]], n: int) -> list[str]:
    def spread(values: list[float]) -> str:
        mid = statistics.median(values)
        return f"{mid:.2f}" if len(values) == 1 else f"{mid:.2f} ({min(values):.2f}–{max(values):.2f})"

    runs = len(results["kit"])
    lines = [
        f"One call at a time through the public route of a real Jupyter server, {n} calls per run after {WARMUP} "
        f"to warm up, {runs} runs of each, alternating (median and range of the runs' figures). Every answer was "
        "checked, and the kit's store held every call afterwards.",
        "",
        "| tool behind the public route | p50 ms | p90 ms | p99 ms | p50 ratio to the bare handler |",
        "|---|---|---|---|---|",
    ]
    labels = {"bare": "bare Tornado handler (no secret, no thread, no log)", "kit": "the kit: `@rx.tool`"}
    for key, label in labels.items():
        ratios = [
            statistics.median(k) / statistics.median(b)
            for k, b in zip(results[key], results["bare"], strict=True)
        ]
        lines.append(
            f"| {label} | {spread([statistics.median(r) for r in results[key]])} "
            f"| {spread([_q(r, 0.9) for r in results[key]])} | {spread([_q(r, 0.99) for r in results[key]])} "
            f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    from .ingest import server

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    print(f"command: python -m bench.calls --runs {args.runs} --calls {args.calls}\n")
    with tempfile.TemporaryDirectory() as tmpdir:
        results = measure(Path(tmpdir), args.runs, args.calls, server)
    print("\n".join(table(results, args.calls)))


if __name__ == "__main__":
    main()
