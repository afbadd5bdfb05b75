"""Small helpers shared by the HTTP tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

from elwh_nb import payloads, sign

from .conftest import SECRET


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def signed(
    event_type: str = "post_call_transcription", seed: int = 0, secret: str = SECRET, **kw: object
) -> tuple[bytes, dict[str, str]]:
    """A realistic body and the headers ElevenLabs would send with it."""
    factory = payloads(seed)
    body = factory.body(factory.make(event_type, **kw))
    return body, {"ElevenLabs-Signature": sign(body, secret), "Content-Type": "application/json"}


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Terminate a server process, and kill it if it does not go."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
