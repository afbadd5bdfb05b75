"""Secrets stay where they belong.

A full quickstart session runs in a kernel of a real Jupyter server (so the public hook
route and its route files exist), and everything it leaves behind is searched for the
webhook secret and for credentials sent to the public route. Those credentials (an
``Authorization`` header, a cookie) never even reach the receiver.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest

import elwh_nb
from elwh_nb import EventStore
from testkit.jupyter import JupyterServer, jupyter_server

from ..conftest import SECRET
from ..kernel_ws import RemoteKernel

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it

ROOT = Path(__file__).resolve().parents[2]
COOKIE = "sid=ck_" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ELWH_WEBHOOK_SECRET", SECRET)  # its kernels inherit it, as from a real shell
        with jupyter_server(tmp_path_factory.mktemp("jupyter")) as s:
            yield s


def as_a_kernel_of(server: JupyterServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ELWH_PUBLIC_URL", raising=False)


def files_under(*roots: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for root in roots if root.exists() for p in root.rglob("*") if p.is_file()}


def test_credentials_sent_to_the_public_route_never_reach_the_receiver(
    server: JupyterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_a_kernel_of(server, monkeypatch)
    credentials = {"Authorization": f"token {server.token}", "Cookie": COOKIE}
    with elwh_nb.start(SECRET, store=":memory:") as rx:
        assert rx.public_url is not None
        assert httpx.post(rx.public_url, content=b"{}", headers=credentials).status_code == 401
        arrived = rx.failures.headers.iloc[-1]
        # Sent straight to the receiver, the same headers arrive (redacted): the check can fail.
        httpx.post(rx.local_url, content=b"{}", headers=credentials)
        direct = rx.failures.headers.iloc[-1]
    assert rx.failures.reason.tolist() == ["missing_header", "missing_header"]
    assert {k.lower() for k in direct} >= {"authorization", "cookie"}
    assert not {k.lower() for k in arrived} & {"authorization", "cookie"}, arrived  # not even redacted
    assert server.token not in json.dumps(arrived) and COOKIE not in json.dumps(arrived)


def test_a_quickstart_session_leaves_the_secret_nowhere(server: JupyterServer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(ROOT / "notebooks" / "01_quickstart.ipynb", as_version=4)
    cells = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    assert "rx.stop()" not in cells[-1]  # Run All leaves the receiver live; the user stops it
    kit_routes = server.data / "elwh_nb" / "routes"
    kernel = RemoteKernel(server.origin + server.base_url, server.auth)  # a kernel of this server
    try:
        kernel.run(f"import os; os.chdir({str(work)!r})")
        for source in cells:
            kernel.run(source)
        # Everything the widgets hold, as a notebook saving its widget state would keep it.
        kernel.run(
            "import ipywidgets, json; print(json.dumps(ipywidgets.Widget.get_manager_state(), default=str))"
        )
        # The receiver is live: its route file exists. Send credentials through its route.
        (route,) = kit_routes.glob("*.json")
        url = f"{server.origin}{server.base_url}elwh/hook/{route.stem}"
        r = httpx.post(
            url, content=b"{}", headers={"Authorization": f"token {server.token}", "Cookie": COOKIE}
        )
        assert r.status_code == 401
        while_running = files_under(work, server.runtime, server.data)
        kernel.run("rx.stop()")  # in a cell of the user's own, as the notebook says
    finally:
        kernel.shutdown()
    transcript = "".join(kernel.transcript)
    assert "events so far" in transcript  # it really ran
    assert f"Give ElevenLabs this URL: {url}" in transcript  # the public route
    assert "application/vnd.jupyter.widget-view+json" in transcript and '"state"' in transcript

    leftovers = {
        **while_running,
        **files_under(work, server.runtime, server.data),
        "kernel output": transcript.encode(),
    }
    assert str(route) in leftovers  # the route file is searched
    assert any(name.endswith("elwh_events.sqlite") for name in leftovers)  # the store file too
    for name, data in leftovers.items():
        text = data.decode("latin-1")
        assert SECRET not in text and SECRET[5:] not in text, name
        assert COOKIE not in text, name
        if not name.startswith(str(server.runtime)):
            assert server.token not in text, name  # Jupyter's own runtime files hold its token
    with EventStore(work / "elwh_events.sqlite") as store:  # what the route let through, on disk
        last = store.failures.iloc[-1]
    assert last.reason == "missing_header"
    assert not {k.lower() for k in last.headers} & {"authorization", "cookie"}
