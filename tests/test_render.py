"""The dashboard's HTML, from plain frames and values: no widgets, no receiver."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pandas as pd
import pytest

import elwh_nb
from elwh_nb._notebook import render
from elwh_nb._notebook.query import Page


@pytest.fixture
def store() -> Iterator[elwh_nb.EventStore]:
    with elwh_nb.EventStore(":memory:") as store:
        yield store


def test_json_view_is_collapsible_and_escaped() -> None:
    html = render.json_view({"a": [1, 2], "b": "<script>", "c": "x" * 1000})
    assert html.startswith("<details open>") and "&lt;script&gt;" in html
    assert "1,000 characters" in html and "x" * 200 not in html


def test_the_events_table_escapes_and_names_the_first_id(store: elwh_nb.EventStore) -> None:
    store.append(b'{"type":"<b>x</b>","data":{"request_id":"req_<1>"}}')
    html = render.events_table(store.events)
    assert html.count("<tr>") == 2 and "&lt;b&gt;x&lt;/b&gt;" in html and "req_&lt;1&gt;" in html
    assert "<b>x</b>" not in html
    assert render.events_table(store.events.iloc[:0]) == "<i>no events match</i>"


def test_the_failures_table_shortens_the_explanation(store: elwh_nb.EventStore) -> None:
    store.add_failure("signature_mismatch", status=401, explanation="y" * 500, remote="10.0.0.<1>")
    html = render.failures_table(store.failures)
    assert "y" * 120 in html and "y" * 121 not in html and "10.0.0.&lt;1&gt;" in html
    assert render.failures_table(store.failures.iloc[:0]) == "<i>no failures</i>"


@pytest.mark.parametrize(
    ("first", "n", "more", "total", "label"),
    [
        (0, 20, True, 27, "rows 1-20 of 27"),
        (20, 5, False, None, "rows 21-25 of 25"),
        (20, 20, True, None, "rows 21-40 and older ones"),
        (0, 0, False, None, "rows 0-0 of 0"),
        (0, 3, False, 1234567, "rows 1-3 of 1,234,567"),
    ],
)
def test_the_page_label(first: int, n: int, more: bool, total: int | None, label: str) -> None:
    rows = pd.DataFrame({"a": range(n)})
    assert render.events_label(Page(rows, first, more, total)) == f"newest first · {label}"


def test_an_event_detail_links_small_bodies_only(store: elwh_nb.EventStore) -> None:
    store.append(b'{"type":"x","big":"' + b"a" * 200_000 + b'"}')
    store.append(b'{"type":"x","small":1}')
    big, small = render.event_detail(1, store.raw_body), render.event_detail(2, store.raw_body)
    assert "download=" not in big and "200,000 characters" in big and len(big) < 20_000
    encoded = small.split("base64,")[1].split("'")[0]
    assert base64.b64decode(encoded) == store.raw_body(2)
    assert "cannot load event 3" in render.event_detail(3, store.raw_body)


def test_a_failure_detail(store: elwh_nb.EventStore) -> None:
    store.add_failure(
        "signature_mismatch",
        status=401,
        explanation="the body was <changed>",
        headers={"Cookie": "sid=s3cr3t", "X-A": "b"},
        body=b'{"type":"x"}',
        received_at=time.time(),
    )
    html = render.failure_detail(store.failures, 1)
    assert "failure #1: signature_mismatch</b>, answered 401" in html and "&lt;changed&gt;" in html
    assert "[redacted]" in html and "s3cr3t" not in html and "(12 bytes)" in html
    assert render.failure_detail(store.failures, 2) == "<i>that failure is no longer kept</i>"


def test_counters_list_reasons_most_first() -> None:
    counts = {"events": 5, "duplicates": 1, "failures": 4}
    html = render.counters(counts, {"not_found": 1, "signature_mismatch": 3}, 2)
    assert "(signature_mismatch 3, not_found 1)" in html and "<b>2</b> events in the last minute" in html
    assert "failures (none)" in render.counters(counts, {}, 0)
