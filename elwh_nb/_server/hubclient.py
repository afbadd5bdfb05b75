"""``elwh_nb.connect(name)``: a webhook of the hub service, read from a notebook.

The :class:`Connection` holds a :class:`Mirror`: an in-memory :class:`EventStore` fed only the
rows it lacks, as Arrow (:mod:`.wire`), through the store's own loading code, so ``events``,
``failures``, ``counts``, the dashboard and ``timings()`` work as on a local receiver; so do
``turns``, ``tool_calls`` and ``conversations``, whose rows the service derived as it stored
each call (they come as the file's rows, into the mirror's own tables, and are followed from there). Raw
bodies stay in the service; a payload is fetched when it is opened. The secret never leaves it.

Pulls run on a thread of the connection's own (:class:`Puller`), so a slow or hung service
never holds up the kernel's loop: the dashboard shows what is in memory and asks for more; a
cell that reads ``conn.events`` waits for one pull (a few seconds at most). While the service
is unreachable the pulls back off, and the dashboard and ``url_note`` say since when. Each
answer names the store it came from: a service whose store was replaced is read again from
its first row.
"""

from __future__ import annotations

import functools
import http.client
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from .._core.exceptions import ReceiverError
from .._core.protocol import COUNTS_HEADER, REPLACED_HEADER, STORE_HEADER
from .._core.replica import Replica
from .._core.schema import CONVERSATIONS, FAILURES, TOOL_CALLS, TURNS
from . import wire

if TYPE_CHECKING:
    from .._notebook.conversation_view import CallView
    from .._notebook.dashboard import Dashboard

log = logging.getLogger("elwh_nb")

#: Seconds between two pulls at most (reads in between use what is in memory).
PULL_EVERY_S = 0.5
#: Seconds a request to the service may take (connecting, or waiting for the next bytes).
TIMEOUT_S = 5.0
#: While the service is unreachable, pulls wait twice as long each time, up to this.
MAX_BACKOFF_S = 30.0


class HubApi:
    """GETs to the service's read API with the user's hub token; every failure is a ReceiverError."""

    def __init__(self, base: str, token: str, webhook: str) -> None:
        self.base = base.rstrip("/") + f"/api/{webhook}"
        self.token = token

    def get(self, path: str) -> tuple[bytes, Mapping[str, str]]:
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                return answer.read(), answer.headers
        except urllib.error.HTTPError as exc:
            try:
                why = orjson.loads(exc.read()).get("error", "")
            except (orjson.JSONDecodeError, AttributeError, OSError):
                why = ""
            raise ReceiverError(f"the hub service answered {exc.code} for {self.base}{path}: {why}") from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, bad answers
            reason = getattr(exc, "reason", None) or exc
            raise Unreachable(
                f"the hub service at {self.base} is unreachable: {type(reason).__name__}: {reason}"
            ) from None


class Unreachable(ReceiverError):
    """The hub service did not answer (down, hung, or the network between)."""


class Puller:
    """Runs a mirror's pulls on a thread of its own when asked, backing off while the service is down."""

    def __init__(self, pull: Callable[[], object], on_state: Callable[[], None]) -> None:
        self._pull = pull
        self._on_state = on_state  # reachability changed: views should redraw
        self._cond = threading.Condition()
        self._asked = self._done = 0
        self._urgent = False
        self._stopped = False
        self._next_at = 0.0  # monotonic time before which no pull starts
        self._backoff = PULL_EVERY_S
        self.down_since: float | None = None  # time.time() of the first failure of this outage
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="elwh-hub-reader", daemon=True)
        self._thread.start()

    def ask(self, *, urgent: bool = False) -> int:
        """Ask for a pull (at once if ``urgent``, unless backing off); returns a ticket for :meth:`wait`."""
        with self._cond:
            self._asked += 1
            self._urgent |= urgent
            self._cond.notify_all()
            return self._asked

    def wait(self, ticket: int, timeout: float) -> bool:
        """Wait until the pull answering ``ticket`` has run; False if it did not in ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done >= ticket or self._stopped, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._asked > self._done:
                        start = self._next_at if self.down_since is not None or not self._urgent else 0.0
                        delay = start - time.monotonic()
                        if delay <= 0:
                            break
                        self._cond.wait(delay)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                ticket, self._urgent = self._asked, False
            self._once()
            with self._cond:
                self._done = ticket
                self._cond.notify_all()

    def _once(self) -> None:
        was_down = self.down_since is not None
        try:
            self._pull()
        except ReceiverError as exc:
            if not was_down:
                self.down_since = time.time()
                log.warning("%s; showing the rows read before, and trying again", exc)
            self.error = str(exc)
            self._next_at = time.monotonic() + self._backoff
            self._backoff = min(2 * self._backoff, MAX_BACKOFF_S)
        except Exception as exc:  # a bug must not end the thread: say it, and keep trying
            if self._stopped:
                return  # closed while a pull ran: its store is gone, nothing to say
            log.exception("reading the hub service failed")
            self.error = f"{type(exc).__name__}: {exc}"
            self._next_at = time.monotonic() + MAX_BACKOFF_S
        else:
            if was_down:
                log.warning("the hub service answers again; reading on")
            self.down_since, self.error = None, None
            self._next_at, self._backoff = time.monotonic() + PULL_EVERY_S, PULL_EVERY_S
        if was_down != (self.down_since is not None):
            self._on_state()


class Mirror(Replica):
    """A webhook's events and failures in memory, pulled from the hub service as they come
    (through the replica's own methods: the wire's rows in, nothing reached into)."""

    def __init__(self, api: HubApi, max_failures: int, source: str | None = None) -> None:
        super().__init__(max_failures=max_failures)
        self.api = api
        self.source = source  # the id of the service's store these rows came from
        self._pulling = threading.Lock()
        self.puller = Puller(self._pull_all, self.touch)

    def pull(self) -> bool:
        """Fetch the rows stored since the last pull, here and now; returns whether there were any."""
        return self._pull_all()

    def sync(self) -> None:
        """Wait for one pull that starts now (unless the service is known to be unreachable)."""
        ticket = self.puller.ask(urgent=True)
        if self.puller.down_since is None:
            self.puller.wait(ticket, 2 * TIMEOUT_S + 1)

    def _pull_all(self) -> bool:
        with self._pulling:  # one pull at a time: two would both add the rows after the same id
            new = self._pull_events() | self._pull_failures()
            new = self._pull_derived() | new
        if new:
            self.touch()
        return new

    def _same_source(self, headers: Mapping[str, str]) -> bool:
        """Whether the answer is from the store read so far; if not, forget it all and say so."""
        source = headers.get(STORE_HEADER) or None
        if source is None or source == self.source:
            return True
        if self.source is not None:
            log.warning(
                "the hub service's store for this webhook was replaced: reading it from its first row"
            )
            self.forget()
            type(self).raw_body.cache_clear()
        self.source = source
        return False

    def _pull_events(self) -> bool:
        got = 0
        while True:
            data, headers = self.api.get(f"/events?after={self.last_event_id()}")
            if not self._same_source(headers):
                continue  # from the first row of the store now answering
            arrays = wire.events_arrays(data)
            counts = orjson.loads(headers.get(COUNTS_HEADER, "{}"))
            if not self.add_events(arrays, counts.get("deliveries")):
                return False
            got += len(arrays.columns["id"])
            if len(arrays.columns["id"]) < wire.PAGE:
                return got > 0

    def _pull_failures(self) -> bool:
        data, headers = self.api.get(f"/failures?after={self.last_failure_id()}")
        if not self._same_source(headers):
            return self._pull_events() | self._pull_failures()
        rows = wire.rows(data, FAILURES)
        counts = orjson.loads(headers.get(COUNTS_HEADER, "{}")).get("failures", {})
        return self.add_failures(wire.names(FAILURES), rows, counts) and bool(rows)

    def _pull_derived(self) -> bool:
        """New rows of the turns, tool calls and conversations (in that order: a conversation
        row comes with, or after, its turns), into the mirror's tables, then into memory."""
        got = False
        for table in (TURNS, TOOL_CALLS, CONVERSATIONS):
            while True:
                after, seen = self.derived_after(table), self.replaced_seen()
                if after is None:  # closed meanwhile (close() runs on the kernel's thread)
                    return got
                data, headers = self.api.get(f"/{table.name}?after={after}")
                if not self._same_source(headers):
                    return self._pull_events() | self._pull_derived()
                replaced = headers.get(REPLACED_HEADER, "")
                if table is TURNS and replaced != seen:
                    self.turns_replaced(replaced)  # then read its turns from the first
                    continue
                rows = wire.rows(data, table)
                if not self.add_derived(table, wire.names(table), rows):
                    return got
                got = got or bool(rows)
                if len(rows) < wire.PAGE:
                    break
        if got:
            self.reload_derived()
        return got

    def _fresh(self) -> None:
        if not self.closed:
            self.puller.ask()  # never waits: the rows come on the puller's thread

    @property
    def changes(self) -> int:
        self._fresh()
        return super().changes

    def close(self) -> None:
        self.puller.stop()
        super().close()

    @functools.lru_cache(maxsize=64)  # noqa: B019  (bodies of one connection, a few at a time)
    def raw_body(self, event_id: int) -> bytes:
        """An event's body, fetched from the service (the last few are kept)."""
        return self.api.get(f"/payload/{int(event_id)}")[0]


class Connection:
    """A webhook of the hub service: live ``events``, ``failures`` and ``dashboard()``, read-only."""

    __module__ = "elwh_nb"  # shown where it is imported from (as httpx does)

    def __init__(self, base: str, token: str, webhook: str) -> None:
        api = HubApi(base, token, webhook)
        info = orjson.loads(api.get("")[0])
        self.name = webhook
        self.local_url = base
        self._info = info
        self.started_at = time.time()
        self.store = Mirror(api, int(info.get("max_failures", 1000)), info.get("store_id"))
        self.store.pull()

    # -- what a notebook reads (as on a Receiver) ---------------------------------------
    @property
    def events(self) -> pd.DataFrame:
        """The webhook's events, after one pull (at most a few seconds; none while it is unreachable)."""
        self.store.sync()
        return self.store.events

    @property
    def failures(self) -> pd.DataFrame:
        self.store.sync()
        return self.store.failures

    @property
    def turns(self) -> pd.DataFrame:
        """One row per transcript turn, as the service derived them (see :attr:`EventStore.turns`)."""
        self.store.sync()
        return self.store.turns

    @property
    def tool_calls(self) -> pd.DataFrame:
        """One row per tool call, joined to its result (see :attr:`EventStore.tool_calls`)."""
        self.store.sync()
        return self.store.tool_calls

    @property
    def conversations(self) -> pd.DataFrame:
        """One row per conversation (see :attr:`EventStore.conversations`)."""
        self.store.sync()
        return self.store.conversations

    def conversation(self, conversation_id: str) -> CallView:
        """One conversation as a chat with its rows (see :meth:`elwh_nb.Receiver.conversation`)."""
        from .._notebook.conversation_view import CallView

        self.store.sync()
        return CallView(self.store, conversation_id)

    @property
    def url(self) -> str:
        """The URL ElevenLabs delivers to (the hub service's, for this webhook)."""
        return str(self._info["url"])

    public_url = url
    proxy_url: str | None = None
    tunnel = None

    @property
    def running(self) -> bool:
        return not self.store._closed

    @property
    def url_story(self) -> str:
        return f"webhook {self.name!r} of the hub service"

    @property
    def url_note(self) -> str | None:
        down, why = self.store.puller.down_since, self.store.puller.error
        if down is not None:
            since = time.strftime("%H:%M:%S", time.localtime(down))
            return f"Service unreachable since {since} ({why}): showing the rows read before; retrying."
        return "Read-only: the hub service receives and verifies; this notebook reads what it stored."

    def simulate(self, n: int = 20, *, faults: Any = None, progress: bool = True) -> pd.DataFrame:
        raise ReceiverError(
            "a connection only reads: the hub service holds the secret, so this notebook cannot sign "
            "test deliveries (use elwh_nb.start() for a receiver of your own to try things)"
        )

    def replay(self, event_id: int, *, as_new: bool = False) -> pd.DataFrame:
        return self.simulate()

    def dashboard(self, **options: Any) -> Dashboard:
        """A live panel over this webhook (no Send buttons that need the secret work)."""
        from .._notebook.dashboard import Dashboard

        return Dashboard(self, **options)

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        c = self.store.counts
        return f"<Connection {self.name!r}: {c['events']} events, {c['failures']} failures; url={self.url}>"


def service_url(service: str, environ: Mapping[str, str]) -> str:
    """The hub service's base URL from a user's server's environment."""
    if environ.get("ELWH_HUB_SERVICE_URL"):
        return environ["ELWH_HUB_SERVICE_URL"]
    hub = environ.get("JUPYTERHUB_PUBLIC_HUB_URL", "")
    if hub.rstrip("/").endswith("/hub"):  # <hub base>hub/ -> <hub base>services/<name>/
        return hub.rstrip("/")[: -len("hub")] + f"services/{service}/"
    raise ReceiverError(
        "cannot tell the hub service's URL: pass url=, or have the admin set ELWH_HUB_SERVICE_URL "
        "(or JupyterHub.public_url) for users' servers"
    )


def connect(
    name: str, *, service: str = "elwh", url: str | None = None, token: str | None = None
) -> Connection:
    """Read webhook ``name`` of the hub service ``service`` with your hub token (docs/guides/urls.md).

    Inside a JupyterHub server the URL and token come from its environment.
    """
    token = token or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise ReceiverError("connect() reads with your hub token: run it inside JupyterHub, or pass token=")
    return Connection(url or service_url(service, os.environ), token, name)
