"""The in-kernel receiver: a Tornado server on its own thread and IOLoop.

Cells can run (and block) on the kernel's main thread while this thread keeps answering
ElevenLabs. Handlers are thin: they read the request and hand it to an :class:`Intake`;
the main thread only reads the store's DataFrames.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import pandas as pd
from tornado import httputil, netutil, web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop, PeriodicCallback

from .._core.exceptions import ReceiverError, StoreError
from .._core.intake import Answer, EventCallback, Intake, callback_types, too_large_explanation
from .._core.protocol import (
    ACK_HEADER,
    DEFAULT_MAX_BODY,
    MISDIRECTED,
    ROUTE_TOKEN_HEADER,
    SLACK,
    TOO_LARGE_HEADER,
    ack,
)
from .._core.signature import DEFAULT_FUTURE_TOLERANCE, DEFAULT_TOLERANCE, Secret
from .._core.store import Appended, EventStore
from . import claim as _claim
from . import routes as _routes
from . import tunnel as _tunnel
from . import urls as _urls

if TYPE_CHECKING:
    from .._notebook.dashboard import Dashboard

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
        # A body a little over the cap is read and thrown away, so that a sender that
        # does not wait for "100 Continue" still gets a clean 413 instead of a reset
        # connection; anything bigger is refused unread and the connection closed.
        self.drain_limit = 2 * max_body + SLACK
        self.chunks: list[bytes] = []
        self.size = 0
        self.over: int | None = None  # the size that put the body over the cap

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
        # Tornado's own limit (a bare 400) sits above ours, so that we answer 413 and record it.
        self.request.connection.set_max_body_size(self.drain_limit + SLACK)  # type: ignore[union-attr]
        noticed = self.request.headers.get(TOO_LARGE_HEADER, "") if self.from_route() else ""
        size, _, how = noticed.partition(" ")
        if size.isdigit():  # the public route refused it and tells us how
            self.refuse(int(size), how, by_route=True)
            return
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_body:
            self.over = int(length)
            if self.over > self.drain_limit:
                self.refuse(self.over, "unread")
                self.request.connection.close()  # type: ignore[union-attr]

    def from_route(self) -> bool:
        """Whether the request carries this receiver's route token (so its X-Elwh-* headers count)."""
        sent = self.request.headers.get(ROUTE_TOKEN_HEADER, "")
        return bool(self.route_token) and hmac.compare_digest(sent.encode(), self.route_token.encode())

    def refuse(self, size: int, how: str, *, by_route: bool = False) -> None:
        """Answer 413 and record it; ``how`` is a key of ``_HOW``."""
        self.reject("body_too_large", too_large_explanation(size, self.max_body, how, by_route=by_route))

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self.size += len(chunk)
        if self.size > self.max_body:
            self.over = max(self.over or 0, self.size)
            self.chunks.clear()
            if self.size > self.drain_limit:
                self.refuse(self.size, "cut")
                self.request.connection.close()  # type: ignore[union-attr]
            return
        self.chunks.append(chunk)

    async def post(self) -> None:
        self.body_read = True
        if self._finished:
            return
        if self.over is not None:
            self.refuse(self.over, "discarded")
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


class Batcher:
    """Group commit: verified deliveries that arrive together are stored in one transaction.

    Each handler waits for its own commit before it answers 200, so nothing acknowledged
    is lost; under load the commit cost is shared by every delivery in the batch.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.pending: list[tuple[bytes, dict[str, Any], asyncio.Future[Appended]]] = []
        self.largest = 0

    def submit(self, body: bytes, event: dict[str, Any]) -> asyncio.Future[Appended]:
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self.pending.append((body, event, future))
        if len(self.pending) == 1:  # the first of a batch schedules the commit
            IOLoop.current().add_callback(self.flush)
        return future

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        self.largest = max(self.largest, len(batch))
        try:
            results = self.store.append_many([(body, event) for body, event, _ in batch])
        except BaseException as exc:  # whatever it is, every waiting delivery gets its answer (a 500)
            if not isinstance(exc, StoreError):
                log.exception("elwh_nb store failed on a batch of %d deliveries", len(batch))
            message = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(StoreError(message))
            if not isinstance(exc, Exception):
                raise
            return
        for result, (_, _, future) in zip(results, batch, strict=True):
            if not future.done():
                future.set_result(result)


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
        log_function=lambda handler: log.debug(
            "%s %s %s %.1fms",
            handler.get_status(),
            handler.request.method,
            handler.request.path,
            1000 * handler.request.request_time(),
        ),
    )


_LIVE: weakref.WeakSet[Receiver] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for receiver in list(_LIVE):
        receiver.stop()


class Receiver:
    """A running receiver. Give out :attr:`url`; read :attr:`events` and :attr:`failures`."""

    def __init__(
        self,
        secret: Secret,
        *,
        port: int,
        host: str,
        path: str,
        store: EventStore | str | Path | None,
        tolerance: float | None,
        future_tolerance: float | None,
        max_body: int,
        public_url: str | None,
        body_timeout: float = 120.0,
        tunnel: str | None = None,
        remote_port: int | None = None,
        ssh_options: Sequence[str] | None = None,
        tunnel_timeout: float = 30.0,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        # Bad tunnel arguments fail here, before anything starts.
        if tunnel is not None:
            _tunnel.check(tunnel, remote_port, ssh_options, public_url)
        elif remote_port is not None or ssh_options:
            raise ValueError("remote_port= and ssh_options= go with tunnel='ssh://user@host'")
        elif public_url is not None:
            _tunnel.prefix(public_url)
        self._own_store = not isinstance(store, EventStore)
        self.store = store if isinstance(store, EventStore) else EventStore(store)
        try:
            self._intake = Intake(
                secret, self.store, tolerance=tolerance, future_tolerance=future_tolerance, max_body=max_body
            )
            _stop_earlier(self.store.path)
            self._claim = _claim.claim(self.store.path)
        except BaseException:
            if self._own_store:
                self.store.close()
            raise
        self.host, self.path, self.max_body = host, path, max_body
        self.body_timeout = body_timeout
        self.started_at = time.time()
        self._stopped = False
        try:
            sockets = netutil.bind_sockets(port, address=host)
        except OSError as exc:
            self._claim.release()
            if self._own_store:
                self.store.close()
            raise ReceiverError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}. "
                + (
                    "Another receiver (or program) uses this port: stop it, or pass port=0 for a free one."
                    if port
                    else ""
                )
            ) from exc
        self.port = int(sockets[0].getsockname()[1])
        if not ipaddress.ip_address(sockets[0].getsockname()[0]).is_loopback:
            warnings.warn(
                f"The receiver listens on {host}, reachable from other machines, not only through "
                "Jupyter. Anyone who can reach it can send requests; only signed ones are stored.",
                stacklevel=3,
            )
        shown_host = f"[{host}]" if ":" in host else host
        self.local_url = f"http://{shown_host}:{self.port}{path}"
        self._ready = threading.Event()
        self._loop: IOLoop | None = None
        self._server: HTTPServer | None = None
        self._batcher = Batcher(self.store)
        self._route_token = secrets.token_urlsafe(24)
        app = make_app(
            self._intake, path=path, max_body=max_body, batcher=self._batcher, route_token=self._route_token
        )
        self._thread = threading.Thread(
            target=self._serve, args=(app, sockets), name=f"elwh-receiver-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise ReceiverError("the receiver thread did not start")
        # With a tunnel, public_url is the tunnel's public address, not the Jupyter server's.
        self._ctx = _urls.detect(public_url=None if tunnel else public_url)
        # The URL belongs to the store: its route id is kept in the file (made on first use).
        started_ns = time.time_ns()
        stored_route = self.store.route()
        self.url_created_at = (stored_route[1] if stored_route else started_ns) / 1e9
        self.url_is_new = stored_route is None or stored_route[1] >= started_ns
        self.route_id: str | None = None
        if self._ctx is not None and self._ctx.server_pid and _routes.server_has_route(self._ctx.server_pid):
            self.route_id = stored_route[0] if stored_route else _routes.new_route_id()
            _routes.attach(
                self.route_id,
                _routes.Route(
                    store=str(self.store.path or ""),
                    max_body=max_body,
                    created_ns=int(self.url_created_at * 1e9),
                    receiver=_routes.Live(
                        host=_connectable(host),
                        port=self.port,
                        path=path,
                        pid=os.getpid(),
                        token=self._route_token,
                    ),
                ),
            )
        where = _urls.runtime()
        self._urls = _urls.hook_urls(
            self._ctx,
            local_url=self.local_url,
            port=self.port,
            path=path,
            route_id=self.route_id,
            stable=stored_route is not None,
            new=self.url_is_new,
            where=where,
        )
        # A tunnel goes to the hook-only port of the Jupyter server when it has one (so the
        # hook route's inbox keeps deliveries while no receiver runs), else to this receiver.
        hook_port = self._hook_port()
        self._tunnel_target = ("127.0.0.1", hook_port) if hook_port else (_connectable(host), self.port)
        self._tunnel_path = f"/elwh/hook/{self.route_id}" if hook_port else path
        self._via_hook_port = hook_port is not None
        self._port_is_fixed = bool(hook_port or port)
        self._tunnel: _tunnel.SshTunnel | None = None
        self._adopted: tuple[str, str] | None = None  # (the public URL's prefix, "public_url" or "ngrok")
        if tunnel is not None:
            self._tunnel = _tunnel.SshTunnel(
                tunnel,
                target=self._tunnel_target,
                remote_port=remote_port,
                public_url=public_url,
                ssh_options=ssh_options or (),
                on_url=self._tunnel_moved,
            )
        elif public_url is not None and self._ctx is None:
            self._adopted = (_tunnel.prefix(public_url), "public_url")
        elif public_url is None and (self._ctx is None or self._ctx.origin_is_local):
            found = _tunnel.ngrok_url(self._tunnel_target[1])
            if found:
                self._adopted = (_tunnel.prefix(found), "ngrok")
        if (
            self._tunnel is None
            and self._adopted is None
            and ((self._ctx is not None and self.route_id is None) or where is not None)
        ):
            # The one thing to act on: no public route on this server yet, or no tunnel where one is needed.
            warnings.warn(self._urls.note or "", stacklevel=3)
        _LIVE.add(self)
        # Deliveries the public route kept while no receiver ran: verified now, as if live then.
        self._draining = threading.Lock()
        self.kept_while_away = 0
        self._drain()
        if self.store.path is not None:
            assert self._loop is not None
            self._loop.add_callback(lambda: PeriodicCallback(self._drain, 2000).start())
        if self._tunnel is not None:
            try:
                up = self._tunnel.start(tunnel_timeout)
            except BaseException as exc:
                self.stop()
                if isinstance(exc, _tunnel.TunnelError):
                    raise ReceiverError(str(exc)) from None
                raise
            if not up:
                warnings.warn(
                    f"The ssh tunnel via {self._tunnel.via} is not up after {tunnel_timeout:.0f} s "
                    f"({self._tunnel.last_error or 'no answer yet'}); it keeps trying, and rx.url "
                    "follows it.",
                    stacklevel=3,
                )

    def _hook_port(self) -> int | None:
        """The Jupyter server's hook-only port, when it has one and serves this store's route."""
        return self.hook_port if self.route_id is not None else None

    def _tunnel_moved(self, old: str | None, new: str) -> None:
        """The tunnel's public URL changed (a quick tunnel reconnected): say it, in one line."""
        if old is None:
            return
        path = self._tunnel_path
        warnings.warn_explicit(
            f"The tunnel's public URL changed: ElevenLabs needs the new URL {new}{path} "
            f"(it was {old}{path}).",
            UserWarning,
            "elwh_nb",  # one line, from whichever thread: no source line to show
            0,
        )

    def _drain(self) -> None:
        """Verify and store what waits in the inbox (a delivery kept just as this started, too)."""
        if self.store.path is None or self._stopped or not self._draining.acquire(blocking=False):
            return
        try:
            after = 0
            while batch := self.store.inbox(after=after):
                for kept in batch:
                    after = kept.id
                    if not self._intake.deliver_kept(kept):
                        return  # the store refuses writes now; the inbox keeps it for the next try
                    self.kept_while_away += 1
        except StoreError:
            log.warning("elwh_nb could not read the inbox of %s", self.store.path)
        finally:
            self._draining.release()

    # -- the thread --------------------------------------------------------------------
    def _serve(self, app: web.Application, sockets: list[Any]) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        self._loop = IOLoop.current()
        self._server = HTTPServer(
            app,
            max_body_size=2 * self.max_body + 2 * SLACK,
            idle_connection_timeout=75,
            body_timeout=self.body_timeout,
        )
        self._server.add_sockets(sockets)
        self._ready.set()
        try:
            self._loop.start()
        finally:
            self._loop.close(all_fds=True)

    async def _shutdown(self) -> None:
        assert self._server is not None and self._loop is not None
        self._server.stop()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.close_all_connections(), 5)
        self._loop.stop()

    def stop(self) -> None:
        """Stop listening and close the store if the receiver opened it.

        The URL stays: while no receiver runs, the public route keeps deliveries in the
        store's inbox, and the next ``start()`` on this store verifies them. (A store in
        memory has no inbox: its URL ends here.) :meth:`retire` ends a URL for good.
        """
        if self._stopped:
            return
        self._stopped = True
        _LIVE.discard(self)
        if self._tunnel is not None:
            self._tunnel.stop()  # first: nothing more comes in through it
        if self.route_id:
            if self.store.path is None:
                _routes.remove(self.route_id)
            else:
                _routes.detach(self.route_id, os.getpid())
        if self._loop is not None:
            self._loop.add_callback(self._shutdown)
        self._thread.join(10)
        self._intake.close()
        with self._draining:
            self._claim.release()
            if self._own_store:
                self.store.close()

    def retire(self) -> None:
        """End this store's URL for good and stop: the URL answers 410 Gone, keeps nothing.

        The next ``start()`` on this store gets a new URL (give ElevenLabs that one).
        """
        if self._stopped:
            raise ReceiverError("retire() a receiver before stopping it, or use: elwh-nb retire --store PATH")
        if self.route_id and self.store.path is None:
            _routes.retire(self.route_id)
        retire_url(self.store)
        self.stop()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a notebook reads ---------------------------------------------------------
    @property
    def url(self) -> str:
        """The URL to give ElevenLabs: through the tunnel (or the adopted public URL) when there
        is one, else the public hook route, else the proxy URL, else local."""
        origin = self._tunnel.url if self._tunnel is not None else self._adopted[0] if self._adopted else None
        return origin + self._tunnel_path if origin else self._urls.url

    @property
    def tunnel(self) -> _tunnel.SshTunnel | None:
        """The ssh tunnel started with ``tunnel=``: ``.up``, ``.url``, ``.restarts``, ``.last_error``,
        ``.uptime`` (None without one)."""
        return self._tunnel

    def tunnel_help(self) -> None:
        """Print the one-line commands (ssh, cloudflared, ngrok) for a tunnel that reaches only the hook."""
        print(
            _tunnel.help_text(
                port=self._tunnel_target[1],
                path=self._tunnel_path,
                hook_port=self._via_hook_port,
                port_is_fixed=self._port_is_fixed,
            )
        )

    @property
    def proxy_url(self) -> str | None:
        """``<origin><base_url>proxy/<port><path>``: needs a Jupyter login; None outside Jupyter."""
        return self._urls.proxy_url

    @property
    def public_url(self) -> str | None:
        """The token-free public hook route, when the Jupyter server serves it."""
        return self._urls.public_url

    @property
    def hook_port(self) -> int | None:
        """The loopback port of this kernel's Jupyter server that serves only the hook routes
        (``http://127.0.0.1:<hook_port>/elwh/hook/<route id>``: what a tunnel points at), if any."""
        pid = self._ctx.server_pid if self._ctx is not None else None
        return _routes.server_hook_port(pid) if pid else None

    @property
    def url_note(self) -> str | None:
        """What to check about :attr:`url` (a local host, no public route, a tunnel), if anything."""
        target = "{}:{}{}".format(*self._tunnel_target, self._tunnel_path)
        if self._tunnel is not None:
            t = self._tunnel
            return _urls.tunnel_note(
                via=t.via,
                target=target,
                up=t.up,
                had_url=t.url is not None,
                stable=t.stable,
                changed_at=t.url_changed_at,
                last_error=t.last_error,
            )
        if self._adopted is not None:
            return _urls.adopted_note(how=self._adopted[1], url=self._adopted[0], target=target)
        return self._urls.note

    @property
    def events(self) -> pd.DataFrame:
        """Every verified event (see :attr:`EventStore.events`)."""
        return self.store.events

    @property
    def failures(self) -> pd.DataFrame:
        """Rejected deliveries, newest last, with reason and explanation."""
        return self.store.failures

    @property
    def callback_errors(self) -> pd.DataFrame:
        """Exceptions raised by ``on_event`` callbacks (recorded, never raised here)."""
        return pd.DataFrame(
            list(self._intake.callback_errors), columns=["time", "event_id", "callback", "error", "traceback"]
        )

    @overload
    def on_event(self, fn: EventCallback, *, types: str | Iterable[str] | None = None) -> EventCallback: ...

    @overload
    def on_event(
        self, fn: None = None, *, types: str | Iterable[str] | None = None
    ) -> Callable[[EventCallback], EventCallback]: ...

    def on_event(
        self, fn: EventCallback | None = None, *, types: str | Iterable[str] | None = None
    ) -> EventCallback | Callable[[EventCallback], EventCallback]:
        """Call ``fn(event)`` for each new event, or only for those of ``types``, on a worker thread.

        ``rx.on_event(fn)``, ``rx.on_event(fn, types=[...])``, ``@rx.on_event`` and
        ``@rx.on_event(types=[...])`` all work. ``types`` are names as in
        ``rx.events.event_type`` (``type``, or the tutorial's ``event_type``); one name may
        be a plain string, and names not known yet are allowed. Exceptions land in
        :attr:`callback_errors`.
        """
        wanted = callback_types(types)  # bad types fail here, before any decorating

        def register(callback: EventCallback) -> EventCallback:
            self._intake.add_callback(callback, wanted)
            return callback

        return register if fn is None else register(fn)

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def simulate(
        self,
        n: int | Iterable[Mapping[str, Any] | bytes] = 20,
        *,
        faults: Any = None,
        via: str = "auto",
        **options: Any,
    ) -> pd.DataFrame:
        """Play ElevenLabs: send ``n`` realistic signed deliveries (or these events or bodies) and ``faults``.

        ``via`` is ``"public"`` (the public hook route), ``"proxy"`` (with this kernel's
        Jupyter credentials), ``"direct"`` (the local URL), ``"tunnel"`` (:attr:`url`,
        through the tunnel), or ``"auto"``: the route an outside sender would use. Returns
        what :func:`elwh_nb.send` returns.
        """
        from .sender import send

        target, headers = self._target(via)
        options.setdefault("max_body", self.max_body)
        return send(target, self._intake.signing_secret, n, faults=faults, headers=headers, **options)

    def replay(self, event_id: int, *, via: str = "auto") -> pd.DataFrame:
        """Deliver a stored event again, signed anew, as an ElevenLabs retry would (a duplicate)."""
        from .sender import send

        target, headers = self._target(via)
        body = self.store.raw_body(event_id)
        return send(target, self._intake.signing_secret, [body], headers=headers, progress=False)

    def simulate_outage(self, deliveries: int = 3) -> None:
        """Answer 503 to the next ``deliveries`` POSTs, as if the receiver were down (to see retries)."""
        self._intake.outage_left = deliveries

    def expect(self, job_id: str, *, submitted_at: Any = None, kind: str | None = None) -> None:
        """Announce a submitted job; its webhook's row gets ``turnaround_s`` (see :attr:`jobs`)."""
        self.store.expect(job_id, submitted_at=submitted_at, kind=kind)

    @property
    def jobs(self) -> pd.DataFrame:
        """Jobs announced with :meth:`expect`: still waiting, or arrived with their turnaround."""
        return self.store.jobs

    _shown: Dashboard | None = None  # the one dashboard `rx` displays as

    def dashboard(self, **options: Any) -> Dashboard:
        """A new live panel over this receiver, an ipywidgets ``VBox`` (several may be open)."""
        from .._notebook.dashboard import Dashboard

        return Dashboard(self, **options)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # In a notebook, the receiver shows as its dashboard: the same one each time, so
        # that displaying `rx` again does not add a panel (and a refresh timer) each time.
        shown = self._shown
        if shown is None or shown.closed:
            shown = self._shown = self.dashboard()
        else:
            shown.refresh(force=True)
        return shown._repr_mimebundle_(**kwargs)

    def _target(self, via: str) -> tuple[str, dict[str, str]]:
        ctx = self._ctx
        local = ctx.local_origin if ctx is not None else None
        if via == "auto":
            via = "public" if self.route_id and local else "proxy" if ctx is not None and local else "direct"
        if via == "public" and self.route_id and ctx is not None and local:
            return f"{local}{ctx.base_url}elwh/hook/{self.route_id}", {}
        if via == "proxy" and ctx is not None and local:
            headers = {"Authorization": f"token {ctx.token}"} if ctx.token else {}
            return f"{local}{ctx.base_url}proxy/{self.port}{self.path}", headers
        if via == "direct":
            return self.local_url, {}
        if via == "tunnel" and (self._tunnel is not None or self._adopted is not None):
            return self.url, {}
        raise ValueError(f"cannot send via {via!r} here; use 'direct'")

    @property
    def url_story(self) -> str:
        """When this URL was set up, and what was kept for it while no receiver ran."""
        age = _age(time.time() - self.url_created_at)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.url_created_at))
        story = f"URL set up {when} ({age} ago)"
        if self.kept_while_away:
            story += f"; {self.kept_while_away} deliveries kept while the receiver was away"
        return story

    def __repr__(self) -> str:
        c = self.store.counts
        state = "listening" if self.running else "stopped"
        tunnel = f"; tunnel {self._tunnel.summary}" if self._tunnel is not None else ""
        return (
            f"<Receiver {state} on {self.local_url}: {c['events']} events, {c['duplicates']} "
            f"duplicates, {c['failures']} failures; url={self.url}; {self.url_story}{tunnel}>"
        )


def retire_url(store: EventStore) -> bool:
    """End a store's URL for good: the public route answers 410 Gone for it and keeps nothing.

    The events stay; the next receiver on the store gets a new URL. Returns whether the
    store had a URL. The caller holds the store (no other receiver runs on it).
    """
    route = store.route(create=False)
    if route is None:
        return False
    _routes.retire(route[0])  # first: from now on the route keeps nothing more
    store.forget_route()
    return True


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _stop_earlier(path: Path | None) -> None:
    """Re-running a start() cell: the kernel's earlier receiver on this store stops first."""
    if path is None:
        return
    for other in list(_LIVE):
        if other.store.path == path and not other._stopped:
            warnings.warn(
                f"Stopped this kernel's earlier receiver on {path.name} (a store has one receiver "
                "at a time); its URL carries on with this one.",
                stacklevel=4,
            )
            other.stop()


def _connectable(host: str) -> str:
    """An address the server extension can connect to for a listening host."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def start(
    secret: Secret,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    path: str = "/webhook",
    store: EventStore | str | Path | None = None,
    tolerance: float | None = DEFAULT_TOLERANCE,
    future_tolerance: float | None = DEFAULT_FUTURE_TOLERANCE,
    max_body: int = DEFAULT_MAX_BODY,
    public_url: str | None = None,
    body_timeout: float = 120.0,
    tunnel: str | None = None,
    remote_port: int | None = None,
    ssh_options: Sequence[str] | None = None,
    tunnel_timeout: float = 30.0,
) -> Receiver:
    """Start a receiver on its own thread and return it; give ElevenLabs ``rx.url``.

    ``store`` is an :class:`EventStore`, a file path, or None for ``elwh_events.sqlite``
    in the working directory. ``port=0`` picks a free port. ``public_url`` (or the
    ``ELWH_PUBLIC_URL`` environment variable) is the origin ElevenLabs can reach.
    ``body_timeout`` is how long a sender may take to send a body before the connection
    is dropped (a body that never ends cannot hold a connection forever).

    ``tunnel="ssh://user@host[:port]"`` (or ``"ssh://nokey@localhost.run"``) opens a
    supervised ssh tunnel that reaches only the hook, and ``rx.url`` follows it;
    ``remote_port`` fixes the port on your server (so the URL stays), ``ssh_options``
    adds ssh arguments, and ``public_url`` is then the tunnel's public address. Outside
    Jupyter, ``public_url`` adopts a tunnel you run yourself (``rx.tunnel_help()``); a
    running ngrok agent's tunnel to this receiver is adopted by itself.
    """
    return Receiver(
        secret,
        port=port,
        host=host,
        path=path,
        store=store,
        tolerance=tolerance,
        future_tolerance=future_tolerance,
        max_body=max_body,
        public_url=public_url,
        body_timeout=body_timeout,
        tunnel=tunnel,
        remote_port=remote_port,
        ssh_options=ssh_options,
        tunnel_timeout=tunnel_timeout,
    )
