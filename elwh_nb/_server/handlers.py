"""The receiver's HTTP handlers and its Tornado application.

Handlers are thin: they read the request and hand it to an :class:`Intake` (and a verified
delivery to the :class:`Batcher`); what they need comes in through ``initialize()``, and
:func:`make_app` wires them up.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import Any

from tornado import httputil, web

from .._core.bodies import BodyLimit, parse_notice, too_large_explanation
from .._core.exceptions import StoreError
from .._core.intake import Answer, Intake
from .._core.protocol import ACK_HEADER, MISDIRECTED, ROUTE_TOKEN_HEADER, TOO_LARGE_HEADER, ack
from .batcher import Batcher

log = logging.getLogger("elwh_nb")


def _is_loopback(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _remote(request: httputil.HTTPServerRequest) -> str | None:
    """The peer, plus the hop our own proxy added (the last X-Forwarded-For entry)."""
    peer = request.remote_ip
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and _is_loopback(peer):
        return f"{forwarded.split(',')[-1].strip()[:64]} (via {peer})"
    return peer


def _buffered(request: httputil.HTTPServerRequest) -> int:
    """Bytes of the request already read past its headers (0 if that cannot be told)."""
    return getattr(getattr(request.connection, "stream", None), "_read_buffer_size", 0)


class _Base(web.RequestHandler):
    def initialize(self, intake: Intake) -> None:
        self.intake = intake
        self.acked = ""  # set when the request came through this receiver's public route
        self.body_read = False

    def answer(self, status: int, body: dict[str, Any]) -> None:
        if self._finished:
            return
        self.set_status(status)
        if self.acked:  # tells the route that this receiver, not another program, answered
            self.set_header(ACK_HEADER, self.acked)
        if not self.body_read and self.request.method not in ("GET", "HEAD"):
            # Answered before the body was read: Tornado closes the connection, so say so
            # (a client that reused it would get a reset instead of its next answer).
            self.set_header("Connection", "close")
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def reject(self, reason: str, explanation: str, body: bytes = b"") -> None:
        answer = self.intake.reject(
            reason,
            explanation,
            headers=dict(self.request.headers.get_all()),
            body=body,
            remote=_remote(self.request),
            path=self.request.path,
        )
        self.answer(answer.status, answer.body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.answer(status_code, {"ok": False, "status": status_code})


@web.stream_request_body
class HookHandler(_Base):
    """POST a delivery; GET a health record with no event data."""

    def initialize(  # type: ignore[override]
        self, intake: Intake, max_body: int, batcher: Batcher, route_token: str = ""
    ) -> None:
        super().initialize(intake)
        self.max_body = max_body
        self.batcher = batcher
        self.route_token = route_token
        self.limit = BodyLimit(max_body)
        self.chunks: list[bytes] = []

    def prepare(self) -> None:
        method = self.request.method
        if self.request.headers.get(ROUTE_TOKEN_HEADER) is not None:
            if not self.from_route():  # meant for the receiver that had this port before
                self.set_status(MISDIRECTED)
                self.finish()
                self.request.connection.close()  # type: ignore[union-attr]
                return
            self.acked = ack(self.route_token)
        if method in ("GET", "HEAD"):
            return
        if method != "POST":
            self.reject("method_not_allowed", f"{method} on the hook path; ElevenLabs delivers with POST.")
            return
        self.request.connection.set_max_body_size(self.limit.connection_limit)  # type: ignore[union-attr]
        notice = parse_notice(self.request.headers.get(TOO_LARGE_HEADER)) if self.from_route() else None
        if notice is not None:  # the public route refused it and tells us how
            self.refuse(*notice, by_route=True)
            return
        length = self.request.headers.get("Content-Length")
        if self.limit.declare(length):
            self.refuse(self.limit.size, "unread")
            self.request.connection.close()  # type: ignore[union-attr]
        elif not self.limit.how and length and length.isdigit() and _buffered(self.request) >= int(length):
            # The whole body came with the headers: reading it cannot stall, so it needs no
            # body timeout (which costs Tornado a task, a timer and two loop turns a request).
            self.request.connection.set_body_timeout(None)  # type: ignore[union-attr]

    def from_route(self) -> bool:
        """Whether the request carries this receiver's route token (so its X-Elwh-* headers count)."""
        sent = self.request.headers.get(ROUTE_TOKEN_HEADER, "")
        return bool(self.route_token) and hmac.compare_digest(sent.encode(), self.route_token.encode())

    def refuse(self, size: int, how: str, *, by_route: bool = False) -> None:
        """Answer 413 and record it; ``how`` is a :attr:`BodyLimit.how`."""
        self.reject("body_too_large", too_large_explanation(size, self.max_body, how, by_route=by_route))

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        if self.limit.receive(len(chunk)):
            self.chunks.append(chunk)
            return
        self.chunks.clear()
        if self.limit.cut:
            self.refuse(self.limit.size, "cut")
            self.request.connection.close()  # type: ignore[union-attr]

    async def post(self) -> None:
        self.body_read = True
        if self._finished:
            return
        if self.limit.how is not None:
            self.refuse(self.limit.size, self.limit.how)
            return
        body, self.chunks = b"".join(self.chunks), []  # one copy of the body from here on
        headers, remote, path = self.request.headers, _remote(self.request), self.request.path
        try:
            checked = self.intake.check(body, headers, remote=remote, path=path)
            if isinstance(checked, Answer):
                self.answer(checked.status, checked.body)
                return
            try:
                result = await self.batcher.submit(body, checked)
            except StoreError as exc:
                answer = self.intake.store_failed(exc, body, headers, remote=remote, path=path)
            else:
                answer = self.intake.stored(result, checked)
        except Exception as exc:  # a bug here must still be answered 500 (ElevenLabs retries) and recorded
            log.exception("elwh_nb receiver failed on a delivery")
            self.reject("receiver_error", f"The receiver failed: {type(exc).__name__}. Answered 500.", body)
            return
        self.answer(answer.status, answer.body)

    def get(self) -> None:
        self.answer(200, {"ok": True, "service": "elwh-nb", "accepts": "POST"})

    def head(self) -> None:
        self.set_status(200)
        self.finish()


@web.stream_request_body
class NotFoundHandler(_Base):
    """Anything else: a short 404; deliveries sent to a wrong path are recorded."""

    def prepare(self) -> None:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            self.answer(404, {"ok": False, "status": 404})
        else:
            self.reject(
                "not_found",
                f"{self.request.method} to {self.request.path[:200]!r}, which is not the hook "
                "path. Check the URL in the ElevenLabs webhook settings.",
            )
        self.request.connection.close()  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        return


def make_app(
    intake: Intake, *, path: str, max_body: int, batcher: Batcher, route_token: str = ""
) -> web.Application:
    """The receiver's Tornado application (``route_token``: see :data:`ROUTE_TOKEN_HEADER`)."""
    return web.Application(
        [
            (
                rf"{path.rstrip('/') or ''}/?",
                HookHandler,
                {"intake": intake, "max_body": max_body, "batcher": batcher, "route_token": route_token},
            )
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args={"intake": intake},
        log_function=_log_request,
    )


def _log_request(handler: web.RequestHandler) -> None:
    if log.isEnabledFor(logging.DEBUG):  # not a word (nor its arguments) per request otherwise
        request = handler.request
        log.debug(
            "%s %s %s %.1fms",
            handler.get_status(),
            request.method,
            request.path,
            1000 * request.request_time(),
        )
