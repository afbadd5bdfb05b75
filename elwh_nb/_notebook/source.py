"""What the dashboard needs from a receiver: a small protocol, so it can show any source.

:class:`elwh_nb.Receiver` is one (mypy checks it where ``rx.dashboard()`` passes itself);
a test can give the dashboard a plain class over an :class:`EventStore`, with no server.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pandas as pd

from .._core.store import EventStore


class Tunnel(Protocol):
    @property
    def summary(self) -> str:
        """One line on the tunnel's state, for the header."""
        ...


@runtime_checkable
class EventSource(Protocol):
    """A receiver as the dashboard sees it: its store, where it listens, and two actions."""

    @property
    def store(self) -> EventStore:
        """The events, failures, counts and raw bodies shown."""
        ...

    @property
    def running(self) -> bool: ...

    # The header: where it listens and which URL to give ElevenLabs.
    @property
    def started_at(self) -> float: ...
    @property
    def local_url(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def url_story(self) -> str: ...
    @property
    def public_url(self) -> str | None: ...
    @property
    def proxy_url(self) -> str | None: ...
    @property
    def url_note(self) -> str | None: ...
    @property
    def tunnel(self) -> Tunnel | None: ...

    def simulate(self, n: int, *, faults: Any, progress: bool) -> pd.DataFrame:
        """Send ``n`` signed test deliveries; one row per delivery, with ``ok``."""
        ...

    def replay(self, event_id: int, *, as_new: bool = False) -> pd.DataFrame:
        """Deliver a stored event again; one row, with the answer's ``status`` (and ``duplicate``,
        ``callbacks_run``)."""
        ...
