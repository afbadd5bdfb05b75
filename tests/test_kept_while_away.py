"""One URL for the life of a store, and nothing lost while the kernel is away.

A real `jupyter server` with the extension, real kernels started and restarted through its
REST API, deliveries from this process through the public route: what ElevenLabs meets.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import elwh_nb
from elwh_nb import ReceiverError, sign
from testkit.jupyter import JupyterServer, free_port, jupyter_server

from .conftest import OTHER_SECRET, SECRET
from .helpers import signed, wait_for
from .kernel_ws import RemoteKernel

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it

START = "import elwh_nb; rx = elwh_nb.start({secret!r}, store={store!r}); print(rx.url)"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[JupyterServer]:
    with jupyter_server(tmp_path / "jupyter") as s:
        yield s


def url_with_no_receiver(server: JupyterServer, monkeypatch: pytest.MonkeyPatch, store: Path) -> str:
    """As a kernel of ``server``: give ``store`` its URL, then stop its receiver."""
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    with elwh_nb.start(SECRET, store=store) as rx:
        return rx.url


def kernel_of(server: JupyterServer) -> RemoteKernel:
    return RemoteKernel(server.origin + server.base_url, server.auth)


def restart(server: JupyterServer, kernel: RemoteKernel) -> None:
    r = httpx.post(
        f"{server.origin}{server.base_url}api/kernels/{kernel.kernel_id}/restart",
        headers=server.auth,
        timeout=60,
    )
    r.raise_for_status()


def post(url: str, seed: int, secret: str = SECRET) -> httpx.Response:
    body, headers = signed("post_call_transcription", seed=seed, secret=secret)
    return httpx.post(url, content=body, headers=headers, timeout=30)


def request_ids(kernel: RemoteKernel) -> set[str]:
    out = kernel.run("import json; print(json.dumps(sorted(rx.events.conversation_id.dropna())))")
    return set(json.loads(out))


def conversation(seed: int) -> str:
    return str(elwh_nb.payloads(seed).make("post_call_transcription")["data"]["conversation_id"])


def test_a_kernel_restart_keeps_the_url_and_every_delivery_sent_meanwhile(
    server: JupyterServer, tmp_path: Path
) -> None:
    store = str(tmp_path / "events.sqlite")
    kernel = kernel_of(server)
    try:
        url = kernel.run(START.format(secret=SECRET, store=store)).strip()
        assert post(url, 1).status_code == 200
        restart(server, kernel)
        # While no receiver runs: signed deliveries and forged ones are all kept (the route
        # cannot verify), none gets a 4xx that ElevenLabs would never retry.
        answers = [post(url, seed) for seed in range(2, 12)]
        answers += [post(url, seed, secret=OTHER_SECRET) for seed in range(12, 15)]
        assert [a.status_code for a in answers] == [200] * 13
        assert all(a.json().get("kept") for a in answers)
        again = kernel.run(START.format(secret=SECRET, store=store)).strip()
        assert again == url  # the URL belongs to the store
        assert request_ids(kernel) == {conversation(s) for s in range(1, 12)}
        kept = kernel.run("print(int(rx.events.kept_while_away.sum()), rx.kept_while_away)").split()
        assert kept == ["10", "13"]  # 10 events, and 13 deliveries verified from the inbox
        reasons = kernel.run("print(rx.failures.reason.tolist())")
        assert reasons.count("signature_mismatch") == 3  # the forged ones end as failures
        assert "kept while" in kernel.run("print(repr(rx))")
        # Verified against the time they arrived: still accepted when the receiver comes back later.
        # The same bytes twice (a body made twice may straddle a second and differ).
        body, headers = signed("post_call_transcription", seed=20)
        first, again_20 = (httpx.post(url, content=body, headers=headers, timeout=30) for _ in range(2))
        assert first.status_code == 200 and again_20.json()["duplicate"] is True, (
            first.json(),
            again_20.json(),
        )
    finally:
        kernel.shutdown()


def test_a_delivery_kept_for_hours_is_checked_against_its_arrival(
    server: JupyterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "events.sqlite"
    url = url_with_no_receiver(server, monkeypatch, store)
    # Sent (signed) and kept two hours ago; the receiver comes back now. Against now, both
    # would be expired (the window is 30 minutes); against their arrival, they are fine.
    two_hours_ago = time.time() - 7200
    for seed in (1, 2):
        body, headers = signed("post_call_transcription", seed=seed)
        headers["ElevenLabs-Signature"] = sign(body, SECRET, timestamp=two_hours_ago)
        assert httpx.post(url, content=body, headers=headers).status_code == 200
    with sqlite3.connect(store) as db:
        db.execute("UPDATE inbox SET received_ns = received_ns - 7200 * 1000000000")
    with elwh_nb.start(SECRET, store=store) as rx:
        assert rx.url == url
        assert len(rx.events) == 2 and len(rx.failures) == 0, rx.failures.explanation.tolist()
        assert rx.events.kept_while_away.all()
        arrived = rx.events.received_at.astype("int64") / 1e9
        assert (abs(arrived - two_hours_ago) < 120).all()  # the original arrival times, not the drain's
        body, headers = signed("post_call_transcription", seed=3)
        headers["ElevenLabs-Signature"] = sign(body, SECRET, timestamp=two_hours_ago)
        assert httpx.post(url, content=body, headers=headers).status_code == 401  # live: expired


def test_kill_9_under_load_loses_no_acknowledged_delivery(server: JupyterServer, tmp_path: Path) -> None:
    store = str(tmp_path / "events.sqlite")
    kernel = kernel_of(server)
    try:
        url = kernel.run(START.format(secret=SECRET, store=store)).strip()
        pid = int(kernel.run("import os; print(os.getpid())"))
        answers: dict[int, int] = {}
        done = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=30) as client:
                seed = 100
                while not done.is_set() and seed < 100 + 3000:
                    body, headers = signed("post_call_transcription", seed=seed)
                    try:
                        answers[seed] = client.post(url, content=body, headers=headers).status_code
                    except httpx.HTTPError:
                        answers[seed] = 0
                    seed += 1

        senders = [threading.Thread(target=load) for _ in range(1)]
        for t in senders:
            t.start()
        wait_for(lambda: len(answers) >= 150, timeout=60, what="load before the kill")
        os.kill(pid, signal.SIGKILL)
        killed_at = len(answers)
        wait_for(lambda: len(answers) >= killed_at + 150, timeout=60, what="load after the kill")
        done.set()
        for t in senders:
            t.join()
        assert not [s for s in answers.values() if 400 <= s < 500]  # no answer ElevenLabs drops
        acknowledged = {conversation(seed) for seed, status in answers.items() if status == 200}
        assert len(acknowledged) > killed_at
        restart(server, kernel)  # the nanny starts a new kernel process
        wait_for(lambda: _alive(kernel), timeout=60, what="the restarted kernel")
        assert kernel.run(START.format(secret=SECRET, store=store)).strip() == url
        stored = request_ids(kernel)
        assert acknowledged <= stored, len(acknowledged - stored)
    finally:
        kernel.shutdown()


def _alive(kernel: RemoteKernel) -> bool:
    try:
        return kernel.run("print(1)", timeout=10).strip() == "1"
    except (AssertionError, TimeoutError, OSError):
        return False


def test_a_jupyter_server_restart_keeps_the_url_and_what_came_while_it_was_up(tmp_path: Path) -> None:
    root, port = tmp_path / "jupyter", free_port()
    store = str(tmp_path / "events.sqlite")
    with jupyter_server(root, port=port) as first:
        kernel = kernel_of(first)
        url = kernel.run(START.format(secret=SECRET, store=store)).strip()
        assert post(url, 1).status_code == 200
        kernel.shutdown()
    with jupyter_server(root, port=port) as second:
        # The server is back, the kernel is not: deliveries are kept.
        assert [post(url, s).status_code for s in (2, 3)] == [200, 200]
        kernel = kernel_of(second)
        try:
            assert kernel.run(START.format(secret=SECRET, store=store)).strip() == url
            assert request_ids(kernel) == {conversation(s) for s in (1, 2, 3)}
        finally:
            kernel.shutdown()


def test_a_full_inbox_answers_503_and_counts_what_it_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with jupyter_server(tmp_path / "jupyter", args=("--ElwhHook.inbox_max_deliveries=3",)) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        store = tmp_path / "events.sqlite"
        elwh_nb.start(SECRET, store=store).stop()
        with elwh_nb.EventStore(store, readonly=True) as before:
            url_id = before.route()
        assert url_id is not None
        url = f"{server.origin}{server.base_url}elwh/hook/{url_id[0]}"
        assert [post(url, s).status_code for s in range(5)] == [200, 200, 200, 503, 503]
        with elwh_nb.start(SECRET, store=store) as rx:
            assert len(rx.events) == 3 and rx.store.inbox_refused == 2
        # The 503s are in the server's log (warnings), without the URL's secret part.
        log = server.log.read_text()
        assert "503 POST" in log and "<route id>" in log and url_id[0] not in log


def test_an_unwritable_store_answers_503_and_keeps_nothing_half_done(
    server: JupyterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "events.sqlite"
    url = url_with_no_receiver(server, monkeypatch, store)
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the file
    try:
        assert post(url, 1).status_code == 503  # ElevenLabs retries a 503
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert post(url, 1).status_code == 200  # the retry
    with elwh_nb.start(SECRET, store=store) as again:
        assert len(again.events) == 1


def test_a_retired_url_answers_410_and_keeps_nothing(
    server: JupyterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "events.sqlite"
    url = url_with_no_receiver(server, monkeypatch, store)
    assert post(url, 1).status_code == 200  # kept
    rx = elwh_nb.start(SECRET, store=store)
    assert len(rx.events) == 1
    rx.retire()
    assert not rx.running
    assert post(url, 2).status_code == 410  # Gone: ElevenLabs stops, nothing is kept
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0
    with elwh_nb.start(SECRET, store=store) as fresh:
        assert fresh.url != url and fresh.url_is_new
        assert fresh.url_note is not None and "A new URL" in fresh.url_note
        assert len(fresh.events) == 1  # the events stay; only the URL ended
    unknown = url.rsplit("/", 1)[0] + "/" + "A" * 32
    assert post(unknown, 3).status_code == 404


def test_the_cli_retires_a_store_url(
    server: JupyterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "events.sqlite"
    url = url_with_no_receiver(server, monkeypatch, store)
    env = {**os.environ, **server.env()}
    done = subprocess.run(
        [sys.executable, "-m", "elwh_nb", "retire", "--store", str(store)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "410" in done.stdout and url.rsplit("/", 1)[1] not in done.stdout  # the id is never printed
    assert post(url, 1).status_code == 410


def test_one_store_has_one_live_receiver(tmp_path: Path) -> None:
    store = tmp_path / "events.sqlite"
    code = (
        f"import elwh_nb, sys; rx = elwh_nb.start({SECRET!r}, store={str(store)!r}); "
        "print('up', flush=True); sys.stdin.read()"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "JPY_SESSION_NAME": "notebooks/01_quickstart.ipynb"},  # as Jupyter sets it
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "up"
        with pytest.raises(
            elwh_nb.StoreInUseError, match=f"the kernel of notebooks/01_quickstart.ipynb, process {other.pid}"
        ) as held:
            elwh_nb.start(SECRET, store=store)
        assert isinstance(held.value, ReceiverError)
        # In a notebook: one line that says what to do, not a traceback through the kit.
        from IPython.core.interactiveshell import InteractiveShell

        shell = InteractiveShell.instance()
        shell.user_ns.update(elwh_nb=elwh_nb, SECRET=SECRET, store=str(store))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            shell.run_cell("elwh_nb.start(SECRET, store=store)")
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("StoreInUseError: ") and "rx.stop()" in lines[0], lines
        with elwh_nb.EventStore(store, readonly=True) as reader:  # reading it elsewhere is fine
            assert len(reader.events) == 0
    finally:
        assert other.stdin is not None
        other.stdin.close()
        other.wait(timeout=30)
    # The holder has gone: the lock went with it.
    with elwh_nb.start(SECRET, store=store) as rx:
        assert rx.running


def test_starting_again_in_the_same_kernel_replaces_the_earlier_receiver(tmp_path: Path) -> None:
    store = tmp_path / "events.sqlite"
    first = elwh_nb.start(SECRET, store=store)
    with pytest.warns(UserWarning, match="earlier receiver"):
        second = elwh_nb.start(SECRET, store=store)
    try:
        assert not first.running and second.running
    finally:
        second.stop()


def test_a_read_only_store_sees_rows_written_after_it_was_opened(tmp_path: Path) -> None:
    store = tmp_path / "events.sqlite"
    with elwh_nb.start(SECRET, store=store) as rx, elwh_nb.EventStore(store, readonly=True) as reader:
        assert len(reader.events) == 0
        sent = elwh_nb.send(rx.local_url, SECRET, 5, seed=3, progress=False)
        assert (sent.status == 200).all()
        assert len(reader.events) == 5 and reader.counts["events"] == 5
        assert reader.events.index.tolist() == rx.events.index.tolist()
        with pytest.raises(elwh_nb.StoreError, match="read-only"):
            reader.append(b'{"type": "x"}')


def test_the_server_side_loads_no_pandas_numpy_widgets_or_receiver() -> None:
    code = (
        "import sys, elwh_nb; elwh_nb._jupyter_server_extension_points(); import elwh_nb._server.serverext; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'numpy', 'ipywidgets', 'matplotlib') "
        "or m in ('elwh_nb._server.receiver', 'elwh_nb._core.store')); "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
