"""The events' columns saved beside the store file, so that a big store reopens from arrays.

Reading a million rows through ``sqlite3`` costs seconds of Python objects; the same
columns as NumPy arrays load in a fraction of that. The copy (``<store>-columns``: a zip of
``.npy`` arrays and JSON, never a pickle) is only a cache. It names the store it was made
from (a random id kept in the file's meta) and the rows it holds (how many, the last id and
its body's SHA-256, their total deliveries), and it is checked against the file each time
it is used. Its contents are checked too: a SHA-256 of every array it holds is kept in the
store file itself when the copy is written, so a copy that is well-formed but not the one
this file's writer made (edited, swapped, half-restored) does not match. A copy that is
missing, unreadable or does not match is ignored and the rows are read from the file as
before. Rows added after it was written are read from the file; repeat counts that moved
since are read back for the rows that have any. Temporary copies left by writers killed
mid-save are removed by the next save.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .events import Arrays
from .schema import EVENTS

log = logging.getLogger("elwh_nb.store")

SUFFIX = "-columns"
FORMAT = 2
#: Below this many rows the file is read quickly enough and no copy is kept.
MIN_ROWS = 20_000
STORE_ID_KEY = "store_id"
#: The store file's meta key for the SHA-256 of the copy's arrays, written with the copy.
DIGEST_KEY = "columns_sha256"
#: A temporary copy untouched for this long was left by a writer that died mid-save.
STALE_TMP_S = 60.0
#: The columns kept: those the file's SELECT would give, with their kinds (a change in the
#: schema makes older copies not match).
_KEPT = tuple((c.name, c.kind) for c in EVENTS.loaded)


def path_for(store: Path) -> Path:
    """Where the copy of ``store``'s columns lives."""
    return store.with_name(store.name + SUFFIX)


def _tally(db: sqlite3.Connection, last_id: int) -> tuple[int, int]:
    rows, deliveries = db.execute(
        "SELECT count(*), coalesce(sum(deliveries), 0) FROM events WHERE id <= ?", (last_id,)
    ).fetchone()
    return int(rows), int(deliveries)


def _last_digest(db: sqlite3.Connection, last_id: int) -> str | None:
    row = db.execute("SELECT body_sha256 FROM events WHERE id = ?", (last_id,)).fetchone()
    return None if row is None else bytes(row[0]).hex()


class _Digest:
    """The SHA-256 over the arrays as stored (codes for text, with their list of values)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add(self, name: str, values: np.ndarray[Any, Any], texts: bytes = b"") -> None:
        head = json.dumps([name, values.dtype.str, len(values), len(texts)]).encode()
        self._h.update(len(head).to_bytes(4, "big") + head)
        self._h.update(np.ascontiguousarray(values).data)
        self._h.update(texts)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _remove_stale(target: Path) -> None:
    """Remove temporary copies that writers killed mid-save left behind."""
    for tmp in target.parent.glob(f"{target.name}*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TMP_S:
                tmp.unlink()
        except OSError:
            pass  # gone already, or not ours to remove


def save(
    store: Path,
    store_id: str,
    db: sqlite3.Connection,
    columns: dict[str, np.ndarray[Any, Any]],
    types: list[str],
) -> bool:
    """Write ``columns`` (views of the rows in memory) beside ``store``; returns whether it did.

    The copy is written to a temporary file and renamed over the old one, so a reader
    (or a crash) never sees half of it; its digest then goes into the store file.
    """
    ids = columns["id"]
    if len(ids) == 0:
        return False
    last_id = int(ids[-1])
    deliveries = int(columns["deliveries"].sum())
    if _tally(db, last_id) != (len(ids), deliveries) or (digest := _last_digest(db, last_id)) is None:
        return False  # memory is not what the file holds (another writer): keep no copy
    meta = {
        "format": FORMAT,
        "store_id": store_id,
        "columns": _KEPT,
        "rows": len(ids),
        "last_id": last_id,
        "last_sha256": digest,
        "deliveries": deliveries,
        "types": types,
    }
    target = path_for(store)
    _remove_stale(target)
    contents = _Digest()
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("meta.json", json.dumps(meta))
            for name, _ in _KEPT:
                values = columns[name]
                texts = b""
                if values.dtype == object:
                    codes, uniques = pd.factorize(values, use_na_sentinel=True)
                    texts = json.dumps(uniques.tolist()).encode()
                    zf.writestr(f"{name}.json", texts)
                    values = codes.astype(np.int32 if len(uniques) < 2**31 else np.int64)
                contents.add(name, values, texts)
                with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, np.ascontiguousarray(values), allow_pickle=False)
        os.chmod(tmp, store.stat().st_mode & 0o666)  # readable by whoever may read the store
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    db.execute(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (DIGEST_KEY, contents.hexdigest()),
    )
    return True


def load(store: Path, store_id: str, db: sqlite3.Connection) -> Arrays | None:
    """The copy beside ``store`` if there is one and it matches the file, else None."""
    source = path_for(store)
    if not source.exists():
        return None
    try:
        with zipfile.ZipFile(source) as zf:
            meta = json.loads(zf.read("meta.json"))
            if (
                meta.get("format") != FORMAT
                or meta.get("store_id") != store_id
                or [tuple(c) for c in meta.get("columns", ())] != list(_KEPT)
            ):
                return None
            rows, last_id = int(meta["rows"]), int(meta["last_id"])
            if _last_digest(db, last_id) != meta["last_sha256"]:
                return None
            counted, deliveries = _tally(db, last_id)
            if counted != rows:
                return None
            kept = db.execute("SELECT value FROM meta WHERE key = ?", (DIGEST_KEY,)).fetchone()
            if kept is None:
                return None
            digest = _Digest()
            columns = {name: _read_column(zf, name, rows, digest) for name, _ in _KEPT}
            if digest.hexdigest() != kept[0]:
                raise ValueError("its contents are not those this store's writer saved")
        types = [str(t) for t in meta["types"]]
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        log.warning(
            "ignoring the column copy %s (%s: %s); reading the store file", source, type(exc).__name__, exc
        )
        return None
    codes = columns["event_type"]
    if columns["id"][-1] != last_id or not -1 <= int(codes.min(initial=-1)) <= int(
        codes.max(initial=-1)
    ) < len(types):
        return None
    if deliveries < int(meta["deliveries"]):
        return None  # counts only ever go up: this is not the file the copy was made from
    if deliveries > int(meta["deliveries"]):
        _repeats_since(db, last_id, columns)
    return Arrays(columns, types, deliveries)


def _read_column(zf: zipfile.ZipFile, name: str, rows: int, digest: _Digest) -> np.ndarray[Any, Any]:
    with zf.open(f"{name}.npy") as f:
        values = np.lib.format.read_array(f, allow_pickle=False)
    if values.shape != (rows,):
        raise ValueError(f"column {name} has {values.shape} values, not {rows}")
    dtype = np.dtype(EVENTS.dtypes[name])
    if dtype == np.dtype(object):
        texts = zf.read(f"{name}.json")
        digest.add(name, values, texts)
        uniques = json.loads(texts)
        if (
            values.dtype.kind != "i"
            or not set(map(type, uniques)) <= {str}
            or not -1 <= values.min(initial=-1) <= values.max(initial=-1) < len(uniques)
        ):
            raise ValueError(f"column {name} does not hold text")
        return np.array([*uniques, None], dtype=object)[values]  # code -1 is the None at the end
    digest.add(name, values)
    if name == "event_type":
        return values  # codes, renumbered by the caller
    if values.dtype != dtype:
        raise ValueError(f"column {name} is {values.dtype}, not {dtype}")
    return values


def _repeats_since(db: sqlite3.Connection, last_id: int, columns: dict[str, np.ndarray[Any, Any]]) -> None:
    """Bring the repeat counts (and last arrivals) of the kept rows up to the file's."""
    ids = columns["id"]
    for event_id, deliveries, last_ns in db.execute(
        "SELECT id, deliveries, last_received_ns FROM events WHERE id <= ? AND deliveries > 1", (last_id,)
    ):
        at = int(np.searchsorted(ids, event_id))
        columns["deliveries"][at] = deliveries
        columns["last_received_at"][at] = last_ns
