"""What the public route does with one delivery: forward it to its receiver, or keep it.

A plain class over an aiohttp connection pool, apart from any web framework, so that every
place that serves hook routes does the same. A delivery goes to the receiver that runs for
its route; when none does (the kernel restarting, dead, or not started yet), or the answer
does not come from that receiver (another program took its port), it is kept in the
store's inbox and answered 200 once committed; a full or unwritable inbox is a 503, which
ElevenLabs retries. Stdlib and aiohttp only: the Jupyter server imports this module.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from yarl import URL

from .._core import inbox as _inbox
from .._core import protocol as _protocol
from .._core.exceptions import InboxRefused
from .._core.protocol import Reply
from .routes import Route

log = logging.getLogger("elwh_nb.route")

# Hop-by-hop headers (RFC 9110 7.6.1) and credentials never go to the receiver; nor do a
# client's internal (X-Elwh-*) headers, which only the route sets.
DROP = {
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
_STREAM_OVER = 1 << 20  # bodies over this go to the receiver in pieces (no second copy in a buffer)


def _json(code: int, **fields: Any) -> Reply:
    return Reply(code, json.dumps(fields).encode())


def clean_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A request's headers without hop-by-hop ones, credentials, or a client's internal ones."""
    return {
        k: v
        for k, v in headers
        if k.lower() not in DROP and not k.lower().startswith(_protocol.INTERNAL_PREFIX)
    }


async def _pieces(view: memoryview) -> AsyncIterator[memoryview]:
    for start in range(0, len(view), _STREAM_OVER):
        yield view[start : start + _STREAM_OVER]


class Relay:
    """Forwards deliveries to receivers through one keep-alive pool, or keeps them in inboxes."""

    def __init__(self, limits: _inbox.Limits | None = None) -> None:
        self.limits = limits or _inbox.Limits()
        self.refused = 0  # deliveries answered 503 because an inbox was full or unwritable
        self.kept = 0
        self._session: Any = None

    def session(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=60),
                timeout=aiohttp.ClientTimeout(total=300, connect=10),
                auto_decompress=False,
                # Headers the sender did not send stay unsent (a failure shows what came).
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        return self._session

    async def deliver(
        self,
        route: Route,
        body: bytearray,
        headers: dict[str, str],
        *,
        remote: str,
        too_large: str | None = None,
    ) -> Reply:
        """Forward ``body`` to the route's receiver, else keep it; ``too_large`` is the route's notice.

        ``headers`` are the cleaned request headers (see :func:`clean_headers`) plus the
        forwarding ones. The caller gives up ``body``: it is released here once used.
        """
        if route.retired:
            return _json(410, ok=False, status=410)
        live = route.receiver
        if live is not None:
            sent = dict(headers)
            sent[_protocol.ROUTE_TOKEN_HEADER] = live.token
            if too_large:
                sent[_protocol.TOO_LARGE_HEADER] = too_large
            host = f"[{live.host}]" if ":" in live.host else live.host
            url = f"http://{host}:{live.port}{live.path}"
            # Twice: a pooled keep-alive connection the receiver already closed fails at
            # once, and the second try opens a fresh one. A repeat is deduplicated.
            for attempt in (1, 2):
                try:
                    reply = await self._post(url, body, sent, live.token)
                except Exception as exc:  # gone, or died mid-request: keep it
                    log.debug(
                        "elwh_nb: the receiver did not answer (%s, try %d)", type(exc).__name__, attempt
                    )
                    continue
                if reply is not None:
                    return reply
                break  # another program answered on that port
        if not route.store:  # a receiver with its events in memory: no inbox, its URL ends with it
            return _json(404, ok=False, status=404)
        return await self.keep(route, body, headers, remote=remote, too_large=too_large)

    async def call(
        self,
        route: Route,
        method: str,
        call: str,
        query: str,
        body: bytes,
        headers: dict[str, str],
        too_large: str | None = None,
    ) -> Reply:
        """Forward an agent-tool or call-start request (``call``: the path under the hook, with
        no dot segment) and bring back its answer. Never kept: an answer is wanted now, so
        while the receiver is away the caller gets a 503 saying so (ElevenLabs tells the agent
        the tool failed). ``too_large``: the route's notice of a body it refused (not sent).
        """
        if route.retired:
            return _json(410, error="this URL was retired")
        live = route.receiver
        if live is not None:
            sent = {**headers, _protocol.ROUTE_TOKEN_HEADER: live.token, _protocol.CALL_HEADER: "1"}
            if too_large:
                sent[_protocol.TOO_LARGE_HEADER] = too_large
            host = f"[{live.host}]" if ":" in live.host else live.host
            # encoded=True: the path goes as built; yarl would otherwise fold "." and ".." away.
            url = URL(
                f"http://{host}:{live.port}{live.path.rstrip('/')}/{call}" + (f"?{query}" if query else ""),
                encoded=True,
            )
            for attempt in (1, 2):  # a pooled connection the receiver closed fails at once
                try:
                    async with self.session().request(
                        method, url, data=body or None, headers=sent
                    ) as response:
                        answer = await response.read()
                        if response.status != _protocol.MISDIRECTED and _protocol.acked(
                            live.token, response.headers.get(_protocol.ACK_HEADER)
                        ):
                            return Reply(response.status, answer)
                    break  # another program answered on that port
                except Exception as exc:
                    log.debug(
                        "elwh_nb: the receiver did not answer a call (%s, try %d)",
                        type(exc).__name__,
                        attempt,
                    )
        return _json(
            503,
            error="the notebook that answers this is not running (its kernel is stopped or restarting); "
            "nothing was done",
        )

    async def _post(self, url: str, body: bytearray, headers: dict[str, str], token: str) -> Reply | None:
        view = memoryview(body)
        data: Any = bytes(view) if len(view) <= _STREAM_OVER else _pieces(view)
        async with self.session().post(url, data=data, headers=headers) as response:
            answer = await response.read()
            if response.status == _protocol.MISDIRECTED or not _protocol.acked(
                token, response.headers.get(_protocol.ACK_HEADER)
            ):
                return None  # not that receiver: another program has its port now
            return Reply(response.status, answer)

    async def keep(
        self,
        route: Route,
        body: bytearray,
        headers: dict[str, str],
        *,
        remote: str,
        too_large: str | None = None,
    ) -> Reply:
        """Commit the delivery to the store's inbox (off the event loop), then answer 200."""
        kept = _inbox.kept_headers(headers)
        if too_large:  # kept as a record: the receiver answers it as a 413 when it drains
            kept[_protocol.TOO_LARGE_HEADER.lower()] = too_large
            body = bytearray()
        keep = functools.partial(
            _inbox.keep,
            route.store,
            body,
            kept,
            remote=remote,
            received_ns=time.time_ns(),
            limits=self.limits,
        )
        try:
            await asyncio.get_running_loop().run_in_executor(None, keep)
        except InboxRefused as exc:
            self.refused += 1
            log.warning("elwh_nb: a delivery was refused with 503 while its receiver is away: %s", exc)
            return _json(503, ok=False, status=503)
        self.kept += 1
        if too_large:
            return _json(413, ok=False, reason="body_too_large")
        return _json(200, ok=True, kept=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
