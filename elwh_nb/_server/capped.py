"""An HTTP server that keeps its connections below the process's file limit, and never spins.

Each connection is a file descriptor. Past the limit (commonly 1,024), ``accept`` fails with
"Too many open files", and Tornado's accept handler raises on every turn of the loop while
the listening socket stays readable: all CPU, a traceback each time, and real webhooks
waiting. Here a connection over :func:`connection_cap` is closed as soon as it is accepted,
and when ``accept`` itself finds no file left (the process's other files used them), the
server stops accepting for a moment; both are logged once per :data:`LOG_EVERY_S`. When
connections close, it takes new ones again. Stdlib and tornado only: the Jupyter server
imports this module for the hook-only port.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

log = logging.getLogger("elwh_nb")

LOG_EVERY_S = 60.0
PAUSE_S = 0.25  # accepting stops this long when no file descriptor is left
_OUT_OF_FILES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def connection_cap() -> int:
    """Connections one server keeps open: its share of the process's file limit, leaving room
    for everything else the process opens (a kernel's sockets, the store's files)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(8, min(10_000, soft - max(64, soft // 4)))


class CappedHTTPServer(HTTPServer):
    """:class:`HTTPServer` with at most ``max_connections`` open; see the module docstring."""

    def initialize(self, *args: Any, max_connections: int | None = None, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections or connection_cap()
        self.refused = 0  # connections closed at once since the last log line
        self._logged = 0.0

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    @property
    def open(self) -> int:
        """Connections open now (HTTPServer's own set: it drops each as it closes)."""
        return len(self._connections)

    def handle_stream(self, stream: IOStream, address: Any) -> None:
        if self.open >= self.max_connections:
            self.refused += 1
            stream.close()
            self._say(
                f"elwh_nb: {self.open} connections are open, this server's most "
                "(below the process's file limit); new ones are closed until some end"
            )
            return
        super().handle_stream(stream, address)

    def _say(self, message: str) -> None:
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_S:
            self._logged = now
            log.warning("%s (%d refused)", message, self.refused)
            self.refused = 0

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        """Tornado's accept handler, but one that pauses instead of raising when out of files."""
        loop = IOLoop.current()
        state = {"removed": False, "paused": False}

        def accept(fd: Any, events: int) -> None:
            for _ in range(128):  # as Tornado: a batch at a time, then let others run
                if state["removed"]:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in _OUT_OF_FILES:
                        raise
                    self.refused += 1
                    self._say(f"elwh_nb: no file descriptor left to accept a connection ({exc.strerror})")
                    loop.remove_handler(sock)
                    state["paused"] = True
                    loop.call_later(PAUSE_S, resume)
                    return
                self._handle_connection(connection, address)

        def resume() -> None:
            if state["paused"] and not state["removed"]:
                state["paused"] = False
                loop.add_handler(sock, accept, IOLoop.READ)

        def remove() -> None:
            if not state["paused"]:
                loop.remove_handler(sock)
            state["removed"] = True

        loop.add_handler(sock, accept, IOLoop.READ)
        return remove
