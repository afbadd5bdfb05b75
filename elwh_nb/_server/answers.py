"""How the kit's Tornado handlers answer in JSON: the headers decided once, for every process.

Tornado only (the Jupyter server imports this through its extension).
"""

from __future__ import annotations

from tornado import web


def send_json(
    handler: web.RequestHandler,
    status: int,
    body: bytes | str,
    *,
    body_read: bool = True,
    reason: str | None = None,
) -> None:
    """Finish ``handler`` with the JSON ``body`` and ``status``, never cached.

    ``body_read`` False (answered before the request's body came in): say the connection
    closes, as Tornado closes it, or a client that reused it (a proxy, a tunnel) would send its
    next request into a closed one. ``reason``: the status line's phrase (else the usual one).
    """
    handler.set_status(status, reason)
    handler.set_header("Content-Type", "application/json")
    handler.set_header("Cache-Control", "no-store")
    if not body_read:
        handler.set_header("Connection", "close")
    handler.finish(body)
