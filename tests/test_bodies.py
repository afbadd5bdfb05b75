"""The one body-size policy both front doors (the receiver, the public hook route) follow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from elwh_nb._core.bodies import BodyLimit, parse_notice, too_large_explanation
from elwh_nb._core.protocol import SLACK

MAX = 1000
DRAIN = 2 * MAX + SLACK


def feed(limit: BodyLimit, *sizes: int) -> list[bool]:
    return [limit.receive(n) for n in sizes]


def test_a_body_within_the_limit_is_kept_whole() -> None:
    limit = BodyLimit(MAX)
    assert not limit.declare("1000")
    assert feed(limit, 600, 400) == [True, True]
    assert limit.how is None and limit.notice() is None


def test_a_declared_length_a_little_over_is_read_and_discarded() -> None:
    limit = BodyLimit(MAX)
    assert not limit.declare(str(MAX + 1))  # read on, so that the sender gets a clean 413
    assert feed(limit, MAX + 1) == [False]
    assert (limit.how, limit.size, limit.cut) == ("discarded", MAX + 1, False)
    assert limit.notice() == f"{MAX + 1} discarded"


def test_a_declared_length_far_over_is_refused_unread() -> None:
    limit = BodyLimit(MAX)
    assert limit.declare(str(DRAIN + 1))
    assert (limit.how, limit.size) == ("unread", DRAIN + 1)
    assert parse_notice(limit.notice()) == (DRAIN + 1, "unread")


@pytest.mark.parametrize("declared", [None, "", "chunked", "-5", " 12"])
def test_no_usable_length_counts_what_streams_in_and_cuts_it_off(declared: str | None) -> None:
    limit = BodyLimit(MAX)
    assert not limit.declare(declared)
    assert feed(limit, MAX) == [True]
    assert feed(limit, 1) == [False] and limit.how == "discarded" and not limit.cut
    assert feed(limit, DRAIN) == [False] and limit.cut
    assert (limit.how, limit.size) == ("cut", MAX + 1 + DRAIN)


def test_tornado_s_own_cap_sits_above_the_policy_s() -> None:
    # Tornado's limit answers a bare 400; ours must come first, to answer 413 and record it.
    assert BodyLimit(MAX).connection_limit > DRAIN


def test_a_notice_is_read_back_only_when_well_formed() -> None:
    assert parse_notice("123 cut") == (123, "cut")
    for bad in (None, "", "abc cut", "-1 cut", " 12 cut"):
        assert parse_notice(bad) is None
    assert parse_notice("12") == (12, "")  # an older route's notice: the size alone


def test_the_explanation_says_how_and_how_to_raise_the_limit() -> None:
    assert "without being read" in too_large_explanation(5000, MAX, "unread")
    assert "by the public hook route" in too_large_explanation(5000, MAX, "discarded", by_route=True)
    text = too_large_explanation(5000, MAX, "cut")
    assert "at least 5000 bytes" in text and "connection was closed" in text and "max_body=" in text


def test_the_policy_is_stdlib_only() -> None:
    code = (
        "import sys; import elwh_nb._core.bodies; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'numpy', 'tornado', 'ipywidgets', 'jupyter_server') or m == 'elwh_nb._core.intake'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
