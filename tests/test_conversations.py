"""What is inside each call: turns, tool calls and conversations, derived once as events are stored.

On bodies shaped as real deliveries (tests/real_calls.py): nested and flat metrics, a failed
call, tool errors, both transcript formats, missing fields, Python ``json.dumps`` bytes;
through a real receiver, a store reopened, a reader in another process.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import elwh_nb
from elwh_nb import EventStore, StoreError, sign
from elwh_nb._core import derived as derived_module
from elwh_nb._core.derive import derive
from elwh_nb._core.schema import CLIP_CHARS

from . import real_calls
from .conftest import SECRET


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "s.sqlite") as s:
        yield s


def test_a_real_calls_turns_have_its_stage_latencies_and_waits(store: EventStore) -> None:
    store.append(real_calls.body(real_calls.transcription()))
    turns = store.turns
    assert list(turns.role) == ["agent", "user", "agent", "user", "agent", "user", "agent", "agent"]
    assert list(turns.turn) == list(range(8)) and set(turns.conversation_id) == {real_calls.CONVERSATION}
    assert turns.convai_tts_service_ttfb.iloc[0] == pytest.approx(0.2277)
    assert turns.convai_asr_trailing_service_latency.iloc[1] == pytest.approx(0.31)
    assert turns.convai_llm_tool_request_generation_latency.iloc[2] == pytest.approx(0.61)
    # A metric nobody listed gets a column of its own, not dropped.
    assert turns.convai_new_stage_latency.iloc[6] == pytest.approx(0.05)
    assert turns.convai_new_stage_latency.isna().sum() == 7
    # The caller's wait: the user's trailing transcription + LLM first sentence + TTS first byte.
    assert turns.wait_s.iloc[2] == pytest.approx(0.31 + 0.83 + 0.21)
    assert turns.wait_s.iloc[4] == pytest.approx(2.4 + 0.3)  # after a user turn with no metrics
    assert turns.wait_s.iloc[6] == pytest.approx(0.4 + 0.7)  # only the LLM's first token
    assert math.isnan(turns.wait_s.iloc[0]) and math.isnan(turns.wait_s.iloc[7])  # nobody was waiting
    assert turns.llm_input_tokens.iloc[2] == 2161 and turns.llm_output_tokens.iloc[2] == 38
    assert list(turns.tool_calls) == [0, 0, 1, 0, 0, 0, 1, 1]
    assert turns.interrupted.iloc[4] and not turns.interrupted.iloc[2]
    assert turns.message_chars.iloc[6] == 0 and turns.message_chars.iloc[1] == len(
        "Where is my order A-1042?"
    )
    assert turns.source_medium.iloc[1] == "audio"
    start = pd.Timestamp(real_calls.STAMP - 60, unit="s", tz="UTC")
    assert turns.said_at.iloc[4] == start + pd.Timedelta(seconds=13)
    assert turns.time_in_call_secs.iloc[4] == 13


def test_the_docs_flat_metrics_give_the_same_rows() -> None:
    nested = real_calls.transcription()
    assert repr(derive(real_calls.flat_metrics(nested))) == repr(derive(nested))
    plain = real_calls.flat_metrics(nested)  # the docs' example also writes bare numbers
    for turn in plain["data"]["transcript"]:
        if turn["conversation_turn_metrics"]:
            turn["conversation_turn_metrics"] = {
                k: v["elapsed_time"] for k, v in turn["conversation_turn_metrics"].items()
            }
    assert repr(derive(plain)) == repr(derive(nested))


def test_tool_calls_are_joined_to_their_results(store: EventStore) -> None:
    store.append(real_calls.body(real_calls.transcription()))
    calls = store.tool_calls.set_index("request_id")
    lookup = calls.loc["toolu_lookup_1"]
    assert (lookup.tool_name, lookup.tool_type, lookup.method) == ("lookup_order", "webhook", "POST")
    assert lookup.url == "https://api.example.com/orders/lookup" and lookup.turn == 2
    assert json.loads(lookup.parameters) == {"order_id": "A-1042"}
    assert lookup.latency_s == pytest.approx(0.8123) and lookup.is_error is False
    assert lookup.tool_has_been_called is True
    # Shortened in the frame, whole in the store.
    assert len(lookup.result) == 200 and lookup.result.endswith("\u2026")
    whole = store.tool_result(int(store.tool_calls.index[store.tool_calls.request_id == "toolu_lookup_1"][0]))
    assert whole is not None and whole.startswith('{"status": "shipped"') and len(whole) > 300
    missing = calls.loc["toolu_refund_2"]
    assert missing.tool_type is None and missing.is_error is True and missing.tool_has_been_called is False
    assert missing.result == "Tool issue_refund not found"
    end = calls.loc["toolu_end_3"]
    assert (end.tool_name, end.tool_type, end.is_error, end.turn) == ("end_call", "system", False, 7)
    with pytest.raises(KeyError):
        store.tool_result(999)


def test_a_result_in_a_later_turn_joins_its_call() -> None:
    event = real_calls.transcription()
    turns = event["data"]["transcript"]
    turns[3]["tool_results"] = turns[2]["tool_results"]  # the result comes with the next turn
    turns[2]["tool_results"] = []
    rows = derive(event)
    assert rows is not None
    (lookup,) = [c for c in rows.tool_calls if c.request_id == "toolu_lookup_1"]
    assert (lookup.turn, lookup.method, lookup.latency_s, lookup.is_error) == (2, "POST", 0.8123, False)
    assert len(rows.tool_calls) == 3


def test_the_conversation_row_has_cost_outcome_and_analysis(store: EventStore) -> None:
    store.append(real_calls.body(real_calls.transcription()))
    c = store.conversations.loc[real_calls.CONVERSATION]
    assert (c.status, c.cost, c.llm_price, c.llm_charge, c.call_charge, c.tier) == (
        "done",
        314,
        0.0012,
        4,
        310,
        "creator",
    )
    assert (c.direction, c.phone_type, c.call_sid) == ("inbound", "twilio", "CA0123456789abcdef")
    assert (c.call_successful, c.call_summary_title) == ("failure", "Order status and refund")
    assert c.termination_reason == "end_call tool was called." and c.error is None
    assert c["eval.resolved"] == "failure" and c["eval.polite/tone"] == "success"
    assert c["data.order_id"] == "A-1042" and c["data.refund_amount"] == 20 and c["data.café/ñame"] is None
    assert c["tokens.gemini-2.0-flash"] == 4563 + 59  # the bill's count
    assert (c.turns, c.user_turns, c.agent_turns, c.tool_calls, c.tool_errors) == (8, 3, 5, 3, 1)
    assert c.llm_input_tokens == 2161 + 2402 and c.main_language == "en" and c.formats == "json"
    assert c.wait_p50_s == pytest.approx(sorted([0.31 + 0.83 + 0.21, 2.4 + 0.3, 0.4 + 0.7])[1])
    assert c.convai_llm_service_ttfb_p50 == pytest.approx(0.7)
    assert c.started_at == pd.Timestamp(real_calls.STAMP - 60, unit="s", tz="UTC") and c.duration_s == 27
    assert c.agent_name is None  # real deliveries lack it


def test_a_failed_call_without_event_timestamp_is_a_row_with_what_is_known(store: EventStore) -> None:
    store.append(real_calls.body(real_calls.failed()))
    c = store.conversations.loc["conv_failed_1"]
    assert (c.status, c.call_successful, c.turns, c.tool_calls) == ("failed", "unknown", 0, 0)
    assert json.loads(c.error) == {"code": 1011, "reason": "LLM request failed: upstream timeout"}
    assert math.isnan(c.wait_p50_s) and not pd.isna(c.received_at)
    assert store.turns.empty and store.tool_calls.empty


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("transcript"),
        lambda d: d.pop("metadata"),
        lambda d: d.pop("analysis"),
        lambda d: d.update(transcript="not a list"),
        lambda d: d["transcript"].append(7),
        lambda d: d["transcript"][2].update(
            conversation_turn_metrics={"metrics": {"x": {"elapsed_time": "n/a"}}}
        ),
        lambda d: d["transcript"][2].update(conversation_turn_metrics=[1, 2]),
        lambda d: d["transcript"][2].update(tool_calls="x", tool_results=[None]),
        lambda d: d["transcript"][2].update(llm_usage={"model_usage": {"m": {"input": {"tokens": "many"}}}}),
        lambda d: d["metadata"].update(charging=None, phone_call="x", cost="free", error=[1]),
        lambda d: d["analysis"].update(evaluation_criteria_results=[], data_collection_results={"a": 5}),
        lambda d: d["transcript"][0].update(time_in_call_secs=None, role=None, message=5),
    ],
)
def test_odd_bodies_give_rows_never_an_exception(store: EventStore, damage: Any) -> None:
    event = real_calls.transcription()
    damage(event["data"])
    store.append(real_calls.body(event))
    assert len(store.conversations) == 1 and len(store.events) == 1
    assert store.conversations.index[0] == real_calls.CONVERSATION


def test_other_events_give_no_rows_and_a_call_that_never_started_is_a_conversation(store: EventStore) -> None:
    factory = elwh_nb.payloads(4)
    for kind in ("post_call_audio", "speech_to_text_transcription", "voice_removed"):
        store.append(factory.body(factory.make(kind)))
    assert store.conversations.empty and store.turns.empty
    failure = factory.make("call_initiation_failure")
    store.append(factory.body(failure))
    c = store.conversations.loc[failure["data"]["conversation_id"]]
    assert c.status == "initiation_failed" and c.failure_reason == failure["data"]["failure_reason"]
    assert c.formats == "initiation_failure" and c.turns == 0


def otel_of(event: dict[str, Any]) -> dict[str, Any]:
    """The factory's OpenTelemetry transcript of the same conversation as ``event``."""
    otel = elwh_nb.payloads(5).post_call_transcription_otel(failed=False)
    otel["data"]["conversation_id"] = event["data"]["conversation_id"]
    return otel


@pytest.mark.parametrize("order", ["json first", "otel first"])
def test_both_formats_of_one_conversation_are_one_conversation(store: EventStore, order: str) -> None:
    event = real_calls.transcription()
    otel = otel_of(event)
    first, second = (event, otel) if order == "json first" else (otel, event)
    store.append(real_calls.body(first))
    seen = store.turns  # memory loaded, so the second is followed (or replaced) in memory
    assert len(seen) > 0
    store.append(real_calls.body(second))
    c = store.conversations
    assert len(c) == 1 and c.iloc[0].formats == ("json+otel" if order == "json first" else "otel+json")
    row = c.iloc[0]
    assert (row.events, row.cost, row.call_successful, row.turns) == (2, 314, "failure", 8)
    # The JSON transcript's turns are kept, whichever came first (they say more).
    assert len(store.turns) == 8 and store.turns.convai_tts_service_ttfb.iloc[0] == pytest.approx(0.2277)
    assert len(store.tool_calls) == 3
    root = otel["data"]["otlp_traces"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    names = {a["key"]: a["value"].get("stringValue") for a in root["attributes"]}
    assert row.agent_name == names["elevenlabs.agent.name"]  # the JSON body lacks it
    store.close()
    turns, calls = store.turns, store.tool_calls
    with EventStore(store.path) as again:
        assert again.conversations.equals(c) and len(again.turns) == 8
        # A turn's conversation and agent come back from its conversation's row (the file has them once).
        pd.testing.assert_frame_equal(again.turns, turns)
        pd.testing.assert_frame_equal(again.tool_calls, calls)
        assert set(again.turns.conversation_id) == {event["data"]["conversation_id"]}


def test_the_otel_format_gives_turns_tool_calls_and_a_conversation(store: EventStore) -> None:
    otel = elwh_nb.payloads(6).post_call_transcription_otel(turns=12, failed=True)
    spans = otel["data"]["otlp_traces"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["attributes"].append(
        {"key": "elevenlabs.metrics.convai_tts_service_ttfb", "value": {"doubleValue": 0.25}}
    )
    store.append(real_calls.body(otel))
    c = store.conversations.iloc[0]
    assert (c.status, c.formats, c.turns) == ("failed", "otel", 12) and "websocket" in c.error
    turns = store.turns
    assert len(turns) == 12 and turns.time_in_call_secs.iloc[0] == 0 and turns.said_at.notna().all()
    assert turns.convai_tts_service_ttfb.iloc[0] == pytest.approx(0.25)
    assert turns.message_chars.gt(0).all() and set(turns.role) == {"agent", "user"}
    tools = [s for s in spans if s["name"].startswith("elevenlabs.tool.")]
    assert len(store.tool_calls) == len(tools) == c.tool_calls


def test_reading_after_a_new_call_costs_its_rows_and_a_reopened_store_parses_no_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = elwh_nb.payloads(7)
    path = tmp_path / "s.sqlite"
    with EventStore(path) as s:
        s.append_many([factory.body(factory.post_call_transcription()) for _ in range(20)])
        before = s.turns
        loads: list[int] = []
        real_load = derived_module.DerivedTables.load

        def counted(self: Any, db: sqlite3.Connection, writable: bool = True, **kw: Any) -> None:
            loads.append(1)
            real_load(self, db, writable, **kw)

        monkeypatch.setattr(derived_module.DerivedTables, "load", counted)
        s.append(factory.body(factory.post_call_transcription()))
        after = s.turns
        assert loads == [] and len(after) > len(before)  # memory followed: nothing read again
        assert after.iloc[: len(before)].equals(before)
        expected = (s.turns, s.tool_calls, s.conversations)
    monkeypatch.setattr(derived_module, "derive", lambda event: pytest.fail("a body was parsed again"))
    with EventStore(path) as again:
        for got, want in zip((again.turns, again.tool_calls, again.conversations), expected, strict=True):
            pd.testing.assert_frame_equal(got, want)


def test_a_rolled_back_batch_leaves_no_rows(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    factory = elwh_nb.payloads(8)
    store.append(factory.body(factory.post_call_transcription()))
    turns = store.turns
    real_write = derived_module.DerivedTables.write
    calls = []

    def failing(self: Any, db: sqlite3.Connection, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        real_write(self, db, *args)

    monkeypatch.setattr(derived_module.DerivedTables, "write", failing)
    with pytest.raises(StoreError):
        store.append_many([factory.body(factory.post_call_transcription()) for _ in range(2)])
    assert len(store.events) == 1 and store.turns.equals(turns) and len(store.conversations) == 1
    monkeypatch.undo()
    store.append(factory.body(factory.post_call_transcription()))
    assert len(store.conversations) == 2
    assert store.path is not None
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT count(*) FROM turns").fetchone()[0] == len(store.turns)


def test_a_store_from_before_derives_its_calls_once(tmp_path: Path) -> None:
    factory = elwh_nb.payloads(9)
    path = tmp_path / "old.sqlite"
    with EventStore(path) as s:
        s.append_many([factory.body(factory.post_call_transcription()) for _ in range(3)])
        expected = s.conversations.drop(columns=["received_at"])
    db = sqlite3.connect(path)  # as a file from before: no rows derived, nothing saying so
    db.executescript("DELETE FROM turns; DELETE FROM tool_calls; DELETE FROM conversations;")
    db.execute("UPDATE meta SET value = '4' WHERE key = 'derived_since'")
    db.commit()
    db.close()
    with EventStore(path) as s:
        got = s.conversations
        assert len(got) == 3 and len(s.turns) == expected.turns.sum()
        pd.testing.assert_frame_equal(got.drop(columns=["received_at"]), expected)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'derived_since'").fetchone() == ("1",)


def test_the_functions_take_an_events_frame_a_list_or_a_store(store: EventStore) -> None:
    bodies = [real_calls.body(real_calls.transcription()), real_calls.body(real_calls.failed())]
    store.append_many(bodies)
    assert elwh_nb.turns(store) is not None and len(elwh_nb.conversations(store)) == 2
    chosen = store.events[store.events.status == "failed"]
    assert list(elwh_nb.conversations(chosen).index) == ["conv_failed_1"]
    from_frame = elwh_nb.turns(store.events)
    pd.testing.assert_frame_equal(from_frame, store.turns)
    assert len(elwh_nb.tool_calls([json.loads(b) for b in bodies])) == 3
    assert len(elwh_nb.turns(bodies[0])) == 8
    with pytest.raises(ValueError, match="payload"):
        elwh_nb.turns(store.events.drop(columns=["payload"]))
    with pytest.raises(TypeError):
        elwh_nb.turns(5)


READER = """
import sys, time
from elwh_nb import EventStore
s = EventStore(sys.argv[1], readonly=True)
print(len(s.turns), len(s.conversations), flush=True)
for line in sys.stdin:
    print(len(s.turns), len(s.conversations), flush=True)
"""


def test_a_reader_in_another_process_follows_new_calls_and_replaced_turns(store: EventStore) -> None:
    factory = elwh_nb.payloads(10)
    otel = factory.post_call_transcription_otel(turns=6)
    store.append(factory.body(otel))
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(store.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None
    try:
        assert reader.stdout.readline().split() == ["6", "1"]
        store.append(factory.body(factory.post_call_transcription(turns=10)))
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().split() == ["16", "2"]
        event = factory.post_call_transcription(turns=4)  # the JSON transcript of the OTel call
        event["data"]["conversation_id"] = otel["data"]["conversation_id"]
        store.append(factory.body(event))
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().split() == ["14", "2"]
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)


def test_a_receiver_shows_what_is_inside_each_call(tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx:
        for event in (real_calls.transcription(), real_calls.failed()):
            body = real_calls.body(event)
            r = httpx.post(rx.local_url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)})
            assert r.status_code == 200, r.text
        assert len(rx.turns) == 8 and len(rx.tool_calls) == 3
        assert set(rx.conversations.index) == {real_calls.CONVERSATION, "conv_failed_1"}


def test_a_big_transcript_with_a_long_tool_result_keeps_it_whole(tmp_path: Path) -> None:
    """Over a megabyte, a body is skimmed for its record; the transcript is still read whole."""
    event = real_calls.transcription()
    long_result = "A" * (1 << 17)
    event["data"]["transcript"][2]["tool_results"][0]["result_value"] = long_result
    event["data"]["transcript"][3]["message"] = "B" * (1 << 20)
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as rx:
        body = real_calls.body(event)
        r = httpx.post(rx.local_url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)})
        assert r.status_code == 200, r.text
        calls = rx.tool_calls
        lookup_id = int(calls.index[calls.request_id == "toolu_lookup_1"][0])
        assert rx.store.tool_result(lookup_id) == long_result
        assert rx.turns.message_chars.iloc[3] == 1 << 20
        # In memory it is clipped, as it came (the frame stays small) and as a reopened store has it.
        shown = calls.result[lookup_id]
        assert len(shown) == CLIP_CHARS and shown.endswith("…")
    with EventStore(tmp_path / "rx.sqlite") as again:
        assert again.tool_calls.result[lookup_id] == shown


@pytest.fixture
def small_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    from elwh_nb._core import derived_copy

    monkeypatch.setattr(derived_copy, "MIN_TURNS", 10)


def frames_of(store: EventStore) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return store.turns, store.tool_calls, store.conversations


def test_a_big_store_reopens_its_turns_from_a_copy_that_matches(
    tmp_path: Path, small_copies: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from elwh_nb._core import derived_copy

    factory = elwh_nb.payloads(11)
    path = tmp_path / "s.sqlite"
    with EventStore(path) as s:
        s.append_many([factory.body(factory.post_call_transcription()) for _ in range(6)])
        s.append(real_calls.body(real_calls.transcription()))  # a new metric: a named column
        expected = frames_of(s)
    assert derived_copy.path_for(path).exists()
    read: list[int] = []
    real_read = derived_module._read

    def counted(db: sqlite3.Connection, table: Any, after: int) -> Any:
        read.append(after)
        return real_read(db, table, after)

    monkeypatch.setattr(derived_module, "_read", counted)
    with EventStore(path) as again:
        for got, want in zip(frames_of(again), expected, strict=True):
            pd.testing.assert_frame_equal(got, want)
        assert read and all(after > 0 for after in read)  # only rows after the copy's were read


@pytest.mark.parametrize("change", ["tampered", "merged since", "replaced since"])
def test_a_copy_that_does_not_match_is_ignored(tmp_path: Path, small_copies: None, change: str) -> None:
    from elwh_nb._core import derived_copy

    factory = elwh_nb.payloads(12)
    path = tmp_path / "s.sqlite"
    otel = factory.post_call_transcription_otel(turns=6)
    with EventStore(path) as s:
        s.append_many([factory.body(factory.post_call_transcription()) for _ in range(4)])
        s.append(factory.body(otel))
        s.turns  # noqa: B018  (loaded, so a copy is kept at closing)
    copy = derived_copy.path_for(path)
    if change == "tampered":
        data = bytearray(copy.read_bytes())
        data[len(data) // 2] ^= 0xFF
        copy.write_bytes(bytes(data))
    else:  # another session changes the file without loading the frames (no new copy)
        with EventStore(path) as s:
            if change == "merged since":
                event = factory.post_call_transcription_otel(turns=2)
            else:
                event = factory.post_call_transcription(turns=4)
            event["data"]["conversation_id"] = otel["data"]["conversation_id"]
            s.append(factory.body(event))
        assert copy.exists()
    with EventStore(path) as again:
        got = frames_of(again)
    fresh = tmp_path / "fresh.sqlite"
    with sqlite3.connect(fresh) as db, sqlite3.connect(path) as old:
        old.backup(db)
    copy_of_fresh = derived_copy.path_for(fresh)
    assert not copy_of_fresh.exists()
    with EventStore(fresh) as from_file:
        for g, want in zip(got, frames_of(from_file), strict=True):
            pd.testing.assert_frame_equal(g, want)
    assert got[2].loc[otel["data"]["conversation_id"]].events == (1 if change == "tampered" else 2)


def test_a_frame_read_again_is_built_once_yet_stays_the_callers(store: EventStore) -> None:
    factory = elwh_nb.payloads(12)
    store.append(factory.body(factory.post_call_transcription(turns=4)))
    turns = store.turns
    turns["mine"] = 1.0  # a column the user adds to their frame
    conversations = store.conversations
    conversations.loc[conversations.index[0], "agent_id"] = "changed"
    assert "mine" not in store.turns.columns
    assert store.conversations["agent_id"].iloc[0] != "changed"
    store.append(factory.body(factory.post_call_transcription(turns=6)))
    assert len(store.turns) == 10 and len(store.conversations) == 2


def test_llm_tokens_count_each_model_once_whatever_names_it_uses() -> None:
    from elwh_nb._core.derive import llm_tokens

    usage = {
        "model_usage": {
            "gpt-4o-mini": {
                "input": {"tokens": 100},
                "input_cache_read": {"tokens": 20},
                "output_total": {"tokens": 30},
                "output": {"tokens": 30},  # the same tokens under an older name: not counted twice
            },
            "gemini-2.0-flash": {"output": {"tokens": 5}, "input": {"tokens": "7"}},
            "odd": "not an object",
        }
    }
    assert llm_tokens(usage) == (127.0, 35.0, {"gpt-4o-mini": 150.0, "gemini-2.0-flash": 12.0})
    assert all(v != v for v in llm_tokens({"model_usage": {}})[:2])  # NaN: it says nothing
    assert llm_tokens(None)[2] == {} and llm_tokens([1, 2])[2] == {}


def test_ids_never_come_back_after_rows_are_replaced(store: EventStore) -> None:
    """A reader that follows ids (another process, an export) must find every new row after its
    last: rows replaced (an OTel transcript's by the JSON one's) leave their ids unused."""
    factory = elwh_nb.payloads(21)
    otel = next(
        e
        for e in (factory.post_call_transcription_otel(turns=20, failed=False) for _ in range(50))
        if derived_module.derive(e).tool_calls  # type: ignore[union-attr]
    )
    store.append(factory.body(otel))
    before = store.turns.index.max(), store.tool_calls.index.max()
    assert len(store.tool_calls) > 0
    plain = factory.post_call_transcription(turns=2, failed=False)
    plain["data"]["conversation_id"] = otel["data"]["conversation_id"]
    for turn in plain["data"]["transcript"]:
        turn["tool_calls"], turn["tool_results"] = [], []
    store.append(factory.body(plain))  # fewer turns, no tool calls: the highest ids were deleted
    store.append(factory.body(factory.post_call_transcription(turns=12, failed=False)))
    turns, calls = store.turns, store.tool_calls
    assert len(turns) == 14 and turns.index.min() > before[0]
    assert len(calls) > 0 and calls.index.min() > before[1]
