"""What the dashboard says is true: names, units, plurals, how long, statuses (on its traits)."""

from __future__ import annotations

import io
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import elwh_nb
from elwh_nb._notebook import render
from elwh_nb._notebook.dashboard import Dashboard
from elwh_nb._notebook.query import Page

from .conftest import SECRET
from .test_dashboard import FakeSource
from .test_dashboard_calls import NAMES, add_calls


@pytest.fixture
def source() -> Iterator[FakeSource]:
    source = FakeSource()
    yield source
    source.store.close()


def cells(table: str, column: int) -> list[str]:
    """The text of one column of an HTML table from :func:`render.table`."""
    rows = [row for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S) if "<td" in row]  # not the header
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[column] for row in rows]


def test_the_calls_table_names_each_call_by_its_tool(source: FakeSource) -> None:
    add_calls(source.store, 9)
    dash = Dashboard(source, autorefresh=False)
    names = cells(dash.calls.table.value, 2)
    assert len(names) == 9 and set(names) <= set(NAMES)  # not the call ids (the frame's index)


def test_tool_latency_is_shown_in_milliseconds(source: FakeSource) -> None:
    add_calls(source.store, 9)  # answers in 4 to 12 ms
    dash = Dashboard(source, autorefresh=False)
    dash.timings.update()
    table = dash.timings.call_timing_table.value
    assert "latency per tool, ms" in table
    p50 = [float(v) for v in cells(table, 3)]
    assert p50 and all(4 <= v <= 13 for v in p50), p50


def test_counters_count_in_the_singular_and_the_plural() -> None:
    one = render.counters(
        {"events": 1, "duplicates": 1, "failures": 1}, {"signature_mismatch": 1}, 1, calls=1
    )
    assert "<b>1</b> duplicate ·" in one and "<b>1</b> failure (" in one
    assert "<b>1</b> event in the last minute" in one and "<b>1</b> call" in one
    two = render.counters({"events": 2, "duplicates": 0, "failures": 2}, {}, 0, calls=2)
    assert "<b>0</b> duplicates" in two and "<b>2</b> failures (none)" in two and "<b>2</b> calls" in two


def test_a_span_reads_as_people_say_it() -> None:
    assert [render.duration(s) for s in (0, 3, 59.9, 193, 3599, 7500)] == [
        "0 s",
        "3 s",
        "59 s",
        "3 min 13 s",
        "59 min 59 s",
        "2 h 5 min",
    ]


def test_a_stopped_receiver_says_how_long_it_ran_not_how_long_ago_it_started(tmp_path: Path) -> None:
    rx = elwh_nb.start(SECRET, store=tmp_path / "s.sqlite")
    live = render.header(rx, rx.started_at + 193)
    assert "listening</span> for 3 min 13 s" in live
    rx.stop()
    assert rx.stopped_at is not None
    later = render.header(rx, rx.stopped_at + 3 * 3600)  # looked at three hours later
    ran = render.duration(rx.stopped_at - rx.started_at)
    assert f"<b>stopped</b> (it ran {ran})" in later and " h " not in later
    assert "URL set up " in later and "ago))" not in later  # one pair of brackets


def test_paging_a_filter_says_there_are_more_not_older_ones() -> None:
    rows = pd.DataFrame(index=pd.RangeIndex(20))
    assert render.events_label(Page(rows, 0, True, None)) == "newest first · rows 1-20 of more than 20"
    assert render.events_label(Page(rows, 20, False, None)) == "newest first · rows 21-40 of 40"


def test_a_call_that_never_started_shows_why_in_the_status_column(source: FakeSource) -> None:
    factory = elwh_nb.payloads(4)
    failure = factory.make("call_initiation_failure")
    source.store.append(factory.body(failure))
    dash = Dashboard(source, autorefresh=False)
    status = cells(dash.table.value, 5)
    reason = source.store.events.failure_reason.iloc[0]
    assert reason and status == [reason]


def test_a_stopped_receiver_sends_nothing_and_the_panel_says_so(tmp_path: Path) -> None:
    rx = elwh_nb.start(SECRET, store=tmp_path / "s.sqlite")
    dash = rx.dashboard(autorefresh=False)
    try:
        assert not dash.actions.send_button.disabled and not dash.actions.replay_button.disabled
        rx.stop()
        dash.refresh(force=True)
        assert dash.actions.send_button.disabled and dash.actions.replay_button.disabled
        assert "stopped" in dash.actions.send_button.tooltip
        dash.send_test_events(wait=True)  # as a click that came before the refresh would
        assert "the receiver is stopped: nothing was sent" in dash.message.value
    finally:
        dash.close()
    with elwh_nb.EventStore(tmp_path / "s.sqlite") as store:
        assert len(store) == 0 and len(store.failures) == 0
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("SELECT count(*) FROM inbox").fetchone() == (0,)  # nothing kept for later either
    db.close()


def test_the_header_leads_with_the_url_to_give_elevenlabs_and_folds_the_rest(source: FakeSource) -> None:
    source.proxy_url = "http://127.0.0.1:8888/proxy/1234/webhook"
    html = Dashboard(source, autorefresh=False).header.value
    first, _, rest = html.partition("<details>")
    assert source.url in first and "<br>" not in first and "user-select:all" in first
    assert source.local_url not in first and source.local_url in rest and source.proxy_url in rest
    assert "<summary" in rest and "a made-up source" in rest  # the note's start is the fold's title


# -- plots ----------------------------------------------------------------------------


def minutes_apart(*minutes: int, kind: str = "voice_removed") -> pd.DataFrame:
    store = elwh_nb.EventStore(":memory:")
    factory = elwh_nb.payloads(2)
    for m in minutes:
        store.append(factory.body(factory.make(kind)), received_at=1_767_225_600 + 60 * m)
    return store.events


def test_events_over_time_counts_idle_minutes_as_zeros() -> None:
    from elwh_nb._notebook.timings import events_per_interval

    counts = events_per_interval(minutes_apart(0, 0, 10), "1min")
    assert len(counts) == 11 and counts.iloc[:, 0].tolist() == [2] + [0] * 9 + [1]


def test_a_type_has_one_colour_in_every_plot_and_the_legend_sits_beside_the_chart() -> None:
    from matplotlib.colors import to_rgba

    from elwh_nb._notebook.figure import colour

    one = elwh_nb.plot_events_over_time(minutes_apart(0, 1, kind="voice_removed"))
    both = pd.concat([minutes_apart(0, 1, kind="post_call_transcription"), minutes_apart(0, 2)])
    two = elwh_nb.plot_events_over_time(both)
    for fig in (one, two):
        ax = fig.axes[0]
        legend = ax.get_legend()
        assert legend is not None
        fills = {
            t.get_text(): tuple(p.get_facecolor())
            for t, p in zip(legend.get_texts(), legend.get_patches(), strict=True)
        }
        assert fills["voice_removed"] == to_rgba(colour("voice_removed"))
        fig.canvas.draw()
        assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # beside, not over it
        assert ax.get_xlabel() == "received (UTC)"
    assert colour("voice_removed") != colour("post_call_transcription")
    assert colour("some_future_type") == colour("some_future_type")  # stable for names nobody listed


def test_a_plot_is_sharp_and_reads_on_a_dark_theme() -> None:
    from PIL import Image

    from elwh_nb._notebook.figure import INK, png

    fig = elwh_nb.plot_events_over_time(minutes_apart(0, 1, 2))
    data, size = png(fig)
    image = Image.open(io.BytesIO(data))
    corner = image.getpixel((0, 0))
    assert image.mode == "RGBA" and isinstance(corner, tuple) and corner[3] == 0  # transparent: no white card
    assert abs(image.width - 2 * size["width"]) <= 1 and abs(image.height - 2 * size["height"]) <= 1
    assert fig.axes[0].title.get_color() == INK
    from elwh_nb._notebook.tabs import _image

    shown = _image(fig)  # the dashboard's: shown at half its pixels, not stretched
    assert int(shown.width) == size["width"] and int(shown.height) == size["height"]


def test_an_export_offers_a_download_link(source: FakeSource, tmp_path: Path) -> None:
    import base64

    source.store.append_many([b'{"type":"x","data":{"conversation_id":"conv_%d"}}' % i for i in range(5)])
    dash = Dashboard(source, autorefresh=False)
    path = dash.export(tmp_path)
    assert path is not None
    message = dash.message.value
    assert f"download='{path.name}'" in message
    data = message.split("base64,", 1)[1].split("'", 1)[0]
    assert base64.b64decode(data) == path.read_bytes()  # the very file, in the link


def test_a_click_on_a_row_inspects_it(source: FakeSource) -> None:
    source.store.append_many([b'{"type":"x","data":{"conversation_id":"conv_%d"}}' % i for i in range(5)])
    dash = Dashboard(source, autorefresh=False)
    places = re.findall(r"<tr data-row='(\d+)'>", dash.table.value)
    assert places == [str(i) for i in range(5)] and len(dash.pick.options) == 5  # each row says its place
    assert "inspect" not in [getattr(c, "description", "") for c in dash.deliveries.children]  # no dropdown
    dash.table.clicked = 2  # what the frontend sets on a click
    picked = dash.pick.options[2][1]
    assert dash.pick.value == picked and f"<b>event #{picked[1]}</b>" in dash.detail.value
    oldest = dash.pick.value = dash.pick.options[4][1]  # picked from Python: that row highlights
    assert dash.table.clicked == 4
    source.store.append(b'{"type":"x","data":{"conversation_id":"conv_new"}}')
    dash.refresh(force=True)  # a new row on top: the row inspected stays, and stays highlighted
    assert dash.pick.value == oldest and dash.table.clicked == 5
    assert f"<b>event #{oldest[1]}</b>" in dash.detail.value


def test_a_failure_is_explained_once_and_its_long_columns_wrap(rx: elwh_nb.Receiver) -> None:
    elwh_nb.send(rx.local_url, SECRET, 2, faults={"reserialised": 1}, seed=4)
    dash = rx.dashboard(autorefresh=False)
    dash.outcome.value = "failed"
    dash.table.clicked = 0
    summary = rx.failures.explanation.iloc[-1]
    assert len(summary) > 40 and dash.detail.value.count(render.esc(summary)) == 1
    assert "[FAIL]" in dash.detail.value  # the checks of the full diagnosis are there, once
    assert "white-space:normal" in dash.table.value
    dash.close()


def test_a_page_without_a_kernel_shows_a_static_view(source: FakeSource) -> None:
    source.store.append_many([b'{"type":"x","data":{"conversation_id":"conv_%d"}}' % i for i in range(3)])
    dash = Dashboard(source, autorefresh=False)
    bundle = dash._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live panel, for JupyterLab
    static = bundle["text/html"]  # for the rendered docs, GitHub, nbconvert
    assert source.url in static and "<b>3</b> accepted" in static and static.count("<tr data-row=") == 3
    assert "<script" not in static
    dash.close()


def test_a_call_picked_stays_a_conversation_when_paged_away(source: FakeSource) -> None:
    factory = elwh_nb.payloads(4)
    source.store.append(factory.body(factory.post_call_transcription(turns=4, failed=False)))
    source.store.append_many([b'{"type":"x","data":{"conversation_id":"conv_%d"}}' % i for i in range(25)])
    dash = Dashboard(source, autorefresh=False)
    dash.page_size = 5
    dash.refresh(force=True)
    for _ in range(5):  # to the last page, where the call is (the oldest row)
        dash.next_button.click()
    call = next(value for label, value in dash.pick.options if "post_call_transcription" in label)
    dash.pick.value = call
    assert "the body as JSON" in dash.detail.value  # the chat, its JSON a click away
    dash.prev_button.click()  # paged away: still the call, still as a chat
    assert dash.pick.value == call and call not in [v for _, v in dash.pick.options]
    assert "the body as JSON" in dash.detail.value and dash.table.clicked == -1
    dash.close()
