"""The dashboard's query layer on plain frames from an in-memory EventStore: no receiver, no widgets."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from unittest import mock

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import elwh_nb
from elwh_nb._notebook import query as q
from elwh_nb._notebook.query import Page, Query, in_window, matching, run

NOW = 1_800_000_000.0  # every time below is relative to this "now"
TYPES = ("post_call_transcription", "speech_to_text_transcription", "voice_removed")


def body(i: int, kind: str) -> bytes:
    data = {"conversation_id": f"conv_{i:05d}", "agent_id": "agent.(x)" if i % 7 == 0 else f"agent_{i % 4}"}
    return json.dumps({"type": kind, "event_timestamp": 1_700_000_000 + i, "data": data}).encode()


@pytest.fixture(scope="module")
def events() -> Iterator[pd.DataFrame]:
    """600 events in batches whose arrival times are not in stored order (kept while away)."""
    with elwh_nb.EventStore(":memory:") as store:
        for batch, age in enumerate((7200, 10, 3600, 100, 30, 90_000)):
            store.append_many(
                [body(batch * 100 + i, TYPES[(batch + i) % 3]) for i in range(100)],
                received_at=NOW - age,
            )
        yield store.events


@pytest.fixture(scope="module")
def failures() -> Iterator[pd.DataFrame]:
    with elwh_nb.EventStore(":memory:") as store:
        for i in range(6):
            store.add_failure(
                "signature_mismatch" if i % 2 else "timestamp_expired",
                status=401,
                explanation=f"see explain(body) #{i}" if i % 2 else f"expired {i}",
                received_at=NOW - 10,
            )
        store.add_failure("not_found", status=404, explanation="an hour ago", received_at=NOW - 3600)
        yield store.failures


NAMES = ("get_order", "create_order", "initiation")


@pytest.fixture(scope="module")
def calls() -> Iterator[pd.DataFrame]:
    """120 calls: three names, every fourth not answered 200, half of them an hour old."""
    with elwh_nb.EventStore(":memory:") as store:
        for i in range(120):
            name = NAMES[i % 3]
            status = 200 if i % 4 else (401, 500)[i % 8 // 4]
            store.add_call(
                "initiation" if name == "initiation" else "tool",
                name,
                method="POST",
                status=status,
                latency_s=0.01,
                parameters={"order_id": f"A{i:03d}", "note": 'say "hi"' if i % 10 == 0 else None},
                answer=json.dumps({"status": f"shipped_{i}"}) if status == 200 else None,
                error=None if status == 200 else ("Traceback ...\nKeyError: 'x'" if status == 500 else "no"),
                conversation_id=f"conv_{i}",
                received_at=NOW - (3600 if i < 60 else 10),
            )
        yield store.calls


def reference(frame: pd.DataFrame, query: Query) -> Page:
    """The page the slow and obvious way: every match, newest first, sliced."""
    every = matching(frame, query, now=NOW).iloc[::-1]
    first = query.page * query.page_size
    return Page(
        every.iloc[first : first + query.page_size], first, len(every) > first + query.page_size, len(every)
    )


def test_without_filters_a_page_is_the_newest_rows(events: pd.DataFrame) -> None:
    page = run(events, Query(), now=NOW)
    assert list(page.rows.index) == list(range(600, 580, -1))
    assert page.more and page.total == 600 and page.first == 0
    last = run(events, Query(page=29), now=NOW)
    assert list(last.rows.index) == list(range(20, 0, -1)) and not last.more
    beyond = run(events, Query(page=30), now=NOW)
    assert beyond.rows.empty and not beyond.more


def test_paging_a_short_table(events: pd.DataFrame) -> None:
    frame = events.iloc[:45]
    pages = [run(frame, Query(page=p), now=NOW) for p in range(3)]
    assert [p.rows.index[0] for p in pages] == [45, 25, 5]
    assert [len(p.rows) for p in pages] == [20, 20, 5] and [p.more for p in pages] == [True, True, False]


def test_the_type_filter_keeps_only_those_types(events: pd.DataFrame) -> None:
    query = Query(types=("voice_removed",), page_size=50)
    page = run(events, query, now=NOW)
    assert len(page.rows) == 50 and set(page.rows.event_type) == {"voice_removed"}
    assert page.total is None and page.more  # the scan stopped at the page
    assert page.rows.equals(reference(events, query).rows)


def test_the_search_is_literal_any_case_and_over_every_id_column(events: pd.DataFrame) -> None:
    page = run(events, Query(search="  CONV_00123 "), now=NOW)
    assert list(page.rows.conversation_id) == ["conv_00123"]
    dots = run(events, Query(search="agent.(x)", page_size=1000), now=NOW)  # not a pattern
    assert len(dots.rows) == len(events[events.agent_id == "agent.(x)"]) > 0
    assert run(events, Query(search="agent.*"), now=NOW).rows.empty
    assert run(events, Query(search="   "), now=NOW).total == 600  # blank: no search


def test_the_window_is_exact_when_arrivals_are_out_of_order(events: pd.DataFrame) -> None:
    mask = in_window(events, 300, now=NOW)
    assert mask.sum() == 300  # the batches received 10, 100 and 30 s ago
    page = run(events, Query(window=300, page_size=1000), now=NOW)
    assert page.total == 300 and len(page.rows) == 300 and not page.more
    assert (page.rows.received_at >= pd.Timestamp(NOW - 300, unit="s", tz="UTC")).all()
    assert page.rows.index.is_monotonic_decreasing
    assert list(run(events, Query(window=300), now=NOW).rows.index) == list(range(500, 480, -1))
    assert in_window(events, None).all()


def test_the_window_follows_now(events: pd.DataFrame) -> None:
    assert run(events, Query(window=60), now=NOW).total == 200
    assert run(events, Query(window=60), now=NOW + 3600).total == 0
    assert run(events, Query(window=60), now=NOW + 3600).rows.empty


def test_failures_search_reason_and_explanation_literally(failures: pd.DataFrame) -> None:
    view = Query(outcome="failed", page_size=20)
    assert run(failures, view, now=NOW, count=True).total == 7
    regex = run(failures, Query(outcome="failed", search="explain(body"), now=NOW, count=True)
    assert regex.total == 3 and set(regex.rows.reason) == {"signature_mismatch"}
    reason = run(failures, Query(outcome="failed", search="Expired"), now=NOW, count=True)
    assert reason.total == 3 and set(reason.rows.reason) == {"timestamp_expired"}
    recent = run(failures, Query(outcome="failed", window=300), now=NOW, count=True)
    assert recent.total == 6 and "not_found" not in set(recent.rows.reason)
    assert list(run(failures, view, now=NOW).rows.index) == [7, 6, 5, 4, 3, 2, 1]  # newest first


def test_types_do_not_filter_failures(failures: pd.DataFrame) -> None:
    page = run(failures, Query(outcome="failed", types=("voice_removed",)), now=NOW, count=True)
    assert page.total == 7


def test_calls_filter_by_name_and_by_whether_answered_200(calls: pd.DataFrame) -> None:
    named = run(calls, Query(outcome="calls", types=("get_order",), page_size=100), now=NOW)
    assert len(named.rows) == 40 and set(named.rows.name) == {"get_order"}
    assert named.rows.index.is_monotonic_decreasing  # newest first
    ok = run(calls, Query(outcome="calls", ok=True, page_size=200), now=NOW, count=True)
    assert ok.total == 90 and set(ok.rows.status) == {200}
    failed = run(calls, Query(outcome="calls", ok=False, page_size=200), now=NOW, count=True)
    assert failed.total == 30 and set(failed.rows.status) == {401, 500}
    both = Query(outcome="calls", types=("initiation",), ok=False, window=300, page_size=200)
    page = run(calls, both, now=NOW, count=True)
    assert page.total == len(page.rows) == 5  # i = 60, 72, ..., 108: initiation, i % 4 == 0, recent
    assert set(page.rows.name) == {"initiation"} and set(page.rows.status) == {401, 500}
    assert page.rows.equals(reference(calls, both).rows)
    assert run(calls, Query(outcome="calls"), now=NOW).total == 120  # no filter: every call


def test_calls_search_parameters_answers_and_errors_literally(calls: pd.DataFrame) -> None:
    def found(text: str) -> list[int]:
        return list(run(calls, Query(outcome="calls", search=text, page_size=200), now=NOW).rows.index)

    assert found("a017") == [18]  # a parameter's value, any case (ids count from 1)
    assert found("SHIPPED_17") == [18]  # the answer
    assert len(found("keyerror: 'x'")) == 15  # the error (a traceback)
    assert len(found('say "hi"')) == 12  # quotes inside a value are searched as they are
    assert len(found("order_id")) == 120  # the parameters' names too
    assert found("conv_117") == [118]
    assert found("none") == [] and found("a0.*") == []  # a missing value, and no patterns


def test_the_ok_filter_and_names_do_not_filter_events_or_failures(
    events: pd.DataFrame, failures: pd.DataFrame
) -> None:
    assert run(events, Query(ok=False), now=NOW).total == 600
    assert run(failures, Query(outcome="failed", ok=True), now=NOW, count=True).total == 7


def test_export_is_every_row_the_pages_show(events: pd.DataFrame) -> None:
    query = Query(types=("post_call_transcription",), search="agent_1", window=4000)
    every = matching(events, query, now=NOW)
    assert len(every) and every.index.is_monotonic_increasing
    shown = []
    for n in range(100):
        page = run(events, dataclasses.replace(query, page=n), now=NOW)
        shown += list(page.rows.index)
        if not page.more:
            break
    assert shown == list(every.index[::-1])


def test_a_page_looks_at_a_few_steps_of_rows_not_the_whole_table(events: pd.DataFrame) -> None:
    big = pd.concat([events] * 50, ignore_index=True)  # 30,000 rows
    looked: list[int] = []
    row_test = q._row_test

    def counting(frame: pd.DataFrame, query: Query) -> Callable[[int, int], q.Mask]:
        test = row_test(frame, query)

        def counted(start: int, end: int) -> q.Mask:
            looked.append(end - start)
            return test(start, end)

        return counted

    with mock.patch.object(q, "_row_test", counting):
        page = run(big, Query(types=("voice_removed",)), now=NOW)
    assert len(page.rows) == 20 and page.more
    assert sum(looked) <= q._SCAN  # a third of the rows match: one step finds the page
    looked.clear()
    with mock.patch.object(q, "_row_test", counting):
        run(big, Query(types=("voice_removed",)), now=NOW, count=True)
    assert sum(looked) == len(big)  # counting looks at everything


@given(
    types=st.lists(st.sampled_from(TYPES), max_size=2, unique=True).map(tuple),
    search=st.sampled_from(["", "conv_001", "agent_2", "AGENT.(X)", "nothing", "0"]),
    window=st.sampled_from([None, 20, 60, 300, 3700, 10_000]),
    page=st.integers(0, 6),
    page_size=st.sampled_from([1, 7, 20, 64]),
    scan=st.sampled_from([16, 64, q._SCAN]),
)
def test_every_page_is_the_slice_of_every_match(
    events: pd.DataFrame,
    types: tuple[str, ...],
    search: str,
    window: float | None,
    page: int,
    page_size: int,
    scan: int,
) -> None:
    events = events.iloc[::3]  # 200 rows, still out of arrival order (and quicker per example)
    query = Query(types=types, search=search, window=window, page=page, page_size=page_size)
    expected = reference(events, query)
    with mock.patch.object(q, "_SCAN", scan):
        got = run(events, query, now=NOW)
        counted = run(events, query, now=NOW, count=True)
    assert list(got.rows.index) == list(expected.rows.index)
    assert got.more == expected.more and got.first == expected.first
    assert got.total in (None, expected.total) and counted.total == expected.total
    assert got.total is not None or query.row_by_row


@given(
    names=st.lists(st.sampled_from(NAMES), max_size=2, unique=True).map(tuple),
    ok=st.sampled_from([None, True, False]),
    search=st.sampled_from(["", "a01", "shipped_1", "keyerror", '"hi"', "conv_5"]),
    window=st.sampled_from([None, 60, 5000]),
    page=st.integers(0, 4),
    page_size=st.sampled_from([1, 7, 20]),
    scan=st.sampled_from([16, q._SCAN]),
)
def test_every_page_of_calls_is_the_slice_of_every_match(
    calls: pd.DataFrame,
    names: tuple[str, ...],
    ok: bool | None,
    search: str,
    window: float | None,
    page: int,
    page_size: int,
    scan: int,
) -> None:
    query = Query("calls", names, search, window, page, page_size, ok=ok)
    expected = reference(calls, query)
    with mock.patch.object(q, "_SCAN", scan):
        got = run(calls, query, now=NOW)
    assert list(got.rows.index) == list(expected.rows.index)
    assert got.more == expected.more and got.total in (None, expected.total)


def test_the_query_and_the_html_import_no_widgets_server_or_receiver() -> None:
    code = (
        "import sys\n"
        "import elwh_nb._notebook.query, elwh_nb._notebook.render, elwh_nb._notebook.source\n"
        "print(' '.join(sorted(n for n in sys.modules if n.startswith(('tornado', 'ipywidgets', "
        "'matplotlib', 'elwh_nb._server', 'elwh_nb._notebook.dashboard')))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
