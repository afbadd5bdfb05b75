"""latency(), tool_summary(), outcomes() and the call plots, on real-shaped calls and the factory's day."""

from __future__ import annotations

import statistics
import time

import pandas as pd
import pytest

import elwh_nb
from elwh_nb import EventStore

from . import real_calls

PLOTS = (
    "plot_stage_latency",
    "plot_latency_by_hour",
    "plot_latency_in_call",
    "plot_cost_per_minute",
    "plot_outcomes",
    "plot_tool_calls",
)


@pytest.fixture(scope="module")
def day() -> EventStore:
    """A simulated day of calls for the factory's agents."""
    factory = elwh_nb.payloads(21, now=time.time())
    store = EventStore(":memory:")
    store.append_many([factory.body(e) for e in factory.batch(300, span_s=86_400)])
    return store


def test_latency_reports_each_stage_and_the_callers_wait() -> None:
    store = EventStore(":memory:")
    store.append_many([real_calls.body(real_calls.transcription()), real_calls.body(real_calls.failed())])
    table = elwh_nb.latency(store, by=None).set_index("stage")
    waits = [0.31 + 0.83 + 0.21, 2.4 + 0.3, 0.4 + 0.7]
    assert table.loc["wait_s", "count"] == 3 and table.loc["wait_s", "p50"] == pytest.approx(
        statistics.median(waits)
    )
    assert table.loc["wait_s", "max"] == pytest.approx(max(waits))
    assert table.loc["convai_llm_service_ttfb", "count"] == 3
    assert "convai_new_stage_latency" in table.index  # a name nobody listed is reported too
    assert list(table.columns) == ["count", "p50", "p90", "p99", "max"]
    # Real deliveries carry no agent name: the agent is its id.
    by_agent = elwh_nb.latency(store)
    assert set(by_agent.agent) == {real_calls.AGENT}
    by_day = elwh_nb.latency(store.turns, by=["day", "role"], stages=["wait_s"])
    assert list(by_day.columns[:3]) == ["day", "role", "stage"] and set(by_day.role) == {"agent"}
    with pytest.raises(KeyError, match="cannot group"):
        elwh_nb.latency(store, by="planet")
    assert elwh_nb.latency(EventStore(":memory:")).empty


def test_latency_by_agent_names_them_and_tells_the_slow_one(day: EventStore) -> None:
    table = elwh_nb.latency(day, by="agent")
    waits = table[table.stage == "wait_s"].set_index("agent")
    assert set(waits.index) == {"Support Agent", "Booking Assistant", "Survey Bot"}
    assert waits.p50.idxmax() == "Survey Bot"  # the factory's slow model
    # The same table from the events frame, derived on the spot.
    pd.testing.assert_frame_equal(elwh_nb.latency(day.events, by="agent"), table)


def test_tool_summary_and_outcomes() -> None:
    store = EventStore(":memory:")
    store.append_many([real_calls.body(real_calls.transcription()), real_calls.body(real_calls.failed())])
    tools = elwh_nb.tool_summary(store)
    assert tools.loc["issue_refund", "errors"] == 1 and tools.loc["issue_refund", "error_rate"] == 1
    assert (
        tools.loc["lookup_order", "tool_type"] == "webhook" and tools.loc["lookup_order", "p50_s"] == 0.8123
    )
    factory = elwh_nb.payloads(3)
    store.append(factory.body(factory.call_initiation_failure()))
    store.append(factory.body(factory.post_call_transcription_otel(failed=False)))
    got = elwh_nb.outcomes(store).sort_values().tolist()
    assert got == sorted(["failure", "failed call", "never started", "not analysed"])


@pytest.mark.parametrize("name", PLOTS)
def test_each_plot_draws_a_picture_with_and_without_calls(day: EventStore, name: str) -> None:
    plot = getattr(elwh_nb, name)
    for source in (day, EventStore(":memory:")):
        fig = plot(source)
        png, size = fig._repr_png_()
        assert png.startswith(b"\x89PNG") and len(png) > 5_000 and size["width"] > 300
        assert any(ax.get_title() for ax in fig.axes)
    drawn = plot(day)
    assert not any(t.get_text() == "no calls yet" for ax in drawn.axes for t in ax.texts)
