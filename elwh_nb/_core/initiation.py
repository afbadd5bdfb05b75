"""Call personalisation: the answer to ElevenLabs' conversation-initiation request, checked.

For an inbound Twilio or SIP call, ElevenLabs POSTs ``caller_id``, ``agent_id``,
``called_number`` and ``call_sid`` and waits for the conversation's dynamic variables and,
optionally, overrides of the agent's settings. A notebook's function returns the variables
(or the whole answer); :func:`answer` wraps and checks it: every variable the agent needs is
there, each a string, number or boolean, and overrides name only keys ElevenLabs documents.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .exceptions import CallError
from .tools import DEFAULT_CONCURRENCY, DEFAULT_DEADLINE_S, check_concurrency

TYPE = "conversation_initiation_client_data"
#: What ElevenLabs sends about the call.
REQUEST_FIELDS = ("caller_id", "agent_id", "called_number", "call_sid")
#: Keys of the answer besides ``type`` and ``dynamic_variables``.
ANSWER_KEYS = ("conversation_config_override", "custom_llm_extra_body", "user_id", "branch_id", "environment")
#: The overrides ElevenLabs documents, as a tree of allowed keys (None: any value).
OVERRIDES: dict[str, Any] = {
    "agent": {
        "first_message": None,
        "language": None,
        "max_conversation_duration_message": None,
        "prompt": {
            "prompt": None,
            "llm": None,
            "reasoning_effort": None,
            "tool_ids": None,
            "tool_ids_strict": None,
            "native_mcp_server_ids": None,
            "knowledge_base": None,
        },
    },
    "tts": {
        "model_id": None,
        "voice_id": None,
        "supported_voices": None,
        "stability": None,
        "speed": None,
        "similarity_boost": None,
        "clone_strength": None,
        "pronunciation_dictionary_locators": None,
    },
    "conversation": {"text_only": None, "max_duration_seconds": None},
    "asr": {"keywords": None},
    "turn": {"soft_timeout_config": None, "noisy_environment_message": None},
}


class Initiation:
    """A function that personalises inbound calls; see ``Receiver.initiation``."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        variables: Sequence[str] = (),
        timeout_s: float = DEFAULT_DEADLINE_S,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.fn = fn
        self.name = "initiation"
        self.variables = tuple(variables)
        self.timeout_s = float(timeout_s)
        self.concurrency = check_concurrency(concurrency)
        params = inspect.signature(fn).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unknown = [
            n for n in params if n not in REQUEST_FIELDS and params[n].kind is not params[n].VAR_KEYWORD
        ]
        if unknown:
            raise ValueError(
                f"an initiation function takes only {', '.join(REQUEST_FIELDS)} (or **call); "
                f"{fn.__name__} also takes {unknown}"
            )
        self._takes = REQUEST_FIELDS if takes_all else tuple(n for n in REQUEST_FIELDS if n in params)

    def __repr__(self) -> str:
        return f"<Initiation {self.fn.__name__}>"

    def arguments(self, request: Any) -> dict[str, Any]:
        """The function's keyword arguments from ElevenLabs' request body (parsed JSON)."""
        if not isinstance(request, dict):
            raise CallError(400, "the call-start request is not a JSON object")
        return {name: request.get(name) for name in self._takes}

    def answer(self, result: Any) -> dict[str, Any]:
        """The checked answer for ``result`` (see :func:`answer`)."""
        return answer(result, self.variables, self.fn.__name__)


def answer(
    result: Any, variables: Sequence[str] = (), name: str = "the initiation function"
) -> dict[str, Any]:
    """ElevenLabs' expected answer from what the function returned, or CallError 500 saying what is wrong.

    ``result`` is the dynamic variables (a mapping of name to value), or the whole answer
    (a mapping with ``dynamic_variables`` and/or ``conversation_config_override``).
    ``variables`` are those the agent uses: each must be there.
    """
    if not isinstance(result, Mapping):
        raise CallError(500, f"{name} returned {type(result).__name__}; return a dict of dynamic variables")
    whole = "dynamic_variables" in result or "conversation_config_override" in result or "type" in result
    body: dict[str, Any] = dict(result) if whole else {"dynamic_variables": dict(result)}
    if body.setdefault("type", TYPE) != TYPE:
        raise CallError(500, f"{name} returned type {body['type']!r}; the answer's type is {TYPE!r}")
    unknown = sorted(set(body) - {"type", "dynamic_variables", *ANSWER_KEYS})
    if unknown:
        raise CallError(
            500,
            f"{name} returned keys ElevenLabs does not know: {unknown} "
            f"(allowed: dynamic_variables, {', '.join(ANSWER_KEYS)})",
        )
    dynamic = body.setdefault("dynamic_variables", {})
    if not isinstance(dynamic, Mapping):
        raise CallError(500, f"{name}: dynamic_variables is {type(dynamic).__name__}, not a dict")
    for key, value in dynamic.items():
        if (
            not isinstance(key, str)
            or isinstance(value, (dict, list, tuple, set))
            or value is None
            or not isinstance(value, (str, int, float, bool))
        ):
            raise CallError(
                500,
                f"{name}: dynamic variable {key!r} is {type(value).__name__}; "
                "values must be strings, numbers or booleans",
            )
    missing = [v for v in variables if v not in dynamic]
    if missing:
        raise CallError(500, f"{name} did not give the dynamic variables the agent uses: {missing}")
    if "conversation_config_override" in body:
        _check_tree(body["conversation_config_override"], OVERRIDES, "conversation_config_override", name)
    return body


def _check_tree(value: Any, allowed: dict[str, Any], where: str, name: str) -> None:
    if not isinstance(value, Mapping):
        raise CallError(500, f"{name}: {where} is {type(value).__name__}, not a dict")
    for key, inner in value.items():
        if key not in allowed:
            raise CallError(
                500,
                f"{name}: {where} has {key!r}, which ElevenLabs does not document "
                f"(allowed: {', '.join(allowed)})",
            )
        if allowed[key] is not None:
            _check_tree(inner, allowed[key], f"{where}.{key}", name)
