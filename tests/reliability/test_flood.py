"""A stranger who knows the URL floods it: memory and the store file stay bounded, real work goes on.

The receiver runs in its own process (its memory measured from /proc), with a tool. The
stranger sends refused tool calls (no call secret) and refused webhooks (no valid signature),
each with about 60 KB of headers, as much as Tornado takes. Once, each refusal kept its whole
headers: ~58 KB of memory and ~56 KB of file apiece, up to 100,000 calls and 5,000 failures.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import elwh_nb
from testkit.processes import rss_bytes

from ..conftest import SECRET
from ..helpers import signed

pytestmark = pytest.mark.slow

LOG_BYTES = 4 * 2**20  # each log's bound here (the default is 32 MiB)
FLOOD = 1200  # of each kind, twice: 2 x 2 x 1200 x 60 KB = 288 MB sent

RECEIVER = textwrap.dedent(
    """
    import sys, elwh_nb
    store = elwh_nb.EventStore(sys.argv[1], max_log_bytes=int(sys.argv[2]))
    with elwh_nb.start(sys.argv[3], store=store, call_secret="wsec_test_call_" + "8" * 32) as rx:
        @rx.tool("echo", method="GET")
        def echo(word: str) -> dict:
            "Say it back."
            return {"word": word}
        print(rx.local_url, flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    store = tmp_path / "flood.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER, str(store), str(LOG_BYTES), SECRET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("http://")
    try:
        yield proc, url, store
    finally:
        proc.communicate("", timeout=60)


def junk_headers(i: int) -> dict[str, str]:
    """About 60 KB: as much as Tornado lets in (64 KB of headers)."""
    return {f"X-Junk-{k:02d}": f"{i:06d}" + "v" * 1000 for k in range(58)}


def file_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in store.parent.glob(store.name + "*"))


def test_a_flood_of_refused_requests_grows_memory_and_file_by_a_bound(
    receiver: tuple[subprocess.Popen[str], str, Path],
) -> None:
    proc, url, store = receiver
    with httpx.Client(timeout=30) as client:
        body, headers = signed("post_call_transcription", seed=1)
        assert client.post(url, content=body, headers=headers).status_code == 200
        assert client.get(f"{url}/tools/echo?word=hi").status_code == 401  # warm both paths
        memory, disk = rss_bytes(proc.pid), file_bytes(store)

        def stranger(i: int) -> tuple[int, int]:
            tool = client.get(f"{url}/tools/echo?word={i}", headers=junk_headers(i))
            forged = elwh_nb.sign(b'{"type": "x"}', "wsec_test_not_the_secret")
            hook = client.post(
                url, content=b'{"type": "x"}', headers={**junk_headers(i), "ElevenLabs-Signature": forged}
            )
            return tool.status_code, hook.status_code

        grown: list[tuple[int, int]] = []
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for phase in range(2):  # the second half of the flood finds both logs at their bound
                answers = set(pool.map(stranger, range(phase * FLOOD, (phase + 1) * FLOOD)))
                assert answers == {(401, 401)}
                grown.append((rss_bytes(proc.pid) - memory, file_bytes(store) - disk))
        # Real work goes on: a delivery is stored.
        body, headers = signed("post_call_transcription", seed=2)
        assert client.post(url, content=body, headers=headers).status_code == 200
    sent = FLOOD * 2 * 60_000  # in each half
    (memory_1, disk_1), (memory_2, disk_2) = grown
    more_memory, more_disk = memory_2 - memory_1, disk_2 - disk_1
    print(
        f"flood: {sent / 1e6:.0f} MB sent twice; memory +{memory_1 / 1e6:.1f} "
        f"then +{more_memory / 1e6:.1f} MB, "
        f"file +{disk_1 / 1e6:.1f} then +{more_disk / 1e6:.1f} MB"
    )
    # Both logs at their bound hold 2 x 4 MiB of text: the file holds about that, not 2 x 180 MB,
    # and the second half of the flood adds next to nothing (once, it added as much as the first).
    assert disk_2 < 6 * LOG_BYTES, f"the file grew {disk_2 / 1e6:.1f} MB"
    assert more_disk < LOG_BYTES, f"the file grew {more_disk / 1e6:.1f} MB more"
    assert more_memory < 4 * LOG_BYTES, f"memory grew {more_memory / 1e6:.1f} MB more"
    with elwh_nb.EventStore(store, readonly=True) as kept:
        calls, failures = kept.calls, kept.failures
        assert len(kept.events) == 2
        assert kept.failure_counts == {"signature_mismatch": 2 * FLOOD}  # every one counted, kept or not
        # The newest are kept, bounded: the last stranger's headers, shortened.
        assert 100 < len(calls) < FLOOD and 100 < len(failures) < FLOOD
        last = calls.headers.iloc[-1]
        assert len(last) <= 33 and all(len(v) < 300 for v in last.values())
