"""elwh_nb: receive, verify, keep and analyse ElevenLabs webhooks from a Jupyter notebook.

``rx = elwh_nb.start(secret=...)`` starts a receiver in the kernel; give ElevenLabs
``rx.url`` and read ``rx.events``; :func:`send` plays ElevenLabs. Underneath, a pure core
(no network, no widgets): :func:`sign`, :func:`verify`, :func:`explain`, :func:`normalize`,
:func:`payloads` and :class:`EventStore`.
"""

from __future__ import annotations

from ._exceptions import REASONS, ElwhError, ReceiverError, SignatureError, StoreError
from ._explain import Check, Diagnosis, explain
from ._normalize import FIELDS, normalize
from ._payloads import EVENT_TYPES, REAL_TYPES, TUTORIAL_TYPES, PayloadFactory, payloads
from ._receiver import Receiver, start
from ._sender import FAULTS, send
from ._signature import construct_event, sign, verify
from ._store import Appended, EventStore, StoredPayload
from ._timings import (
    plot_delivery_lag,
    plot_durations,
    plot_events_over_time,
    plot_failures,
    plot_processing,
    timings,
)

__version__ = "0.1.0"

__all__ = [
    "EVENT_TYPES",
    "FAULTS",
    "FIELDS",
    "REAL_TYPES",
    "REASONS",
    "TUTORIAL_TYPES",
    "Appended",
    "Check",
    "Diagnosis",
    "ElwhError",
    "EventStore",
    "PayloadFactory",
    "Receiver",
    "ReceiverError",
    "SignatureError",
    "StoreError",
    "StoredPayload",
    "__version__",
    "construct_event",
    "explain",
    "normalize",
    "payloads",
    "plot_delivery_lag",
    "plot_durations",
    "plot_events_over_time",
    "plot_failures",
    "plot_processing",
    "send",
    "sign",
    "start",
    "timings",
    "verify",
]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where Jupyter finds the public hook route (enabled on install)."""
    return [{"module": "elwh_nb._serverext"}]
