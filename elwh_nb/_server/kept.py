"""What the public route kept while no receiver ran: verified and stored now, as if live then.

When the store cannot take them (its disk full, its file locked), they stay in the inbox;
:attr:`KeptDeliveries.note` says so and why, and the next drain (every few seconds, or the
next ``start()``) moves them once it can.
"""

from __future__ import annotations

import logging
import threading

from .._core import inbox as _inbox
from .._core.exceptions import StoreError
from .._core.intake import Intake
from .._core.store import EventStore

log = logging.getLogger("elwh_nb")


class KeptDeliveries:
    """Drains a store's inbox through a receiver's :class:`Intake` (on start, then every few seconds)."""

    def __init__(self, store: EventStore, intake: Intake) -> None:
        self.store, self.intake = store, intake
        self.count = 0  # delivered from the inbox since the receiver started
        self.note: str | None = None  # why deliveries still wait in the inbox, while they do
        self._lock = threading.Lock()
        self._closed = False

    def drain(self) -> None:
        """Verify and store what waits in the inbox (a delivery kept just as this started, too)."""
        if self.store.path is None or self._closed or not self._lock.acquire(blocking=False):
            return
        try:
            after = 0
            while batch := self.store.inbox(after=after):
                for kept in batch:
                    after = kept.id
                    self.intake.deliver_kept(kept)
                    self.count += 1
                # Copied into the file, the log's space is reused by the next commits rather
                # than grown batch after batch (a nearly full disk has no room for it).
                self.store.checkpoint()
        except StoreError as exc:
            self._waits(exc)
        else:
            self._waits(None)
        finally:
            self._lock.release()

    def _waits(self, exc: StoreError | None) -> None:
        """Say (once, and in :attr:`note`) that deliveries wait and why, or that they no longer do."""
        if exc is None:
            if self.note is not None:
                log.warning(
                    "elwh_nb: the deliveries that waited in the inbox of %s are in events now",
                    self.store.path,
                )
            self.note = None
            return
        try:
            left = f"{self.store.inbox_waiting} deliveries"
        except StoreError:
            left = "Deliveries"
        try:
            free = f"; {_inbox.free_bytes(str(self.store.path))} bytes free on its disk"
        except OSError:
            free = ""
        note = (
            f"{left} kept while the receiver was away wait in the store's inbox: it cannot take them "
            f"now ({exc}{free}). They move into events on their own once it can (free disk space); "
            "nothing is lost."
        )
        if self.note is None:
            log.warning("elwh_nb: %s", note)
        self.note = note

    def close(self) -> None:
        """Wait for a drain under way; none starts after this (the store may close next)."""
        with self._lock:
            self._closed = True
