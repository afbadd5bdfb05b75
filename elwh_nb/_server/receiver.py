"""The receiver users meet: ``start()`` and the :class:`Receiver` it returns.

The pieces it puts together each live apart: the options (:mod:`.config`), the server's
thread and IOLoop (:mod:`.loop`), the HTTP handlers (:mod:`.handlers`) with group commit
(:mod:`.batcher`), and the URLs, route and tunnel (:mod:`.reach`). Cells can run (and block)
on the kernel's main thread while the server's thread keeps answering ElevenLabs; the main
thread only reads the store's DataFrames.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import pandas as pd

from .._core.callbacks import EventCallback, callback_types
from .._core.exceptions import ReceiverError
from .._core.intake import Intake, Replayed
from .._core.jobs import OVERDUE_S
from .._core.protocol import DEFAULT_MAX_BODY, SLACK
from .._core.signature import DEFAULT_FUTURE_TOLERANCE, DEFAULT_TOLERANCE, Secret
from .._core.store import EventStore
from . import claim as _claim
from . import loop as _loop
from . import routes as _routes
from . import tunnel as _tunnel
from . import urls as _urls
from .batcher import Batcher
from .callapi import CallMethods
from .calls import CallDesk, call_secret
from .config import ReceiverConfig
from .handlers import make_app
from .kept import KeptDeliveries
from .reach import Reach

if TYPE_CHECKING:
    from .._core.curl import Command
    from .._notebook.conversation_view import CallView
    from .._notebook.dashboard import Dashboard

log = logging.getLogger("elwh_nb")


class Receiver(CallMethods):
    """A running receiver. Give out :attr:`url`; read :attr:`events` and :attr:`failures`."""

    __module__ = "elwh_nb"  # shown where it is imported from (as httpx does)

    def __init__(self, config: ReceiverConfig) -> None:
        """Start with ``config`` (what :func:`start` makes of its options); see :func:`start`."""
        self.config = config
        self.host, self.path, self.max_body = config.host, config.path, config.max_body
        self.body_timeout = config.body_timeout
        store = config.store
        self._own_store = not isinstance(store, EventStore)
        self.store = store if isinstance(store, EventStore) else EventStore(store)
        with contextlib.ExitStack() as undo:  # what is taken so far is given back if a step fails
            if self._own_store:
                undo.callback(self.store.close)
            self._intake = Intake(
                config.keys,
                self.store,
                tolerance=config.tolerance,
                future_tolerance=config.future_tolerance,
                max_body=config.max_body,
            )
            _stop_earlier(self.store.path)
            self._claim = _claim.claim(self.store.path)
            undo.callback(self._claim.release)
            sockets = _loop.bind(config.host, config.port, stacklevel=3)
            undo.pop_all()
        self.started_at = time.time()
        self.stopped_at: float | None = None  # when stop() ran
        self._stopped = False
        self.port = int(sockets[0].getsockname()[1])
        shown_host = f"[{self.host}]" if ":" in self.host else self.host
        self.local_url = f"http://{shown_host}:{self.port}{self.path}"
        self._batcher = Batcher(self.store)
        route_token = secrets.token_urlsafe(24)
        self._desk = CallDesk(self.store)  # its secret once the route is known (below)
        app = make_app(
            self._intake,
            path=self.path,
            max_body=self.max_body,
            batcher=self._batcher,
            route_token=route_token,
            desk=self._desk,
        )
        self._server = _loop.ServerThread(
            app,
            sockets,
            name="elwh-receiver",
            drain=self._batcher.drain,
            max_body_size=2 * self.max_body + 2 * SLACK,
            idle_connection_timeout=75,
            body_timeout=self.body_timeout,
        )
        self._reach = Reach(
            config,
            store=self.store,
            port=self.port,
            local_url=self.local_url,
            token=route_token,
            stacklevel=3,
        )
        self.route_id = self._reach.route_id
        self._desk.set_secret(call_secret(config.call_secret, self.store.store_id))
        self.url_created_at, self.url_is_new = self._reach.created_at, self._reach.is_new
        _loop.stop_at_exit(self)
        self._kept = KeptDeliveries(self.store, self._intake)
        self._kept.drain()
        if self.store.path is not None:
            self._server.every(2000, self._kept.drain)
            self._server.every(250, self._batcher.tick)
        try:
            self._reach.start_tunnel(config.tunnel_timeout, stacklevel=3)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop listening and close the store if the receiver opened it.

        The URL stays: while no receiver runs, the public route keeps deliveries in the
        store's inbox, and the next ``start()`` on this store verifies them. (A store in
        memory has no inbox: its URL ends here.) :meth:`retire` ends a URL for good.
        """
        if self._stopped:
            return
        self._stopped = True
        self.stopped_at = time.time()
        _loop.forget(self)
        self._reach.close()
        self._server.stop()
        self._batcher.close()
        self._intake.close()
        self._desk.close()
        self._kept.close()
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
        return self._reach.url

    def callback_url(self, name: str = "studio") -> str:
        """A URL for callbacks that carry no signature, such as a Studio project's ``callback_url``.

        ``<rx.url>/callback/<name>/<token>``: its token (192 random bits, one per ``name``,
        kept in the store file, so the URL lasts as long as :attr:`url` and is retired with
        it) is what authenticates a request there; one that carries an ``ElevenLabs-Signature``
        must still verify. Events that came in this way have ``authenticated_by == "url"``.
        Give it only to the service that calls back: anyone who has it can add events.
        """
        token = self.store.callback_token(name)
        assert token is not None  # made on first use
        return f"{self.url.rstrip('/')}/callback/{name}/{token}"

    @property
    def tunnel(self) -> _tunnel.SshTunnel | None:
        """The ssh tunnel started with ``tunnel=``: ``.up``, ``.url``, ``.restarts``, ``.last_error``,
        ``.uptime`` (None without one)."""
        return self._reach.tunnel

    def tunnel_help(self) -> None:
        """Print the one-line commands (ssh, cloudflared, ngrok) for a tunnel that reaches only the hook."""
        print(self._reach.tunnel_help())

    @property
    def proxy_url(self) -> str | None:
        """``<origin><base_url>proxy/<port><path>``: needs a Jupyter login; None outside Jupyter."""
        return self._reach.urls.proxy_url

    @property
    def public_url(self) -> str | None:
        """The token-free public hook route, when the Jupyter server serves it."""
        return self._reach.urls.public_url

    @property
    def hook_port(self) -> int | None:
        """The loopback port of this kernel's Jupyter server that serves only the hook routes
        (``http://127.0.0.1:<hook_port>/elwh/hook/<route id>``: what a tunnel points at), if any."""
        return self._reach.hook_port

    @property
    def url_note(self) -> str | None:
        """What to check about :attr:`url` (a local host, no public route, a tunnel), about
        this machine's clock (when deliveries are signed ahead of it), and about deliveries
        kept while away that still wait (a full disk), if anything."""
        notes = [note for note in (self._reach.note, self._intake.clock.note, self._kept.note) if note]
        return " ".join(notes) or None

    @property
    def events(self) -> pd.DataFrame:
        """Every verified event (see :attr:`EventStore.events`)."""
        return self.store.events

    @property
    def failures(self) -> pd.DataFrame:
        """Rejected deliveries, newest last, with reason and explanation."""
        return self.store.failures

    @property
    def turns(self) -> pd.DataFrame:
        """One row per transcript turn, with its stage latencies (see :attr:`EventStore.turns`)."""
        return self.store.turns

    def conversation(self, conversation_id: str) -> CallView:
        """One conversation: displays as its transcript with each turn's latencies and tool calls,
        the analysis on top; ``.row``, ``.turns``, ``.tool_calls`` are its rows of the frames."""
        from .._notebook.conversation_view import CallView

        return CallView(self.store, conversation_id)

    @property
    def tool_calls(self) -> pd.DataFrame:
        """One row per tool call in a transcript, joined to its result (see :attr:`EventStore.tool_calls`)."""
        return self.store.tool_calls

    @property
    def conversations(self) -> pd.DataFrame:
        """One row per conversation: cost, outcome, analysis, waits (see :attr:`EventStore.conversations`)."""
        return self.store.conversations

    @property
    def callback_errors(self) -> pd.DataFrame:
        """Exceptions raised by ``on_event`` callbacks (recorded, never raised here)."""
        return pd.DataFrame(
            list(self._intake.callbacks.errors),
            columns=["time", "event_id", "callback", "error", "traceback"],
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
            self._intake.callbacks.add(callback, wanted)
            return callback

        return register if fn is None else register(fn)

    @property
    def running(self) -> bool:
        return not self._stopped and self._server.alive

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
        what :func:`elwh_nb.send` returns. The jobs behind made-up callbacks (Studio
        conversions, speech-to-text) are announced first with :meth:`expect`, as whoever
        submitted them would, so their ``turnaround_s`` is the conversion time.
        """
        from .sender import burst, send

        target, headers = self._reach.target(via)
        options.setdefault("max_body", self.max_body)
        if isinstance(n, int):
            n, jobs = burst(n, seed=options.get("seed"), types=options.pop("types", None))
            for job_id, (kind, submitted) in jobs.items():
                self.expect(job_id, submitted_at=submitted, kind=kind)
        return send(target, self._intake.signing_secret, n, faults=faults, headers=headers, **options)

    def replay(self, event_id: int, *, via: str = "auto", as_new: bool = False) -> pd.DataFrame:
        """Deliver a stored event again, signed anew, as an ElevenLabs retry would: the answer
        says ``duplicate`` and the store keeps one copy (its ``deliveries`` count goes up).

        ``as_new``: the :meth:`on_event` callbacks run on it again too, as for a new event
        (to try a fixed callback on a real delivery). The frame's ``callbacks_run`` says which.
        """
        from .sender import send

        target, headers = self._reach.target(via)
        body = self.store.raw_body(event_id)
        sent = send(target, self._intake.signing_secret, [body], headers=headers, progress=False)
        ran = as_new and bool(sent["ok"].all())
        if ran:
            self._intake.callbacks.notify(int(event_id), None)
        return sent.assign(callbacks_run=ran)

    def replay_failure(self, failure_id: int) -> Replayed:
        """Verify a failed delivery again, with the secret now and the time window of when it
        arrived, and store it if it verifies (after a wrong secret was fixed, say); one that
        still fails (a changed body, a stranger's) is recorded anew. Says which happened.

        The store keeps each failure's body up to 1 MiB (the newest 64 MiB in all).
        """
        return self._intake.replay_failure(int(failure_id))

    def curl(
        self, event_id: int, *, url: str | None = None, directory: str | os.PathLike[str] = "."
    ) -> Command:
        """A ``curl`` command that delivers stored event ``event_id`` again, signed now, to ``url``
        (default :attr:`url`): "copy as curl", to replay it from a terminal or show a colleague.

        It holds a signature (good for the receiver's tolerance, 30 minutes by default), never
        the secret. A body too long for a command line (audio) is written to
        ``directory/elwh_event_<id>.json`` and sent from there.
        """
        from .._core import curl as _curl
        from .._core.signature import sign

        body = self.store.raw_body(event_id)
        signature = sign(body, self._intake.signing_secret)
        target = url or self.url
        if _curl.inline(body):
            return _curl.command(target, signature, body)
        path = Path(directory) / f"elwh_event_{int(event_id)}.json"
        path.write_bytes(body)
        return _curl.command(target, signature, body_path=str(path))

    def simulate_outage(self, deliveries: int = 3) -> None:
        """Answer 503 to the next ``deliveries`` POSTs, as if the receiver were down (to see retries)."""
        self._intake.outage_left = deliveries

    def expect(
        self,
        job_id: str,
        *,
        submitted_at: Any = None,
        kind: str | None = None,
        overdue_after: float = OVERDUE_S,
    ) -> None:
        """Announce a submitted job (a Studio ``project_id`` or ``chapter_id`` being converted, a
        speech-to-text ``request_id``, ...); its callback's row gets ``turnaround_s`` (see
        :attr:`jobs` and :meth:`EventStore.expect`)."""
        self.store.expect(job_id, submitted_at=submitted_at, kind=kind, overdue_after=overdue_after)

    @property
    def jobs(self) -> pd.DataFrame:
        """Jobs announced with :meth:`expect`: waiting, overdue, or arrived with turnaround and outcome."""
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

    @property
    def kept_while_away(self) -> int:
        """Deliveries the public route kept while no receiver ran, stored since this one started."""
        return self._kept.count

    @property
    def url_story(self) -> str:
        """When this URL was set up, and what was kept for it while no receiver ran."""
        return self._reach.story(self.kept_while_away)

    def __repr__(self) -> str:
        c = self.store.counts
        state = "listening" if self.running else "stopped"
        t = self._reach.tunnel
        tunnel = f"; tunnel {t.summary}" if t is not None else ""
        https = "" if _urls.is_https(self.url) else " (plain HTTP: ElevenLabs needs HTTPS, see rx.url_note)"
        return (
            f"<Receiver {state} on {self.local_url}: {c['events']} events, {c['duplicates']} "
            f"duplicates, {c['failures']} failures; url={self.url}{https}; {self.url_story}{tunnel}>"
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


def _stop_earlier(path: Path | None) -> None:
    """Re-running a start() cell: the kernel's earlier receiver on this store stops first."""
    if path is None:
        return
    for other in _loop.running():
        if isinstance(other, Receiver) and other.store.path == path and not other._stopped:
            warnings.warn(
                f"Stopped this kernel's earlier receiver on {path.name} (a store has one receiver "
                "at a time); its URL carries on with this one.",
                stacklevel=4,
            )
            other.stop()


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
    call_secret: str | None = None,
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

    ``call_secret`` is the ``X-Callback-Secret`` value that agent tools and call-start
    requests must carry (default: ``$ELWH_CALL_SECRET``, else one made and kept with the URL;
    :meth:`Receiver.call_secret` shows it).
    """
    # The names are ReceiverConfig's (a test keeps them the same); it checks each option.
    config = ReceiverConfig(
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
        call_secret=call_secret,
    )
    return Receiver(config)
