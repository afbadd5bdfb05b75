"""Signing from a terminal and "copy as curl": the commands run by a real shell and curl, against a
real receiver."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import elwh_nb
from elwh_nb import verify

from . import real_calls
from .conftest import SECRET

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None and not os.environ.get("CI"), reason="curl is not installed"
)


def cli(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "elwh_nb", *args],
        input=stdin,
        cwd=cwd,
        env={**os.environ, "ELWH_WEBHOOK_SECRET": SECRET, **(env or {})},
        capture_output=True,
        timeout=120,
    )


def shell(command: str, cwd: Path) -> dict:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer: dict = json.loads(done.stdout)
    return answer


def test_elwh_nb_sign_prints_a_header_that_verifies(tmp_path: Path) -> None:
    body = real_calls.body(real_calls.transcription())  # Python's json.dumps bytes, as real ones come
    (tmp_path / "body.json").write_bytes(body)
    for args, stdin in ((("sign", str(tmp_path / "body.json")), None), (("sign",), body)):
        out = cli(*args, stdin=stdin)
        assert out.returncode == 0, out.stderr
        header = out.stdout.decode().strip()
        assert header.startswith("t=") and verify(body, header, SECRET)["type"] == "post_call_transcription"
        assert SECRET.encode() not in out.stdout + out.stderr
    at = cli("sign", "--timestamp", "1700000000", str(tmp_path / "body.json")).stdout.decode()
    assert at.startswith("t=1700000000,v0=")
    missing = cli("sign", str(tmp_path / "body.json"), env={"ELWH_WEBHOOK_SECRET": ""})
    assert missing.returncode != 0 and b"ELWH_WEBHOOK_SECRET" in missing.stderr


def test_a_signed_curl_command_delivers_byte_for_byte(rx: elwh_nb.Receiver, tmp_path: Path) -> None:
    body = real_calls.body(real_calls.transcription())
    (tmp_path / "body.json").write_bytes(body)
    out = cli("sign", "--curl", rx.local_url, "body.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    command = out.stdout.decode()
    assert "--data-binary @body.json" in command and SECRET not in command
    answer = shell(command, tmp_path)
    assert answer["ok"] is True and rx.store.raw_body(answer["id"]) == body


def test_rx_curl_replays_a_stored_event_from_a_shell(rx: elwh_nb.Receiver, tmp_path: Path) -> None:
    event = real_calls.transcription()
    event["data"]["transcript"][0]["message"] = "It's \"odd\" — isn't it?\n$(rm -rf /) `id` \\ done"
    body = real_calls.body(event)
    stored = rx.store.append(body)
    command = rx.curl(stored.id)
    assert repr(command) == str(command) and command.startswith("curl -sS -X POST ")  # shows as itself
    assert SECRET not in command and "--data-binary '" in command  # short: inline
    answer = shell(command.replace(rx.url, rx.local_url), tmp_path)
    assert answer["duplicate"] is True and answer["id"] == stored.id  # the same bytes came back
    assert rx.store.counts["deliveries"] == 2


def test_rx_curl_sends_a_long_body_from_a_file(rx: elwh_nb.Receiver, tmp_path: Path) -> None:
    factory = elwh_nb.payloads(3)
    body = factory.body(factory.post_call_audio(audio_bytes=200_000))
    stored = rx.store.append(body)
    command = rx.curl(stored.id, url=rx.local_url, directory=tmp_path)
    saved = tmp_path / f"elwh_event_{stored.id}.json"
    assert f"--data-binary @{saved}" in command and saved.read_bytes() == body
    assert shell(command, tmp_path)["duplicate"] is True


def test_the_dashboard_copies_the_selected_event_as_curl(
    rx: elwh_nb.Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a long body is saved beside the notebook: here
    rx.simulate(3, via="direct")
    dash = rx.dashboard(autorefresh=False)
    try:
        dash.actions.curl_selected()
        assert "pick an accepted event" in dash.message.value
        dash.pick.value = dash.pick.options[0][1]
        dash.actions.curl_selected()
        assert "curl -sS -X POST" in dash.message.value and rx.url in dash.message.value
        assert SECRET not in dash.message.value
    finally:
        dash.close()
