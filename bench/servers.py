"""The receivers the benchmark compares, each run in its own process: ``python -m bench.servers KIND PORT``.

- ``ceiling``: a bare Tornado handler that answers 200 and does nothing.
- ``tutorial``: the seed chapter's Flask handler, verifying with the official SDK and
  appending each event to a DataFrame with ``pd.concat``, as a tutorial reader would.
- ``docs``: the pattern in ElevenLabs' docs: FastAPI on uvicorn, the SDK, a list.
- ``kit``: ``elwh_nb.start(...)`` with the durable default store.

``--prefill N`` stores N events first (to measure a receiver that has accumulated them);
each server prints ``READY <pid>`` once it listens.
"""

import argparse
import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

SECRET = "wsec_test_" + "be" * 32


def rss_after_cleanup() -> int:
    """Resident bytes once garbage is collected and freed memory handed back to the system."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_bytes("self")


def rss_bytes(pid: int | str) -> int:
    """Resident bytes of a process (``"self"`` for this one), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def prefill_events(n: int, size: str, offset: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct realistic events of about 2 KB (``small``) or 50 KB (``large``)."""
    import elwh_nb

    factory = elwh_nb.payloads(11)
    if size == "large":
        template = factory.post_call_transcription(turns=140)
    else:
        template = factory.speech_to_text_transcription()
    events = []
    for i in range(n):
        event = json.loads(json.dumps(template))
        event["data"]["request_id" if size != "large" else "conversation_id"] = f"prefill_{offset + i:09d}"
        events.append(event)
    return events


def ready() -> None:
    print(f"READY {os.getpid()}", flush=True)


def ceiling(port: int) -> None:
    from tornado import ioloop, web

    class Ok(web.RequestHandler):
        def post(self) -> None:
            self.write("ok")

    web.Application([(r"/webhook", Ok)]).listen(port, "127.0.0.1")
    ready()
    ioloop.IOLoop.current().start()


def tutorial(port: int, prefill: int, size: str) -> None:
    import logging

    import pandas as pd
    from elevenlabs import ElevenLabs
    from flask import Flask, jsonify, request

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = Flask(__name__)
    client = ElevenLabs(api_key="x")
    state = {"events": pd.DataFrame(prefill_events(prefill, size)) if prefill else pd.DataFrame()}

    @app.route("/webhook", methods=["POST"])
    def webhook_handler() -> Any:
        payload = request.data.decode("utf-8")
        signature = request.headers.get("ElevenLabs-Signature")
        try:
            event = client.webhooks.construct_event(payload, signature, SECRET)
            state["events"] = pd.concat([state["events"], pd.DataFrame([event])], ignore_index=True)
            return jsonify({"success": True}), 200
        except Exception as e:
            return jsonify({"error": str(e)}), 400

    ready()
    app.run(host="127.0.0.1", port=port, threaded=True)


def docs(port: int, prefill: int, size: str) -> None:
    import logging

    import uvicorn
    from elevenlabs import ElevenLabs
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()
    client = ElevenLabs(api_key="x")
    events: list[dict[str, Any]] = prefill_events(prefill, size) if prefill else []

    @app.post("/webhook")
    async def receive(request: Request) -> JSONResponse:
        payload = (await request.body()).decode("utf-8")
        signature = request.headers.get("elevenlabs-signature")
        try:
            event = client.webhooks.construct_event(rawBody=payload, sig_header=signature, secret=SECRET)
        except Exception as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        events.append(event)
        return JSONResponse({"status": "received"})

    ready()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level=logging.ERROR, access_log=False)


def watch(rx: Any, n: int) -> None:
    """Read rx.events in a loop, as a notebook cell would; report when each row became visible."""
    import statistics
    import time

    seen, delays = 0, []
    while seen < n:
        events = rx.events
        if len(events) > seen:
            now = time.time_ns()
            received = events["received_at"].array.asi8[seen:]
            delays.extend((now - received) / 1e6)
            seen = len(events)
    q = statistics.quantiles(delays, n=100)
    print(json.dumps({"n": seen, "p50_ms": q[49], "p99_ms": q[98], "max_ms": max(delays)}), flush=True)


def busy(after: float, seconds: float) -> None:
    """A CPU-bound cell: pure-Python arithmetic on the main thread, holding the GIL."""
    import time

    time.sleep(after)
    end = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < end:
        total += sum(i * i for i in range(1000))


def kit(
    port: int, prefill: int, size: str, store: str, env: dict[str, str], args: argparse.Namespace
) -> None:
    import elwh_nb

    os.environ.update(env)  # a kernel's view of its Jupyter server, for the public route
    import tracemalloc

    events = elwh_nb.EventStore(store)
    if prefill and args.trace:
        tracemalloc.start()
    before, traced_before = rss_after_cleanup(), tracemalloc.get_traced_memory()[0]
    step = 1000 if size == "small" else 20  # small chunks: little transient memory to fragment
    for start in range(0, prefill, step):
        chunk = prefill_events(min(step, prefill - start), size, offset=start)
        events.append_many([(elwh_nb.payloads(0).body(e), e) for e in chunk])
        del chunk
    after, traced_after = rss_after_cleanup(), tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rx = elwh_nb.start(SECRET, port=port, store=events)
    sizes = {"rss_before": before, "rss_after": after, "traced": traced_after - traced_before}
    print(json.dumps({"url": rx.url, "local_url": rx.local_url, **sizes}), flush=True)
    ready()
    if args.watch:
        watch(rx, args.watch)
    if args.busy_for:
        busy(args.busy_after, args.busy_for)
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["ceiling", "tutorial", "docs", "kit"])
    parser.add_argument("port", type=int)
    parser.add_argument("--prefill", type=int, default=0)
    parser.add_argument("--size", choices=["small", "large"], default="small")
    parser.add_argument("--store", default=str(Path.cwd() / "elwh_events.sqlite"))
    parser.add_argument("--env", default="{}", help="JSON of environment variables (kit)")
    parser.add_argument(
        "--trace", action="store_true", help="kit: trace Python allocations during the prefill"
    )
    parser.add_argument("--watch", type=int, default=0, help="kit: read rx.events until N rows, print delays")
    parser.add_argument("--busy-after", type=float, default=0.0)
    parser.add_argument(
        "--busy-for", type=float, default=0.0, help="kit: a CPU-bound main thread for S seconds"
    )
    args = parser.parse_args()
    if args.kind == "ceiling":
        ceiling(args.port)
    elif args.kind == "tutorial":
        tutorial(args.port, args.prefill, args.size)
    elif args.kind == "docs":
        docs(args.port, args.prefill, args.size)
    else:
        kit(args.port, args.prefill, args.size, args.store, json.loads(args.env), args)
    sys.exit(0)


if __name__ == "__main__":
    main()
