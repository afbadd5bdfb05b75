"""What the public route kept while no receiver ran: verified and stored now, as if live then."""

from __future__ import annotations

import logging
import threading

from .._core.exceptions import StoreError
from .._core.intake import Intake
from .._core.store import EventStore

log = logging.getLogger("elwh_nb")


class KeptDeliveries:
    """Drains a store's inbox through a receiver's :class:`Intake` (on start, then every few seconds)."""

    def __init__(self, store: EventStore, intake: Intake) -> None:
        self.store, self.intake = store, intake
        self.count = 0  # delivered from the inbox since the receiver started
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
                    if not self.intake.deliver_kept(kept):
                        return  # the store refuses writes now; the inbox keeps it for the next try
                    self.count += 1
        except StoreError:
            log.warning("elwh_nb could not read the inbox of %s", self.store.path)
        finally:
            self._lock.release()

    def close(self) -> None:
        """Wait for a drain under way; none starts after this (the store may close next)."""
        with self._lock:
            self._closed = True
