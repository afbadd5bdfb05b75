"""Which URL to give out: the Jupyter server (or JupyterHub) this kernel runs under, and its origin.

Order for the public origin: an explicit ``public_url`` argument, ``ELWH_PUBLIC_URL``,
``JUPYTERHUB_PUBLIC_URL``, ``JUPYTERHUB_HOST``, else the Jupyter server's own (local)
URL with a note that its host may need replacing. URLs given out never contain a token;
the token is kept only so that the kit's own sender can use the authenticated proxy.
Where no public URL can exist without a tunnel (Colab, a VS Code kernel), the note says so
and gives the one line that opens one.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class JupyterContext:
    """The Jupyter server behind this kernel, as far as it can be known from inside."""

    base_url: str
    origin: str
    origin_is_local: bool
    local_origin: str | None
    server_pid: int | None
    hub: bool
    token: str | None = field(default=None, repr=False)


def _origin(url: str) -> str | None:
    parts = urlsplit(url.strip())
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def _slashed(base_url: str) -> str:
    base = "/" + base_url.strip("/") + "/"
    return "/" if base == "//" else base


def running_servers() -> list[dict[str, Any]]:
    """Jupyter servers of this user, from their runtime files."""
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return []
    try:
        return list(list_running_servers())
    except OSError:
        return []


def detect(
    env: Mapping[str, str] | None = None,
    servers: Iterable[Mapping[str, Any]] | None = None,
    public_url: str | None = None,
) -> JupyterContext | None:
    """Describe the Jupyter server of this kernel, or None outside Jupyter."""
    env = os.environ if env is None else env
    parent = env.get("JPY_PARENT_PID", "")
    server: Mapping[str, Any] | None = None
    if parent.isdigit():
        candidates = running_servers() if servers is None else servers
        server = next((s for s in candidates if str(s.get("pid")) == parent), None)
    hub_prefix = env.get("JUPYTERHUB_SERVICE_PREFIX")
    if server is None and not hub_prefix:
        return None
    base_url = _slashed(hub_prefix or str(server.get("base_url", "/") if server else "/"))
    local = _origin(str(server["url"])) if server and server.get("url") else None
    explicit = [public_url, env.get("ELWH_PUBLIC_URL"), env.get("JUPYTERHUB_PUBLIC_URL")]
    host = env.get("JUPYTERHUB_HOST", "")
    explicit.append(host if host.startswith(("http://", "https://")) else None)
    origin = next((o for o in (_origin(u) for u in explicit if u) if o), None)
    token = env.get("JUPYTERHUB_API_TOKEN") or (
        str(server.get("token")) if server and server.get("token") else None
    )
    return JupyterContext(
        base_url=base_url,
        origin=origin or local or "http://127.0.0.1",
        origin_is_local=origin is None,
        local_origin=local,
        server_pid=int(parent) if server is not None else None,
        hub=bool(hub_prefix),
        token=token,
    )


TUNNEL_LINE = 'elwh_nb.start(secret, tunnel="ssh://nokey@localhost.run")'
_VSCODE = ("VSCODE_PID", "VSCODE_CWD", "VSCODE_IPC_HOOK", "VSCODE_IPC_HOOK_CLI")


def runtime(
    env: Mapping[str, str] | None = None, find_spec: Callable[[str], object] | None = None
) -> str | None:
    """``"colab"`` where ``google.colab`` is importable, ``"vscode"`` in a kernel VS Code started."""
    env = os.environ if env is None else env
    find_spec = find_spec or importlib.util.find_spec
    try:
        if find_spec("google.colab") is not None:
            return "colab"
    except (ImportError, ValueError):  # no ``google`` package at all
        pass
    if any(env.get(name) for name in _VSCODE):  # what VS Code gives the kernels it starts
        return "vscode"
    return None


def tunnel_needed(where: str) -> str:
    """The note for a kernel that the internet cannot reach without a tunnel."""
    name = {"colab": "Colab", "vscode": "VS Code"}.get(where, where)
    return (
        f"On {name}, ElevenLabs cannot reach this receiver: open a tunnel with one argument, "
        f"{TUNNEL_LINE} (rx.tunnel_help() prints the cloudflared and ngrok commands)."
    )


def is_https(url: str | None) -> bool:
    """Whether ``url`` is HTTPS: the only kind ElevenLabs lets a webhook, Studio or speech-to-text call."""
    return bool(url) and str(url).lower().startswith("https://")


def https_note(url: str) -> str | None:
    """What to do when ``url`` is plain HTTP, which ElevenLabs refuses to register; None for HTTPS."""
    if is_https(url):
        return None
    return (
        "ElevenLabs accepts only HTTPS webhook URLs and rx.url is plain HTTP: register it through a "
        f"tunnel that terminates TLS ({TUNNEL_LINE}, or cloudflared: rx.tunnel_help()) or a TLS front "
        "end given as start(public_url=...)."
    )


def tunnel_note(
    *,
    via: str,
    target: str,
    up: bool,
    had_url: bool,
    stable: bool,
    changed_at: float | None,
    last_error: str | None,
) -> str:
    """What ``rx.url_note`` says about a URL that goes through an SSH tunnel."""
    notes = [f"rx.url goes through the SSH tunnel via {via} to {target}, and reaches nothing else."]
    if not up:
        why = f" ({last_error})" if last_error else ""
        notes.append(
            f"The tunnel is down and reconnecting{why}; rx.url is the URL it had."
            if had_url
            else f"The tunnel is not up yet{why}: rx.url is local until it is."
        )
    if changed_at is not None:
        when = time.strftime("%H:%M:%S", time.localtime(changed_at))
        notes.append(f"Its URL changed at {when}: give ElevenLabs the new rx.url.")
    if not stable:
        notes.append(
            "This URL can change when the tunnel reconnects (a warning says so); for one that stays, "
            "see rx.tunnel_help()."
        )
    return " ".join(notes)


def adopted_note(*, how: str, url: str, target: str) -> str:
    """What ``rx.url_note`` says about a URL adopted from ``public_url=`` or a running ngrok agent."""
    if how == "ngrok":
        return (
            f"rx.url is the running ngrok agent's tunnel {url} to {target}, found through its local API. "
            "ngrok's free URLs change when the agent restarts: then start() again (or use a static domain)."
        )
    return f"rx.url is built from public_url={url!r}: a tunnel or proxy there must reach {target}."


@dataclass(frozen=True)
class HookUrls:
    """The URLs of one receiver. ``url`` is the one to give out."""

    local_url: str
    url: str
    proxy_url: str | None
    public_url: str | None
    note: str | None


def hook_urls(
    ctx: JupyterContext | None,
    *,
    local_url: str,
    port: int,
    path: str,
    route_id: str | None,
    stable: bool = True,
    new: bool = False,
    where: str | None = None,
) -> HookUrls:
    """The receiver's URLs; ``route_id`` is None when the server has no public route.

    ``stable``: the route id is kept in the store file (not a store in memory); ``new``:
    it was made just now (a new store file), so any URL given out before is not this one;
    ``where``: :func:`runtime`, when the kernel runs where only a tunnel can reach it.
    """
    if ctx is None:
        return HookUrls(local_url, local_url, None, None, tunnel_needed(where) if where else None)
    prefix = ctx.origin + ctx.base_url
    proxy_url = f"{prefix}proxy/{port}{path}"
    public_url = f"{prefix}elwh/hook/{route_id}" if route_id else None
    notes = []
    if route_id is not None and not stable:
        notes.append(
            "This receiver keeps its events in memory (store=':memory:'), so its URL is new on every "
            "start() and nothing is kept while it is stopped: use a store file to keep one URL."
        )
    elif route_id is not None and new:
        notes.append(
            "A new URL: this store file had none yet. Give it to ElevenLabs; it stays the same for "
            "this store across kernel and server restarts (a URL from another store file is not this one)."
        )
    if route_id is not None and ctx.hub:
        notes.append(
            "On JupyterHub, deliveries sent while the hub has your server stopped (idle culling) get the "
            "hub's 403 and are lost: ElevenLabs does not retry a 4xx. Keep the server running while "
            "deliveries are due, or have the hub run a team receiver."
        )
    if route_id is None:
        notes.append(
            "This Jupyter server has not loaded the elwh_nb extension (installed after it "
            "started?), so rx.url is the proxy URL, which needs a Jupyter login: restart "
            "the Jupyter server to get the token-free public hook route."
        )
    if ctx.origin_is_local:
        notes.append(
            f"The host in rx.url is the Jupyter server's local address ({ctx.origin}); "
            "ElevenLabs needs one it can reach: set ELWH_PUBLIC_URL=https://your.host "
            "or pass public_url= to start()."
        )
    if where == "colab":  # Colab's own server is not reachable from the internet at all
        notes = [tunnel_needed(where)]
    return HookUrls(local_url, public_url or proxy_url, proxy_url, public_url, " ".join(notes) or None)
