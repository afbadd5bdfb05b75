"""`make lab` from a fresh clone: JupyterLab serves the notebooks, with the public hook route loaded."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.jupyter import free_port

from .conftest import require
from .helpers import wait_for

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)  # this test's environment, which `make test` set up with the lab extra


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone of the committed HEAD, as a newcomer would have it."""
    require(shutil.which("git") is not None and shutil.which("make") is not None, "git and make", "apt-get")
    require((ROOT / ".git").exists(), "a git checkout of elwh-nb", "run the tests from a clone")
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=120)
    return target


@pytest.fixture
def lab(clone: Path, tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    require(
        (VENV / ".lab").exists(),
        "a virtual environment set up by make (with its .lab stamp)",
        "run the tests through `make test`, or `make .venv/.dev` first",
    )
    port, token = free_port(), "jt_test_" + secrets.token_hex(16)
    lab_args = f"--no-browser --port={port} --ServerApp.port_retries=0 --ServerApp.ip=127.0.0.1"
    lab_args += f" --IdentityProvider.token={token}"  # as root too: make lab gives --allow-root itself
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
    }
    log = (tmp_path / "lab.log").open("wb")
    # The environment is this one, already set up (-o: its stamp is not remade, so the
    # clone is not installed into it); everything else is what `make lab` does.
    proc = subprocess.Popen(
        ["make", "-o", f"{VENV}/.lab", "lab", f"VENV={VENV}", f"LAB_ARGS={lab_args}"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: make and JupyterLab stop together
    )
    base = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"make lab exited:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
        try:
            return httpx.get(f"{base}api/status", params={"token": token}, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=120, what="make lab's JupyterLab")
        yield base, token, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.mark.slow
def test_make_lab_serves_the_quickstart_with_the_public_route(
    lab: tuple[str, str, subprocess.Popen[bytes]],
) -> None:
    base, token, _ = lab
    r = httpx.get(f"{base}api/contents/notebooks/01_quickstart.ipynb", params={"token": token}, timeout=30)
    assert r.status_code == 200
    notebook = r.json()
    assert notebook["type"] == "notebook"
    assert "Quickstart" in notebook["content"]["cells"][0]["source"]
    # JupyterLab itself (not a bare Jupyter server) answers.
    assert httpx.get(f"{base}lab", params={"token": token}, timeout=30).status_code == 200
    # The public hook route is loaded: an unknown id gets its short JSON 404, with no token.
    hook = httpx.post(f"{base}elwh/hook/{secrets.token_urlsafe(24)}", content=b"{}", timeout=30)
    assert hook.status_code == 404 and hook.json() == {"ok": False, "status": 404}
