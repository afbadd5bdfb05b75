"""A Tornado HTTP server on its own thread and IOLoop, and the stopping of what runs at exit.

Cells can run (and block) on the kernel's main thread while this thread keeps answering.
The server keeps its connections below the process's file limit (see :mod:`.capped`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ipaddress
import threading
import warnings
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tornado import netutil, web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop, PeriodicCallback

from .._core.exceptions import ReceiverError
from .capped import CappedHTTPServer


class Stoppable(Protocol):
    def stop(self) -> None: ...


_RUNNING: weakref.WeakSet[Any] = weakref.WeakSet()


def running() -> list[Any]:
    """What :func:`stop_at_exit` holds and has not been told to :func:`forget`."""
    return list(_RUNNING)


def stop_at_exit(thing: Stoppable) -> None:
    """Call ``thing.stop()`` when the interpreter exits, unless :func:`forget` comes first."""
    _RUNNING.add(thing)


def forget(thing: Stoppable) -> None:
    _RUNNING.discard(thing)


@atexit.register
def _stop_all() -> None:
    for thing in running():
        thing.stop()


def bind(host: str, port: int, *, stacklevel: int) -> list[Any]:
    """Listening sockets on ``host:port`` (0: a free port); a clear error when the port is taken,
    a warning when other machines can reach it."""
    try:
        sockets = netutil.bind_sockets(port, address=host)
    except OSError as exc:
        raise ReceiverError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. "
            + (
                "Another receiver (or program) uses this port: stop it, or pass port=0 for a free one."
                if port
                else ""
            )
        ) from exc
    if not ipaddress.ip_address(sockets[0].getsockname()[0]).is_loopback:
        warnings.warn(
            f"The receiver listens on {host}, reachable from other machines, not only through "
            "Jupyter. Anyone who can reach it can send requests; only signed ones are stored.",
            stacklevel=stacklevel + 1,
        )
    return sockets


class ServerThread:
    """Serves ``app`` on ``sockets`` from a daemon thread with its own IOLoop, until :meth:`stop`."""

    def __init__(
        self,
        app: web.Application,
        sockets: list[Any],
        *,
        name: str,
        drain: Callable[[], Awaitable[None]] | None = None,
        **server_options: Any,
    ) -> None:
        self.port = int(sockets[0].getsockname()[1])
        self._drain = drain  # awaited on stop, after the listening ends and before connections close
        self._ready = threading.Event()
        self._loop: IOLoop | None = None
        self._server: HTTPServer | None = None
        self._thread = threading.Thread(
            target=self._serve, args=(app, sockets, server_options), name=f"{name}-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise ReceiverError("the receiver thread did not start")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the server's thread."""
        assert self._loop is not None
        self._loop.add_callback(fn)

    def every(self, ms: float, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the server's thread every ``ms`` milliseconds while it runs."""
        self.call(lambda: PeriodicCallback(fn, ms).start())

    def stop(self, timeout: float = 10) -> None:
        """Stop listening, let requests under way be answered, close connections, and end the thread.

        Each of the two waits is 5 s at most.
        """
        if self._loop is not None and self._thread.is_alive():
            self._loop.add_callback(self._shutdown)
        self._thread.join(timeout)

    def _serve(self, app: web.Application, sockets: list[Any], server_options: dict[str, Any]) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        self._loop = IOLoop.current()
        self._server = CappedHTTPServer(app, **server_options)
        self._server.add_sockets(sockets)
        self._ready.set()
        try:
            self._loop.start()
        finally:
            self._loop.close(all_fds=True)

    async def _shutdown(self) -> None:
        assert self._server is not None and self._loop is not None
        self._server.stop()
        if self._drain is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drain(), 5)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.close_all_connections(), 5)
        self._loop.stop()
