"""A supervised ssh tunnel to the hook: keep ``ssh -R`` running, and know its public URL.

``SshTunnel`` runs ``ssh -R <remote port>:127.0.0.1:<port> user@host`` (the user's ssh
config and agent apply) under a small guard process that ends ssh when the kernel goes
(``tunnel_ssh``), restarts it with capped exponential backoff when it exits, and is up once
ssh confirms the forward, says the port the server picked, or a public SSH tunnel service
(localhost.run, serveo, pinggy) announces its HTTPS URL (``tunnel_urls``). Tunnels the user
runs (ngrok, cloudflared) are in ``tunnel_help``. Stdlib only; nothing here ever sees the
webhook secret.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from .._core.exceptions import TunnelError
from .tunnel_ssh import EXIT, SshOutput, decode, end, resolve_host, ssh_argv, start_guard
from .tunnel_status import TunnelStatus
from .tunnel_urls import check, service_for, url_host

BACKOFF = 1.0  # seconds before the first restart; doubles on each quick failure
MAX_BACKOFF = 60.0
STABLE = 30.0  # a run that stayed up this long resets the backoff


class SshTunnel(TunnelStatus):
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
        destination = check(tunnel, remote_port, ssh_options, public_url)
        service = service_for(destination.host)
        if remote_port is None:
            remote_port = service.remote_port if service else 0
        super().__init__(destination, service, remote_port, public_url)
        self.ssh_options = [str(o) for o in ssh_options]
        self.target = target
        self.on_url = on_url
        self.backoff, self.max_backoff = backoff, max_backoff
        self._lock = threading.Lock()
        self._settled = threading.Event()  # the first run is up, or has ended
        self._proc: subprocess.Popen[bytes] | None = None
        self._output = SshOutput(self.service, self.remote_port)  # what the current run said
        self._thread = threading.Thread(target=self._supervise, name="elwh-tunnel", daemon=True)

    def argv(self) -> list[str]:
        """The ssh command line (no secret in it: the tunnel never sees the webhook secret)."""
        return ssh_argv(
            self.destination,
            self.service,
            remote_port=self.remote_port,
            target=self.target,
            ssh_options=self.ssh_options,
        )

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
            end(proc, pid)
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
        self._output = SshOutput(self.service, self.remote_port)  # what this run says, for last_error
        try:
            proc = start_guard(self.argv())
        except OSError as exc:
            self.last_error = f"cannot start the tunnel guard: {exc}"
            return 0.0
        with self._lock:
            if self._stopping.is_set():
                end(proc, None)
                return 0.0
            self._proc = proc
        code: int | None = None
        up_for = 0.0
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = decode(raw)
            exited = EXIT.match(line)
            if exited:
                code = int(exited.group(1))
                with self._lock:  # down now, before the guard is gone
                    up_for, self._pid, self._up_since = self.uptime, None, None
            else:
                self._read(line)
        proc.wait()
        for pipe in (p for p in (proc.stdin, proc.stdout) if p is not None):
            with contextlib.suppress(OSError):
                pipe.close()
        with self._lock:
            up_for = up_for or self.uptime
            self._proc, self._pid, self._up_since = None, None, None
        if not self._stopping.is_set():
            self.last_error = self._output.exit_reason(code)
        return up_for

    def _read(self, line: str) -> None:
        """One line of the guard's or ssh's output."""
        pid = self._output.feed(line)
        if pid is not None:
            self._pid = pid
        else:
            self._settle()

    def _settle(self) -> None:
        """Up once the forward is confirmed, or, for a service, once it announced its URL."""
        said = self._output
        if self.up:
            return
        if self.service is not None:
            url = (self._fixed or said.url) if said.url else None
        elif said.forwarded:
            port = said.port if said.port is not None else self.remote_port
            url = self._fixed or f"http://{url_host(self._host)}:{port}"
        else:
            url = None
        if url is None:
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
