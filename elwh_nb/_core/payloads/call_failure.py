"""``call_initiation_failure``: an outbound call that never connected, as SIP or Twilio report it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .base import Seeded


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")


class CallFailures(Seeded):
    """Makes ``call_initiation_failure`` events."""

    def call_initiation_failure(
        self, *, at: float | None = None, provider: str | None = None, failure_reason: str | None = None
    ) -> dict[str, Any]:
        """An outbound call that never connected, from SIP or Twilio (``provider``)."""
        rng = self._rng
        sent = self._at(at)
        provider = provider or rng.choice(("sip", "twilio"))
        reason = failure_reason or rng.choice(("busy", "no-answer", "unknown"))
        agent_id, _ = rng.choice(self._agents)
        caller, callee = self._phone(), self._phone()
        call_sid = self._id("CA", 32, "0123456789abcdef")
        body: dict[str, Any]
        if provider == "sip":
            code, text = {"busy": (486, "Busy Here"), "no-answer": (480, "Temporarily Unavailable")}.get(
                reason, (500, "Server Internal Error")
            )
            body = {
                "from_number": caller,
                "to_number": callee,
                "sip_status_code": code,
                "error_reason": text,
                "call_sid": call_sid,
                "twirp_code": "unavailable" if reason != "busy" else "resource_exhausted",
                "sip_status": text,
            }
        elif provider == "twilio":
            body = {
                "Called": callee,
                "ToState": "CA",
                "CallerCountry": "US",
                "Direction": "outbound-api",
                "Timestamp": _iso(sent - rng.uniform(1, 5)),
                "CallbackSource": "call-progress-events",
                "SipResponseCode": {"busy": "486", "no-answer": "487"}.get(reason, "500"),
                "CallerState": "NY",
                "ToZip": "",
                "SequenceNumber": "2",
                "CallSid": call_sid,
                "To": callee,
                "CallerZip": "",
                "CallStatus": {"busy": "busy", "no-answer": "no-answer"}.get(reason, "failed"),
                "ToCountry": "US",
                "CallDuration": "0",
                "ApiVersion": "2010-04-01",
                "Caller": caller,
                "AccountSid": self._id("AC", 32, "0123456789abcdef"),
                "From": caller,
                "Duration": "0",
            }
        else:
            raise ValueError(f"provider must be 'sip' or 'twilio', not {provider!r}")
        return self._envelope(
            "call_initiation_failure",
            sent,
            {
                "agent_id": agent_id,
                "conversation_id": self._id("conv_", 26),
                "failure_reason": reason,
                "metadata": {"type": provider, "body": body},
            },
        )
