"""elwh_nb: receive, verify, keep and analyse ElevenLabs webhooks from a Jupyter notebook.

The pure core (no network, no widgets): :func:`sign`, :func:`verify`, :func:`explain`,
:func:`normalize`, :func:`payloads` and :class:`EventStore`.
"""

from __future__ import annotations

from ._exceptions import REASONS, ElwhError, SignatureError, StoreError
from ._explain import Check, Diagnosis, explain
from ._normalize import FIELDS, normalize
from ._payloads import EVENT_TYPES, REAL_TYPES, TUTORIAL_TYPES, PayloadFactory, payloads
from ._signature import construct_event, sign, verify
from ._store import Appended, EventStore, StoredPayload

__version__ = "0.1.0"

__all__ = [
    "EVENT_TYPES",
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
    "SignatureError",
    "StoreError",
    "StoredPayload",
    "__version__",
    "construct_event",
    "explain",
    "normalize",
    "payloads",
    "sign",
    "verify",
]
