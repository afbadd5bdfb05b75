"""The payload factory: every type, realistic sizes, consistent times, deterministic by seed."""

from __future__ import annotations

import base64
import json
import re

import pytest

import elwh_nb
from elwh_nb import EVENT_TYPES, REAL_TYPES, TUTORIAL_TYPES, normalize, payloads, sign, verify
from elwh_nb._core.payloads.base import to_body

from .conftest import SECRET

NOW = 1_739_537_297.0


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_is_made_signed_and_verified(event_type: str) -> None:
    factory = payloads(3, now=NOW)
    event = factory.make(event_type)
    body = factory.body(event)
    assert verify(body, sign(body, SECRET, NOW), SECRET, now=NOW) == event
    assert normalize(event)["event_type"] == event_type


def test_real_types_use_the_real_envelope() -> None:
    factory = payloads(4, now=NOW)
    for event_type in REAL_TYPES:
        event = factory.make(event_type)
        assert set(event) == {"type", "event_timestamp", "data"}
        assert isinstance(event["event_timestamp"], int)
    for event_type in TUTORIAL_TYPES:
        event = factory.make(event_type)
        assert {"event_type", "id", "timestamp", "status", "project_id"} <= set(event)


def test_same_seed_same_events_other_seed_other_events() -> None:
    a = [payloads(7, now=NOW).body(e) for e in payloads(7, now=NOW).batch(30)]
    b = [payloads(7, now=NOW).body(e) for e in payloads(7, now=NOW).batch(30)]
    c = [payloads(8, now=NOW).body(e) for e in payloads(8, now=NOW).batch(30)]
    assert a == b and a != c


def test_call_times_are_consistent() -> None:
    factory = payloads(5, now=NOW)
    for _ in range(50):
        event = factory.post_call_transcription(failed=False)
        meta = event["data"]["metadata"]
        start, duration = meta["start_time_unix_secs"], meta["call_duration_secs"]
        assert start <= meta["accepted_time_unix_secs"] <= start + duration
        assert start + duration <= event["event_timestamp"]  # analysed, then sent
        turns = event["data"]["transcript"]
        times = [t["time_in_call_secs"] for t in turns]
        assert times == sorted(times) and times[-1] <= duration
        assert [t["role"] for t in turns[:2]] == ["agent", "user"]


def test_some_calls_fail_as_real_failed_calls_arrive() -> None:
    factory = payloads(7, now=NOW)
    events = [factory.post_call_transcription() for _ in range(300)]
    failed = [e for e in events if e["data"]["status"] == "failed"]
    assert 3 <= len(failed) <= 25  # about one in 30
    for event in failed:
        data = event["data"]
        assert data["transcript"] == [] and data["analysis"]["call_successful"] == "unknown"
        assert set(data["metadata"]["error"]) == {"code", "reason"} and data["metadata"]["cost"] == 0
    assert all(
        e["data"]["status"] == "done" for e in [factory.post_call_transcription(turns=3) for _ in range(60)]
    )


def test_transcriptions_are_realistically_large() -> None:
    factory = payloads(6, now=NOW)
    sizes = [len(factory.body(factory.post_call_transcription(failed=False))) for _ in range(30)]
    assert min(sizes) > 3_000
    assert 10_000 < sum(sizes) / len(sizes) < 100_000  # "often tens of KB"
    assert len(factory.body(factory.post_call_transcription(turns=120))) > 60_000


@pytest.mark.parametrize("size", [0, 10, 1000, 3 * 1024 * 1024])
def test_audio_has_the_chosen_size(size: int) -> None:
    event = payloads(1, now=NOW).post_call_audio(audio_bytes=size)
    mp3 = base64.b64decode(event["data"]["full_audio"], validate=True)
    assert len(mp3) == size
    if size >= 14:
        assert mp3.startswith(b"ID3")


def test_call_initiation_failure_in_both_forms() -> None:
    factory = payloads(1, now=NOW)
    sip = factory.call_initiation_failure(provider="sip", failure_reason="busy")["data"]
    assert sip["metadata"]["type"] == "sip"
    assert sip["metadata"]["body"]["sip_status_code"] == 486 and sip["failure_reason"] == "busy"
    twilio = factory.call_initiation_failure(provider="twilio", failure_reason="no-answer")["data"]
    assert twilio["metadata"]["type"] == "twilio"
    assert twilio["metadata"]["body"]["CallStatus"] == "no-answer"
    assert twilio["metadata"]["body"]["CallSid"].startswith("CA")
    with pytest.raises(ValueError, match="provider"):
        factory.call_initiation_failure(provider="pigeon")


def test_speech_to_text_words_in_order_and_metadata_kept() -> None:
    event = payloads(1, now=NOW).speech_to_text_transcription(request_id="req1", webhook_metadata={"job": 7})
    data = event["data"]
    assert data["request_id"] == "req1" and data["webhook_metadata"] == {"job": 7}
    words = data["transcription"]["words"]
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert "".join(w["text"] for w in words) == data["transcription"]["text"]
    default = payloads(2, now=NOW).speech_to_text_transcription()["data"]["webhook_metadata"]
    assert default["submitted_at_unix"] < NOW


def test_batch_is_time_ordered_within_its_span_and_mix() -> None:
    events = payloads(9, now=NOW).batch(200, span_s=600)
    stamps = [e["event_timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] >= NOW - 601 and stamps[-1] <= NOW
    kinds = {e["type"] for e in events}
    assert {"post_call_transcription", "speech_to_text_transcription"} <= kinds
    tutorial = payloads(9, now=NOW).batch(20, types=list(TUTORIAL_TYPES))
    assert {e["event_type"] for e in tutorial} == set(TUTORIAL_TYPES)
    only_audio = payloads(9, now=NOW).batch(3, types={"post_call_audio": 1}, audio_bytes=100)
    assert all(len(base64.b64decode(e["data"]["full_audio"])) == 100 for e in only_audio)


def test_a_batch_sent_at_one_instant_has_no_two_equal_bodies() -> None:
    """What simulate() sends: n events with one timestamp. Equal bodies would be stored as one."""
    voice_types = ["voice_removal_notice", "voice_removal_notice_withdrawn", "voice_removed"]
    bodies = [to_body(e) for e in payloads(3, now=NOW).batch(200, types=voice_types, span_s=0)]
    assert len(set(bodies)) == len(bodies)
    again = [to_body(e) for e in payloads(3, now=NOW).batch(200, types=voice_types, span_s=0)]
    assert again == bodies  # still deterministic by seed


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown event type 'nope'"):
        payloads().make("nope")


def test_bodies_are_compact_utf8_json() -> None:
    factory = payloads(1, now=NOW)
    event = {"type": "x", "data": {"name": "José"}}
    assert factory.body(event) == '{"type":"x","data":{"name":"José"}}'.encode()
    assert json.loads(factory.body(factory.post_call_transcription())) is not None


def test_post_call_transcription_has_the_newer_fields() -> None:
    factory = payloads(1, now=NOW)
    events = [factory.post_call_transcription(failed=False) for _ in range(30)]  # a failed call has fewer
    for event in events:
        data = event["data"]
        agent_names = {name for _, name in factory._agents}
        assert data["agent_name"] in agent_names
        assert data["branch_id"].startswith("agtbrch_") and data["version_id"].startswith("agtvrsn_")
        assert data["environment"] in ("production", "staging")
        assert data["has_audio"] is data["has_user_audio"] is data["has_response_audio"] is True
        client = data["conversation_initiation_client_data"]
        assert (client["branch_id"], client["environment"]) == (data["branch_id"], data["environment"])
    # An agent keeps its environment; there is more than one to filter on.
    by_agent = {(e["data"]["agent_id"], e["data"]["environment"]) for e in events}
    assert len(by_agent) == len({a for a, _ in by_agent}) and len({env for _, env in by_agent}) == 2


@pytest.mark.parametrize(
    "metadata",
    [
        {"a": {"b": {"c": 1}}},  # three levels
        {"a": [[1]]},  # lists count as levels too
        {"blob": "x" * 16 * 1024},  # over 16 KB once serialised
    ],
)
def test_webhook_metadata_deeper_than_2_or_over_16_kb_is_refused(metadata: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="webhook_metadata"):
        payloads(1, now=NOW).speech_to_text_transcription(webhook_metadata=metadata)


def test_webhook_metadata_at_the_limits_is_made() -> None:
    factory = payloads(1, now=NOW)
    two_levels = {"submitted_at": NOW - 30, "job": {"id": 7, "tag": "a"}, "list": [1, "é"]}
    assert (
        factory.speech_to_text_transcription(webhook_metadata=two_levels)["data"]["webhook_metadata"]
        == two_levels
    )
    big = {"blob": "x" * (16 * 1024 - len('{"blob":""}'))}  # exactly 16 KB as sent
    assert len(factory.body(big)) == 16 * 1024
    assert factory.speech_to_text_transcription(webhook_metadata=big)["data"]["webhook_metadata"] == big
    for event in factory.batch(40, types=["speech_to_text_transcription"]):
        metadata = event["data"]["webhook_metadata"]
        assert len(factory.body(metadata)) <= 16 * 1024
        assert all(not isinstance(v, (dict, list)) for v in metadata.values())  # the default: flat


def test_a_factory_call_reads_as_a_conversation() -> None:
    # A greeting first; the summary says what the turns said; the end matches the length.
    factory = elwh_nb.payloads(8)
    seen = set()
    for _ in range(300):
        data = factory.post_call_transcription()["data"]
        if data["status"] != "done":
            continue
        turns, analysis, meta = data["transcript"], data["analysis"], data["metadata"]
        said = " ".join(t["message"] for t in turns)
        assert turns[0]["role"] == "agent" and turns[0]["message"].startswith("Hello, thanks for calling")
        assert [t["role"] for t in turns] == ["agent", "user"] * (len(turns) // 2) + ["agent"] * (
            len(turns) % 2
        )
        title, summary, reason = (
            analysis["call_summary_title"],
            analysis["transcript_summary"],
            meta["termination_reason"],
        )
        seen.add((title, reason))
        hung_up = "Have a lovely day" not in said
        assert (reason == "Client disconnected: 1000") == hung_up == (title == "Caller hung up")
        assert (reason == "Max duration exceeded") == (meta["call_duration_secs"] >= 600)
        ended_by_tool = any(c["tool_name"] == "end_call" for t in turns for c in t["tool_calls"])
        assert ended_by_tool == reason.startswith("end_call")
        assert (analysis["call_successful"] == "success") == (title in ("Booking changed", "Refund issued"))
        if title == "Booking changed":
            moved = re.search(r"I have moved it to (\w+) at (\d+:\d+)", said)
            assert moved and f"moved it to {moved[1]} at {moved[2]}" in summary and moved[1] != "Monday"
        if title == "Refund issued":
            assert "refund was issued" in said
        lines = [t["message"] for t in turns if t["role"] == "agent"]
        assert len(lines) == len(set(lines)) or len(turns) > 35  # no aside twice in a call of usual length
    assert len({title for title, _ in seen}) == 5 and len({reason for _, reason in seen}) == 3
