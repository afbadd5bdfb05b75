"""The receiver's options: one configuration object, checked in one place, before anything starts."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import pytest

import elwh_nb
from elwh_nb._server.config import ReceiverConfig

from .conftest import SECRET


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"port": 70000}, ValueError, "port must be 0-65535"),
        ({"port": -1}, ValueError, "port must be 0-65535"),
        ({"port": "8080"}, TypeError, "port must be an int"),
        ({"port": True}, TypeError, "port must be an int"),
        ({"max_body": 0}, ValueError, "max_body must be a positive number of bytes"),
        ({"max_body": -5}, ValueError, "max_body must be a positive number of bytes"),
        ({"max_body": 1.5}, TypeError, "max_body must be an int"),
        ({"body_timeout": 0}, ValueError, "body_timeout must be a positive number of seconds"),
        ({"tunnel_timeout": -1}, ValueError, "tunnel_timeout must be a positive number of seconds"),
        ({"tolerance": -1}, ValueError, "tolerance must be None or at least 0 seconds"),
        ({"future_tolerance": -1}, ValueError, "future_tolerance must be None or at least 0 seconds"),
        ({"host": 127}, TypeError, "host must be a str"),
        ({"path": "webhook"}, ValueError, "path must start with '/'"),
    ],
)
def test_a_bad_option_is_refused_before_anything_starts(
    options: dict[str, Any], error: type[Exception], match: str, tmp_path: Path
) -> None:
    store = tmp_path / "rx.sqlite"
    with pytest.raises(error, match=match):
        elwh_nb.start(SECRET, store=store, **options)
    assert not store.exists()  # refused before the store was opened


def test_a_missing_secret_is_refused_before_the_store_is_opened(tmp_path: Path) -> None:
    store = tmp_path / "rx.sqlite"
    with pytest.raises(elwh_nb.SignatureError) as info:
        elwh_nb.start([], store=store)
    assert info.value.reason == "missing_secret" and not store.exists()


def test_start_takes_exactly_the_configuration_s_options() -> None:
    """start() is the documented face of ReceiverConfig: same names, order, defaults, keyword-only."""
    params = list(inspect.signature(elwh_nb.start).parameters.values())
    options = list(inspect.signature(ReceiverConfig).parameters.values())
    assert [(p.name, p.kind, p.default) for p in params] == [(p.name, p.kind, p.default) for p in options]
    assert (
        params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        and params[0].default is inspect.Parameter.empty
    )
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])


def test_start_passes_each_option_on(tmp_path: Path) -> None:
    # Each by name (not **locals(): a new local variable would break it): a non-default value
    # of every option that does not need a network reaches the receiver.
    with elwh_nb.start(
        SECRET, path="/hooks/in", store=tmp_path / "o.sqlite", max_body=12345, body_timeout=7.5
    ) as rx:
        assert rx.path == "/hooks/in" and rx.max_body == 12345 and rx.body_timeout == 7.5
        assert rx.store.path is not None and rx.store.path.name == "o.sqlite"


def test_the_configuration_never_shows_the_secret() -> None:
    config = ReceiverConfig([SECRET, "wsec_test_other"], tunnel="ssh://h", ssh_options=["-p", "22"])
    assert SECRET not in repr(config) and SECRET not in str(config)
    assert config.keys == (SECRET.encode(), b"wsec_test_other")  # read once: an iterator is used up
    assert not hasattr(config, "secret")  # only the keys are kept
    assert config.ssh_options == ("-p", "22")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
