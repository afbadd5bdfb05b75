"""The command line: demo, serve and send, with the secret only ever read from the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

import elwh_nb
from elwh_nb import EventStore
from elwh_nb._cli.main import _faults
from testkit.jupyter import free_port

from .conftest import SECRET


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elwh_nb", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_on_the_default_store(tmp_path: Path) -> None:
    out = run_cli("demo", "--events", "60", "--seed", "3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "every answer as expected: True" in text
    assert (
        "store now holds 60 events (60 new, 4 repeat deliveries folded in) and 10 rejected deliveries" in text
    )
    for reason in ("signature_mismatch", "timestamp_expired", "malformed_header", "body_too_large"):
        assert reason in text
    assert "Timings:" in text and "round trip of an accepted delivery" in text
    assert "wsec_test_" not in text + out.stderr  # the demo's own secret is never shown
    with EventStore(tmp_path / "elwh_events.sqlite") as store:
        assert store.counts["events"] == 60 and store.counts["failures"] == 10
        # What is inside each call, from the derived frames: conversations, waits by agent, tools.
        assert f"Inside the calls ({len(store.conversations)} conversations, {len(store.turns)} turns" in text
        waits = store.turns.wait_s.dropna()
        assert len(waits) > 0 and "Where callers wait" in text and "Tool calls" in text
    again = run_cli("demo", "--events", "10", cwd=tmp_path)
    assert "store now holds 70 events (10 new" in again.stdout


def test_serve_prints_events_and_rejections_as_they_arrive(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "elwh_nb", "serve", "--port", str(port), "--store", ":memory:"],
        env={**os.environ, "ELWH_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        first = proc.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}/webhook" in first
        sent = elwh_nb.send(f"http://127.0.0.1:{port}/webhook", SECRET, 4, faults={"tampered": 1}, seed=2)
        assert sent.ok.all()
        while sum("event #" in line for line in lines) < 3 or not any(
            " rejected 4" in line for line in lines
        ):
            line = proc.stdout.readline()
            assert line, "serve stopped printing"
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert any("rejected 401 signature_mismatch" in line for line in lines), lines
    assert "stopped:" in out
    assert SECRET not in "".join(lines) + out + err


def test_serve_without_a_secret_says_where_to_put_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ELWH_WEBHOOK_SECRET"}
    out = subprocess.run(
        [sys.executable, "-m", "elwh_nb", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert "ELWH_WEBHOOK_SECRET" in out.stderr


def test_send_against_a_receiver(tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=":memory:") as rx:
        out = run_cli(
            "send",
            rx.local_url,
            "--events",
            "6",
            "--faults",
            "tampered,expired=2",
            "--secret-env",
            "MY_SECRET",
            env={"MY_SECRET": SECRET},
        )
        assert out.returncode == 0, out.stderr
        assert "6 of 6 answered as a correct receiver would" in out.stdout
        assert rx.store.counts == {"events": 3, "deliveries": 3, "duplicates": 0, "failures": 3}
    assert SECRET not in out.stdout + out.stderr


def test_send_calls_tools_and_call_starts(tmp_path: Path) -> None:
    import json

    call_secret = "wsec_test_call_" + "5" * 32
    with elwh_nb.start(SECRET, store=":memory:", call_secret=call_secret) as rx:

        @rx.tool("get_order", method="GET", path="{order_id}")
        def get_order(order_id: str, include_items: bool = False) -> dict[str, object]:
            """Look up an order."""
            return {"order_id": order_id, "items": include_items}

        @rx.initiation
        def greet(caller_id: str) -> dict[str, str]:
            return {"caller": caller_id}

        env = {"ELWH_CALL_SECRET": call_secret}
        params = '{"include_items": true}'
        out = run_cli(
            "send", rx.local_url, "--tool", "get_order/A1", "--method", "GET", "--params", params, env=env
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"order_id": "A1", "items": True}
        out = run_cli("send", rx.local_url, "--call-start", "--params", '{"caller_id": "+1555"}', env=env)
        assert json.loads(out.stdout)["dynamic_variables"] == {"caller": "+1555"}
        wrong = run_cli(
            "send", rx.local_url, "--tool", "get_order/A1", "--method", "GET", env={"ELWH_CALL_SECRET": "no"}
        )
        assert wrong.returncode == 1 and "error 401" in wrong.stderr
        assert [int(s) for s in rx.calls.status] == [200, 200, 401]
    assert call_secret not in out.stdout + out.stderr + wrong.stdout + wrong.stderr


def test_send_exit_code_says_when_answers_were_wrong(tmp_path: Path) -> None:
    other = "wsec_test_" + "9" * 64
    with elwh_nb.start(other, store=":memory:") as rx:  # a receiver with another secret
        out = run_cli("send", rx.local_url, "--events", "2", env={"ELWH_WEBHOOK_SECRET": SECRET})
    assert out.returncode == 1 and "0 of 2" in out.stdout


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, None),
        ("0.25", 0.25),
        ("tampered", {"tampered": 1}),
        ("tampered=3,duplicate", {"tampered": 3, "duplicate": 1}),
    ],
)
def test_fault_spec(spec: str | None, expected: object) -> None:
    assert _faults(spec) == expected


def test_cli_needs_a_command() -> None:
    from elwh_nb._cli.main import main

    with pytest.raises(SystemExit):
        main([])


def test_send_is_usable_from_a_thread() -> None:
    # A notebook's main thread has a running event loop; send() must not need it.
    with elwh_nb.start(SECRET, store=":memory:") as rx:
        box: list[object] = []
        t = threading.Thread(target=lambda: box.append(elwh_nb.send(rx.local_url, SECRET, 3)))
        t.start()
        t.join(60)
        assert len(box) == 1 and len(rx.events) == 3


def test_send_judges_by_what_elevenlabs_does_and_exactly_with_strict() -> None:
    from .test_sender import DocsReceiver

    server = ThreadingHTTPServer(("127.0.0.1", 0), DocsReceiver)  # 401 for every signature problem
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
    try:
        args = ("send", url, "--events", "4", "--faults", "malformed_header,tampered")
        out = run_cli(*args, env={"ELWH_WEBHOOK_SECRET": SECRET})
        strict = run_cli(*args, "--strict", env={"ELWH_WEBHOOK_SECRET": SECRET})
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 of 4 answered as a correct receiver would" in out.stdout
    assert strict.returncode == 1 and "3 of 4 answered" in strict.stdout and "exact" in strict.stdout


def test_send_counts_a_retried_delivery_that_got_through_as_right() -> None:
    with elwh_nb.start(SECRET, store=":memory:") as rx:
        rx.simulate_outage(2)
        out = run_cli(
            "send", rx.local_url, "--events", "1", "--types", "post_call_transcription", "--strict",
            env={"ELWH_WEBHOOK_SECRET": SECRET},
        )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 of 1 answered as a correct receiver would" in out.stdout
