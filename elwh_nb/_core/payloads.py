"""A seeded factory of realistic ElevenLabs webhook events, for people without an account.

Every real type from ElevenLabs' documentation, plus the tutorial's two invented types.
Times are consistent: a call starts, lasts, ends, is analysed, and only then is the
event sent (``event_timestamp``). The same seed and ``now`` give the same events.
"""

from __future__ import annotations

import base64
import inspect
import json
import random
import string
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

#: Event types ElevenLabs sends today (shapes of the voice-removal ones are not confirmed).
REAL_TYPES: tuple[str, ...] = (
    "post_call_transcription",
    "post_call_audio",
    "call_initiation_failure",
    "speech_to_text_transcription",
    "voice_removal_notice",
    "voice_removal_notice_withdrawn",
    "voice_removed",
)
#: The invented types of the tutorial chapter (``event_type``/``timestamp`` at top level).
TUTORIAL_TYPES: tuple[str, ...] = ("speech.completed", "voice.created")
EVENT_TYPES: tuple[str, ...] = REAL_TYPES + TUTORIAL_TYPES

# A mix resembling an agents-platform workspace: mostly transcriptions.
_DEFAULT_WEIGHTS: dict[str, float] = {
    "post_call_transcription": 10,
    "post_call_audio": 3,
    "call_initiation_failure": 2,
    "speech_to_text_transcription": 4,
    "voice_removal_notice": 0.5,
    "voice_removal_notice_withdrawn": 0.2,
    "voice_removed": 0.3,
}

_ALNUM = string.ascii_lowercase + string.digits
_AGENTS = ("Support Agent", "Booking Assistant", "Survey Bot")
_NAMES = ("Ana", "José", "Zoë", "Kenji", "Priya", "Oluwaseun", "Marie", "Liam")
_AGENT_LINES = (
    "Hello {name}, thanks for calling. How can I help you today?",
    "Let me look that up for you, one moment please.",
    "I can see your booking for {day} at {hour}. Would you like to change it?",
    "Of course. I have moved it to {day} at {hour}. Is there anything else?",
    "I understand. I'll pass this on to our team and someone will call you back.",
    "Your reference number is {ref}. You'll also get it by email.",
    "Could you confirm the email address on your account?",
    "Thanks for your patience. The refund was issued and takes three to five days.",
    "Is there anything else I can help you with today?",
    "Thank you for calling, {name}. Have a lovely day!",
)
_USER_LINES = (
    "Hi, I'd like to change my appointment.",
    "Yes, it's {name}, {name_lower}@example.com.",
    "Can we do {day} instead? Maybe around {hour}?",
    "I was charged twice for my last order.",
    "Hmm, I'm not sure. Let me check my calendar.",
    "That works, thank you.",
    "No, that's everything. Thanks!",
    "Sorry, could you repeat that?",
    "I've been waiting for a call back since Monday.",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_TERMINATIONS = (
    "end_call tool was called.",
    "Client disconnected: 1000",
    "Call ended by remote party",
    "Max duration exceeded",
)
_STT_TEXTS = (
    "Welcome back to the show. Today we're talking about how small teams ship fast.",
    "Please leave a message after the tone and we will get back to you shortly.",
    "The quarterly numbers look good, but churn in the enterprise segment is up.",
    "Bonjour à tous, merci d'être venus si nombreux ce soir.",
)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")


def to_body(event: Mapping[str, Any]) -> bytes:
    """Serialise an event as ElevenLabs sends it: compact UTF-8 JSON."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class PayloadFactory:
    """Makes realistic events; one method per event type, plus :meth:`make` and :meth:`batch`.

    ``at`` (unix seconds) is when an event is sent; it defaults to ``now`` (fixed at
    construction when given, else the clock). Everything else comes from ``seed``.
    """

    types: tuple[str, ...] = EVENT_TYPES

    def __init__(self, seed: int | None = 0, *, now: float | None = None) -> None:
        self._rng = random.Random(seed)
        self._now = now
        self._agents = [
            (self._id("agent_", 26), name) for name in _AGENTS
        ]  # a small pool, so grouping by agent means something
        self._voices = [self._voice_id() for _ in range(4)]

    # -- ids and small helpers ---------------------------------------------------------
    def _id(self, prefix: str, n: int, alphabet: str = _ALNUM) -> str:
        return prefix + "".join(self._rng.choice(alphabet) for _ in range(n))

    def _voice_id(self) -> str:
        return self._id("", 20, string.ascii_letters + string.digits)

    def _phone(self) -> str:
        return "+1" + "".join(self._rng.choice(string.digits) for _ in range(10))

    def _at(self, at: float | None) -> float:
        if at is not None:
            return float(at)
        return self._now if self._now is not None else time.time()

    def _envelope(self, event_type: str, sent: float, data: dict[str, Any]) -> dict[str, Any]:
        return {"type": event_type, "event_timestamp": int(sent), "data": data}

    # -- agents platform ---------------------------------------------------------------
    def _call_times(self, sent: float, duration: float) -> tuple[int, int]:
        """(start, accepted) so that start + duration + analysis time == sent."""
        analysis = self._rng.uniform(2.0, 25.0)  # post-call processing
        start = int(sent - analysis - duration)
        return start, start + self._rng.randint(0, 2)

    def _transcript(self, turns: int, name: str) -> tuple[list[dict[str, Any]], float]:
        rng = self._rng
        words = {
            "name": name,
            "name_lower": name.lower().replace("é", "e").replace("ë", "e"),
            "day": rng.choice(_DAYS),
            "hour": f"{rng.randint(9, 17)}:{rng.choice(('00', '15', '30', '45'))}",
            "ref": self._id("", 8, string.ascii_uppercase + string.digits),
        }
        out: list[dict[str, Any]] = []
        clock = 0.0
        for i in range(turns):
            agent = i % 2 == 0
            line = rng.choice(_AGENT_LINES if agent else _USER_LINES).format(**words)
            if i == turns - 1 and agent:
                line = _AGENT_LINES[-1].format(**words)
            turn: dict[str, Any] = {
                "role": "agent" if agent else "user",
                "agent_metadata": {"agent_id": "", "workflow_node_id": None} if agent else None,
                "message": line,
                "multivoice_message": None,
                "tool_calls": [],
                "tool_results": [],
                "feedback": None,
                "llm_override": None,
                "time_in_call_secs": int(clock),
                "conversation_turn_metrics": (
                    {
                        "metrics": {
                            "convai_llm_service_ttfb": {"elapsed_time": round(rng.uniform(0.2, 0.9), 3)},
                            "convai_llm_service_ttf_sentence": {
                                "elapsed_time": round(rng.uniform(0.4, 1.6), 3)
                            },
                            "convai_tts_service_ttfb": {"elapsed_time": round(rng.uniform(0.1, 0.4), 3)},
                        }
                    }
                    if agent and i
                    else None
                ),
                "rag_retrieval_info": None,
                "llm_usage": (
                    {
                        "model_usage": {
                            "gpt-4o-mini": {"input": {"tokens": rng.randint(800, 4000), "price": 0.0}}
                        }
                    }
                    if agent
                    else None
                ),
                "interrupted": rng.random() < 0.05,
                "original_message": None,
                "source_medium": "audio",
            }
            if agent and i and rng.random() < 0.15:
                call_id = self._id("toolu_", 24)
                turn["tool_calls"] = [
                    {
                        "type": "webhook",
                        "request_id": call_id,
                        "tool_name": "lookup_booking",
                        "params_as_json": json.dumps({"reference": words["ref"]}),
                        "tool_has_been_called": True,
                        "tool_details": None,
                    }
                ]
                turn["tool_results"] = [
                    {
                        "request_id": call_id,
                        "tool_name": "lookup_booking",
                        "result_value": json.dumps({"found": True, "day": words["day"]}),
                        "is_error": False,
                        "tool_has_been_called": True,
                        "tool_latency_secs": round(rng.uniform(0.1, 1.2), 3),
                        "type": "webhook",
                    }
                ]
            out.append(turn)
            clock += len(line) / 14.0 + rng.uniform(0.5, 3.0)  # speaking time plus a pause
        return out, clock + rng.uniform(1.0, 6.0)

    def post_call_transcription(
        self, *, at: float | None = None, turns: int | None = None, successful: bool | None = None
    ) -> dict[str, Any]:
        """A finished agent call with its transcript (tens of KB), metadata and analysis."""
        rng = self._rng
        sent = self._at(at)
        agent_id, agent_name = rng.choice(self._agents)
        conversation_id = self._id("conv_", 26)
        name = rng.choice(_NAMES)
        transcript, duration = self._transcript(turns if turns is not None else rng.randint(8, 40), name)
        for turn in transcript:
            if turn["agent_metadata"] is not None:
                turn["agent_metadata"]["agent_id"] = agent_id
        start, accepted = self._call_times(sent, duration)
        if successful is None:
            successful = rng.random() < 0.8
        phone = rng.random() < 0.5
        data = {
            "agent_id": agent_id,
            "agent_name": agent_name,
            "conversation_id": conversation_id,
            "status": "done",
            "user_id": self._id("", 28, string.ascii_letters + string.digits),
            "branch_id": self._id("agtbrch_", 26),
            "version_id": self._id("agtvrsn_", 26),
            "environment": "production",
            "has_audio": True,
            "has_user_audio": True,
            "has_response_audio": True,
            "transcript": transcript,
            "metadata": {
                "start_time_unix_secs": start,
                "accepted_time_unix_secs": accepted,
                "call_duration_secs": round(duration),
                "cost": int(duration * rng.uniform(8, 12)),
                "deletion_settings": {
                    "deletion_time_unix_secs": None,
                    "deleted_logs_at_time_unix_secs": None,
                    "deleted_audio_at_time_unix_secs": None,
                    "deleted_transcript_at_time_unix_secs": None,
                    "delete_transcript_and_pii": False,
                    "delete_audio": False,
                },
                "feedback": {"overall_score": None, "likes": 0, "dislikes": 0},
                "authorization_method": "signed_url" if not phone else "public",
                "charging": {"dev_discount": False, "tier": "pro", "llm_price": round(duration * 1e-4, 6)},
                "phone_call": (
                    {
                        "direction": rng.choice(("inbound", "outbound")),
                        "phone_number_id": self._id("phnum_", 26),
                        "agent_number": self._phone(),
                        "external_number": self._phone(),
                        "type": "twilio",
                        "stream_sid": self._id("MZ", 32, "0123456789abcdef"),
                        "call_sid": self._id("CA", 32, "0123456789abcdef"),
                    }
                    if phone
                    else None
                ),
                "termination_reason": rng.choice(_TERMINATIONS),
                "error": None,
                "main_language": "en",
                "rag_usage": None,
                "text_only": False,
            },
            "analysis": {
                "evaluation_criteria_results": {
                    "issue_resolved": {
                        "criteria_id": "issue_resolved",
                        "result": "success" if successful else "failure",
                        "rationale": (
                            f"The agent resolved {name}'s request and confirmed the change."
                            if successful
                            else f"{name}'s issue was passed on without a resolution."
                        ),
                    }
                },
                "data_collection_results": {
                    "customer_name": {
                        "data_collection_id": "customer_name",
                        "value": name,
                        "json_schema": {
                            "type": "string",
                            "description": "The caller's first name",
                            "dynamic_variable": "",
                            "constant_value": "",
                        },
                        "rationale": f"The caller introduced themselves as {name}.",
                    }
                },
                "call_successful": "success" if successful else "failure",
                "transcript_summary": (
                    f"{name} called {agent_name} about a booking. "
                    + (
                        "The agent found the booking, moved it and confirmed by email."
                        if successful
                        else "The agent could not resolve it and promised a call back."
                    )
                ),
            },
            "conversation_initiation_client_data": {
                "conversation_config_override": {
                    "agent": {"prompt": None, "first_message": None, "language": "en"},
                    "tts": {"voice_id": None},
                },
                "custom_llm_extra_body": {},
                "dynamic_variables": {
                    "user_name": name,
                    "system__agent_id": agent_id,
                    "system__conversation_id": conversation_id,
                    "system__caller_id": self._phone() if phone else None,
                    "system__call_duration_secs": round(duration),
                    "system__time_utc": datetime.fromtimestamp(start, tz=timezone.utc).isoformat(),
                },
            },
        }
        return self._envelope("post_call_transcription", sent, data)

    def post_call_audio(self, *, at: float | None = None, audio_bytes: int | None = None) -> dict[str, Any]:
        """A call's full audio as base64 MP3; ``audio_bytes`` is the MP3's size (default: by duration)."""
        rng = self._rng
        sent = self._at(at)
        duration = rng.uniform(20, 300)
        size = audio_bytes if audio_bytes is not None else int(duration * 4000)  # 32 kbit/s mono
        header = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x50\xc4"
        mp3 = (header + rng.randbytes(max(0, size - len(header))))[:size]
        agent_id, _ = rng.choice(self._agents)
        return self._envelope(
            "post_call_audio",
            sent,
            {
                "agent_id": agent_id,
                "conversation_id": self._id("conv_", 26),
                "full_audio": base64.b64encode(mp3).decode("ascii"),
            },
        )

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

    def speech_to_text_transcription(
        self,
        *,
        at: float | None = None,
        request_id: str | None = None,
        submitted_at: float | None = None,
        webhook_metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An asynchronous speech-to-text result (``webhook=true``), with word timings."""
        rng = self._rng
        sent = self._at(at)
        text = rng.choice(_STT_TEXTS)
        words: list[dict[str, Any]] = []
        clock = rng.uniform(0.1, 0.6)
        for i, word in enumerate(text.split(" ")):
            if i:
                words.append(
                    {
                        "text": " ",
                        "start": round(clock, 3),
                        "end": round(clock + 0.05, 3),
                        "type": "spacing",
                        "speaker_id": "speaker_0",
                        "logprob": 0.0,
                    }
                )
                clock += 0.05
            length = 0.08 * len(word) + rng.uniform(0.05, 0.2)
            words.append(
                {
                    "text": word,
                    "start": round(clock, 3),
                    "end": round(clock + length, 3),
                    "type": "word",
                    "speaker_id": "speaker_0",
                    "logprob": round(-rng.uniform(0, 0.6), 3),
                }
            )
            clock += length
        french = text.startswith("Bonjour")
        if submitted_at is None:
            submitted_at = sent - clock * rng.uniform(0.3, 1.5) - rng.uniform(1, 8)
        metadata = (
            dict(webhook_metadata)
            if webhook_metadata is not None
            else {
                "source": "notebook",
                "submitted_at_unix": round(submitted_at, 3),
            }
        )
        return self._envelope(
            "speech_to_text_transcription",
            sent,
            {
                "request_id": request_id or self._id("", 32, "0123456789abcdef"),
                "transcription": {
                    "language_code": "fra" if french else "eng",
                    "language_probability": round(rng.uniform(0.9, 1.0), 4),
                    "text": text,
                    "words": words,
                },
                "webhook_metadata": metadata,
            },
        )

    def _voice(self, event_type: str, at: float | None, extra: dict[str, Any]) -> dict[str, Any]:
        sent = self._at(at)
        data: dict[str, Any] = {
            "voice_id": self._rng.choice(self._voices),
            "voice_name": self._rng.choice(_NAMES) + " (shared)",
        }
        data.update(extra)
        return self._envelope(event_type, sent, data)

    def voice_removal_notice(self, *, at: float | None = None) -> dict[str, Any]:
        """A shared voice you use is scheduled for removal (data shape not confirmed)."""
        sent = self._at(at)
        return self._voice(
            "voice_removal_notice",
            sent,
            {
                "removal_scheduled_unix_secs": int(sent) + 30 * 86400,
                "reason": "The voice owner has removed this voice from the Voice Library.",
            },
        )

    def voice_removal_notice_withdrawn(self, *, at: float | None = None) -> dict[str, Any]:
        """A scheduled removal was withdrawn (data shape not confirmed)."""
        return self._voice("voice_removal_notice_withdrawn", at, {})

    def voice_removed(self, *, at: float | None = None) -> dict[str, Any]:
        """A shared voice was removed and no longer works (data shape not confirmed)."""
        sent = self._at(at)
        return self._voice("voice_removed", sent, {"removed_at_unix_secs": int(sent)})

    # -- the tutorial's invented events ------------------------------------------------
    def speech_completed(self, *, at: float | None = None, job_id: str | None = None) -> dict[str, Any]:
        """The tutorial's ``speech.completed``: top-level ``event_type``, ``id``, ``timestamp``."""
        return {
            "event_type": "speech.completed",
            "id": job_id or self._id("", 6),
            "project_id": self._id("proj", 3, string.digits),
            "status": "completed",
            "timestamp": int(self._at(at)),
        }

    def voice_created(self, *, at: float | None = None) -> dict[str, Any]:
        """The tutorial's ``voice.created``."""
        return {
            "event_type": "voice.created",
            "id": self._voice_id(),
            "project_id": self._id("proj", 3, string.digits),
            "status": "created",
            "timestamp": int(self._at(at)),
        }

    # -- many at once ------------------------------------------------------------------
    def _maker(self, event_type: str) -> Callable[..., dict[str, Any]]:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
        method: Callable[..., dict[str, Any]] = getattr(self, event_type.replace(".", "_"))
        return method

    def make(self, event_type: str, **options: Any) -> dict[str, Any]:
        """One event of ``event_type`` (a real or tutorial type name)."""
        return self._maker(event_type)(**options)

    def iter_events(
        self,
        n: int,
        *,
        types: Sequence[str] | Mapping[str, float] | None = None,
        span_s: float = 3600.0,
        end: float | None = None,
        **options: Any,
    ) -> Iterator[dict[str, Any]]:
        """``n`` events in time order, spread over the ``span_s`` seconds before ``end``.

        ``types`` is a list (equal weights) or a mapping of type to weight; the default
        is a realistic mix of the real types. ``options`` go to every maker that takes them.
        """
        if isinstance(types, Mapping):
            weights = dict(types)
        elif types is not None:
            weights = dict.fromkeys(types, 1.0)
        else:
            weights = dict(_DEFAULT_WEIGHTS)
        names = list(weights)
        for name in names:
            self._maker(name)
        last = self._at(end)
        stamps = sorted(last - self._rng.uniform(0, span_s) for _ in range(n))
        for sent, event_type in zip(
            stamps, self._rng.choices(names, weights=list(weights.values()), k=n), strict=True
        ):
            yield self.make(event_type, at=sent, **_accepted(self._maker(event_type), options))

    def batch(self, n: int, **kwargs: Any) -> list[dict[str, Any]]:
        """A list of :meth:`iter_events`."""
        return list(self.iter_events(n, **kwargs))

    body = staticmethod(to_body)


def _accepted(method: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    params = inspect.signature(method).parameters
    return {k: v for k, v in options.items() if k in params}


def payloads(seed: int | None = 0, *, now: float | None = None) -> PayloadFactory:
    """A :class:`PayloadFactory`: ``elwh_nb.payloads(seed=1).post_call_transcription()``."""
    return PayloadFactory(seed, now=now)
