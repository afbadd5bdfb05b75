"""Callback URLs: unsigned callbacks (Studio's ``callback_url``) authenticated by a token of their own.

Direct to a receiver on loopback, then through a real ``jupyter server``'s public route, live
and while the receiver is away (kept in the inbox, the token checked when it drains).
Everything else still needs the signature.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import elwh_nb
from elwh_nb import sign
from elwh_nb._server.receiver import retire_url
from testkit.jupyter import JupyterServer, jupyter_server

from .conftest import OTHER_SECRET, SECRET
from .helpers import PROJECT_OK, wait_for

CONVERTED = PROJECT_OK  # the SDK's example of what a Studio project's callback_url receives


def body_of(event: dict[str, Any], **data: Any) -> bytes:
    """``event`` as Python's json.dumps writes it, with ``data`` changed (a body of its own)."""
    return json.dumps({**event, "data": {**event["data"], **data}}).encode()


@pytest.fixture
def rx(tmp_path: Path) -> Iterator[elwh_nb.Receiver]:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite") as receiver:
        yield receiver


def local(rx: elwh_nb.Receiver, url: str) -> str:
    """A callback URL as the receiver's local one (``rx.url`` is local here anyway)."""
    return rx.local_url.rstrip("/") + url[len(rx.url.rstrip("/")) :]


def test_an_unsigned_callback_to_its_url_is_stored_as_authenticated_by_url(rx: elwh_nb.Receiver) -> None:
    url = rx.callback_url("studio")
    r = httpx.post(local(rx, url), content=body_of(CONVERTED), timeout=10)
    assert r.status_code == 200, r.text
    row = rx.events.loc[r.json()["id"]]
    assert row.event_type == "project_conversion_status" and row.conversion_status == "success"
    assert row.authenticated_by == "url" and np.isnan(row.skew_s)
    # The webhook URL still takes signed deliveries only.
    r = httpx.post(rx.local_url, content=body_of(CONVERTED, request_id="2"), timeout=10)
    assert r.status_code == 401 and r.json()["reason"] == "missing_header"


def test_a_signature_at_a_callback_url_must_verify(rx: elwh_nb.Receiver) -> None:
    url = local(rx, rx.callback_url("studio"))
    body = body_of(CONVERTED, request_id="signed")
    r = httpx.post(url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)}, timeout=10)
    assert r.status_code == 200 and rx.events.loc[r.json()["id"]].authenticated_by == "signature"
    body = body_of(CONVERTED, request_id="forged")
    r = httpx.post(url, content=body, headers={"ElevenLabs-Signature": sign(body, OTHER_SECRET)}, timeout=10)
    assert r.status_code == 401 and r.json()["reason"] == "signature_mismatch"
    assert "forged" not in set(rx.events.request_id.dropna())


def test_a_wrong_token_is_a_recorded_404_that_keeps_no_token(rx: elwh_nb.Receiver) -> None:
    real = rx.callback_url("studio")
    token = real.rsplit("/", 1)[1]
    guess = real[: -len(token)] + "A" * len(token)
    for url in (guess, real.replace("/studio/", "/dubbing/"), real + "x"):
        r = httpx.post(local(rx, url), content=body_of(CONVERTED), timeout=10)
        assert r.status_code == 404, url
    assert rx.events.empty
    failures = rx.failures
    assert list(failures.reason) == ["unknown_callback"] * 3
    assert failures.path.str.endswith("/<token>").all()
    assert not any(token in str(v) or "A" * 32 in str(v) for v in failures.astype(str).to_numpy().ravel())
    # An unsigned delivery with a bad body at the right URL is a 400, as when signed.
    r = httpx.post(local(rx, real), content=b"not json", timeout=10)
    assert r.status_code == 400 and r.json()["reason"] == "invalid_json"


def test_a_callback_url_lasts_as_long_as_the_store_and_is_retired_with_it(tmp_path: Path) -> None:
    path = tmp_path / "rx.sqlite"
    with elwh_nb.start(SECRET, store=path) as rx:
        studio, other = rx.callback_url("studio"), rx.callback_url("dubbing")
        assert studio.startswith(rx.url.rstrip("/") + "/callback/studio/") and other != studio
        assert studio.rsplit("/", 1)[1] not in rx.url and rx.callback_url() == studio
        with pytest.raises(ValueError, match="lower-case"):
            rx.callback_url("Studio/../x")
    with elwh_nb.start(SECRET, store=path) as rx:  # another port here, the same token
        assert rx.callback_url("studio").rsplit("/", 1)[1] == studio.rsplit("/", 1)[1]
    with elwh_nb.EventStore(path) as store:
        assert retire_url(store)
        assert store.callback_token("studio", create=False) is None
    with elwh_nb.start(SECRET, store=path) as rx:
        fresh = rx.callback_url("studio")
        assert fresh.rsplit("/", 1)[1] != studio.rsplit("/", 1)[1]
        old = rx.local_url.rstrip("/") + "/callback/studio/" + studio.rsplit("/", 1)[1]
        assert httpx.post(old, content=body_of(CONVERTED), timeout=10).status_code == 404
    db = sqlite3.connect(path)
    (kept,) = db.execute("SELECT value FROM meta WHERE key = 'callback_token:studio'").fetchone()
    assert kept == fresh.rsplit("/", 1)[1]  # in the store file, beside the route id


def test_a_client_cannot_claim_a_callback_url_by_header(rx: elwh_nb.Receiver) -> None:
    """X-Elwh-Callback counts only from the route (with its token); a client's is ignored."""
    token = rx.callback_url("studio").rsplit("/", 1)[1]
    r = httpx.post(
        rx.local_url, content=body_of(CONVERTED), headers={"X-Elwh-Callback": f"studio/{token}"}, timeout=10
    )
    assert r.status_code == 401 and rx.events.empty


# -- through a real Jupyter server's public route ----------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[JupyterServer]:
    with jupyter_server(tmp_path / "jupyter") as s:
        yield s


@pytest.mark.slow
def test_through_the_public_route_live_and_while_away(
    server: JupyterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    store = tmp_path / "rx.sqlite"
    with elwh_nb.start(SECRET, store=store) as rx:
        assert rx.url == rx.public_url
        url = rx.callback_url("studio")
        assert url.startswith(rx.public_url.rstrip("/") + "/callback/studio/")
        r = httpx.post(url, content=body_of(CONVERTED), timeout=30)
        assert r.status_code == 200, r.text
        assert rx.events.authenticated_by.tolist() == ["url"]
        wrong = url[:-4] + "AAAA"
        assert httpx.post(wrong, content=body_of(CONVERTED, request_id="w"), timeout=30).status_code == 404
        assert httpx.get(url, timeout=30).status_code == 405
        assert httpx.post(url, content=b"{not json", timeout=30).status_code == 400
        token = url.rsplit("/", 1)[1]
        failures = rx.failures
        assert set(failures.reason) == {"unknown_callback", "invalid_json"}
        assert not any(token in str(v) for v in failures.astype(str).to_numpy().ravel())  # headers too
    # The kernel is away: the route keeps both, and the receiver checks the token when it drains.
    assert httpx.post(url, content=body_of(CONVERTED, request_id="away"), timeout=30).json()["kept"] is True
    assert httpx.post(wrong, content=body_of(CONVERTED, request_id="stranger"), timeout=30).status_code == 200
    with elwh_nb.start(SECRET, store=store) as rx:
        wait_for(lambda: len(rx.events) == 2 and len(rx.failures) == 3, 20)
        row = rx.events.iloc[-1]
        assert (row.request_id, row.authenticated_by, row.kept_while_away) == ("away", "url", True)
        assert list(rx.failures.reason)[2:] == ["unknown_callback"]
        assert "stranger" not in set(rx.events.request_id.dropna())
    log = server.log.read_text()
    assert "/callback/studio/<token>" in log and url.rsplit("/", 1)[1] not in log  # a stand-in
