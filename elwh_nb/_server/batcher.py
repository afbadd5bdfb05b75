"""Group commit for the receiver: verified deliveries that arrive together share a transaction."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tornado.ioloop import IOLoop

from .._core.exceptions import StoreError
from .._core.store import Appended, EventStore

log = logging.getLogger("elwh_nb")


class Batcher:
    """Group commit: verified deliveries that arrive together are stored in one transaction.

    Each handler waits for its own commit before it answers 200, so nothing acknowledged
    is lost; under load the commit cost is shared by every delivery in the batch.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.pending: list[tuple[bytes, dict[str, Any], asyncio.Future[Appended]]] = []
        self.largest = 0

    def submit(self, body: bytes, event: dict[str, Any]) -> asyncio.Future[Appended]:
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self.pending.append((body, event, future))
        if len(self.pending) == 1:  # the first of a batch schedules the commit
            IOLoop.current().add_callback(self.flush)
        return future

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        self.largest = max(self.largest, len(batch))
        try:
            results = self.store.append_many([(body, event) for body, event, _ in batch])
        except BaseException as exc:  # whatever it is, every waiting delivery gets its answer (a 500)
            if not isinstance(exc, StoreError):
                log.exception("elwh_nb store failed on a batch of %d deliveries", len(batch))
            message = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(StoreError(message))
            if not isinstance(exc, Exception):
                raise
            return
        for result, (_, _, future) in zip(results, batch, strict=True):
            if not future.done():
                future.set_result(result)
