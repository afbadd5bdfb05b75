"""Ingest speed, latency and memory of this kit against the receivers people would otherwise write.

Every scenario runs in the same invocation on the same machine: the receivers and the
Jupyter server pinned to CPU 0, the load generator (wrk, each thread walking its own slice
of distinct pre-signed realistic bodies) on CPU 1. Each ingest scenario runs REPEATS
times, the scenarios of a table alternating, and tables show the median and the range.
After every run of the kit, its store file is read back: the run fails if any delivery
was a duplicate (the load would measure the cheaper repeat path) or if an acknowledged
delivery is missing. Writes BENCHMARKS.md (the command, the machine, the versions, every
figure, and whether each target is met), PNG plots next to it, and the README's
benchmark blocks, all from this one run.

    python -m bench.ingest                 # make bench: the full run
    python -m bench.ingest --quick         # make bench-quick: about two minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import elwh_nb
from testkit.processes import free_port, stop_process

from .servers import SECRET, prefill_events, write_prefill

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORES = os.cpu_count() or 1
SERVER_CPU = "0"
LOAD_CPU = "1" if CORES > 1 else "0"


def pinned(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if shutil.which("taskset") and CORES > 1 else []


def pin_all(pid: int, cpu: str) -> None:
    """Pin every thread of a running process (the Jupyter server) to ``cpu``."""
    if pinned(cpu):
        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(pid)], check=True, capture_output=True)


@dataclass
class Options:
    seconds: float
    sizes: list[int]
    memory_small: int
    memory_large: int
    visible_seconds: float
    busy_seconds: float
    repeats: int = 3
    connections: int = 16
    threads: int = 2


FULL = Options(
    seconds=10,
    sizes=[10_000, 50_000, 200_000],
    memory_small=20_000,
    memory_large=1_000,
    visible_seconds=10,
    busy_seconds=10,
)
QUICK = Options(
    seconds=2, sizes=[10_000, 50_000], memory_small=5_000, memory_large=200, visible_seconds=3, busy_seconds=3
)


@contextmanager
def server(
    kind: str,
    *,
    prefill: Path | None = None,
    store: Path | None = None,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Run one receiver in its own process on the server CPU; yields port, pid and what it printed."""
    port = free_port()
    cmd = [
        *pinned(SERVER_CPU),
        sys.executable,
        "-m",
        "bench.servers",
        kind,
        str(port),
    ]
    if prefill is not None:
        cmd += ["--prefill", str(prefill)]
    if store is not None:
        cmd += ["--store", str(store)]
    if env:
        cmd += ["--env", json.dumps(env)]
    cmd += extra or []
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    info: dict[str, Any] = {"port": port, "url": f"http://127.0.0.1:{port}/webhook"}
    assert proc.stdout is not None
    try:
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{kind} server exited before it was ready")
            if line.startswith("READY"):
                info["pid"] = int(line.split()[1])
                break
            if line.startswith("{"):
                info.update(json.loads(line))
        info["proc"] = proc
        wait_listening(port)
        yield info
    finally:
        stop_process(proc)


def wait_listening(port: int, timeout: float = 60) -> None:
    """Some servers say they are ready a moment before they listen (uvicorn): connect to be sure."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def load_file(path: Path, n: int, size: str = "small", offset: int = 0) -> Path:
    """n distinct bodies signed now (valid for 30 minutes), one "signature<TAB>body" per line."""
    events = prefill_events(n, size)
    now = time.time()
    with path.open("w") as f:
        for i, event in enumerate(events):
            event["data"]["request_id" if size == "small" else "conversation_id"] = f"load_{offset + i:09d}"
            body = json.dumps(event, separators=(",", ":"))
            f.write(f"{elwh_nb.sign(body, SECRET, now)}\t{body}\n")
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non2xx: int
    duplicates: int | None = None  # read back from the kit's store after the run


def wrk(url: str, bodies: Path, seconds: float, connections: int, threads: int, auth: str = "") -> Load:
    cmd = [
        *pinned(LOAD_CPU),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "load.lua"),
        url,
        "--",
        str(bodies),
        auth,
        str(threads),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True)
    out = run.stdout
    if "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr[-500:]} {out[-500:]}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(found.group(1)) if found else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # wrk prints no distribution when no request finished in the run (a receiver that slow):
    # report that as no latency, not as a crash of the whole run.
    p50, p99 = (_ms(latency[q]) if q in latency else float("nan") for q in ("50", "99"))
    return Load(rps, p50, p99, requests, errors + non2xx, non2xx)


def check_store(path: Path, load: Load, prefilled: int = 0) -> Load:
    """Read the kit's store after a run: no duplicate bodies, every acknowledged delivery kept."""
    with elwh_nb.EventStore(path) as store:
        counts = store.counts
    load.duplicates = counts["duplicates"]
    stored = counts["deliveries"] - prefilled
    acknowledged = load.requests - load.non2xx
    if counts["duplicates"]:
        raise RuntimeError(
            f"{path.name}: {counts['duplicates']} of {counts['deliveries']} deliveries were duplicates; "
            "the load would measure the repeat path, not ingest"
        )
    if stored < acknowledged:
        raise RuntimeError(
            f"{path.name}: wrk had {acknowledged} deliveries acknowledged, the store has {stored}"
        )
    return load


def _spread(values: list[float], fmt: str) -> str:
    """The median, and the range of the repeated runs."""
    mid = statistics.median(values)
    if len(values) == 1:
        return format(mid, fmt)
    return f"{format(mid, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


@dataclass
class Runs:
    """One scenario's repeated runs."""

    loads: list[Load] = field(default_factory=list)

    def add(self, load: Load) -> Load:
        self.loads.append(load)
        return load

    @property
    def rps(self) -> float:
        return statistics.median(load.rps for load in self.loads)

    def ratio(self, other: Runs) -> list[float]:
        """Run-by-run ratios to another scenario run alternately with this one."""
        return [a.rps / b.rps for a, b in zip(self.loads, other.loads, strict=True)]

    def cells(self) -> list[str]:
        dupes = [load.duplicates for load in self.loads]
        return [
            _spread([load.rps for load in self.loads], ",.0f"),
            f"{statistics.median(load.p50_ms for load in self.loads):.1f}",
            f"{statistics.median(load.p99_ms for load in self.loads):.1f}",
            str(sum(load.errors for load in self.loads)),
            "n/a" if None in dupes else str(sum(d or 0 for d in dupes)),
        ]


INGEST_HEADER = ["events/s, median (range)", "p50 ms", "p99 ms", "errors", "duplicates"]


@dataclass
class Report:
    options: Options
    command: str
    lines: list[str] = field(default_factory=list)
    targets: list[tuple[str, bool, str]] = field(default_factory=list)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    bars: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)  # figures the README quotes
    blocks: dict[str, list[str]] = field(default_factory=dict)  # README blocks, by name

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        self.lines += ["| " + " | ".join(row) + " |" for row in rows]
        self.lines.append("")

    def target(self, what: str, met: bool, detail: str) -> None:
        self.targets.append((what, met, detail))
        print(f"target {'MET   ' if met else 'MISSED'} {what}: {detail}", flush=True)


def _spread_ratio(ratios: list[float], fmt: str = ".2f") -> str:
    return _spread(ratios, fmt)


def scenario_throughput(report: Report, tmp: Path) -> None:
    o = report.options
    # More distinct bodies than requests, so that every delivery is new (checked after each kit run).
    n_bodies = int(o.seconds * 12_000)
    bodies = load_file(tmp / "small.tsv", n_bodies)
    kinds = (
        ("1. ceiling: bare Tornado handler", "ceiling"),
        ("1b. bare Tornado HTTP delegate (no RequestHandler)", "delegate"),
        ("2. tutorial: Flask + SDK + pd.concat", "tutorial"),
        ("3. docs: FastAPI/uvicorn + SDK + list", "docs"),
        ("4. elwh_nb direct, durable store", "kit"),
    )
    runs = {kind: Runs() for _, kind in kinds}
    for rep in range(o.repeats):
        for name, kind in kinds:
            store = tmp / f"{kind}-{rep}.sqlite"
            with server(kind, store=store) as s:
                result = runs[kind].add(wrk(s["url"], bodies, o.seconds, o.connections, o.threads))
            if kind == "kit":
                check_store(store, result)
            print(f"{name} (run {rep + 1}): {result}", flush=True)
    ceiling = runs["ceiling"]
    rows = []
    for name, kind in kinds:
        rows.append([name, *runs[kind].cells(), _spread_ratio(runs[kind].ratio(ceiling))])
        report.bars[name] = runs[kind].rps
    report.lines += [
        "## Direct ingest",
        "",
        f"wrk, {o.threads} threads, {o.connections} connections, {o.seconds:g} s a run, {o.repeats} runs of each "
        f"scenario (alternating), 2.7 KB realistic bodies; {n_bodies:,} distinct ones, each wrk thread walking "
        "its own slice. Duplicates are read back from the kit's store after each run (the run fails unless 0).",
        "",
    ]
    report.table(["scenario", *INGEST_HEADER, "ratio to ceiling"], rows)
    kit, bare = runs["kit"], runs["delegate"]
    ratios, to_bare = kit.ratio(ceiling), kit.ratio(bare)
    report.kit = kit.rps  # type: ignore[attr-defined]
    report.ceiling = ceiling.rps  # type: ignore[attr-defined]
    report.delegate = bare.rps  # type: ignore[attr-defined]
    report.lines += [
        "The ceiling is a `web.RequestHandler`, as most Tornado receivers are; the kit serves its hook path "
        "with a plain HTTP message delegate instead, so part of its standing against the ceiling is leaving "
        f"RequestHandler's machinery. Row 1b measures that part: against it the kit does {_spread_ratio(to_bare, '.0%')} "
        "(median, and range, of the run-by-run ratios).",
        "",
    ]
    report.target(
        "direct ingest at least 75% of the ceiling",
        statistics.median(ratios) >= 0.75,
        f"{kit.rps:,.0f} vs {ceiling.rps:,.0f} events/s (median ratio {_spread_ratio(ratios, '.0%')}); "
        f"{statistics.median(to_bare):.0%} of the bare delegate's {bare.rps:,.0f} (row 1b)",
    )
    report.summary["kit"] = kit.rps
    report.summary["ceiling"] = ceiling.rps
    report.summary["delegate"] = bare.rps
    report.summary["docs"] = runs["docs"].rps
    report.summary["tutorial"] = runs["tutorial"].rps


def scenario_accumulated(report: Report, tmp: Path) -> None:
    o = report.options
    seconds = max(2.0, o.seconds / 2)
    kinds = (("tutorial", "2. tutorial"), ("docs", "3. docs"), ("kit", "4. elwh_nb"))
    runs = {(kind, size): Runs() for kind, _ in kinds for size in o.sizes}
    prefills = {size: write_prefill(tmp / f"prefill-{size}.jsonl", size, "small") for size in o.sizes}
    # As in the direct runs: more distinct bodies than requests, none like a prefilled one.
    bodies = load_file(tmp / "acc.tsv", int(seconds * 12_000), offset=10**7)
    for rep in range(o.repeats):
        for size in o.sizes:
            for kind, label in kinds:
                store = tmp / f"acc-{kind}-{size}-{rep}.sqlite"
                with server(kind, prefill=prefills[size], store=store) as s:
                    result = runs[kind, size].add(wrk(s["url"], bodies, seconds, o.connections, o.threads))
                if kind == "kit":
                    check_store(store, result, prefilled=size)
                print(f"{label} after {size} (run {rep + 1}): {result}", flush=True)
    rows = []
    for kind, label in kinds:
        report.curves[label] = [(size, runs[kind, size].rps) for size in o.sizes]
        for size in o.sizes:
            rows.append([label, f"{size:,}", *runs[kind, size].cells()])
    report.lines += [
        "## Ingest after events have accumulated",
        "",
        f"Each receiver starts with N events already stored (loaded from the same file by each), then takes "
        f"{seconds:g} s of load; {o.repeats} runs of each, alternating.",
        "",
    ]
    report.table(["scenario", "stored before", *INGEST_HEADER], rows)
    report.summary["accumulated"] = {
        label: [runs[kind, size].rps for size in o.sizes] for kind, label in kinds
    }
    if 50_000 in o.sizes:
        ratios = runs["kit", 50_000].ratio(runs["tutorial", 50_000])
        report.target(
            "at least 10x the tutorial receiver once 50k events have accumulated",
            statistics.median(ratios) >= 10,
            f"{runs['kit', 50_000].rps:,.0f} vs {runs['tutorial', 50_000].rps:,.0f} events/s "
            f"(median ratio {_spread_ratio(ratios, ',.1f')}x)",
        )


def scenario_memory(report: Report, tmp: Path) -> None:
    o = report.options
    rows = []
    kit_per_event = []
    for size, n in (("small", o.memory_small), ("large", o.memory_large)):
        prefill = write_prefill(tmp / f"mem-{size}.jsonl", n, size)
        body_kb = prefill.stat().st_size / n / 1024
        for kind, label in (("tutorial", "2. tutorial"), ("docs", "3. docs"), ("kit", "4. elwh_nb")):
            with server(kind, prefill=prefill, store=tmp / f"mem-{kind}-{size}.sqlite") as s:
                assert s["prefilled"] == n, s
                rss = (s["rss_after"] - s["rss_before"]) / n
            with server(
                kind, prefill=prefill, store=tmp / f"memt-{kind}-{size}.sqlite", extra=["--trace"]
            ) as s:
                heap = s["traced"] / n
            if kind == "kit":
                kit_per_event.append(heap)
            rows.append(
                [label, f"{body_kb:.1f} KB", f"{n:,}", f"{rss / 1024:,.2f} KB", f"{heap / 1024:,.2f} KB"]
            )
            print(
                f"memory {label} {size}: {rss / 1024:.2f} KB RSS, {heap / 1024:.2f} KB heap per event",
                flush=True,
            )
    report.lines += [
        "## Memory per stored event",
        "",
        "Measured the same way in every receiver's own process: the events are loaded from the same JSON-lines "
        "file after the receiver's imports, and the figure is the growth of resident memory (after garbage "
        "collection and `malloc_trim`) divided by N; then, in a second process, the Python heap the stored events "
        "keep (tracemalloc). The references keep parsed events in memory, as they are written; the kit keeps small "
        "columns in memory and the bodies in its SQLite file, so its RSS figure is mostly SQLite's page cache "
        "(2 MB at most by default), spread over N.",
        "",
    ]
    report.table(["scenario", "body", "events", "RSS per event", "heap kept per event"], rows)
    worst = max(kit_per_event)
    report.target(
        "under 1 KB per stored event beyond its id strings, whatever the body size",
        worst < 1024,
        f"{worst:,.0f} bytes kept per event at most, id strings included",
    )


async def paced(url: str, rate: float, seconds: float) -> list[tuple[float, float, int]]:
    """POST at a steady ``rate``; returns (sent at, latency s, status) per delivery."""
    import aiohttp

    factory = elwh_nb.payloads(21)
    out: list[tuple[float, float, int]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(i: int) -> None:
            event = factory.speech_to_text_transcription(request_id=f"paced_{i}_{time.time_ns()}")
            body = elwh_nb.PayloadFactory.body(event)
            headers = {"ElevenLabs-Signature": elwh_nb.sign(body, SECRET), "Content-Type": "application/json"}
            sent = time.time()
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                out.append((sent, time.perf_counter() - t0, r.status))

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.gather(*tasks)
    return out


def scenario_visible_and_busy(report: Report, tmp: Path) -> None:
    o = report.options
    # Arrival to visible: a reader loop in the receiver's process, as a notebook cell would.
    n = int(500 * o.visible_seconds)
    with server("kit", store=tmp / "visible.sqlite", extra=["--watch", str(n)]) as s:
        asyncio.run(paced(s["url"], 500, o.visible_seconds))
        assert s["proc"].stdout is not None
        stats = json.loads(s["proc"].stdout.readline())
    report.lines += [
        "## Arrival to visible in `rx.events`",
        "",
        f"500 events/s for {o.visible_seconds:g} s; a loop in the receiver's process reads `rx.events` and notes when each row appears.",
        "",
    ]
    report.table(
        ["deliveries", "p50 ms", "p99 ms", "max ms"],
        [[str(stats["n"]), f"{stats['p50_ms']:.2f}", f"{stats['p99_ms']:.2f}", f"{stats['max_ms']:.2f}"]],
    )
    report.target(
        "arrival-to-visible p99 under 20 ms at 500 events/s",
        stats["p99_ms"] < 20,
        f"p99 {stats['p99_ms']:.2f} ms",
    )

    # A CPU-bound cell: the receiver's main thread computes for busy_seconds while deliveries arrive.
    idle_s, busy_s = 3.0, o.busy_seconds
    with server(
        "kit", store=tmp / "busy.sqlite", extra=["--busy-after", str(idle_s), "--busy-for", str(busy_s)]
    ) as s:
        start = time.time()
        sent = asyncio.run(paced(s["url"], 200, idle_s + busy_s))
    idle = [lat for t, lat, _ in sent if t - start < idle_s - 0.2]
    busy = [lat for t, lat, _ in sent if idle_s + 0.2 < t - start < idle_s + busy_s - 0.2]
    q = statistics.quantiles
    idle99, busy99 = q(idle, n=100)[98] * 1000, q(busy, n=100)[98] * 1000
    report.lines += [
        "## Deliveries during a CPU-bound cell",
        "",
        f"200 events/s; the receiver's main thread runs pure-Python arithmetic for {busy_s:g} s (holding the GIL).",
        "",
    ]
    report.table(
        ["phase", "deliveries", "p50 ms", "p99 ms"],
        [
            ["idle", str(len(idle)), f"{statistics.median(idle) * 1000:.1f}", f"{idle99:.1f}"],
            ["busy cell", str(len(busy)), f"{statistics.median(busy) * 1000:.1f}", f"{busy99:.1f}"],
        ],
    )
    report.target(
        "p99 added delay during a CPU-bound cell under 100 ms",
        busy99 - idle99 < 100,
        f"p99 {busy99:.1f} ms busy vs {idle99:.1f} ms idle (+{busy99 - idle99:.1f} ms)",
    )


def scenario_jupyter(report: Report, tmp: Path) -> None:
    from testkit.jupyter import jupyter_server

    o = report.options
    n_bodies = int(o.seconds * 6_000)
    bodies = load_file(tmp / "proxy.tsv", n_bodies, offset=5 * 10**7)
    names = {
        "bare": "5a. bare handler behind /proxy/<port>/",
        "proxied": "5b. elwh_nb behind /proxy/<port>/",
        "public": "6. elwh_nb through the public hook route",
    }
    runs = {key: Runs() for key in names}
    with jupyter_server(tmp / "jupyter") as js:
        pin_all(js.proc.pid, SERVER_CPU)
        auth = f"token {js.token}"
        env = js.env()
        for rep in range(o.repeats):
            with server("ceiling") as bare:
                url = f"{js.origin}/jbase/proxy/{bare['port']}/webhook"
                runs["bare"].add(wrk(url, bodies, o.seconds, o.connections, o.threads, auth))
            store = tmp / f"proxied-{rep}.sqlite"
            with server("kit", store=store, env=env) as kit:
                url = f"{js.origin}/jbase/proxy/{kit['port']}/webhook"
                result = runs["proxied"].add(wrk(url, bodies, o.seconds, o.connections, o.threads, auth))
            check_store(store, result)
            store = tmp / f"public-{rep}.sqlite"
            with server("kit", store=store, env=env) as kit:
                assert "/elwh/hook/" in kit["url"], kit["url"]
                result = runs["public"].add(wrk(kit["url"], bodies, o.seconds, o.connections, o.threads))
            check_store(store, result)
            for key, name in names.items():
                print(f"{name} (run {rep + 1}): {runs[key].loads[-1]}", flush=True)
    rows = []
    for key, name in names.items():
        rows.append([name, *runs[key].cells(), _spread_ratio(runs[key].ratio(runs["bare"]))])
        report.bars[name] = runs[key].rps
    report.lines += [
        "## Through a real Jupyter server",
        "",
        "jupyter server (with jupyter-server-proxy and the elwh_nb extension; every thread pinned) and the receiver "
        f"on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}; the proxy with the token in an Authorization header, the "
        f"public route with none; {o.repeats} runs of each, alternating.",
        "",
    ]
    report.table(["scenario", *INGEST_HEADER, "ratio to 5a"], rows)
    proxied = runs["proxied"].ratio(runs["bare"])
    report.target(
        "through the proxy at least 90% of the bare handler behind the same proxy",
        statistics.median(proxied) >= 0.9,
        f"{runs['proxied'].rps:,.0f} vs {runs['bare'].rps:,.0f} events/s (median ratio {_spread_ratio(proxied, '.0%')})",
    )
    public = runs["public"].ratio(runs["proxied"])
    report.target(
        "the public hook route at least 2x the events/s of /proxy/<port>/",
        statistics.median(public) >= 2,
        f"{runs['public'].rps:,.0f} vs {runs['proxied'].rps:,.0f} events/s (median ratio {_spread_ratio(public, '.1f')}x)",
    )
    report.summary["public"] = runs["public"].rps
    report.summary["proxied"] = runs["proxied"].rps


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def scenario_big_body(report: Report, tmp: Path) -> None:
    """Peak memory a 160 MB chunked post_call_audio adds to the Jupyter server and the kernel."""
    import httpx

    from testkit.jupyter import jupyter_server

    audio = 120_000_000 if report.options is FULL else 30_000_000  # MP3 bytes; base64 adds a third
    event = elwh_nb.payloads(5).post_call_audio(audio_bytes=audio)
    raw = json.dumps(event, separators=(",", ":")).encode()
    rows: list[list[str]] = []

    def pieces(size: int = 1 << 20) -> Iterator[bytes]:
        view = memoryview(raw)
        for start in range(0, len(raw), size):
            yield bytes(view[start : start + size])

    with jupyter_server(tmp / "jupyter-big") as js:
        for phase in ("receiver running", "kept while away"):
            store = tmp / f"big-{len(rows)}.sqlite"
            with server("kit", store=store, env=js.env()) as kit:
                url = kit["url"]
                pids = {"Jupyter server": js.proc.pid, "kernel (receiver)": kit["pid"]}
                if phase == "kept while away":
                    stop_process(kit["proc"])  # the kernel is away: the route keeps the delivery
                    del pids["kernel (receiver)"]
                # Running, the same body comes twice: an ElevenLabs retry is a duplicate.
                sends = ("new", "again (a retry)") if phase == "receiver running" else ("new",)
                for send in sends:
                    before = {name: _status(pid, "VmRSS") for name, pid in pids.items()}
                    for pid in pids.values():
                        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
                    headers = {
                        "ElevenLabs-Signature": elwh_nb.sign(raw, SECRET),
                        "Content-Type": "application/json",
                    }
                    answer = httpx.post(url, content=pieces(), headers=headers, timeout=600)
                    if answer.status_code != 200:
                        raise RuntimeError(f"the big delivery got {answer.status_code}")
                    label = phase if send == "new" else f"{phase}, {send}"
                    for name, pid in pids.items():
                        added = (_status(pid, "VmHWM") - before[name]) / len(raw)
                        rows.append([label, name, f"{added:.2f}x"])
            with elwh_nb.EventStore(store) as stored:  # the workload checks itself
                kept = stored.inbox()
                if (stored.counts["events"], stored.counts["deliveries"], len(kept)) != (
                    (1, 2, 0) if phase == "receiver running" else (0, 0, 1)
                ):
                    raise RuntimeError(f"the big delivery was not stored as expected ({phase})")
    report.lines += [
        "## A call's audio, in one delivery",
        "",
        f"One `post_call_audio` of {len(raw) / 1e6:,.0f} MB (base64 MP3), sent chunked through the public route; the "
        "peak resident memory each process adds while it carries it (VmHWM, reset first), as a multiple of the body. "
        "The Jupyter server holds a body once; so does the kernel: it grows the body in one buffer, verifies and "
        "stores those bytes, and takes the record's fields from a skim that leaves the audio string out. A retry of "
        "the same body costs the kernel more: SQLite rewrites the stored row, body and all, to count the repeat. "
        "Kept while away, only the server carries it (the kernel verifies it on its next start).",
        "",
    ]
    report.table(["phase", "process", "peak memory added / body size"], rows)


def scenario_reads(report: Report) -> None:
    from . import core, dashboard

    sizes = [10_000, 100_000, 1_000_000] if report.options is FULL else [10_000, 100_000]
    lines = core.reads(sizes)
    table = [line for line in lines if line.startswith("|")]
    report.lines += ["## Reading `rx.events` after one new event", "", *lines, ""]
    report.blocks["reads"] = table
    last = core.READ_TIMES[sizes[-1]]
    report.target(
        f"one new event appended and rx.events read under 10 ms at {sizes[-1]:,} stored events",
        last < 10,
        f"{last:.3f} ms",
    )
    refresh = dashboard.table(sizes)
    report.lines += ["## Dashboard refresh", "", *refresh, ""]
    report.blocks["dashboard"] = refresh
    query_size = 200_000 if report.options is FULL else 20_000
    report.lines += [
        "## The query layer alone",
        "",
        "The filter and page function behind the table, the failures view and the export, on a frame of "
        f"{query_size:,} stored events with no receiver and no widgets: the first page of 20 rows against "
        "the obvious mask over every row (medians).",
        "",
        *dashboard.queries(query_size),
        "",
    ]


def scenario_tool_calls(report: Report, tmp: Path) -> None:
    """Agent-tool call latency through the public route: the kit next to a bare handler."""
    from . import calls

    full = report.options is FULL
    n = 300 if full else 50
    results = calls.measure(tmp, report.options.repeats, n, server, lambda pid: pin_all(pid, SERVER_CPU))
    report.lines += ["## Agent-tool calls through the public route", "", *calls.table(results, n), ""]


def scenario_history(report: Report) -> None:
    """Reopening a big store, and how fast a hub service's new rows reach a connect()ed notebook."""
    from . import history, hub

    size = 1_000_000 if report.options is FULL else 100_000
    lines, results = history.side_by_side(size, 3 if report.options is FULL else 1)
    report.lines += ["## Reopening a big store", "", *lines, ""]
    first = statistics.median(r["first_read_s"] for r in results["copy"])
    report.target(
        f"a store of {size:,} events reopened (to the first `events`) under 2 s", first < 2, f"{first:.2f} s"
    )
    rounds = 30 if report.options is FULL else 10
    report.lines += ["## Reading a hub service with `connect()`", "", *hub.table([1_000, size], rounds), ""]


def scenario_conversations(report: Report) -> None:
    """Turns, tool calls and conversations: the kit against the obvious pandas code, and reads at size."""
    from . import conversations

    full = report.options is FULL
    calls = 20_000 if full else 500
    sizes = [10_000, 1_000_000] if full else [10_000, 100_000]
    lines = conversations.build(calls, report.options.repeats)
    reads = conversations.read_after_one(sizes, 5)
    report.lines += [
        "## What is inside each call: turns, tool calls, conversations",
        "",
        "The obvious pandas code (`json.loads` of each body, `json_normalize` of its transcript, its tool "
        "calls and its `data`, `pd.concat`), built again for each read, against the kit, which derives "
        "the rows once as each body is stored (the ingest with derivation less the same ingest without) "
        "and reads a snapshot. Same distinct bodies; both find the same turns, tool calls and "
        "conversations and the same sum of a stage metric (checked).",
        "",
        *lines,
        "",
        *reads,
        "",
    ]
    report.blocks["conversations"] = [*lines, "", *reads]
    r = conversations.RESULTS
    report.target(
        f"the three frames for {calls:,} calls at least 10x quicker than json_normalize",
        r["derive_ratio"] >= 10,
        f"{r['derive_ratio']:.1f}x",
    )
    big = sizes[-1]
    report.target(
        f"one new call appended and rx.turns read under 10 ms at {big:,} stored turns",
        r[f"read_ms:{big}"] < 10,
        f"{r[f'read_ms:{big}']:.2f} ms (at {sizes[0]:,}: {r[f'read_ms:{sizes[0]}']:.2f} ms)",
    )
    report.target(
        f"a store of {big:,} turns reopened (to the first `turns`) under 2 s",
        r[f"reopen_s:{big}"] < 2,
        f"{r[f'reopen_s:{big}']:.2f} s",
    )


def scenario_core(report: Report) -> None:
    from . import core

    lines = core.throughput(2000 if report.options is FULL else 500)
    report.lines += ["## Speed of the core", "", *lines, ""]
    report.blocks["core"] = lines


def scenario_breakdown(report: Report) -> None:
    """Where a delivery's time goes in the kit, measured in-process on the same bodies."""
    import hashlib
    import hmac

    from elwh_nb._core import jsonparse
    from elwh_nb._core.intake import Intake

    events = prefill_events(3200, "small", offset=8 * 10**7)
    bodies = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    headers = [{"ElevenLabs-Signature": elwh_nb.sign(b, SECRET)} for b in bodies]
    parsed = [json.loads(b) for b in bodies]

    def per_event(fn: Any, passes: int = 1) -> float:
        """µs per body of ``fn`` over all bodies, in the best of ``passes`` (a pass that writes: 1)."""
        best = float("inf")
        for _ in range(passes):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best / len(bodies) * 1e6

    def append_in_batches(size: int, receiver: bool = False) -> tuple[float, float]:
        """µs per delivery to append in batches, and to checkpoint what is left in the log after.

        ``receiver``: as a receiver does it, with no checkpoints inside the commits (its
        checkpoint thread does them, while the loop goes on).
        """
        with tempfile.TemporaryDirectory() as tmp, elwh_nb.EventStore(Path(tmp) / "b.sqlite") as store:
            store.autocheckpoint(0 if receiver else 1000)
            appended = per_event(
                lambda: [
                    store.append_many(list(zip(bodies[i : i + size], parsed[i : i + size], strict=True)))
                    for i in range(0, len(bodies), size)
                ]
            )
            return appended, per_event(store.checkpoint)

    with tempfile.TemporaryDirectory() as tmp, elwh_nb.EventStore(Path(tmp) / "c.sqlite") as store:
        intake = Intake(SECRET, store, tolerance=1800, future_tolerance=300)
        check = per_event(
            lambda: [
                intake.check(b, h, remote=None, path=None) for b, h in zip(bodies, headers, strict=True)
            ],
            passes=3,
        )
    parse = per_event(lambda: [jsonparse.loads(b) for b in bodies], passes=3)
    stdlib = per_event(lambda: [json.loads(b.decode("utf-8")) for b in bodies], passes=3)
    key = SECRET.encode()
    mac = per_event(lambda: [hmac.new(key, b"1." + b, hashlib.sha256).hexdigest() for b in bodies], passes=3)
    one_each, grouped = append_in_batches(1)[0], append_in_batches(16)[0]
    committed, checkpointed = append_in_batches(16, receiver=True)
    ceiling = getattr(report, "ceiling", 0) or 1
    kit = getattr(report, "kit", 0) or 1
    delegate = getattr(report, "delegate", 0) or 1
    report.lines += [
        "## Where the time goes",
        "",
        "Per delivery of the same 2.7 KB bodies, measured in-process in this run (microseconds); the first three "
        "rows are the medians of the direct ingest runs above:",
        "",
    ]
    report.table(
        ["step", "µs per delivery"],
        [
            ["a request to the bare Tornado handler (1 / ceiling events/s)", f"{1e6 / ceiling:.0f}"],
            ["a request to the bare Tornado delegate (1 / its events/s; row 1b)", f"{1e6 / delegate:.0f}"],
            ["a request to the kit (1 / its events/s)", f"{1e6 / kit:.0f}"],
            ["verify: header, clock, HMAC, JSON (Intake.check)", f"{check:.0f}"],
            ["  of which parsing the body (orjson where it agrees with json.loads)", f"{parse:.0f}"],
            ["  (json.loads alone would take)", f"{stdlib:.0f}"],
            ["  of which the HMAC-SHA256", f"{mac:.0f}"],
            ["store, one commit per delivery: normalise, INSERT, commit, column buffers", f"{one_each:.0f}"],
            ["store, group commit of 16, SQLite's checkpoints inside the commits", f"{grouped:.0f}"],
            [
                "store, group commit of 16 as the receiver does it (on the loop; no checkpoints)",
                f"{committed:.0f}",
            ],
            [
                "  checkpointing that log: on the receiver's checkpoint thread, off the loop",
                f"{checkpointed:.0f}",
            ],
        ],
    )
    report.lines += [
        f"The 75% target leaves the kit {(1e6 / (0.75 * ceiling)) - 1e6 / ceiling:.0f} µs per request beyond the bare "
        f"handler for everything it adds ({(1e6 / (0.75 * ceiling)) - 1e6 / delegate:.0f} µs beyond the bare delegate "
        "its hook path is built on, which skips RequestHandler). Parsing the body (to answer `invalid_json` with a 400 before acknowledging) "
        "and one durable SQLite insert (to acknowledge only what is committed) are required by the delivery rules; "
        "the rows above say what they cost in this run.",
        "",
    ]


def readme_summary(report: Report) -> list[str]:
    """The README's benchmark paragraph, from this run's figures."""
    s = report.summary
    if not {"kit", "ceiling", "delegate", "docs", "public", "proxied", "accumulated"} <= set(s):
        return []
    tutorial = s["accumulated"]["2. tutorial"]
    kit = s["accumulated"]["4. elwh_nb"]
    sizes = report.options.sizes
    return [
        f"In short, on {CORES} cores (medians of {report.options.repeats} runs): the kit ingests durably at "
        f"{s['kit']:,.0f} events/s, against {s['docs']:,.0f} for the docs' in-memory FastAPI receiver and "
        f"{s['ceiling']:,.0f} for a bare Tornado handler ({s['kit'] / s['ceiling']:.0%} of it; "
        f"{s['kit'] / s['delegate']:.0%} of the {s['delegate']:,.0f} of a bare Tornado HTTP delegate, which the "
        "kit's hook path is built on); its public hook "
        f"route carries {s['public'] / s['proxied']:.1f}x what `/proxy/<port>/` does; and where the tutorial's "
        f"receiver goes from {tutorial[0]:,.0f} to {tutorial[-1]:,.0f} events/s as {sizes[-1]:,} events pile up, "
        f"the kit goes from {kit[0]:,.0f} to {kit[-1]:,.0f}. "
        + (
            f"{len(missed)} target{'s are' if len(missed) > 1 else ' is'} missed: see the targets table in "
            "`BENCHMARKS.md`."
            if (missed := [t for t in report.targets if not t[1]])
            else "Every target is met."
        )
    ]


BLOCK = re.compile(r"(<!-- bench:(\w+) -->\n).*?(<!-- /bench:\2 -->)", re.S)
#: The pages with ``<!-- bench:NAME -->`` blocks, relative to the repository.
DOC_PAGES = ("README.md", "docs/guides/notebook.md", "docs/guides/development.md")


def write_readme_blocks(readme: Path, blocks: dict[str, list[str]]) -> None:
    """Replace each ``<!-- bench:NAME -->`` block of the README with this run's lines."""
    text = readme.read_text()

    def fill(match: re.Match[str]) -> str:
        lines = blocks.get(match.group(2))
        if lines is None:
            return match.group(0)
        return match.group(1) + "\n".join(lines) + "\n" + match.group(3)

    readme.write_text(BLOCK.sub(fill, text))


def plots(report: Report, out: Path) -> list[str]:
    from matplotlib.figure import Figure

    names = []
    if report.curves:
        fig = Figure(figsize=(7, 4), layout="constrained")
        ax = fig.subplots()
        for label, curve in report.curves.items():
            ax.plot([x for x, _ in curve], [y for _, y in curve], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("events already stored")
        ax.set_ylabel("events/s")
        ax.set_title("Ingest as events accumulate")
        ax.legend()
        fig.savefig(out / "bench_accumulated.png", dpi=100)
        names.append("bench_accumulated.png")
    if report.bars:
        fig = Figure(figsize=(8, 4), layout="constrained")
        ax = fig.subplots()
        labels = list(report.bars)
        ax.barh(labels[::-1], [report.bars[k] for k in labels[::-1]])
        ax.set_xlabel("events/s")
        ax.set_title("Ingest by scenario")
        fig.savefig(out / "bench_scenarios.png", dpi=100)
        names.append("bench_scenarios.png")
    return names


def versions() -> str:
    from importlib.metadata import version

    names = [
        "tornado",
        "pandas",
        "jupyter_server",
        "jupyter-server-proxy",
        "elevenlabs",
        "flask",
        "fastapi",
        "uvicorn",
    ]
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return ", ".join(
        [f"elwh_nb {elwh_nb.__version__}", f"Python {platform.python_version()}"]
        + [f"{n} {version(n)}" for n in names]
        + [wrk_version.strip()]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs (about two minutes)")
    parser.add_argument(
        "--out",
        default=None,
        help="folder for BENCHMARKS.md and plots (default: repo root; quick: a temp dir)",
    )
    args = parser.parse_args(argv)
    for tool in ("wrk",):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed: apt-get install {tool}")
    options = QUICK if args.quick else FULL
    out = (
        Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="elwh-bench-")) if args.quick else ROOT)
    )
    command = "make bench-quick" if args.quick else "make bench"
    report = Report(options, command)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        scenario_throughput(report, tmp)
        scenario_jupyter(report, tmp)
        scenario_accumulated(report, tmp)
        scenario_memory(report, tmp)
        scenario_visible_and_busy(report, tmp)
        scenario_big_body(report, tmp)
        scenario_tool_calls(report, tmp)
        scenario_reads(report)
        scenario_core(report)
        scenario_history(report)
        scenario_conversations(report)
        scenario_breakdown(report)
    images_dir = out / "docs" if out == ROOT else out
    images_dir.mkdir(exist_ok=True)
    images = [str((images_dir / name).relative_to(out)) for name in plots(report, images_dir)]
    report.blocks["summary"] = readme_summary(report)
    head = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` (`python -m bench.ingest{' --quick' if args.quick else ''}`) on {time.strftime('%Y-%m-%d')}, "
        f"in {time.time() - t0:,.0f} s, on a {CORES}-core {platform.machine()} machine ({platform.platform()}); "
        + (
            f"receivers and the Jupyter server pinned to CPU {SERVER_CPU}, wrk to CPU {LOAD_CPU}; "
            "the paced sender of the latency scenarios and the in-process measurements (core, reads, dashboard, "
            "where the time goes) not pinned."
            if pinned(SERVER_CPU)
            else "nothing pinned (one core, or no taskset)."
        ),
        "",
        f"Versions: {versions()}.",
        "",
        f"All figures come from this one run. Ingest scenarios ran {options.repeats} times each, alternating; tables "
        "show the median and the range. Absolute numbers drift on shared machines; compare within a table.",
        "",
        *(["## Summary", "", *report.blocks["summary"], ""] if report.blocks["summary"] else []),
        "## Targets",
        "",
        "| target | met | measured |",
        "|---|---|---|",
        *[f"| {what} | {'yes' if met else '**no**'} | {detail} |" for what, met, detail in report.targets],
        "",
    ]
    body = head + report.lines + [f"![{name}]({name})" for name in images] + [""]
    (out / "BENCHMARKS.md").write_text("\n".join(body))
    print(f"wrote {out / 'BENCHMARKS.md'}", flush=True)
    for page in DOC_PAGES:  # the README and the guides that quote this run's figures
        target = ROOT / page if out == ROOT else out / page
        if out != ROOT:  # a quick run fills a copy, to show it works without touching the real one
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / page, target)
        write_readme_blocks(target, report.blocks)
        print(f"wrote the benchmark blocks of {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
