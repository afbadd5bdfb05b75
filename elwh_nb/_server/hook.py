"""The receiver's hook path as a plain Tornado message delegate, not a ``web.RequestHandler``.

Every delivery comes through here, and a RequestHandler's machinery (its task, its header
and output bookkeeping) cost about as much as verifying and storing the delivery; this
delegate does only what the hook path needs. :func:`.handlers.make_app` routes the hook
path to a :class:`HookDelegate`, which starts one :class:`HookRequest` per request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import Any

import orjson
import tornado
from tornado import httputil

from .._core import callback_urls as _callback_urls
from .._core.bodies import BodyLimit, parse_notice, too_large_explanation
from .._core.exceptions import StoreError
from .._core.intake import Answer, Intake
from .._core.protocol import (
    ACK_HEADER,
    CALL_HEADER,
    CALLBACK_HEADER,
    MISDIRECTED,
    PEER_HEADER,
    ROUTE_TOKEN_HEADER,
    TOO_LARGE_HEADER,
    ack,
    from_route,
)
from .._core.skim import BIG
from .._core.store import Appended
from .batcher import Batcher

log = logging.getLogger("elwh_nb")

SERVER = f"TornadoServer/{tornado.version}"
HEALTH = orjson.dumps({"ok": True, "service": "elwh-nb", "accepts": "POST"})
_date: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header's value, formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, httputil.format_timestamp(now))
    return _date[1]


def header(headers: httputil.HTTPHeaders, name: str) -> str | None:
    """A header's value or None (``headers.get`` raises and catches KeyError when it is absent)."""
    values = headers.get_list(name)
    return ",".join(values) if values else None  # as headers[name] joins them


def remote(peer: str | None, headers: httputil.HTTPHeaders, hop: str | None = None) -> str | None:
    """The peer, plus the hop a proxy on this machine saw (``hop``: the one our route names,
    else the last X-Forwarded-For entry)."""
    forwarded = hop
    if forwarded is None:
        listed = header(headers, "X-Forwarded-For")
        forwarded = listed.split(",")[-1] if listed else None
    if forwarded and _is_loopback(peer):
        return f"{forwarded.strip()[:64]} (via {peer})"
    return peer


def _is_loopback(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class HookDelegate(httputil.HTTPServerConnectionDelegate):
    """The hook path's rule target: what every request to it shares (``route_token``: see
    :data:`ROUTE_TOKEN_HEADER`). With a ``name`` (the hub service's webhooks), each answer is
    logged at info level: the name, status, reason, bytes and time, never the path."""

    def __init__(
        self, intake: Intake, *, max_body: int, batcher: Batcher, route_token: str = "", name: str = ""
    ) -> None:
        self.intake = intake
        self.name = name
        self.max_body = max_body
        self.batcher = batcher
        self.token = route_token
        self.ack = ack(route_token) if route_token else ""

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> HookRequest:
        return HookRequest(self, request_conn)

    def from_route(self, token: str) -> bool:
        """Whether ``token`` is this receiver's route token (so the X-Elwh-* headers count)."""
        return from_route(self.token, token)


class HookRequest(httputil.HTTPMessageDelegate):
    """One request to the hook path: POST a delivery; GET a health record with no event data."""

    method: str
    path: str
    headers: httputil.HTTPHeaders  # these three from headers_received, which Tornado calls first

    def __init__(self, route: HookDelegate, conn: httputil.HTTPConnection) -> None:
        self.route = route
        self.conn = conn
        self.limit = BodyLimit(route.max_body)
        self.chunks: list[bytes] = []
        self.big: bytearray | None = None  # the body once over BIG: grown in place, never joined
        self.acked = ""  # set when the request came through this receiver's public route
        self.hop: str | None = None  # there, the peer the route saw
        self.callback: tuple[str, str] | None = None  # (name, token) of a callback URL it came to
        self.body_read = False
        self.answered = False
        self.started = 0.0
        self.reason = ""  # why it was rejected, for the log line of a named route

    # -- what Tornado calls ------------------------------------------------------------
    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.method, self.path, self.headers = start_line.method, start_line.path.partition("?")[0], headers
        if self.route.name or log.isEnabledFor(logging.DEBUG):
            self.started = time.monotonic()
        try:
            self.start()
        except Exception as exc:
            self.failed(exc)

    def data_received(self, chunk: bytes) -> None:
        if self.answered:
            return
        if self.limit.receive(len(chunk)):
            if self.big is not None:
                self.big += chunk
            elif self.limit.received > BIG:  # from here on one growing copy (a big realloc moves pages)
                self.big = bytearray().join([*self.chunks, chunk])
                self.chunks = []
            else:
                self.chunks.append(chunk)
            return
        self.chunks.clear()
        self.big = None
        if self.limit.cut:
            try:
                self.refuse(self.limit.size, "cut")
            except Exception as exc:
                self.failed(exc)
            self.conn.close()  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.body_read = True
        if self.answered:
            return
        try:
            if self.method == "POST":
                self.deliver()
            elif self.method == "GET":
                self.answer(200, HEALTH)
            else:  # HEAD
                self.answer(200, b"")
        except Exception as exc:
            self.failed(exc)

    def on_connection_close(self) -> None:
        """The client left mid-request: nothing to answer."""
        self.answered = True
        self.chunks, self.big = [], None

    # -- the request -------------------------------------------------------------------
    def start(self) -> None:
        """With the headers: the route token, the method, and whether to take the body."""
        route, headers, method = self.route, self.headers, self.method
        token = header(headers, ROUTE_TOKEN_HEADER)
        # A callback URL's token, from the path (sent here directly) or from the route; the
        # path keeps it no further (records and logs show a stand-in).
        self.callback = _callback_urls.split(self.path)
        if self.callback is not None:
            self.path = _callback_urls.redacted(self.path)
        if token is not None:
            if not route.from_route(token):  # meant for the receiver that had this port before
                self.send(MISDIRECTED, b"", close=True)
                self.conn.close()  # type: ignore[attr-defined]
                return
            self.acked = route.ack
            self.callback = _callback_urls.parse_header(header(headers, CALLBACK_HEADER)) or self.callback
            if header(headers, CALL_HEADER) is not None:  # a relayed tool call: never a delivery
                self.send(404, b'{"error": "not a tool or call-start path"}', close=True)
                self.conn.close()  # type: ignore[attr-defined]
                return
            self.hop = header(headers, PEER_HEADER)
        if method in ("GET", "HEAD"):
            return
        if method != "POST":
            self.reject("method_not_allowed", f"{method} on the hook path; ElevenLabs delivers with POST.")
            return
        self.conn.set_max_body_size(self.limit.connection_limit)  # type: ignore[attr-defined]
        notice = parse_notice(header(headers, TOO_LARGE_HEADER)) if token is not None else None
        if notice is not None:  # the public route refused it and tells us how
            self.refuse(*notice, by_route=True)
            return
        length = header(headers, "Content-Length")
        if self.limit.declare(length):
            self.refuse(self.limit.size, "unread")
            self.conn.close()  # type: ignore[attr-defined]
        elif not self.limit.how and length and length.isdigit() and self.buffered() >= int(length):
            # The whole body came with the headers: reading it cannot stall, so it needs no
            # body timeout (which costs Tornado a task, a timer and two loop turns a request).
            self.conn.set_body_timeout(None)  # type: ignore[attr-defined]

    def buffered(self) -> int:
        """Bytes of the request already read past its headers (0 if that cannot be told)."""
        return getattr(getattr(self.conn, "stream", None), "_read_buffer_size", 0)

    def deliver(self) -> None:
        """The body is in: verify it, then answer once the batcher has committed it."""
        if self.limit.how is not None:
            self.refuse(self.limit.size, self.limit.how)
            return
        body: bytes | bytearray = self.big if self.big is not None else b"".join(self.chunks)
        self.chunks, self.big = [], None  # one copy of the body from here on
        try:
            checked = self.route.intake.check(
                body, self.headers, remote=self.remote, path=self.path, callback=self.callback
            )
            if isinstance(checked, Answer):
                self.reason = str(checked.body.get("reason", ""))
                self.answer(checked.status, orjson.dumps(checked.body))
                return
            stored = self.route.batcher.submit(body, checked.event, checked.skew_s, checked.authenticated_by)
        except Exception as exc:
            self.failed(exc, body)
            return
        event = checked.event if checked.whole else None  # callbacks get a skimmed one from the store
        stored.add_done_callback(lambda done: self.stored(done, body, event))

    def stored(
        self, done: asyncio.Future[Appended], body: bytes | bytearray, event: dict[str, Any] | None
    ) -> None:
        if done.cancelled():  # the loop is ending
            return
        intake = self.route.intake
        try:
            try:
                result = done.result()
            except StoreError as exc:
                answer = intake.store_failed(exc, body, self.headers, remote=self.remote, path=self.path)
            else:
                answer = intake.stored(result, event)
                self.reason = "duplicate" if result.duplicate else ""
            self.answer(answer.status, orjson.dumps(answer.body))
        except Exception as exc:
            self.failed(exc, body)

    def remote(self) -> str | None:
        """Where the request came from: asked only when a failure is recorded."""
        return remote(getattr(getattr(self.conn, "context", None), "remote_ip", None), self.headers, self.hop)

    # -- answers -----------------------------------------------------------------------
    def failed(self, exc: Exception, body: bytes | bytearray = b"") -> None:
        """A bug here must still be answered 500 (ElevenLabs retries) and recorded."""
        log.exception("elwh_nb receiver failed on a delivery", exc_info=exc)
        if not self.answered:
            self.reject("receiver_error", f"The receiver failed: {type(exc).__name__}. Answered 500.", body)

    def refuse(self, size: int, how: str, *, by_route: bool = False) -> None:
        """Answer 413 and record it; ``how`` is a :attr:`BodyLimit.how`."""
        explanation = too_large_explanation(size, self.route.max_body, how, by_route=by_route)
        self.reject("body_too_large", explanation)

    def reject(self, reason: str, explanation: str, body: bytes | bytearray = b"") -> None:
        self.reason = reason
        answer = self.route.intake.reject(
            reason,
            explanation,
            headers=dict(self.headers.get_all()),
            body=body,
            remote=self.remote,
            path=self.path,
        )
        self.answer(answer.status, orjson.dumps(answer.body))

    def answer(self, status: int, payload: bytes) -> None:
        # Answered before the body was read: Tornado closes the connection, so say so (a
        # client that reused it would get a reset instead of its next answer).
        self.send(status, payload, close=not self.body_read and self.method not in ("GET", "HEAD"))

    def send(self, status: int, payload: bytes, *, close: bool) -> None:
        if self.answered:
            return
        self.answered = True
        headers = httputil.HTTPHeaders()
        headers["Server"] = SERVER
        headers["Content-Type"] = "application/json"
        headers["Date"] = http_date()
        headers["Cache-Control"] = "no-store"
        headers["Content-Length"] = str(len(payload))
        if self.acked:  # tells the route that this receiver, not another program, answered
            headers[ACK_HEADER] = self.acked
        if close:
            headers["Connection"] = "close"
        start = httputil.ResponseStartLine("HTTP/1.1", status, httputil.responses.get(status, "Unknown"))
        self.conn.write_headers(start, headers, payload)
        self.conn.finish()
        if self.route.name:
            log.info(
                "%s %s %s%s %dB %.1fms",
                self.route.name,
                self.method,
                status,
                f" {self.reason}" if self.reason else "",
                max(self.limit.received, self.limit.size),
                1000 * (time.monotonic() - self.started),
            )
        elif self.started:
            log.debug(
                "%s %s %s %.1fms", status, self.method, self.path, 1000 * (time.monotonic() - self.started)
            )
