"""New rows of a store's tables as an Arrow IPC stream: what the hub service sends and ``connect()`` reads.

Events travel as whole columns from the service's memory (:func:`events_stream`), in the form
they have there (times as ns with pandas' NaT, the type as codes into names kept in the
stream's metadata), and a reader appends them as they come (:func:`events_arrays`), with no
row at a time on either side. Failures, few and capped, travel as the file's rows. Neither
carries raw bodies: a reader gets a body when it opens one.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import numpy as np

from .._core.derived import REPLACED_KEY
from .._core.events import Arrays
from .._core.fileuri import file_uri
from .._core.schema import EVENTS, NAT, Column, Table

MEDIA_TYPE = "application/vnd.apache.arrow.stream"
#: Rows per answer; a reader asks again while an answer is full.
PAGE = 100_000


def columns(table: Table) -> tuple[Column, ...]:
    """The columns that travel: every stored one but BLOBs (an event's body and its hash)."""
    return tuple(c for c in table.stored if not (c.sql or "").startswith("BLOB"))


def select(table: Table) -> str:
    return f"SELECT {', '.join(names(table))} FROM {table.name} WHERE id > ? ORDER BY id LIMIT ?"


def _arrow_type(column: Column) -> Any:
    import pyarrow as pa

    sql = (column.sql or "").split()[0]
    return {"INTEGER": pa.int64(), "REAL": pa.float64()}.get(sql, pa.string())


def read_new(path: str, table: Table, after: int, limit: int = PAGE) -> bytes:
    """Rows of ``table`` with ids over ``after`` from the store file at ``path``, as an Arrow stream.

    Its own read-only connection: a reader never waits for, nor holds up, the writer.
    """
    db = sqlite3.connect(file_uri(path, "ro"), uri=True)
    try:
        rows = db.execute(select(table), (after, limit)).fetchall()
    finally:
        db.close()
    return _rows_stream(table, rows)


def read_derived(path: str, table: Table, after: int, limit: int = PAGE) -> tuple[bytes, str]:
    """:func:`read_new` for a derived table (turns, tool calls, conversations), with how many
    times turns were replaced, read in the same transaction (see ``REPLACED_HEADER``)."""
    db = sqlite3.connect(file_uri(path, "ro"), uri=True, isolation_level=None)
    try:
        db.execute("BEGIN")
        rows = db.execute(select(table), (after, limit)).fetchall()
        replaced = db.execute("SELECT value FROM meta WHERE key = ?", (REPLACED_KEY,)).fetchone()
        db.execute("COMMIT")
    finally:
        db.close()
    return _rows_stream(table, rows), "" if replaced is None else str(replaced[0])


def _rows_stream(table: Table, rows: list[tuple[Any, ...]]) -> bytes:
    import pyarrow as pa

    cols = columns(table)
    values = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
    return _stream(
        pa.table({c.file_name: pa.array(v, type=_arrow_type(c)) for c, v in zip(cols, values, strict=True)})
    )


_TYPES_KEY = b"elwh.event_types"


def _stream(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def events_stream(arrays: Arrays) -> bytes:
    """Events from :meth:`EventStore.arrays_after` as an Arrow stream."""
    import pyarrow as pa

    columns = {
        name: pa.array(values, type=pa.string(), from_pandas=True)
        if values.dtype == object
        else pa.array(values)
        for name, values in arrays.columns.items()
    }
    table = pa.table(columns).replace_schema_metadata({_TYPES_KEY: json.dumps(arrays.types).encode()})
    return _stream(table)


#: What a column the stream lacks holds, by kind (columns added since schema 1 are of these).
_MISSING: dict[str, Any] = {"number": np.nan, "time": NAT, "text": None, "interned": None, "flag": False}


def events_arrays(data: bytes) -> Arrays:
    """The events of an :func:`events_stream`, as the columns :meth:`Events.restore` takes."""
    import pyarrow as pa

    got = pa.ipc.open_stream(data).read_all()
    types = [str(t) for t in json.loads((got.schema.metadata or {}).get(_TYPES_KEY, b"[]"))]
    columns = {}
    for column in EVENTS.loaded:
        dtype = np.dtype(EVENTS.dtypes[column.name])
        if column.name not in got.schema.names:  # a service older than the column
            columns[column.name] = np.full(got.num_rows, _MISSING[column.kind], dtype=dtype)
            continue
        values = got.column(column.name).to_numpy(zero_copy_only=False)
        columns[column.name] = values if column.name == "event_type" else np.asarray(values, dtype=dtype)
    return Arrays(columns, types, int(columns["deliveries"].sum()))


def rows(data: bytes, table: Table) -> list[tuple[Any, ...]]:
    """The rows of an Arrow stream from :func:`read_new`, in :func:`columns` order."""
    import pyarrow as pa

    got = pa.ipc.open_stream(data).read_all()
    lists = [got.column(c.file_name).to_pylist() for c in columns(table)]
    return list(zip(*lists, strict=True))


def names(table: Table) -> list[str]:
    """The file names of the columns that travel, in the order :func:`rows` gives them."""
    return [c.file_name for c in columns(table)]
