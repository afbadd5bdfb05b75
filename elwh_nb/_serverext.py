"""The Jupyter server extension: a token-free public hook route, ``<base_url>elwh/hook/<route_id>``.

ElevenLabs can only sign its deliveries (HMAC); it cannot log in to Jupyter. This route
lets exactly that in: POST only, no Jupyter login, the body capped, and handed to a
:class:`~elwh_nb._relay.Relay`, which forwards it byte for byte to the receiver of the
(unguessable) route id, or keeps it in the store's inbox while that receiver is away. It
answers nothing else: other methods and unknown ids get the same short 404/405 whether or
not an id exists; a retired id gets 410. The handler holds a body once and lets go of it
once handed over (jupyter_server keeps a finished handler reachable for a while).

This module and everything it imports load in the Jupyter server process on every start:
no pandas, numpy, widgets or receiver here (a test checks).
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
from traitlets import Int
from traitlets.config import Configurable

from . import _inbox, _routes
from ._protocol import SLACK
from ._relay import Relay, clean_headers


class ElwhHook(Configurable):
    """Settings of the public hook route (``c.ElwhHook.<name>`` in jupyter_server_config.py)."""

    inbox_max_deliveries = Int(
        _inbox.Limits.max_deliveries,
        config=True,
        help="Deliveries a store's inbox keeps while its receiver is away; past it the route answers 503.",
    )
    inbox_max_bytes = Int(
        _inbox.Limits.max_bytes,
        config=True,
        help="Body bytes a store's inbox keeps while its receiver is away; past it the route answers 503.",
    )


@web.stream_request_body
class PublicHookHandler(JupyterHandler):
    """POST a delivery for a route, with no Jupyter login."""

    def initialize(self, relay: Relay) -> None:
        self.relay = relay
        self.route: _routes.Route | None = None
        self.body = bytearray()
        self.size = 0  # declared or received, for the notice to the receiver
        self.received = 0
        self.too_large: str | None = None  # how a body over the cap was dealt with
        self.drain_limit = 0
        self.body_read = False

    def check_xsrf_cookie(self) -> None:
        # No cookie authenticates this route; the receiver checks the HMAC signature.
        return

    def short(self, status: int) -> None:
        if self._finished:
            return
        self.clear()
        self.answer(status, json.dumps({"ok": False, "status": status}).encode())

    def answer(self, status: int, body: bytes) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        if not self.body_read:
            # Tornado closes a connection whose request body it has not read: say so, or a
            # client that keeps its connections (a proxy, a tunnel) sends its next request
            # into a closed one.
            self.set_header("Connection", "close")
        self.finish(body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.short(status_code)

    async def prepare(self) -> None:  # type: ignore[override]
        route_id = self.path_kwargs.get("route_id", "")
        if route_id:  # the id is the URL's secret part: the server's request log shows a stand-in
            self.request.uri = self.request.path = self.request.path.replace(route_id, "<route id>")
        await super().prepare()
        if self._finished:
            return
        if self.request.method != "POST":
            self.short(405)
            return
        self.route = _routes.lookup(route_id)
        if self.route is None or self.route.retired:
            self.short(404 if self.route is None else 410)
            self.request.connection.close()  # type: ignore[union-attr]
            return
        # As the receiver does: read and discard a body a little over the cap (a clean 413
        # for senders that do not wait for "100 Continue"), refuse a bigger one unread.
        self.drain_limit = 2 * self.route.max_body + SLACK
        self.request.connection.set_max_body_size(self.drain_limit + SLACK)  # type: ignore[union-attr]
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.route.max_body:
            self.too_large = "discarded"
            self.size = int(length)
            if self.size > self.drain_limit:
                self.too_large = "unread"
                await self.hand_over()
                self.request.connection.close()  # type: ignore[union-attr]

    async def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self.received += len(chunk)
        assert self.route is not None
        if self.received > self.route.max_body:
            self.too_large = self.too_large if self.too_large == "unread" else "discarded"
            self.size = max(self.size, self.received)
            self.body = bytearray()
            if self.received > self.drain_limit:
                self.too_large = "cut"
                await self.hand_over()
                self.request.connection.close()  # type: ignore[union-attr]
            return
        self.body += chunk

    async def hand_over(self) -> None:
        """Give the body to the relay (this handler keeps no reference) and send its answer."""
        route = self.route
        assert route is not None
        body, self.body = self.body, bytearray()
        if self.too_large:
            body = bytearray()
        headers = clean_headers(self.request.headers.get_all())
        forwarded = self.request.headers.get("X-Forwarded-For")
        remote = str(self.request.remote_ip)
        headers["X-Forwarded-For"] = f"{forwarded}, {remote}" if forwarded else remote
        headers["X-Forwarded-Proto"] = self.request.protocol
        notice = f"{self.size} {self.too_large}" if self.too_large else None
        reply = await self.relay.deliver(route, body, headers, remote=remote, too_large=notice)
        del body
        self.answer(reply.status, reply.body)

    @allow_unauthenticated
    async def post(self, route_id: str) -> None:
        self.body_read = True  # Tornado calls the method once the whole body is in
        if self._finished:
            return
        await self.hand_over()

    @allow_unauthenticated
    def get(self, route_id: str) -> None:
        self.short(405)

    head = put = delete = patch = options = get


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the public hook route to a Jupyter server, and tell receivers it is there."""
    from . import __version__

    settings = ElwhHook(parent=serverapp)
    relay = Relay(_inbox.Limits(settings.inbox_max_deliveries, settings.inbox_max_bytes))
    base_url = serverapp.web_app.settings.get("base_url", "/")
    pattern = url_path_join(base_url, r"/elwh/hook/(?P<route_id>[^/]*)/?")
    serverapp.web_app.add_handlers(".*$", [(pattern, PublicHookHandler, {"relay": relay})])
    pid = os.getpid()
    _routes.mark_server(pid, base_url, __version__)
    atexit.register(_routes.unmark_server, pid)
    serverapp.log.info(
        "elwh_nb %s: public hook route at %selwh/hook/<route id>; inboxes hold up to %d deliveries, %d bytes",
        __version__,
        base_url,
        settings.inbox_max_deliveries,
        settings.inbox_max_bytes,
    )
