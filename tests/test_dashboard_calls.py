"""The dashboard's Calls tab (agent tools, call starts), tested on its widgets' traits in plain pytest."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import elwh_nb
from elwh_nb._notebook.dashboard import Dashboard
from elwh_nb._notebook.tabs import widget_tree

from .conftest import SECRET
from .helpers import wait_for
from .test_dashboard import FakeSource

NAMES = ("get_order", "create_order", "initiation")
HOSTILE = "<script>alert(1)</script>"
CALL_SECRET = "wsec_test_call_" + "5eC4e7" * 6


def rows_in(table: str) -> int:
    return table.count("<tr data-row=")  # the rows a click picks


def picked(dash: Dashboard) -> list[int]:
    return [call_id for _, (_, call_id) in dash.calls.pick.options]


def add_calls(store: elwh_nb.EventStore, n: int = 25) -> None:
    """``n`` calls of three names; every fifth raised (500); the first five an hour old; the last hostile."""
    now = time.time()
    for i in range(n):
        name = NAMES[i % 3]
        ok = i % 5 != 4
        store.add_call(
            "initiation" if name == "initiation" else "tool",
            name,
            method="POST",
            status=200 if ok else 500,
            latency_s=0.004 + i / 1000,
            parameters={"order_id": f"A{i}", **({"note": HOSTILE} if i == n - 1 else {})},
            answer=json.dumps({"status": "shipped", "order": f"A{i}"}) if ok else None,
            error=None if ok else f"Traceback (most recent call last):\n  ...\nKeyError: 'A{i}'",
            conversation_id=f"conv_{i}",
            headers={"X-Callback-Secret": "wsec_test_never_shown", "User-Agent": "ElevenLabs"},
            remote="10.0.0.1",
            received_at=now - 3600 if i < 5 else now,
        )


@pytest.fixture
def source() -> Iterator[FakeSource]:
    source = FakeSource()
    yield source
    source.store.close()


def test_the_calls_tab_shows_filters_pages_and_inspects_calls(source: FakeSource) -> None:
    add_calls(source.store)
    dash = Dashboard(source, autorefresh=False)
    calls = dash.calls
    assert dash.tabs.titles == ("Deliveries", "Timings", "Calls", "Conversations")
    assert "<b>25</b> calls (5 not answered 200)" in dash.counters.value
    assert rows_in(calls.table.value) == 20 and "rows 1-20 of 25" in calls.page_label.value
    assert picked(dash)[:3] == [25, 24, 23]  # newest first
    assert set(calls.names.options) == set(NAMES)

    calls.names.value = ("get_order",)
    assert picked(dash) == [25, 22, 19, 16, 13, 10, 7, 4, 1]
    assert "create_order" not in calls.table.value
    calls.names.value = ()
    calls.outcome.value = "not 200"
    assert picked(dash) == [25, 20, 15, 10, 5] and "KeyError: &#x27;A24&#x27;" in calls.table.value
    calls.outcome.value = "answered 200"
    assert len(picked(dash)) == 20 and not {25, 20, 15, 10, 5} & set(picked(dash))
    calls.outcome.value = "all"
    calls.search.value = "a13"  # a parameter's value, any case
    assert picked(dash) == [14]
    calls.search.value = "KEYERROR"  # the error
    assert len(picked(dash)) == 5
    calls.search.value = ""
    calls.window.value = "last 5 min"
    assert picked(dash) == list(range(25, 5, -1))
    calls.window.value = "all time"

    calls.next_button.click()
    assert picked(dash) == [5, 4, 3, 2, 1] and "rows 21-25" in calls.page_label.value
    calls.next_button.click()  # no further
    assert picked(dash) == [5, 4, 3, 2, 1]
    calls.prev_button.click()
    assert picked(dash)[0] == 25

    calls.pick.value = ("call", 25)
    detail = calls.detail.value
    assert "call #25: get_order</b> (tool), POST, answered 500" in detail
    assert "order_id" in detail and "A24" in detail and "conv_24" in detail
    assert "Traceback (most recent call last)" in detail  # the whole traceback
    assert "[redacted]" in detail and "wsec_test_never_shown" not in detail
    assert "&lt;script&gt;" in detail and "&lt;script&gt;" in calls.table.value
    assert HOSTILE not in detail and HOSTILE not in calls.table.value
    calls.pick.value = ("call", 24)
    assert "shipped" in calls.detail.value and "<b>answer</b>" in calls.detail.value

    calls.names.value = ("initiation",)
    source.store.add_call("tool", "lookup", method="GET", status=404, latency_s=0.001, parameters={})
    dash.refresh(force=True)
    assert "lookup" in calls.names.options and calls.names.value == ("initiation",)  # the choice survives
    assert "<b>26</b> calls (6 not answered 200)" in dash.counters.value
    dash.close()


def test_without_calls_the_tab_says_how_to_get_some(source: FakeSource) -> None:
    source.store.append(b'{"type":"x"}')
    dash = Dashboard(source, autorefresh=False)
    assert "calls" not in dash.counters.value
    assert "@rx.tool" in dash.calls.table.value and dash.calls.pick.options == ()
    dash.update_plots()
    assert dash.timings.call_timing_table.value == ""
    dash.close()


def test_the_timings_tab_shows_latency_per_tool(source: FakeSource) -> None:
    add_calls(source.store)
    dash = Dashboard(source, autorefresh=False)
    dash.tabs.selected_index = 1
    table = dash.timings.call_timing_table.value
    assert "latency_s" in table and all(name in table for name in NAMES)
    assert "answer latency" in table
    dash.close()


def test_the_call_secret_is_in_no_widget_state() -> None:
    with elwh_nb.start(SECRET, store=":memory:", call_secret=CALL_SECRET) as rx:

        @rx.tool("get_order", method="GET", path="{order_id}")
        def get_order(order_id: str) -> dict[str, Any]:
            """Look up an order."""
            return {"order_id": order_id}

        url = f"{rx.local_url}/tools/get_order/A1"
        assert httpx.get(url, headers={"X-Callback-Secret": CALL_SECRET}).status_code == 200
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"X-Callback-Secret": CALL_SECRET[:-1]}).status_code == 401
        wait_for(lambda: len(rx.calls) == 3, what="the calls in the log")
        dash = rx.dashboard(autorefresh=False)
        dash.tabs.selected_index = 1  # the timings, with the calls' latency
        assert "get_order" in dash.timings.call_timing_table.value
        seen, redacted = [], 0
        for _, value in dash.calls.pick.options:  # each call's detail, headers and all
            dash.calls.pick.value = value
            redacted += "x-callback-secret</td><td style='padding:2px 8px;white-space:nowrap'>[redacted]" in (
                dash.calls.detail.value
            )
            seen.append("\n".join(json.dumps(x.get_state(), default=str) for x in widget_tree(dash)))
        assert len(seen) == 3 and redacted == 2  # the two calls that sent the header show it redacted
        for state in seen:
            assert "get_order" in state and "A1" in state
            assert CALL_SECRET not in state and CALL_SECRET[15:35] not in state
        dash.close()
