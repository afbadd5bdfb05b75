"""What the public hook route and a receiver say to each other, in one place.

Stdlib only: the Jupyter server imports this module, and must not load pandas, numpy or
the receiver. Internal headers (``X-Elwh-*``) are set only by the route, which strips any
a client sends; a receiver trusts them only next to :data:`ROUTE_TOKEN_HEADER` holding its
route's token (a random value in the route file, readable by the user alone), and answers
with :data:`ACK_HEADER` so that the route knows it reached that receiver and not some other
program that took over the port after the kernel died.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

DEFAULT_MAX_BODY = 256 * 1024 * 1024  # a two-hour call's post_call_audio (about 160 MB) fits
MAX_CALL_BODY = 1 << 20  # tool parameters and call details are small
SLACK = 1024 * 1024  # more than one chunk Tornado reads at a time

INTERNAL_PREFIX = "x-elwh-"
ROUTE_TOKEN_HEADER = "X-Elwh-Route-Token"
TOO_LARGE_HEADER = "X-Elwh-Body-Too-Large"  # "<size> <how>"
ACK_HEADER = "X-Elwh-Ack"
#: Set by the route on a tool or call-start request it relays: a receiver answers one only on
#: its call paths, so no relayed call reaches its webhook path, whatever the URL said.
CALL_HEADER = "X-Elwh-Call"
#: Set by the route on a delivery to a callback URL (``<route>/callback/<name>/<token>``):
#: ``<name>/<token>``, for the receiver to check (see :mod:`.callback_urls`).
CALLBACK_HEADER = "X-Elwh-Callback"
#: The hub service's read API: the counts with each page, and the id of the store answering.
COUNTS_HEADER = "X-Elwh-Counts"
STORE_HEADER = "X-Elwh-Store"
#: How many times the store's turns were replaced (a JSON transcript after the OpenTelemetry
#: one): a reader of the derived tables that sees it move reads its turns again.
REPLACED_HEADER = "X-Elwh-Turns-Replaced"
MISDIRECTED = 421  # a receiver's answer to a route token that is not its own
#: Set by the route: the peer it saw. It forwards the sender's own headers as they came (its
#: ``Host`` too), and says what it adds only in ``X-Elwh-*`` headers, which no record keeps.
PEER_HEADER = "X-Elwh-Peer"


@dataclass(frozen=True)
class Reply:
    """An HTTP answer as bytes: what the route sends back to a sender, and a call's answer."""

    status: int
    body: bytes


def new_route_id() -> str:
    """A hook URL's id, the one place ids are made: 24 random bytes, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


@functools.lru_cache(maxsize=64)  # one per route token; both sides ask on every request
def ack(token: str) -> str:
    """The value a receiver answers with: proves it holds the route's token without showing it."""
    return hmac.new(token.encode(), b"elwh-ack", hashlib.sha256).hexdigest()[:32]


def from_route(token: str, sent: str) -> bool:
    """Whether ``sent`` (a request's :data:`ROUTE_TOKEN_HEADER`) is the route token ``token`` of
    this receiver (constant time; with no token of its own, no request comes from a route)."""
    return bool(token) and hmac.compare_digest(sent.encode(), token.encode())


def acked(token: str, value: str | None) -> bool:
    """Whether an answer came from the receiver that holds ``token``."""
    return bool(token) and value is not None and hmac.compare_digest(ack(token), value)
