"""The Conversations tab, the conversation view and the counters, on their widgets' traits."""

from __future__ import annotations

import httpx
import pytest

import elwh_nb
from elwh_nb import sign
from elwh_nb._notebook.dashboard import CONVERSATIONS_TAB, Dashboard

from . import real_calls
from .conftest import SECRET


def post(rx: elwh_nb.Receiver, event: dict) -> int:
    body = real_calls.body(event)
    r = httpx.post(rx.local_url, content=body, headers={"ElevenLabs-Signature": sign(body, SECRET)})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


@pytest.fixture
def dash(rx: elwh_nb.Receiver) -> Dashboard:
    post(rx, real_calls.transcription())
    post(rx, real_calls.failed())
    rx.simulate(12, types=["post_call_transcription", "post_call_transcription_otel"], via="direct", seed=3)
    board = rx.dashboard(autorefresh=False)
    board.tabs.selected_index = CONVERSATIONS_TAB
    return board


def test_the_counters_tell_conversations_success_and_the_median_wait(
    dash: Dashboard, rx: elwh_nb.Receiver
) -> None:
    c = rx.conversations
    rated = c[c.call_successful.isin(["success", "failure"])]
    rate = (rated.call_successful == "success").mean()
    wait = rx.turns.wait_s.median()
    assert f"<b>{len(c)}</b> conversations" in dash.counters.value
    assert f"success <b>{rate:.0%}</b>" in dash.counters.value
    assert f"median wait <b>{wait:.2f} s</b>" in dash.counters.value


def test_the_tab_lists_filters_and_opens_a_conversation(dash: Dashboard, rx: elwh_nb.Receiver) -> None:
    tab = dash.conversations
    assert tab.table.value.count("<tr data-row=") == min(len(rx.conversations), dash.page_size)
    assert f"<b>{len(rx.conversations)}</b> conversations" in tab.summary.value
    tab.outcome.value = "failed or never started"
    listed = [cid for _, (_, cid) in tab.pick.options]
    assert "conv_failed_1" in listed  # the real failed call, and any the factory failed
    assert set(elwh_nb.outcomes(rx.conversations).loc[listed]) <= {"failed call", "never started"}
    tab.outcome.value = "all"
    tab.search.value = "order status"  # the real call's title (the factory's calls speak of refunds too)
    assert [cid for _, (_, cid) in tab.pick.options] == [real_calls.CONVERSATION]
    tab.pick.value = tab.pick.options[0][1]
    view = tab.detail.value
    # The analysis at the top, then the chat with latencies and tool calls inline, the JSON tree a click away.
    assert view.index("Order status and refund") < view.index("Where is my order A-1042?")
    assert "No refund." in view and "polite/tone" in view and "A-1042" in view
    assert "caller waited 1.35 s" in view and "TTS first byte 0.23" in view
    assert "lookup_order" in view and "https://api.example.com/orders/lookup" in view
    assert "issue_refund" in view and "<b>error</b>" in view
    assert "the body as JSON" in view and "&lt;REDACTED&gt;" in view
    assert "<i>(no text)</i>" in view  # the agent turn with no message
    tab.search.value = ""
    agents = tab.agents.options
    assert real_calls.AGENT in agents and len(agents) >= 2  # the real call has no name: its id
    tab.agents.value = (real_calls.AGENT,)
    assert {cid for _, (_, cid) in tab.pick.options} == {real_calls.CONVERSATION, "conv_failed_1"}


def test_an_otel_conversation_reads_the_same(dash: Dashboard, rx: elwh_nb.Receiver) -> None:
    otel = rx.conversations[rx.conversations.formats == "otel"]
    assert len(otel)
    tab = dash.conversations
    tab.search.value = otel.index[0]
    tab.pick.value = tab.pick.options[0][1]
    assert "agent · 0:00" in tab.detail.value and "the body as JSON" in tab.detail.value
    assert "caller waited" in tab.detail.value


def test_the_deliveries_inspector_shows_a_call_as_a_conversation(
    dash: Dashboard, rx: elwh_nb.Receiver
) -> None:
    event_id = int(rx.events.index[rx.events.conversation_id == real_calls.CONVERSATION][0])
    dash.tabs.selected_index = 0
    dash.pick.value = ("event", event_id)
    assert "Where is my order A-1042?" in dash.detail.value and "rx.store.raw_body" in dash.detail.value
    assert dash.detail.value.count("the body as JSON") == 1  # one tree, not two
    audio = rx.simulate(1, types=["speech_to_text_transcription"], via="direct", seed=9)
    assert audio.ok.all()
    dash.refresh(force=True)
    other = int(rx.events.index[-1])
    dash.pick.value = ("event", other)
    assert "conversation" not in dash.detail.value.split("Raw body")[0]


def test_the_tab_renders_only_while_shown(rx: elwh_nb.Receiver) -> None:
    post(rx, real_calls.transcription())
    board = rx.dashboard(autorefresh=False)
    assert board.conversations.table.value == ""  # not shown yet: not rendered
    board.tabs.selected_index = CONVERSATIONS_TAB
    assert real_calls.CONVERSATION in board.conversations.table.value


def test_rx_conversation_shows_one_call_and_holds_its_rows(dash: Dashboard, rx: elwh_nb.Receiver) -> None:
    call = rx.conversation(real_calls.CONVERSATION)
    html = call._repr_html_()
    assert html.index("Order status and refund") < html.index("Where is my order A-1042?")
    assert "caller waited 1.35 s" in html and "lookup_order" in html
    assert (
        set(call.turns.conversation_id) == {real_calls.CONVERSATION} and len(call.turns) == call.row["turns"]
    )
    assert list(call.tool_calls.tool_name) == ["lookup_order", "issue_refund", "end_call"]
    assert real_calls.CONVERSATION in repr(call) and "done" in repr(call)
    with pytest.raises(KeyError, match="no conversation 'conv_nobody'"):
        rx.conversation("conv_nobody")
