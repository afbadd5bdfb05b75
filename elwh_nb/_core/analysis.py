"""``turns()``, ``tool_calls()`` and ``conversations()`` of anything that holds events.

A store, a receiver or a hub connection already keeps these frames (derived as each event
was stored; see :mod:`.derived`): they are returned as they are. An events frame (with its
``payload`` column, filtered or not) or a list of events or bodies is derived on the spot,
through a store in memory, so it gives exactly the rows a store would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from .frames import StoredPayload
from .store import EventStore

__all__ = ["conversations", "tool_calls", "turns"]


def _body(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, StoredPayload):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return json.dumps(dict(value)).encode()
    raise TypeError(
        f"an event is a dict, a body (bytes or str) or a stored payload, not {type(value).__name__}"
    )


def _store(events: Any) -> Any:
    """What has the frames: ``events`` itself, or a store in memory holding its events."""
    if hasattr(events, "turns") and hasattr(events, "conversations"):
        return events
    store = EventStore(":memory:")
    if isinstance(events, pd.DataFrame):
        if "payload" not in events.columns:
            raise ValueError("an events frame needs its payload column (as rx.events has)")
        times = events["received_at"] if "received_at" in events.columns else None
        for i, payload in enumerate(events["payload"]):
            at = None if times is None or pd.isna(times.iloc[i]) else times.iloc[i].value / 1e9
            store.append(_body(payload), received_at=at)
        return store
    if isinstance(events, (Mapping, bytes, bytearray, str)):
        events = [events]
    if not isinstance(events, Iterable):
        raise TypeError(f"give a store, a receiver, an events frame or events, not {type(events).__name__}")
    store.append_many([_body(e) for e in events])
    return store


def turns(events: Any) -> pd.DataFrame:
    """One row per transcript turn (see :attr:`EventStore.turns`) of a store, a receiver, a hub
    connection, an events frame (``rx.events[...]``), or a list of events or bodies."""
    return _store(events).turns


def tool_calls(events: Any) -> pd.DataFrame:
    """One row per tool call joined to its result (see :attr:`EventStore.tool_calls`), of the same."""
    return _store(events).tool_calls


def conversations(events: Any) -> pd.DataFrame:
    """One row per conversation (see :attr:`EventStore.conversations`), of the same."""
    return _store(events).conversations
