"""Callback URLs: a path with a long random token of its own, for callbacks that carry no signature.

Studio's ``callback_url`` is a plain URL given per project, and nothing says its requests
are HMAC-signed; a webhook's URL (``rx.url``) stores only signed deliveries. So such
callbacks get ``<rx.url>/callback/<name>/<token>``: the token (192 random bits, one per
name, kept in the store file beside the route id and retired with it) is what
authenticates them. A request there that does carry an ``ElevenLabs-Signature`` must still
verify. Knowing ``rx.url`` reveals no token. Stdlib only: the Jupyter server imports this.
"""

from __future__ import annotations

import hmac
import re
import secrets

#: ``rx.callback_url(name)``: the kind of callback, lower case (``studio``, ...).
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
#: The path under a hook path (``<hook>/callback/<name>/<token>``), in Tornado's rule syntax.
PATH = r"/callback/(?P<callback_name>[^/]{1,64})/(?P<callback_token>[^/]{1,128})/?"
_UNDER = re.compile(r"/callback/([^/]{1,64})/([^/]{1,128})/?$")
#: Meta keys of the store file: one token per name.
META_PREFIX = "callback_token:"
#: How a stored event was authenticated (the events' ``authenticated_by`` column).
BY_SIGNATURE, BY_URL = "signature", "url"


def checked_name(name: str) -> str:
    """``name`` if it can name a callback URL, else a ValueError saying what can."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(
            f"a callback URL's name is 1 to 32 lower-case letters, digits, '-' or '_' (like 'studio'), "
            f"not {name!r}"
        )
    return name


def new_token() -> str:
    """24 random bytes, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def split(path: str) -> tuple[str, str] | None:
    """``(name, token)`` of a path ending in ``/callback/<name>/<token>``, else None."""
    found = _UNDER.search(path)
    return (found.group(1), found.group(2)) if found else None


def redacted(path: str) -> str:
    """``path`` with a callback token left out: what a failure record or log may keep."""
    return _UNDER.sub(lambda m: f"/callback/{m.group(1)[:32]}/<token>", path)


def header_value(name: str, token: str) -> str:
    """What the route sends in ``X-Elwh-Callback`` (see :data:`.protocol.CALLBACK_HEADER`)."""
    return f"{name}/{token}"


def parse_header(value: str | None) -> tuple[str, str] | None:
    """``(name, token)`` from an ``X-Elwh-Callback`` value, or None."""
    if not value or "/" not in value:
        return None
    name, _, token = value.partition("/")
    return name, token


def same(given: str, kept: str | None) -> bool:
    """Whether ``given`` is the kept token (constant time)."""
    return kept is not None and hmac.compare_digest(given.encode(), kept.encode())
