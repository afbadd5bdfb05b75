"""A tunnel the user runs: adopt a running ngrok agent's URL from its local API, and the
one-line commands (ssh, cloudflared, ngrok) that ``rx.tunnel_help()`` prints."""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.request
from urllib.parse import urlsplit

NGROK_API_ENV = "ELWH_NGROK_API"
NGROK_API = "http://127.0.0.1:4040/api/tunnels"  # the agent's documented local API


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
