"""A tunnel to the hook: run and supervise the OpenSSH client, and know the tunnel's public URL.

``SshTunnel`` runs ``ssh -R <remote port>:127.0.0.1:<port> user@host`` (the user's ssh
config and agent apply) under a small guard process that ends ssh when the kernel goes,
restarts it with capped exponential backoff when it exits, and reads what it prints: the
forward's confirmation, the port the server picked, or the HTTPS URL that a public SSH
tunnel service (localhost.run, serveo, pinggy) announces. Also here: the ngrok agent's
local API, and the one-line commands for cloudflared and ngrok. Stdlib only; nothing here
ever sees the webhook secret.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

SSH_ENV = "ELWH_SSH"  # the ssh executable (default: ``ssh`` on PATH)
NGROK_API_ENV = "ELWH_NGROK_API"
NGROK_API = "http://127.0.0.1:4040/api/tunnels"  # the agent's documented local API

BACKOFF = 1.0  # seconds before the first restart; doubles on each quick failure
MAX_BACKOFF = 60.0
STABLE = 30.0  # a run that stayed up this long resets the backoff

# Runs ssh, prints its pid, and ends it when its own stdin closes: the kernel stopped the
# tunnel, or died (then no orphan ssh keeps holding the remote port). ssh's stdin is a pipe
# the guard keeps open, so that a tunnel service's session never sees an end of input.
_GUARD = r"""
import os, subprocess, sys, threading
try:
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE)
except OSError as exc:
    print(f"cannot run {sys.argv[1]}: {exc.strerror or exc}", flush=True)
    os._exit(0)
print(f"elwh-tunnel-pid {child.pid}", flush=True)
def watch():
    sys.stdin.buffer.read()
    child.terminate()
threading.Thread(target=watch, daemon=True).start()
print(f"elwh-tunnel-exit {child.wait()}", flush=True)
os._exit(0)  # now: the watcher still blocks in a read
"""
_PID = re.compile(r"^elwh-tunnel-pid (\d+)$")
_EXIT = re.compile(r"^elwh-tunnel-exit (-?\d+)$")
# OpenSSH's own words: "Allocated port N" (INFO) when the server picked the port (-R 0),
# "remote forward success for: listen ..." (DEBUG1) when the server bound the one asked for.
_ALLOCATED = re.compile(r"^Allocated port (\d+) for remote forward")
_FORWARDED = re.compile(r"^debug1: remote forward success for: listen")
_NOISE = re.compile(r"^(debug\d|Transferred: |Bytes per second|Warning: Permanently added)")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class TunnelError(Exception):
    """The tunnel could not be set up (bad ``tunnel=``, no ssh, or it failed at once)."""


@dataclass(frozen=True)
class Service:
    """A public SSH tunnel service: the remote port it wants, its ssh port, how it says its URL."""

    name: str
    domain: str
    remote_port: int
    ssh_port: int | None
    announces: Callable[[str], str | None]


def _after(marker: str) -> Callable[[str], str | None]:
    pattern = re.compile(re.escape(marker) + r"\s*(https://[A-Za-z0-9.-]+)")

    def read(line: str) -> str | None:
        found = pattern.search(line)
        return found.group(1) if found else None

    return read


def _lone_url(line: str) -> str | None:
    """pinggy prints each URL on its own line (and its own site, in prose, elsewhere)."""
    found = re.fullmatch(r"\s*(https://[A-Za-z0-9.-]+)/?\s*", line)
    if found is None or (urlsplit(found.group(1)).hostname or "").endswith("pinggy.io"):
        return None
    return found.group(1)


SERVICES = (
    # "<id>.lhr.life tunneled with tls termination, https://<id>.lhr.life"
    Service("localhost.run", "localhost.run", 80, None, _after("tunneled with tls termination,")),
    # "Forwarding HTTP traffic from https://<id>.serveo.net"
    Service("serveo", "serveo.net", 80, None, _after("Forwarding HTTP traffic from")),
    # "http://<id>.a.free.pinggy.link" then "https://<id>.a.free.pinggy.link"
    Service("pinggy", "pinggy.io", 0, 443, _lone_url),
)


def service_for(host: str) -> Service | None:
    """The public tunnel service at ``host`` (``a.pinggy.io`` is pinggy), if it is one."""
    host = host.lower().rstrip(".")
    return next((s for s in SERVICES if host == s.domain or host.endswith("." + s.domain)), None)


def announced_url(service: Service, line: str) -> str | None:
    """The public HTTPS URL a service announces in one line of its output, if this is that line."""
    return service.announces(_ANSI.sub("", line))


@dataclass(frozen=True)
class Destination:
    """``ssh://[user@]host[:port]``, as ssh takes it."""

    user: str | None
    host: str
    port: int | None

    @property
    def login(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host


def parse_destination(tunnel: str) -> Destination:
    """Read ``tunnel="ssh://user@host[:port]"``; anything else is a clear ValueError."""
    parts = urlsplit(tunnel.strip())
    hint = (
        "tunnel= takes 'ssh://user@host[:port]' (your own server, or ssh://nokey@localhost.run); "
        "for cloudflared or ngrok run their command (rx.tunnel_help() prints it) and pass public_url="
    )
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{hint}, not {tunnel!r}")
    if parts.password is not None:
        raise ValueError("tunnel= takes no password: ssh uses your keys and agent")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{hint}: {exc}") from None
    return Destination(parts.username or None, parts.hostname, port)


def check(
    tunnel: str, remote_port: int | None, ssh_options: Sequence[str] | None, public_url: str | None
) -> Destination:
    """Refuse bad tunnel arguments with a clear error, before anything starts."""
    destination = parse_destination(tunnel)
    if remote_port is not None and not 0 <= remote_port <= 65535:
        raise ValueError(f"remote_port must be 0-65535 (0: the server picks one), not {remote_port}")
    if isinstance(ssh_options, str):
        raise TypeError("ssh_options is a list of arguments, e.g. ['-i', '~/.ssh/hooks', '-o', 'Port=2222']")
    if public_url is not None:
        prefix(public_url)
    return destination


def _ssh() -> str:
    return os.environ.get(SSH_ENV) or "ssh"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def resolve_host(dest: Destination, ssh_options: Sequence[str]) -> str:
    """The host name ssh really connects to (``HostName`` from the user's ssh config), for the URL."""
    argv = [_ssh(), *ssh_options, "-G"]
    if dest.port is not None:
        argv += ["-p", str(dest.port)]
    try:
        out = subprocess.run(
            [*argv, dest.login], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return dest.host
    found = re.search(r"^hostname (\S+)$", out, re.MULTILINE)
    return found.group(1) if found else dest.host


def prefix(url: str) -> str:
    """A public URL to put the hook path after: ``https://hooks.example.org[/some/prefix]``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"public_url must be an http(s) URL such as https://hooks.example.org, not {url!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


class SshTunnel:
    """One supervised ``ssh -R`` to ``target``; read :attr:`up`, :attr:`url`, :attr:`restarts`,
    :attr:`last_error`, :attr:`uptime` (the Receiver shows them as ``rx.tunnel``)."""

    def __init__(
        self,
        tunnel: str,
        *,
        target: tuple[str, int],
        remote_port: int | None = None,
        public_url: str | None = None,
        ssh_options: Sequence[str] = (),
        on_url: Callable[[str | None, str], None] | None = None,
        backoff: float = BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.destination = check(tunnel, remote_port, ssh_options, public_url)
        self.ssh_options = [str(o) for o in ssh_options]
        self.service = service_for(self.destination.host)
        self.remote_port = (
            remote_port if remote_port is not None else self.service.remote_port if self.service else 0
        )
        self.target = target
        self._fixed = prefix(public_url) if public_url else None
        self._host = self.destination.host
        self.on_url = on_url
        self.backoff, self.max_backoff = backoff, max_backoff
        self.url: str | None = None  # the public origin, kept while the tunnel reconnects
        self.previous_url: str | None = None
        self.url_changed_at: float | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self.delay = 0.0  # the wait before the latest restart (backoff)
        self.retry_at: float | None = None  # when the next attempt starts, while waiting
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._settled = threading.Event()  # the first run is up, or has ended
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._up_since: float | None = None
        self._run_state: dict[str, object] = {}
        self._recent: deque[str] = deque(maxlen=20)
        self._thread = threading.Thread(target=self._supervise, name="elwh-tunnel", daemon=True)

    # -- what the Receiver reads -----------------------------------------------------
    @property
    def via(self) -> str:
        """Where the tunnel goes: the service's name, or ``host`` (``host:port``)."""
        if self.service is not None:
            return self.service.name
        port = f":{self.destination.port}" if self.destination.port else ""
        return f"{self._host}{port}"

    @property
    def up(self) -> bool:
        return self._up_since is not None

    @property
    def uptime(self) -> float:
        """Seconds since the tunnel came up this time (0 while it is down)."""
        since = self._up_since
        return 0.0 if since is None else time.monotonic() - since

    @property
    def pid(self) -> int | None:
        """The running ssh process's id (None between runs)."""
        return self._pid

    @property
    def stable(self) -> bool:
        """Whether the URL survives a reconnect: a fixed remote port on your own server, or public_url."""
        return self._fixed is not None or (self.service is None and self.remote_port != 0)

    @property
    def summary(self) -> str:
        """One line: up or down, since when, restarts, the last error, a changed URL."""
        if self.up:
            state = f"up {_age(self.uptime)} via {self.via}"
        elif self._stopping.is_set():
            state = "stopped"
        else:
            retry = self.retry_at
            when = f", next try in {max(0.0, retry - time.time()):.0f} s" if retry else ""
            state = f"down (reconnecting{when}) via {self.via}"
        parts = [state, f"{self.restarts} restart{'s' * (self.restarts != 1)}"]
        if self.last_error and not self.up:
            parts.append(f"last error: {self.last_error}")
        if self.url_changed_at is not None:
            when = time.strftime("%H:%M:%S", time.localtime(self.url_changed_at))
            parts.append(f"URL changed at {when}: ElevenLabs needs the new one")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return (
            f"<SshTunnel {'up' if self.up else 'down'} via {self.via}: url={self.url}, "
            f"restarts={self.restarts}, uptime={self.uptime:.0f}s, last_error={self.last_error!r}>"
        )

    # -- running -----------------------------------------------------------------------
    def argv(self) -> list[str]:
        """The ssh command line (no secret in it: the tunnel never sees the webhook secret)."""
        host, port = self.target
        target = f"[{host}]" if ":" in host else host
        options = [
            # The user's options come first: for ssh, the first value given for an option wins.
            *self.ssh_options,
            "-o",
            "ExitOnForwardFailure=yes",  # a port already taken is an exit, which we see and retry
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=3",  # a dead connection ends ssh within about 45 s
            "-o",
            "ConnectTimeout=20",
            "-o",
            "LogLevel=DEBUG1",  # the only level at which ssh says a fixed remote port was bound
        ]
        if self.service is None:
            # Your own server: no shell, keys or agent only (a prompt would wait forever here).
            options += ["-o", "BatchMode=yes", "-N"]
        else:
            # The services announce the URL in a session; first contact trusts their host key.
            options += ["-o", "StrictHostKeyChecking=accept-new", "-T"]
        ssh_port = self.destination.port or (self.service.ssh_port if self.service else None)
        if ssh_port is not None:
            options += ["-p", str(ssh_port)]
        return [_ssh(), *options, "-R", f"{self.remote_port}:{target}:{port}", self.destination.login]

    def start(self, timeout: float = 30.0) -> bool:
        """Start supervising; wait until the tunnel is up (True), or ``timeout`` passes (False).

        Raises :class:`TunnelError` when the first attempt fails outright (no ssh, refused
        login, the remote port taken): a mistake to fix, not a network hiccup to wait out.
        """
        if self.service is None and self._fixed is None:
            self._host = resolve_host(self.destination, self.ssh_options)
        self._thread.start()
        self._settled.wait(timeout)
        if self.up:
            return True
        if self._proc is None and self.restarts == 0 and self.last_error is not None:
            error = self.last_error
            self.stop()
            if "remote port forwarding failed" in error:
                error += (
                    f". Port {self.remote_port} is taken on the server: by another program, or by an earlier "
                    "tunnel whose connection died without closing (sshd frees it after ClientAliveInterval x "
                    "ClientAliveCountMax; set ClientAliveInterval 15 in its sshd_config), or pass another "
                    "remote_port"
                )
            raise TunnelError(f"the ssh tunnel to {self.via} failed: {error}")
        return False

    def stop(self) -> None:
        """End the tunnel: close the guard's stdin (it ends ssh), then make sure both are gone."""
        self._stopping.set()
        with self._lock:
            proc, pid = self._proc, self._pid
        if proc is not None:
            _end(proc, pid)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(20)
        self._up_since = None

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            up_for = self._run_once()
            if self._stopping.is_set():
                break
            failures = 1 if up_for >= STABLE else failures + 1
            self.delay = min(self.max_backoff, self.backoff * 2 ** (failures - 1))
            self.retry_at = time.time() + self.delay
            self._settled.set()
            if self._stopping.wait(self.delay):
                break
            self.retry_at = None
            self.restarts += 1

    def _run_once(self) -> float:
        """Run ssh once, reading its output until it ends; returns how long it was up."""
        self._run_state = {}
        self._recent.clear()  # what this run says, for last_error
        try:
            flags = {"start_new_session": True} if os.name == "posix" else {}
            proc = subprocess.Popen(
                [sys.executable, "-c", _GUARD, *self.argv()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                **flags,  # type: ignore[call-overload]
            )
        except OSError as exc:
            self.last_error = f"cannot start the tunnel guard: {exc}"
            return 0.0
        with self._lock:
            if self._stopping.is_set():
                _end(proc, None)
                return 0.0
            self._proc = proc
        code: int | None = None
        up_for = 0.0
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = _ANSI.sub("", raw[:4096].decode("utf-8", "replace")).rstrip()
            exited = _EXIT.match(line)
            if exited:
                code = int(exited.group(1))
                with self._lock:  # down now, before the guard is gone
                    up_for, self._pid, self._up_since = self.uptime, None, None
            else:
                self._read(line)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        with self._lock:
            up_for = up_for or self.uptime
            self._proc, self._pid, self._up_since = None, None, None
        if not self._stopping.is_set():
            self.last_error = self._exit_reason(code)
        return up_for

    def _exit_reason(self, code: int | None) -> str:
        said = self._recent[-1] if self._recent else ""
        if code is None:
            return said or "the tunnel guard ended"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"ssh was killed ({name})" + (f"; it last said: {said}" if said else "")
        return f"ssh exited with code {code}" + (f": {said}" if said else "")

    def _read(self, line: str) -> None:
        """One line of the guard's or ssh's output."""
        state = self._run_state
        pid = _PID.match(line)
        if pid:
            self._pid = int(pid.group(1))
            return
        allocated = _ALLOCATED.match(line)
        if allocated:
            state["port"] = int(allocated.group(1))
            state["forwarded"] = True
        elif _FORWARDED.match(line) and self.remote_port != 0:  # for -R 0, wait for the port's number
            state["forwarded"] = True
        if self.service is not None and "url" not in state:
            url = announced_url(self.service, line)
            if url:
                state["url"] = url
        if line and not _NOISE.match(line):
            self._recent.append(line[:300])
        self._settle()

    def _settle(self) -> None:
        """Up once the forward is confirmed, or, for a service, once it announced its URL."""
        state = self._run_state
        if self.up:
            return
        if self.service is not None:
            url = (self._fixed or state["url"]) if "url" in state else None
        elif state.get("forwarded"):
            port = state.get("port", self.remote_port)
            url = self._fixed or f"http://{_url_host(self._host)}:{port}"
        else:
            url = None
        if not isinstance(url, str):
            return
        self._up_since = time.monotonic()
        old = self.url
        self.url = url
        self._settled.set()
        if old is not None and old != url:
            self.previous_url, self.url_changed_at = old, time.time()
        if old != url and self.on_url is not None:
            try:
                self.on_url(old, url)
            except Exception:  # a callback's bug must not end the supervision
                import logging

                logging.getLogger("elwh_nb").exception("elwh_nb tunnel URL callback failed")


def _end(proc: subprocess.Popen[bytes], pid: int | None) -> None:
    """Close the guard's stdin (it terminates ssh and exits); kill both if that does not work."""
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
        proc.kill()
        proc.wait()


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


# -- ngrok ---------------------------------------------------------------------------
def _local_port(addr: object) -> int | None:
    """The local port of an ngrok tunnel's ``config.addr`` (``localhost:80``, ``http://localhost:80``)."""
    text = str(addr or "").strip()
    if text.isdigit():
        return int(text)
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme != "http":
        return None  # an https origin is not this receiver
    host = (parts.hostname or "localhost").lower()
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    try:
        return parts.port if loopback else None
    except ValueError:
        return None


def ngrok_url(port: int, api: str | None = None, timeout: float = 0.5) -> str | None:
    """The public URL of a running ngrok agent's tunnel to 127.0.0.1:``port``, if there is one.

    Asks the agent's local API (``ELWH_NGROK_API``, default ``http://127.0.0.1:4040/api/tunnels``)
    with a short timeout; nothing listening there is not an error.
    """
    api = api or os.environ.get(NGROK_API_ENV) or NGROK_API
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(api, timeout=timeout) as response:
            data = json.loads(response.read(1_000_000))
    except (OSError, ValueError):
        return None
    found = [
        str(t.get("public_url"))
        for t in (data.get("tunnels") or [] if isinstance(data, dict) else [])
        if isinstance(t, dict)
        and isinstance(t.get("config"), dict)
        and _local_port(t["config"].get("addr")) == port
        and str(t.get("public_url", "")).startswith(("https://", "http://"))
    ]
    found.sort(key=lambda url: not url.startswith("https://"))  # the HTTPS one when both exist
    return found[0] if found else None


# -- the one-line commands -------------------------------------------------------------
def help_text(*, port: int, path: str, hook_port: bool, port_is_fixed: bool) -> str:
    """What ``rx.tunnel_help()`` prints: tunnels that reach only the hook, and how to keep a URL."""
    what = (
        [
            f"Tunnels go to 127.0.0.1:{port}, the hook-only port of your Jupyter server: it serves",
            f"{path} and nothing of Jupyter (no /api/, /lab, files or kernels).",
        ]
        if hook_port
        else [f"Tunnels go to 127.0.0.1:{port}, this receiver's own port: it serves only {path}."]
    )
    lines = [
        *what,
        "Never tunnel the Jupyter server's own port (8888 by default): that would put Jupyter's",
        "login, and with it code execution, on the internet.",
        "",
        "SSH, nothing to install (the URL may change when it reconnects; a warning says so):",
        '  rx = elwh_nb.start(secret, tunnel="ssh://nokey@localhost.run")',
        "  your own server, one URL that stays (its sshd needs GatewayPorts yes; or run an HTTPS",
        "  reverse proxy there to its 127.0.0.1:8080 and add public_url='https://hooks.example.org'):",
        '  rx = elwh_nb.start(secret, tunnel="ssh://you@your.server", remote_port=8080)',
        "",
        "cloudflared, a quick tunnel (a new trycloudflare.com URL each time):",
        f"  cloudflared tunnel --url http://127.0.0.1:{port}",
        "cloudflared, a named tunnel (a hostname of yours that stays; set up once with",
        "  cloudflared tunnel create elwh && cloudflared tunnel route dns elwh hooks.example.org):",
        f"  cloudflared tunnel run --url http://127.0.0.1:{port} elwh",
        "",
        "ngrok (a new URL each time on the free plan):",
        f"  ngrok http {port}",
        "ngrok with your static domain (stays):",
        f"  ngrok http --url=<your-domain> {port}",
        "",
        "Then start() again with public_url='https://<the URL it printed>' (a running ngrok agent's",
        f"URL is found by itself), and give ElevenLabs rx.url: that URL followed by {path}.",
    ]
    if not port_is_fixed:
        lines.append(
            f"This receiver's port is new on every start(): pass port={port} to start() so that the tunnel "
            "keeps reaching it."
        )
    return "\n".join(lines)
