"""Category codes: one column of a :class:`Columns` holds small integer codes into names.

Events keep their type this way and failures their reason, so that a million rows cost a
byte each and the DataFrame column is a pandas Categorical built without copying.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .columns import Columns


def code_dtype(n_categories: int) -> type[np.signedinteger[Any]]:
    """The codes dtype pandas itself picks, so that ``from_codes`` need not copy."""
    if n_categories < 127:
        return np.int8
    if n_categories < 32767:
        return np.int16
    return np.int32


class Codes:
    """Names in first-seen order and their codes, for column ``name`` of ``columns``.

    The column is widened (int8, int16, int32) as names grow, as pandas would; the
    CategoricalDtype is made once per set of names. Callers hold the store's lock.
    """

    def __init__(self, columns: Columns, name: str) -> None:
        self._columns = columns
        self._name = name
        self.names: list[str] = []
        self._codes: dict[str, int] = {}
        self._dtype: pd.CategoricalDtype | None = None

    def code(self, name: str | None) -> int:
        """The code of ``name`` (-1, pandas' missing value, for None), made on first sight."""
        if name is None:
            return -1
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self.names)
            self.names.append(name)
            self._dtype = None
            if len(self.names) in (127, 32767):
                self._columns.retype(self._name, code_dtype(len(self.names)))
        return code

    def dtype(self) -> pd.CategoricalDtype:
        """The categories so far, as a dtype (the same object until a name is added)."""
        if self._dtype is None:
            self._dtype = pd.CategoricalDtype(list(self.names))
        return self._dtype
