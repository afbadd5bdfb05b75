"""Answering ElevenLabs' calls that wait for an answer: agent tools and call personalisation.

:class:`CallDesk` holds the notebook's tool and initiation functions and the call secret,
and answers one call: the secret header checked in constant time, the parameters read,
the function run on a thread of its own (so the receiver's loop keeps answering webhooks
while it runs, and while notebook cells run) within its deadline, the answer encoded, and
the call recorded in the store. :class:`CallHandler` is the thin Tornado handler over it,
at ``<hook path>/tools/<name>[/<path params>]`` and ``<hook path>/initiation``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import hmac
import json
import logging
import os
import secrets
import time
import traceback
from collections.abc import Callable
from typing import Any

from tornado import web

from .._core.bodies import BodyLimit, parse_notice
from .._core.exceptions import CallError
from .._core.initiation import Initiation
from .._core.protocol import (
    ACK_HEADER,
    MAX_CALL_BODY,
    MISDIRECTED,
    PEER_HEADER,
    ROUTE_TOKEN_HEADER,
    TOO_LARGE_HEADER,
    Reply,
    ack,
    from_route,
)
from .._core.store import EventStore
from .._core.tools import SECRET_HEADER, SYSTEM_PREFIX, Tool, encode_answer
from .answers import send_json
from .hook import remote

log = logging.getLogger("elwh_nb")

SECRET_ENV = "ELWH_CALL_SECRET"
UNKNOWN_TOOL = "(no such tool)"


def call_secret(given: str | None, store_id: str | None) -> str:
    """The secret ElevenLabs must send: given, else ``$ELWH_CALL_SECRET``, else one kept for the store.

    A made one is kept in a file only the user can read (``<jupyter data dir>/elwh_nb/call-secrets``),
    named by the store's id, so the header configured in ElevenLabs lasts as long as the store
    and its URL do. A store in memory gets a new one each time.
    """
    if given:
        return given
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    if store_id is None:
        return secrets.token_urlsafe(32)
    from . import routes as _routes

    path = _routes.private_dir("call-secrets") / store_id
    try:
        return str(json.loads(path.read_text())["secret"])
    except (OSError, ValueError, KeyError):
        made = secrets.token_urlsafe(32)
        _routes.write_private(path, {"secret": made})
        return made


def _error(status: int, message: str) -> Reply:
    return Reply(status, json.dumps({"error": message}).encode())


class CallDesk:
    """The notebook's callbacks and the secret guarding them; answers and records each call."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._secret = b""  # until set_secret: every call is a 401
        self.tools: dict[str, Tool] = {}
        self.initiation: Initiation | None = None
        self._slots: dict[str, Slots] = {}  # one per function (by name), made at its first call

    def __repr__(self) -> str:
        return f"<CallDesk: {len(self.tools)} tools, initiation {'set' if self.initiation else 'not set'}>"

    def set_secret(self, secret: str) -> None:
        self._secret = secret.encode()

    def secret(self) -> str:
        return self._secret.decode()

    def close(self) -> None:
        for slots in self._slots.values():
            slots.pool.shutdown(wait=False, cancel_futures=True)

    async def answer(
        self,
        kind: str,
        name: str,
        *,
        method: str,
        rest: str,
        query: str,
        body: bytes,
        headers: dict[str, str],
        content_type: str | None,
        peer: str | None,
        refused: CallError | None = None,
    ) -> Reply:
        """Answer one call, recorded in the store before the answer goes out (``refused``: the
        reason the request cannot be taken at all, such as a body over the cap)."""
        started = time.perf_counter()
        parameters: dict[str, Any] = {}
        error: str | None = None
        try:
            if refused is not None:
                raise refused
            given = headers.get(SECRET_HEADER.lower(), "").encode()
            if not self._secret or not hmac.compare_digest(given, self._secret):
                raise CallError(
                    401, f"missing or wrong {SECRET_HEADER} header" if given else f"no {SECRET_HEADER} header"
                )
            target = self.tools.get(name) if kind == "tool" else self.initiation
            if target is None:
                raise CallError(
                    404, f"no tool named {name!r}" if kind == "tool" else "no initiation function is set"
                )
            if isinstance(target, Tool):
                if method != target.method:
                    raise CallError(405, f"tool {name!r} takes {target.method}, not {method}")
                kwargs, unused = target.arguments(rest, query, body, content_type)
                parameters = {**kwargs, **({"unused": unused} if unused else {})}
            else:
                if method != "POST":
                    raise CallError(405, f"the call-start request is a POST, not {method}")
                try:
                    request = json.loads(body or b"{}")
                except ValueError:
                    raise CallError(400, "the call-start request is not JSON") from None
                except RecursionError:
                    raise CallError(400, "the call-start request is JSON nested too deeply to read") from None
                kwargs = target.arguments(request)
                parameters = dict(request) if isinstance(request, dict) else {}
            result = await self._run(target, kwargs)
            if isinstance(target, Initiation):
                result = target.answer(result)
            answer = Reply(200, encode_answer(result, name))
        except CallError as exc:
            error = str(exc)
            answer = _error(exc.status, error)
            if exc.status >= 500:
                log.error("elwh_nb: %s %s: %s", kind, name, error)
        except _Raised as exc:
            error = exc.details
            answer = _error(500, f"{name} raised {exc.type_name}")
            log.error("elwh_nb: %s %s raised %s (see rx.calls)", kind, name, exc.type_name)
        except (TimeoutError, asyncio.TimeoutError):
            error = f"no answer within {self._deadline(kind, name):g} s"
            answer = _error(504, f"{name} did not answer in time")
            log.error("elwh_nb: %s %s: %s", kind, name, error)
        except Exception as exc:  # a failure nobody foresaw here: still answered, and recorded
            error = traceback.format_exc(limit=20)
            answer = _error(500, f"the call could not be handled ({type(exc).__name__}); nothing was run")
            log.exception("elwh_nb: %s %s: the call could not be handled", kind, name)
        latency = time.perf_counter() - started
        row = {
            "method": method,
            "status": answer.status,
            "latency_s": latency,
            "parameters": parameters,
            "answer": answer.body.decode() if answer.status == 200 else None,
            "error": error,
            "conversation_id": _conversation(parameters),
            "headers": headers,
            "remote": peer,
        }
        # A name that is not a tool is a stranger's word: logged as such (the log's names stay
        # the tools'), the name asked for in the error.
        known = kind == "initiation" or name in self.tools
        if not known:
            row["error"] = f"{error or ''} (asked for tool {name!r})".strip()
        logged = "initiation" if kind == "initiation" else name if known else UNKNOWN_TOOL
        # Recorded before it is answered (off the loop), so rx.calls has every answered call
        # by the time its caller has the answer.
        await asyncio.get_running_loop().run_in_executor(None, self._record, kind, logged, row)
        return answer

    def _deadline(self, kind: str, name: str) -> float:
        target = self.tools.get(name) if kind == "tool" else self.initiation
        return target.timeout_s if target is not None else 0.0

    async def _run(self, target: Tool | Initiation, kwargs: dict[str, Any]) -> Any:
        """Run the function on a thread of its own bound, within its deadline (waiting for a
        slot counts): a 503 when no slot frees in time, a 504 when it does not answer in time."""
        slots = self._slots.get(target.name)
        if slots is None or slots.size != target.concurrency:  # first call, or registered anew
            if slots is not None:
                slots.pool.shutdown(wait=False)
            slots = self._slots[target.name] = Slots(target.name, target.concurrency)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + target.timeout_s
        try:
            await asyncio.wait_for(slots.free.acquire(), target.timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            raise CallError(
                503,
                f"{target.name} is busy: its {slots.size} calls at once (concurrency={slots.size}) were all "
                f"still running for the {target.timeout_s:g} s this call could wait; it was not run",
            ) from None
        context = contextvars.copy_context()
        running = slots.pool.submit(context.run, _calling, target.fn, kwargs)
        # The slot is free when the function returns, not at the deadline: a hanging one keeps it.
        running.add_done_callback(lambda _: slots.release(loop))
        return await asyncio.wait_for(asyncio.wrap_future(running), max(0.0, deadline - loop.time()))

    def _record(self, kind: str, name: str, row: dict[str, Any]) -> None:
        try:
            self.store.add_call(kind, name, **row)
        except Exception:  # a closed store at shutdown: the answer went out; say so once
            log.warning("elwh_nb: could not record a %s call to %s", kind, name, exc_info=True)


class Slots:
    """One function's threads and the slots that bound its calls at once (on the receiver's loop)."""

    def __init__(self, name: str, size: int) -> None:
        self.size = size
        self.free = asyncio.Semaphore(size)
        self.pool = concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix=f"elwh-call-{name}")

    def release(self, loop: asyncio.AbstractEventLoop) -> None:
        """From the function's thread, when it returns."""
        with contextlib.suppress(RuntimeError):  # the receiver stopped meanwhile
            loop.call_soon_threadsafe(self.free.release)


class _Raised(Exception):
    """A callback's exception, carried back with its traceback (kept in the log, never sent)."""

    def __init__(self, type_name: str, details: str) -> None:
        super().__init__(type_name)
        self.type_name, self.details = type_name, details


def _calling(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    try:
        return fn(**kwargs)
    except Exception as exc:
        raise _Raised(type(exc).__name__, traceback.format_exc(limit=20)) from None


def _conversation(parameters: dict[str, Any]) -> str | None:
    value = parameters.get(f"{SYSTEM_PREFIX}conversation_id") or parameters.get("call_sid")
    return str(value) if value is not None else None


@web.stream_request_body
class CallHandler(web.RequestHandler):
    """``<hook path>/tools/<name>[/...]`` and ``<hook path>/initiation``: any method, JSON answers.

    Every request is answered by :meth:`CallDesk.answer`, and so recorded: one over the body
    cap too (by :class:`BodyLimit`'s rules, or as the public route says it refused it), and
    one whose handling failed in a way nobody foresaw (a 500). Through the route, every
    answer carries the route's ack, errors included, so the route passes it on as it is.
    """

    def initialize(self, desk: CallDesk, kind: str, route_token: str = "") -> None:
        self.desk = desk
        self.kind = kind
        self.token = route_token
        self.body = bytearray()
        self.limit = BodyLimit(MAX_CALL_BODY)
        self.refused: CallError | None = None
        self.acked = False
        self.hop: str | None = None

    def check_xsrf_cookie(self) -> None:
        return  # the call secret authenticates; no cookie does

    async def prepare(self) -> None:
        headers = self.request.headers
        sent = headers.get(ROUTE_TOKEN_HEADER)
        if sent is not None:  # through the public route: answer only our own route's token
            if not from_route(self.token, sent):
                self.send(_error(MISDIRECTED, "misdirected"))
                return
            self.acked = True
            self.hop = headers.get(PEER_HEADER)  # the peer the route saw
            notice = parse_notice(headers.get(TOO_LARGE_HEADER))
            if notice is not None:  # the route refused the body and tells us how
                self.refused = too_large(*notice, by_route=True)
        # Read a body a little over the cap and drop it rather than let Tornado cut the
        # connection without an answer; one declared far over it is answered now, unread.
        self.request.connection.set_max_body_size(self.limit.connection_limit)  # type: ignore[union-attr]
        if self.refused is None and self.limit.declare(headers.get("Content-Length")):
            self.refused = too_large(self.limit.size, self.limit.how or "unread")
        if self.refused is not None and not self._finished:
            self.set_header("Connection", "close")  # its body is not read: the connection ends
            await self._answer(*self.path_args)
            self.request.connection.close()  # type: ignore[union-attr]

    async def data_received(self, chunk: bytes) -> None:
        if self._finished or self.refused is not None:
            return
        if self.limit.receive(len(chunk)):
            self.body += chunk
            return
        self.body = bytearray()
        if self.limit.cut:
            self.refused = too_large(self.limit.size, "cut")
            self.set_header("Connection", "close")
            await self._answer(*self.path_args)
            self.request.connection.close()  # type: ignore[union-attr]

    def send(self, answer: Reply) -> None:
        if self._finished:
            return
        if self.acked:  # set again: Tornado's error path clears the headers set before
            self.set_header(ACK_HEADER, ack(self.token))
        send_json(self, answer.status, answer.body)

    async def _answer(self, name: str = "", rest: str | None = None) -> None:
        request = self.request
        # The path after the tool's URL as sent, still %-encoded (Tornado's argument is decoded,
        # which would make an id holding %2F look like two path segments).
        raw_rest = request.path.split(f"/tools/{name}", 1)[1] if name else ""
        if self.refused is None and self.limit.how is not None:
            self.refused = too_large(self.limit.size, self.limit.how)
        answer = await self.desk.answer(
            self.kind,
            name,
            method=request.method or "GET",
            rest=raw_rest,
            query=request.query,
            body=bytes(self.body),
            headers={k.lower(): v for k, v in request.headers.get_all()},
            content_type=request.headers.get("Content-Type"),
            peer=remote(request.remote_ip, request.headers, self.hop),
            refused=self.refused,
        )
        self.send(answer)

    async def _any(self, name: str = "", rest: str | None = None) -> None:
        if not self._finished:
            await self._answer(name, rest)

    get = post = put = patch = delete = _any

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.send(_error(status_code, "the request could not be read"))


def too_large(size: int, how: str, *, by_route: bool = False) -> CallError:
    """The 413 for a call's body over :data:`MAX_CALL_BODY` (``how``: see :class:`BodyLimit`)."""
    amount = f"at least {size}" if how == "cut" else str(size)
    done = {"discarded": "read and discarded", "cut": "not read in full"}.get(how, "not read")
    return CallError(
        413,
        f"the request's body is {amount} bytes, over the {MAX_CALL_BODY} bytes a tool or call start "
        f"takes; it was {done}{' by the public route' if by_route else ''}",
    )


def call_rules(path: str, desk: CallDesk, route_token: str) -> list[Any]:
    """Tornado rules for the calls under the hook path ``path``."""
    base = path.rstrip("/")
    return [
        (
            rf"{base}/tools/([A-Za-z0-9_-]{{1,64}})(/.*)?",
            CallHandler,
            {"desk": desk, "kind": "tool", "route_token": route_token},
        ),
        (
            rf"{base}/initiation/?",
            CallHandler,
            {"desk": desk, "kind": "initiation", "route_token": route_token},
        ),
    ]
