"""What ``rx.tunnel`` shows: up or down and since when, where it goes, its URL, restarts and the
last error, in a line; ``SshTunnel`` keeps these fields current."""

from __future__ import annotations

import threading
import time

from .tunnel_urls import Destination, Service, prefix


class TunnelStatus:
    """The state of a supervised tunnel, as the Receiver and the dashboard read it."""

    def __init__(
        self, destination: Destination, service: Service | None, remote_port: int, public_url: str | None
    ) -> None:
        self.destination, self.service, self.remote_port = destination, service, remote_port
        self._fixed = prefix(public_url) if public_url else None
        self._host = destination.host  # the HostName ssh connects to, once resolved
        self.url: str | None = None  # the public origin, kept while the tunnel reconnects
        self.previous_url: str | None = None
        self.url_changed_at: float | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self.delay = 0.0  # the wait before the latest restart (backoff)
        self.retry_at: float | None = None  # when the next attempt starts, while waiting
        self._stopping = threading.Event()
        self._pid: int | None = None
        self._up_since: float | None = None

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
    def https(self) -> bool | None:
        """Whether the tunnel's URL is HTTPS, as ElevenLabs requires (None before it has one)."""
        return None if self.url is None else self.url.lower().startswith("https://")

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
        if self.https is False:
            parts.append("its URL is plain HTTP: ElevenLabs needs HTTPS")
        if self.last_error and not self.up:
            parts.append(f"last error: {self.last_error}")
        if self.url_changed_at is not None:
            when = time.strftime("%H:%M:%S", time.localtime(self.url_changed_at))
            parts.append(f"URL changed at {when}: ElevenLabs needs the new one")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return (
            f"<SshTunnel {'up' if self.up else 'down'} via {self.via}: url={self.url}, https={self.https}, "
            f"restarts={self.restarts}, uptime={self.uptime:.0f}s, last_error={self.last_error!r}>"
        )


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
