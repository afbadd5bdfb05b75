"""ElevenLabs registers only HTTPS URLs: a plain-HTTP rx.url says so, and how to get one that is not.

The SDK's ``webhook_url`` field, the speech-to-text guide and the personalisation page
all require HTTPS. Real receivers on loopback; the tunnel's status without ssh (its URL
is what a running tunnel would have announced).
"""

from __future__ import annotations

from pathlib import Path

import elwh_nb
from elwh_nb._notebook.render import header
from elwh_nb._server import urls as _urls
from elwh_nb._server.tunnel_status import TunnelStatus
from elwh_nb._server.tunnel_urls import Destination

from .conftest import SECRET


def test_a_plain_http_url_says_it_cannot_be_registered_and_what_to_do(tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", public_url="http://hooks.example.org") as rx:
        assert rx.url.startswith("http://hooks.example.org/")
        note = rx.url_note or ""
        assert "only HTTPS" in note and "plain HTTP" in note
        assert (
            'tunnel="ssh://nokey@localhost.run"' in note and "cloudflared" in note and "public_url=" in note
        )
        assert "plain HTTP: ElevenLabs needs HTTPS" in repr(rx)
        assert "only HTTPS" in header(rx, 0)


def test_an_https_url_has_no_such_note(tmp_path: Path) -> None:
    with elwh_nb.start(SECRET, store=tmp_path / "rx.sqlite", public_url="https://hooks.example.org") as rx:
        assert rx.url.startswith("https://hooks.example.org/")
        assert "HTTPS" not in (rx.url_note or "") and "plain HTTP" not in repr(rx)
        assert "only HTTPS" not in header(rx, 0)


def test_https_is_told_by_the_scheme_alone() -> None:
    assert _urls.is_https("HTTPS://x.example/a") and not _urls.is_https("http://x.example/https://")
    assert not _urls.is_https("") and not _urls.is_https(None)
    assert _urls.https_note("https://x.example") is None


def test_the_tunnels_status_says_whether_its_url_is_https() -> None:
    status = TunnelStatus(Destination(host="example.org", port=None, user="me"), None, 8080, None)
    assert status.https is None  # no URL yet
    status.url = "http://example.org:8080"
    assert status.https is False and "plain HTTP" in status.summary and "https=False" in repr(status)
    status.url = "https://abc.lhr.life"
    assert status.https is True and "plain HTTP" not in status.summary
