"""``elwh_nb.connect(name)``: a webhook of the hub service, read from a notebook.

The :class:`Connection` holds a :class:`Mirror`: an in-memory :class:`EventStore` fed only the
rows it lacks, as Arrow (:mod:`.wire`), through the store's own loading code, so ``events``,
``failures``, ``counts``, the dashboard and ``timings()`` work as on a local receiver. Raw
bodies stay in the service; a payload is fetched when it is opened. The secret never leaves it.
"""

from __future__ import annotations

import functools
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from .._core.exceptions import ReceiverError
from .._core.schema import FAILURES
from .._core.store import EventStore
from . import wire

if TYPE_CHECKING:
    from .._notebook.dashboard import Dashboard

#: Seconds between two pulls at most (reads in between use what is in memory).
PULL_EVERY_S = 0.5


class HubApi:
    """GETs to the service's read API with the user's hub token."""

    def __init__(self, base: str, token: str, webhook: str) -> None:
        self.base = base.rstrip("/") + f"/api/{webhook}"
        self.token = token

    def get(self, path: str) -> tuple[bytes, Mapping[str, str]]:
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.read(), answer.headers
        except urllib.error.HTTPError as exc:
            try:
                why = orjson.loads(exc.read()).get("error", "")
            except (orjson.JSONDecodeError, AttributeError):
                why = ""
            raise ReceiverError(f"the hub service answered {exc.code} for {self.base}{path}: {why}") from None


class Mirror(EventStore):
    """A webhook's events and failures in memory, pulled from the hub service as they come."""

    def __init__(self, api: HubApi, max_failures: int) -> None:
        super().__init__(":memory:", max_failures=max_failures)
        self.api = api
        self._pulled = 0.0

    def pull(self, *, force: bool = False) -> bool:
        """Fetch the rows stored since the last pull; returns whether there were any."""
        now = time.monotonic()
        if not force and now - self._pulled < PULL_EVERY_S:
            return False
        self._pulled = now
        new = self._pull_events() | self._pull_failures()
        if new:
            self._changes += 1
        return new

    def _pull_events(self) -> bool:
        got = 0
        while True:
            data, headers = self.api.get(f"/events?after={self._events.last_id()}")
            arrays = wire.events_arrays(data)
            with self._lock:
                self._events.restore(arrays)
                counts = orjson.loads(headers.get("X-Elwh-Counts", "{}"))
                self._events.deliveries = int(counts.get("deliveries", self._events.deliveries))
            got += len(arrays.columns["id"])
            if len(arrays.columns["id"]) < wire.PAGE:
                return got > 0

    def _pull_failures(self) -> bool:
        data, headers = self.api.get(f"/failures?after={self._failures.last_id()}")
        rows = wire.rows(data, FAILURES)
        counts = orjson.loads(headers.get("X-Elwh-Counts", "{}")).get("failures", {})
        with self._lock:
            self._db.executemany(wire.insert(FAILURES), rows)
            self._db.execute("DELETE FROM failure_counts")
            self._db.executemany("INSERT INTO failure_counts VALUES (?, ?)", counts.items())
            self._failures.load(self._db, after=self._failures.last_id())
            self._db.execute("DELETE FROM failures")
        return bool(rows)

    def _fresh(self) -> None:
        if not self._closed:
            self.pull()

    @property
    def changes(self) -> int:
        self._fresh()
        return self._changes

    @functools.lru_cache(maxsize=64)  # noqa: B019  (bodies of one connection, a few at a time)
    def raw_body(self, event_id: int) -> bytes:
        """An event's body, fetched from the service (the last few are kept)."""
        return self.api.get(f"/payload/{int(event_id)}")[0]


class Connection:
    """A webhook of the hub service: live ``events``, ``failures`` and ``dashboard()``, read-only."""

    def __init__(self, base: str, token: str, webhook: str) -> None:
        api = HubApi(base, token, webhook)
        info = orjson.loads(api.get("")[0])
        self.name = webhook
        self.local_url = base
        self._info = info
        self.started_at = time.time()
        self.store = Mirror(api, int(info.get("max_failures", 1000)))
        self.store.pull(force=True)

    # -- what a notebook reads (as on a Receiver) ---------------------------------------
    @property
    def events(self) -> pd.DataFrame:
        return self.store.events

    @property
    def failures(self) -> pd.DataFrame:
        return self.store.failures

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
        return "Read-only: the hub service receives and verifies; this notebook reads what it stored."

    def simulate(self, n: int = 20, *, faults: Any = None, progress: bool = True) -> pd.DataFrame:
        raise ReceiverError(
            "a connection only reads: the hub service holds the secret, so this notebook cannot sign "
            "test deliveries (use elwh_nb.start() for a receiver of your own to try things)"
        )

    def replay(self, event_id: int) -> pd.DataFrame:
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
    """Read webhook ``name`` of the hub service ``service`` with your hub token; see README.md.

    Inside a JupyterHub server the URL and token come from its environment.
    """
    token = token or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise ReceiverError("connect() reads with your hub token: run it inside JupyterHub, or pass token=")
    return Connection(url or service_url(service, os.environ), token, name)
