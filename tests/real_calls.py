"""Post-call bodies shaped as published real deliveries show them (the reference's "Real deliveries").

Not the factory's: nested turn metrics with many ``null``, the first agent turn with only a
TTS metric, fields the docs list but real bodies lack, a webhook tool whose headers come
redacted, a system tool, a tool the agent named but does not have, charging by generation,
evaluation and data-collection ids with ``/`` and non-ASCII. Sent as Python ``json.dumps``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

STAMP = 1739537297
CONVERSATION = "conv_01jyhwem8tfvxsbq8mm5zrdcya"
AGENT = "agent_01jyfb9fh8f67agfzvv09tvg3t"


def _turn(
    role: str, message: str | None, at: int, metrics: dict[str, float] | None, **extra: Any
) -> dict[str, Any]:
    turn: dict[str, Any] = {
        "role": role,
        "agent_metadata": {"agent_id": AGENT, "workflow_node_id": None} if role == "agent" else None,
        "message": message,
        "multivoice_message": None,
        "tool_calls": [],
        "tool_results": [],
        "feedback": None,
        "llm_override": None,
        "time_in_call_secs": at,
        "conversation_turn_metrics": (
            None if metrics is None else {"metrics": {k: {"elapsed_time": v} for k, v in metrics.items()}}
        ),
        "rag_retrieval_info": None,
        "llm_usage": None,
        "interrupted": False,
        "original_message": None,
        "source_medium": "audio" if role == "user" else None,
    }
    turn.update(extra)
    return turn


def _usage(model: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "model_usage": {
            model: {
                "input": {"tokens": tokens_in, "price": tokens_in * 3e-6},
                "input_cache_read": {"tokens": 0, "price": 0.0},
                "input_cache_write": {"tokens": 0, "price": 0.0},
                "output_total": {"tokens": tokens_out, "price": tokens_out * 1.5e-5},
            }
        }
    }


def transcription() -> dict[str, Any]:
    """A finished phone call with four tool calls (one an error) and its analysis."""
    lookup = {
        "type": "webhook",
        "request_id": "toolu_lookup_1",
        "tool_name": "lookup_order",
        "params_as_json": '{"order_id": "A-1042"}',
        "tool_has_been_called": True,
        "tool_details": {
            "type": "webhook",
            "method": "POST",
            "url": "https://api.example.com/orders/lookup",
            "headers": {"Authorization": "<REDACTED>"},
            "path_params": {},
            "query_params": {},
            "body": '{"order_id": "A-1042"}',
        },
    }
    lookup_result = {
        "request_id": "toolu_lookup_1",
        "tool_name": "lookup_order",
        "result_value": '{"status": "shipped", "eta": "Friday"}' + " " * 300,
        "is_error": False,
        "tool_has_been_called": True,
        "tool_latency_secs": 0.8123,
        "dynamic_variable_updates": [],
        "type": "webhook",
    }
    missing = {
        "type": None,
        "request_id": "toolu_refund_2",
        "tool_name": "issue_refund",
        "params_as_json": '{"amount": 20}',
        "tool_has_been_called": False,
        "tool_details": None,
    }
    missing_result = {
        "request_id": "toolu_refund_2",
        "tool_name": "issue_refund",
        "result_value": "Tool issue_refund not found",
        "is_error": True,
        "tool_has_been_called": False,
        "tool_latency_secs": 0,
        "dynamic_variable_updates": [],
        "type": None,
    }
    end = {
        "type": "system",
        "request_id": "toolu_end_3",
        "tool_name": "end_call",
        "params_as_json": '{"reason": "done"}',
        "tool_has_been_called": True,
        "tool_details": None,
    }
    end_result = {
        "request_id": "toolu_end_3",
        "tool_name": "end_call",
        "result_value": '{"status": "success", "message": "Call ended", "reason": "done"}',
        "is_error": False,
        "tool_has_been_called": True,
        "tool_latency_secs": 0.0021,
        "dynamic_variable_updates": [],
        "type": "system",
        "result": {"result_type": "end_call_success", "status": "success", "reason": "done"},
    }
    transcript = [
        _turn(
            "agent",
            "Hi, this is Ava from Példa Shop. How can I help?",
            0,
            {"convai_tts_service_ttfb": 0.2277},
        ),
        _turn("user", "Where is my order A-1042?", 4, {"convai_asr_trailing_service_latency": 0.31}),
        _turn(
            "agent",
            "Let me check that for you.",
            7,
            {
                "convai_llm_service_ttfb": 0.55,
                "convai_llm_service_ttf_sentence": 0.83,
                "convai_llm_service_tt_last_sentence": 0.83,
                "convai_llm_tool_request_generation_latency": 0.61,
                "convai_tts_service_ttfb": 0.21,
            },
            tool_calls=[lookup],
            tool_results=[lookup_result],
            llm_usage=_usage("gemini-2.0-flash", 2161, 38),
        ),
        _turn("user", "...", 12, None),
        _turn(
            "agent",
            "It shipped and arrives Friday. Anything else?",
            13,
            {
                "convai_llm_service_ttfb": 1.9,
                "convai_llm_service_ttf_sentence": 2.4,
                "convai_tts_service_ttfb": 0.3,
            },
            llm_usage=_usage("gemini-2.0-flash", 2402, 21),
            interrupted=True,
        ),
        _turn("user", "Can I get a refund for the delay?", 18, {"convai_asr_trailing_service_latency": 0.4}),
        _turn(
            "agent",
            None,
            21,
            {"convai_llm_service_ttfb": 0.7, "convai_new_stage_latency": 0.05},
            tool_calls=[missing],
            tool_results=[missing_result],
        ),
        _turn(
            "agent",
            "I'm sorry, I can't issue refunds. Goodbye!",
            23,
            None,
            tool_calls=[end],
            tool_results=[end_result],
        ),
    ]
    return {
        "type": "post_call_transcription",
        "event_timestamp": STAMP,
        "data": {
            "agent_id": AGENT,
            "conversation_id": CONVERSATION,
            "status": "done",
            "user_id": None,
            "transcript": transcript,
            "metadata": {
                "start_time_unix_secs": STAMP - 60,
                "accepted_time_unix_secs": STAMP - 60,
                "call_duration_secs": 27,
                "cost": 314,
                "deletion_settings": {"deletion_time_unix_secs": None},
                "feedback": {"overall_score": None, "likes": 0, "dislikes": 0},
                "authorization_method": "public",
                "charging": {
                    "dev_discount": False,
                    "tier": "creator",
                    "llm_price": 0.0012,
                    "llm_charge": 4,
                    "call_charge": 310,
                    "llm_usage": {
                        "irreversible_generation": _usage("gemini-2.0-flash", 4563, 59),
                        "initiated_generation": {"model_usage": {}},
                    },
                },
                "phone_call": {
                    "direction": "inbound",
                    "phone_number_id": "phnum_01jx",
                    "agent_number": "+14155550100",
                    "external_number": "+14155550199",
                    "type": "twilio",
                    "stream_sid": "MZ0123",
                    "call_sid": "CA0123456789abcdef",
                },
                "batch_call": None,
                "termination_reason": "end_call tool was called.",
                "error": None,
                "warnings": [],
                "main_language": "en",
                "rag_usage": None,
                "text_only": False,
                "features_usage": {"language_detection": {"enabled": False, "used": False}},
            },
            "analysis": {
                "evaluation_criteria_results": {
                    "resolved": {"criteria_id": "resolved", "result": "failure", "rationale": "No refund."},
                    "polite/tone": {"criteria_id": "polite/tone", "result": "success", "rationale": "Kind."},
                },
                "data_collection_results": {
                    "order_id": {
                        "data_collection_id": "order_id",
                        "value": "A-1042",
                        "json_schema": {},
                        "rationale": "",
                    },
                    "café/ñame": {
                        "data_collection_id": "café/ñame",
                        "value": None,
                        "json_schema": {},
                        "rationale": "",
                    },
                    "refund_amount": {"data_collection_id": "refund_amount", "value": 20, "rationale": ""},
                },
                "call_successful": "failure",
                "transcript_summary": "The caller asked about order A-1042 and a refund.",
                "call_summary_title": "Order status and refund",
            },
            "conversation_initiation_client_data": {
                "dynamic_variables": {"system__conversation_id": CONVERSATION, "system__agent_turns": 5}
            },
        },
    }


def flat_metrics(event: dict[str, Any]) -> dict[str, Any]:
    """The same call with the docs' flat ``conversation_turn_metrics`` (no ``metrics`` level)."""
    out = copy.deepcopy(event)
    for turn in out["data"]["transcript"]:
        if turn["conversation_turn_metrics"] is not None:
            turn["conversation_turn_metrics"] = turn["conversation_turn_metrics"]["metrics"]
    return out


def failed() -> dict[str, Any]:
    """A call that failed: no turns, an error object, nothing successful, no event_timestamp."""
    return {
        "type": "post_call_transcription",
        "data": {
            "agent_id": AGENT,
            "conversation_id": "conv_failed_1",
            "status": "failed",
            "transcript": [],
            "metadata": {
                "start_time_unix_secs": STAMP - 40,
                "call_duration_secs": 0,
                "cost": 0,
                "termination_reason": "",
                "error": {"code": 1011, "reason": "LLM request failed: upstream timeout"},
                "phone_call": None,
            },
            "analysis": {
                "call_successful": "unknown",
                "transcript_summary": "",
                "evaluation_criteria_results": {},
                "data_collection_results": {},
            },
        },
    }


def body(event: dict[str, Any]) -> bytes:
    """As ElevenLabs' Python sends it."""
    return json.dumps(event).encode()
