"""Every error the kit raises on purpose, in one tree.

    ElwhError                 base class: ``except elwh_nb.ElwhError`` catches all of them
     ├── SignatureError       (also a ValueError) a delivery failed verification;
     │                        ``.reason`` says which check, ``str()`` says what to do
     ├── StoreError           the event store could not read or write its file; a receiver
     │   │                    answers 500 for it so that ElevenLabs retries the delivery
     │   └── InboxRefused     (internal) the public route's inbox could not keep a delivery
     │                        while the receiver was away: full, or unwritable; answered 503
     ├── ExportError          an export could not be made (pyarrow missing, or the
     │                        directory holds another store's history)
     ├── ReceiverError        a receiver could not start (port in use, bad address) or
     │   │                    was used after stop()
     │   ├── StoreInUseError  the store already has a live receiver (another kernel's):
     │   │                    shown in a notebook as one line that names it, no traceback
     │   └── TunnelError      ``start(tunnel=...)`` could not set the tunnel up (a bad
     │                        address, no ssh, or it failed at once)
     └── CallError            a tool or initiation call cannot be answered as asked
                              (``.status``: 400 for the caller's parameters, 500 for
                              what the notebook's function returned)

Reasons of ``SignatureError`` (``elwh_nb.REASONS``), in the order the checks run:
``missing_secret``, ``missing_header``, ``malformed_header``, ``timestamp_expired``,
``timestamp_in_future``, ``signature_mismatch``, ``invalid_json``.
"""

from __future__ import annotations

#: Why a delivery failed verification: the ``reason`` of a :class:`SignatureError` and of a failure record.
REASONS: tuple[str, ...] = (
    "missing_secret",
    "missing_header",
    "malformed_header",
    "timestamp_expired",
    "timestamp_in_future",
    "signature_mismatch",
    "invalid_json",
)


class ElwhError(Exception):
    """Base class of every error elwh_nb raises on purpose."""


class SignatureError(ElwhError, ValueError):
    """A delivery failed verification; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown SignatureError reason {reason!r}")
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[SignatureError], tuple[str, str]]:
        # Keep `reason` across pickling (multiprocessing, nbclient).
        return (type(self), (self.reason, str(self)))


class StoreError(ElwhError):
    """The event store could not write or read its SQLite file."""


class InboxRefused(StoreError):
    """The inbox could not keep a delivery: full (``full``), or its file cannot be written.
    The public route answers 503, which ElevenLabs retries."""

    def __init__(self, why: str, *, full: bool) -> None:
        super().__init__(why)
        self.full = full


class ExportError(ElwhError):
    """An export could not be made (pyarrow missing, or the directory holds another history)."""


class ReceiverError(ElwhError):
    """A receiver could not start, or was used after ``stop()``."""


class StoreInUseError(ReceiverError):
    """The store already has a live receiver, in another kernel or process (the message names it)."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows what this returns instead of the traceback: the cause is the user's
        # other kernel, not a line of their code, and the message says what to do.
        return [f"StoreInUseError: {self}"]


class TunnelError(ReceiverError):
    """``start(tunnel=...)`` could not set the tunnel up (a bad ``tunnel=``, no ssh, or it failed at once)."""


class CallError(ElwhError, ValueError):
    """A tool call or call-start request that cannot be answered; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type[CallError], tuple[int, str]]:
        return (type(self), (self.status, str(self)))


# The public ones are shown where they are imported from (``elwh_nb.StoreError``), as httpx does.
for _error in (
    ElwhError,
    SignatureError,
    StoreError,
    ExportError,
    ReceiverError,
    StoreInUseError,
    TunnelError,
    CallError,
):
    _error.__module__ = "elwh_nb"
