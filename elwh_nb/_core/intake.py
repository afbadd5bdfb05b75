"""What a receiver does with one delivery, apart from HTTP: verify, store, or record why not.

The answer follows ElevenLabs' delivery rules: 200 once the event is verified and
committed (a repeat too), 4xx for what a retry cannot fix, 500 only when this side
failed (so ElevenLabs retries). Every rejection is recorded in the store's failures.
Each verified delivery's clock skew is measured here and followed by a :class:`.clock.ClockWatch`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import callback_urls as _callback_urls
from .bodies import parse_notice, too_large_explanation
from .callback_urls import BY_SIGNATURE, BY_URL
from .callbacks import Callbacks
from .clock import ClockWatch
from .exceptions import SignatureError, StoreError
from .explain import explain
from .inbox import Kept
from .protocol import CALLBACK_HEADER, DEFAULT_MAX_BODY, TOO_LARGE_HEADER
from .signature import SIGNATURE_HEADERS, Secret, authenticate, parse_event, secret_keys, signed_at
from .skim import BIG, skim
from .store import Appended, EventStore

#: Reasons a receiver records besides the SignatureError ones.
HTTP_REASONS = {
    "body_too_large": 413,
    "method_not_allowed": 405,
    "not_found": 404,
    "unknown_callback": 404,
    "store_error": 500,
    "receiver_error": 500,
    "outage": 503,
}
_BAD_REQUEST = {"malformed_header", "invalid_json"}

#: Where a delivery came from, or a function that says (called only when a failure is recorded).
Remote = str | Callable[[], str | None] | None


def status_for(reason: str) -> int:
    """The HTTP status a receiver answers for a failure reason."""
    if reason in HTTP_REASONS:
        return HTTP_REASONS[reason]
    return 400 if reason in _BAD_REQUEST else 401


def signature_header(headers: Mapping[str, str]) -> str | None:
    """The real header, else an older or the tutorial's name (HTTP header names are case-insensitive)."""
    for name in SIGNATURE_HEADERS:  # a case-insensitive mapping (Tornado's) answers directly
        value = headers.get(name)
        if value is not None:
            return value
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in SIGNATURE_HEADERS:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


@dataclass(frozen=True)
class Verified:
    """A delivery that verified: its parsed event, and its arrival minus its signature's time.

    A big body's event may be skimmed (``whole`` False: its long unread strings are ``""``,
    see :mod:`.skim`); it gives the same record, and callbacks get the whole event from the store.
    ``authenticated_by`` is ``"signature"``, or ``"url"`` for an unsigned request to a callback
    URL (no signature: no skew).
    """

    event: dict[str, Any]
    skew_s: float | None
    whole: bool = True
    authenticated_by: str = BY_SIGNATURE


@dataclass(frozen=True)
class Replayed:
    """What replaying a failed delivery did: ``accepted`` (as event ``event_id``), ``duplicate``
    (of event ``event_id``, already stored) or ``failed`` again (recorded as ``failure_id``)."""

    __module__ = "elwh_nb"  # shown where it is imported from (as httpx does)

    outcome: str
    replayed: int  # the failure replayed
    event_id: int | None = None
    failure_id: int | None = None
    reason: str | None = None
    explanation: str | None = None

    def __str__(self) -> str:
        if self.outcome == "failed":
            return f"failure #{self.replayed} failed again: {self.reason}: {self.explanation}"
        if self.outcome == "duplicate":
            return f"failure #{self.replayed} verified: a repeat of event #{self.event_id}, already stored"
        return f"failure #{self.replayed} verified now: stored as event #{self.event_id}"


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to one delivery."""

    status: int
    body: dict[str, Any]
    failure_id: int | None = None  # the record of a rejection (never sent)


class _Budget:
    """At most ``rate`` full explanations a second, so a flood of bad requests stays cheap."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class Intake:
    """Verifies and stores deliveries for one receiver; runs on the receiver's thread."""

    def __init__(
        self,
        secret: Secret,
        store: EventStore,
        *,
        tolerance: float | None,
        future_tolerance: float | None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        # Read once (an iterator is used up by reading), and fail now (missing_secret),
        # not on the first delivery.
        self._keys = secret_keys(secret)
        # What the kit's own sender signs with: the first secret of a rotation list.
        self.signing_secret = self._keys[0].decode("utf-8", "surrogateescape")
        self.store = store
        self.tolerance = tolerance
        self.future_tolerance = future_tolerance
        self.max_body = max_body
        self.unrecorded_failures = 0  # failures the store could not write either
        self.outage_left = 0  # deliveries still to refuse in a simulated outage
        self._explain_budget = _Budget(20)
        self.callbacks = Callbacks(store.payload)
        self.clock = ClockWatch()

    def __repr__(self) -> str:
        return f"<Intake store={self.store!r}>"

    # -- deliveries --------------------------------------------------------------------
    def check(
        self,
        body: bytes | bytearray,
        headers: Mapping[str, str],
        *,
        remote: Remote,
        path: str | None,
        kept: Kept | None = None,
        callback: tuple[str, str] | None = None,
        arrived_at: float | None = None,
    ) -> Verified | Answer:
        """The verified event and its skew, or the (recorded) rejection to answer.

        ``kept``: a delivery the public route kept while the receiver was away; its
        timestamp window and skew are measured against the time it arrived, not now (as for
        ``arrived_at``, a replayed failure's time).
        ``callback``: the ``(name, token)`` of the callback URL it came to; a right token
        authenticates a request without a signature (one with a signature must verify).
        """
        now = kept.received_ns / 1e9 if kept is not None else arrived_at
        record: dict[str, Any] = {} if now is None else {"received_at": now}
        if kept is not None:
            record["from_inbox"] = kept.id
        if self.outage_left > 0 and now is None:
            self.outage_left -= 1
            return self.reject(
                "outage",
                "A simulated outage (rx.simulate_outage): answered 503, which ElevenLabs retries.",
                headers=headers,
                body=body,
                remote=remote,
                path=path,
            )
        header = signature_header(headers)
        if callback is not None:
            if not self.callback_ok(callback):
                return self.reject(
                    "unknown_callback",
                    "A request to a callback URL whose token is not this store's (a mistyped or old "
                    "URL, a retired one, or a stranger guessing): answered 404. rx.callback_url(name) "
                    "gives the current URL.",
                    headers=headers,
                    body=body,
                    remote=remote,
                    path=path,
                    **record,
                )
            if header is None:  # authenticated by the URL's token alone
                return self._unsigned(body, headers, remote=remote, path=path, record=record)
        window = {"tolerance": self.tolerance, "future_tolerance": self.future_tolerance, "now": now}
        try:
            raw = authenticate(body, header, self._keys, **window)
            event = skim(raw) if len(raw) > BIG else None  # a call's audio is not made a string
            whole = event is None
            if event is None:
                event = parse_event(raw)
        except SignatureError as exc:
            explanation, details = str(exc), None
            if self._explain_budget.take():  # the full account, unless bad requests flood in
                diagnosis = explain(body, header, self._keys, **window)
                explanation, details = diagnosis.summary, str(diagnosis)
            return self.reject(
                exc.reason,
                explanation,
                headers=headers,
                body=body,
                remote=remote,
                path=path,
                details=details,
                **record,
            )
        assert header is not None  # it verified
        skew = (time.time() if now is None else now) - signed_at(header)
        self.clock.observe(skew)
        return Verified(event, skew, whole)

    def callback_ok(self, callback: tuple[str, str]) -> bool:
        """Whether ``(name, token)`` is one of this store's callback URLs."""
        name, token = callback
        if not _callback_urls.NAME.fullmatch(name):
            return False
        try:
            kept = self.store.callback_token(name, create=False)
        except StoreError:
            return False
        return _callback_urls.same(token, kept)

    def _unsigned(
        self,
        body: bytes | bytearray,
        headers: Mapping[str, str],
        *,
        remote: Remote,
        path: str | None,
        record: dict[str, Any],
    ) -> Verified | Answer:
        """A callback URL's request without a signature: accepted as authenticated by the URL."""
        try:
            event = skim(body) if len(body) > BIG else None
            whole = event is None
            if event is None:
                event = parse_event(body)
        except SignatureError as exc:
            explanation = str(exc).replace("The signature is valid but the body", "The body")
            return self.reject(
                exc.reason, explanation, headers=headers, body=body, remote=remote, path=path, **record
            )
        return Verified(event, None, whole, BY_URL)

    def deliver_kept(self, kept: Kept) -> None:
        """Verify and store one delivery kept while away, as if it had arrived live then.

        It leaves the inbox in the same transaction that records it. Raises
        :class:`StoreError` when the store could not take it (it stays in the inbox for the
        next try).
        """
        record: dict[str, Any] = {"received_at": kept.received_ns / 1e9, "from_inbox": kept.id}
        path = "(kept while the receiver was away)"
        notice = parse_notice(kept.headers.get(TOO_LARGE_HEADER.lower()))
        if notice is not None:  # the route refused the body; this is its record
            size, how = notice
            self.reject(
                "body_too_large",
                too_large_explanation(size, self.max_body, how, by_route=True),
                headers=kept.headers,
                remote=kept.remote,
                path=path,
                **record,
            )
            return
        callback = _callback_urls.parse_header(kept.headers.get(CALLBACK_HEADER.lower()))
        checked = self.check(
            kept.body, kept.headers, remote=kept.remote, path=path, kept=kept, callback=callback
        )
        if isinstance(checked, Answer):
            return
        result = self.store.append(
            kept.body,
            checked.event,
            received_at=record["received_at"],
            kept_while_away=True,
            from_inbox=kept.id,
            skew_s=checked.skew_s,
            authenticated_by=checked.authenticated_by,
        )
        self.stored(result, checked.event if checked.whole else None)

    def replay_failure(self, failure_id: int) -> Replayed:
        """Verify a rejected delivery again, with the secrets known now and the time window of
        when it arrived (what a wrong secret refused is accepted once the right one is given;
        a changed body or a stranger's still fails, recorded anew); store it if it verifies.

        Raises KeyError when the store does not hold that failure or its body.
        """
        failures = self.store.failures
        if failure_id not in failures.index:
            raise KeyError(f"no failure #{failure_id} is kept (rx.failures lists those that are)")
        body = self.store.failure_body(failure_id)
        failure = failures.loc[failure_id]
        arrived = failure.received_at.value / 1e9
        path = f"(replay of failure #{failure_id}, first to {failure.path})"
        checked = self.check(body, failure.headers, remote=failure.remote, path=path, arrived_at=arrived)
        if isinstance(checked, Answer):
            again = self.store.failures
            explanation = again.explanation.get(checked.failure_id, "") if checked.failure_id else ""
            return Replayed(
                "failed",
                failure_id,
                failure_id=checked.failure_id,
                reason=str(checked.body.get("reason")),
                explanation=str(explanation),
            )
        result = self.store.append(
            body,
            checked.event,
            received_at=arrived,
            skew_s=checked.skew_s,
            authenticated_by=checked.authenticated_by,
        )
        self.stored(result, checked.event if checked.whole else None)
        return Replayed("duplicate" if result.duplicate else "accepted", failure_id, event_id=result.id)

    def stored(self, result: Appended, event: dict[str, Any] | None) -> Answer:
        """The answer once an event is committed (callbacks run for new ones; with ``event``
        None, on the event read back from the store)."""
        if not result.duplicate:
            self.callbacks.notify(result.id, event)
        return Answer(200, {"ok": True, "id": result.id, "duplicate": result.duplicate})

    def store_failed(
        self,
        exc: StoreError,
        body: bytes | bytearray,
        headers: Mapping[str, str],
        *,
        remote: Remote,
        path: str | None,
    ) -> Answer:
        """A verified delivery the store could not keep: 500, so that ElevenLabs retries."""
        return self.reject(
            "store_error",
            f"The delivery verified but could not be stored ({exc}); answered 500 so "
            "that ElevenLabs retries it. Free disk space or fix the store file.",
            headers=headers,
            body=body,
            remote=remote,
            path=path,
        )

    def reject(
        self,
        reason: str,
        explanation: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | bytearray = b"",
        remote: Remote = None,
        path: str | None = None,
        details: str | None = None,
        received_at: float | None = None,
        from_inbox: int | None = None,
    ) -> Answer:
        """Record a rejected delivery and build its answer (which never echoes details)."""
        status = status_for(reason)
        failure_id = None
        try:
            failure_id = self.store.add_failure(
                reason,
                status=status,
                explanation=explanation,
                headers=headers,
                body=body,
                remote=remote() if callable(remote) else remote,
                path=path,
                details=details,
                received_at=received_at,
                from_inbox=from_inbox,
            )
        except StoreError:
            self.unrecorded_failures += 1
        return Answer(status, {"ok": False, "reason": reason}, failure_id)

    def close(self) -> None:
        self.callbacks.close()
