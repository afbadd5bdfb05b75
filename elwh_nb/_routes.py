"""The files through which receivers and the Jupyter server extension find each other.

A receiver registers a random route id (192 bits) in a file only the user can read; the
server extension looks the id up to know where to forward. The extension leaves a marker
per server process so that a receiver can tell whether its Jupyter server loaded it.
Everything lives under Jupyter's per-user runtime directory, which a kernel shares with
the server that started it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROUTE_ID = re.compile(r"[A-Za-z0-9_-]{32}")


def runtime_dir() -> Path:
    """``<jupyter runtime dir>/elwh_nb``, created private to the user."""
    from jupyter_core.paths import jupyter_runtime_dir

    path = Path(jupyter_runtime_dir()) / "elwh_nb"
    for sub in (path, path / "routes", path / "servers"):
        sub.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def new_route_id() -> str:
    """An unguessable id: 24 random bytes, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (POSIX)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Route:
    """Where the extension forwards deliveries for one route id."""

    host: str
    port: int
    path: str
    max_body: int
    pid: int
    token: str = ""  # sent with each forwarded request: the receiver trusts X-Elwh-* headers only with it


def register(route_id: str, route: Route) -> Path:
    """Write the route file (mode 0600); returns its path."""
    path = runtime_dir() / "routes" / f"{route_id}.json"
    _write_private(path, asdict(route))
    return path


def unregister(route_id: str) -> None:
    """Remove a route; unknown ids are fine."""
    if ROUTE_ID.fullmatch(route_id):
        (runtime_dir() / "routes" / f"{route_id}.json").unlink(missing_ok=True)


def lookup(route_id: str) -> Route | None:
    """The live route for an id, or None (bad id, unknown, or its process is gone)."""
    if not ROUTE_ID.fullmatch(route_id):
        return None
    path = runtime_dir() / "routes" / f"{route_id}.json"
    try:
        route = Route(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not pid_alive(route.pid):
        path.unlink(missing_ok=True)
        return None
    return route


def mark_server(pid: int, base_url: str, version: str) -> Path:
    """Record that the server process ``pid`` serves the public hook route."""
    path = runtime_dir() / "servers" / f"{pid}.json"
    _write_private(path, {"pid": pid, "base_url": base_url, "version": version})
    return path


def unmark_server(pid: int) -> None:
    (runtime_dir() / "servers" / f"{pid}.json").unlink(missing_ok=True)


def server_has_route(pid: int) -> bool:
    """Whether the live server ``pid`` loaded the extension."""
    path = runtime_dir() / "servers" / f"{pid}.json"
    return path.exists() and pid_alive(pid)
