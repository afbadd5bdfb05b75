"""The derived tables' columns saved beside the store file, so that a big store's turns load from arrays.

What :mod:`.colcache` does for the events, for ``turns``, ``tool_calls`` and
``conversations`` (their named columns too): a zip of ``.npy`` arrays and JSON beside the
file (``<store>-derived``, never a pickle), written when the store closes, used only when it
matches the file. It names the store (its random id) and, per table, the rows it holds (how
many, the last id); the count of the file's rows up to that id must agree (turns replaced
since left the file; a conversation merged since moved to a new id), and a SHA-256 of every
array is kept in the store file. Anything else, and the rows are read from the file as
before. Rows added since are read from the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("elwh_nb.store")

SUFFIX = "-derived"
FORMAT = 1
#: Below this many turns the file is read quickly enough and no copy is kept.
MIN_TURNS = 20_000
DIGEST_KEY = "derived_sha256"

Tables = dict[str, dict[str, np.ndarray[Any, Any]]]


def path_for(store: Path) -> Path:
    return store.with_name(store.name + SUFFIX)


def _count(db: sqlite3.Connection, table: str, last_id: int) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table} WHERE id <= ?", (last_id,)).fetchone()[0])


def _encode(values: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], bytes]:
    """An object column as codes and its distinct values (text only), else as JSON of every value."""
    if all(v is None or isinstance(v, str) for v in values):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        return codes.astype(np.int32), json.dumps(uniques.tolist()).encode()
    return np.zeros(0, dtype=np.int32), json.dumps(values.tolist()).encode()


def _decode(codes: np.ndarray[Any, Any], texts: bytes, rows: int) -> np.ndarray[Any, Any]:
    values = json.loads(texts)
    if len(codes) == rows:
        if not set(map(type, values)) <= {str} or not -1 <= codes.min(initial=-1) <= codes.max(
            initial=-1
        ) < len(values):
            raise ValueError("a text column's codes do not fit its values")
        return np.array([*values, None], dtype=object)[codes]
    if len(values) != rows:
        raise ValueError("a column's values are not one per row")
    out = np.empty(rows, dtype=object)
    out[:] = values
    return out


def save(store: Path, store_id: str, db: sqlite3.Connection, tables: Tables) -> bool:
    """Write the tables' columns (views of memory) beside ``store``; returns whether it did."""
    meta: dict[str, Any] = {"format": FORMAT, "store_id": store_id, "tables": {}}
    for name, columns in tables.items():
        ids = columns["id"]
        last_id = int(ids.max()) if len(ids) else 0
        if _count(db, name, last_id) != len(ids):
            return False  # memory is not what the file holds (another writer): keep no copy
        meta["tables"][name] = {
            "rows": len(ids),
            "last_id": last_id,
            "columns": [[c, str(v.dtype)] for c, v in columns.items()],
        }
    target = path_for(store)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("meta.json", json.dumps(meta))
            for table, columns in tables.items():
                for i, values in enumerate(columns.values()):
                    texts = b""
                    if values.dtype == object:
                        values, texts = _encode(values)
                        zf.writestr(f"{table}/{i}.json", texts)
                    values = np.ascontiguousarray(values)
                    digest.update(f"{table}/{i}:{values.dtype.str}:{len(values)}:{len(texts)}".encode())
                    digest.update(values.data)
                    digest.update(texts)
                    with zf.open(f"{table}/{i}.npy", "w", force_zip64=True) as out:
                        np.lib.format.write_array(out, values, allow_pickle=False)
        os.chmod(tmp, store.stat().st_mode & 0o666)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    db.execute(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (DIGEST_KEY, digest.hexdigest()),
    )
    return True


def load(store: Path, store_id: str, db: sqlite3.Connection) -> Tables | None:
    """The copy beside ``store`` if there is one and it matches the file, else None."""
    source = path_for(store)
    if not source.exists():
        return None
    try:
        kept = db.execute("SELECT value FROM meta WHERE key = ?", (DIGEST_KEY,)).fetchone()
        with zipfile.ZipFile(source) as zf:
            meta = json.loads(zf.read("meta.json"))
            if meta.get("format") != FORMAT or meta.get("store_id") != store_id or kept is None:
                return None
            digest = hashlib.sha256()
            tables: Tables = {}
            for table, info in meta["tables"].items():
                rows, last_id = int(info["rows"]), int(info["last_id"])
                if _count(db, table, last_id) != rows:
                    return None
                columns = {}
                for i, (name, dtype) in enumerate(info["columns"]):
                    with zf.open(f"{table}/{i}.npy") as f:
                        values = np.lib.format.read_array(f, allow_pickle=False)
                    texts = zf.read(f"{table}/{i}.json") if dtype == "object" else b""
                    digest.update(f"{table}/{i}:{values.dtype.str}:{len(values)}:{len(texts)}".encode())
                    digest.update(np.ascontiguousarray(values).data)
                    digest.update(texts)
                    if dtype == "object":
                        values = _decode(values, texts, rows)
                    elif values.shape != (rows,) or str(values.dtype) != dtype:
                        raise ValueError(f"{table}.{name} is not {rows} values of {dtype}")
                    columns[str(name)] = values
                tables[str(table)] = columns
            if digest.hexdigest() != kept[0]:
                raise ValueError("its contents are not those this store's writer saved")
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        log.warning("ignoring the copy %s (%s: %s); reading the store file", source, type(exc).__name__, exc)
        return None
    return tables
