"""The dashboard, tested on its widgets' traits in plain pytest (no kernel, no browser)."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import ipywidgets as w  # type: ignore[import-untyped]
import pandas as pd
import pytest
from tornado.ioloop import IOLoop, PeriodicCallback

import elwh_nb
from elwh_nb._notebook.dashboard import Dashboard
from elwh_nb._notebook.source import EventSource

from .conftest import SECRET


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rows_in(dash: Dashboard) -> int:
    return dash.table.value.count("<tr data-row=")  # the rows a click picks


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
    shown = rx.events.loc[[i for _, (_, i) in dash.pick.options]]
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


@pytest.mark.slow
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
    assert dash.pick.options[0][1] == ("event", 45)
    dash.next_button.click()
    assert dash.pick.options[0][1] == ("event", 25) and "rows 21-40" in dash.page_label.value
    dash.next_button.click()
    assert rows_in(dash) == 5
    dash.next_button.click()  # no further
    assert rows_in(dash) == 5
    dash.prev_button.click()
    dash.prev_button.click()
    assert dash.pick.options[0][1] == ("event", 45)


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
    rx.simulate(20, via="direct", seed=6, types=["post_call_transcription", "post_call_audio"])
    dash = rx.dashboard(autorefresh=False)
    dash.tabs.selected_index = 1
    assert len(dash.plots.children) == 4  # no job came back yet: no turnaround plot
    assert all(isinstance(c, w.Image) and c.value[:4] == b"\x89PNG" for c in dash.plots.children)
    assert "delivery_lag_s" in dash.timing_table.value and dash.jobs_table.value == ""
    rx.simulate(10, via="direct", seed=7, types=["chapter_conversion_status"])
    rx.expect("chap_never_back", submitted_at=time.time() - 7200, kind="chapter")
    dash.timings.update()
    assert len(dash.plots.children) == 5  # turnaround by job and outcome comes first
    assert "turnaround_s" in dash.timing_table.value
    assert "10 arrived" in dash.jobs_table.value and "1 overdue" in dash.jobs_table.value
    assert "chap_never_back" in dash.jobs_table.value


def test_several_dashboards_and_no_secret_in_widget_state(rx: elwh_nb.Receiver) -> None:
    a, b = rx.dashboard(autorefresh=False), rx.dashboard(autorefresh=False)
    rx.simulate(5, faults={"wrong_secret": 1}, via="direct")
    a.refresh(force=True)
    b.refresh(force=True)
    assert a.counters.value == b.counters.value
    b.outcome.value = "failed"
    b.pick.value = b.pick.options[0][1]
    a.tabs.selected_index = 1
    state = all_state(a) + all_state(b)
    assert SECRET not in state and SECRET[5:] not in state


def test_receiver_rich_display_is_the_dashboard(rx: elwh_nb.Receiver) -> None:
    bundle = rx._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("<Receiver listening")


def live_widgets() -> set[str]:
    """The model ids of every open widget in this process (what a kernel would keep)."""
    from ipywidgets.widgets.widget import _instances  # type: ignore[import-untyped]

    return set(_instances)


def test_closing_a_dashboard_closes_only_its_own_widgets(rx: elwh_nb.Receiver) -> None:
    mine = w.IntSlider(description="a user's own slider")
    before = live_widgets()
    dash = rx.dashboard(autorefresh=False)
    dash.tabs.selected_index = 1  # the plots too
    panel = live_widgets() - before
    assert len(panel) > 30  # every control, box, layout and style of the panel
    dash.update_plots()  # new images replace the old, which are closed
    assert len(live_widgets() - before) == len(panel)
    dash.close()
    assert mine.comm is not None and mine.model_id in live_widgets()  # the user's widget lives
    assert not panel & live_widgets()  # every one of the panel's widgets is closed
    mine.close()


def test_a_dashboard_is_a_widget_that_fits_in_a_layout(rx: elwh_nb.Receiver) -> None:
    rx.simulate(3, via="direct", seed=7)
    dash = rx.dashboard(autorefresh=False)
    assert isinstance(dash, w.VBox)
    plot = w.Output()
    row = w.HBox([dash, plot])  # a user's own layout
    assert row.get_state()["children"] == [f"IPY_MODEL_{dash.model_id}", f"IPY_MODEL_{plot.model_id}"]
    assert dash.tabs in dash.children and dash.counters in dash.children
    assert "<b>3</b> accepted" in dash.counters.value
    bundle = dash._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.model_id
    assert bundle["text/plain"].startswith("<Receiver listening")
    row.close()
    dash.close()


def running_timers() -> list[PeriodicCallback]:
    """Refresh timers running on this thread's loop."""
    loop = IOLoop.current()
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, PeriodicCallback) and o.is_running() and getattr(o, "io_loop", None) is loop
    ]


async def settle() -> None:
    """Let the loop run what was scheduled on it."""
    for _ in range(5):
        await asyncio.sleep(0)


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_displaying_the_receiver_again_and_again_runs_one_timer(rx: elwh_nb.Receiver) -> None:
    async def main() -> None:  # a running loop, as in a kernel: dashboards start their timers
        bundles = [rx._repr_mimebundle_() for _ in range(10)]
        await settle()
        assert len(running_timers()) == 1
        ids = {b["application/vnd.jupyter.widget-view+json"]["model_id"] for b in bundles}
        assert len(ids) == 1  # ten views of one dashboard

        extra = rx.dashboard()  # an explicit one is new, with its own timer ...
        await settle()
        assert len(running_timers()) == 2
        extra.close()  # ... which stops when it is closed
        await settle()
        assert len(running_timers()) == 1

        shown = rx.dashboard()
        await settle()
        shown._view_count = 1  # what the frontend reports when it shows the widget ...
        shown._view_count = 0  # ... and when the output is cleared: no view left
        await settle()
        assert len(running_timers()) == 1
        shown._view_count = 1  # shown again: refreshing again
        await settle()
        assert len(running_timers()) == 2

        rx.stop()  # every timer stops with the receiver
        await until(lambda: not running_timers())
        bundle = rx._repr_mimebundle_()  # still the same dashboard, now saying "stopped"
        assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] in ids
        assert bundle["text/plain"].startswith("<Receiver stopped")

    asyncio.run(main())


def test_a_closed_default_dashboard_is_replaced(rx: elwh_nb.Receiver) -> None:
    first = rx._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]["model_id"]
    from ipywidgets.widgets.widget import _instances

    _instances[first].close()
    second = rx._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert second != first and second in _instances


def test_a_failure_kept_only_in_memory_is_inspected_as_itself(tmp_path: Path) -> None:
    store = elwh_nb.EventStore(tmp_path / "events.sqlite", lock_timeout=0.3)
    with store, elwh_nb.start(SECRET, store=store) as rx:
        rx.simulate(2, faults={"tampered": 1}, via="direct", seed=8)  # event #1 and failure #1
        assert store.path is not None
        other = sqlite3.connect(store.path, isolation_level=None, timeout=0)
        other.execute("BEGIN EXCLUSIVE")  # another program holds the file: failures stay in memory
        try:
            rx.simulate(1, faults={"wrong_secret": 1}, via="direct", seed=9)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert sorted(rx.failures.index) == [-1, 1] and list(rx.events.index) == [1]
        dash = rx.dashboard(autorefresh=False)
        dash.outcome.value = "failed"
        labels = {label.split()[0]: value for label, value in dash.pick.options}
        dash.pick.value = labels["#-1"]
        assert "failure #-1: signature_mismatch" in dash.detail.value
        assert "not saved to the store file" in dash.detail.value
        assert "event #1" not in dash.detail.value
        dash.replay_selected()  # a failure kept only in memory has no body to replay
        assert "cannot replay failure #-1" in dash.message.value and rx.store.counts["duplicates"] == 0
        dash.pick.value = labels["#1"]
        assert "failure #1: signature_mismatch" in dash.detail.value
        dash.outcome.value = "accepted"
        dash.pick.value = dash.pick.options[0][1]
        assert "event #1" in dash.detail.value
        dash.close()


def test_failure_search_is_literal_and_export_follows_the_failure_filters(
    rx: elwh_nb.Receiver, tmp_path: Path
) -> None:
    rx.simulate(6, faults={"expired": 2, "tampered": 2}, via="direct", seed=10)
    rx.store.add_failure("not_found", status=404, explanation="an hour ago", received_at=time.time() - 3600)
    dash = rx.dashboard(autorefresh=False)
    dash.outcome.value = "failed"
    assert rows_in(dash) == 5
    dash.search.value = "explain(body"  # not a regular expression: taken as typed
    assert rows_in(dash) == 2 and dash.table.value.count("signature_mismatch") == 2
    dash.search.value = "expired"
    assert rows_in(dash) == 2 and dash.table.value.count("timestamp_expired") == 2
    path = dash.export(tmp_path)
    assert path is not None
    exported = pd.read_csv(path)
    assert len(exported) == 2 and set(exported.reason) == {"timestamp_expired"}
    dash.search.value = ""
    dash.window.value = "last 5 min"
    assert rows_in(dash) == 4
    (tmp_path / "window").mkdir()
    path = dash.export(tmp_path / "window")
    assert path is not None
    assert len(exported := pd.read_csv(path)) == 4 and "not_found" not in set(exported.reason)


def test_the_window_table_and_export_agree_when_arrivals_are_out_of_order(
    rx: elwh_nb.Receiver, tmp_path: Path
) -> None:
    rx.store.append_many([b'{"type":"x","n":%d}' % i for i in range(10)])
    # Kept while away an hour ago, stored only now: received_at is older than the rows before it.
    rx.store.append(b'{"type":"x","n":10}', received_at=time.time() - 3600, kept_while_away=True)
    dash = rx.dashboard(autorefresh=False)
    dash.window.value = "last 5 min"
    path = dash.export(tmp_path)
    assert path is not None
    exported = pd.read_csv(path)
    assert len(exported) == 10 and 11 not in set(exported.id)
    assert rows_in(dash) == 10 and "rows 1-10 of 10" in dash.page_label.value
    assert ("event", 11) not in [value for _, value in dash.pick.options]


class FakeSource:
    """A receiver as the dashboard sees it, over an in-memory store: no server, no thread, no secret."""

    def __init__(self) -> None:
        self.store = elwh_nb.EventStore(":memory:")
        self.running = False
        self.started_at = time.time() - 3725
        self.local_url = "http://fake.invalid/webhook"
        self.url = "https://example.invalid/elwh/hook/abc"
        self.url_story = "URL set up <today>"
        self.public_url = self.url
        self.proxy_url: str | None = None
        self.url_note: str | None = "a made-up source"
        self.tunnel = None
        self.factory = elwh_nb.payloads(11)

    def simulate(self, n: int, *, faults: object, progress: bool) -> pd.DataFrame:
        self.store.append_many([self.factory.body(e) for e in self.factory.batch(n)])
        return pd.DataFrame({"ok": [True] * n})

    def replay(self, event_id: int, *, as_new: bool = False) -> pd.DataFrame:
        appended = self.store.append(self.store.raw_body(event_id))
        return pd.DataFrame({"status": [200], "duplicate": [appended.duplicate], "callbacks_run": [as_new]})


def test_a_dashboard_renders_from_a_plain_source_without_a_server(tmp_path: Path) -> None:
    source = FakeSource()
    assert isinstance(source, EventSource)
    source.store.append_many([b'{"type":"x","data":{"conversation_id":"conv_%d"}}' % i for i in range(25)])
    source.store.add_failure("signature_mismatch", status=401, explanation="see <explain>", body=b"{}")
    source.store.add_failure("not_found", status=404, explanation="wrong path")
    dash = Dashboard(source, autorefresh=False)
    assert "<b>stopped</b>" in dash.header.value and "listening" not in dash.header.value
    assert dash.actions.send_button.disabled and "stopped" in dash.actions.send_button.tooltip
    assert "example.invalid/elwh/hook/abc" in dash.header.value and "&lt;today&gt;" in dash.header.value
    assert "<b>25</b> accepted" in dash.counters.value and "<b>2</b> failures" in dash.counters.value
    assert (
        rows_in(dash) == 20 and "rows 1-20 of 25" in dash.page_label.value and "conv_24" in dash.table.value
    )
    dash.search.value = "conv_1"
    assert rows_in(dash) == 11  # conv_1 and conv_10 to conv_19
    path = dash.export(tmp_path)
    assert path is not None and sorted(pd.read_csv(path).conversation_id) == sorted(
        f"conv_{i}" for i in [1, *range(10, 20)]
    )
    dash.pick.value = dash.pick.options[0][1]
    assert "event #20" in dash.detail.value and "conv_19" in dash.detail.value
    dash.replay_selected()  # stopped: nothing is sent, and the panel says why
    assert "the receiver is stopped" in dash.message.value and source.store.counts["duplicates"] == 0
    source.running = True  # as if it listened (the fake source stores what it is sent)
    dash.refresh(force=True)
    assert not dash.actions.send_button.disabled and not dash.actions.replay_button.disabled
    dash.replay_selected()
    assert "answered 200" in dash.message.value and source.store.counts["duplicates"] == 1
    dash.search.value = ""
    dash.outcome.value = "failed"
    assert rows_in(dash) == 2 and "see &lt;explain&gt;" in dash.table.value
    assert "2 kept (the newest 5,000)" in dash.page_label.value
    dash.pick.value = dash.pick.options[1][1]
    assert "failure #1: signature_mismatch" in dash.detail.value
    (tmp_path / "failures").mkdir()
    path = dash.export(tmp_path / "failures")
    assert path is not None and list(pd.read_csv(path).reason) == ["signature_mismatch", "not_found"]
    dash.send_count.value = 3
    dash.send_test_events(wait=True)
    assert "sent 3 deliveries: 3 answered as expected" in dash.message.value
    dash.refresh(force=True)
    assert "<b>28</b> accepted" in dash.counters.value
    dash.close()
    source.store.close()


def test_a_receiver_is_an_event_source(rx: elwh_nb.Receiver) -> None:
    # mypy checks it too, where Receiver.dashboard() passes the receiver to Dashboard.
    source: EventSource = rx
    assert isinstance(source, EventSource)
    assert rx.dashboard(autorefresh=False).rx is rx
