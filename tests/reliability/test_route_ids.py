"""Route ids cannot be guessed or enumerated: 192 random bits, looked up by name, never by scanning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from elwh_nb._core.protocol import new_route_id
from elwh_nb._server import routes as _routes


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_ids_are_long_random_and_url_safe() -> None:
    ids = {new_route_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(_routes.ROUTE_ID.fullmatch(i) and len(i) == 32 for i in ids)  # 24 bytes: 192 bits


def test_lookup_opens_only_the_guess_own_file(runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No id is ever compared with a stored one: a guess is one open of the file it names,
    # so a near miss is looked up exactly as a random guess is. (A timing test of this
    # compared two lookups of absent files, which time alike whatever the code does.)
    real = new_route_id()
    _routes.write(real, _routes.Route(store="/nowhere.sqlite", max_body=10, created_ns=1))

    def no_listing(*args: object, **kwargs: object) -> None:
        raise AssertionError("route lookup enumerated the directory")

    monkeypatch.setattr(os, "listdir", no_listing)
    monkeypatch.setattr(os, "scandir", no_listing)
    monkeypatch.setattr(Path, "iterdir", no_listing)
    monkeypatch.setattr(Path, "glob", no_listing)
    read, read_text = [], Path.read_text

    def recording(self: Path, *args: object, **kwargs: object) -> str:
        read.append(self.name)
        return read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", recording)
    near = real[:-1] + ("A" if real[-1] != "A" else "B")
    guess = new_route_id()
    assert _routes.lookup(real) is not None
    assert _routes.lookup(near) is None and _routes.lookup(guess) is None
    assert read == [f"{real}.json", f"{near}.json", f"{guess}.json"]
    for bad in ("", "../routes", "a/b", "x" * 31, "x" * 33, real + "/"):
        assert _routes.lookup(bad) is None
    assert len(read) == 3  # a malformed id opens nothing
