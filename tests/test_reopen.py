"""Reopening a store file reads its events a column at a time (Arrow through ADBC), as rows would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from elwh_nb import EventStore, payloads
from elwh_nb._core import bulk
from elwh_nb._core.schema import EVENTS

pytest.importorskip("adbc_driver_sqlite")

T0 = 1_767_225_600.0


def varied_store(path: Path) -> None:
    """Events whose columns are NULL for the first few hundred rows and set later, repeats,
    events kept while away, a job, a time pandas cannot hold, and more than 127 event types."""
    factory = payloads(3, now=T0)
    with EventStore(path) as store:
        store.append_many(
            [factory.body(factory.speech_to_text_transcription()) for _ in range(300)], received_at=T0
        )
        mixed = [factory.body(e) for e in factory.batch(300, audio_bytes=2_000)]
        store.append_many(mixed, received_at=T0 + 60)
        store.append_many(mixed[:20], received_at=T0 + 120)  # repeats
        store.append(mixed[-1] + b" ", kept_while_away=True, received_at=T0 + 180)
        store.append(b'{"type": "far_future", "event_timestamp": 99999999999, "data": {}}')
        store.append_many([b'{"type": "custom_%d", "data": {"x": %d}}' % (i, i) for i in range(140)])
        store.expect(store.events["request_id"].dropna().iloc[5], submitted_at=T0 - 5)


def assert_same(a: EventStore, b: EventStore) -> None:
    fa, fb = a.events, b.events
    pd.testing.assert_frame_equal(fa.drop(columns="payload"), fb.drop(columns="payload"))
    assert list(fa["event_type"].cat.categories) == list(fb["event_type"].cat.categories)
    assert [p.id for p in fa["payload"]] == [p.id for p in fb["payload"]] == list(fa.index)
    assert [p.event_type for p in fa["payload"]] == [p.event_type for p in fb["payload"]]
    assert a.counts == b.counts
    assert a.jobs.equals(b.jobs)


def test_reopening_reads_columns_in_bulk_not_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    varied_store(tmp_path / "s.sqlite")
    monkeypatch.setattr(bulk, "available", lambda: False)
    by_rows = EventStore(tmp_path / "s.sqlite", readonly=True)
    monkeypatch.undo()

    def row_by_row(rows: Any) -> Any:
        raise AssertionError(f"{len(rows)} rows read one Python tuple at a time")

    monkeypatch.setattr(bulk, "BATCH_ROWS", 100)  # the first batch's columns all NULL: typed anyway
    monkeypatch.setattr(EVENTS, "from_file", row_by_row)
    with EventStore(tmp_path / "s.sqlite") as in_bulk:
        assert_same(in_bulk, by_rows)
        assert in_bulk.events["status"].dropna().iloc[0] is by_rows.events["status"].dropna().iloc[0]
        assert in_bulk.events["event_type"].cat.codes.dtype == "int16"  # widened past 127 types
        assert in_bulk.events["payload"].iloc[0]["type"] == "speech_to_text_transcription"
        # And the store goes on as before: a repeat counts up a bulk-loaded row, new rows follow.
        body = in_bulk.raw_body(301)
        assert in_bulk.append(body).deliveries == 3
        assert in_bulk.events.loc[301, "deliveries"] == 3
        assert in_bulk.append(b'{"type": "after", "data": {}}').id == len(by_rows) + 1


def test_what_the_bulk_read_cannot_finish_is_read_by_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    varied_store(tmp_path / "s.sqlite")
    by_rows = EventStore(tmp_path / "s.sqlite", readonly=True)  # (before the patches below)
    real = bulk.batches

    def fails_midway(path: str, after: int) -> Any:
        for i, batch in enumerate(real(path, after)):
            if i == 2:
                raise OSError("ADBC: type mismatch")
            yield batch

    monkeypatch.setattr(bulk, "BATCH_ROWS", 100)
    monkeypatch.setattr(bulk, "batches", fails_midway)
    with EventStore(tmp_path / "s.sqlite") as store:
        assert_same(store, by_rows)
