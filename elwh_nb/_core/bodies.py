"""The body-size policy of both front doors (the receiver and the public hook route), and how
a body over the limit is explained.

A body a little over ``max_body`` is read and thrown away, so that a sender that does not
wait for "100 Continue" still gets a clean 413 instead of a reset connection; a body whose
Content-Length is far over is refused unread, and one that streams in far over is cut off;
the connection is closed after either. Stdlib only: the Jupyter server imports this module.
"""

from __future__ import annotations

from .protocol import SLACK

# How a body over max_body was dealt with, for the record ({by}: by whom, if not the receiver).
_HOW = {
    "unread": "refused{by} without being read (its Content-Length is over the limit)",
    "discarded": "read and discarded{by}",
    "cut": "read{by} up to that size and discarded, and the connection was closed without reading the rest",
}
_GIB = 2**30


class BodyLimit:
    """One request's body against ``max_body``: :meth:`declare` the Content-Length, then
    :meth:`receive` each chunk; :attr:`how` is None while the body is within the limit."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.drain_limit = 2 * max_body + SLACK  # read and discarded up to here; refused beyond
        self.received = 0
        self.size = 0  # the size that put the body over (declared or received)
        self.how: str | None = None  # then "discarded", "unread" or "cut"

    @property
    def connection_limit(self) -> int:
        """Tornado's cap for this request (``set_max_body_size``): above this policy's, so that
        the answer is our recorded 413, not Tornado's bare 400."""
        return self.drain_limit + SLACK

    @property
    def cut(self) -> bool:
        """Whether to answer now and close the connection without reading the rest."""
        return self.how == "cut"

    def declare(self, content_length: str | None) -> bool:
        """Before reading: whether to refuse the body now, unread (and close the connection)."""
        if content_length and content_length.isdigit() and int(content_length) > self.max_body:
            self.size, self.how = int(content_length), "discarded"
            if self.size > self.drain_limit:
                self.how = "unread"
                return True
        return False

    def receive(self, n: int) -> bool:
        """``n`` more bytes came in: whether to keep them. Once over the limit nothing is kept
        (let go of what was), and :attr:`cut` says when to stop reading."""
        self.received += n
        if self.received <= self.max_body:
            return True
        self.size = max(self.size, self.received)
        self.how = "cut" if self.received > self.drain_limit else "discarded"
        return False

    def notice(self) -> str | None:
        """What the route tells the receiver about a body it refused (:data:`TOO_LARGE_HEADER`)."""
        return f"{self.size} {self.how}" if self.how else None


def parse_notice(value: str | None) -> tuple[int, str] | None:
    """``(size, how)`` from a :meth:`BodyLimit.notice`, or None."""
    size, _, how = (value or "").partition(" ")
    return (int(size), how) if size.isdigit() else None


def too_large_explanation(size: int, max_body: int, how: str, *, by_route: bool = False) -> str:
    """Why a body got 413, what was done with it, and how to raise the limit."""
    amount = f"at least {size} bytes" if how == "cut" else f"{size} bytes"
    done = _HOW.get(how, "refused{by}").format(by=" by the public hook route" if by_route else "")
    if size <= _GIB:
        mib = 1 << (max(1, -(-size // 2**20)) - 1).bit_length()  # the next power of two, in MiB
        example, aside = f"{mib} * 1024 * 1024", ""
    else:  # no webhook is this big; do not suggest taking it
        example, aside = "...", " (no ElevenLabs delivery comes near this size, though)"
    return (
        f"The body is {amount}, over this receiver's max_body of {max_body} bytes; it was {done}. "
        "If deliveries this large are expected (post_call_audio carries the call's audio), "
        f"start the receiver with a larger limit: elwh_nb.start(..., max_body={example}){aside}."
    )
