"""The OpenSSH client under its guard process: the command line, starting and ending it, and
what one run of it says (its pid, the forward confirmed, the port or URL, why it ended).

Nothing here ever sees the webhook secret.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence

from .tunnel_urls import ANSI, Destination, Service, announced_url, url_host

SSH_ENV = "ELWH_SSH"  # the ssh executable (default: ``ssh`` on PATH)

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
EXIT = re.compile(r"^elwh-tunnel-exit (-?\d+)$")
# OpenSSH's own words: "Allocated port N" (INFO) when the server picked the port (-R 0),
# "remote forward success for: listen ..." (DEBUG1) when the server bound the one asked for.
_ALLOCATED = re.compile(r"^Allocated port (\d+) for remote forward")
_FORWARDED = re.compile(r"^debug1: remote forward success for: listen")
_NOISE = re.compile(r"^(debug\d|Transferred: |Bytes per second|Warning: Permanently added)")


def ssh() -> str:
    return os.environ.get(SSH_ENV) or "ssh"


def resolve_host(dest: Destination, ssh_options: Sequence[str]) -> str:
    """The host name ssh really connects to (``HostName`` from the user's ssh config), for the URL."""
    argv = [ssh(), *ssh_options, "-G"]
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


def ssh_argv(
    destination: Destination,
    service: Service | None,
    *,
    remote_port: int,
    target: tuple[str, int],
    ssh_options: Sequence[str],
) -> list[str]:
    """The ssh command line (no secret in it: the tunnel never sees the webhook secret)."""
    host, port = target
    options = [
        # The user's options come first: for ssh, the first value given for an option wins.
        *ssh_options,
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
    if service is None:
        # Your own server: no shell, keys or agent only (a prompt would wait forever here).
        options += ["-o", "BatchMode=yes", "-N"]
    else:
        # The services announce the URL in a session; first contact trusts their host key.
        options += ["-o", "StrictHostKeyChecking=accept-new", "-T"]
    ssh_port = destination.port or (service.ssh_port if service else None)
    if ssh_port is not None:
        options += ["-p", str(ssh_port)]
    return [ssh(), *options, "-R", f"{remote_port}:{url_host(host)}:{port}", destination.login]


def start_guard(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Run ``argv`` (ssh) under the guard, its output and ssh's merged on the guard's stdout."""
    flags = {"start_new_session": True} if os.name == "posix" else {}
    return subprocess.Popen(
        [sys.executable, "-c", _GUARD, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **flags,  # type: ignore[call-overload]
    )


def end(proc: subprocess.Popen[bytes], pid: int | None) -> None:
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


def decode(raw: bytes) -> str:
    """One raw output line as text: at most 4 KiB, no colours, no line end."""
    return ANSI.sub("", raw[:4096].decode("utf-8", "replace")).rstrip()


class SshOutput:
    """What one run of ssh has said so far: the forward confirmed (and the port the server
    picked), the URL a service announced, and its last meaningful lines, for errors."""

    def __init__(self, service: Service | None, remote_port: int) -> None:
        self.service, self.remote_port = service, remote_port
        self.forwarded = False
        self.port: int | None = None
        self.url: str | None = None
        self.recent: deque[str] = deque(maxlen=20)

    def feed(self, line: str) -> int | None:
        """Take one line of the guard's or ssh's output; the ssh pid if the guard announced it."""
        pid = _PID.match(line)
        if pid:
            return int(pid.group(1))
        allocated = _ALLOCATED.match(line)
        if allocated:
            self.port = int(allocated.group(1))
            self.forwarded = True
        elif _FORWARDED.match(line) and self.remote_port != 0:  # for -R 0, wait for the port's number
            self.forwarded = True
        if self.service is not None and self.url is None:
            self.url = announced_url(self.service, line)
        if line and not _NOISE.match(line):
            self.recent.append(line[:300])
        return None

    def exit_reason(self, code: int | None) -> str:
        """Why the run ended, in a line: ssh's exit code or signal and the last thing it said."""
        said = self.recent[-1] if self.recent else ""
        if code is None:
            return said or "the tunnel guard ended"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"ssh was killed ({name})" + (f"; it last said: {said}" if said else "")
        return f"ssh exited with code {code}" + (f": {said}" if said else "")
