"""Big bodies parsed for their record without their long strings (elwh_nb._core.skim).

Whatever the skim does, the record, the stored bytes, every rejection and what callbacks
get must be exactly what a whole parse gives, on real-shaped bodies (Python's
``json.dumps`` with its spaces, as ElevenLabs sends them, and other spellings).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

import elwh_nb
from elwh_nb import EventStore, sign
from elwh_nb._core.derive import derive
from elwh_nb._core.exceptions import SignatureError
from elwh_nb._core.intake import Answer, Intake, Verified
from elwh_nb._core.normalize import READ_KEYS, READ_WHOLE, normalize
from elwh_nb._core.payloads.factory import EVENT_TYPES
from elwh_nb._core.signature import verify
from elwh_nb._core.skim import BIG, LONG, skim

from .conftest import SECRET
from .helpers import wait_for

AUDIO = 2 * BIG  # MP3 bytes: a body well over BIG once in base64


def record(event: dict[str, Any]) -> dict[str, Any]:
    """What the store takes from an event: its record, and the rows derived from it."""
    out = normalize(event)
    out.pop("payload")
    out["derived"] = repr(derive(event))  # repr: NaN equals NaN
    return out


def audio_event(seed: int = 3) -> dict[str, Any]:
    return elwh_nb.payloads(seed).post_call_audio(audio_bytes=AUDIO)


SPELLINGS = {
    "json.dumps (ElevenLabs' own spacing)": lambda e: json.dumps(e).encode(),
    "compact": lambda e: json.dumps(e, separators=(",", ":")).encode(),
    "indented": lambda e: json.dumps(e, indent=2).encode(),
    "orjson": orjson.dumps,
}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_skimmed_audio_body_gives_the_whole_parse_record(spelling: str) -> None:
    event = audio_event()
    raw = SPELLINGS[spelling](event)
    assert len(raw) > BIG
    skimmed = skim(bytearray(raw))
    assert skimmed is not None
    assert skimmed["data"]["full_audio"] == ""  # the audio was not made a string
    whole = json.loads(raw)
    assert record(skimmed) == record(whole)
    whole["data"]["full_audio"] = ""
    assert skimmed == whole  # nothing else left out or changed


def leaves(value: Any, read: bool = True, whole: bool = False) -> Iterator[tuple[Any, Any, bool]]:
    """(container, key, whether normalize may read it) of every value under ``value`` that
    holds no other (strings, numbers, nulls, empty objects and lists)."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        keyed = read and isinstance(value, dict)
        inside = whole or (keyed and key in READ_WHOLE)
        readable = inside or (keyed and key in READ_KEYS)
        if isinstance(item, (dict, list)) and item:
            yield from leaves(item, readable, inside)
        else:
            yield value, key, readable


#: Strings that would change a field that read them: a time, a number, an id, metadata as text.
TELLING = ("2024-01-01T00:00:00Z", "17", "x", '{"submitted_at": 5}')


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_no_value_outside_the_read_keys_changes_the_record(event_type: str) -> None:
    """What the skim relies on: READ_KEYS names every key normalize and derive read, on every type."""
    for seed in range(3):
        event = elwh_nb.payloads(seed).make(event_type)
        expected = record(event)
        # Any value, not only strings: a key missing from READ_KEYS shows even where the
        # factory puts a number (a string there would change the record just as well).
        unread = [(container, key) for container, key, readable in leaves(event) if not readable]
        # Types whose every field the store reads: small ones, the OpenTelemetry spans, a failed start.
        assert unread or event_type.startswith(
            ("speech.", "voice", "project_", "chapter_", "post_call_transcription_otel", "call_initiation")
        )
        for container, key in unread:
            original = container[key]
            for value in TELLING:
                container[key] = value
                try:
                    assert record(event) == expected, (event_type, key, value)
                finally:
                    container[key] = original


def test_a_long_string_the_record_reads_is_parsed_whole() -> None:
    event = audio_event()
    event["data"]["conversation_id"] = "c" * LONG  # absurd, but the record must still be exact
    raw = json.dumps(event).encode()
    assert skim(raw) is None
    intake = Intake(SECRET, EventStore(":memory:"), tolerance=None, future_tolerance=None)
    checked = intake.check(raw, {"ElevenLabs-Signature": sign(raw, SECRET)}, remote=None, path="/")
    assert isinstance(checked, Verified) and checked.whole
    assert checked.event == json.loads(raw)


@pytest.mark.parametrize(
    "change",
    [
        "long key",  # a marker as a key is not a value: parse whole
        "escaped quote before",  # the run starts inside a string, after \"
        "numbers between strings",  # a long run outside any string
    ],
)
def test_what_the_markers_could_change_is_parsed_whole(change: str) -> None:
    event = audio_event()
    if change == "long key":
        event["data"]["k" * LONG] = 1
        raw = json.dumps(event).encode()
    elif change == "escaped quote before":
        event["data"]["note"] = '"' + "A" * LONG
        raw = json.dumps(event).encode()
    else:
        raw = json.dumps(event).encode()[:-1] + b', "list": ["x", ' + b"1, " * LONG + b'"y"]}'
    assert len(raw) > BIG
    assert skim(raw) is None
    intake = Intake(SECRET, EventStore(":memory:"), tolerance=None, future_tolerance=None)
    checked = intake.check(raw, {"ElevenLabs-Signature": sign(raw, SECRET)}, remote=None, path="/")
    assert isinstance(checked, Verified) and checked.event == json.loads(raw)


def test_a_long_string_in_a_list_is_left_out() -> None:
    event = audio_event()
    event["data"]["parts"] = ["B" * LONG, {"status": "C" * LONG}]
    raw = json.dumps(event).encode()
    skimmed = skim(raw)
    assert skimmed is not None
    assert skimmed["data"]["parts"] == ["", {"status": ""}]  # normalize reads nothing in a list
    assert record(skimmed) == record(json.loads(raw))


BROKEN = {
    "trailing garbage": lambda raw: raw + b" x",
    "cut short": lambda raw: raw[:-2],
    "a control character in the audio": lambda raw: raw.replace(
        b'"full_audio": "', b'"full_audio": "\x01', 1
    ),
    "bad UTF-8 in the audio": lambda raw: raw.replace(b'"full_audio": "', b'"full_audio": "\xff', 1),
    "bad UTF-8 beside it": lambda raw: raw.replace(b'"agent_id": "', b'"agent_id": "\xff', 1),
    "a JSON list": lambda raw: b"[" + raw + b"]",
    "NaN beside it": lambda raw: raw[:-1] + b', "n": NaN}',
}


@pytest.mark.parametrize("broken", BROKEN)
def test_a_big_body_is_rejected_or_taken_exactly_as_when_parsed_whole(broken: str) -> None:
    raw = BROKEN[broken](json.dumps(audio_event()).encode())
    header = sign(raw, SECRET)
    try:
        expected: Any = verify(raw, header, SECRET)
    except SignatureError as exc:
        expected = (exc.reason, str(exc))
    store = EventStore(":memory:")
    intake = Intake(SECRET, store, tolerance=None, future_tolerance=None)
    checked = intake.check(bytearray(raw), {"ElevenLabs-Signature": header}, remote=None, path="/")
    if isinstance(expected, tuple):
        assert isinstance(checked, Answer) and checked.body["reason"] == expected[0]
        assert store.failures.explanation.iloc[-1] == expected[1]
    else:  # NaN: json.loads takes it
        assert isinstance(checked, Verified) and record(checked.event) == record(expected)


def test_callbacks_get_the_whole_event_and_the_store_the_exact_bytes(rx: elwh_nb.Receiver) -> None:
    event = audio_event(seed=4)
    raw = json.dumps(event).encode()
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    @rx.on_event
    def keep(got: dict[str, Any]) -> None:
        seen.append(got)
        done.set()

    pieces = (raw[i : i + 65536] for i in range(0, len(raw), 65536))  # chunked, as the route relays
    answer = httpx.post(rx.local_url, content=pieces, headers={"ElevenLabs-Signature": sign(raw, SECRET)})
    assert answer.status_code == 200, answer.text
    wait_for(done.is_set, timeout=30, what="the callback")
    assert seen == [event]  # the audio included
    event_id = int(rx.events.index[0])
    assert rx.store.raw_body(event_id) == raw
    row = rx.events.iloc[0]
    assert row.conversation_id == event["data"]["conversation_id"] and row.body_bytes == len(raw)
    assert rx.events.payload.iloc[0].to_dict() == event
