"""Tunnels: a real OpenSSH server on loopback, a stand-in ssh for quick-tunnel URLs that change,
the services' documented connect output, and the ngrok agent's documented API on a local server."""

from __future__ import annotations

import functools
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

import elwh_nb
from elwh_nb import ReceiverError, payloads, sign
from elwh_nb._server import routes as _routes
from elwh_nb._server import tunnel as _tunnel
from elwh_nb._server import tunnel_help as _tunnel_help
from elwh_nb._server import tunnel_urls as _tunnel_urls
from elwh_nb._server import urls as _urls
from testkit.jupyter import jupyter_server

from .conftest import SECRET, require
from .helpers import stop_process, wait_for

pytestmark = pytest.mark.slow  # a real server, kernel, browser or hub: `make test-fast` skips it

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sshd:
    port: int
    user: str
    options: list[str]  # what a client needs: our key, no known_hosts, no user config

    @property
    def tunnel(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A real sshd on a free loopback port: a temporary host key, one authorized client key."""
    require(
        os.path.exists(SSHD) and shutil.which("ssh") is not None and shutil.which("ssh-keygen") is not None,
        "OpenSSH's server",
        "apt-get install openssh-server (provides /usr/sbin/sshd; the client and ssh-keygen come with it)",
    )
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    port = free_port()
    (d / "sshd_config").write_text(
        textwrap.dedent(f"""\
        ListenAddress 127.0.0.1
        Port {port}
        HostKey {d / "host_key"}
        AuthorizedKeysFile {d / "authorized_keys"}
        PidFile none
        StrictModes no
        UsePAM no
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitRootLogin prohibit-password
        AllowTcpForwarding yes
        GatewayPorts no
        """)
    )
    if os.geteuid() == 0:
        # sshd run as root wants its privilege separation directory (Debian's ssh.service makes it).
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = open(d / "sshd.log", "wb")  # noqa: SIM115  (open while sshd runs)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=log)

    def listening() -> bool:
        assert proc.poll() is None, (d / "sshd.log").read_text()
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 20, "sshd to listen")
    options = [
        "-F", "/dev/null",
        "-i", str(d / "client_key"),
        "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
    ]  # fmt: skip
    try:
        yield Sshd(port, getpass.getuser(), options)
    finally:
        stop_process(proc)
        log.close()


def deliver_until_ok(client: httpx.Client, url: str, body: bytes, rx: elwh_nb.Receiver) -> dict[str, Any]:
    """Post as ElevenLabs would, retrying until a 200 (each attempt signed anew)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            r = client.post(url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)})
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code == 200:
            return dict(r.json())
        assert r is None or r.status_code >= 500, r.text  # the tunnel is down: never a 4xx
        wait_for(lambda: rx.tunnel is not None and rx.tunnel.up, 60, "the tunnel to come back")
    raise AssertionError(f"no 200 for a delivery to {url}")


# -- the real OpenSSH server -----------------------------------------------------------
def test_a_killed_ssh_client_is_restarted_and_every_200_is_stored(sshd: Sshd, tmp_path: Path) -> None:
    remote = free_port()
    with elwh_nb.start(
        SECRET, store=tmp_path / "rx.sqlite", tunnel=sshd.tunnel, remote_port=remote, ssh_options=sshd.options
    ) as rx:
        assert rx.tunnel is not None and rx.tunnel.up and rx.tunnel.restarts == 0
        url = f"http://127.0.0.1:{remote}/webhook"  # GatewayPorts no: the server's loopback
        assert rx.url == url
        assert "SSH tunnel" in (rx.url_note or "") and rx.tunnel.stable
        factory = payloads(11)
        bodies = [factory.body(factory.make("post_call_transcription")) for _ in range(90)]
        answers: list[dict[str, Any]] = []
        errors: list[BaseException] = []

        def load() -> None:
            try:
                with httpx.Client(timeout=10) as client:
                    for body in bodies:
                        answers.append(deliver_until_ok(client, url, body, rx))
            except BaseException as exc:
                errors.append(exc)

        sender = threading.Thread(target=load)
        sender.start()
        wait_for(lambda: len(answers) >= 30 or not sender.is_alive(), 60, "30 deliveries through the tunnel")
        first = rx.tunnel.pid
        assert first is not None and psutil.Process(first).name() == "ssh"
        os.kill(first, signal.SIGKILL)  # mid-load
        tunnel = rx.tunnel
        wait_for(lambda: tunnel.restarts >= 1 and tunnel.up, 60, "ssh to be restarted")
        assert rx.tunnel.pid not in (None, first)
        assert rx.url == url  # a fixed remote port: the same URL after the restart
        sender.join(120)
        assert not errors, errors
        assert len(answers) == len(bodies)  # every delivery got its 200, the later ones after the restart
        stored = set(rx.events.index)
        assert {a["id"] for a in answers} <= stored  # every 200 names a stored event
        assert rx.store.counts["events"] == len(bodies)  # exactly one event per delivery
        assert rx.tunnel.last_error is not None and "SIGKILL" in rx.tunnel.last_error  # what happened last
        ssh = rx.tunnel.pid
    assert rx.tunnel.pid is None and not rx.tunnel.up
    wait_for(lambda: ssh is None or not psutil.pid_exists(ssh), 20, "stop() to end ssh")
    with pytest.raises(httpx.HTTPError):
        httpx.post(url, content=b"{}", timeout=5)  # the tunnel is gone with the receiver


def test_rerunning_the_start_cell_keeps_the_tunnel_and_its_url(sshd: Sshd, tmp_path: Path) -> None:
    remote = free_port()
    options: dict[str, Any] = {"store": tmp_path / "rx.sqlite", "tunnel": sshd.tunnel, "remote_port": remote}
    first = elwh_nb.start(SECRET, ssh_options=sshd.options, **options)
    for _ in range(3):  # the earlier receiver, and its tunnel, stop; the new one takes the same port
        with pytest.warns(UserWarning, match="Stopped this kernel's earlier receiver"):
            again = elwh_nb.start(SECRET, ssh_options=sshd.options, **options)
        assert not first.running and first.tunnel is not None and not first.tunnel.up
        assert again.tunnel is not None and again.tunnel.up and again.url == first.url
        first = again
    first.stop()


def test_the_server_picks_the_port_when_none_is_given(sshd: Sshd, tmp_path: Path) -> None:
    with elwh_nb.start(
        SECRET, store=tmp_path / "rx.sqlite", tunnel=sshd.tunnel, ssh_options=sshd.options
    ) as rx:
        assert rx.tunnel is not None and rx.tunnel.up and not rx.tunnel.stable
        port = int(rx.url.split(":")[2].split("/")[0])  # from ssh's "Allocated port N for remote forward"
        # ssh's pick, not ours (it can equal the receiver's own port: sshd may bind [::1] alone)
        assert rx.url == f"http://127.0.0.1:{port}/webhook" and port > 0 and rx.tunnel.remote_port == 0
        assert "can change" in (rx.url_note or "")
        factory = payloads(3)
        body = factory.body(factory.make("post_call_transcription"))
        r = httpx.post(rx.url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)}, timeout=10)
        assert r.status_code == 200 and len(rx.events) == 1
        # The tunnel reaches the receiver's hook path and nothing else.
        assert httpx.get(rx.url.replace("/webhook", "/api/contents"), timeout=10).status_code == 404


def test_through_a_real_sshd_to_a_real_jupyter_servers_hook_only_port(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(_routes, "server_hook_port"):
        pytest.skip("this tree has no hook-only port yet (issue 12, item 1)")
    hook = free_port()
    with jupyter_server(tmp_path / "jupyter", args=(f"--ElwhHook.hook_port={hook}",)) as server:
        for key, value in server.env().items():  # this process is a kernel of that server
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("ELWH_PUBLIC_URL", raising=False)
        remote = free_port()
        with elwh_nb.start(
            SECRET,
            store=tmp_path / "rx.sqlite",
            tunnel=sshd.tunnel,
            remote_port=remote,
            ssh_options=sshd.options,
        ) as rx:
            assert rx.route_id is not None
            assert rx.url == f"http://127.0.0.1:{remote}/elwh/hook/{rx.route_id}"  # no base_url there
            factory = payloads(5)
            body = factory.body(factory.make("post_call_transcription"))
            r = httpx.post(
                rx.url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)}, timeout=10
            )
            assert r.status_code == 200 and len(rx.events) == 1
            # Nothing of Jupyter is behind the tunnel, not even with the Jupyter token.
            for path in (
                "/api/contents",
                "/api/kernels",
                "/lab",
                "/jbase/api/kernels",
                f"/proxy/{rx.port}/webhook",
            ):
                answer = httpx.get(f"http://127.0.0.1:{remote}{path}", headers=server.auth, timeout=10)
                assert answer.status_code == 404, path


def test_a_tunnel_that_cannot_start_is_a_clear_error_and_leaves_nothing_running(
    sshd: Sshd, tmp_path: Path
) -> None:
    store = tmp_path / "rx.sqlite"
    # A remote port that another tunnel holds: ssh's ExitOnForwardFailure ends it, and start() says why.
    taken = free_port()
    with elwh_nb.start(
        SECRET,
        store=tmp_path / "first.sqlite",
        tunnel=sshd.tunnel,
        remote_port=taken,
        ssh_options=sshd.options,
    ) as first:
        assert first.tunnel is not None and first.tunnel.up
        with pytest.raises(
            ReceiverError, match=f"remote port forwarding failed for listen port {taken}.*ClientAliveInterval"
        ):
            elwh_nb.start(
                SECRET, store=store, tunnel=sshd.tunnel, remote_port=taken, ssh_options=sshd.options
            )
    # A key the server does not know.
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = [o if o != sshd.options[3] else str(other) for o in sshd.options]
    with pytest.raises(ReceiverError, match="Permission denied"):
        elwh_nb.start(SECRET, store=store, tunnel=sshd.tunnel, ssh_options=wrong)
    # Nothing was left behind: the store is free for the next receiver.
    with elwh_nb.start(SECRET, store=store) as rx:
        assert rx.running and rx.tunnel is None


# -- a stand-in ssh: quick tunnels whose URL changes ------------------------------------
FAKE_SSH = """\
#!{python}
# Plays ssh to localhost.run: records its arguments, prints the service's documented
# connect line with a new URL on each run, then holds the tunnel until it is ended.
import os, pathlib, sys
runs = pathlib.Path(os.environ["FAKE_SSH_RUNS"])
n = len(runs.read_text().splitlines()) + 1 if runs.exists() else 1
with runs.open("a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
print("===============================================================================")
print("Welcome to localhost.run!")
print(f"{{n:04x}}8a2fcd.lhr.life tunneled with tls termination, https://{{n:04x}}8a2fcd.lhr.life", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake-ssh"
    script.write_text(FAKE_SSH.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("ELWH_SSH", str(script))
    monkeypatch.setenv("FAKE_SSH_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_a_changed_quick_tunnel_url_is_followed_and_announced(fake_ssh: Path, tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", tunnel="ssh://nokey@localhost.run") as rx:
        assert rx.tunnel is not None and rx.tunnel.up
        assert rx.url == "https://00018a2fcd.lhr.life/webhook"
        argv = fake_ssh.read_text().split()
        assert argv[-3:] == ["-R", f"80:127.0.0.1:{rx.port}", "nokey@localhost.run"]  # the service's port 80
        assert "-T" in argv and "-N" not in argv  # localhost.run announces the URL in a session
        assert SECRET not in fake_ssh.read_text() and SECRET not in repr(rx.tunnel)
        first = rx.tunnel.pid
        assert first is not None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            os.kill(first, signal.SIGKILL)
            wait_for(lambda: rx.url == "https://00028a2fcd.lhr.life/webhook", 30, "rx.url to follow")
            wait_for(lambda: caught, 10, "the warning")
        assert [str(w.message) for w in caught] == [
            "The tunnel's public URL changed: ElevenLabs needs the new URL "
            "https://00028a2fcd.lhr.life/webhook (it was https://00018a2fcd.lhr.life/webhook)."
        ]
        assert rx.tunnel.restarts == 1 and rx.tunnel.previous_url == "https://00018a2fcd.lhr.life"
        assert "https://00028a2fcd.lhr.life/webhook" in repr(rx) and "URL changed at" in repr(rx)
        assert "give ElevenLabs the new rx.url" in (rx.url_note or "")
        header = rx.dashboard().header.value
        assert "https://00028a2fcd.lhr.life/webhook" in header and "URL changed at" in header
        second = rx.tunnel.pid
    assert second is not None
    wait_for(lambda: not psutil.pid_exists(second), 20, "stop() to end the tunnel")


def test_restarts_back_off_and_a_long_run_resets_the_backoff(
    fake_ssh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_tunnel, "STABLE", 3.0)  # up this long counts as a good run
    t = _tunnel.SshTunnel("ssh://nokey@localhost.run", target=("127.0.0.1", 9), backoff=0.2)
    assert t.start(30)
    try:
        delays = []
        for restarts in (1, 2, 3):  # ssh dies right after each start: 0.2, 0.4, 0.8 s
            os.kill(t.pid or 0, signal.SIGKILL)
            wait_for(
                functools.partial(lambda n: t.restarts == n and t.up, restarts), 30, f"restart {restarts}"
            )
            delays.append(t.delay)
        assert delays == [0.2, 0.4, 0.8]
        wait_for(lambda: t.uptime >= 3.0, 30, "a good run")
        os.kill(t.pid or 0, signal.SIGKILL)
        wait_for(lambda: t.restarts == 4 and t.up, 30, "restart 4")
        assert t.delay == 0.2  # back to the first step
        assert "SIGKILL" in (t.last_error or "")
    finally:
        t.stop()
    assert not t.up and t.pid is None


def test_a_kernel_that_dies_takes_its_tunnel_with_it(fake_ssh: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from elwh_nb._server import tunnel as _tunnel\n"
        "t = _tunnel.SshTunnel('ssh://nokey@localhost.run', target=('127.0.0.1', 9))\n"
        "assert t.start(30)\n"
        "print(t.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as kernel:
        try:
            assert kernel.stdout is not None
            ssh = int(kernel.stdout.readline())
            assert psutil.pid_exists(ssh)
            kernel.kill()  # no atexit, no stop(): the guard sees the kernel's pipe close
            kernel.wait()
            wait_for(lambda: not psutil.pid_exists(ssh), 20, "the orphaned ssh to end")
        finally:
            kernel.kill()


# -- the services' documented connect output --------------------------------------------
# localhost.run: the line recorded in published setup guides (e.g. an OpenClaw tunnel guide on
# GitHub, 2025), with the banner lines around it that carry other URLs.
# pinggy: the output quoted in NousResearch/hermes-agent issue #361 ("Output (confirmed via
# testing)") for `ssh -p 443 -R0:localhost:8000 free@a.pinggy.io`, and the URL shape in
# pinggy.io/docs/api/web_debugger_api/.
# serveo: "Forwarding HTTP traffic from https://..." as printed for `ssh -R 80:localhost:3000
# serveo.net` (serveo.net's quick start; recorded transcripts show both *.serveo.net and the
# newer *.serveousercontent.com), with the request-log lines it prints afterwards.
DOCUMENTED = {
    "localhost.run": (
        [
            "** your connection id is 3d1b4c0e-xxxx-xxxx, please mention it if you send me a message "
            "about an issue. **",
            "authenticated as anonymous user",
            "create an account and add your key for a longer lasting domain name. see "
            "https://localhost.run/docs/forever-free/ for more information.",
        ],
        "9239ab27cc1ba2.lhr.life tunneled with tls termination, https://9239ab27cc1ba2.lhr.life",
        "https://9239ab27cc1ba2.lhr.life",
    ),
    "a.pinggy.io": (
        [
            "You are not authenticated.",
            "Your tunnel will expire in 60 minutes. Upgrade to Pinggy Pro to get unrestricted tunnels. "
            "https://dashboard.pinggy.io",
            "http://yqycl-98-162-69-48.a.free.pinggy.link",
            "https://dashboard.pinggy.io",
        ],
        "https://yqycl-98-162-69-48.a.free.pinggy.link",
        "https://yqycl-98-162-69-48.a.free.pinggy.link",
    ),
    "serveo.net": (
        [
            "Press g to start a GUI session and ctrl-c to quit.",
            "HTTP request from 119.85.107.16 to https://gero.serveo.net/",
        ],
        "Forwarding HTTP traffic from https://59614f9c88d865c5-35-153-157-12.serveousercontent.com",
        "https://59614f9c88d865c5-35-153-157-12.serveousercontent.com",
    ),
}


@pytest.mark.parametrize("host", list(DOCUMENTED))
def test_the_url_is_read_from_each_services_documented_output(host: str) -> None:
    other_lines, line, url = DOCUMENTED[host]
    service = _tunnel_urls.service_for(host)
    assert service is not None
    assert _tunnel_urls.announced_url(service, line) == url
    assert _tunnel_urls.announced_url(service, f"\x1b[32m{line}\x1b[0m") == url  # colours do not matter
    for other in other_lines:
        assert _tunnel_urls.announced_url(service, other) is None, other


def test_each_service_gets_its_documented_command() -> None:
    def argv(tunnel: str, **kw: Any) -> list[str]:
        return _tunnel.SshTunnel(tunnel, target=("127.0.0.1", 5000), **kw).argv()

    # ssh -R 80:localhost:8080 nokey@localhost.run ; ssh -p 443 -R0:localhost:8000 a.pinggy.io ;
    # ssh -R 80:localhost:3000 serveo.net
    assert argv("ssh://nokey@localhost.run")[-3:] == ["-R", "80:127.0.0.1:5000", "nokey@localhost.run"]
    pinggy = argv("ssh://free@a.pinggy.io")
    assert pinggy[-5:] == ["-p", "443", "-R", "0:127.0.0.1:5000", "free@a.pinggy.io"]
    assert argv("ssh://serveo.net")[-3:] == ["-R", "80:127.0.0.1:5000", "serveo.net"]
    own = argv("ssh://me@hooks.example.org:2222", remote_port=8080, ssh_options=["-i", "k"])
    assert own[1:3] == ["-i", "k"]  # the user's options first: for ssh the first value wins
    assert own[-6:] == ["-N", "-p", "2222", "-R", "8080:127.0.0.1:5000", "me@hooks.example.org"]
    assert "ExitOnForwardFailure=yes" in own and "BatchMode=yes" in own
    assert (
        _tunnel_urls.service_for("example.org") is None
        and _tunnel_urls.service_for("notlocalhost.run") is None
    )


def test_openssh_allocated_port_line() -> None:
    # What ssh 9.2 printed here for -R 0 against the real sshd above.
    t = _tunnel.SshTunnel("ssh://me@203.0.113.7", target=("127.0.0.1", 5000))
    t._read("Allocated port 38161 for remote forward to 127.0.0.1:5000")
    assert t.up and t.url == "http://203.0.113.7:38161"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"tunnel": "https://abc.trycloudflare.com"}, "tunnel= takes 'ssh://user@host"),
        ({"tunnel": "ngrok"}, "tunnel= takes"),
        ({"tunnel": "ssh://"}, "tunnel= takes"),
        ({"tunnel": "ssh://me:pw@host"}, "tunnel= takes no password"),
        ({"tunnel": "ssh://h:99999"}, "tunnel= takes"),
        ({"tunnel": "ssh://h", "remote_port": 70000}, "remote_port must be 0-65535"),
        ({"tunnel": "ssh://h", "public_url": "hooks.example.org"}, "public_url must be an http"),
        ({"public_url": "ftp://hooks.example.org"}, "public_url must be an http"),
        ({"remote_port": 8080}, "go with tunnel="),
    ],
)
def test_a_bad_tunnel_argument_is_refused_before_anything_starts(
    options: dict[str, Any], match: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=re.escape(match)):
        elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", **options)
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx:  # nothing was left holding the store
        assert rx.running


def test_no_ssh_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELWH_SSH", str(tmp_path / "no-such-ssh"))
    with pytest.raises(ReceiverError, match=r"cannot run .*no-such-ssh"):
        elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", tunnel="ssh://nokey@localhost.run")


# -- the hook-only port, cloudflared and ngrok ----------------------------------------
@pytest.fixture
def jupyter_with_hook_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """This process as a Jupyter server that serves the route and has a hook-only port."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    ctx = _urls.JupyterContext(
        "/", "http://127.0.0.1:8888", True, "http://127.0.0.1:8888", os.getpid(), False
    )
    monkeypatch.setattr(_urls, "detect", lambda public_url=None: ctx)
    _routes.mark_server(os.getpid())
    hook_port = 47613
    monkeypatch.setattr(_routes, "server_hook_port", lambda pid: hook_port, raising=False)
    return hook_port


def test_tunnel_help_names_the_hook_only_port(
    jupyter_with_hook_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx:
        rx.tunnel_help()
        out = capsys.readouterr().out
    port = jupyter_with_hook_port
    for line in (
        f"cloudflared tunnel --url http://127.0.0.1:{port}",
        f"cloudflared tunnel run --url http://127.0.0.1:{port} elwh",
        f"ngrok http {port}",
        f"ngrok http --url=<your-domain> {port}",
        'rx = elwh_nb.start(secret, tunnel="ssh://nokey@localhost.run")',
    ):
        assert f"  {line}\n" in out, line
    assert f"/elwh/hook/{rx.route_id}" in out and "hook-only port" in out and "8888" in out
    assert "to start() so that" not in out  # the hook-only port stays: nothing to pin


def test_a_tunnel_goes_to_the_hook_only_port(
    jupyter_with_hook_port: int, fake_ssh: Path, tmp_path: Path
) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", tunnel="ssh://nokey@localhost.run") as rx:
        assert f"80:127.0.0.1:{jupyter_with_hook_port}" in fake_ssh.read_text()
        assert rx.url == f"https://00018a2fcd.lhr.life/elwh/hook/{rx.route_id}"  # no base_url there


def test_tunnel_help_outside_jupyter_names_the_receivers_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx:
        rx.tunnel_help()
        out = capsys.readouterr().out
    assert f"  cloudflared tunnel --url http://127.0.0.1:{rx.port}\n" in out
    assert f"  ngrok http {rx.port}\n" in out and f"  ngrok http --url=<your-domain> {rx.port}\n" in out
    assert f"pass port={rx.port} to start()" in out  # a random port would break the tunnel next time


def test_public_url_is_adopted_outside_jupyter(tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", public_url="https://hooks.example.org/") as rx:
        assert rx.url == "https://hooks.example.org/webhook"
        assert "public_url='https://hooks.example.org'" in (rx.url_note or "")


@pytest.fixture
def ngrok_agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A local HTTP server answering GET /api/tunnels as the ngrok agent documents it."""
    served: dict[str, Any] = {"body": b"{}"}

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert self.path == "/api/tunnels"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(served["body"])

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ELWH_NGROK_API", f"http://127.0.0.1:{server.server_address[1]}/api/tunnels")
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def documented_tunnels(addr: str, http_too: bool = False) -> bytes:
    """ngrok's "List Tunnels" example response (its trailing comma, not valid JSON, dropped)."""
    tunnel = {
        "name": "command_line",
        "uri": "/api/tunnels/command_line",
        "public_url": "https://d95211d2.ngrok.io",
        "proto": "https",
        "config": {"addr": addr, "inspect": True},
        "metrics": {"conns": {"count": 0, "gauge": 0}, "http": {"count": 0}},
    }
    plain = {
        **tunnel,
        "name": "command_line (http)",
        "public_url": "http://d95211d2.ngrok.io",
        "proto": "http",
    }
    other = {**tunnel, "name": "ssh", "public_url": "tcp://0.tcp.ngrok.io:53476", "proto": "tcp"}
    other["config"] = {"addr": "localhost:22", "inspect": False}
    tunnels = [other, plain, tunnel] if http_too else [other, tunnel]
    return json.dumps({"tunnels": tunnels, "uri": "/api/tunnels"}).encode()


@pytest.mark.parametrize(
    "addr", ["localhost:{port}", "http://localhost:{port}", "{port}", "127.0.0.1:{port}"]
)
def test_a_running_ngrok_agents_tunnel_is_adopted(
    ngrok_agent: dict[str, Any], tmp_path: Path, addr: str
) -> None:
    port = free_port()
    ngrok_agent["body"] = documented_tunnels(addr.format(port=port), http_too=True)
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", port=port) as rx:
        assert rx.url == "https://d95211d2.ngrok.io/webhook"
        assert "ngrok" in (rx.url_note or "") and f"127.0.0.1:{port}" in (rx.url_note or "")


def test_an_ngrok_tunnel_to_another_port_or_no_agent_changes_nothing(
    ngrok_agent: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ngrok_agent["body"] = documented_tunnels(f"http://localhost:{free_port()}")
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx:
        assert rx.url == rx.local_url and rx.url_note == _urls.https_note(rx.url)  # nothing but HTTP
    ngrok_agent["body"] = b"<html>not the agent</html>"
    assert _tunnel_help.ngrok_url(1234) is None
    monkeypatch.setenv("ELWH_NGROK_API", f"http://127.0.0.1:{free_port()}/api/tunnels")  # nothing listens
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx:
        assert rx.url == rx.local_url and rx.url_note == _urls.https_note(rx.url)  # nothing but HTTP


# -- Colab and VS Code ----------------------------------------------------------------
def test_in_vs_code_the_note_gives_the_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSCODE_PID", "4242")
    with (
        pytest.warns(UserWarning, match="VS Code"),
        elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx,
    ):
        assert _urls.TUNNEL_LINE in (rx.url_note or "")


def test_on_colab_the_note_gives_the_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    colab = tmp_path / "site" / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # google.colab is importable, as on Colab
    for name in ("VSCODE_PID", "VSCODE_CWD", "VSCODE_IPC_HOOK", "VSCODE_IPC_HOOK_CLI", "TERM_PROGRAM"):
        monkeypatch.delenv(name, raising=False)
    had = {name for name in ("google", "google.colab") if name in sys.modules}
    try:
        with (
            pytest.warns(UserWarning, match="Colab"),
            elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx,
        ):
            assert _urls.TUNNEL_LINE in (rx.url_note or "")
    finally:
        monkeypatch.undo()
        for name in {"google", "google.colab"} - had:  # a namespace package keeps a stale path
            sys.modules.pop(name, None)
    assert _urls.runtime() is None  # later tests are not on Colab
