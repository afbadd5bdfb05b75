"""The hub service's read API: ``<prefix>api/<webhook>/...`` for readers holding the webhook's scope.

A reader sends its hub token (``Authorization: token ...``, a kernel's
``JUPYTERHUB_API_TOKEN``); the hub says whose it is and which scopes it carries, and
:func:`read_scope` must be among them, else 403. Only new rows travel, as Arrow (:mod:`.wire`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from tornado import web

from .._core.protocol import COUNTS_HEADER, REPLACED_HEADER, STORE_HEADER
from .._core.schema import CONVERSATIONS, FAILURES, TOOL_CALLS, TURNS
from . import wire
from .answers import send_json

if TYPE_CHECKING:
    from .hubservice import HubService, Webhook

log = logging.getLogger("elwh_nb")


#: Row ids in the read API: a plain decimal that fits SQLite's 64-bit integer.
_ROW_ID = re.compile(r"[0-9]{1,18}")
#: The longest webhook name echoed back (in a status line, an error or the log).
ECHO_CHARS = 64


def echoed(name: str) -> str:
    """``name`` as it may be repeated to a client or the log: at most :data:`ECHO_CHARS`."""
    return name if len(name) <= ECHO_CHARS else name[:ECHO_CHARS] + f"... ({len(name)} characters)"


def row_id(text: str, what: str) -> int:
    """A row id from the URL, or a 400 that says what a row id is."""
    if not _ROW_ID.fullmatch(text):
        raise web.HTTPError(400, reason=f"{what} must be a row id: digits only, at most 18 of them")
    return int(text)


def read_scope(webhook: str) -> str:
    """The custom hub scope that lets a token read one webhook."""
    return f"custom:elwh-read:{webhook}"


class HubReaders:
    """Who a hub token belongs to and its scopes, asked of the hub (``HubAuth``, token only)."""

    def __init__(self, auth: Any) -> None:
        self.auth = auth

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> HubReaders | None:
        if not environ.get("JUPYTERHUB_API_TOKEN"):
            return None  # not run by a hub: nobody can read through the API
        from jupyterhub.services.auth import HubAuth  # type: ignore[import-untyped]

        return cls(HubAuth(api_token=environ["JUPYTERHUB_API_TOKEN"], cache_max_age=60))

    async def scopes(self, token: str) -> tuple[str, set[str]] | None:
        """The token's owner and scopes, or None when the hub does not know the token."""
        model = await self.auth.user_for_token(token, sync=False)
        if not model:
            return None
        return str(model.get("name", "")), set(model.get("scopes", ()))


class ApiHandler(web.RequestHandler):
    """Checks the reader's token and scope before any answer; errors are JSON."""

    def initialize(self, service: HubService) -> None:
        self.service = service

    def check_xsrf_cookie(self) -> None:
        return  # token-only, GET only

    async def webhook(self, name: str) -> Webhook:
        readers = self.service.readers
        found = self.service.webhooks.get(name)
        match = re.match(r"(?:token|bearer)\s+(\S+)", self.request.headers.get("Authorization", ""), re.I)
        if readers is None or match is None:
            raise web.HTTPError(401, reason="Send your hub token: Authorization: token $JUPYTERHUB_API_TOKEN")
        who = await readers.scopes(match.group(1))
        if who is None:
            raise web.HTTPError(401, reason="The hub does not know this token")
        user, scopes = who
        if found is None or read_scope(name) not in scopes:
            # The same answer for a webhook that does not exist: names are not given away.
            scope = echoed(read_scope(name))
            log.info("reader %s refused webhook %s: no scope %s", echoed(user), echoed(name), scope)
            raise web.HTTPError(
                403, reason=f"Your hub token lacks the scope {scope}: ask your hub's admin for it"
            )
        return found

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = {"ok": False, "status": status_code, "error": self._reason}
        send_json(self, status_code, orjson.dumps(error), reason=self._reason)  # the phrase says why

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")  # the Arrow pages too

    def identify(self, hook: Webhook) -> None:
        """Name the store answering, so that a reader notices when it is another one."""
        self.set_header(STORE_HEADER, hook.store.store_id or "")


_DERIVED = {t.name: t for t in (TURNS, TOOL_CALLS, CONVERSATIONS)}


class RowsHandler(ApiHandler):
    """``GET api/<webhook>/events?after=ID`` (or ``failures``, ``turns``, ``tool_calls``,
    ``conversations``): the rows after ``ID``, as Arrow."""

    async def get(self, name: str, which: str) -> None:
        hook = await self.webhook(name)
        after = row_id(self.get_argument("after", "0") or "0", "after")
        run = asyncio.get_running_loop().run_in_executor
        path = str(hook.store.path)
        if which == "events":
            arrays = hook.store.arrays_after(after, wire.PAGE)
            data = await run(None, wire.events_stream, arrays)
        elif which == "failures":
            data = await run(None, wire.read_new, path, FAILURES, after)
        else:
            data, replaced = await run(None, wire.read_derived, path, _DERIVED[which], after)
            self.set_header(REPLACED_HEADER, replaced)
        counts = hook.store.counts
        self.identify(hook)
        self.set_header("Content-Type", wire.MEDIA_TYPE)
        self.set_header(
            COUNTS_HEADER,
            orjson.dumps(
                {"deliveries": counts["deliveries"], "failures": hook.store.failure_counts}
            ).decode(),
        )
        self.finish(data)


class PayloadHandler(ApiHandler):
    """``GET api/<webhook>/payload/<id>``: one event's raw body, as delivered."""

    async def get(self, name: str, event_id: str) -> None:
        hook = await self.webhook(name)
        try:
            body = hook.store.raw_body(row_id(event_id, "an event id"))
        except KeyError:
            raise web.HTTPError(404, reason=f"no event {event_id}") from None
        self.identify(hook)
        self.set_header("Content-Type", "application/json")
        self.finish(body)


class InfoHandler(ApiHandler):
    """``GET api/<webhook>``: its URL (to give ElevenLabs), counts and when the service started."""

    async def get(self, name: str) -> None:
        hook = await self.webhook(name)
        route = hook.store.route(create=False)
        self.identify(hook)
        self.set_header("Content-Type", "application/json")
        self.finish(
            orjson.dumps(
                {
                    "name": hook.name,
                    "url": self.service.hook_url(hook),
                    "url_created_ns": route[1] if route else 0,
                    "counts": hook.store.counts,
                    "max_failures": hook.store.max_failures,
                    "store_id": hook.store.store_id,
                }
            )
        )


def api_rules(service: HubService) -> list[Any]:
    base = re.escape(service.prefix) + r"api/([^/]+)"
    args = {"service": service}
    return [
        (rf"{base}/(events|failures|turns|tool_calls|conversations)", RowsHandler, args),
        (rf"{base}/payload/(\d+)", PayloadHandler, args),
        (rf"{base}/?", InfoHandler, args),
    ]
