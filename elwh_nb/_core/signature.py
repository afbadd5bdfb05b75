"""Sign and verify ElevenLabs webhook deliveries (the ``ElevenLabs-Signature`` header).

The header is ``t=<unix seconds>,v0=<hex>`` where ``<hex>`` is the lowercase hex
HMAC-SHA256 of ``<t>.<raw body bytes>`` keyed with the whole secret string (``wsec_``
prefix included). Every bad input maps to :class:`SignatureError` with a ``reason``;
nothing here touches the network or the clock unless ``now`` is left out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import jsonparse
from .exceptions import SignatureError

Secret = str | bytes | Iterable[str | bytes] | None
Body = bytes | bytearray | memoryview | str

DEFAULT_TOLERANCE = 1800  # seconds into the past, as ElevenLabs' own SDK: the replay protection
# No bound into the future, as the SDK: a future timestamp cannot be forged without the
# secret, and a bound loses every delivery to a receiver whose clock is slow (a 4xx is
# never retried). future_tolerance= sets one.
DEFAULT_FUTURE_TOLERANCE: float | None = None

#: The header's names, the real one first: the speech-to-text guide's samples read
#: ``x-elevenlabs-signature``, and the tutorial invented ``X-Eleven-Signature``.
SIGNATURE_HEADERS = ("ElevenLabs-Signature", "X-ElevenLabs-Signature", "X-Eleven-Signature")

_HEX64 = re.compile(rb"[0-9a-f]{64}")
_MAX_T_DIGITS = 20


@dataclass(frozen=True)
class HeaderParts:
    """What a signature header contains, parsed leniently (never raises)."""

    timestamps: tuple[str, ...]
    signatures: tuple[str, ...]
    ignored: tuple[str, ...]
    ascii: bool


def parse_header(header: str | bytes) -> HeaderParts:
    """Split a header into its ``t=``, ``v0=`` and other parts, as the SDK reads them."""
    text = bytes(header).decode("latin-1") if isinstance(header, (bytes, bytearray)) else str(header)
    stamps: list[str] = []
    sigs: list[str] = []
    ignored: list[str] = []
    for part in text.split(","):
        if part.startswith("t="):
            stamps.append(part[2:])
        elif part.startswith("v0="):
            sigs.append(part[3:])
        elif part:
            ignored.append(part)
    return HeaderParts(tuple(stamps), tuple(sigs), tuple(ignored), text.isascii())


def secret_keys(secret: Secret) -> list[bytes]:
    """The HMAC keys for ``secret`` (one string, or several during a rotation).

    An iterable is read once, here: callers that check more than once keep these keys.
    """
    if secret is None:
        items: list[str | bytes] = []
    elif isinstance(secret, (str, bytes)):
        items = [secret]
    elif isinstance(secret, Iterable):
        items = list(secret)
    else:
        raise TypeError(f"secret must be a str or a list of str, not {type(secret).__name__}")
    keys: list[bytes] = []
    for item in items:
        if isinstance(item, str):
            if item:
                keys.append(_encode_secret(item))
        elif isinstance(item, bytes):
            if item:
                keys.append(item)
        elif item is not None:
            raise TypeError(f"each secret must be a str, not {type(item).__name__}")
    if not keys:
        given = (
            "No webhook secret was given."
            if secret is None or isinstance(secret, (str, bytes))
            else "The list of webhook secrets is empty (or holds only empty strings; an iterator "
            "or generator that was already used up is empty too)."
        )
        raise SignatureError(
            "missing_secret",
            f"{given} Copy the secret from the ElevenLabs webhook settings "
            "(it starts with 'wsec_') and pass it as secret=..., or set it in an "
            "environment variable rather than in the notebook.",
        )
    return keys


def _encode_secret(secret: str) -> bytes:
    try:
        return secret.encode("utf-8")
    except UnicodeEncodeError:
        pass
    try:
        # os.environ decodes undecodable bytes this way; this gives them back.
        return secret.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError("the secret holds characters that cannot be encoded as UTF-8") from None


def body_bytes(body: Body) -> bytes | bytearray:
    """The exact bytes that were signed: bytes and bytearray as they are (a big body is not
    copied), a memoryview copied, str as UTF-8."""
    if isinstance(body, str):
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError:
            raise SignatureError(
                "invalid_json",
                "The body is a str that cannot be encoded as UTF-8 (it holds lone "
                "surrogates). Pass the raw request body as bytes.",
            ) from None
    if isinstance(body, (bytes, bytearray)):
        return body
    if isinstance(body, memoryview):
        return bytes(body)
    raise TypeError(f"body must be bytes or str, not {type(body).__name__}")


def digest(key: bytes, timestamp: str, raw: bytes | bytearray) -> str:
    """Lowercase hex HMAC-SHA256 of ``<timestamp>.<raw>`` (no joined copy of a big body)."""
    mac = hmac.new(key, timestamp.encode("ascii") + b".", hashlib.sha256)
    mac.update(raw)
    return mac.hexdigest()


def _now_seconds(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise TypeError("now= must be a timezone-aware datetime or unix seconds")
        return now.timestamp()
    return float(now)


def sign(body: Body, secret: str, timestamp: float | datetime | None = None) -> str:
    """Return an ``ElevenLabs-Signature`` header value for ``body``, signed now or at ``timestamp``."""
    key = secret_keys(secret)[0]
    t = str(int(_now_seconds(timestamp)))
    return f"t={t},v0={digest(key, t, body_bytes(body))}"


def _malformed(what: str) -> SignatureError:
    return SignatureError(
        "malformed_header",
        f"The signature header is malformed: {what}. It should look like "
        "'t=<unix seconds>,v0=<64 lowercase hex digits>'. Pass the whole "
        "ElevenLabs-Signature header value, unchanged.",
    )


def _check_header(header: str | bytes | None) -> tuple[str, list[bytes]]:
    if header is None or (isinstance(header, (str, bytes)) and not header.strip()):
        raise SignatureError(
            "missing_header",
            "The delivery has no ElevenLabs-Signature header. Requests that do not come "
            "from ElevenLabs (or the kit's sender) lack it; check that your proxy or "
            "framework passes the header through.",
        )
    if not isinstance(header, (str, bytes, bytearray)):
        raise _malformed(f"expected text, got {type(header).__name__}")
    parts = parse_header(header)
    if not parts.ascii:
        raise _malformed("it contains non-ASCII characters")
    if not parts.timestamps:
        raise _malformed("there is no 't=' part")
    if len(parts.timestamps) > 1:
        raise _malformed("there is more than one 't=' part")
    t = parts.timestamps[0]
    if not (t.isascii() and t.isdigit()) or len(t) > _MAX_T_DIGITS:
        raise _malformed(f"'t={t[:24]}' is not a whole number of seconds")
    if not parts.signatures:
        raise _malformed("there is no 'v0=' part")
    sigs = [s.encode("ascii") for s in parts.signatures]
    if not any(_HEX64.fullmatch(s) for s in sigs):
        raise _malformed("no 'v0=' part holds 64 lowercase hex digits")
    return t, sigs


def _check_time(
    t: str, tolerance: float | None, future_tolerance: float | None, now: float | datetime | None
) -> None:
    # Millisecond integers, exactly as the official SDK compares, so that the
    # boundary (1800 s old is still accepted) agrees with it.
    t_ms = int(t) * 1000
    now_ms = int(_now_seconds(now) * 1000)
    if tolerance is not None and t_ms < now_ms - int(tolerance * 1000):
        age = (now_ms - t_ms) / 1000
        raise SignatureError(
            "timestamp_expired",
            f"The delivery was signed {age:.0f} s ago, more than the {tolerance:g} s "
            "tolerance. It is a replay of an old delivery or the clocks disagree; "
            "re-send it, or pass a larger tolerance= when replaying saved deliveries.",
        )
    if future_tolerance is not None and t_ms > now_ms + int(future_tolerance * 1000):
        ahead = (t_ms - now_ms) / 1000
        hint = " (t looks like milliseconds; it must be seconds)" if len(t) >= 13 else ""
        raise SignatureError(
            "timestamp_in_future",
            f"The delivery is signed {ahead:.0f} s in the future{hint}, more than the "
            f"{future_tolerance:g} s allowed by future_tolerance=. This machine's clock is "
            "behind (ElevenLabs signs with the time it sends), or the sender's is ahead: fix "
            "the clock, or leave future_tolerance=None (the default).",
        )


def signed_at(header: str | bytes) -> int:
    """The unix seconds of a header :func:`verify` accepted (its one ``t=`` part)."""
    return int(parse_header(header).timestamps[0])


def parse_event(raw: bytes | bytearray) -> dict[str, Any]:
    """Parse a verified body as a JSON object, or raise ``SignatureError('invalid_json')``."""
    try:
        event = jsonparse.loads(raw)
    except UnicodeDecodeError:
        problem = "it is not valid UTF-8"
    except (ValueError, RecursionError) as exc:
        problem = f"it is not valid JSON ({str(exc)[:80]})"
    else:
        if isinstance(event, dict):
            return event
        problem = f"it is JSON but a {type(event).__name__}, not an object"
    raise SignatureError(
        "invalid_json",
        f"The signature is valid but the body cannot be used: {problem}. ElevenLabs "
        "always sends a JSON object; check what the sender puts in the body.",
    )


def verify(
    body: Body,
    header: str | bytes | None,
    secret: Secret,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
    future_tolerance: float | None = DEFAULT_FUTURE_TOLERANCE,
    now: float | datetime | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and return its parsed event.

    ``body`` is used byte for byte; ``secret`` may be a list (any may match, for
    rotation); every ``v0=`` part is tried. ``tolerance``/``future_tolerance`` are
    the seconds a signature may be old / ahead of this clock (``None``: no bound, the
    default ahead); ``now`` fixes the clock for tests.
    Raises :class:`SignatureError` whose ``reason`` names the failed check.
    """
    raw = authenticate(body, header, secret, tolerance=tolerance, future_tolerance=future_tolerance, now=now)
    return parse_event(raw)


def authenticate(
    body: Body,
    header: str | bytes | None,
    secret: Secret,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
    future_tolerance: float | None = DEFAULT_FUTURE_TOLERANCE,
    now: float | datetime | None = None,
) -> bytes | bytearray:
    """:func:`verify`'s checks without the parsing: the body's bytes, once its signature holds."""
    keys = secret_keys(secret)
    t, sigs = _check_header(header)
    raw = body_bytes(body)
    _check_time(t, tolerance, future_tolerance, now)
    matched = False
    for key in keys:
        expected = digest(key, t, raw).encode("ascii")
        for sig in sigs:
            # No early exit: the time taken does not depend on which part matched.
            matched |= hmac.compare_digest(expected, sig)
    if not matched:
        raise SignatureError(
            "signature_mismatch",
            "The signature does not match this body and secret. Use the secret of this "
            "webhook (from the ElevenLabs webhook settings, 'wsec_' prefix included) and "
            "verify the raw body exactly as received: not re-serialised JSON, not "
            "str(bytes). elwh_nb.explain(body, header, secret) shows which it is.",
        )
    return raw


def construct_event(
    payload: Body | None = None,
    sig_header: str | None = None,
    secret: Secret = None,
    *,
    rawBody: Body | None = None,  # the official SDK's keyword
) -> dict[str, Any]:
    """``client.webhooks.construct_event`` of the official SDK, with :func:`verify`'s checks.

    Takes its argument order and keywords (``rawBody=``, ``sig_header=``, ``secret=``);
    ``payload=`` names the body too.
    """
    if rawBody is not None:
        if payload is not None:
            raise TypeError("construct_event() got the body twice: pass payload or rawBody, not both")
        payload = rawBody
    if payload is None:
        raise TypeError("construct_event() needs the raw request body (rawBody= or the first argument)")
    return verify(payload, sig_header, secret)
