"""A call's transcript: agent and user turns with stage metrics, tool calls, and how long it took.

Shaped as real deliveries are: nested ``conversation_turn_metrics`` (the greeting has only
its TTS; some turns have none), the user's trailing transcription latency, tool calls with
results (webhook tools with redacted headers, system tools, now and then a failure or a
tool the agent does not have), LLM tokens per turn. Each agent has its own model and pace;
its LLM slows as the call's context grows, and at the busy hours of the (UTC) day.
"""

from __future__ import annotations

import json
import math
import random
import string
import time
from typing import Any, NamedTuple

from .base import NAMES, Seeded


class Intent(NamedTuple):
    """What a call is about: the caller's first words, the (agent, user) exchanges that follow,
    whether it ends ``successful``, and the analysis that matches what was said."""

    successful: bool
    title: str
    summary: str  # the analysis' transcript_summary, after "{name} called {agent}."
    opening: str
    exchanges: tuple[tuple[str, str], ...]


GREETING = "Hello, thanks for calling. Who am I speaking with, and how can I help you today?"
INTENTS = (
    Intent(
        True,
        "Booking changed",
        "{name} wanted to move a booking. The agent found it, moved it to {day} at {hour} and "
        "confirmed by email.",
        "Hi, it's {name}. I'd like to change my appointment.",
        (
            ("Let me look that up for you, {name}, one moment please.", "It's the one on Monday."),
            (
                "I can see your booking for Monday at 10:00. When would suit you better?",
                "Can we do {day} instead? Maybe around {hour}?",
            ),
            ("Of course. I have moved it to {day} at {hour}.", "That works, thank you."),
            ("Your reference number is {ref}. You'll also get it by email.", "Great."),
        ),
    ),
    Intent(
        True,
        "Refund issued",
        "{name} was charged twice for an order. The agent confirmed the double charge and issued "
        "a refund of the second payment.",
        "Hi, it's {name}. I was charged twice for my last order.",
        (
            ("I'm sorry to hear that, {name}. Which order was it?", "The one from last week, {ref}."),
            ("I can see two payments for {ref}. The second one is a mistake.", "So will I get it back?"),
            ("Yes. The refund was issued and takes three to five days to show.", "Okay, that's a relief."),
        ),
    ),
    Intent(
        False,
        "Call back requested",
        "{name} has waited for a call back since Monday. The agent could not resolve it and passed "
        "it to the team, who will call back.",
        "Hi, it's {name}. I've been waiting for a call back since Monday.",
        (
            ("Let me look that up for you, {name}, one moment please.", "It's about my repair."),
            ("I can see the case, but I can't change it from here.", "That's not great."),
            (
                "I understand. I'll pass this on to our team and someone will call you back.",
                "Please make it soon.",
            ),
        ),
    ),
    Intent(
        False,
        "Booking not changed",
        "{name} wanted to move a booking to {day}. No slot that day suited, so nothing was changed "
        "and the agent offered a call back.",
        "Hi, it's {name}. I'd like to change my appointment.",
        (
            ("Which day would you like instead, {name}?", "Can we do {day} instead? Maybe around {hour}?"),
            ("I'm sorry, {day} is fully booked.", "Hmm, I'm not sure. Let me check my calendar."),
            ("Shall we keep Monday for now? The team can call you about other days.", "Fine, do that."),
        ),
    ),
)
#: Said in the middle of a longer call, after the first exchange (each once, while they last).
ASIDES = (
    ("Could you confirm the email address on your account?", "Yes, it's {name_lower}@example.com."),
    ("And the last four digits of your phone number?", "It's 4821."),
    ("Sorry, the line broke up there. Could you say that again?", "Can you hear me now?"),
    ("Thanks for your patience while I check.", "No problem."),
    ("I've added a note to your account so the team sees it too.", "Thanks, that helps."),
    ("Would you like a summary of this call by text?", "Email is better, please."),
    ("Is the number you're calling from the best one to reach you?", "Yes, it is."),
    ("Let me check one more thing on our side.", "Sure, take your time."),
    ("I'm still here, the system is a little slow today.", "Okay."),
    ("Just so you know, this call may be recorded for training.", "That's fine."),
)
CLOSING = ("Is there anything else I can help you with today?", "No, that's everything. Thanks!")
GOODBYE = "Thank you for calling, {name}. Have a lovely day!"
BYE = "Bye!"


def complete_turns(intent: Intent) -> int:
    """The fewest turns of a call about ``intent`` that gets to the goodbye."""
    return 2 + 2 * len(intent.exchanges) + 3


def longest_turns(intent: Intent) -> int:
    """The most turns of a call about ``intent`` with no aside said twice (and a last bye)."""
    return complete_turns(intent) + 2 * len(ASIDES) + 1


def script(intent: Intent, turns: int, rng: random.Random) -> list[str]:
    """The lines of a call of ``turns`` turns, the agent's first: the greeting, the caller's
    reason, the intent's exchanges, asides (drawn from ``rng``) to fill a long call, the
    closing and the goodbye; a call shorter than :func:`complete_turns` stops mid-way."""
    fill = max(0, (turns - complete_turns(intent)) // 2)
    asides = rng.sample(ASIDES, min(fill, len(ASIDES))) + [
        rng.choice(ASIDES) for _ in range(fill - len(ASIDES))
    ]
    first, *rest = intent.exchanges
    pairs = [(GREETING, intent.opening), first, *asides, *rest, CLOSING]
    lines = [line for pair in pairs for line in pair] + [GOODBYE, BYE]
    return lines[:turns]


_DAYS = ("Tuesday", "Wednesday", "Thursday", "Friday")  # the booking moves from a Monday


class Call(NamedTuple):
    """What a finished call's events share: when it is sent, who took it, what was said."""

    sent: float
    agent_id: str
    agent_name: str
    conversation_id: str
    caller: str
    transcript: list[dict[str, Any]]
    duration: float
    intent: Intent
    words: dict[str, str]  # what the lines said (day, hour, reference), for the analysis

    @property
    def ended(self) -> bool:
        """Whether the call got to the goodbye (else someone hung up mid-way)."""
        return len(self.transcript) >= complete_turns(self.intent)


class Pace(NamedTuple):
    """An agent's model and how quickly its stages answer (seconds, the median)."""

    model: str
    llm_ttfb: float
    tts_ttfb: float
    tool_rate: float  # the share of agent turns that call a tool


PACES = {
    "Support Agent": Pace("gpt-4o-mini", 0.45, 0.18, 0.2),
    "Booking Assistant": Pace("gemini-2.0-flash", 0.32, 0.15, 0.3),
    "Survey Bot": Pace("claude-sonnet-4", 0.85, 0.22, 0.08),
}
_DEFAULT_PACE = Pace("gpt-4o-mini", 0.5, 0.2, 0.15)
#: Tools the agents have: name, type, and for webhook tools the method and URL.
TOOLS = (
    ("lookup_booking", "webhook", "GET", "https://api.example.com/bookings/{ref}"),
    ("check_availability", "webhook", "POST", "https://api.example.com/availability"),
    ("send_confirmation", "webhook", "POST", "https://api.example.com/confirmations"),
    ("transfer_to_number", "system", None, None),
    ("show_calendar", "client", None, None),
)
_TOOL_ERRORS = (
    '{"error": "upstream timeout"}',
    '{"error": "booking not found"}',
    "HTTP 503 Service Unavailable",
)


def _busy(sent: float) -> float:
    """How much slower the busy hours of the UTC day are (1 at night, about 1.35 mid-afternoon)."""
    hour = time.gmtime(sent).tm_hour + time.gmtime(sent).tm_min / 60
    return 1.0 + 0.35 * math.exp(-(((hour - 14.5) / 3.0) ** 2))


class Transcripts(Seeded):
    """Makes the turns of a post-call transcription."""

    def _call(
        self, at: float | None, turns: int | None, typical: tuple[int, int], successful: bool | None = None
    ) -> Call:
        """A finished call sent at ``at``: ``turns`` turns, or a number in ``typical`` (enough to
        get to the goodbye, but for callers who hang up on an unresolved call); about something
        that ends ``successful`` (or not: one in five)."""
        rng = self._rng
        sent = self._at(at)
        agent_id, agent_name = rng.choice(self._agents)
        conversation_id = self._id("conv_", 26)
        caller = rng.choice(NAMES)
        if successful is None:
            successful = rng.random() < 0.8
        intent = rng.choice([i for i in INTENTS if i.successful == successful])
        if turns is not None:
            n = turns
        elif not successful and rng.random() < 0.25:  # hung up before the goodbye
            n = rng.randint(3, complete_turns(intent) - 1)
        else:
            n = min(max(rng.randint(*typical), complete_turns(intent)), longest_turns(intent))
        words = self._words(caller)
        transcript, duration = self._transcript(script(intent, n, rng), words, agent_id, agent_name, sent)
        return Call(sent, agent_id, agent_name, conversation_id, caller, transcript, duration, intent, words)

    def _words(self, name: str) -> dict[str, str]:
        rng = self._rng
        return {
            "name": name,
            "name_lower": name.lower().replace("é", "e").replace("ë", "e"),
            "day": rng.choice(_DAYS),
            "hour": f"{rng.randint(9, 17)}:{rng.choice(('00', '15', '30', '45'))}",
            "ref": self._id("", 8, string.ascii_uppercase + string.digits),
        }

    def _seconds(self, median: float, spread: float = 0.35) -> float:
        return round(median * self._rng.lognormvariate(0.0, spread), 4)

    def _metrics(self, agent: bool, index: int, pace: Pace, slow: float, tool: bool) -> dict[str, Any] | None:
        """A turn's nested metrics (None now and then, as in real deliveries)."""
        rng = self._rng
        if not agent:
            if rng.random() < 0.15:
                return None
            return {"metrics": {"convai_asr_trailing_service_latency": {"elapsed_time": self._seconds(0.22)}}}
        tts = {"convai_tts_service_ttfb": {"elapsed_time": self._seconds(pace.tts_ttfb)}}
        if index == 0:
            return {"metrics": tts}  # the greeting: spoken, not generated
        if rng.random() < 0.08:
            return None
        ttfb = self._seconds(pace.llm_ttfb * slow * (1 + 0.02 * index))
        sentence = round(ttfb + self._seconds(0.3), 4)
        metrics: dict[str, Any] = {
            "convai_llm_service_ttfb": {"elapsed_time": ttfb},
            "convai_llm_service_ttf_sentence": {"elapsed_time": sentence},
            "convai_llm_service_tt_last_sentence": {
                "elapsed_time": round(sentence + self._seconds(0.6, 0.6), 4)
            },
        }
        if tool:
            metrics["convai_llm_tool_request_generation_latency"] = {"elapsed_time": self._seconds(0.5)}
        metrics.update(tts)
        return {"metrics": metrics}

    def _tool(self, words: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A tool call and its result: mostly fine, sometimes an error, rarely a tool it lacks."""
        rng = self._rng
        name, kind, method, url = rng.choice(TOOLS)
        call_id = self._id("toolu_", 24)
        params = {"reference": words["ref"]} if name != "show_calendar" else {"day": words["day"]}
        missing = rng.random() < 0.02
        failed = not missing and rng.random() < 0.07
        details = None
        if kind == "webhook" and not missing:
            details = {
                "type": "webhook",
                "method": method,
                "url": str(url).replace("{ref}", words["ref"]),
                "headers": {"Authorization": "<REDACTED>"},
                "path_params": {},
                "query_params": {},
                "body": json.dumps(params) if method == "POST" else None,
            }
        if missing:
            value, latency = f"Tool {name} not found", 0.0
        elif failed:
            value, latency = rng.choice(_TOOL_ERRORS), self._seconds(2.5, 0.5)
        else:
            value = json.dumps({"found": True, "day": words["day"], "reference": words["ref"]})
            latency = self._seconds(0.05 if kind != "webhook" else 0.45, 0.6)
        call = {
            "type": None if missing else kind,
            "request_id": call_id,
            "tool_name": name,
            "params_as_json": json.dumps(params),
            "tool_has_been_called": not missing,
            "tool_details": details,
        }
        result = {
            "request_id": call_id,
            "tool_name": name,
            "result_value": value,
            "is_error": missing or failed,
            "tool_has_been_called": not missing,
            "tool_latency_secs": latency,
            "dynamic_variable_updates": [],
            "type": None if missing else kind,
        }
        return call, result

    def _transcript(
        self, lines: list[str], words: dict[str, str], agent_id: str, agent_name: str, sent: float
    ) -> tuple[list[dict[str, Any]], float]:
        rng = self._rng
        pace = PACES.get(agent_name, _DEFAULT_PACE)
        slow = _busy(sent)
        out: list[dict[str, Any]] = []
        clock = 0.0
        for i, said in enumerate(lines):
            agent = i % 2 == 0
            line = said.format(**words)
            tool = agent and said not in (GREETING, CLOSING[0], GOODBYE) and rng.random() < pace.tool_rate
            metrics = self._metrics(agent, i, pace, slow, tool)
            usage = None
            if agent and i:
                usage = {
                    "model_usage": {
                        pace.model: {
                            "input": {"tokens": 900 + 140 * i + rng.randint(0, 200), "price": 0.0},
                            "output_total": {"tokens": rng.randint(12, 70), "price": 0.0},
                        }
                    }
                }
            turn: dict[str, Any] = {
                "role": "agent" if agent else "user",
                "agent_metadata": {"agent_id": agent_id, "workflow_node_id": None} if agent else None,
                "message": line,
                "multivoice_message": None,
                "tool_calls": [],
                "tool_results": [],
                "feedback": None,
                "llm_override": None,
                "time_in_call_secs": int(clock),
                "conversation_turn_metrics": metrics,
                "rag_retrieval_info": None,
                "llm_usage": usage,
                "interrupted": rng.random() < 0.05,
                "original_message": None,
                "source_medium": None if agent else "audio",
            }
            if tool:
                call, result = self._tool(words)
                turn["tool_calls"], turn["tool_results"] = [call], [result]
            out.append(turn)
            clock += len(line) / 14.0 + rng.uniform(0.5, 3.0)  # speaking time plus a pause
        return out, clock + rng.uniform(1.0, 6.0)
