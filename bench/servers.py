"""The receivers the benchmark compares, each run in its own process: ``python -m bench.servers KIND PORT``.

- ``ceiling``: a bare Tornado handler that answers 200 and does nothing.
- ``delegate``: a bare Tornado HTTP message delegate that answers 200 and does nothing: no
  ``web.RequestHandler``, as the kit serves its hook path (so part of the kit's gain over
  the ceiling is leaving RequestHandler, which this shows).
- ``tutorial``: the seed chapter's Flask handler, verifying with the official SDK and
  appending each event to a DataFrame with ``pd.concat``, as a tutorial reader would.
- ``docs``: the pattern in ElevenLabs' docs: FastAPI on uvicorn, the SDK, a list.
- ``kit``: ``elwh_nb.start(...)`` with the durable default store.

``--prefill FILE`` stores the events of a JSON-lines file first (to measure a receiver
that has accumulated them; the file is written by the parent, so no reference receiver
imports the kit). Every kind measures the memory its stored events take the same way,
in its own process: resident bytes after garbage collection and ``malloc_trim`` before
and after loading them (``--trace`` adds the Python heap they keep, by tracemalloc), and
prints it as a JSON line. Each server prints ``READY <pid>`` once it listens.
"""

import argparse
import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
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
    from testkit.processes import rss_bytes

    return rss_bytes("self")


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


def write_prefill(path: Path, n: int, size: str) -> Path:
    """A JSON-lines file of ``n`` distinct events (compact bodies, as ElevenLabs sends them)."""
    with path.open("w") as f:
        for start in range(0, n, 1000):
            for event in prefill_events(min(1000, n - start), size, offset=start):
                f.write(json.dumps(event, separators=(",", ":")) + "\n")
    return path


class Measured:
    """Memory that loading the prefill costs, measured the same way for every kind."""

    def __init__(self, trace: bool) -> None:
        import tracemalloc

        self.trace = trace
        if trace:
            tracemalloc.start()
        self.rss_before = rss_after_cleanup()
        self.traced_before = tracemalloc.get_traced_memory()[0]

    def done(self, n: int) -> dict[str, Any]:
        import tracemalloc

        rss_after = rss_after_cleanup()
        traced = tracemalloc.get_traced_memory()[0] - self.traced_before
        tracemalloc.stop()
        return {
            "prefilled": n,
            "rss_before": self.rss_before,
            "rss_after": rss_after,
            "traced": traced if self.trace else None,
        }


def read_prefill(path: str | None) -> Iterator[bytes]:
    """The prefill file's bodies, one at a time (nothing to load when there is none)."""
    if not path:
        return
    with open(path, "rb") as f:
        for line in f:
            yield line.rstrip(b"\n")


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


def delegate(port: int) -> None:
    from tornado import httpserver, httputil, ioloop

    class Ok(httputil.HTTPMessageDelegate):
        def __init__(self, connection: httputil.HTTPConnection) -> None:
            self.connection = connection

        def data_received(self, chunk: bytes) -> None:
            return

        def finish(self) -> None:
            headers = httputil.HTTPHeaders({"Content-Type": "text/plain", "Content-Length": "2"})
            self.connection.write_headers(httputil.ResponseStartLine("HTTP/1.1", 200, "OK"), headers, b"ok")
            self.connection.finish()

    class Server(httputil.HTTPServerConnectionDelegate):
        def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> Ok:
            return Ok(request_conn)

    httpserver.HTTPServer(Server()).listen(port, "127.0.0.1")
    ready()
    ioloop.IOLoop.current().start()


def tutorial(port: int, args: argparse.Namespace) -> None:
    import logging

    import pandas as pd
    from elevenlabs import ElevenLabs
    from flask import Flask, jsonify, request

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = Flask(__name__)
    client = ElevenLabs(api_key="x")
    measured = Measured(args.trace)
    rows = [json.loads(body) for body in read_prefill(args.prefill)]
    state = {"events": pd.DataFrame(rows) if rows else pd.DataFrame()}
    del rows
    print(json.dumps(measured.done(len(state["events"]))), flush=True)

    @app.route("/webhook", methods=["POST"])
    def webhook_handler() -> Any:
        payload = request.data.decode("utf-8")
        signature = request.headers.get("ElevenLabs-Signature")
        try:
            event = client.webhooks.construct_event(payload, signature, SECRET)  # type: ignore[arg-type]
            state["events"] = pd.concat([state["events"], pd.DataFrame([event])], ignore_index=True)
            return jsonify({"success": True}), 200
        except Exception as e:
            return jsonify({"error": str(e)}), 400

    ready()
    app.run(host="127.0.0.1", port=port, threaded=True)


def docs(port: int, args: argparse.Namespace) -> None:
    import logging

    import uvicorn
    from elevenlabs import ElevenLabs
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()
    client = ElevenLabs(api_key="x")
    measured = Measured(args.trace)
    events: list[dict[str, Any]] = [json.loads(body) for body in read_prefill(args.prefill)]
    print(json.dumps(measured.done(len(events))), flush=True)

    @app.post("/webhook")
    async def receive(request: Request) -> JSONResponse:
        payload = (await request.body()).decode("utf-8")
        signature = request.headers.get("elevenlabs-signature")
        try:
            event = client.webhooks.construct_event(
                rawBody=payload,
                sig_header=signature,  # type: ignore[arg-type]
                secret=SECRET,
            )
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


CALL_SECRET = "wsec_test_bench_call_" + "ca" * 16


def bare_tool(port: int, env: dict[str, str]) -> None:
    """A bare Tornado handler answering a trivial tool, registered behind the public route as a
    receiver would be (its own route file, answering with the route's ack)."""
    import secrets as _secrets
    import time as _time

    from tornado import ioloop, web

    os.environ.update(env)
    from elwh_nb._core.protocol import ACK_HEADER, ack, new_route_id
    from elwh_nb._server import routes

    token = _secrets.token_urlsafe(24)
    route_id = new_route_id()

    class Echo(web.RequestHandler):
        def get(self) -> None:
            self.set_header(ACK_HEADER, ack(token))
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps({"word": self.get_query_argument("word", "")}))

    web.Application([(r"/webhook/tools/echo", Echo)]).listen(port, "127.0.0.1")
    live = routes.Live("127.0.0.1", port, "/webhook", os.getpid(), token)
    routes.attach(route_id, routes.Route("", 1 << 20, _time.time_ns(), receiver=live))
    print(json.dumps({"route_id": route_id}), flush=True)
    ready()
    try:
        ioloop.IOLoop.current().start()
    finally:
        routes.remove(route_id)


def kit(port: int, store: str, env: dict[str, str], args: argparse.Namespace) -> None:
    import elwh_nb

    os.environ.update(env)  # a kernel's view of its Jupyter server, for the public route
    events = elwh_nb.EventStore(store)
    measured = Measured(args.trace)
    # Batches of up to 1 MiB of bodies, committed as a receiver under load commits them:
    # little transient memory, so what stays is what the stored events keep.
    batch: list[bytes] = []
    held = 0
    for body in read_prefill(args.prefill):
        batch.append(body)
        held += len(body)
        if held >= 1 << 20:
            events.append_many(batch)
            batch, held = [], 0
    if batch:
        events.append_many(batch)
    del batch
    sizes = measured.done(len(events))
    rx = elwh_nb.start(SECRET, port=port, store=events, call_secret=CALL_SECRET)
    if args.tool:

        @rx.tool("echo", method="GET")
        def echo(word: str) -> dict[str, str]:
            """Say the word back."""
            return {"word": word}

    print(json.dumps({"url": rx.url, "local_url": rx.local_url, **sizes}), flush=True)
    ready()
    if args.watch:
        watch(rx, args.watch)
    if args.busy_for:
        busy(args.busy_after, args.busy_for)
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["ceiling", "delegate", "tutorial", "docs", "kit", "bare-tool"])
    parser.add_argument("port", type=int)
    parser.add_argument("--prefill", default=None, help="a JSON-lines file of events to store first")
    parser.add_argument("--store", default=str(Path.cwd() / "elwh_events.sqlite"))
    parser.add_argument("--env", default="{}", help="JSON of environment variables (kit)")
    parser.add_argument(
        "--trace", action="store_true", help="trace Python allocations while loading the prefill"
    )
    parser.add_argument("--watch", type=int, default=0, help="kit: read rx.events until N rows, print delays")
    parser.add_argument("--tool", action="store_true", help="kit: serve a trivial tool, echo (GET ?word=)")
    parser.add_argument("--busy-after", type=float, default=0.0)
    parser.add_argument(
        "--busy-for", type=float, default=0.0, help="kit: a CPU-bound main thread for S seconds"
    )
    args = parser.parse_args()
    if args.kind == "ceiling":
        ceiling(args.port)
    elif args.kind == "delegate":
        delegate(args.port)
    elif args.kind == "tutorial":
        tutorial(args.port, args)
    elif args.kind == "docs":
        docs(args.port, args)
    elif args.kind == "bare-tool":
        bare_tool(args.port, json.loads(args.env))
    else:
        kit(args.port, args.store, json.loads(args.env), args)
    sys.exit(0)


if __name__ == "__main__":
    main()
