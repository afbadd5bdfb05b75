"""timings(): a tidy table of delivery lag, call duration, post-call processing and turnaround."""

from __future__ import annotations

import gc
import json
import time
import weakref

import pandas as pd
import pytest
from matplotlib.figure import Figure

import elwh_nb
from elwh_nb import EventStore, payloads, timings

NOW = 1_739_537_297.0


@pytest.fixture
def store() -> EventStore:
    s = EventStore(":memory:")
    factory = payloads(3, now=NOW)
    for event in factory.batch(
        60, types=["post_call_transcription", "speech_to_text_transcription"], span_s=600
    ):
        s.append(factory.body(event), received_at=event["event_timestamp"] + 2.0)
    return s


def test_tidy_table_per_type_and_measure(store: EventStore) -> None:
    table = timings(store.events)
    assert list(table.columns) == ["event_type", "measure", "count", "p50", "p90", "p99", "max"]
    lag = table[(table.measure == "delivery_lag_s")]
    assert set(lag.event_type) == {"post_call_transcription", "speech_to_text_transcription"}
    assert lag["p50"].tolist() == pytest.approx([2.0, 2.0])  # received 2 s after event_timestamp
    assert lag["count"].sum() == 60
    calls = table[(table.event_type == "post_call_transcription") & (table.measure == "duration_s")].iloc[0]
    durations = store.events.query("event_type == 'post_call_transcription'").duration_s
    assert calls["count"] == len(durations)
    assert calls["p50"] == pytest.approx(durations.quantile(0.5))
    assert calls["max"] == durations.max()
    assert not ((table.event_type == "speech_to_text_transcription") & (table.measure == "duration_s")).any()


def test_processing_time_is_event_time_minus_call_end(store: EventStore) -> None:
    events = store.events.query("event_type == 'post_call_transcription'")
    row = events.iloc[0]
    payload = json.loads(store.raw_body(row.name))
    meta = payload["data"]["metadata"]
    expected = payload["event_timestamp"] - (meta["start_time_unix_secs"] + meta["call_duration_secs"])
    table = timings(events.iloc[[0]])
    processing = table[table.measure == "processing_s"].iloc[0]
    assert processing["p50"] == pytest.approx(expected)
    assert 0 <= expected < 30  # the factory analyses a call in 2 to 25 s


def test_grouping_further_and_empty_input(store: EventStore) -> None:
    by_agent = timings(store.events.dropna(subset=["agent_id"]), by=["event_type", "agent_id"])
    assert {"event_type", "agent_id", "measure"} <= set(by_agent.columns)
    assert timings(store.events.iloc[:0]).empty


def test_turnaround_from_expect(tmp_path: object) -> None:
    with elwh_nb.start("wsec_test_" + "1" * 64, store=":memory:") as rx:
        rx.expect("job-1", submitted_at=time.time() - 3, kind="speech_to_text")
        rx.expect("job-2", kind="speech_to_text")
        factory = payloads(1)
        events = [factory.speech_to_text_transcription(request_id="job-1")]
        elwh_nb.send(rx.local_url, "wsec_test_" + "1" * 64, events)
        jobs = rx.jobs.set_index("job_id")
        assert jobs.loc["job-1", "status"] == "arrived" and jobs.loc["job-2", "status"] == "waiting"
        assert 3 <= jobs.loc["job-1", "turnaround_s"] < 30
        table = timings(rx.events)
        assert table[table.measure == "turnaround_s"]["count"].sum() == 1


def test_turnaround_from_webhook_metadata_without_expect() -> None:
    with elwh_nb.start("wsec_test_" + "1" * 64, store=":memory:") as rx:
        factory = payloads(1)
        submitted = time.time() - 3
        events = [
            factory.speech_to_text_transcription(
                request_id="a", webhook_metadata={"submitted_at": submitted}
            ),
            factory.speech_to_text_transcription(
                request_id="b", webhook_metadata={"submitted_at": str(int(submitted) - 2)}
            ),
            factory.speech_to_text_transcription(request_id="c"),  # no submitted_at: no turnaround
        ]
        elwh_nb.send(rx.local_url, "wsec_test_" + "1" * 64, events)
        assert rx.jobs.empty  # nothing was announced
        turnaround = rx.events.set_index("request_id").turnaround_s
        assert 3 <= turnaround["a"] < 30 and 5 <= turnaround["b"] < 32 and pd.isna(turnaround["c"])
        row = timings(rx.events).set_index("measure").loc["turnaround_s"]
        assert (row["event_type"], row["count"]) == ("speech_to_text_transcription", 2)
        assert row["max"] == pytest.approx(turnaround.max())


def test_plots_return_figures_without_showing_them(store: EventStore) -> None:
    events = store.events
    figures = [
        elwh_nb.plot_delivery_lag(events),
        elwh_nb.plot_durations(events),
        elwh_nb.plot_processing(events),
        elwh_nb.plot_events_over_time(events, "1min"),
        elwh_nb.plot_failures(store.failures),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert [t.get_text() for t in figures[0].axes[0].get_yticklabels()] == [
        "post_call_transcription",
        "speech_to_text_transcription",
    ]
    empty = elwh_nb.plot_durations(events.iloc[:0])
    assert empty.axes[0].texts[0].get_text() == "no data yet"


def test_a_returned_figure_shows_as_a_picture_without_pyplot(store: EventStore) -> None:
    from IPython.core.formatters import DisplayFormatter
    from matplotlib._pylab_helpers import Gcf

    figures = [
        elwh_nb.plot_delivery_lag(store.events),
        elwh_nb.plot_events_over_time(store.events, "1min"),
        elwh_nb.plot_failures(store.failures),
    ]
    for figure in figures:
        # A fresh formatter knows no figure type (as in a kernel where pyplot was never imported).
        shown, _ = DisplayFormatter().format(figure)
        assert shown["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert Gcf.get_num_fig_managers() == 0  # no figure in pyplot's global registry
    refs = [weakref.ref(f) for f in figures]
    del figures, figure
    gc.collect()
    assert all(ref() is None for ref in refs)  # freed like any object
