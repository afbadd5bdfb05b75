"""Command line: ``elwh-nb demo``, ``serve``, ``send URL``, ``sign``, ``retire``, ``export``
(``python -m elwh_nb``).

Secrets are read from an environment variable (``--secret-env``, default
ELWH_WEBHOOK_SECRET), never from the command line, where other users and shell
history could see them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_SECRET_ENV = "ELWH_WEBHOOK_SECRET"


def _secret(
    name: str,
    what: str = "the webhook secret (from the ElevenLabs webhook settings)",
    flag: str = "--secret-env",
) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(
            f"elwh-nb: set {what} in the environment variable {name}, or name another with {flag}"
        )
    return value


def _faults(spec: str | None) -> Any:
    """'0.2' (a share), 'tampered,expired' (one each) or 'tampered=3,duplicate=2'."""
    if not spec:
        return None
    try:
        return float(spec)
    except ValueError:
        pass
    counts: dict[str, int] = {}
    for part in spec.split(","):
        name, _, n = part.strip().partition("=")
        counts[name] = counts.get(name, 0) + (int(n) if n else 1)
    return counts


def _serve(args: argparse.Namespace) -> int:
    from .._server.receiver import start

    rx = start(
        _secret(args.secret_env),
        port=args.port,
        host=args.host,
        path=args.path,
        store=args.store,
        public_url=args.public_url,
    )
    print(f"elwh-nb receiver listening on {rx.local_url} (store: {rx.store.path or 'memory'})", flush=True)
    print("Ctrl-C to stop. Each event and each rejected delivery is printed as it arrives.", flush=True)
    seen_events = len(rx.events)
    seen_failures = rx.store.counts["failures"]
    try:
        while True:
            changes = rx.store.changes
            events = rx.events
            for event_id, row in events.iloc[seen_events:].iterrows():
                ident = row.conversation_id or row.request_id or row.voice_id or "-"
                print(f"{row.received_at:%H:%M:%S} event #{event_id} {row.event_type} {ident}", flush=True)
            seen_events = len(events)
            total = rx.store.counts["failures"]
            if total > seen_failures:
                for _, row in rx.failures.tail(min(total - seen_failures, len(rx.failures))).iterrows():
                    when = f"{row.received_at:%H:%M:%S}"
                    print(f"{when} rejected {row.status} {row.reason}: {row.explanation[:160]}", flush=True)
                seen_failures = total
            while rx.store.changes == changes:
                time.sleep(0.1)  # an idle console loop, not synchronisation
    except KeyboardInterrupt:
        print(f"\nstopped: {rx.store.counts}", flush=True)
    finally:
        rx.stop()
    return 0


def _call(args: argparse.Namespace) -> int:
    """``send --tool`` / ``send --call-start``: one call as ElevenLabs makes it; prints the answer."""
    from .._core.exceptions import CallError
    from .._core.tools import BODY_METHODS, FORM, JSON
    from .._server.caller import call, call_start

    secret = _secret(args.call_secret_env, "the call secret (rx.call_secret())", "--call-secret-env")
    base = args.url.rstrip("/")
    try:
        if args.call_start:
            fields = json.loads(args.params or "{}")
            answer = call_start(f"{base}/initiation", secret=secret, **fields)
        else:
            params = json.loads(args.params or "{}")
            method = args.method.upper()
            in_body = method in BODY_METHODS
            answer = call(
                method,
                f"{base}/tools/{args.tool}",
                secret=secret,
                query=None if in_body else params,
                body=params if in_body else None,
                content_type=FORM if args.form else JSON,
            )
    except CallError as exc:
        print(f"error {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0


def _send(args: argparse.Namespace) -> int:
    if args.tool or args.call_start:
        return _call(args)
    from .._server.sender import send

    types = args.types.split(",") if args.types else None
    headers = {}
    if args.token_env:
        headers["Authorization"] = f"token {_secret(args.token_env)}"
    result = send(
        args.url,
        _secret(args.secret_env),
        args.events,
        faults=_faults(args.faults),
        concurrency=args.concurrency,
        types=types,
        headers=headers,
        seed=args.seed,
        strict=args.strict,
    )
    summary = result.groupby(["fault", "status"], dropna=False).size().rename("answers").reset_index()
    print(summary.to_string(index=False))
    verdicts = result.groupby("seq").ok.last()  # a delivery retried until it got through is right
    rule = (
        "the kit's exact status codes"
        if args.strict
        else "as ElevenLabs treats answers: 200 accepted, other 4xx refused, 5xx/429/408 retried"
    )
    print(f"{int(verdicts.sum())} of {len(verdicts)} answered as a correct receiver would ({rule})")
    return 0 if verdicts.all() else 1


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    run(args.events, store=args.store, seed=args.seed).close()
    return 0


def _retire(args: argparse.Namespace) -> int:
    from .._core.exceptions import ElwhError
    from .._core.store import EventStore
    from .._server import claim as _claim
    from .._server.receiver import retire_url

    try:
        with EventStore(args.store) as store:
            held = _claim.claim(store.path)
            try:
                had = retire_url(store)
            finally:
                held.release()
    except ElwhError as exc:
        print(f"elwh-nb: {exc}", file=sys.stderr)
        return 1
    if had:
        print(f"Retired the URL of {args.store}: it answers 410 Gone from now on and keeps nothing.")
    else:
        print(f"{args.store} has no URL to retire.")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from .._core import curl
    from .._core.signature import sign

    secret = _secret(args.secret_env)
    from_stdin = args.file == "-"
    try:
        body = sys.stdin.buffer.read() if from_stdin else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"elwh-nb: cannot read the body: {exc}", file=sys.stderr)
        return 1
    header = sign(body, secret, args.timestamp)
    if args.curl is None:
        print(header)
        return 0
    if not from_stdin:
        print(curl.command(args.curl, header, body_path=args.file))
    elif curl.inline(body):
        print(curl.command(args.curl, header, body))
    else:
        print("elwh-nb: this body cannot go on a command line: pass it as a file", file=sys.stderr)
        return 1
    return 0


def _export(args: argparse.Namespace) -> int:
    from .._core.exceptions import ElwhError
    from .._core.history import describe
    from .._core.store import EventStore

    try:
        with EventStore(args.store, readonly=True) as store:  # a receiver may go on writing to it
            done = store.export_parquet(args.parquet)
    except ElwhError as exc:
        print(f"elwh-nb: {exc}", file=sys.stderr)
        return 1
    print(describe(done))
    return 0


def _hub_service(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._core.exceptions import ElwhError
    from .._server.hubservice import run

    try:
        return run(args.webhook, data_dir=Path(args.data_dir), host=args.host, port=args.port)
    except ElwhError as exc:
        print(f"elwh-nb: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="elwh-nb", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="receive a realistic burst over HTTP, print the tables")
    demo.add_argument(
        "--events", type=int, default=200, help="clean deliveries besides the faults (default 200)"
    )
    demo.add_argument("--store", default=None, help="SQLite file (default ./elwh_events.sqlite) or :memory:")
    demo.add_argument("--seed", type=int, default=None, help="seed for the payload factory")
    demo.set_defaults(run=_demo)

    serve = sub.add_parser("serve", help="a standalone receiver that prints each event as it arrives")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default loopback only)")
    serve.add_argument("--path", default="/webhook")
    serve.add_argument("--store", default=None, help="SQLite file (default ./elwh_events.sqlite) or :memory:")
    serve.add_argument("--public-url", default=None, help="the origin ElevenLabs reaches you at")
    serve.add_argument(
        "--secret-env",
        default=DEFAULT_SECRET_ENV,
        help=f"variable holding the secret (default {DEFAULT_SECRET_ENV})",
    )
    serve.set_defaults(run=_serve)

    send = sub.add_parser("send", help="play ElevenLabs: POST signed deliveries to a URL")
    send.add_argument("url")
    send.add_argument("--events", type=int, default=20)
    send.add_argument("--faults", default=None, help="'0.2', 'tampered,expired' or 'tampered=3,duplicate=2'")
    send.add_argument("--types", default=None, help="comma-separated event types (default: a realistic mix)")
    send.add_argument("--concurrency", type=int, default=8)
    send.add_argument("--seed", type=int, default=None)
    send.add_argument(
        "--secret-env",
        default=DEFAULT_SECRET_ENV,
        help=f"variable holding the secret (default {DEFAULT_SECRET_ENV})",
    )
    send.add_argument("--token-env", default=None, help="variable holding a Jupyter token, for a /proxy/ URL")
    send.add_argument(
        "--strict",
        action="store_true",
        help="want this kit's exact status codes, not just answers ElevenLabs treats alike",
    )
    calls = send.add_argument_group(
        "agent tools and call starts",
        "one call as ElevenLabs makes it, to URL/tools/NAME or URL/initiation (URL: the receiver's rx.url)",
    )
    calls.add_argument("--tool", default=None, help="call this tool (NAME, or NAME/<path params>)")
    calls.add_argument("--call-start", action="store_true", help="ask for a call's personalisation")
    calls.add_argument("--params", default=None, help='JSON: the parameters, e.g. \'{"order_id": "A1"}\'')
    calls.add_argument(
        "--method", default="POST", help="the tool's method (GET and DELETE: parameters in the query)"
    )
    calls.add_argument("--form", action="store_true", help="send the body form-encoded, not JSON")
    calls.add_argument(
        "--call-secret-env",
        default="ELWH_CALL_SECRET",
        help="variable holding the X-Callback-Secret value (default ELWH_CALL_SECRET)",
    )
    send.set_defaults(run=_send)

    sign = sub.add_parser(
        "sign",
        help="sign a body as ElevenLabs would: print its ElevenLabs-Signature header (or a curl command)",
        description=(
            "Reads the body from FILE (or stdin) and the secret from the environment; prints the "
            'header value, e.g. curl ... -H "ElevenLabs-Signature: $(elwh-nb sign body.json)" '
            "--data-binary @body.json, or with --curl URL the whole command."
        ),
    )
    sign.add_argument("file", nargs="?", default="-", help="the body, byte for byte (default: stdin)")
    sign.add_argument("--curl", metavar="URL", default=None, help="print a curl command that POSTs it to URL")
    sign.add_argument("--timestamp", type=int, default=None, help="unix seconds to sign at (default: now)")
    sign.add_argument(
        "--secret-env",
        default=DEFAULT_SECRET_ENV,
        help=f"variable holding the secret (default {DEFAULT_SECRET_ENV})",
    )
    sign.set_defaults(run=_sign)

    retire = sub.add_parser("retire", help="end a store's webhook URL for good (it then answers 410 Gone)")
    retire.add_argument("--store", required=True, help="the store file whose URL ends")
    retire.set_defaults(run=_retire)

    export = sub.add_parser(
        "export", help="append a store's new events to a Parquet directory, by day (for DuckDB, Dask)"
    )
    export.add_argument("--parquet", required=True, metavar="DIR", help="the directory (made if missing)")
    export.add_argument("--store", required=True, help="the store file to read (not changed)")
    export.set_defaults(run=_export)

    hub = sub.add_parser(
        "hub-service", help="the receiver as a JupyterHub-managed service, for a team's webhooks"
    )
    hub.add_argument(
        "--webhook",
        action="append",
        default=[],
        help="a webhook's name (repeat for more); its secret is in ELWH_SECRET_<NAME>",
    )
    hub.add_argument("--data-dir", default="elwh-hub-data", help="where the stores live (one per webhook)")
    hub.add_argument("--host", default=None, help="default: from JUPYTERHUB_SERVICE_URL")
    hub.add_argument("--port", type=int, default=None, help="default: from JUPYTERHUB_SERVICE_URL")
    hub.set_defaults(run=_hub_service)

    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
