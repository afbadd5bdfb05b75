"""Dashboard refresh cost as the store grows, with and without a type filter; and the
query layer alone (no receiver, no widgets) on one large frame, query by query.

Reference, in the same run: what one would write by hand to show the newest page of a
filtered table (boolean mask over everything, sort, head, to_html; for the query layer:
the mask over everything, then the newest page).

    python -m bench.dashboard                # 1k, 100k, 1M stored events; queries on 200k
    python -m bench.dashboard --sizes 1000 100000 --query-size 50000
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time

import numpy as np
import pandas as pd

import elwh_nb
from elwh_nb._notebook.dashboard import Dashboard
from elwh_nb._notebook.query import ID_COLUMNS, Query, in_window, run

from .core import median_ms

RUNS = 9  # refreshes timed per row, on both sides (median)

TYPES = [
    b"post_call_transcription",
    b"speech_to_text_transcription",
    b"call_initiation_failure",
    b"voice_removed",
]


def body(i: int) -> bytes:
    kind = TYPES[0] if i % 20 else TYPES[3 if i % 100 == 0 else 1 + i % 2]
    return (
        b'{"type":"%s","event_timestamp":%d,"data":{"request_id":"req_%09d","conversation_id":"conv_%09d"}}'
        % (
            kind,
            1_700_000_000 + i,
            i,
            i,
        )
    )


def by_hand(rx: elwh_nb.Receiver, types: tuple[str, ...]) -> str:
    events = rx.events
    if types:
        events = events[events.event_type.isin(types)]
    return events.sort_values("received_at", ascending=False).head(20).drop(columns="payload").to_html()


def table(sizes: list[int]) -> list[str]:
    """Markdown rows: refresh time with and without a type filter, next to doing it by hand."""
    lines = [
        "| stored events | filter | dashboard refresh | by hand (mask, sort, head, to_html) | ratio |",
        "|---|---|---|---|---|",
    ]
    with elwh_nb.start("wsec_test_" + "b" * 64, store=":memory:") as rx:
        dash = Dashboard(rx, autorefresh=False)
        for size in sorted(sizes):
            while len(rx.store) < size:
                start = len(rx.store)
                rx.store.append_many([body(i) for i in range(start, min(size, start + 50_000))])
            for label, types in (("none", ()), ("type = voice_removed (1%)", ("voice_removed",))):
                dash.types.value = types
                ours = median_ms(lambda: dash.refresh(force=True), RUNS)
                assert dash.rows_rendered == min(dash.page_size, size if not types else size // 100)
                ref = median_ms(functools.partial(by_hand, rx, types), RUNS)
                lines.append(f"| {size:,} | {label} | {ours:.1f} ms | {ref:.1f} ms | {ref / ours:,.1f}x |")
                print(lines[-1], flush=True)
            dash.types.value = ()
    return lines


def stored(size: int) -> pd.DataFrame:
    """The events table of ``size`` bench bodies, from an in-memory store (no receiver)."""
    with elwh_nb.EventStore(":memory:") as store:
        for start in range(0, size, 50_000):
            store.append_many([body(i) for i in range(start, min(size, start + 50_000))])
        return store.events


def newest_by_hand(events: pd.DataFrame, query: Query, now: float) -> pd.DataFrame:
    """The first page the obvious way: a mask over every row, then the newest rows."""
    keep = np.ones(len(events), dtype=bool)
    if query.types:
        keep &= events["event_type"].isin(query.types).to_numpy()
    if query.text:
        hit = np.zeros(len(events), dtype=bool)
        for column in ID_COLUMNS:
            hit |= (
                events[column]
                .astype("string")
                .str.lower()
                .str.contains(query.text, regex=False)
                .fillna(False)
            )
        keep &= hit
    if query.window is not None:
        keep &= events["received_at"] >= pd.Timestamp(now - query.window, unit="s", tz="UTC")
    return events[keep].iloc[::-1].head(query.page_size)


QUERIES = [
    ("none", Query()),
    ("type = voice_removed (1%)", Query(types=("voice_removed",))),
    ("search `conv_` (in every row)", Query(search="conv_")),
    ("search one id (scans every row)", Query(search="REQ_000000042")),
    ("window: last 5 min", Query(window=300)),
    ("type = voice_removed, last 5 min", Query(types=("voice_removed",), window=300)),
]


def queries(size: int) -> list[str]:
    """Markdown rows: one page of each query on ``size`` events, the query layer against by hand."""
    events = stored(size)
    now = time.time()
    lines = [
        f"| query on {size:,} events | query layer (`run`, one page) | by hand (mask over all rows) | ratio |",
        "|---|---|---|---|",
    ]
    for label, query in QUERIES:
        page = run(events, query, now=now)
        assert list(page.rows.index) == list(newest_by_hand(events, query, now).index), label
        ours = median_ms(functools.partial(run, events, query, now=now), RUNS)
        ref = median_ms(functools.partial(newest_by_hand, events, query, now), RUNS)
        lines.append(f"| {label} | {ours:.2f} ms | {ref:.2f} ms | {ref / ours:,.1f}x |")
        print(lines[-1], flush=True)
    inside = median_ms(functools.partial(in_window, events, 60, now), RUNS)
    lines.append(f"| the counter's last-minute window | {inside:.2f} ms | | |")
    print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--query-size", type=int, default=200_000)
    args = parser.parse_args(argv)
    versions = f"elwh_nb {elwh_nb.__version__}, Python {platform.python_version()}, pandas {pd.__version__}"
    print(f"{versions}, {os.cpu_count()} cores")
    sizes = " ".join(map(str, args.sizes))
    print(f"command: python -m bench.dashboard --sizes {sizes} --query-size {args.query_size}\n")
    print("Dashboard refresh (header, counters, type options, one page of 20 rows), median ms:\n")
    table(args.sizes)
    print("\nThe query layer alone (no receiver, no widgets): the first page of 20 rows, median ms:\n")
    queries(args.query_size)


if __name__ == "__main__":
    main()
