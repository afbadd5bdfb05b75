"""Dashboard refresh cost as the store grows, with and without a type filter.

Reference, in the same run: what one would write by hand to show the newest page of a
filtered table (boolean mask over everything, sort, head, to_html).

    python -m bench.dashboard                # 1k, 100k, 1M stored events
    python -m bench.dashboard --sizes 1000 100000
"""

from __future__ import annotations

import argparse
import functools
import os
import platform

import pandas as pd

import elwh_nb
from elwh_nb._notebook.dashboard import Dashboard

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    args = parser.parse_args(argv)
    versions = f"elwh_nb {elwh_nb.__version__}, Python {platform.python_version()}, pandas {pd.__version__}"
    print(f"{versions}, {os.cpu_count()} cores")
    print(f"command: python -m bench.dashboard --sizes {' '.join(map(str, args.sizes))}\n")
    print("Dashboard refresh (header, counters, type options, one page of 20 rows), median ms:\n")
    table(args.sizes)


if __name__ == "__main__":
    main()
