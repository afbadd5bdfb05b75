"""Parse a big body for its record without making its big strings (a call's audio) in memory.

A ``post_call_audio`` body is almost all one base64 string; parsing it whole would hold
that string next to the raw body. :func:`skim` parses a copy of the body in which each
long plain-ASCII string value is replaced by a short marker, and keeps the result only
when every marker came back as a whole string value that :func:`.normalize.normalize`
never reads (one not reached through :data:`.normalize.READ_KEYS` alone): then the
record is exactly the one the whole event gives. Otherwise (a long string the record
reads, JSON that the markers do not leave as it was) it answers None and the caller
parses the body whole, so every body's record and every rejection stay the same.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from . import jsonparse
from .normalize import READ_KEYS, READ_WHOLE

#: Bodies over this many bytes are skimmed (smaller ones are parsed whole: it costs little).
BIG = 1 << 20
#: Strings at least this long are left out: JSON string content of printable ASCII
#: without quotes or backslashes (base64 is), between two quotes.
LONG = 1 << 16
_LONG_STRING = re.compile(rb'"([\x20\x21\x23-\x5b\x5d-\x7e]{%d,})"' % LONG)


def skim(raw: bytes | bytearray) -> dict[str, Any] | None:
    """The event of ``raw`` with its long unread strings as ``""``, or None (parse it whole)."""
    spans = [match.span(1) for match in _LONG_STRING.finditer(raw)]
    if not spans:
        return None
    nonce = secrets.token_hex(8)
    markers = {f"elwh-elided-{nonce}-{i}" for i in range(len(spans))}
    parts, last = [], 0
    for i, (start, end) in enumerate(spans):
        parts += [raw[last:start], f"elwh-elided-{nonce}-{i}".encode()]
        last = end
    parts.append(raw[last:])
    try:
        event = jsonparse.loads(b"".join(parts))
    except (ValueError, RecursionError):  # the markers broke it, or it was broken: parse it whole
        return None
    if not isinstance(event, dict):
        return None
    found: list[str] = []
    try:
        if not _blank(event, markers, found) or sorted(found) != sorted(markers):
            return None
    except RecursionError:
        return None
    return event


def _blank(value: Any, markers: set[str], found: list[str], read: bool = True, whole: bool = False) -> bool:
    """Replace the markers under ``value`` by ``""``; False when one sits where the record reads
    (``read``: ``value`` is reached from the top through :data:`READ_KEYS` only; ``whole``:
    through a key of :data:`READ_WHOLE`, below which everything is read)."""
    items: Any = value.items() if isinstance(value, Mapping) else enumerate(value)
    for name, item in items:
        keyed = read and isinstance(value, Mapping)
        inside = whole or (keyed and name in READ_WHOLE)
        readable = inside or (keyed and name in READ_KEYS)
        if isinstance(item, str):
            if item in markers:
                if readable:
                    return False
                found.append(item)
                value[name] = ""
        elif isinstance(item, (dict, list)) and not _blank(item, markers, found, readable, inside):
            return False
    return True
