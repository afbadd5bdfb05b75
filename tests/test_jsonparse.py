"""The fast body parser gives exactly what ``json.loads(raw.decode("utf-8"))`` gives.

Same value (types, key order, floats bit for bit), or the same exception with the same
message, on generated bodies: the SDK-agreement test's bodies, plus each place where
orjson and json.loads differ (NaN/Infinity, overflowing floats, lone surrogates, integers
outside 64 bits, bytes that are not UTF-8, deep nesting).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from elwh_nb._core import jsonparse
from elwh_nb._core.signature import parse_event

from .test_sdk_agreement import bodies as sdk_bodies


def shape(value: Any) -> list[Any]:
    """The value as a flat list of typed tokens (no recursion: bodies may nest deeply)."""
    out: list[Any] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            out.append(("dict", list(v)))
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list):
            out.append(("list", len(v)))
            stack.extend(reversed(v))
        elif isinstance(v, float):
            out.append(("float", "nan" if math.isnan(v) else v.hex()))
        else:
            out.append((type(v).__name__, v))
    return out


def outcome(parse: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "value", shape(parse(raw))
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


def reference(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"))


def assert_same(raw: bytes) -> None:
    assert outcome(jsonparse.loads, raw) == outcome(reference, raw)


# Values whose JSON orjson reads differently from json.loads (or refuses).
awkward_scalars = st.one_of(
    st.floats(),  # nan and infinities become NaN / Infinity / -Infinity
    st.integers(),  # unbounded: beyond 64 bits too
    st.integers(2**63 - 3, 2**64 + 3),
    st.integers(-(2**63) - 3, -(2**63) + 3),
    st.sampled_from(["\ud800", "\udfff", "a\udc00b", "\ud83d\ude00", "\ud83d"]),
    st.text(),
)
awkward_values = st.recursive(
    st.none() | st.booleans() | awkward_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
number_texts = st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,4})?", fullmatch=True)


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    # Shallow, or around where json.loads (the recursion limit) and orjson (1024) give up.
    depth = draw(st.one_of(st.integers(0, 40), st.integers(900, 1100)))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'[{"a":', b"}]")]))
    return b'{"x":' + opener * depth + b"1" + closer * depth + b"}"


raw_bodies = st.one_of(
    sdk_bodies.map(lambda text: text.encode("utf-8", "surrogatepass")),
    awkward_values.map(lambda v: json.dumps({"v": v}).encode()),
    awkward_values.map(lambda v: json.dumps({"v": v}, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    number_texts.map(lambda n: b'{"n":' + n.encode() + b"}"),
    nested(),
    st.binary(max_size=40),
    st.binary(max_size=20).map(lambda b: b'{"a":"' + b + b'"}'),
)


@given(raw=raw_bodies)
@example(raw=b'{"a":NaN,"b":Infinity,"c":-Infinity}')
@example(raw=b'{"a":1e400}')
@example(raw=b'{"a":"\\ud800"}')
@example(raw=b'{"a":18446744073709551616}')
@example(raw=b'{"a":-9223372036854775809}')
@example(raw=b'{"a":123456789012345678901234567890}')
@example(raw=b'{"\xed\xa0\x80":1}')
@example(raw=b"\xef\xbb\xbf{}")
@example(raw=b'{"a":1,"b":2,"a":3}')
@example(raw=b"[" * 1000 + b"]" * 1000)
@example(raw=b"[" * 100_000)
def test_same_as_json_loads(raw: bytes) -> None:
    assert_same(raw)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"a":18446744073709551616}', "an integer beyond 64 bits"),
        (b'{"a":"' + b"1" * 19 + b'"}', "a run of 19 digits, even in a string"),
        (b"[" * 600 + b"]" * 600, "deep nesting"),
    ],
)
def test_risky_bodies_are_left_to_json_loads(raw: bytes, why: str) -> None:
    assert not jsonparse.orjson_agrees(raw), why
    assert_same(raw)


@pytest.mark.parametrize(("opener", "closer"), [(b"[", b"]"), (b'{"a":', b"}")])
def test_same_as_json_loads_at_every_depth_near_the_limits(opener: bytes, closer: bytes) -> None:
    """Outside hypothesis (which raises the recursion limit), where json.loads and orjson give up."""
    for depth in [*range(0, 30), *range(850, 1030)]:
        assert_same(opener * depth + b"1" + closer * depth)


def test_orjson_does_differ_where_the_checks_say() -> None:
    """If a new orjson stops differing, the checks cost little; if it differs more, the property test says."""
    assert isinstance(orjson.loads(b"18446744073709551616"), float)
    assert json.loads("18446744073709551616") == 2**64


def test_a_long_body_is_checked_across_its_pieces() -> None:
    """A long integer that straddles the boundary between two checked pieces is still found."""
    head = b'{"pad":"' + b"x" * (jsonparse._CHUNK - 20) + b'","n":'
    raw = head + b"1" * 30 + b"}"
    assert len(head) < jsonparse._CHUNK < len(head) + 30
    assert not jsonparse.orjson_agrees(raw)
    assert jsonparse.loads(raw)["n"] == int("1" * 30)


def test_parse_event_on_a_realistic_body_matches_json_loads() -> None:
    from elwh_nb import payloads

    factory = payloads(3)
    for event in factory.batch(50):
        raw = factory.body(event)
        # Realistic bodies take the fast path, but OpenTelemetry's: its nanosecond times are
        # 19-digit strings, and the check, made to say no falsely rather than yes, sees a run.
        otel = event["type"] == "post_call_transcription_otel"
        assert jsonparse.orjson_agrees(raw) is not otel
        assert shape(parse_event(raw)) == shape(reference(raw))
