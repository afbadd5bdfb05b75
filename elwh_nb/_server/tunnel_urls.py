"""What a tunnel's arguments and a tunnel service's output mean: the ssh destination, the
public URL prefix, and the HTTPS URL that localhost.run, serveo or pinggy announces. Pure text."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


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
    return service.announces(ANSI.sub("", line))


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


def prefix(url: str) -> str:
    """A public URL to put the hook path after: ``https://hooks.example.org[/some/prefix]``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"public_url must be an http(s) URL such as https://hooks.example.org, not {url!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def url_host(host: str) -> str:
    """A host as it goes in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host
