"""What is inside each call as Parquet, beside the exported events (see :mod:`.history`).

An export directory holds one dataset per table::

    events/day=YYYY-MM-DD/<origin>-<first id>-<last id>.parquet   the events
    turns/<origin>-<first id>-<last id>.parquet                   turns, appended by id
    tool_calls/<origin>-<first id>-<last id>.parquet              tool calls, results whole
    conversations/<origin>.parquet                                every conversation, as it is now

Turns and tool calls have the columns of ``store.turns`` and ``store.tool_calls`` that every
row has (a metric with no column of its own is in ``other_metrics``, JSON), so every file of
a dataset has one schema. Their ids only grow, so each export appends the rows after the
last one exported. A conversation changes as events tell more of it, so its table is written
whole at each export, with every column of ``store.conversations``. A call whose
OpenTelemetry turns were exported before its JSON transcript replaced them keeps both sets
in Parquet: the conversation's ``event_id`` names the event whose turns are current.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

import pandas as pd

from .schema import CONVERSATIONS, TOOL_CALLS, TURNS, Column, Table

if TYPE_CHECKING:
    import pyarrow as pa

#: The tables appended by id, by name.
APPENDED: dict[str, Table] = {t.name: t for t in (TURNS, TOOL_CALLS)}
_OWNER = ("conversation_id", "agent_id")  # in memory from the conversation's row (see .schema)

_ARROW = {
    "int": "int64",
    "text": "string",
    "interned": "string",
    "clipped": "string",  # whole in Parquet, as in the file
    "blob": "string",  # other_metrics: JSON text
    "number": "float64",
    "flag": "bool_",
    "maybe": "bool_",
}


def _exported(table: Table) -> tuple[Column, ...]:
    return tuple(c for c in table.columns if c.sql is not None or c.name in _OWNER)


def schema(table: Table) -> pa.Schema:
    """The Parquet schema of an appended table, in the order of its frame."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(
                c.name,
                pa.timestamp("ns", tz="UTC") if c.kind == "time" else getattr(pa, _ARROW[c.kind])(),
                nullable=c.name != "id",
            )
            for c in _exported(table)
        ]
    )


def read_batch(db: sqlite3.Connection, table: Table, after: int, max_rows: int) -> pa.Table:
    """Rows of ``table`` (turns or tool calls) with ids over ``after``, oldest first, at most ``max_rows``."""
    import pyarrow as pa

    reads = [
        f"c.{c.name}" if c.sql is None else f"t.{c.file_name}"
        for c in _exported(table)  # the owner's columns from its conversation row
    ]
    rows = db.execute(
        f"SELECT {', '.join(reads)} FROM {table.name} t "
        f"LEFT JOIN {CONVERSATIONS.name} c ON c.event_id = t.event_id "
        "WHERE t.id > ? ORDER BY t.id LIMIT ?",
        (after, max_rows),
    ).fetchall()
    target = schema(table)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(target)
    arrays = []
    for f, values in zip(target, columns, strict=True):
        if pa.types.is_timestamp(f.type) or pa.types.is_boolean(f.type):
            arrays.append(pa.array(values, pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=target)


def conversations_table(frame: pd.DataFrame) -> pa.Table:
    """``store.conversations`` as Arrow: its index a column; a column of mixed values (a
    data-collection item that is text here and a number there) as text, JSON where not text."""
    import pyarrow as pa

    frame = frame.reset_index()
    arrays, names = [], []
    for name in frame.columns:
        values = frame[name]
        try:
            array = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            array = pa.array([_text(v) for v in values], pa.string())
        if pa.types.is_null(array.type):  # nothing in it yet: text, as it would be
            array = array.cast(pa.string())
        arrays.append(array)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)
