"""Deliveries as published captures show them, through a real receiver: stored, normalised, never refused.

Real bodies are Python ``json.dumps`` bytes and lack fields the docs list; a failed call has
an empty transcript and an error object; OpenTelemetry transcripts, flows runs and the
workspace's newer notices arrive too (their shapes, where undocumented, are kept as they are).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import elwh_nb
from elwh_nb import normalize, sign

from .conftest import SECRET

STAMP = 1739537297


@pytest.fixture(scope="module")
def rx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[elwh_nb.Receiver]:
    with elwh_nb.start(SECRET, store=tmp_path_factory.mktemp("real") / "rx.sqlite") as receiver:
        yield receiver


def deliver(rx: elwh_nb.Receiver, event: dict[str, Any], header: str = "ElevenLabs-Signature") -> pd.Series:
    """POST ``event`` as ElevenLabs' Python sends it, signed; its row in ``rx.events``."""
    body = json.dumps(event).encode()  # ", " and ": ", non-ASCII as \\uXXXX
    r = httpx.post(rx.local_url, content=body, headers={header: sign(body, SECRET)}, timeout=10)
    assert r.status_code == 200, r.text
    row = rx.events.loc[r.json()["id"]]
    assert rx.store.raw_body(int(r.json()["id"])) == body
    return row


def failed_call() -> dict[str, Any]:
    """A call that failed, as captures show: no turns, an error object, nothing successful."""
    return {
        "type": "post_call_transcription",
        "event_timestamp": STAMP,
        "data": {
            "agent_id": "agent_01jx",
            "conversation_id": "conv_failed_1",
            "status": "failed",
            "user_id": None,
            "transcript": [],
            "metadata": {
                "start_time_unix_secs": STAMP - 40,
                "call_duration_secs": 0,
                "cost": 0,
                "termination_reason": "",
                "error": {"code": 1011, "reason": "LLM request failed: upstream timeout"},
                "phone_call": None,
                "warnings": [],
            },
            "analysis": {
                "call_successful": "unknown",
                "transcript_summary": "",
                "evaluation_criteria_results": {},
                "data_collection_results": {"café/ñame": {"value": None}},
            },
            "conversation_initiation_client_data": {
                "dynamic_variables": {"system__timezone": "Europe/Madrid"}
            },
        },
    }


def test_a_failed_call_is_stored_with_its_error(rx: elwh_nb.Receiver) -> None:
    row = deliver(rx, failed_call())
    assert row.status == "failed" and row.conversation_id == "conv_failed_1"
    assert json.loads(row.error_details) == {"code": 1011, "reason": "LLM request failed: upstream timeout"}
    assert row.duration_s == 0 and row.call_started_at == pd.Timestamp(STAMP - 40, unit="s", tz="UTC")
    assert row.agent_name is None and row.environment is None  # absent in real deliveries
    assert row.payload["data"]["analysis"]["call_successful"] == "unknown"


@pytest.mark.parametrize(
    "strip",
    ["event_timestamp", "has_audio", "agent_name", "version_id", "environment", "metadata", "analysis"],
)
def test_a_delivery_missing_a_documented_field_is_stored(rx: elwh_nb.Receiver, strip: str) -> None:
    event = elwh_nb.payloads(11).post_call_transcription()
    event["data"]["conversation_id"] += strip  # a body of its own
    (event if strip == "event_timestamp" else event["data"]).pop(strip)
    row = deliver(rx, event)
    assert row.conversation_id.endswith(strip)
    if strip == "event_timestamp":
        assert pd.isna(row.event_timestamp) and pd.isna(row.delivery_lag_s)


def test_an_event_timestamp_as_a_digit_string_is_seconds(rx: elwh_nb.Receiver) -> None:
    """One ElevenLabs page types event_timestamp as a string."""
    event = failed_call()
    event["event_timestamp"] = str(STAMP)
    event["data"]["conversation_id"] = "conv_string_stamp"
    assert deliver(rx, event).event_timestamp == pd.Timestamp(STAMP, unit="s", tz="UTC")


def test_the_speech_to_text_guides_header_name(rx: elwh_nb.Receiver) -> None:
    event = elwh_nb.payloads(12).speech_to_text_transcription()
    row = deliver(rx, event, header="x-elevenlabs-signature")
    assert row.request_id == event["data"]["request_id"]


def test_an_opentelemetry_transcript_gives_ids_status_and_times(rx: elwh_nb.Receiver) -> None:
    factory = elwh_nb.payloads(13)
    ok, failed = factory.post_call_transcription_otel(), factory.post_call_transcription_otel(failed=True)
    for event, status in [(ok, "done"), (failed, "failed")]:
        row = deliver(rx, event)
        root = event["data"]["otlp_traces"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        start, end = int(root["startTimeUnixNano"]), int(root["endTimeUnixNano"])
        assert row.event_type == "post_call_transcription_otel" and row.status == status
        assert (row.conversation_id, row.agent_id) == (
            event["data"]["conversation_id"],
            event["data"]["agent_id"],
        )
        assert row.call_started_at == pd.Timestamp(start, unit="ns", tz="UTC").floor("us")
        assert row.duration_s == pytest.approx((end - start) / 1e9)


def test_otel_spans_nobody_knows_are_kept_and_odd_traces_never_raise() -> None:
    event = elwh_nb.payloads(14).post_call_transcription_otel()
    spans = event["data"]["otlp_traces"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({"name": "elevenlabs.rag.retrieve", "kind": 3, "attributes": [{"key": "x", "value": {}}]})
    record = normalize(event)
    assert record["status"] == "done" and record["payload"] is event
    assert any(s["name"] == "elevenlabs.rag.retrieve" for s in spans)
    # No root span named as such: the first span without a parent is the call.
    renamed = copy.deepcopy(event)
    renamed["data"]["otlp_traces"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] = "root"
    assert normalize(renamed)["duration_s"] == record["duration_s"]
    traces: Any
    for traces in (
        None,
        [],
        "x",
        {"resourceSpans": 5},
        {"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]},
    ):
        odd = normalize({"type": "post_call_transcription_otel", "data": {"otlp_traces": traces}})
        assert odd["status"] is None and odd["duration_s"] is None
    root = {"name": "elevenlabs.conversation", "startTimeUnixNano": "20", "endTimeUnixNano": "10"}
    backwards = normalize({"data": {"otlp_traces": {"resourceSpans": [{"scopeSpans": [{"spans": [root]}]}]}}})
    assert backwards["duration_s"] is None  # an end before the start is no duration
    assert backwards["call_started_at"] == datetime(1970, 1, 1, tzinfo=timezone.utc).replace(microsecond=0)


def flows_run(status: str) -> dict[str, Any]:
    """``data`` is the run as the runs GET API returns it (the SDK's TemplateRunResponse)."""
    return {
        "type": "flows_template_run",
        "event_timestamp": STAMP,
        "data": {
            "id": f"run_{status}",
            "template_id": "tmpl_1",
            "version_id": "ver_3",
            "status": status,
            "outputs": {"port_1": {"type": "object", "status": status}},
        },
    }


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_flows_run_is_kept_with_its_id_and_status(rx: elwh_nb.Receiver, status: str) -> None:
    row = deliver(rx, flows_run(status))
    assert (row.event_type, row.request_id, row.status) == ("flows_template_run", f"run_{status}", status)
    rx.expect(f"run_{status}x", kind="flows run")  # a run is a job like any other
    assert rx.jobs.set_index("job_id").loc[f"run_{status}x", "status"] == "waiting"


# Shapes not documented: guesses at what the notices carry, all of which must simply be kept.
UNDOCUMENTED: dict[str, dict[str, Any]] = {
    "answering_machine_detection": {
        "agent_id": "agent_1",
        "conversation_id": "conv_amd",
        "result": "machine",
    },
    "agent_qa": {
        "agent_id": "agent_2",
        "conversation_id": "conv_qa",
        "score": 0.7,
        "criteria": [{"id": "a"}],
    },
    "convai_alert": {"alert": {"name": "error rate", "threshold": 0.1}, "workspace": "ws"},
}


@pytest.mark.parametrize("event_type", UNDOCUMENTED)
def test_undocumented_notices_are_kept_with_the_ids_they_have(rx: elwh_nb.Receiver, event_type: str) -> None:
    data = UNDOCUMENTED[event_type]
    row = deliver(rx, {"type": event_type, "event_timestamp": STAMP, "data": data})
    assert row.event_type == event_type and row.payload["data"] == data
    assert row.conversation_id == data.get("conversation_id") and row.agent_id == data.get("agent_id")


def test_every_row_here_came_in_whole(rx: elwh_nb.Receiver) -> None:
    """Nothing above was refused: the receiver logged no failure for these bodies."""
    assert rx.failures.empty


def test_the_store_file_keeps_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "rx.sqlite"
    with elwh_nb.start(SECRET, store=path) as live:
        deliver(live, flows_run("completed"))
        deliver(live, failed_call())
    with elwh_nb.EventStore(path) as store:
        events = store.events
        assert events.request_id.tolist() == ["run_completed", None]
        assert json.loads(events.error_details.iloc[1])["code"] == 1011
