"""Group commit for the receiver, and the checkpoints of its write-ahead log, off the loop's path."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tornado.ioloop import IOLoop

from .._core.exceptions import StoreError
from .._core.store import Appended, EventStore
from .._core.storefile import AUTOCHECKPOINT

log = logging.getLogger("elwh_nb")

# body, event, skew_s, authenticated_by, and the future its handler waits on
Waiting = tuple[bytes | bytearray, dict[str, Any], float | None, str, asyncio.Future[Appended]]

#: Log pages after which the receiver checkpoints (what SQLite itself does by default).
CHECKPOINT_PAGES = AUTOCHECKPOINT
#: Seconds without a commit after which the receiver checkpoints what is in the log.
IDLE_CHECKPOINT_S = 0.5


def pages_written(batch: list[Waiting]) -> int:
    """A generous estimate of the log pages a batch's commit adds: each row, its overflow, the b-trees."""
    return 8 + sum(1 + len(body) // 4000 for body, *_ in batch)


class Batcher:
    """Group commit: verified deliveries that arrive together are stored in one transaction.

    Each handler waits for its own commit before it answers 200, so nothing acknowledged
    is lost; under load the commit cost is shared by every delivery in the batch, and
    whatever the store raises, every delivery of the batch gets its answer (a 500).

    Checkpoints (copying the write-ahead log into the file, with its disk syncs) would run
    inside a commit, on the receiver's loop. Here the loop starts them on a thread of
    their own instead, after the answers: when the log nears :data:`CHECKPOINT_PAGES` and
    when commits pause (:meth:`tick`). The loop reads and verifies requests meanwhile;
    their commit waits for the checkpoint, so the log never grows past the bound.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.pending: list[Waiting] = []
        self.largest = 0
        self._pages = 0  # log pages written since the last checkpoint (estimated)
        self._checkpointed = -1  # store.changes when the last checkpoint began
        self._last_commit = time.monotonic()
        self._checkpointing: Future[int] | None = None
        self._checkpointer: ThreadPoolExecutor | None = None  # made by the first commit to a file
        self._drained: asyncio.Event | None = None

    def submit(
        self, body: bytes | bytearray, event: dict[str, Any], skew_s: float | None, authenticated_by: str
    ) -> asyncio.Future[Appended]:
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self.pending.append((body, event, skew_s, authenticated_by, future))
        if len(self.pending) == 1 and self._checkpointing is None:  # the first of a batch schedules it
            IOLoop.current().add_callback(self.flush)
        return future

    def flush(self) -> None:
        if self._checkpointing is None and self.pending:  # else the checkpoint's end flushes
            if self._checkpointer is None and self.store.path is not None:
                self.store.autocheckpoint(0)  # from now on only here, never inside a commit
                self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="elwh-checkpoint")
            batch, self.pending = self.pending, []
            self.largest = max(self.largest, len(batch))
            self._commit(batch)
            self._last_commit = time.monotonic()
            self._pages += pages_written(batch)
            if self._pages >= CHECKPOINT_PAGES:
                self._checkpoint()
        if self._drained is not None and not self.pending:
            self._drained.set()

    def _commit(self, batch: list[Waiting]) -> None:
        try:
            results = self.store.append_many([(body, event, skew, by) for body, event, skew, by, _ in batch])
        except BaseException as exc:  # whatever it is, every waiting delivery gets its answer (a 500)
            if not isinstance(exc, StoreError):
                log.exception("elwh_nb store failed on a batch of %d deliveries", len(batch))
            message = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
            for *_, future in batch:
                if not future.done():
                    future.set_exception(StoreError(message))
            if not isinstance(exc, Exception):
                raise
            return
        for result, (*_, future) in zip(results, batch, strict=True):
            if not future.done():
                future.set_result(result)

    # -- checkpoints -------------------------------------------------------------------
    def tick(self) -> None:
        """Every few hundred ms on the loop: checkpoint what a pause in commits left in the log."""
        idle = time.monotonic() - self._last_commit >= IDLE_CHECKPOINT_S
        if idle and self._checkpointing is None and self.store.changes != self._checkpointed:
            self._checkpoint()

    def _checkpoint(self) -> None:
        if self._checkpointer is None:  # no commit yet, or a store in memory
            self._pages = 0
            return
        self._pages, self._checkpointed = 0, self.store.changes
        done = self._checkpointer.submit(self.store.checkpoint)
        self._checkpointing = done
        loop = IOLoop.current()
        done.add_done_callback(lambda _: loop.add_callback(self._after_checkpoint, done))

    def _after_checkpoint(self, done: Future[int]) -> None:
        self._checkpointing = None
        if (exc := done.exception()) is not None:
            log.warning("elwh_nb could not checkpoint %s: %s", self.store.path, exc)
        self.flush()

    # -- stopping ----------------------------------------------------------------------
    async def drain(self) -> None:
        """Wait (on the loop) until every delivery submitted so far has its answer."""
        while self.pending or self._checkpointing is not None:
            self._drained = asyncio.Event()
            await self._drained.wait()
        await asyncio.sleep(0)  # the handlers woken by the last results write their answers first

    def close(self) -> None:
        """After the loop ends: wait for a checkpoint under way; commits checkpoint themselves again."""
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)
            self.store.autocheckpoint(AUTOCHECKPOINT)  # the store may be used on without a receiver
