"""The registry through which receivers and the Jupyter server extension find each other.

A store's route id (192 random bits, kept in the store file, so the URL lives as long as
the store) names a route file that only the user can read, in Jupyter's data directory:
where the store file is, the body cap, whether the URL was retired, and the receiver that
runs now, if any. The files outlive kernels, Jupyter servers and reboots, so that the
public route can keep deliveries in the store's inbox while its receiver is away. A
marker per server process, in the runtime directory, tells a receiver whether its
Jupyter server serves the public route. Stdlib, jupyter_core, psutil and filelock only: the Jupyter
server imports this module.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROUTE_ID = re.compile(r"[A-Za-z0-9_-]{32}")


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def routes_dir() -> Path:
    """``<jupyter data dir>/elwh_nb/routes``: kept across restarts and reboots."""
    return private_dir("routes")


def private_dir(name: str) -> Path:
    """``<jupyter data dir>/elwh_nb/<name>``, readable by the user alone."""
    from jupyter_core.paths import jupyter_data_dir

    return _private_dir(Path(jupyter_data_dir()) / "elwh_nb" / name)


def servers_dir() -> Path:
    """``<jupyter runtime dir>/elwh_nb/servers``: one marker per running Jupyter server."""
    from jupyter_core.paths import jupyter_runtime_dir

    return _private_dir(Path(jupyter_runtime_dir()) / "elwh_nb" / "servers")


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically with JSON only the user can read (POSIX mode or Windows ACL)."""
    from jupyter_core.paths import secure_write

    tmp = path.with_name(f".tmp-{secrets.token_hex(8)}-{path.name}")
    try:
        with secure_write(str(tmp)) as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists, on every platform (``os.kill(pid, 0)`` is not
    harmless on Windows, where signal 0 is a console Ctrl-C)."""
    import psutil

    return bool(psutil.pid_exists(pid))


@dataclass(frozen=True)
class Live:
    """The receiver that runs for a route now: where to forward, and its token."""

    host: str
    port: int
    path: str
    pid: int
    token: str


@dataclass(frozen=True)
class Route:
    """One route file: the store behind a URL, and its receiver when one runs."""

    store: str
    max_body: int
    created_ns: int
    retired: bool = False
    receiver: Live | None = None


def _file(route_id: str) -> Path | None:
    return routes_dir() / f"{route_id}.json" if ROUTE_ID.fullmatch(route_id) else None


def write(route_id: str, route: Route) -> Path:
    """Write a route file; returns its path."""
    path = _file(route_id)
    if path is None:
        raise ValueError("not a route id")
    write_private(path, asdict(route))
    return path


def lookup(route_id: str) -> Route | None:
    """The route an id names, or None (a malformed id opens nothing; no directory is listed)."""
    path = _file(route_id)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
        live = data.pop("receiver", None)
        return Route(**data, receiver=Live(**live) if live else None)
    except (OSError, ValueError, TypeError):
        return None


def _changing(route_id: str) -> Any:
    """A lock around read-change-write of one route file: a stopping kernel's detach must not
    undo a new kernel's attach (readers need none: files are replaced whole)."""
    from filelock import FileLock

    return FileLock(str(routes_dir() / f".{route_id}.lock"), timeout=10)


def attach(route_id: str, route: Route) -> None:
    """Record the route with its running receiver."""
    with _changing(route_id):
        write(route_id, route)


def detach(route_id: str, pid: int) -> None:
    """The receiver of ``pid`` stopped: deliveries now go to the inbox (the URL stays)."""
    with _changing(route_id):
        route = lookup(route_id)
        if route is not None and route.receiver is not None and route.receiver.pid == pid:
            write(route_id, replace(route, receiver=None))


def remove(route_id: str) -> None:
    """Forget a route (a store in memory: its URL ends with its receiver)."""
    path = _file(route_id)
    if path is not None:
        path.unlink(missing_ok=True)


def retire(route_id: str) -> None:
    """End a URL for good: from now on the route answers 410 Gone and keeps nothing."""
    with _changing(route_id):
        route = lookup(route_id)
        write(
            route_id,
            replace(route, retired=True, receiver=None) if route else Route("", 0, 0, retired=True),
        )


def mark_server(pid: int, hook_port: int | None = None) -> Path:
    """Record that the server process ``pid`` serves the public hook route, and on which
    loopback port it serves only that (``hook_port``; None when it does not).

    What receivers read, and nothing else: that the marker exists (:func:`server_has_route`)
    and ``hook_port`` (:func:`server_hook_port`); the file's name is the pid.
    """
    path = servers_dir() / f"{pid}.json"
    write_private(path, {"hook_port": hook_port})
    return path


def unmark_server(pid: int) -> None:
    (servers_dir() / f"{pid}.json").unlink(missing_ok=True)


def server_has_route(pid: int) -> bool:
    """Whether the live server ``pid`` loaded the extension."""
    path = servers_dir() / f"{pid}.json"
    return path.exists() and pid_alive(pid)


def server_hook_port(pid: int) -> int | None:
    """The hook-only port of the live server ``pid`` (what a tunnel points at), or None."""
    try:
        port = json.loads((servers_dir() / f"{pid}.json").read_text()).get("hook_port")
    except (OSError, ValueError, AttributeError):
        return None
    return port if isinstance(port, int) and not isinstance(port, bool) and pid_alive(pid) else None
