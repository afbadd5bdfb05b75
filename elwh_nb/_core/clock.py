"""Whether this machine's clock is behind the senders': one warning, from the deliveries' skew.

A delivery's skew (the ``skew_s`` column) is when it arrived by this clock minus the ``t``
it was signed with. A delivery is signed no later than it is sent, so the network and
retries can only add to the skew: a signature from this clock's *future* means this clock
is slow. A large skew the other way is no sign of a fast clock (a delivery kept while the
receiver was away, or one replayed by hand, is signed long before it is verified), so only
signatures ahead of this clock are looked at. Clocks kept by NTP agree to well under a
second; :data:`AHEAD_WARN_S` is far above that noise and below the 300 s that once got
deliveries refused.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("elwh_nb")

#: Seconds a signature may be ahead of this clock before the receiver warns (once).
AHEAD_WARN_S = 120.0


def amount(seconds: float) -> str:
    """``'about 10 minutes'``, ``'about 3 hours'``, ``'about 40 s'``."""
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} minutes"
    return f"about {seconds / 3600:.1f} hours"


class ClockWatch:
    """Follows the deliveries' skew for one receiver and warns once when this clock is behind."""

    def __init__(self, threshold: float = AHEAD_WARN_S) -> None:
        self.threshold = threshold
        self.ahead_s = 0.0  # the most a verified signature was ahead of this clock
        self.warned_at: float | None = None  # when (by this clock) the warning was given
        self._lock = threading.Lock()

    def observe(self, skew_s: float) -> None:
        """One verified delivery's skew (arrival minus signature time, in seconds)."""
        if -skew_s <= self.ahead_s:  # the common case, without the lock
            return
        with self._lock:
            self.ahead_s = max(self.ahead_s, -skew_s)
            if self.warned_at is None and self.ahead_s > self.threshold:
                self.warned_at = time.time()
                log.warning("elwh_nb: %s", self.note)

    @property
    def note(self) -> str | None:
        """What to say about this clock, once a signature was far enough ahead of it."""
        if self.warned_at is None:
            return None
        return (
            f"This machine's clock is behind by {amount(self.ahead_s)}: deliveries are signed up "
            f"to {self.ahead_s:.0f} s ahead of it, and ElevenLabs signs with the time it sends. "
            "They are still accepted, but times here are off by as much; set the clock right "
            "(NTP, or the host's time settings)."
        )
