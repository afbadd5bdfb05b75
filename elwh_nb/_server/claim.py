"""One live receiver per store file: a lock the operating system lets go of when the process dies.

Two kernels that both ``start()`` on one file would each show only their own rows, and
their counters would disagree with their tables; a receiver takes the file's lock first,
and says who holds it when it cannot. A killed kernel holds nothing (the lock dies with
the process), so a restarted one takes it at once.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from .._core.exceptions import StoreInUseError

_OWNER_KEY = "receiver"


class Claim:
    """A held store lock; :meth:`release` lets it go."""

    def __init__(self, lock: FileLock | None) -> None:
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release(force=True)
            self._lock = None


def lock_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".receiver.lock")


def claim(store_path: Path | None, describe: dict[str, object] | None = None) -> Claim:
    """Take the store's receiver lock, or raise :class:`StoreInUseError` naming its holder."""
    if store_path is None:
        return Claim(None)
    lock = FileLock(str(lock_path(store_path)), timeout=0, is_singleton=False, thread_local=False)
    owner_file = store_path.with_name(store_path.name + ".receiver.json")
    try:
        lock.acquire()
    except Timeout:
        try:
            owner = json.loads(owner_file.read_text())
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("started", 0)))
            who = f"process {owner.get('pid')} on {owner.get('host')} (started {since})"
            if owner.get("notebook"):
                who = f"the kernel of {owner['notebook']}, {who}"
        except (OSError, ValueError):
            who = "another process"
        raise StoreInUseError(
            f"{store_path} already has a live receiver: {who}. A store has one receiver at a time: "
            "stop that one (rx.stop()), or pass another store= to start(). To read this store "
            "meanwhile, open it with elwh_nb.EventStore(path, readonly=True)."
        ) from None
    # A kernel that Jupyter started for a notebook knows its path (JPY_SESSION_NAME).
    notebook = os.environ.get("JPY_SESSION_NAME") or None
    owner_file.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.time(),
                "notebook": notebook,
                **(describe or {}),
            }
        )
    )
    return Claim(lock)
