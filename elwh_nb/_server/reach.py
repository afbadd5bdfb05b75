"""How the outside reaches one receiver: its public route, a tunnel, and the URL to give out."""

from __future__ import annotations

import os
import time
import warnings

from .._core.protocol import new_route_id
from .._core.store import EventStore
from . import routes as _routes
from . import tunnel as _tunnel
from . import tunnel_help as _tunnel_help
from . import tunnel_urls as _tunnel_urls
from . import urls as _urls
from .config import ReceiverConfig


def connectable(host: str) -> str:
    """An address the server extension can connect to for a listening host."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


class Reach:
    """The Jupyter server around a receiver, the store's route on it, and a tunnel or an
    adopted public URL; ``url`` is what to give ElevenLabs.

    ``stacklevel``: the caller's, for warnings that point at the user's ``start()`` call.
    """

    def __init__(
        self,
        config: ReceiverConfig,
        *,
        store: EventStore,
        port: int,
        local_url: str,
        token: str,
        stacklevel: int,
    ) -> None:
        tunnel, public_url, path = config.tunnel, config.public_url, config.path
        self.port, self.path, self.local_url = port, path, local_url
        # With a tunnel, public_url is the tunnel's public address, not the Jupyter server's.
        self.ctx = _urls.detect(public_url=None if tunnel else public_url)
        # The URL belongs to the store: its route id is kept in the file (made on first use).
        started_ns = time.time_ns()
        stored_route = store.route()
        self.created_at = (stored_route[1] if stored_route else started_ns) / 1e9
        self.is_new = stored_route is None or stored_route[1] >= started_ns
        self.route_id: str | None = None
        if self.ctx is not None and self.ctx.server_pid and _routes.server_has_route(self.ctx.server_pid):
            self.route_id = stored_route[0] if stored_route else new_route_id()
            _routes.attach(
                self.route_id,
                _routes.Route(
                    store=str(store.path or ""),
                    max_body=config.max_body,
                    created_ns=int(self.created_at * 1e9),
                    receiver=_routes.Live(
                        host=connectable(config.host), port=port, path=path, pid=os.getpid(), token=token
                    ),
                ),
            )
        self.in_memory = store.path is None
        where = _urls.runtime()
        self.urls = _urls.hook_urls(
            self.ctx,
            local_url=local_url,
            port=port,
            path=path,
            route_id=self.route_id,
            stable=stored_route is not None,
            new=self.is_new,
            where=where,
        )
        # A tunnel goes to the hook-only port of the Jupyter server when it has one (so the
        # hook route's inbox keeps deliveries while no receiver runs), else to this receiver.
        hook_port = self.hook_port if self.route_id is not None else None
        self.tunnel_target = ("127.0.0.1", hook_port) if hook_port else (connectable(config.host), port)
        self.tunnel_path = f"/elwh/hook/{self.route_id}" if hook_port else path
        self.via_hook_port = hook_port is not None
        self.port_is_fixed = bool(hook_port or config.port)
        self.tunnel: _tunnel.SshTunnel | None = None
        self.adopted: tuple[str, str] | None = None  # (the public URL's prefix, "public_url" or "ngrok")
        if tunnel is not None:
            self.tunnel = _tunnel.SshTunnel(
                tunnel,
                target=self.tunnel_target,
                remote_port=config.remote_port,
                public_url=public_url,
                ssh_options=config.ssh_options or (),
                on_url=self._tunnel_moved,
            )
        elif public_url is not None and self.ctx is None:
            self.adopted = (_tunnel_urls.prefix(public_url), "public_url")
        elif public_url is None and (self.ctx is None or self.ctx.origin_is_local):
            found = _tunnel_help.ngrok_url(self.tunnel_target[1])
            if found:
                self.adopted = (_tunnel_urls.prefix(found), "ngrok")
        if (
            self.tunnel is None
            and self.adopted is None
            and ((self.ctx is not None and self.route_id is None) or where is not None)
        ):
            # The one thing to act on: no public route on this server yet, or no tunnel where one is needed.
            warnings.warn(self.urls.note or "", stacklevel=stacklevel + 1)

    def start_tunnel(self, timeout: float, *, stacklevel: int) -> None:
        """Start the tunnel, if any, and wait up to ``timeout`` for it (a warning if it is not up)."""
        if self.tunnel is None:
            return
        up = self.tunnel.start(timeout)  # a TunnelError (a ReceiverError) when it cannot start
        if not up:
            warnings.warn(
                f"The ssh tunnel via {self.tunnel.via} is not up after {timeout:.0f} s "
                f"({self.tunnel.last_error or 'no answer yet'}); it keeps trying, and rx.url "
                "follows it.",
                stacklevel=stacklevel + 1,
            )

    def close(self) -> None:
        """The receiver stops: the tunnel first (nothing more comes through it), then the route
        keeps deliveries in the inbox (a store in memory has none: its route ends)."""
        if self.tunnel is not None:
            self.tunnel.stop()
        if self.route_id:
            if self.in_memory:
                _routes.remove(self.route_id)
            else:
                _routes.detach(self.route_id, os.getpid())

    @property
    def url(self) -> str:
        origin = self.tunnel.url if self.tunnel is not None else self.adopted[0] if self.adopted else None
        return origin + self.tunnel_path if origin else self.urls.url

    @property
    def hook_port(self) -> int | None:
        pid = self.ctx.server_pid if self.ctx is not None else None
        return _routes.server_hook_port(pid) if pid else None

    @property
    def note(self) -> str | None:
        """What to check about :attr:`url`: where it goes, and that it is HTTPS."""
        notes = [note for note in (self._where_note(), _urls.https_note(self.url)) if note]
        return " ".join(notes) or None

    def _where_note(self) -> str | None:
        target = "{}:{}{}".format(*self.tunnel_target, self.tunnel_path)
        if self.tunnel is not None:
            t = self.tunnel
            return _urls.tunnel_note(
                via=t.via,
                target=target,
                up=t.up,
                had_url=t.url is not None,
                stable=t.stable,
                changed_at=t.url_changed_at,
                last_error=t.last_error,
            )
        if self.adopted is not None:
            return _urls.adopted_note(how=self.adopted[1], url=self.adopted[0], target=target)
        return self.urls.note

    def story(self, kept_while_away: int) -> str:
        age = _age(time.time() - self.created_at)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created_at))
        story = f"URL set up {when}, {age} ago"
        if kept_while_away:
            story += f"; {kept_while_away} deliveries kept while the receiver was away"
        return story

    def tunnel_help(self) -> str:
        return _tunnel_help.help_text(
            port=self.tunnel_target[1],
            path=self.tunnel_path,
            hook_port=self.via_hook_port,
            port_is_fixed=self.port_is_fixed,
        )

    def target(self, via: str) -> tuple[str, dict[str, str]]:
        """Where (and with which headers) the kit's own sender delivers ``via`` a route."""
        ctx = self.ctx
        local = ctx.local_origin if ctx is not None else None
        if via == "auto":
            via = "public" if self.route_id and local else "proxy" if ctx is not None and local else "direct"
        if via == "public" and self.route_id and ctx is not None and local:
            return f"{local}{ctx.base_url}elwh/hook/{self.route_id}", {}
        if via == "proxy" and ctx is not None and local:
            headers = {"Authorization": f"token {ctx.token}"} if ctx.token else {}
            return f"{local}{ctx.base_url}proxy/{self.port}{self.path}", headers
        if via == "direct":
            return self.local_url, {}
        if via == "tunnel" and (self.tunnel is not None or self.adopted is not None):
            return self.url, {}
        raise ValueError(f"cannot send via {via!r} here; use 'direct'")

    def _tunnel_moved(self, old: str | None, new: str) -> None:
        """The tunnel's public URL changed (a quick tunnel reconnected): say it, in one line."""
        if old is None:
            return
        path = self.tunnel_path
        warnings.warn_explicit(
            f"The tunnel's public URL changed: ElevenLabs needs the new URL {new}{path} "
            f"(it was {old}{path}).",
            UserWarning,
            "elwh_nb",  # one line, from whichever thread: no source line to show
            0,
        )


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
