"""A call's transcript: agent and user turns with metrics, tool calls, and how long it took."""

from __future__ import annotations

import json
import string
from typing import Any, NamedTuple

from .base import NAMES, Seeded

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


class Call(NamedTuple):
    """What a finished call's events share: when it is sent, who took it, what was said."""

    sent: float
    agent_id: str
    agent_name: str
    conversation_id: str
    caller: str
    transcript: list[dict[str, Any]]
    duration: float


class Transcripts(Seeded):
    """Makes the turns of a post-call transcription."""

    def _call(self, at: float | None, turns: int | None, typical: tuple[int, int]) -> Call:
        """A finished call sent at ``at``: ``turns`` turns, or a number in ``typical``."""
        rng = self._rng
        sent = self._at(at)
        agent_id, agent_name = rng.choice(self._agents)
        conversation_id = self._id("conv_", 26)
        caller = rng.choice(NAMES)
        transcript, duration = self._transcript(turns if turns is not None else rng.randint(*typical), caller)
        return Call(sent, agent_id, agent_name, conversation_id, caller, transcript, duration)

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
