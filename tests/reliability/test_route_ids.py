"""Route ids cannot be guessed or enumerated: 192 random bits, looked up by name, never by scanning."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest

from elwh_nb import _routes


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    return tmp_path


def test_ids_are_long_random_and_url_safe() -> None:
    ids = {_routes.new_route_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(_routes.ROUTE_ID.fullmatch(i) and len(i) == 32 for i in ids)  # 24 bytes: 192 bits


def test_lookup_never_lists_the_directory(runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _routes.new_route_id()
    _routes.register(real, _routes.Route("127.0.0.1", 1, "/webhook", 10, os.getpid()))

    def no_listing(*args: object, **kwargs: object) -> None:
        raise AssertionError("route lookup enumerated the directory")

    monkeypatch.setattr(os, "listdir", no_listing)
    monkeypatch.setattr(os, "scandir", no_listing)
    monkeypatch.setattr(Path, "iterdir", no_listing)
    monkeypatch.setattr(Path, "glob", no_listing)
    assert _routes.lookup(real) is not None
    assert _routes.lookup(real[:-1] + ("A" if real[-1] != "A" else "B")) is None
    for bad in ("", "../routes", "a/b", "x" * 31, "x" * 33, real + "/"):
        assert _routes.lookup(bad) is None


def test_a_near_miss_takes_as_long_as_a_random_guess(runtime: Path) -> None:
    for _ in range(200):  # a busy registry
        _routes.register(_routes.new_route_id(), _routes.Route("127.0.0.1", 1, "/webhook", 10, os.getpid()))
    real = _routes.new_route_id()
    _routes.register(real, _routes.Route("127.0.0.1", 1, "/webhook", 10, os.getpid()))
    near = real[:-1] + ("A" if real[-1] != "A" else "B")
    times: dict[str, list[float]] = {"near": [], "random": []}
    for _ in range(3000):  # interleaved, so drift hits both alike
        for kind, guess in (("near", near), ("random", _routes.new_route_id())):
            t0 = time.perf_counter()
            _routes.lookup(guess)
            times[kind].append(time.perf_counter() - t0)
    near_ms, random_ms = statistics.median(times["near"]), statistics.median(times["random"])
    assert 0.8 < near_ms / random_ms < 1.25, (near_ms, random_ms)
