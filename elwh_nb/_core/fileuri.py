"""The SQLite URI of a store file: quoted, so ``#``, ``?`` and ``%`` in a path stay part of its name."""

from __future__ import annotations

import os
from urllib.parse import quote


def file_uri(path: str | os.PathLike[str], mode: str) -> str:
    """``file:<path>?mode=<mode>`` for ``sqlite3.connect(..., uri=True)`` (``ro``, ``rw``: never creates)."""
    return f"file:{quote(os.fspath(path))}?mode={mode}"
