"""sign/verify: the reference test vector, every reason, rotation, and hostile headers."""

from __future__ import annotations

import hmac
import json
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import elwh_nb
from elwh_nb import REASONS, ElwhError, SignatureError, sign, verify
from elwh_nb._core import signature as signature_module

from .conftest import OTHER_SECRET, SECRET

# The test vector from the reference file (the SDK with time mocked, stdlib and openssl agree).
VECTOR_SECRET = "wsec_test_secret"
VECTOR_BODY = (
    '{"type":"post_call_transcription","event_timestamp":1739537297,'
    '"data":{"agent_id":"xyz","conversation_id":"abc","status":"done"}}'
)
VECTOR_HEADER = "t=1739537297,v0=98e19ab93a5b68dcdea683ff9e66a2a0b4cd1eda5d1629e173891011e7f3c56e"
NOW = 1_739_537_297
BODY = b'{"type":"post_call_transcription","event_timestamp":1739537297,"data":{}}'


def test_reference_vector_verifies() -> None:
    event = verify(VECTOR_BODY, VECTOR_HEADER, VECTOR_SECRET, now=NOW)
    assert event["data"]["conversation_id"] == "abc"


def test_sign_reproduces_reference_vector() -> None:
    assert sign(VECTOR_BODY, VECTOR_SECRET, timestamp=NOW) == VECTOR_HEADER


def test_bytes_and_str_bodies_are_the_same_bytes() -> None:
    assert verify(VECTOR_BODY.encode(), VECTOR_HEADER, VECTOR_SECRET, now=NOW) == json.loads(VECTOR_BODY)
    assert verify(bytearray(VECTOR_BODY.encode()), VECTOR_HEADER, VECTOR_SECRET, now=NOW)


def test_body_is_used_byte_for_byte() -> None:
    header = sign(BODY, SECRET, NOW)
    for changed in (BODY + b" ", BODY + b"\n", BODY.replace(b":", b": ")):
        with pytest.raises(SignatureError) as info:
            verify(changed, header, SECRET, now=NOW)
        assert info.value.reason == "signature_mismatch"


CASES: list[tuple[str, Any, Any, Any]] = [
    ("missing_secret", BODY, sign(BODY, SECRET, NOW), ""),
    ("missing_secret", BODY, sign(BODY, SECRET, NOW), None),
    ("missing_secret", BODY, sign(BODY, SECRET, NOW), ["", ""]),
    ("missing_header", BODY, None, SECRET),
    ("missing_header", BODY, "", SECRET),
    ("missing_header", BODY, "   ", SECRET),
    ("malformed_header", BODY, "garbage", SECRET),
    ("malformed_header", BODY, "v0=" + "a" * 64, SECRET),
    ("malformed_header", BODY, f"t={NOW}", SECRET),
    ("malformed_header", BODY, f"t=abc,v0={'a' * 64}", SECRET),
    ("malformed_header", BODY, f"t=-5,v0={'a' * 64}", SECRET),
    ("malformed_header", BODY, f"t={NOW},t={NOW},v0={'a' * 64}", SECRET),
    ("malformed_header", BODY, f"t={NOW},v0=xyz", SECRET),
    ("malformed_header", BODY, f"t={NOW},v0={'A' * 64}", SECRET),
    ("malformed_header", BODY, f"t={NOW},v0={'a' * 64},x=é", SECRET),
    ("malformed_header", BODY, "t=١٢٣,v0=" + "a" * 64, SECRET),
    ("malformed_header", BODY, b"t=1,v0=\xff\xfe", SECRET),
    ("malformed_header", BODY, f"t={'9' * 5000},v0={'a' * 64}", SECRET),
    ("timestamp_expired", BODY, sign(BODY, SECRET, NOW - 1801), SECRET),
    ("timestamp_in_future", BODY, sign(BODY, SECRET, NOW + 301), SECRET),
    ("timestamp_in_future", BODY, sign(BODY, SECRET, NOW * 1000), SECRET),
    ("signature_mismatch", BODY, sign(BODY, OTHER_SECRET, NOW), SECRET),
    ("signature_mismatch", BODY, f"t={NOW},v0={'a' * 64}", SECRET),
    ("invalid_json", b"not json", sign(b"not json", SECRET, NOW), SECRET),
    ("invalid_json", b"[1, 2]", sign(b"[1, 2]", SECRET, NOW), SECRET),
    ("invalid_json", b"\xff{}", sign(b"\xff{}", SECRET, NOW), SECRET),
    ("invalid_json", b"[" * 100_000, sign(b"[" * 100_000, SECRET, NOW), SECRET),
    ("invalid_json", "{\ud800}", f"t={NOW},v0={'a' * 64}", SECRET),
]
#: Checks that are off by default: the options that turn them on.
OPTIONS: dict[str, dict[str, Any]] = {"timestamp_in_future": {"future_tolerance": 300}}


@pytest.mark.parametrize(("reason", "body", "header", "secret"), CASES)
def test_every_reason(reason: str, body: bytes, header: str | None, secret: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify(body, header, secret, now=NOW, **OPTIONS.get(reason, {}))
    assert info.value.reason == reason
    assert len(str(info.value)) > 40  # says what to do, not just the reason


def test_cases_cover_every_reason() -> None:
    assert {case[0] for case in CASES} == set(REASONS)


def test_messages_never_contain_the_secret() -> None:
    for reason, body, header, secret in CASES:
        try:
            verify(body, header, secret, now=NOW, **OPTIONS.get(reason, {}))
        except SignatureError as exc:
            assert SECRET not in str(exc) and SECRET[5:] not in str(exc)
            assert SECRET not in repr(exc)


def test_tolerance_boundaries_match_the_sdk() -> None:
    assert verify(BODY, sign(BODY, SECRET, NOW - 1800), SECRET, now=NOW)
    # Like the SDK, no bound into the future: a slow clock here loses nothing.
    for ahead in (301, 360, 600, 2400, 10**6):
        assert verify(BODY, sign(BODY, SECRET, NOW + ahead), SECRET, now=NOW)
    assert verify(BODY, sign(BODY, SECRET, NOW * 1000), SECRET, now=NOW)
    assert verify(BODY, sign(BODY, SECRET, NOW + 300), SECRET, now=NOW, future_tolerance=300)
    with pytest.raises(SignatureError, match="301 s in the future") as info:
        verify(BODY, sign(BODY, SECRET, NOW + 301), SECRET, now=NOW, future_tolerance=300)
    assert info.value.reason == "timestamp_in_future" and "clock is behind" in str(info.value)
    assert verify(BODY, sign(BODY, SECRET, NOW - 100), SECRET, now=NOW, tolerance=100)
    with pytest.raises(SignatureError, match="101 s ago"):
        verify(BODY, sign(BODY, SECRET, NOW - 101), SECRET, now=NOW, tolerance=100)


def test_none_turns_a_time_check_off() -> None:
    old = sign(BODY, SECRET, NOW - 10**6)
    future = sign(BODY, SECRET, NOW + 10**6)
    assert verify(BODY, old, SECRET, now=NOW, tolerance=None)
    assert verify(BODY, future, SECRET, now=NOW, future_tolerance=None)


def test_rotation_any_secret_in_a_list_may_match() -> None:
    header = sign(BODY, OTHER_SECRET, NOW)
    assert verify(BODY, header, [SECRET, OTHER_SECRET], now=NOW)
    assert verify(BODY, header, (OTHER_SECRET,), now=NOW)
    with pytest.raises(SignatureError):
        verify(BODY, header, [SECRET], now=NOW)


def test_a_one_shot_iterable_of_secrets_works() -> None:
    header = sign(BODY, OTHER_SECRET, NOW)
    assert verify(BODY, header, (s for s in [SECRET, OTHER_SECRET]), now=NOW)
    assert verify(BODY, header, filter(None, ["", OTHER_SECRET]), now=NOW)
    with pytest.raises(SignatureError, match="empty") as info:
        verify(BODY, header, iter([]), now=NOW)
    assert info.value.reason == "missing_secret"


def test_every_v0_part_is_tried_in_any_order() -> None:
    good = sign(BODY, SECRET, NOW).split(",")[1]
    other = sign(BODY, OTHER_SECRET, NOW).split(",")[1]
    for header in (f"t={NOW},{good},{other}", f"{other},t={NOW},{good}", f"{good},{other},t={NOW}"):
        assert verify(BODY, header, SECRET, now=NOW)
    # A broken v0 next to a good one does not spoil it; unknown schemes are ignored.
    assert verify(BODY, f"t={NOW},v0=zz,v1=abc,{good},", SECRET, now=NOW)


def test_comparison_is_constant_time_on_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signature_module.hmac, "compare_digest", recording)
    verify(BODY, sign(BODY, SECRET, NOW), [OTHER_SECRET, SECRET], now=NOW)
    assert len(calls) == 2  # every secret is compared, no early exit
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


def test_error_tree_and_pickling() -> None:
    with pytest.raises(SignatureError) as info:
        verify(BODY, None, SECRET)
    exc = info.value
    assert isinstance(exc, ValueError) and isinstance(exc, ElwhError)
    again = pickle.loads(pickle.dumps(exc))
    assert again.reason == "missing_header" and str(again) == str(exc)
    with pytest.raises(ValueError, match="unknown"):
        SignatureError("nope", "x")


def test_wrong_argument_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        verify(BODY, sign(BODY, SECRET), 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify({"a": 1}, sign(BODY, SECRET), SECRET)  # type: ignore[arg-type]


def test_environment_style_secret_with_escaped_bytes() -> None:
    raw_key = b"wsec_test_\xff\xfe"
    secret = raw_key.decode("utf-8", "surrogateescape")  # how os.environ hands it over
    header = f"t={NOW},v0={hmac.new(raw_key, f'{NOW}.'.encode() + BODY, 'sha256').hexdigest()}"
    assert verify(BODY, header, secret, now=NOW)


def test_construct_event_has_the_tutorial_argument_order() -> None:
    with pytest.raises(SignatureError) as info:
        elwh_nb.construct_event(VECTOR_BODY, VECTOR_HEADER, VECTOR_SECRET)  # the vector is old now
    assert info.value.reason == "timestamp_expired"
    fresh = sign(VECTOR_BODY, VECTOR_SECRET)
    assert elwh_nb.construct_event(VECTOR_BODY, fresh, VECTOR_SECRET)["type"] == "post_call_transcription"


def test_construct_event_takes_the_official_sdks_keywords() -> None:
    fresh = sign(VECTOR_BODY, VECTOR_SECRET)
    # As ElevenLabs' docs call it: client.webhooks.construct_event(rawBody=..., sig_header=..., secret=...)
    event = elwh_nb.construct_event(rawBody=VECTOR_BODY, sig_header=fresh, secret=VECTOR_SECRET)
    assert event["type"] == "post_call_transcription"
    assert elwh_nb.construct_event(payload=VECTOR_BODY, sig_header=fresh, secret=VECTOR_SECRET) == event
    assert elwh_nb.construct_event(VECTOR_BODY, sig_header=fresh, secret=VECTOR_SECRET) == event
    with pytest.raises(SignatureError) as info:
        elwh_nb.construct_event(rawBody=VECTOR_BODY, sig_header=VECTOR_HEADER, secret=VECTOR_SECRET)
    assert info.value.reason == "timestamp_expired"
    with pytest.raises(TypeError, match="rawBody"):
        elwh_nb.construct_event(VECTOR_BODY, fresh, VECTOR_SECRET, rawBody=VECTOR_BODY)
    with pytest.raises(TypeError, match="body"):
        elwh_nb.construct_event(sig_header=fresh, secret=VECTOR_SECRET)


@given(header=st.one_of(st.text(max_size=300), st.binary(max_size=300)), body=st.binary(max_size=200))
def test_garbage_never_escapes_as_anything_but_signature_error(header: str | bytes, body: bytes) -> None:
    try:
        verify(body, header, SECRET, now=NOW)
    except SignatureError as exc:
        assert exc.reason in REASONS
