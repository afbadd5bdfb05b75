"""The route registry's platform-sensitive parts: process checks and private files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from elwh_nb._core.protocol import new_route_id
from elwh_nb._server import routes as _routes


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))


def test_pid_alive_sends_no_signal_and_tells_the_living_from_the_dead() -> None:
    # os.kill(pid, 0) would be a console Ctrl-C on Windows; psutil asks the system instead.
    assert _routes.pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not _routes.pid_alive(child.pid)


def test_route_files_are_private_and_replaced_whole(tmp_path: Path) -> None:
    route_id = new_route_id()
    live = _routes.Live("127.0.0.1", 8765, "/webhook", os.getpid(), "t" * 32)
    path = _routes.write(route_id, _routes.Route("/x.sqlite", 100, 1, receiver=live))
    assert path.parent == tmp_path / "data" / "elwh_nb" / "routes"
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
    assert _routes.lookup(route_id) == _routes.Route("/x.sqlite", 100, 1, receiver=live)
    _routes.detach(route_id, pid=os.getpid() + 1)  # another process's stop does not detach this one
    assert _routes.lookup(route_id).receiver == live  # type: ignore[union-attr]
    _routes.detach(route_id, pid=os.getpid())
    assert _routes.lookup(route_id) == _routes.Route("/x.sqlite", 100, 1)
    _routes.retire(route_id)
    assert _routes.lookup(route_id) == _routes.Route("/x.sqlite", 100, 1, retired=True)
    assert [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")] == [
        path.name
    ]  # no temp file


def test_a_server_marker_is_believed_only_while_its_process_lives() -> None:
    _routes.mark_server(os.getpid())
    assert _routes.server_has_route(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    _routes.mark_server(child.pid)
    assert not _routes.server_has_route(child.pid)


def test_a_server_marker_holds_only_what_receivers_read() -> None:
    # Receivers read whether it exists (with its process alive) and the hook-only port; nothing else.
    path = _routes.mark_server(os.getpid(), hook_port=9888)
    assert json.loads(path.read_text()) == {"hook_port": 9888}
    assert _routes.server_has_route(os.getpid()) and _routes.server_hook_port(os.getpid()) == 9888
    _routes.mark_server(os.getpid())
    assert json.loads(path.read_text()) == {"hook_port": None}
    assert _routes.server_has_route(os.getpid()) and _routes.server_hook_port(os.getpid()) is None
    _routes.unmark_server(os.getpid())
    assert not path.exists() and not _routes.server_has_route(os.getpid())
