"""The receiver's Tornado application: the hook path (:mod:`.hook`) and a 404 for the rest.

Both are thin: they read the request and hand it to an :class:`Intake` (and a verified
delivery to the :class:`Batcher`); :func:`make_app` wires them up.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado import web

from .._core.intake import Intake
from .answers import send_json
from .batcher import Batcher
from .calls import CallDesk, call_rules
from .hook import HookDelegate, remote

log = logging.getLogger("elwh_nb")


class _Base(web.RequestHandler):
    def initialize(self, intake: Intake | None) -> None:
        self.intake = intake

    def answer(self, status: int, body: dict[str, Any]) -> None:
        if self._finished:
            return
        # A POST here is answered before its body is read (no hook path takes it).
        send_json(self, status, json.dumps(body), body_read=self.request.method in ("GET", "HEAD"))

    def reject(self, reason: str, explanation: str, body: bytes = b"") -> None:
        if self.intake is None:  # no one store to record it in (the hub service): a log line
            log.info("%s to an unknown path: 404", self.request.method)
            self.answer(404, {"ok": False, "reason": reason})
            return
        answer = self.intake.reject(
            reason,
            explanation,
            headers=dict(self.request.headers.get_all()),
            body=body,
            remote=remote(self.request.remote_ip, self.request.headers),
            path=self.request.path,
        )
        self.answer(answer.status, answer.body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.answer(status_code, {"ok": False, "status": status_code})


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
    intake: Intake,
    *,
    path: str,
    max_body: int,
    batcher: Batcher,
    route_token: str = "",
    desk: CallDesk | None = None,
) -> web.Application:
    """The receiver's Tornado application (``route_token``: see :class:`.hook.HookDelegate`), with
    the agent-tool and call-start paths under the hook path when given a ``desk``."""
    route = HookDelegate(intake, max_body=max_body, batcher=batcher, route_token=route_token)
    calls = call_rules(path, desk, route_token) if desk is not None else []
    base = path.rstrip("/") or ""
    # Callback URLs (see .._core.callback_urls) are the hook path too: the request says which.
    hooks = [(rf"{base}/?", route), (rf"{base}/callback/[^/]+/[^/]+/?", route)]
    return application([*hooks, *calls], intake)


def application(rules: list[Any], intake: Intake | None) -> web.Application:
    """``rules`` (hook paths to their :class:`HookDelegate`, and handlers), and a 404 for the rest,
    recorded in ``intake``'s failures (or, with None, only logged: a path that names no store)."""
    return web.Application(
        rules,
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
            request.path[:200],  # a stranger's path can be 64 KB long
            1000 * request.request_time(),
        )
