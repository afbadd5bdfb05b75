"""Playing ElevenLabs' calls that wait for an answer: an agent-tool call and a call start.

Used by ``rx.simulate_tool_call``, ``rx.simulate_call_start`` and ``elwh-nb send --tool``:
the secret header, parameters in the query, a JSON or form body, and the JSON answer back
(or :class:`CallError` with the status and the error the receiver answered).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from .._core.exceptions import CallError
from .._core.initiation import REQUEST_FIELDS
from .._core.tools import FORM, JSON, SECRET_HEADER

#: Longer than ElevenLabs' longest tool timeout (120 s): the receiver answers first.
TIMEOUT_S = 130


def _text(value: Any) -> Any:
    """A value as a query or form field: booleans as ``true``/``false``, objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def call(
    method: str,
    url: str,
    *,
    secret: str,
    query: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
    content_type: str = JSON,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """Make one call as ElevenLabs does; returns the parsed JSON answer, or raises CallError."""
    if query:
        url += ("&" if "?" in url else "?") + urlencode({k: _text(v) for k, v in query.items()}, doseq=True)
    sent = {**(headers or {}), SECRET_HEADER: secret}
    data = None
    if body is not None:
        if content_type == FORM:
            data = urlencode({k: _text(v) for k, v in body.items()}, doseq=True).encode()
        else:
            data = json.dumps(body).encode()
        sent["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, method=method.upper(), headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            return json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            why = json.loads(exc.read()).get("error", "")
        except (ValueError, AttributeError):
            why = ""
        raise CallError(exc.code, f"{exc.code}: {why}") from None


def call_start(url: str, *, secret: str, headers: Mapping[str, str] | None = None, **fields: str) -> Any:
    """Ask for a call's personalisation (``caller_id``, ``agent_id``, ``called_number``, ``call_sid``)."""
    unknown = set(fields) - set(REQUEST_FIELDS)
    if unknown:
        raise TypeError(f"a call start has only {', '.join(REQUEST_FIELDS)}; not {sorted(unknown)}")
    return call(
        "POST", url, secret=secret, body={name: fields.get(name) for name in REQUEST_FIELDS}, headers=headers
    )
