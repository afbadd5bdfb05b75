"""Explain in plain words why a delivery verifies or not, and how to fix it.

:func:`explain` runs the same checks as :func:`elwh_nb.verify`, then retries the
signature under the usual mistakes (re-serialised JSON, ``str(bytes)``, a trailing
newline, the ``wsec_`` prefix, an outdated secret) to name the likely cause. It is for
teaching and for the failure inspector, never on the hot path, and it never shows the
secret: secrets are referred to by position only.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from .clock import AHEAD_WARN_S, amount
from .exceptions import SignatureError
from .signature import (
    DEFAULT_FUTURE_TOLERANCE,
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADERS,
    Body,
    Secret,
    _now_seconds,
    digest,
    parse_header,
    secret_keys,
    verify,
)

_HEADER_PREFIXES = tuple(f"{name.lower()}:" for name in SIGNATURE_HEADERS)


@dataclass(frozen=True)
class Check:
    """One step of a diagnosis: what was looked at, whether it passed, and what was seen."""

    __module__ = "elwh_nb"  # shown where it is imported from (as httpx does)

    name: str
    ok: bool | None
    detail: str


@dataclass(frozen=True)
class Diagnosis:
    """Why a delivery verifies or not. ``str()`` gives the whole account."""

    __module__ = "elwh_nb"  # shown where it is imported from (as httpx does)

    ok: bool
    reason: str | None
    summary: str
    fix: str
    likely_cause: str | None = None
    timestamp: int | None = None
    age_s: float | None = None
    expected_signature: str | None = None
    received_signatures: tuple[str, ...] = ()
    checks: tuple[Check, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        mark = {True: "ok ", False: "FAIL", None: " -- "}
        lines = [f"{self.reason or 'ok'}: {self.summary}", ""]
        lines += [f"  [{mark[c.ok]}] {c.name}: {c.detail}" for c in self.checks]
        if self.fix:
            lines += ["", f"Fix: {self.fix}"]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for exports and widgets)."""
        return asdict(self)


def _fmt_age(seconds: float) -> str:
    s = abs(seconds)
    if s < 120:
        text = f"{s:.0f} s"
    elif s < 7200:
        text = f"{s / 60:.0f} min"
    elif s < 172800:
        text = f"{s / 3600:.1f} h"
    else:
        text = f"{s / 86400:.0f} days"
    return f"{text} ago" if seconds >= 0 else f"{text} in the future"


def _reserialisations(raw: bytes) -> list[tuple[str, bytes]]:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return []
    forms = {
        "json.dumps(event)": json.dumps(obj),
        "json.dumps(event, separators=(',', ':'))": json.dumps(obj, separators=(",", ":")),
        "json.dumps(event, ensure_ascii=False)": json.dumps(obj, ensure_ascii=False),
        "compact JSON with ensure_ascii=False": json.dumps(obj, separators=(",", ":"), ensure_ascii=False),
        "json.dumps(event, sort_keys=True)": json.dumps(obj, sort_keys=True),
        "json.dumps(event, indent=2)": json.dumps(obj, indent=2),
    }
    return [(k, v.encode("utf-8")) for k, v in forms.items() if v.encode("utf-8") != raw]


def _body_variants(raw: bytes) -> list[tuple[str, str, bytes]]:
    """(cause, fix, bytes that may be what was really signed)."""
    out: list[tuple[str, str, bytes]] = []
    text = raw.decode("utf-8", "replace")
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            original = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            original = None
        if isinstance(original, bytes):
            out.append(
                (
                    "the body is str(bytes): text like \"b'{...}'\" instead of the body",
                    "pass request.body (bytes) or request.body.decode('utf-8'), never str(request.body)",
                    original,
                )
            )
    newline_fix = "verify the raw body exactly as received; do not strip or add newlines"
    if raw.endswith(b"\n"):
        out.append(("a trailing newline was added to the body", newline_fix, raw.rstrip(b"\r\n")))
    else:
        out.append(("a trailing newline was stripped from the body", newline_fix, raw + b"\n"))
        out.append(("a trailing CRLF was stripped from the body", newline_fix, raw + b"\r\n"))
    for form, data in _reserialisations(raw):
        out.append(
            (
                f"the body was re-serialised after it was signed: the signature matches "
                f"the same event written as {form}, not these bytes",
                "verify the raw request body exactly as received, before json.loads",
                data,
            )
        )
    return out


def _signer_mistakes(t: str, raw: bytes) -> list[tuple[str, str, Callable[[bytes], str]]]:
    """Mistakes on the sending side: what the sender may have HMAC'd instead."""

    def hm(message: bytes) -> Callable[[bytes], str]:
        return lambda key: hmac.new(key, message, hashlib.sha256).hexdigest()

    return [
        (
            "the sender signed str(bytes) (\"t.b'...'\"), the trap of passing bytes to the SDK",
            "in the sender, decode the body to str before signing, or sign the bytes directly",
            hm(f"{t}.{raw!r}".encode()),
        ),
        (
            "the sender signed the body alone, without the '<t>.' prefix",
            "sign '<t>.<body>' with the same t that goes in the header",
            hm(raw),
        ),
    ]


def _secret_variants(keys: list[bytes]) -> list[tuple[str, str, bytes]]:
    out: list[tuple[str, str, bytes]] = []
    for i, key in enumerate(keys, 1):
        which = f"secret #{i}" if len(keys) > 1 else "the secret"
        if key.startswith(b"wsec_"):
            out.append(
                (
                    f"{which} matches only without its 'wsec_' prefix",
                    "the sender must sign with the whole secret, 'wsec_' prefix included",
                    key[5:],
                )
            )
        else:
            out.append(
                (
                    f"{which} lacks the 'wsec_' prefix that is part of the key",
                    "use the whole secret as ElevenLabs shows it, starting with 'wsec_'",
                    b"wsec_" + key,
                )
            )
        if key.strip() != key:
            out.append(
                (
                    f"{which} has white space or a newline around it",
                    "strip the secret when you read it from a file or environment variable",
                    key.strip(),
                )
            )
    return out


def explain(
    body: Body,
    header: str | bytes | None,
    secret: Secret,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
    future_tolerance: float | None = DEFAULT_FUTURE_TOLERANCE,
    now: float | datetime | None = None,
) -> Diagnosis:
    """Diagnose a delivery the way :func:`elwh_nb.verify` sees it, in plain words.

    Never raises for bad input (only for a wrong argument type) and never shows the secret.
    """
    now_s = _now_seconds(now)
    try:
        keys = secret_keys(secret)  # once: an iterator is used up by reading
    except SignatureError:
        keys = []
    try:
        verify(
            body, header, keys or secret, tolerance=tolerance, future_tolerance=future_tolerance, now=now_s
        )
        reason: str | None = None
        message = "The delivery verifies: the signature matches and the body is a JSON object."
    except SignatureError as exc:
        reason, message = exc.reason, str(exc)

    checks: list[Check] = []
    checks.append(
        Check(
            "secret",
            bool(keys),
            f"{len(keys)} secret(s) given" if keys else "no secret given",
        )
    )
    if isinstance(body, str):
        raw = body.encode("utf-8", "replace")
    else:
        raw = bytes(body) if isinstance(body, (bytes, bytearray, memoryview)) else b""
    checks.append(Check("body", None, f"{len(raw)} bytes, starting {raw[:60]!r}"))

    header_text = ""
    if isinstance(header, (bytes, bytearray)):
        header_text = bytes(header).decode("latin-1")
    elif isinstance(header, str):
        header_text = header
    parts = parse_header(header_text)
    cause: str | None = None
    fix = ""
    if not header_text.strip():
        checks.append(Check("header", False, "missing or empty"))
    else:
        detail = (
            f"{len(parts.timestamps)} 't=' part(s), {len(parts.signatures)} 'v0=' part(s)"
            + (f", ignored: {', '.join(p[:20] for p in parts.ignored)}" if parts.ignored else "")
            + ("" if parts.ascii else ", contains non-ASCII characters")
        )
        checks.append(Check("header", reason != "malformed_header", detail))
        lowered = header_text.strip().lower()
        if lowered.startswith(_HEADER_PREFIXES):
            cause = "the header's name was passed along with its value"
            fix = "pass only the value after 'ElevenLabs-Signature:'"
        elif len(lowered) == 64 and all(c in "0123456789abcdef" for c in lowered):
            cause = "only the hex signature was passed, without 't=' and 'v0='"
            fix = "pass the whole header value, 't=...,v0=...'"

    t = parts.timestamps[-1] if parts.timestamps else None
    t_ok = t is not None and t.isascii() and t.isdigit() and len(t) <= 20
    timestamp = int(t) if t_ok and t is not None else None
    age = now_s - timestamp if timestamp is not None else None
    if timestamp is not None and age is not None:
        when = datetime.fromtimestamp(min(timestamp, 253402300799), tz=timezone.utc)
        detail = f"t={timestamp} ({when:%Y-%m-%d %H:%M:%S} UTC), signed {_fmt_age(age)}"
        if len(str(timestamp)) >= 13:
            detail += "; it looks like milliseconds, but must be seconds"
        old = "any age" if tolerance is None else f"up to {tolerance:g} s old"
        ahead = "any time ahead" if future_tolerance is None else f"up to {future_tolerance:g} s ahead"
        limits = f"; accepted window: {old}, {ahead}"
        if age < -AHEAD_WARN_S:
            limits += f"; this machine's clock looks behind by {amount(-age)}"
        checks.append(
            Check("timestamp", reason not in ("timestamp_expired", "timestamp_in_future"), detail + limits)
        )

    expected: str | None = None
    received = tuple(parts.signatures)
    if t_ok and t is not None and keys:
        expected = digest(keys[0], t, raw)
        matches = [i for i, k in enumerate(keys, 1) if digest(k, t, raw) in {s for s in parts.signatures}]
        sig_detail = f"expected v0={expected[:16]}... (secret #1); received " + (
            ", ".join(f"v0={s[:16]}..." for s in received) or "none"
        )
        if matches:
            sig_detail += f"; matches secret #{matches[0]} of {len(keys)}"
            if matches[0] > 1:
                cause = cause or (
                    f"only secret #{matches[0]} matches: secret #1 is not the one this webhook signs with"
                )
                fix = fix or "after the rotation is finished, drop the outdated secret"
        checks.append(Check("signature", bool(matches), sig_detail))
        if not matches and cause is None:
            cause, fix = _find_cause(t, raw, keys, parts.signatures)

    if reason == "invalid_json":
        checks.append(Check("json", False, message.split(": ", 1)[-1]))
    elif reason is None:
        checks.append(Check("json", True, "a JSON object"))

    summary = message if cause is None else f"{message.split('. ')[0]}. Likely cause: {cause}."
    if not fix and reason is not None:
        fix = message.split(". ", 1)[-1] if ". " in message else message
    return Diagnosis(
        ok=reason is None,
        reason=reason,
        summary=summary,
        fix=fix,
        likely_cause=cause,
        timestamp=timestamp,
        age_s=age,
        expected_signature=expected,
        received_signatures=received,
        checks=tuple(checks),
    )


def _find_cause(t: str, raw: bytes, keys: list[bytes], received: tuple[str, ...]) -> tuple[str | None, str]:
    got = set(received)
    got_lower = {s.lower() for s in received}
    for cause, fix, variant in _body_variants(raw):
        if any(digest(k, t, variant) in got for k in keys):
            return cause, fix
    for cause, fix, key in _secret_variants(keys):
        if digest(key, t, raw) in got:
            return cause, fix
    for cause, fix, mac in _signer_mistakes(t, raw):
        if any(mac(k) in got for k in keys):
            return cause, fix
    if any(digest(k, t, raw) in got_lower for k in keys):
        return (
            "the signature is upper-case hex",
            "the sender must write the HMAC as lowercase hex",
        )
    return (
        None,
        "check that the secret is this webhook's (ElevenLabs settings) and that the body "
        "is the raw request body; if both are right, the delivery was altered on the way",
    )
