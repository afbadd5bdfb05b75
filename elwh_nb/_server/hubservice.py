"""The receiver as a JupyterHub-managed service (``elwh-nb hub-service``): a team's webhooks,
always on, read from everyone's notebooks.

Each configured webhook has its own durable store in the service's data directory and is
served at ``<prefix>hook/<route id>`` by the receiver's own hook path (:class:`.hook.HookDelegate`
with its :class:`Intake` and :class:`Batcher`): the same statuses, dedupe, failure records and
body limits. Secrets come from the service's environment (``ELWH_SECRET_<NAME>``). Readers
(:mod:`.hubapi`) authenticate with their hub token; ``<prefix>health`` answers the hub.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
from tornado import web

from .._core.exceptions import ReceiverError
from .._core.intake import Intake
from .._core.protocol import DEFAULT_MAX_BODY, SLACK
from .._core.signature import DEFAULT_FUTURE_TOLERANCE, DEFAULT_TOLERANCE, Secret
from .._core.store import DEFAULT_MAX_FAILURES, EventStore
from . import loop as _loop
from .answers import send_json
from .batcher import Batcher
from .handlers import application
from .hook import HookDelegate

log = logging.getLogger("elwh_nb")

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def secret_variable(name: str) -> str:
    """The environment variable holding a webhook's secret: ``ELWH_SECRET_<NAME>``."""
    return "ELWH_SECRET_" + name.upper().replace("-", "_")


def secrets_from(names: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Each webhook's secret from the environment; a clear error naming what is missing."""
    if not names:
        raise ReceiverError("no webhooks: pass --webhook NAME (one per ElevenLabs webhook)")
    bad = [n for n in names if not NAME.match(n)]
    if bad:
        raise ReceiverError(f"webhook names are lower-case letters, digits, - and _: not {bad}")
    missing = [secret_variable(n) for n in names if not environ.get(secret_variable(n))]
    if missing:
        raise ReceiverError(
            f"set {', '.join(missing)} in the service's environment (its webhook's signing secret)"
        )
    return {n: environ[secret_variable(n)] for n in names}


@dataclass
class Webhook:
    """One webhook: its store, its intake and batcher, and its route id (the URL's last part)."""

    name: str
    store: EventStore
    intake: Intake
    batcher: Batcher
    route_id: str

    @classmethod
    def open(cls, name: str, secret: Secret, data_dir: Path, *, max_failures: int | None = None) -> Webhook:
        store = EventStore(data_dir / f"{name}.sqlite", max_failures=max_failures or DEFAULT_MAX_FAILURES)
        try:
            intake = Intake(
                secret, store, tolerance=DEFAULT_TOLERANCE, future_tolerance=DEFAULT_FUTURE_TOLERANCE
            )
            route = store.route()
            assert route is not None  # a store in a file always has one
        except BaseException:
            store.close()
            raise
        return cls(name, store, intake, Batcher(store), route[0])

    def close(self) -> None:
        self.batcher.close()
        self.intake.close()
        self.store.close()


class HubService:
    """The webhooks, their Tornado application, and the server thread that runs it."""

    def __init__(
        self,
        secrets: Mapping[str, Secret],
        *,
        data_dir: Path,
        prefix: str = "/",
        public_url: str | None = None,
        readers: Any = None,
        max_body: int = DEFAULT_MAX_BODY,
        max_failures: int | None = None,
    ) -> None:
        self.prefix = prefix.rstrip("/") + "/"
        self.public_url = public_url  # the service's public URL, if the hub knows it
        self.max_body = max_body
        data_dir.mkdir(parents=True, exist_ok=True)
        self.webhooks: dict[str, Webhook] = {}
        try:
            for name, secret in secrets.items():
                self.webhooks[name] = Webhook.open(name, secret, data_dir, max_failures=max_failures)
        except BaseException:
            self.close()
            raise
        self.readers = readers
        self._server: _loop.ServerThread | None = None

    def hook_path(self, hook: Webhook) -> str:
        return f"{self.prefix}hook/{hook.route_id}"

    def hook_url(self, hook: Webhook) -> str:
        """The URL to give ElevenLabs (the path alone when the hub did not say its public URL)."""
        if self.public_url:
            return self.public_url.rstrip("/") + "/hook/" + hook.route_id
        return self.hook_path(hook)

    def app(self) -> web.Application:
        from .hubapi import api_rules

        rules: list[Any] = [
            (
                rf"{re.escape(self.hook_path(hook))}/?",
                HookDelegate(hook.intake, max_body=self.max_body, batcher=hook.batcher, name=hook.name),
            )
            for hook in self.webhooks.values()
        ]
        rules.append((rf"{re.escape(self.prefix)}health", HealthHandler, {"service": self}))
        rules += api_rules(self)
        return application(rules, None)

    def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` from a thread of its own; returns the port."""
        sockets = _loop.bind(host, port, stacklevel=2)
        self._server = _loop.ServerThread(
            self.app(),
            sockets,
            name="elwh-hub-service",
            drain=self._drain,
            max_body_size=2 * self.max_body + 2 * SLACK,
            idle_connection_timeout=75,
            body_timeout=120.0,
        )
        for hook in self.webhooks.values():
            self._server.every(250, hook.batcher.tick)
        return self._server.port

    async def _drain(self) -> None:
        for hook in self.webhooks.values():
            await hook.batcher.drain()

    def stop(self) -> None:
        """Stop listening, answer the deliveries under way, close the stores."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.close()

    def close(self) -> None:
        for hook in self.webhooks.values():
            with contextlib.suppress(Exception):
                hook.close()


class HealthHandler(web.RequestHandler):
    """``<prefix>health``: up, and how many webhooks; no names, URLs or counts (it needs no login)."""

    def initialize(self, service: HubService) -> None:
        self.service = service

    def get(self) -> None:
        send_json(
            self,
            200,
            orjson.dumps({"ok": True, "service": "elwh-nb", "webhooks": len(self.service.webhooks)}),
        )


def run(names: list[str], *, data_dir: Path, host: str | None = None, port: int | None = None) -> int:
    """``elwh-nb hub-service``: serve until SIGTERM or SIGINT, then drain and exit 0."""
    environ = os.environ
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s elwh-hub] %(message)s")
    secrets = secrets_from(names, environ)
    url = urlparse(environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    from .hubapi import HubReaders

    service = HubService(
        secrets,
        data_dir=data_dir,
        prefix=environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/elwh/"),
        public_url=environ.get("JUPYTERHUB_PUBLIC_URL") or None,
        readers=HubReaders.from_environment(environ),
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    bound = service.start(
        host or url.hostname or "127.0.0.1", port if port is not None else url.port or 10101
    )
    log.info(
        "serving %d webhook(s) on port %d: %s", len(service.webhooks), bound, ", ".join(service.webhooks)
    )
    stop.wait()
    log.info("stopping: answering the deliveries under way")
    service.stop()
    return 0
