"""A real JupyterHub (configurable-http-proxy, dummy authenticator, local-process spawner) on loopback.

A user server is started through the hub's REST API, the quickstart's receiver runs in a
kernel of that server (REST and websocket kernel APIs, no browser), and signed deliveries
go to the public hook route through the hub's public URL with no credentials.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from elwh_nb import sign

from .conftest import SECRET, require
from .helpers import signed, stop_process, wait_for
from .jupyter_servers import free_port
from .kernel_ws import RemoteKernel

TOKEN = "hub_test_token_" + "3" * 24


@dataclass
class Hub:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/hubbase/hub/api/"

    @property
    def public(self) -> str:
        return f"http://localhost:{self.port}/hubbase/"  # what users and ElevenLabs see

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {TOKEN}"}


CONFIG = """
import sys
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{port}/hubbase/"
c.JupyterHub.public_url = "http://localhost:{port}/hubbase/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.JupyterHub.db_url = "sqlite:///{root}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/cookie_secret"
c.ConfigurableHTTPProxy.pid_file = "{root}/proxy.pid"
c.ConfigurableHTTPProxy.command = ["{chp}"]
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{root}/home/{{username}}"
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.args = {args}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.services = [{{"name": "tester", "api_token": "{token}"}}]
c.JupyterHub.load_roles = [
    {{"name": "tester", "scopes": ["admin:users", "admin:servers", "access:servers"], "services": ["tester"]}}
]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    chp = shutil.which("configurable-http-proxy")
    require(chp is not None, "configurable-http-proxy", "npm install -g configurable-http-proxy")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        require(False, "jupyterhub", "pip install -e '.[dev]'")
    root = tmp_path_factory.mktemp("hub")
    port, hub_port = free_port(), free_port()
    args = ["--allow-root"] if os.geteuid() == 0 else []
    config = root / "jupyterhub_config.py"
    config.write_text(CONFIG.format(port=port, hub_port=hub_port, root=root, chp=chp, token=TOKEN, args=args))
    log = root / "hub.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    h = Hub(proc, port, log)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError("jupyterhub exited:\n" + log.read_text()[-4000:])
        try:
            return httpx.get(h.api, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=90, what="jupyterhub")
        yield h
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def alice(hub: Hub) -> Iterator[str]:
    """Alice's running server; returns its URL (through the hub's proxy)."""
    assert httpx.post(hub.api + "users/alice", headers=hub.auth).status_code in (201, 409)
    r = httpx.post(hub.api + "users/alice/server", headers=hub.auth, timeout=60)
    assert r.status_code in (201, 202), r.text

    def ready() -> bool:
        user = httpx.get(hub.api + "users/alice", headers=hub.auth).json()
        return bool(user.get("servers", {}).get("", {}).get("ready"))

    wait_for(ready, timeout=120, what="alice's server")
    yield f"http://127.0.0.1:{hub.port}/hubbase/user/alice/"
    httpx.delete(hub.api + "users/alice/server", headers=hub.auth, timeout=60)


def test_public_route_through_the_hub(hub: Hub, alice: str) -> None:
    kernel = RemoteKernel(alice, hub.auth)
    try:
        printed = kernel.run(
            textwrap.dedent(
                f"""
                import elwh_nb
                rx = elwh_nb.start("{SECRET}", store=":memory:")
                print(rx.url)
                print(rx.proxy_url)
                """
            )
        )
        url, proxy_url = printed.split()
        # The URL the kernel prints is built from the hub's public URL and the user's prefix.
        assert url.startswith(f"{hub.public}user/alice/elwh/hook/")
        assert proxy_url.startswith(f"{hub.public}user/alice/proxy/")
        assert TOKEN not in printed

        # Exactly that URL works, with no credentials at all.
        statuses = []
        for seed in range(5):
            body, headers = signed(seed=seed)
            statuses.append(httpx.post(url, content=body, headers=headers, timeout=30).status_code)
        assert statuses == [200] * 5
        body, _ = signed(seed=99)
        tampered = httpx.post(url, content=body, headers={"ElevenLabs-Signature": sign(body + b" ", SECRET)})
        assert tampered.status_code == 401

        counts = kernel.run("print(len(rx.events), len(rx.failures), rx.failures.reason.iloc[-1])")
        assert counts.split() == ["5", "1", "signature_mismatch"]

        # The authenticated proxy URL is refused without a token.
        body, headers = signed(seed=7)
        refused = httpx.post(proxy_url, content=body, headers=headers, follow_redirects=False, timeout=30)
        assert refused.status_code in (302, 403), refused.status_code
        assert kernel.run("print(len(rx.events))").strip() == "5"
        kernel.run("rx.stop()")
        gone = httpx.post(url, content=body, headers=headers, timeout=30)
        assert gone.status_code == 404
    finally:
        kernel.shutdown()


def test_hub_answers_unknown_routes_without_login(hub: Hub, alice: str) -> None:
    body, headers = signed(seed=1)
    r = httpx.post(f"{hub.public}user/alice/elwh/hook/{'Z' * 32}", content=body, headers=headers, timeout=30)
    assert r.status_code == 404
    assert httpx.get(f"{hub.public}user/alice/elwh/hook/{'Z' * 32}", timeout=30).status_code == 405
