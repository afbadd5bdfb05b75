"""The dashboard, tested on its widgets' traits in plain pytest (no kernel, no browser)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import ipywidgets as w
import pandas as pd
import pytest

import elwh_nb
from elwh_nb._dashboard import Dashboard, json_view

from .conftest import SECRET


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rx() -> Iterator[elwh_nb.Receiver]:
    with elwh_nb.start(SECRET, store=":memory:") as receiver:
        yield receiver


def rows_in(dash: Dashboard) -> int:
    return dash.table.value.count("<tr>") - 1  # minus the header row


def all_state(widget: w.Widget) -> str:
    """Every trait of every widget in the panel, as the browser would get it."""
    seen, todo, out = set(), [widget], []
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        out.append(json.dumps(item.get_state(), default=str))
        for child in getattr(item, "children", ()):
            todo.append(child)
    return "\n".join(out)


def test_counters_match_the_deliveries(rx: elwh_nb.Receiver) -> None:
    rx.simulate(30, faults={"tampered": 3, "duplicate": 2}, via="direct")
    dash = rx.dashboard(autorefresh=False)
    assert "<b>27</b> accepted" in dash.counters.value  # 30 minus 3 tampered (duplicates' repeats are extra)
    assert "<b>2</b> duplicates" in dash.counters.value
    assert "<b>3</b> failures (signature_mismatch 3)" in dash.counters.value
    assert "<b>27</b> events in the last minute" in dash.counters.value
    assert rows_in(dash) == dash.page_size == 20
    assert "rows 1-20 of 27" in dash.page_label.value


def test_type_filter_narrows_the_table_and_new_types_appear(rx: elwh_nb.Receiver) -> None:
    rx.simulate(40, types=["post_call_transcription", "speech_to_text_transcription"], via="direct", seed=1)
    dash = rx.dashboard(autorefresh=False)
    assert set(dash.types.options) == {"post_call_transcription", "speech_to_text_transcription"}
    dash.types.value = ("speech_to_text_transcription",)
    shown = rx.events.loc[[v for _, v in dash.pick.options]]
    assert len(shown) and set(shown.event_type) == {"speech_to_text_transcription"}
    assert dash.table.value.count("speech_to_text_transcription") == len(shown)
    assert "post_call_transcription" not in dash.table.value
    rx.simulate(2, types=["voice_removed"], via="direct", seed=2)
    dash.refresh(force=True)
    assert "voice_removed" in dash.types.options
    assert dash.types.value == ("speech_to_text_transcription",)  # the choice survives


def test_search_outcome_and_window_filters(rx: elwh_nb.Receiver) -> None:
    rx.simulate(15, faults={"expired": 2}, via="direct", seed=3)
    dash = rx.dashboard(autorefresh=False)
    target = rx.events.dropna(subset=["conversation_id"]).iloc[0]
    dash.search.value = target.conversation_id[5:15]
    assert rows_in(dash) == 1 and target.conversation_id in dash.table.value
    dash.search.value = ""
    dash.outcome.value = "failed"
    assert rows_in(dash) == 2 and "timestamp_expired" in dash.table.value
    dash.outcome.value = "accepted"
    dash.window.value = "last 5 min"
    assert rows_in(dash) == 13


def test_failure_inspector_shows_the_explanation(rx: elwh_nb.Receiver) -> None:
    elwh_nb.send(
        rx.local_url, SECRET, 3, faults={"reserialised": 1}, seed=4, headers={"Cookie": "sid=c00k1e"}
    )
    dash = rx.dashboard(autorefresh=False)
    dash.outcome.value = "failed"
    dash.pick.value = dash.pick.options[0][1]
    text = dash.detail.value
    assert "signature_mismatch" in text and "re-serialised" in text
    assert "Cookie" in text and "[redacted]" in text and "c00k1e" not in text
    assert "Elevenlabs-Signature" in text or "ElevenLabs-Signature" in text
    assert "bytes)" in text  # the body preview


def test_selecting_an_event_shows_its_payload_with_long_strings_shortened(rx: elwh_nb.Receiver) -> None:
    factory = elwh_nb.payloads(5)
    rx.store.append(factory.body(factory.post_call_audio(audio_bytes=1_000_000)))
    dash = rx.dashboard(autorefresh=False)
    dash.pick.value = dash.pick.options[0][1]
    assert "full_audio" in dash.detail.value and "characters)" in dash.detail.value
    assert len(dash.detail.value) < 20_000  # not megabytes of base64
    assert "rx.store.raw_body(1)" in dash.detail.value
    assert "download=" not in dash.detail.value  # a megabyte body gets no inline link


def test_small_raw_bodies_can_be_downloaded(rx: elwh_nb.Receiver) -> None:
    rx.simulate(1, types=["speech_to_text_transcription"], via="direct", seed=5)
    dash = rx.dashboard(autorefresh=False)
    dash.pick.value = dash.pick.options[0][1]
    encoded = dash.detail.value.split("base64,")[1].split("'")[0]
    assert base64.b64decode(encoded) == rx.store.raw_body(1)


def test_refresh_is_throttled_and_only_when_something_changed(rx: elwh_nb.Receiver) -> None:
    clock = Clock()
    dash = Dashboard(rx, autorefresh=False, clock=clock, min_interval=0.5)
    first = dash.renders
    assert not dash.tick()  # nothing changed
    rx.simulate(1, via="direct")
    assert not dash.tick()  # changed, but too soon
    clock.now += 0.6
    assert dash.tick() and dash.renders == first + 1
    clock.now += 0.6
    assert not dash.tick()  # nothing new since
    for _ in range(5):
        rx.simulate(1, via="direct")
        clock.now += 0.1
        dash.tick()
    assert dash.renders <= first + 2  # five bursts inside 0.5 s: at most one render


def test_a_refresh_at_100k_events_renders_one_page(rx: elwh_nb.Receiver) -> None:
    bodies = [
        b'{"type":"%s","event_timestamp":1700000000,"data":{"request_id":"r%d"}}'
        % (b"speech_to_text_transcription" if i % 10 else b"voice_removed", i)
        for i in range(100_000)
    ]
    rx.store.append_many(bodies)
    dash = rx.dashboard(autorefresh=False)
    t0 = time.perf_counter()
    dash.refresh(force=True)
    unfiltered = time.perf_counter() - t0
    assert dash.rows_rendered == rows_in(dash) == dash.page_size
    dash.types.value = ("voice_removed",)
    t0 = time.perf_counter()
    dash.refresh(force=True)
    filtered = time.perf_counter() - t0
    assert dash.rows_rendered == dash.page_size
    assert "voice_removed" in dash.table.value and "speech_to_text" not in dash.table.value
    assert unfiltered < 1.0 and filtered < 1.0  # a design that renders everything takes far longer


def test_paging(rx: elwh_nb.Receiver) -> None:
    rx.store.append_many([b'{"type":"x","n":%d}' % i for i in range(45)])
    dash = rx.dashboard(autorefresh=False)
    assert dash.pick.options[0][1] == 45
    dash.next_button.click()
    assert dash.pick.options[0][1] == 25 and "rows 21-40" in dash.page_label.value
    dash.next_button.click()
    assert rows_in(dash) == 5
    dash.next_button.click()  # no further
    assert rows_in(dash) == 5
    dash.prev_button.click()
    dash.prev_button.click()
    assert dash.pick.options[0][1] == 45


def test_buttons_send_replay_and_export(rx: elwh_nb.Receiver, tmp_path: Path) -> None:
    dash = rx.dashboard(autorefresh=False)
    dash.send_count.value = 12
    dash.fault_mix.value = "no faults"
    dash.send_test_events(wait=True)
    assert "sent 12 deliveries: 12 answered as expected" in dash.message.value
    dash.refresh(force=True)
    dash.pick.value = dash.pick.options[0][1]
    dash.replay_selected()
    assert "answered 200" in dash.message.value
    assert rx.store.counts["duplicates"] == 1
    path = dash.export(tmp_path)
    assert path is not None and len(pd.read_csv(path)) == 12


def test_timings_tab(rx: elwh_nb.Receiver) -> None:
    rx.simulate(20, via="direct", seed=6)
    dash = rx.dashboard(autorefresh=False)
    dash.tabs.selected_index = 1
    assert len(dash.plots.children) == 4
    assert all(isinstance(c, w.Image) and c.value[:4] == b"\x89PNG" for c in dash.plots.children)
    assert "delivery_lag_s" in dash.timing_table.value


def test_several_dashboards_and_no_secret_in_widget_state(rx: elwh_nb.Receiver) -> None:
    a, b = rx.dashboard(autorefresh=False), rx.dashboard(autorefresh=False)
    rx.simulate(5, faults={"wrong_secret": 1}, via="direct")
    a.refresh(force=True)
    b.refresh(force=True)
    assert a.counters.value == b.counters.value
    b.outcome.value = "failed"
    b.pick.value = b.pick.options[0][1]
    a.tabs.selected_index = 1
    state = all_state(a.widget) + all_state(b.widget)
    assert SECRET not in state and SECRET[5:] not in state


def test_receiver_rich_display_is_the_dashboard(rx: elwh_nb.Receiver) -> None:
    bundle = rx._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("<Receiver listening")


def test_json_view_is_collapsible_and_escaped() -> None:
    html = json_view({"a": [1, 2], "b": "<script>", "c": "x" * 1000})
    assert html.startswith("<details open>") and "&lt;script&gt;" in html
    assert "1,000 characters" in html and "x" * 200 not in html
