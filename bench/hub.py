"""``connect()`` against the hub service: how long new rows take to reach a notebook, by store size.

A hub service (in this process, on loopback; no hub runs here, so only its token check is
stubbed) serves one webhook whose store already holds N events; a :class:`Connection` reads
it. Each round posts one new signed delivery and times the pull that brings it into
``conn.events`` (what a read does when its half-second is up), checking that the new row is
there. Sizes side by side show whether the cost follows the new rows or the stored ones.

    python -m bench.hub                      # 1,000 and 1,000,000 stored, 30 rounds each
    python -m bench.hub --sizes 1000 100000 --rounds 10
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.core import small_body
from bench.history import store_file
from bench.servers import SECRET
from elwh_nb import sign
from elwh_nb._core import colcache
from elwh_nb._server.hubapi import read_scope
from elwh_nb._server.hubclient import Connection
from elwh_nb._server.hubservice import HubService

TOKEN = "bench-reader-token"
PREFIX = "/services/elwh/"


class Readers:
    """Stands in for the hub's answer about a token: one reader with the webhook's scope."""

    async def scopes(self, token: str) -> tuple[str, set[str]] | None:
        return ("reader", {read_scope("calls")}) if token == TOKEN else None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(stored: int, rounds: int, tmp: Path) -> dict[str, float | list[float]]:
    """Connect to a webhook holding ``stored`` events, then time ``rounds`` pulls of one new event."""
    data_dir = tmp / f"hub-{stored}"
    data_dir.mkdir()
    source = store_file(stored)
    shutil.copy(source, data_dir / "calls.sqlite")
    if colcache.path_for(source).exists():
        shutil.copy(colcache.path_for(source), colcache.path_for(data_dir / "calls.sqlite"))
    t0 = time.perf_counter()
    service = HubService({"calls": SECRET}, data_dir=data_dir, prefix=PREFIX, readers=Readers())
    port = service.start("127.0.0.1", 0)
    started = time.perf_counter() - t0
    try:
        base = f"http://127.0.0.1:{port}{PREFIX}"
        hook = base + "hook/" + service.webhooks["calls"].route_id
        t0 = time.perf_counter()
        conn = Connection(base, TOKEN, "calls")
        connected = time.perf_counter() - t0
        assert len(conn.events) == stored, (len(conn.events), stored)
        pulls = []
        with httpx.Client() as client:
            for i in range(rounds):
                body = small_body(stored + 1_000_000 + i)  # never stored before: a new row, not a repeat
                answer = client.post(hook, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)})
                assert answer.status_code == 200 and answer.json()["duplicate"] is False, answer.text
                t0 = time.perf_counter()
                # The cell's pull, unless the reader's own thread brought the row first.
                conn.store.pull()
                pulls.append((time.perf_counter() - t0) * 1000)
                assert len(conn.events) == stored + i + 1
                assert conn.events.index[-1] == answer.json()["id"]
        conn.close()
    finally:
        service.stop()
    return {"started_s": started, "connected_s": connected, "pulls_ms": pulls}


def table(sizes: list[int], rounds: int) -> list[str]:
    """Markdown lines: connect and pull times at each size."""
    with tempfile.TemporaryDirectory() as tmpdir:
        results = {size: measure(size, rounds, Path(tmpdir)) for size in sizes}
    small = statistics.median(results[sizes[0]]["pulls_ms"])  # type: ignore[arg-type]
    lines = [
        f"The hub service and a `connect()`ed reader on loopback, in one process (the hub's token check stubbed). "
        f"Each of {rounds} rounds posts one new event, then times the pull that brings it into `conn.events` "
        "(or finds it there: the reader's own thread pulls too); every round was checked to end with "
        "exactly that event added.",
        "",
        "| events stored | service start | `connect()` (reads every row) | new row: p50 ms | p90 ms | max ms "
        f"| p50 vs {sizes[0]:,} stored |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, r in results.items():
        pulls: list[float] = r["pulls_ms"]  # type: ignore[assignment]
        p50 = statistics.median(pulls)
        lines.append(
            f"| {size:,} | {r['started_s']:.2f} s | {r['connected_s']:.2f} s | {p50:.1f} | "
            f"{_percentile(pulls, 0.9):.1f} | {max(pulls):.1f} | {p50 / small:.2f}x |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    print(f"command: python -m bench.hub --sizes {' '.join(map(str, args.sizes))} --rounds {args.rounds}\n")
    print("\n".join(table(args.sizes, args.rounds)))


if __name__ == "__main__":
    main()
