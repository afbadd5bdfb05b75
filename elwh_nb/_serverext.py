"""The Jupyter server extension: a token-free public hook route, ``<base_url>elwh/hook/<route_id>``.

ElevenLabs can only sign its deliveries (HMAC); it cannot log in to Jupyter. This route
lets exactly that in: POST only, no Jupyter login, the body capped, and forwarded byte
for byte to the receiver that registered the (unguessable) route id, which verifies the
signature. It answers nothing else: other methods and unknown ids get the same short
404/405 whether or not an id exists. One pooled keep-alive connection set to the
receivers is shared by all requests (jupyter-server-proxy opens a new client per
request, and its handler enforces a Jupyter login, so its classes cannot be reused here
without replacing both).
"""

from __future__ import annotations

import atexit
import json
import os
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from . import _routes
from ._receiver import _SLACK, INTERNAL_PREFIX, ROUTE_TOKEN_HEADER, TOO_LARGE_HEADER

# Hop-by-hop headers (RFC 9110 7.6.1) and credentials never go to the receiver; nor do a
# client's internal (X-Elwh-*) headers, which only this route sets.
_DROP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "host",
    "content-length",
    "cookie",
    "authorization",
}


class Forwarder:
    """One aiohttp session (a keep-alive connection pool) for all forwarded deliveries."""

    def __init__(self) -> None:
        self._session: Any = None

    def session(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=60),
                timeout=aiohttp.ClientTimeout(total=300, connect=10),
                auto_decompress=False,
            )
        return self._session

    async def post(self, url: str, body: bytes | bytearray, headers: dict[str, str]) -> tuple[int, bytes]:
        async with self.session().post(url, data=body, headers=headers) as response:
            return response.status, await response.read()


@web.stream_request_body
class PublicHookHandler(JupyterHandler):
    """POST a delivery to a registered receiver, with no Jupyter login."""

    def initialize(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self.route: _routes.Route | None = None
        # The body, held once (no list of chunks and a joined copy) and let go once forwarded:
        # jupyter_server keeps a finished handler reachable for a while (its CallContext stays
        # in asyncio contexts), and a burst of call audio must not pile up in the server.
        self.body = bytearray()
        self.size = 0  # declared or received, for the notice to the receiver
        self.received = 0
        self.too_large: str | None = None  # how a body over the cap was dealt with (see _receiver._HOW)
        self.drain_limit = 0

    def check_xsrf_cookie(self) -> None:
        # No cookie authenticates this route; the receiver checks the HMAC signature.
        return

    def short(self, status: int) -> None:
        if self._finished:
            return
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"ok": False, "status": status}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.short(status_code)

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self._finished:
            return
        if self.request.method != "POST":
            self.short(405)
            return
        route_id = self.path_kwargs.get("route_id", "")
        self.route = _routes.lookup(route_id)
        if self.route is None:
            self.short(404)
            self.request.connection.close()  # type: ignore[union-attr]
            return
        # As the receiver does: read and discard a body a little over the cap (a clean 413
        # for senders that do not wait for "100 Continue"), refuse a bigger one unread.
        self.drain_limit = 2 * self.route.max_body + _SLACK
        self.request.connection.set_max_body_size(self.drain_limit + _SLACK)  # type: ignore[union-attr]
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.route.max_body:
            self.too_large = "discarded"
            self.size = int(length)
            if self.size > self.drain_limit:
                self.too_large = "unread"
                await self.forward(b"")
                self.request.connection.close()  # type: ignore[union-attr]

    async def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self.received += len(chunk)
        assert self.route is not None
        if self.received > self.route.max_body:
            self.too_large = "discarded"
            self.size = max(self.size, self.received)
            self.body = bytearray()
            if self.received > self.drain_limit:
                self.too_large = "cut"
                await self.forward(b"")
                self.request.connection.close()  # type: ignore[union-attr]
            return
        self.body += chunk

    async def forward(self, body: bytes | bytearray) -> None:
        route = self.route
        assert route is not None
        headers = {
            k: v
            for k, v in self.request.headers.get_all()
            if k.lower() not in _DROP and not k.lower().startswith(INTERNAL_PREFIX)
        }
        forwarded = self.request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = (
            f"{forwarded}, {self.request.remote_ip}" if forwarded else str(self.request.remote_ip)
        )
        headers["X-Forwarded-Proto"] = self.request.protocol
        headers[ROUTE_TOKEN_HEADER] = route.token
        if self.too_large:
            headers[TOO_LARGE_HEADER] = f"{self.size} {self.too_large}"
        host = f"[{route.host}]" if ":" in route.host else route.host
        try:
            status, answer = await self.forwarder.post(
                f"http://{host}:{route.port}{route.path}", body, headers
            )
        except Exception:  # the receiver is gone: to the sender, the hook does not exist
            self.short(404)
            return
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(answer)

    @allow_unauthenticated
    async def post(self, route_id: str) -> None:
        if self._finished:
            return
        body, self.body = self.body, bytearray()  # only this call holds it now
        await self.forward(b"" if self.too_large else body)

    @allow_unauthenticated
    def get(self, route_id: str) -> None:
        self.short(405)

    head = put = delete = patch = options = get


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the public hook route to a Jupyter server, and tell receivers it is there."""
    from . import __version__

    base_url = serverapp.web_app.settings.get("base_url", "/")
    pattern = url_path_join(base_url, r"/elwh/hook/(?P<route_id>[^/]*)/?")
    serverapp.web_app.add_handlers(".*$", [(pattern, PublicHookHandler, {"forwarder": Forwarder()})])
    pid = os.getpid()
    _routes.mark_server(pid, base_url, __version__)
    atexit.register(_routes.unmark_server, pid)
    serverapp.log.info("elwh_nb %s: public hook route at %selwh/hook/<route id>", __version__, base_url)
