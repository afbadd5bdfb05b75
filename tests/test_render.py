"""The dashboard's HTML, from plain frames and values: no widgets, no receiver."""

from __future__ import annotations

import base64
import json
import re
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
    assert html.count("<tr") == 2 and "&lt;b&gt;x&lt;/b&gt;" in html and "req_&lt;1&gt;" in html
    assert "<b>x</b>" not in html
    assert render.events_table(store.events.iloc[:0]) == "<i>no events match</i>"


def test_the_failures_table_shows_the_explanations_first_sentence_wrapped(store: elwh_nb.EventStore) -> None:
    store.add_failure("signature_mismatch", status=401, explanation="y" * 500, remote="10.0.0.<1>")
    store.add_failure("not_found", status=404, explanation="No route here. Check the URL.", remote="a " * 40)
    html = render.failures_table(store.failures)
    assert "y" * 239 + "…" in html and "y" * 240 not in html and "10.0.0.&lt;1&gt;" in html
    assert "No route here</td>" in html and "Check the URL" not in html
    wrapped = re.findall(r"<td style='[^']*white-space:normal[^']*'>([^<]*)</td>", html)
    assert len(wrapped) == 4 and ("a " * 40).strip() in [w.strip() for w in wrapped]  # explanation and from
    assert render.failures_table(store.failures.iloc[:0]) == "<i>no failures</i>"


@pytest.mark.parametrize(
    ("first", "n", "more", "total", "label"),
    [
        (0, 20, True, 27, "rows 1-20 of 27"),
        (20, 5, False, None, "rows 21-25 of 25"),
        (20, 20, True, None, "rows 21-40 of more than 40"),
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


def test_counters_mention_calls_only_when_there_are_some() -> None:
    counts = {"events": 5, "duplicates": 1, "failures": 4}
    assert "calls" not in render.counters(counts, {}, 0)
    html = render.counters(counts, {}, 0, calls=3, calls_not_ok=1)
    assert html.endswith(" · <b>3</b> calls (1 not answered 200)")
    assert render.counters(counts, {}, 0, calls=2).endswith(" · <b>2</b> calls")


HOSTILE = "<script>alert(1)</script>"


def add_hostile_call(store: elwh_nb.EventStore) -> int:
    return store.add_call(
        "tool",
        "get_order",
        method="POST",
        status=500,
        latency_s=0.0123,
        parameters={"order_id": HOSTILE, HOSTILE: [1, {"deep": HOSTILE}]},
        error=f"Traceback (most recent call last):\n  File <x>\nKeyError: '{HOSTILE}'",
        conversation_id=f"conv_{HOSTILE}",
        headers={"X-Callback-Secret": "wsec_test_call_not_shown", "User-Agent": HOSTILE},
        remote="10.0.0.<1>",
        received_at=time.time(),
    )


def test_the_calls_table_escapes_and_shortens(store: elwh_nb.EventStore) -> None:
    add_hostile_call(store)
    store.add_call(
        "tool", "x", method="GET", status=200, latency_s=1.5, parameters={"q": "y" * 500}, answer="{}"
    )
    html = render.calls_table(store.calls)
    assert html.count("<tr") == 3 and "<script>" not in html and "&lt;script&gt;" in html
    assert "12.3 ms" in html and "1,500.0 ms" in html
    assert "KeyError: &#x27;&lt;script&gt;" in html and "Traceback" not in html  # the error's last line
    assert "y" * 60 in html and "y" * 200 not in html
    assert render.calls_table(store.calls.iloc[:0]) == "<i>no calls match</i>"


def test_a_call_detail_shows_parameters_answer_error_and_redacted_headers(store: elwh_nb.EventStore) -> None:
    hostile = add_hostile_call(store)
    html = render.call_detail(store.calls, hostile)
    assert "call #1: get_order</b> (tool), POST, answered 500 in 12.3 ms" in html
    assert "<script>" not in html and html.count("&lt;script&gt;") >= 6
    assert "Traceback (most recent call last)" in html and "File &lt;x&gt;" in html  # the whole traceback
    assert "10.0.0.&lt;1&gt;" in html and "conv_&lt;script&gt;" in html
    assert "[redacted]" in html and "wsec_test_call_not_shown" not in html
    answered = store.add_call(
        "initiation",
        "initiation",
        method="POST",
        status=200,
        latency_s=0.002,
        parameters={"caller_id": "+1555"},
        answer=json.dumps({"dynamic_variables": {"name": HOSTILE}}),
    )
    html = render.call_detail(store.calls, answered)
    assert "<b>answer</b>" in html and "dynamic_variables" in html and "<details" in html
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>error</b>" not in html
    shortened = store.add_call(
        "tool", "big", method="POST", status=200, latency_s=0.1, parameters={}, answer="[" + "1," * 10_000
    )
    html = render.call_detail(store.calls, shortened)
    assert "characters in all)" in html  # not JSON once shortened: shown as text
    assert render.call_detail(store.calls, 99) == "<i>no call #99 is kept</i>"
