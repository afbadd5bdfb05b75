"""The Jupyter server extension: a token-free public hook route, ``<base_url>elwh/hook/<route_id>``.

ElevenLabs can only sign its deliveries (HMAC); it cannot log in to Jupyter. This route
lets exactly that in: POST only, no Jupyter login, the body capped, and handed to a
:class:`~elwh_nb._server.relay.Relay`, which forwards it byte for byte to the receiver of the
(unguessable) route id, or keeps it in the store's inbox while that receiver is away. It
answers nothing else: other methods and unknown ids get the same short 404/405 whether or
not an id exists; a retired id gets 410. The handler holds a body once and lets go of it
once handed over (jupyter_server keeps a finished handler reachable for a while).

The same route is also served on a hook-only port (``127.0.0.1:<hook port>/elwh/hook/<id>``)
by a plain Tornado application that has nothing else: no Jupyter handler, login, static
file or proxy. That is the port a tunnel points at, so a tunnel never reaches Jupyter.

This module and everything it imports load in the Jupyter server process on every start:
no pandas, numpy, widgets or receiver here (a test checks).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
from typing import Any
from urllib.parse import unquote

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.log import log_request
from jupyter_server.utils import url_path_join
from tornado import netutil, web
from tornado.ioloop import IOLoop
from traitlets import Int
from traitlets.config import Configurable

from .._core import callback_urls as _callback_urls
from .._core import inbox as _inbox
from .._core import protocol as _protocol
from .._core.bodies import BodyLimit
from .._core.protocol import CALLBACK_HEADER, MAX_CALL_BODY, SLACK
from . import routes as _routes
from .answers import send_json
from .capped import CappedHTTPServer
from .relay import Relay, clean_headers

HOOK_PATH = r"/elwh/hook/(?P<route_id>[^/]*)/?"
#: Agent tools and call starts, under a route: answered by the receiver, never kept.
CALL_PATH = r"/elwh/hook/(?P<route_id>[^/]+)/(?P<call>(?:tools/[A-Za-z0-9_-]{1,64}|initiation)(?:/[^?]*)?)"
CALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: A callback URL under a route (see .._core.callback_urls): a delivery, whose token the receiver checks.
CALLBACK_PATH = r"/elwh/hook/(?P<route_id>[^/]+)" + _callback_urls.PATH
HOOK_PORT_OFFSET = 1000
ANY_ROUTE_ID = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32}(?![A-Za-z0-9_-])")


#: What a request that is not a POST hears: the URL is for ElevenLabs' signed deliveries.
ABOUT = (
    "This is an elwh-nb webhook URL: it takes signed POST deliveries from ElevenLabs (each "
    "with an ElevenLabs-Signature header). Opening it in a browser does nothing; give the URL "
    "to ElevenLabs and see what arrives in the notebook that started the receiver."
)
ABOUT_PAGE = (
    "<!doctype html><meta charset='utf-8'><title>elwh-nb webhook URL</title>"
    "<body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
    "<h1 style='font-size:1.3em'>An elwh-nb webhook URL</h1>"
    "<p>It takes signed <code>POST</code> deliveries from ElevenLabs (each with an "
    "<code>ElevenLabs-Signature</code> header). Opening it in a browser does nothing.</p>"
    "<p>Give this URL to ElevenLabs; what arrives shows in the notebook that started the receiver.</p>"
)


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
    inbox_min_free = Int(
        _inbox.Limits.min_free,
        config=True,
        help=(
            "Bytes kept free on the disk of a store's file: a delivery kept while its receiver is away "
            "that would leave less is answered 503 (ElevenLabs retries), so that the disk never fills "
            "and the receiver has room to move what waits into events."
        ),
    )
    hook_port = Int(
        None,
        allow_none=True,
        config=True,
        help=(
            "Loopback port (127.0.0.1) that serves only the hook routes, at /elwh/hook/<route id>: "
            "point tunnels here, never at the Jupyter port. Default: the Jupyter server's port + 1000. "
            "0 turns it off. If it is taken, the server runs without it (a warning says so)."
        ),
    )


def default_hook_port(server_port: int) -> int:
    """The Jupyter server's port + 1000 (- 1000 near the top of the range); 0 without a port.

    Derived from the server's port so that it is the same on every start of the same
    configuration (a tunnel set up once keeps working) and differs for servers on different
    ports. 1000 clears the ports Jupyter itself tries when its port is taken (the next few,
    then random ones within 2 * port_retries, 50 by default), so the hook port of one server
    is not the Jupyter port of its neighbour.
    """
    if server_port <= 0:
        return 0
    port = server_port + HOOK_PORT_OFFSET
    return port if port <= 65535 else server_port - HOOK_PORT_OFFSET


def forwarded_headers(request: Any) -> dict[str, str]:
    """What the route sends on: the request's headers cleaned (see :func:`clean_headers`), its
    ``Host`` as the sender gave it, and the peer this route saw in its own header."""
    headers = clean_headers(request.headers.get_all())
    if request.host:
        headers["Host"] = request.host
    headers[_protocol.PEER_HEADER] = str(request.remote_ip)
    return headers


class ShortAnswers(web.RequestHandler):
    """JSON answers; errors as a short body that says nothing about what exists."""

    body_read = False  # set once the whole request body is in

    def short(self, status: int) -> None:
        if self._finished:
            return
        self.clear()
        self.answer(status, json.dumps({"ok": False, "status": status}).encode())

    def answer(self, status: int, body: bytes) -> None:
        send_json(self, status, body, body_read=self.body_read)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.short(status_code)

    def not_a_post(self) -> None:
        """405, saying what the URL is for: a browser's GET gets a short page, anything else JSON.
        The same for every id, known or not, live or retired: it tells nothing about any."""
        if self._finished:
            return
        self.clear()
        self.set_header("Allow", "POST")
        if "text/html" in self.request.headers.get("Accept", ""):
            self.set_status(405)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Security-Policy", "default-src 'none'")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Cache-Control", "no-store")
            if not self.body_read:
                self.set_header("Connection", "close")
            self.finish(ABOUT_PAGE)
            return
        self.answer(405, json.dumps({"ok": False, "status": 405, "error": ABOUT}).encode())


class CappedBody(ShortAnswers):
    """A route handler that streams its body against a :class:`BodyLimit` and hands it on with
    :meth:`send_on` (which sends the answer): once the body is in, or at once when it is over."""

    body: bytearray  # set by capped(), with the limit
    limit: BodyLimit | None = None  # once known (a route's max_body needs its route)

    async def send_on(self) -> None:
        raise NotImplementedError

    async def capped(self, limit: BodyLimit) -> None:
        """From :meth:`prepare`: read under ``limit``, or answer now if the declared size is far over."""
        self.limit, self.body = limit, bytearray()
        self.request.connection.set_max_body_size(limit.connection_limit)  # type: ignore[union-attr]
        if limit.declare(self.request.headers.get("Content-Length")):
            await self.send_on()
            self.request.connection.close()  # type: ignore[union-attr]

    async def data_received(self, chunk: bytes) -> None:
        if self._finished or self.limit is None:
            return
        if self.limit.receive(len(chunk)):
            self.body += chunk
            return
        self.body = bytearray()
        if self.limit.cut:
            await self.send_on()
            self.request.connection.close()  # type: ignore[union-attr]


@web.stream_request_body
class RouteHandler(CappedBody):
    """POST a delivery for a route, with no login: served as is on the hook-only port, and
    as :class:`PublicHookHandler` on Jupyter's port."""

    def initialize(self, relay: Relay) -> None:
        self.relay = relay
        self.route: _routes.Route | None = None

    def check_xsrf_cookie(self) -> None:
        # No cookie authenticates this route; the receiver checks the HMAC signature.
        return

    async def prepare(self) -> None:
        route_id = self.path_kwargs.get("route_id", "")
        if route_id:  # the id is the URL's secret part: the server's request log shows a stand-in
            self.request.uri = self.request.path = self.request.path.replace(route_id, "<route id>")
        # JupyterHandler's on Jupyter's port (the methods are allow_unauthenticated); Tornado's no-op here.
        before = super().prepare()
        if before is not None:
            await before
        if self._finished:
            return
        if self.request.method != "POST":
            self.not_a_post()
            return
        self.route = _routes.lookup(route_id)
        if self.route is None or self.route.retired:
            self.short(404 if self.route is None else 410)
            self.request.connection.close()  # type: ignore[union-attr]
            return
        await self.capped(BodyLimit(self.route.max_body))  # the receiver's own policy, told how it went

    async def send_on(self) -> None:
        """Give the body to the relay (this handler keeps no reference) and send its answer."""
        route, limit = self.route, self.limit
        assert route is not None and limit is not None
        body, self.body = self.body, bytearray()
        notice = limit.notice()
        if notice:
            body = bytearray()
        headers = {**forwarded_headers(self.request), **self.internal_headers()}
        remote = str(self.request.remote_ip)
        reply = await self.relay.deliver(route, body, headers, remote=remote, too_large=notice)
        del body
        self.answer(reply.status, reply.body)

    def internal_headers(self) -> dict[str, str]:
        """What the route adds for the receiver (a client's X-Elwh-* headers are stripped first)."""
        return {}

    @allow_unauthenticated
    async def post(self, route_id: str, **callback: str) -> None:
        self.body_read = True  # Tornado calls the method once the whole body is in
        if self._finished:
            return
        await self.send_on()

    @allow_unauthenticated
    def get(self, route_id: str, **callback: str) -> None:
        self.not_a_post()

    head = put = delete = patch = options = get


@web.stream_request_body
class CallbackHandler(RouteHandler):
    """POST to a callback URL, ``<route>/callback/<name>/<token>``: relayed (or kept) as a delivery
    that says which callback URL it came to. The route holds no token: the receiver checks it
    (at once, or when it drains what was kept), so a wrong one is its recorded 404."""

    async def prepare(self) -> None:
        token = self.path_kwargs.get("callback_token", "")
        if token:  # a secret part of the URL too: the server's request log shows a stand-in
            self.request.uri = self.request.path = self.request.path.replace(token, "<token>")
        await super().prepare()

    def internal_headers(self) -> dict[str, str]:
        name, token = self.path_kwargs["callback_name"], self.path_kwargs["callback_token"]
        return {CALLBACK_HEADER.lower(): _callback_urls.header_value(name, token)}


@web.stream_request_body
class CallRoute(CappedBody):
    """Any method to ``<route>/tools/<name>[/...]`` or ``<route>/initiation``, with no login:
    relayed to the route's receiver, whose answer comes back (see :meth:`Relay.call`).

    The forwarded part may hold no dot segment (``.``, ``..``, or either %-encoded): it stays
    under the tool's path. The body is capped as it streams in, as the hook route's is; one
    over the cap is not sent on, but the receiver is told, so that it answers the 413 and
    records it.
    """

    def initialize(self, relay: Relay) -> None:
        self.relay = relay
        self.route: _routes.Route | None = None

    def check_xsrf_cookie(self) -> None:
        return  # the receiver checks the call secret

    async def prepare(self) -> None:
        route_id = self.path_kwargs.get("route_id", "")
        # What follows the route id as sent, still %-encoded (the argument Tornado gives is
        # decoded: an order id holding %2F would turn into two path segments).
        self.raw_call = self.request.path.split(f"{route_id}/", 1)[-1]
        if route_id:
            self.request.uri = self.request.path = self.request.path.replace(route_id, "<route id>")
        before = super().prepare()
        if before is not None:
            await before
        if self._finished:
            return
        if self.request.method not in CALL_METHODS:
            self.short(405)
            return
        if has_dot_segment(self.raw_call):
            self.answer(400, json.dumps({"error": "a dot segment (. or ..) in a tool's URL"}).encode())
            return
        self.route = _routes.lookup(route_id)
        if self.route is None:
            self.short(404)
            return
        await self.capped(BodyLimit(MAX_CALL_BODY))

    async def send_on(self) -> None:
        assert self.route is not None and self.limit is not None
        notice = self.limit.notice()
        body, self.body = (b"" if notice else bytes(self.body)), bytearray()
        headers = forwarded_headers(self.request)
        method, query = self.request.method or "GET", self.request.query
        reply = await self.relay.call(self.route, method, self.raw_call, query, body, headers, notice)
        self.answer(reply.status, reply.body)

    async def any_method(self, route_id: str, call: str) -> None:
        self.body_read = True  # Tornado calls the method once the whole body is in
        if not self._finished:
            await self.send_on()

    get = post = put = patch = delete = allow_unauthenticated(any_method)

    @allow_unauthenticated
    def head(self, route_id: str, call: str) -> None:
        self.short(405)

    options = head


def has_dot_segment(path: str) -> bool:
    """Whether a path (as sent, %-encoded) has a ``.`` or ``..`` segment, which a client folds away."""
    return any(unquote(part) in (".", "..") for part in path.split("/"))


@web.stream_request_body
class PublicCallHandler(CallRoute, JupyterHandler):  # type: ignore[misc]
    """The call route on Jupyter's own port, with no Jupyter login."""


@web.stream_request_body
class PublicHookHandler(RouteHandler, JupyterHandler):  # type: ignore[misc]  # prepare() never redirects to a login
    """The hook route on Jupyter's own port, ``<base_url>elwh/hook/<route_id>``, with no Jupyter login."""


@web.stream_request_body
class PublicCallbackHandler(CallbackHandler, JupyterHandler):  # type: ignore[misc]
    """A callback URL on Jupyter's own port, with no Jupyter login."""


@web.stream_request_body
class NotHere(ShortAnswers):
    """Everything on the hook-only port but a hook route: the route's own short 404, body unread."""

    def prepare(self) -> None:
        # A route id in a wrong path (rx.url's path sent here) is still the URL's secret part.
        self.request.uri = ANY_ROUTE_ID.sub("<route id>", self.request.uri or "")
        self.short(404)
        self.request.connection.close()  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        return


def hook_only_app(relay: Relay) -> web.Application:
    """A Tornado application with the hook route and nothing else (no Jupyter handler at all)."""
    return web.Application(
        [
            (HOOK_PATH, RouteHandler, {"relay": relay}),
            (CALLBACK_PATH, CallbackHandler, {"relay": relay}),
            (CALL_PATH, CallRoute, {"relay": relay}),
        ],
        default_handler_class=NotHere,
        log_function=functools.partial(log_request, record_prometheus_metrics=False),
    )


def serve_hook_port(serverapp: Any, relay: Relay, configured: int | None) -> int | None:
    """Listen on 127.0.0.1:<hook port> with :func:`hook_only_app`; the port, or None (and why, in the log).

    Never another port than the configured (or default) one: a tunnel set up once points at it.
    """
    if configured is None and getattr(serverapp, "sock", None):
        serverapp.log.info(
            "elwh_nb: Jupyter serves a Unix socket; set c.ElwhHook.hook_port for a hook-only port"
        )
        return None
    port = default_hook_port(int(serverapp.port)) if configured is None else configured
    if port == 0:
        return None
    problem = None
    if not 0 < port <= 65535:
        problem = "not a port number"
    elif port == serverapp.port:
        problem = "it is the Jupyter server's own port"
    else:
        try:
            sockets = netutil.bind_sockets(port, address="127.0.0.1")
        except OSError as exc:
            problem = exc.strerror or str(exc)
    if problem is not None:
        serverapp.log.warning(
            "elwh_nb: cannot listen on 127.0.0.1:%d for the hook-only port (%s); running without it. "
            "Free that port or choose another with c.ElwhHook.hook_port (0 turns it off); "
            "the public route on the Jupyter port works as before.",
            port,
            problem,
        )
        return None
    # Bodies are capped per request by the route (set_max_body_size, from the receiver's
    # max_body) before any is read; nothing else here reads one.
    server = CappedHTTPServer(hook_only_app(relay), max_body_size=SLACK)
    server.add_sockets(sockets)
    # jupyter_server calls a stop hook only on ExtensionApp extensions; this plain module
    # extension has none, so the listening socket closes with the server process.
    return port


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the public hook route to a Jupyter server, open the hook-only port, and tell
    receivers both are there."""
    from .. import __version__

    settings = ElwhHook(parent=serverapp)
    relay = Relay(
        _inbox.Limits(settings.inbox_max_deliveries, settings.inbox_max_bytes, settings.inbox_min_free)
    )
    base_url = serverapp.web_app.settings.get("base_url", "/")
    pattern = url_path_join(base_url, HOOK_PATH)
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (pattern, PublicHookHandler, {"relay": relay}),
            (url_path_join(base_url, CALLBACK_PATH), PublicCallbackHandler, {"relay": relay}),
            (url_path_join(base_url, CALL_PATH), PublicCallHandler, {"relay": relay}),
        ],
    )
    pid = os.getpid()
    atexit.register(_routes.unmark_server, pid)

    def begin() -> None:
        # On the server's loop, once Jupyter has settled its own port (port_retries, port 0),
        # which the default hook port follows.
        hook_port = serve_hook_port(serverapp, relay, settings.hook_port)
        _routes.mark_server(pid, hook_port=hook_port)
        serverapp.log.info(
            "elwh_nb %s: public hook route at %selwh/hook/<route id>%s; "
            "inboxes hold up to %d deliveries, %d bytes, and leave %d bytes free on their disk",
            __version__,
            base_url,
            f", and only that at http://127.0.0.1:{hook_port}/elwh/hook/<route id> (point tunnels there)"
            if hook_port
            else "",
            settings.inbox_max_deliveries,
            settings.inbox_max_bytes,
            settings.inbox_min_free,
        )

    (getattr(serverapp, "io_loop", None) or IOLoop.current()).add_callback(begin)
