"""A two-hour call's post_call_audio (160 MB, chunked) through a real Jupyter server to a kernel.

Measures the peak resident memory each process adds while it carries the body (Linux:
VmHWM after resetting it through /proc/<pid>/clear_refs), live and kept while away,
and prints the figures (the note and README quote them); the bounds are loose, so the
test never flakes on timing or allocator noise, but fail if a process holds several
copies of the body.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import elwh_nb
from elwh_nb import sign
from testkit.jupyter import jupyter_server

from .conftest import SECRET
from .kernel_ws import RemoteKernel

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

MB = 1_000_000
AUDIO = 120 * MB  # 120 MB of MP3 is 160 MB of base64: about two hours of call audio


def peak_reset(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


@pytest.fixture(scope="module")
def body() -> bytes:
    event = elwh_nb.payloads(5).post_call_audio(audio_bytes=AUDIO)
    raw = json.dumps(event, separators=(",", ":")).encode()
    assert len(raw) > 160 * MB
    return raw


def chunks(raw: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    view = memoryview(raw)
    for start in range(0, len(raw), size):
        yield bytes(view[start : start + size])


def deliver(url: str, raw: bytes) -> httpx.Response:
    headers = {"ElevenLabs-Signature": sign(raw, SECRET), "Content-Type": "application/json"}
    return httpx.post(url, content=chunks(raw), headers=headers, timeout=300)  # chunked: no length


def test_a_160_mb_chunked_audio_body_is_carried_with_bounded_memory(
    tmp_path: Path, body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    size = len(body)
    with jupyter_server(tmp_path / "jupyter") as server:
        kernel = RemoteKernel(server.origin + server.base_url, server.auth)
        try:
            store = str(tmp_path / "events.sqlite")
            url = kernel.run(
                f"import elwh_nb, os; rx = elwh_nb.start({SECRET!r}, store={store!r}); print(rx.url)"
            ).strip()
            kernel_pid = int(kernel.run("print(os.getpid())"))
            figures = {}
            for phase in ("live", "kept while away"):
                if phase == "kept while away":
                    kernel.run("rx.stop()")
                kernel_rss, server_rss = status(kernel_pid, "VmRSS"), status(server.pid, "VmRSS")
                peak_reset(kernel_pid)
                peak_reset(server.pid)
                answer = deliver(url, body)
                assert answer.status_code == 200, answer.text
                if phase == "kept while away":
                    assert answer.json().get("kept") is True
                    kernel.run(f"rx = elwh_nb.start({SECRET!r}, store={store!r})")
                    assert kernel.run("print(rx.kept_while_away)").strip() == "1"
                else:
                    assert kernel.run("print(len(rx.events))").strip() == "1"
                figures[phase] = (
                    (status(server.pid, "VmHWM") - server_rss) / size,
                    (status(kernel_pid, "VmHWM") - kernel_rss) / size,
                )
            assert kernel.run("print(rx.events.body_bytes.iloc[0])").strip() == str(size)
        finally:
            kernel.shutdown()
    with capsys.disabled():
        for phase, (server_x, kernel_x) in figures.items():
            print(
                f"\n{size / MB:.0f} MB chunked post_call_audio, {phase}: peak RSS added "
                f"server {server_x:.2f}x the body, kernel {kernel_x:.2f}x"
            )
    server_live, kernel_live = figures["live"]
    server_kept, kernel_kept = figures["kept while away"]
    assert server_live < 1.5 and server_kept < 1.5  # the route holds a body once
    assert kernel_live < 5 and kernel_kept < 5  # the raw body, plus the text and strings JSON parsing makes


def test_the_default_cap_takes_a_two_hour_call() -> None:
    from elwh_nb._core.protocol import DEFAULT_MAX_BODY

    assert DEFAULT_MAX_BODY >= 2 * 60 * MB * 4 // 3  # two hours at 1 MB of MP3 a minute, in base64
