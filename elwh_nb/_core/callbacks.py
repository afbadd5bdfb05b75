"""Functions run on each new event (``rx.on_event``), on their own thread, off the request path.

A slow or failing callback never delays an answer to ElevenLabs nor loses an event: its
errors are kept (``rx.callback_errors``), and when the queue is full new events skip the
callbacks, which is recorded too.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .normalize import normalize

EventCallback = Callable[[dict[str, Any]], Any]


class Callbacks:
    """The callbacks of one receiver, the queue of events for them, and their errors."""

    def __init__(self, load: Callable[[int], dict[str, Any]] | None = None, max_queued: int = 10_000) -> None:
        """``load(event_id)``: a stored event, for those notified without theirs (big bodies)."""
        self._callbacks: list[tuple[EventCallback, frozenset[str] | None]] = []
        self.errors: deque[dict[str, Any]] = deque(maxlen=1000)
        self._load = load
        self._queue: queue.Queue[tuple[int, dict[str, Any] | None] | None] = queue.Queue(maxsize=max_queued)
        self._worker: threading.Thread | None = None

    def add(self, fn: EventCallback, types: frozenset[str] | None = None) -> None:
        """Call ``fn(event)`` for each new event, or only for those of ``types``."""
        if not callable(fn):
            raise TypeError(
                f"on_event takes a function, not {type(fn).__name__}; give the types by keyword: "
                "rx.on_event(fn, types=[...]) or @rx.on_event(types=[...])"
            )
        self._callbacks.append((fn, types))
        if self._worker is None:
            self._worker = threading.Thread(target=self._run_callbacks, name="elwh-callbacks", daemon=True)
            self._worker.start()

    def notify(self, event_id: int, event: dict[str, Any] | None) -> None:
        """Queue ``event`` for the callbacks; None: they get it from ``load`` (on their thread)."""
        if not self._callbacks:
            return
        try:
            self._queue.put_nowait((event_id, event))
        except queue.Full:
            self.errors.append(
                {"time": time.time(), "event_id": event_id, "callback": None, "error": "callback queue full"}
            )

    def _run_callbacks(self) -> None:
        while (item := self._queue.get()) is not None:
            event_id, event = item
            if event is None:
                try:
                    event = self._load(event_id) if self._load is not None else None
                except Exception as exc:  # the store closed meanwhile: recorded, as a callback's error
                    self._failed(event_id, None, exc)
                    continue
                if event is None:
                    continue
            kind = normalize(event)["event_type"]  # `type`, or the tutorial's `event_type`
            for fn, types in list(self._callbacks):
                if types is not None and kind not in types:
                    continue
                try:
                    fn(event)
                except Exception as exc:
                    self._failed(event_id, getattr(fn, "__name__", repr(fn)), exc)

    def _failed(self, event_id: int, callback: str | None, exc: Exception) -> None:
        self.errors.append(
            {
                "time": time.time(),
                "event_id": event_id,
                "callback": callback,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5),
            }
        )

    def close(self) -> None:
        if self._worker is not None:
            # When the queue is full the worker, a daemon thread, ends with the process.
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)


def callback_types(types: str | Iterable[str] | None) -> frozenset[str] | None:
    """The event types a callback wants (None: all). A plain string is one type."""
    if types is None:
        return None
    names = (types,) if isinstance(types, str) else tuple(types)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"types= takes event type names (strings), not {names!r}")
    if not names:
        raise ValueError("types= names no event types: the callback would never run")
    return frozenset(names)  # names not known yet are fine: ElevenLabs adds types
