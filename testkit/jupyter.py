"""A real `jupyter server` subprocess for tests and benchmarks, with its own runtime, config, data dirs."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .processes import free_port, stop_process, wait_for


@dataclass
class JupyterServer:
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    base_url: str
    runtime: Path
    log: Path
    data: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def env(self) -> dict[str, str]:
        """What a kernel of this server would have in its environment."""
        return {
            "JUPYTER_RUNTIME_DIR": str(self.runtime),
            "JUPYTER_DATA_DIR": str(self.data),
            "JPY_PARENT_PID": str(self.proc.pid),
        }

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextmanager
def jupyter_server(
    root: Path,
    *,
    base_url: str = "/jbase/",
    elwh_extension: bool = True,
    port: int | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    app: str = "jupyter_server",
    timeout: float = 60,
) -> Iterator[JupyterServer]:
    """A server on ``root`` (its runtime, config and data directories live there, so a second
    server on the same root and ``port`` is the same server restarted).

    ``app`` is the module run: ``jupyter_server``, or ``jupyterlab`` for the browser tests.
    """
    root.mkdir(parents=True, exist_ok=True)
    runtime, config = root / "runtime", root / "config"
    config.mkdir(exist_ok=True)
    if not elwh_extension:  # a user-level setting that turns the installed extension off
        (config / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"elwh_nb": False}}})
        )
    port = port or free_port()
    token = "jt_test_" + secrets.token_hex(16)
    log = root / "server.log"
    env = {
        **os.environ,
        **(env or {}),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(root / "data"),
    }
    env.pop("JPY_PARENT_PID", None)
    cmd = [
        sys.executable,
        "-m",
        app,
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.base_url={base_url}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        *args,
    ]
    if os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT)
    server = JupyterServer(proc, port, token, base_url, runtime, log, root / "data")

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{app} exited:\n{log.read_text()[-3000:]}")
        try:
            return (
                httpx.get(f"{server.origin}{base_url}api/status", headers=server.auth, timeout=2).status_code
                == 200
            )
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=timeout, what=app)
        if elwh_extension:
            marker = runtime / "elwh_nb" / "servers" / f"{proc.pid}.json"
            wait_for(marker.exists, timeout=10, what="the elwh_nb extension to load")
        yield server
    finally:
        stop_process(proc)
