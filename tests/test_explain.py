"""explain(): names the usual mistakes in plain words and never shows the secret."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elwh_nb import Diagnosis, SignatureError, explain, sign, verify

from .conftest import OTHER_SECRET, SECRET

NOW = 1_739_537_297
EVENT = {"type": "post_call_transcription", "event_timestamp": NOW, "data": {"agent_id": "a", "text": "café"}}
BODY = json.dumps(EVENT, separators=(",", ":"), ensure_ascii=False).encode()
HEADER = sign(BODY, SECRET, NOW)


def hmac_hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def test_a_good_delivery() -> None:
    d = explain(BODY, HEADER, SECRET, now=NOW)
    assert d.ok and d.reason is None and d.likely_cause is None
    assert d.timestamp == NOW and d.age_s == 0
    assert d.expected_signature == HEADER.split("v0=")[1]
    assert "verifies" in d.summary


# (what the user passed, header, secret, words the likely cause must contain)
MISTAKES = [
    ("re-serialised", json.dumps(EVENT).encode(), HEADER, SECRET),
    ("str(bytes)", str(BODY).encode(), HEADER, SECRET),
    ("newline was added", BODY + b"\n", HEADER, SECRET),
    ("newline was stripped", BODY, sign(BODY + b"\n", SECRET, NOW), SECRET),
    ("only without its 'wsec_' prefix", BODY, sign(BODY, SECRET[5:], NOW), SECRET),
    ("lacks the 'wsec_' prefix", BODY, HEADER, SECRET[5:]),
    ("white space", BODY, HEADER, SECRET + "\n"),
    (
        "signed str(bytes)",
        BODY,
        f"t={NOW},v0={hmac_hex(SECRET.encode(), f'{NOW}.{BODY!r}'.encode())}",
        SECRET,
    ),
    ("without the '<t>.' prefix", BODY, f"t={NOW},v0={hmac_hex(SECRET.encode(), BODY)}", SECRET),
    ("upper-case", BODY, HEADER.replace(HEADER.split("v0=")[1], HEADER.split("v0=")[1].upper()), SECRET),
    ("header's name", BODY, "ElevenLabs-Signature: " + HEADER, SECRET),
    ("only the hex signature", BODY, HEADER.split("v0=")[1], SECRET),
]


@pytest.mark.parametrize(("cause", "body", "header", "secret"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_names_the_likely_cause(cause: str, body: bytes, header: str, secret: str) -> None:
    d = explain(body, header, secret, now=NOW)
    assert not d.ok
    assert d.likely_cause is not None and cause in d.likely_cause, d.likely_cause
    assert d.fix and cause in d.summary


def test_rotation_names_which_secret_matched() -> None:
    d = explain(BODY, sign(BODY, OTHER_SECRET, NOW), [SECRET, OTHER_SECRET], now=NOW)
    assert d.ok
    assert "secret #2" in (d.likely_cause or "")
    assert any(c.name == "signature" and "matches secret #2 of 2" in c.detail for c in d.checks)


def test_a_one_shot_iterable_of_secrets_is_read_once() -> None:
    d = explain(BODY, sign(BODY, OTHER_SECRET, NOW), (s for s in [SECRET, OTHER_SECRET]), now=NOW)
    assert d.ok
    assert any(c.name == "secret" and c.ok and "2 secret(s)" in c.detail for c in d.checks)


def test_rotation_mistake_found_in_a_list_too() -> None:
    d = explain(BODY, sign(BODY, OTHER_SECRET[5:], NOW), [SECRET, OTHER_SECRET], now=NOW)
    assert "secret #2 matches only without its 'wsec_' prefix" in (d.likely_cause or "")


def test_timestamp_age_in_plain_words() -> None:
    d = explain(BODY, sign(BODY, SECRET, NOW - 7300), SECRET, now=NOW)
    assert d.reason == "timestamp_expired"
    assert d.age_s == 7300
    assert "2.0 h ago" in str(d)
    ms = explain(BODY, sign(BODY, SECRET, NOW * 1000), SECRET, now=NOW, future_tolerance=300)
    assert ms.reason == "timestamp_in_future" and "milliseconds" in str(ms)
    assert "accepted window: up to 1800 s old, up to 300 s ahead" in str(ms)


def test_a_timestamp_ahead_verifies_and_says_this_clock_looks_behind() -> None:
    d = explain(BODY, sign(BODY, SECRET, NOW + 600), SECRET, now=NOW)
    assert d.ok and d.age_s == -600
    assert "10 min in the future" in str(d) and "any time ahead" in str(d)
    assert "this machine's clock looks behind by about 10 minutes" in str(d)
    refused = explain(BODY, sign(BODY, SECRET, NOW + 600), SECRET, now=NOW, future_tolerance=300)
    assert refused.reason == "timestamp_in_future" and "600 s in the future" in refused.summary
    assert "clock is behind" in refused.fix and "future_tolerance=None" in refused.fix
    assert "behind" not in str(explain(BODY, sign(BODY, SECRET, NOW + 60), SECRET, now=NOW))


def test_unknown_cause_still_says_what_to_check() -> None:
    tampered = BODY.replace(b'"a"', b'"b"')
    d = explain(tampered, HEADER, SECRET, now=NOW)
    assert d.reason == "signature_mismatch" and d.likely_cause is None
    assert "altered" in d.fix


def test_header_parts_and_signatures_are_shown() -> None:
    d = explain(BODY, HEADER + ",v1=zzz", SECRET, now=NOW)
    text = str(d)
    assert "1 't=' part(s), 1 'v0=' part(s), ignored: v1=zzz" in text
    assert d.received_signatures == (HEADER.split("v0=")[1],)
    assert "[ok ] json" in text


def test_missing_pieces() -> None:
    assert explain(BODY, None, SECRET, now=NOW).reason == "missing_header"
    assert explain(BODY, HEADER, "", now=NOW).reason == "missing_secret"
    assert explain(b"[]", sign(b"[]", SECRET, NOW), SECRET, now=NOW).reason == "invalid_json"


def all_text(d: Diagnosis) -> str:
    return str(d) + repr(d) + json.dumps(d.to_dict())


@pytest.mark.parametrize(("cause", "body", "header", "secret"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_never_shows_the_secret(cause: str, body: bytes, header: str, secret: str) -> None:
    text = all_text(explain(body, header, secret, now=NOW))
    assert SECRET[5:] not in text and secret.strip()[5:] not in text


@given(body=st.binary(max_size=300), header=st.text(max_size=200) | st.none(), now=st.integers(0, 2**33))
def test_never_raises_and_never_leaks(body: bytes, header: str | None, now: int) -> None:
    d = explain(body, header, [SECRET, OTHER_SECRET], now=now)
    assert isinstance(d, Diagnosis) and d.ok == (d.reason is None)
    try:  # the same verdict and reason as verify
        verify(body, header, [SECRET, OTHER_SECRET], now=now)
    except SignatureError as exc:
        assert d.reason == exc.reason
    else:
        assert d.ok
    text = all_text(d)
    assert SECRET[5:] not in text and OTHER_SECRET[5:] not in text
