"""normalize(): one flat record per event, real and tutorial shapes alike, never an error."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elwh_nb import FIELDS, normalize, payloads

NOW = 1_739_537_297.0
UTC = timezone.utc


def test_record_has_every_field_and_the_payload() -> None:
    event = payloads(1, now=NOW).post_call_transcription()
    record = normalize(event)
    assert list(record) == [*FIELDS, "payload"]
    assert record["payload"] is event


def test_post_call_transcription() -> None:
    event = payloads(1, now=NOW).post_call_transcription()
    r = normalize(event)
    data = event["data"]
    assert r["event_type"] == "post_call_transcription"
    assert r["event_timestamp"] == datetime.fromtimestamp(int(NOW), tz=UTC)
    assert (r["conversation_id"], r["agent_id"], r["status"]) == (
        data["conversation_id"],
        data["agent_id"],
        "done",
    )
    assert r["duration_s"] == float(data["metadata"]["call_duration_secs"])
    assert r["call_started_at"] == datetime.fromtimestamp(data["metadata"]["start_time_unix_secs"], tz=UTC)


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        ("post_call_audio", "conversation_id"),
        ("call_initiation_failure", "failure_reason"),
        ("speech_to_text_transcription", "request_id"),
        ("voice_removal_notice", "voice_id"),
        ("voice_removal_notice_withdrawn", "voice_id"),
        ("voice_removed", "voice_id"),
        ("speech.completed", "request_id"),
        ("voice.created", "voice_id"),
    ],
)
def test_each_type_fills_its_id(event_type: str, field: str) -> None:
    event = payloads(2, now=NOW).make(event_type)
    r = normalize(event)
    assert r["event_type"] == event_type
    assert r[field]
    assert r["event_timestamp"] == datetime.fromtimestamp(int(NOW), tz=UTC)


def test_tutorial_event_from_the_chapter() -> None:
    r = normalize(
        {
            "event_type": "speech.completed",
            "id": "abc123",
            "project_id": "proj456",
            "status": "completed",
            "timestamp": 1632145260,
        }
    )
    assert r["event_type"] == "speech.completed"
    assert r["request_id"] == "abc123"
    assert r["status"] == "completed"
    assert r["event_timestamp"] == datetime(2021, 9, 20, 13, 41, tzinfo=UTC)
    assert r["payload"]["project_id"] == "proj456"


def test_unknown_types_and_missing_fields_are_kept() -> None:
    r = normalize({"type": "dubbing_ready", "data": {"dubbing_id": "d1"}})
    assert r["event_type"] == "dubbing_ready"
    assert r["event_timestamp"] is None and r["duration_s"] is None
    assert r["payload"]["data"]["dubbing_id"] == "d1"
    assert normalize({})["event_type"] is None


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (1632145260, datetime(2021, 9, 20, 13, 41, tzinfo=UTC)),
        ("1632145260", datetime(2021, 9, 20, 13, 41, tzinfo=UTC)),
        (1632145260.5, datetime(2021, 9, 20, 13, 41, 0, 500000, tzinfo=UTC)),
        ("2021-09-20T13:41:00Z", datetime(2021, 9, 20, 13, 41, tzinfo=UTC)),
        (10**20, None),
        ("0001-01-01T00:00:00+05:00", None),  # before year 1 once in UTC
        ("9999-12-31T23:59:59-05:00", None),  # after year 9999 once in UTC
        (float("nan"), None),
        (True, None),
        ("soon", None),
        ([1], None),
    ],
)
def test_timestamps(stamp: object, expected: datetime | None) -> None:
    assert normalize({"type": "x", "event_timestamp": stamp})["event_timestamp"] == expected


def test_odd_field_types_do_not_break_it() -> None:
    r = normalize(
        {
            "type": 5,
            "data": {"conversation_id": 12, "agent_id": {"x": 1}, "metadata": {"call_duration_secs": "7.5"}},
        }
    )
    assert r["event_type"] == "5"
    assert r["conversation_id"] == "12" and r["agent_id"] is None and r["duration_s"] == 7.5
    assert normalize({"type": "x", "data": "nope"})["conversation_id"] is None


def test_numbers_too_big_for_a_float_are_none() -> None:
    event = json.loads('{"type": "x", "data": {"metadata": {"call_duration_secs": 1%s}}}' % ("0" * 400))
    assert normalize(event)["duration_s"] is None


def test_non_objects_are_type_errors() -> None:
    with pytest.raises(TypeError, match="JSON object"):
        normalize([1, 2])  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=20,
)


# OpenTelemetry spans with the keys normalize reads, holding anything.
nanos = json_values | st.integers(min_value=-(10**30), max_value=10**30).map(str)
spans = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["elevenlabs.conversation", "elevenlabs.tool.x"]) | json_values,
            "parentSpanId": json_values,
            "startTimeUnixNano": nanos,
            "endTimeUnixNano": nanos,
            "status": json_values | st.fixed_dictionaries({}, optional={"code": json_values}),
        },
    ),
    max_size=3,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "type": json_values,
            "event_type": json_values,
            "event_timestamp": json_values,
            "timestamp": json_values,
            "id": json_values,
            "data": st.dictionaries(
                st.sampled_from(
                    [
                        "conversation_id",
                        "agent_id",
                        "agent_name",
                        "environment",
                        "conversation_initiation_client_data",
                        "request_id",
                        "voice_id",
                        "status",
                        "metadata",
                        "project_id",
                        "chapter_id",
                        "conversion_status",
                        "error_details",
                        "project_snapshot_id",
                        "chapter_snapshot_id",
                        "id",
                        "otlp_traces",
                    ]
                ),
                json_values
                | st.fixed_dictionaries(
                    {},
                    optional={
                        "call_duration_secs": json_values,
                        "start_time_unix_secs": json_values,
                        "error": json_values,
                        "resourceSpans": st.lists(
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "scopeSpans": json_values
                                    | st.lists(
                                        st.fixed_dictionaries({}, optional={"spans": json_values | spans})
                                    )
                                },
                            )
                        ),
                    },
                ),
            ),
        },
    )
)
def test_any_object_normalises(event: dict[str, object]) -> None:
    r = normalize(event)
    assert r["payload"] is event
    assert r["duration_s"] is None or isinstance(r["duration_s"], float)
    for name in (
        "conversation_id",
        "agent_id",
        "agent_name",
        "environment",
        "request_id",
        "voice_id",
        "status",
        "project_id",
        "chapter_id",
        "conversion_status",
        "snapshot_id",
        "error_details",
    ):
        assert r[name] is None or isinstance(r[name], str)


def test_agent_name_and_environment_from_data() -> None:
    event = payloads(1, now=NOW).post_call_transcription()
    r = normalize(event)
    assert (r["agent_name"], r["environment"]) == (event["data"]["agent_name"], event["data"]["environment"])
    assert r["agent_name"] in ("Support Agent", "Booking Assistant", "Survey Bot")


def test_environment_from_the_client_data_when_data_has_none() -> None:
    client = {"conversation_initiation_client_data": {"environment": "staging", "branch_id": "agtbrch_1"}}
    assert normalize({"type": "post_call_transcription", "data": client})["environment"] == "staging"
    both = {**client, "environment": "production"}
    assert normalize({"type": "post_call_transcription", "data": both})["environment"] == "production"
    odd = {**client, "environment": ["production"]}  # data's is unusable: the client data's counts
    assert normalize({"type": "post_call_transcription", "data": odd})["environment"] == "staging"


@pytest.mark.parametrize("value", [None, True, ["Ada"], {"name": "Ada"}, 1.5])
def test_agent_name_and_environment_of_odd_types(value: object) -> None:
    data = {"agent_name": value, "environment": value, "conversation_initiation_client_data": value}
    r = normalize({"type": "post_call_transcription", "data": data})
    expected = "1.5" if value == 1.5 else None  # numbers read as text, as for the ids
    assert (r["agent_name"], r["environment"]) == (expected, expected)


def test_a_field_nobody_knows_stays_in_the_payload() -> None:
    event = payloads(1, now=NOW).post_call_transcription()
    event["data"]["sentiment_v9"] = {"score": 0.7}
    event["brand_new_top_level"] = [1, 2]
    r = normalize(event)
    assert r["payload"]["data"]["sentiment_v9"] == {"score": 0.7}
    assert r["payload"]["brand_new_top_level"] == [1, 2]
    assert "sentiment_v9" not in r and r["conversation_id"] == event["data"]["conversation_id"]


def stt(metadata: object) -> dict[str, object]:
    return {
        "type": "speech_to_text_transcription",
        "data": {"request_id": "r1", "webhook_metadata": metadata},
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1739537200, datetime(2025, 2, 14, 12, 46, 40, tzinfo=UTC)),
        (1739537200.25, datetime(2025, 2, 14, 12, 46, 40, 250000, tzinfo=UTC)),
        ("1739537200", datetime(2025, 2, 14, 12, 46, 40, tzinfo=UTC)),
        (" 1739537200.5 ", datetime(2025, 2, 14, 12, 46, 40, 500000, tzinfo=UTC)),
        ("2025-02-14T12:46:40Z", None),  # not unix seconds
        ("-5", None),
        ("1e9", None),
        ("nan", None),
        (float("nan"), None),
        (float("inf"), None),
        (10**20, None),
        (True, None),
        (None, None),
        ([1739537200], None),
        ({"s": 1739537200}, None),
    ],
)
def test_submitted_at_from_webhook_metadata(value: object, expected: datetime | None) -> None:
    assert normalize(stt({"submitted_at": value, "job": 7}))["submitted_at"] == expected


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        "nope",
        5,
        [1, 2],
        {},
        {"submitted_at_unix": 1739537200},
        "{",
        '{"submitted_at": ' + "[" * 100_000,  # deeper than json.loads can go
        '{"submitted_at": 1%s}' % ("0" * 5000),  # more digits than Python reads
        '["submitted_at", 1739537200]',
    ],
)
def test_no_submitted_at_without_one_in_an_object(metadata: object) -> None:
    assert normalize(stt(metadata))["submitted_at"] is None


def test_submitted_at_from_webhook_metadata_sent_as_json_text() -> None:
    """The SDK JSON-encodes what it is given: a caller who passes json.dumps(...) sends text."""
    r = normalize(stt('{"submitted_at": 1739537200}'))
    assert r["submitted_at"] == datetime(2025, 2, 14, 12, 46, 40, tzinfo=UTC)


def test_the_factory_default_metadata_has_no_submitted_at() -> None:
    event = payloads(2, now=NOW).speech_to_text_transcription()
    assert normalize(event)["submitted_at"] is None
    given = payloads(2, now=NOW).speech_to_text_transcription(webhook_metadata={"submitted_at": NOW - 9})
    assert normalize(given)["submitted_at"] == datetime.fromtimestamp(NOW - 9, tz=UTC)
