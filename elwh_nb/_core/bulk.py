"""Reading a store file's events a column at a time in C: Arrow batches from the ADBC SQLite driver.

Reopening a file of a million events row by row in Python takes seconds (the sqlite3
module makes a Python object of every cell); through ADBC the rows become Arrow columns
in C, and NumPy takes them from there. Used when pyarrow and ``adbc-driver-sqlite`` are
installed (the ``history`` extra); :meth:`.events.Events.load` falls back to rows otherwise,
and for whatever this could not read.
"""

from __future__ import annotations

import contextlib
import math
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import numpy as np

from .schema import EVENTS, NAT

BATCH_ROWS = 65_536
_END = object()
# ADBC's SQLite driver guesses each column's type from the first batch, and an all-NULL
# column there becomes int64 and fails on a later string: a first row of the right types
# (dropped again) makes every guess right.
_TYPED = {"text": "''", "interned": "''", "category": "''", "number": "0.5"}
_SELECT = (
    f"SELECT {', '.join(_TYPED.get(c.kind, '0') for c in EVENTS.loaded)} "
    f"UNION ALL SELECT * FROM ({EVENTS.select} WHERE id > ? ORDER BY id)"
)


def available() -> bool:
    try:
        import adbc_driver_sqlite.dbapi  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _read(path: str, after: int) -> Iterator[Any]:
    import adbc_driver_sqlite
    import adbc_driver_sqlite.dbapi

    with adbc_driver_sqlite.dbapi.connect(f"file:{quote(path)}?mode=ro") as db, db.cursor() as cur:
        cur.adbc_statement.set_options(
            **{adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: str(BATCH_ROWS)}
        )
        cur.execute(_SELECT, (after,))
        reader = cur.fetch_record_batch()
        first = True
        for batch in reader:
            if first:
                batch, first = batch.slice(1), False  # the typed row
            if batch.num_rows:
                yield batch


def batches(path: str, after: int) -> Iterator[Any]:
    """Arrow record batches of :data:`.schema.EVENTS`' loaded columns, ids over ``after``, in order.

    A thread reads ahead (SQLite and the driver run without the GIL) while the caller
    converts the batch before.
    """
    ahead: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ahead.put(item, timeout=0.1)
                return

    def read() -> None:
        try:
            for batch in _read(path, after):
                put(batch)
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the caller
            put(exc)
        put(_END)

    thread = threading.Thread(target=read, name="elwh-bulk-read", daemon=True)
    thread.start()
    try:
        while (item := ahead.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _names(array: Any, intern: bool) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], list[str]]:
    """Each row's position in the column's distinct values (the last for NULL), and those values."""
    encoded = array.dictionary_encode()
    names = encoded.dictionary.to_pylist()
    if intern:
        names = [sys.intern(n) for n in names]
    index = encoded.indices.fill_null(len(names)).to_numpy()
    return index, np.array([*names, None], dtype=object), names


def columns(batch: Any, code: Callable[[str | None], int], payload: Callable[..., Any]) -> dict[str, Any]:
    """A batch as the in-memory columns of ``events`` (``code`` names event types)."""
    out: dict[str, Any] = {}
    type_names: np.ndarray[Any, Any] | None = None
    for column, array in zip(EVENTS.loaded, batch.columns, strict=True):
        if column.kind == "category":
            index, values, names = _names(array, intern=False)
            codes = np.array([code(n) for n in names] + [-1], dtype=np.int32)
            out[column.name], type_names = codes[index], values[index]
        elif column.kind == "interned":
            index, values, _ = _names(array, intern=True)
            out[column.name] = values[index]
        elif column.kind == "flag":
            out[column.name] = array.to_numpy(zero_copy_only=False).astype(bool)
        else:  # ints and times (NULL is NAT in the SELECT), floats (NULL is NaN), text (None)
            out[column.name] = array.to_numpy(zero_copy_only=False)
    event_ns, received = out["event_timestamp"], out["received_at"]
    with np.errstate(over="ignore"):
        out["delivery_lag_s"] = np.where(event_ns == NAT, math.nan, (received - event_ns) / 1e9)
    out["turnaround_s"] = np.full(batch.num_rows, math.nan)
    handles = map(payload, out["id"].tolist(), type_names if type_names is not None else [])
    out["payload"] = np.fromiter(handles, dtype=object, count=batch.num_rows)  # no list in between
    return out
