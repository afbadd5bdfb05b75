"""The agents platform's post-call events: ``post_call_transcription`` and ``post_call_audio``."""

from __future__ import annotations

import base64
import json
import string
from datetime import datetime, timezone
from typing import Any

from .transcript import Transcripts

MAX_DURATION_S = 600  # an agent's default limit: a call that long ends "Max duration exceeded"
# One agent still being tried out, so the environment column has something to filter on.
_ENVIRONMENTS = {"Survey Bot": "staging"}


class ConversationEvents(Transcripts):
    """A finished call: its transcript, metadata and analysis; or its audio."""

    def _call_times(self, sent: float, duration: float) -> tuple[int, int]:
        """(start, accepted) so that start + duration + analysis time == sent."""
        analysis = self._rng.uniform(2.0, 25.0)  # post-call processing
        start = int(sent - analysis - duration)
        return start, start + self._rng.randint(0, 2)

    def _charging(self, transcript: list[dict[str, Any]], duration: float) -> dict[str, Any]:
        """What the call cost: its LLM tokens by model (priced), the LLM's and the call's credits."""
        models: dict[str, dict[str, int]] = {}
        for turn in transcript:
            for model, use in ((turn.get("llm_usage") or {}).get("model_usage") or {}).items():
                totals = models.setdefault(model, {"input": 0, "output_total": 0})
                for kind in totals:
                    totals[kind] += use.get(kind, {}).get("tokens", 0)
        price = {kind: rate for kind, rate in (("input", 1.5e-7), ("output_total", 6e-7))}
        usage = {
            model: {kind: {"tokens": n, "price": round(n * price[kind], 8)} for kind, n in totals.items()}
            for model, totals in models.items()
        }
        llm_price = sum(v["price"] for kinds in usage.values() for v in kinds.values())
        llm_charge = int(llm_price * 1000) + self._rng.randint(0, 3)
        call_charge = int(duration * self._rng.uniform(8, 12))
        return {
            "dev_discount": False,
            "tier": "pro",
            "llm_price": round(llm_price, 6),
            "llm_charge": llm_charge,
            "call_charge": call_charge,
            "free_minutes_consumed": 0.0,
            "free_llm_dollars_consumed": 0.0,
            "llm_usage": {
                "irreversible_generation": {"model_usage": usage},
                "initiated_generation": {"model_usage": {}},
            },
        }

    def post_call_transcription(
        self,
        *,
        at: float | None = None,
        turns: int | None = None,
        successful: bool | None = None,
        failed: bool | None = None,
    ) -> dict[str, Any]:
        """A finished agent call with its transcript (tens of KB), metadata and analysis.

        ``failed`` (about one call in 30): the call failed, as real failed calls arrive (no
        turns, an error object, ``call_successful`` unknown, nothing charged).
        """
        rng = self._rng
        call = self._call(at, turns, (8, 40), successful)
        sent, agent_id, agent_name, conversation_id = (
            call.sent,
            call.agent_id,
            call.agent_name,
            call.conversation_id,
        )
        name, transcript, duration, successful = (
            call.caller,
            call.transcript,
            call.duration,
            call.intent.successful,
        )
        if failed is None:
            failed = turns is None and rng.random() < 1 / 30
        start, accepted = self._call_times(sent, duration)
        if failed:
            return self._failed_call(sent, agent_id, agent_name, conversation_id, start)
        phone = rng.random() < 0.5
        user_id = self._id("", 28, string.ascii_letters + string.digits)
        branch_id = self._id("agtbrch_", 26)
        environment = _ENVIRONMENTS.get(agent_name, "production")
        charging = self._charging(transcript, duration)
        termination = self._termination(call)
        if termination.startswith("end_call"):
            self._end_call(transcript)
        data = {
            "agent_id": agent_id,
            "agent_name": agent_name,
            "conversation_id": conversation_id,
            "status": "done",
            "user_id": user_id,
            "branch_id": branch_id,
            "version_id": self._id("agtvrsn_", 26),
            "environment": environment,
            "has_audio": True,
            "has_user_audio": True,
            "has_response_audio": True,
            "transcript": transcript,
            "metadata": {
                "start_time_unix_secs": start,
                "accepted_time_unix_secs": accepted,
                "call_duration_secs": round(duration),
                "cost": charging["llm_charge"] + charging["call_charge"],
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
                "charging": charging,
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
                "termination_reason": termination,
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
                    },
                    "polite_tone": {
                        "criteria_id": "polite_tone",
                        "result": "success" if rng.random() < 0.93 else "failure",
                        "rationale": "The agent kept a courteous tone throughout.",
                    },
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
                    },
                    "wants_callback": {
                        "data_collection_id": "wants_callback",
                        "value": not successful,
                        "json_schema": {"type": "boolean", "description": "Asked to be called back"},
                        "rationale": "",
                    },
                },
                "call_successful": "success" if successful else "failure",
                "call_summary_title": call.intent.title if call.ended else "Caller hung up",
                "transcript_summary": f"{name} called {agent_name}. "
                + call.intent.summary.format(**call.words)
                + ("" if call.ended else " The caller hung up before the end of the call."),
            },
            "conversation_initiation_client_data": {
                "conversation_config_override": {
                    "agent": {"prompt": None, "first_message": None, "language": "en"},
                    "tts": {"voice_id": None},
                },
                "custom_llm_extra_body": {},
                "branch_id": branch_id,
                "environment": environment,
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

    def _termination(self, call: Any) -> str:
        """How a call ended, as its length and last words say."""
        if call.duration >= MAX_DURATION_S:
            return "Max duration exceeded"
        if not call.ended:
            return "Client disconnected: 1000"  # the caller hung up
        return "end_call tool was called." if self._rng.random() < 0.75 else "Call ended by remote party"

    def _end_call(self, transcript: list[dict[str, Any]]) -> None:
        """The last agent turn ends the call with the end_call system tool."""
        last = next((t for t in reversed(transcript) if t["role"] == "agent"), None)
        if last is None or last["tool_calls"]:
            return
        call_id = self._id("toolu_", 24)
        last["tool_calls"] = [
            {
                "type": "system",
                "request_id": call_id,
                "tool_name": "end_call",
                "params_as_json": json.dumps({"reason": "The caller has nothing else."}),
                "tool_has_been_called": True,
                "tool_details": None,
            }
        ]
        last["tool_results"] = [
            {
                "request_id": call_id,
                "tool_name": "end_call",
                "result_value": json.dumps({"status": "success", "message": "Call ended"}),
                "is_error": False,
                "tool_has_been_called": True,
                "tool_latency_secs": round(self._rng.uniform(0.001, 0.01), 4),
                "dynamic_variable_updates": [],
                "type": "system",
                "result": {"result_type": "end_call_success", "status": "success"},
            }
        ]

    def _failed_call(
        self, sent: float, agent_id: str, agent_name: str, conversation_id: str, start: int
    ) -> dict[str, Any]:
        """A call that failed, as captures show it."""
        reason = self._rng.choice(
            ("LLM request failed: upstream timeout", "Audio stream closed unexpectedly")
        )
        data: dict[str, Any] = {
            "agent_id": agent_id,
            "agent_name": agent_name,
            "conversation_id": conversation_id,
            "status": "failed",
            "user_id": None,
            "transcript": [],
            "metadata": {
                "start_time_unix_secs": start,
                "call_duration_secs": 0,
                "cost": 0,
                "termination_reason": "",
                "error": {"code": 1011, "reason": reason},
                "phone_call": None,
                "warnings": [],
                "main_language": "en",
            },
            "analysis": {
                "evaluation_criteria_results": {},
                "data_collection_results": {},
                "call_successful": "unknown",
                "transcript_summary": "",
                "call_summary_title": None,
            },
            "conversation_initiation_client_data": {"dynamic_variables": {"system__agent_id": agent_id}},
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
