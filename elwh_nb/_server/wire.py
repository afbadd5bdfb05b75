"""New rows of a store's tables as an Arrow IPC stream: what the hub service sends and ``connect()`` reads.

The columns are the file's (as :mod:`.._core.schema` names them), without the raw body: a
reader gets bodies one at a time, when it opens one.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .._core.schema import Column, Table

MEDIA_TYPE = "application/vnd.apache.arrow.stream"
#: Rows per answer; a reader asks again while an answer is full.
PAGE = 100_000


def columns(table: Table) -> tuple[Column, ...]:
    """The columns that travel: every stored one but the body and its hash."""
    return tuple(c for c in table.stored if c.kind != "blob")


def select(table: Table) -> str:
    names = ", ".join(c.file_name for c in columns(table))
    return f"SELECT {names} FROM {table.name} WHERE id > ? ORDER BY id LIMIT ?"


def _arrow_type(column: Column) -> Any:
    import pyarrow as pa

    sql = (column.sql or "").split()[0]
    return {"INTEGER": pa.int64(), "REAL": pa.float64()}.get(sql, pa.string())


def read_new(path: str, table: Table, after: int, limit: int = PAGE) -> bytes:
    """Rows of ``table`` with ids over ``after`` from the store file at ``path``, as an Arrow stream.

    Its own read-only connection: a reader never waits for, nor holds up, the writer.
    """
    import pyarrow as pa

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(select(table), (after, limit)).fetchall()
    finally:
        db.close()
    cols = columns(table)
    values = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
    batch = pa.table(
        {c.file_name: pa.array(v, type=_arrow_type(c)) for c, v in zip(cols, values, strict=True)}
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_table(batch)
    return bytes(sink.getvalue().to_pybytes())


def rows(data: bytes, table: Table) -> list[tuple[Any, ...]]:
    """The rows of an Arrow stream from :func:`read_new`, in :func:`columns` order."""
    import pyarrow as pa

    got = pa.ipc.open_stream(data).read_all()
    lists = [got.column(c.file_name).to_pylist() for c in columns(table)]
    return list(zip(*lists, strict=True))


def insert(table: Table, extra: dict[str, str] | None = None) -> str:
    """The INSERT of one such row (``extra``: more columns and their SQL values)."""
    names = [c.file_name for c in columns(table)] + list(extra or {})
    values = ["?"] * len(columns(table)) + list((extra or {}).values())
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(values)})"
