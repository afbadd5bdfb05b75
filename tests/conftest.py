"""Shared test settings: hypothesis profiles and fake secrets."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

import elwh_nb


def in_ci() -> bool:
    """Whether the tests run in CI: the one reading of ``CI`` (1, true or yes, any case) in tests/."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


# CI runs the property tests harder than a quick local run; HYPOTHESIS_PROFILE overrides.
settings.register_profile("ci", max_examples=3000, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.register_profile(
    "thorough", max_examples=20000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if in_ci() else "dev"))

SECRET = "wsec_test_" + "0123456789abcdef" * 4
OTHER_SECRET = "wsec_test_" + "fedcba9876543210" * 4


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def rx() -> Iterator[elwh_nb.Receiver]:
    """A receiver on loopback with its events in memory (files that need another kind override it)."""
    with elwh_nb.start(SECRET, store=":memory:") as receiver:
        yield receiver


def require(available: bool, what: str, how: str) -> None:
    """Skip a test whose tool is missing, with how to get it; in CI a missing tool is a failure."""
    if available:
        return
    message = f"{what} is not available: {how}"
    if in_ci():
        pytest.fail(f"{message} (CI installs it in .ci/run)")
    pytest.skip(message)
