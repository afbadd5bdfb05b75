"""What readers get: DataFrames wrapped around column snapshots, and the lazy payload in them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .schema import Table

_UTC = pd.DatetimeTZDtype("ns", "UTC")


class StoredPayload:
    """An event's parsed body, read from the store file when used (keeps DataFrames small).

    Reads like a dict (``p["data"]``, ``p.get``, ``p.keys()``, ``dict(p)``); ``to_dict()``
    gives the whole event. It deliberately has no ``__contains__`` or ``__len__`` (``in``
    still works through ``__iter__``): pandas then prints its short repr instead of loading every
    displayed body, which for audio events is megabytes.
    """

    __module__ = "elwh_nb"  # shown where it is imported from (as httpx does)

    __slots__ = ("_store", "event_type", "id")

    def __init__(self, store: Any, event_id: int, event_type: str | None) -> None:
        self._store = store  # anything with payload(event_id) -> dict: the EventStore
        self.id = event_id
        self.event_type = event_type

    def to_dict(self) -> dict[str, Any]:
        """The whole event as a new dict."""
        parsed: dict[str, Any] = self._store.payload(self.id)
        return parsed

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def keys(self) -> Any:
        return self.to_dict().keys()

    def items(self) -> Any:
        return self.to_dict().items()

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredPayload):
            return self._store is other._store and self.id == other.id
        return isinstance(other, Mapping) and self.to_dict() == dict(other)

    def __hash__(self) -> int:
        return hash((id(self._store), self.id))

    def __repr__(self) -> str:
        return f"<{self.event_type or 'event'} #{self.id}>"


PayloadMaker = Callable[[int, "str | None"], StoredPayload]


def frame(
    table: Table,
    views: dict[str, np.ndarray[Any, Any]],
    categories: Mapping[str, pd.CategoricalDtype],
    index: str = "id",
) -> pd.DataFrame:
    """Wrap read-only views of ``table``'s columns in a DataFrame indexed by ``index`` (its
    column, which leaves the columns; ``id`` goes too), without copying."""
    ids = views.pop("id")
    keys = ids if index == "id" else views.pop(index)
    index_ = pd.Index(keys, name=index, copy=False, dtype=object if keys.dtype == object else None)
    columns: dict[str, Any] = {}
    for name, view in views.items():
        if name in categories:
            columns[name] = pd.Categorical.from_codes(view, dtype=categories[name], validate=False)
        elif name in table.times:
            columns[name] = pd.Series(view, dtype=_UTC, copy=False, index=index_)
        elif view.dtype == object:
            # dtype=object keeps pandas 3 from converting to its string dtype (an O(n) copy).
            columns[name] = pd.Series(view, dtype=object, copy=False, index=index_)
        else:
            columns[name] = pd.Series(view, copy=False, index=index_)
    return pd.DataFrame(columns, index=index_, copy=False)
