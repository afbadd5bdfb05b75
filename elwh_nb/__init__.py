"""elwh_nb: receive, verify, keep and analyse ElevenLabs webhooks from a Jupyter notebook.

``rx = elwh_nb.start(secret=...)`` starts a receiver in the kernel; give ElevenLabs
``rx.url`` and read ``rx.events``; :func:`send` plays ElevenLabs. Underneath, a pure core
(no network, no widgets): :func:`sign`, :func:`verify`, :func:`explain`, :func:`normalize`,
:func:`payloads` and :class:`EventStore`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._core.exceptions import (
    REASONS,
    CallError,
    ElwhError,
    ExportError,
    ReceiverError,
    SignatureError,
    StoreError,
    StoreInUseError,
    TunnelError,
)

# Everything else loads on first use: the Jupyter server imports this package for its
# public route on every start, and must not load pandas, numpy or widgets for it.
_LAZY = {
    "._core.analysis": ("conversations", "tool_calls", "turns"),
    "._notebook.latency": (
        "latency",
        "outcomes",
        "plot_cost_per_minute",
        "plot_latency_by_hour",
        "plot_latency_in_call",
        "plot_outcomes",
        "plot_stage_latency",
        "plot_tool_calls",
        "tool_summary",
    ),
    "._core.explain": ("Check", "Diagnosis", "explain"),
    "._core.intake": ("Replayed",),
    "._core.normalize": ("FIELDS", "normalize"),
    "._core.payloads": ("EVENT_TYPES", "REAL_TYPES", "TUTORIAL_TYPES", "PayloadFactory", "payloads"),
    "._server.hubclient": ("Connection", "connect"),
    "._server.receiver": ("Receiver", "start"),
    "._server.sender": ("FAULTS", "send"),
    "._core.signature": ("construct_event", "sign", "verify"),
    "._core.store": ("Appended", "EventStore", "StoredPayload"),
    "._notebook.timings": (
        "plot_delivery_lag",
        "plot_durations",
        "plot_events_over_time",
        "plot_failures",
        "plot_processing",
        "plot_turnaround",
        "timings",
    ),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:
    from ._core.analysis import conversations, tool_calls, turns
    from ._core.explain import Check, Diagnosis, explain
    from ._core.intake import Replayed
    from ._core.normalize import FIELDS, normalize
    from ._core.payloads import EVENT_TYPES, REAL_TYPES, TUTORIAL_TYPES, PayloadFactory, payloads
    from ._core.signature import construct_event, sign, verify
    from ._core.store import Appended, EventStore, StoredPayload
    from ._notebook.latency import (
        latency,
        outcomes,
        plot_cost_per_minute,
        plot_latency_by_hour,
        plot_latency_in_call,
        plot_outcomes,
        plot_stage_latency,
        plot_tool_calls,
        tool_summary,
    )
    from ._notebook.timings import (
        plot_delivery_lag,
        plot_durations,
        plot_events_over_time,
        plot_failures,
        plot_processing,
        plot_turnaround,
        timings,
    )
    from ._server.hubclient import Connection, connect
    from ._server.receiver import Receiver, start
    from ._server.sender import FAULTS, send

#: The version of elwh-nb.
__version__ = "0.1.0"

__all__ = [
    "EVENT_TYPES",
    "FAULTS",
    "FIELDS",
    "REAL_TYPES",
    "REASONS",
    "TUTORIAL_TYPES",
    "Appended",
    "CallError",
    "Check",
    "Connection",
    "Diagnosis",
    "ElwhError",
    "EventStore",
    "ExportError",
    "PayloadFactory",
    "Receiver",
    "ReceiverError",
    "Replayed",
    "SignatureError",
    "StoreError",
    "StoreInUseError",
    "StoredPayload",
    "TunnelError",
    "__version__",
    "connect",
    "construct_event",
    "conversations",
    "explain",
    "latency",
    "normalize",
    "outcomes",
    "payloads",
    "plot_cost_per_minute",
    "plot_delivery_lag",
    "plot_durations",
    "plot_events_over_time",
    "plot_failures",
    "plot_latency_by_hour",
    "plot_latency_in_call",
    "plot_outcomes",
    "plot_processing",
    "plot_stage_latency",
    "plot_tool_calls",
    "plot_turnaround",
    "send",
    "sign",
    "start",
    "timings",
    "tool_calls",
    "tool_summary",
    "turns",
    "verify",
]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where Jupyter finds the public hook route (enabled on install)."""
    return [{"module": "elwh_nb._server.serverext"}]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'elwh_nb' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
