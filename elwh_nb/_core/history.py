"""Events as Parquet, partitioned by day and appended to: history that DuckDB and Dask read directly.

:func:`export` writes ``DIR/events/day=YYYY-MM-DD/<origin>-<first id>-<last id>.parquet`` (the
day of ``received_at``, UTC; Hive style) with the stored flat columns of :data:`.schema.EVENTS`
(the Arrow schema is derived from them), the body's SHA-256 (hex) and the body itself as
UTF-8 JSON text, whole: post_call_audio's base64 audio included, since a columnar reader
only reads ``body`` when a query names it. Rows are snapshots: a repeat delivery after an
event was exported bumps ``deliveries`` in the store, never the Parquet row.

What was exported is kept in the directory (``_elwh_export.json``, written atomically):
per store, the last exported id and its body's digest. A store is known by the digest of its
first event, so several stores can export into one directory, a store whose history differs
from what the directory holds is refused, and a deleted directory starts afresh. Files
deleted by hand stay deleted (the mark says what was exported, not what exists: deleting
old ``day=`` folders is how to keep less). A batch is committed by the mark: its files are
written under temporary names first and renamed only once the mark names them, so a crash
never leaves a row exported twice. A source is anything with :meth:`Source.history_batch`:
an :class:`~.store.EventStore`, or a connection to a remote store that offers the same.

Beside ``events/``, a source that has them gets its turns, tool calls and conversations
exported too (``turns/``, ``tool_calls/``, ``conversations/``: see :mod:`.history_calls`),
committed by the same mark. A directory written before there were tables (its ``day=``
folders at the top) has them moved into ``events/`` first.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import history_calls
from .exceptions import ExportError
from .schema import EVENTS, Column

if TYPE_CHECKING:
    import pyarrow as pa

MARK = "_elwh_export.json"  # readers skip names starting with "_" (Dask) or not ending .parquet
EVENTS_DIR = "events"
LOCK = "_elwh_export.lock"
BATCH_ROWS = 50_000
BATCH_BYTES = 64 * 2**20  # bodies per batch at most (one batch is in memory at a time)
_DAY_NS = 86_400 * 10**9

#: The stored flat columns, as exported (file-only blobs become body_sha256 and body).
FLAT: tuple[Column, ...] = tuple(c for c in EVENTS.stored if c.kind != "blob")


def select_in(db: sqlite3.Connection) -> str:
    """The rows an export reads from ``db``, in :func:`arrow_schema`'s order.

    A column the file lacks (written by an older elwh_nb, opened read-only) exports as null.
    """
    have = EVENTS.in_file(db)
    names = (c.file_name if c.file_name in have else "NULL" for c in FLAT)
    return f"SELECT {', '.join(names)}, lower(hex(body_sha256)), body FROM events WHERE id > ? ORDER BY id"


_ARROW_KINDS = {  # kinds of .schema to Arrow type names (pa.<name>())
    "int": "int64",
    "text": "string",
    "interned": "string",
    "category": "string",
    "number": "float64",
    "flag": "bool_",
}


class Source(Protocol):
    """What an export reads: an EventStore here; a connection to a remote store later."""

    def history_batch(self, after: int, max_rows: int, max_bytes: int = BATCH_BYTES) -> pa.Table:
        """Events with ids over ``after``, oldest first, in :func:`arrow_schema`: at most
        ``max_rows``, and no more once ``max_bytes`` of bodies are in (always at least one)."""
        ...


@dataclass
class Exported:
    """What an export wrote: ``rows`` new events (and ``turns``, ``tool_calls``, the
    ``conversations`` table) in ``files`` under ``directory``."""

    directory: Path
    rows: int = 0
    files: list[Path] = field(default_factory=list)
    last_id: int = 0  # the store's newest exported event
    turns: int = 0
    tool_calls: int = 0
    conversations: int = 0  # rows of the conversations table written (0: not written again)


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet
    except ImportError as exc:
        raise ExportError("exporting to Parquet needs pyarrow: pip install 'elwh-nb[history]'") from exc
    return pa


def arrow_schema() -> pa.Schema:
    """The exported columns, from :data:`FLAT` (NOT NULL in the file: not nullable here)."""
    pa = _pyarrow()
    fields = [
        pa.field(
            c.name,
            pa.timestamp("ns", tz="UTC") if c.kind == "time" else getattr(pa, _ARROW_KINDS[c.kind])(),
            nullable="NOT NULL" not in (c.sql or ""),
        )
        for c in FLAT
    ]
    fields += [pa.field("body_sha256", pa.string(), False), pa.field("body", pa.string(), False)]
    return pa.schema(fields)


def _text(body: bytes) -> str:
    """A body as UTF-8 JSON text (a body in another JSON encoding is re-encoded)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return json.dumps(json.loads(body), ensure_ascii=False)


def read_batch(db: sqlite3.Connection, after: int, max_rows: int, max_bytes: int) -> pa.Table:
    """:meth:`Source.history_batch` from an SQLite store's connection."""
    pa = _pyarrow()
    rows: list[tuple[Any, ...]] = []
    size = 0
    cur = db.execute(select_in(db), (after,))
    while len(rows) < max_rows and (not rows or size < max_bytes) and (row := cur.fetchone()) is not None:
        rows.append(row)
        size += len(row[-1])
    cur.close()
    schema = arrow_schema()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = []
    for f, values in zip(schema, columns, strict=True):
        if f.name == "body":
            values = tuple(map(_text, values))
        if pa.types.is_timestamp(f.type) or pa.types.is_boolean(f.type):
            arrays.append(pa.array(values, pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


# -- the directory ----------------------------------------------------------------------
def _tmp(name: str) -> str:
    """A file's name while it is written: hidden from Dask (a dot) and from ``*.parquet`` globs."""
    return f".{name}.tmp"


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(_tmp(path.name))
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_mark(directory: Path) -> dict[str, Any]:
    try:
        mark: dict[str, Any] = json.loads((directory / MARK).read_text())
    except FileNotFoundError:
        return {"format": 1, "stores": {}, "pending": []}
    return mark


def _finish(directory: Path, mark: dict[str, Any]) -> None:
    """Complete a committed batch (rename its files) and drop temporary files of an uncommitted one."""
    for tmp, final in mark.get("pending", []):
        if (directory / tmp).exists():
            os.replace(directory / tmp, directory / final)
    if mark.get("pending"):
        mark["pending"] = []
        _write_json(directory / MARK, mark)
    for stray in directory.glob("*/**/.*.tmp"):
        stray.unlink()


def _move_old_layout(directory: Path) -> None:
    """Events exported before there were other tables (``day=`` folders at the top) into ``events/``."""
    for day in directory.glob("day=*"):
        if not day.is_dir():
            continue
        target = directory / EVENTS_DIR / day.name
        target.mkdir(parents=True, exist_ok=True)
        for file in day.iterdir():
            os.replace(file, target / file.name)
        day.rmdir()


def _by_day(batch: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    import numpy as np

    days = batch["received_at"].cast("int64").to_numpy() // _DAY_NS
    for day in np.unique(days):
        yield str(np.datetime64(int(day), "D")), batch.filter(days == day)


def _check_same_history(source: Source, root: Path, last_id: int, last_sha256: str) -> None:
    """Refuse a store whose event ``last_id`` is not the one exported (a diverged copy)."""
    at = source.history_batch(last_id - 1, 1, 0)
    if at.num_rows and at["id"][0].as_py() == last_id and at["body_sha256"][0].as_py() == last_sha256:
        return
    raise ExportError(
        f"{root} holds an export of this store's history up to event {last_id}, but the store's event "
        f"{last_id} is not the one exported (another copy of the store?): export to a new directory"
    )


def export(source: Source, directory: str | os.PathLike[str]) -> Exported:
    """Append the events of ``source`` not yet in ``directory`` to it, as Parquet by day."""
    _pyarrow()
    import pyarrow.parquet as pq
    from filelock import FileLock

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    done = Exported(root)
    with FileLock(root / LOCK):
        mark = _read_mark(root)
        _finish(root, mark)
        _move_old_layout(root)
        first = source.history_batch(0, 1, 0)
        if first.num_rows == 0:
            return done
        origin = first["body_sha256"][0].as_py()
        state = mark["stores"].setdefault(origin, {"last_id": 0, "last_sha256": None})
        after = done.last_id = state["last_id"]
        if after:
            _check_same_history(source, root, after, state["last_sha256"])
        while (batch := source.history_batch(after, BATCH_ROWS)).num_rows:
            ids = batch["id"]
            pending: list[tuple[str, str]] = []
            for day, rows in _by_day(batch):
                name = f"{EVENTS_DIR}/day={day}/{origin[:16]}-{rows['id'][0]}-{rows['id'][-1]}.parquet"
                tmp = f"{EVENTS_DIR}/day={day}/{_tmp(Path(name).name)}"
                (root / tmp).parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(rows, root / tmp, compression="zstd")
                pending.append((tmp, name))
            after = ids[-1].as_py()
            state.update(last_id=after, last_sha256=batch["body_sha256"][-1].as_py())
            mark["pending"] = pending
            _write_json(root / MARK, mark)  # the commit: from here on the batch is exported
            _finish(root, mark)
            done.rows += batch.num_rows
            done.files += [root / name for _, name in pending]
            done.last_id = after
        if hasattr(source, "derived_batch"):
            _export_calls(source, root, origin, mark, state, done)
    return done


def _export_calls(
    source: Any, root: Path, origin: str, mark: dict[str, Any], state: dict[str, Any], done: Exported
) -> None:
    """The turns and tool calls after the last exported, and the conversations table if anything
    came (or it is missing), written and then committed by the mark (see :mod:`.history_calls`)."""
    import pyarrow.parquet as pq

    pending: list[tuple[str, str]] = []
    for name in history_calls.APPENDED:
        after = int(state.get(name, 0))
        while (batch := source.derived_batch(name, after, BATCH_ROWS)).num_rows:
            first, after = batch["id"][0].as_py(), batch["id"][-1].as_py()
            final = f"{name}/{origin[:16]}-{first}-{after}.parquet"
            pending.append((f"{name}/{_tmp(Path(final).name)}", final))
            (root / name).mkdir(exist_ok=True)
            pq.write_table(batch, root / pending[-1][0], compression="zstd")
            setattr(done, name, getattr(done, name) + batch.num_rows)
            state[name] = after
    table = f"conversations/{origin[:16]}.parquet"
    if done.rows or pending or not (root / table).exists():
        conversations = source.conversations
        if len(conversations):
            (root / "conversations").mkdir(exist_ok=True)
            pending.append((f"conversations/{_tmp(Path(table).name)}", table))
            pq.write_table(history_calls.conversations_table(conversations), root / pending[-1][0])
            done.conversations = len(conversations)
    if not pending:
        return
    mark["pending"] = pending
    _write_json(root / MARK, mark)  # the commit
    _finish(root, mark)
    done.files += [root / name for _, name in pending]


def describe(done: Exported) -> str:
    """One line for the command line."""
    if not done.files:
        return f"nothing new to export into {done.directory} (up to event {done.last_id} already there)"
    files = f"{len(done.files)} file{'s' if len(done.files) > 1 else ''}"
    parts = [f"{done.rows} events (up to event {done.last_id})"] + [
        f"{n} {what}"
        for n, what in (
            (done.turns, "turns"),
            (done.tool_calls, "tool calls"),
            (done.conversations, "conversations"),
        )
        if n
    ]
    told = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"exported {told} into {files} under {done.directory}"
