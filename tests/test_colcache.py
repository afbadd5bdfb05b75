"""The copy of a big store's columns beside its file: used only when it matches the file.

``MIN_ROWS`` is lowered so that a few hundred events count as a big store.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from elwh_nb import EventStore, PayloadFactory
from elwh_nb._core import colcache, events

ROWS = 300


@pytest.fixture(autouse=True)
def small_min_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(colcache, "MIN_ROWS", 50)


@pytest.fixture
def read_from_file(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each opening read through sqlite3 (the copy's are not counted)."""
    counts: list[int] = []
    load = events.Events.load

    def counting(self: events.Events, db: sqlite3.Connection, after: int = 0) -> int:
        n = load(self, db, after)
        counts.append(n)
        return n

    monkeypatch.setattr(events.Events, "load", counting)
    return counts


def bodies(n: int, seed: int = 1) -> list[bytes]:
    factory = PayloadFactory(seed=seed, now=1_750_000_000)
    return [factory.body(e) for e in factory.batch(n)]


def from_file_only(path: Path, tmp_path: Path) -> pd.DataFrame:
    """The events as read from the file alone (a copy of it with no column copy beside)."""
    alone = tmp_path / "alone" / path.name
    alone.parent.mkdir(exist_ok=True)
    with sqlite3.connect(path) as src, sqlite3.connect(alone) as dst:
        src.backup(dst)
    with EventStore(alone, readonly=True) as store:
        return store.events


def same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left.drop(columns="payload"), right.drop(columns="payload"))
    assert [(p.id, p.event_type) for p in left.payload] == [(p.id, p.event_type) for p in right.payload]


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "events.sqlite"
    with EventStore(path) as store:
        store.append_many(bodies(ROWS))
        store.add_failure("signature_mismatch", status=401, explanation="forged")
        store.expect("job_1", submitted_at=1_749_999_000)
    return path


def test_closing_a_big_store_keeps_its_columns_and_reopening_reads_no_row(
    big: Path, tmp_path: Path, read_from_file: list[int]
) -> None:
    copy = colcache.path_for(big)
    assert copy.exists()
    with EventStore(big) as store:
        assert read_from_file == [0]  # every row came from the copy
        same(store.events, from_file_only(big, tmp_path))
        assert store.counts == {"events": ROWS, "deliveries": ROWS, "duplicates": 0, "failures": 1}
        assert len(store.failures) == 1
        assert store.events.payload.iloc[7]["type"] == store.events.event_type.iloc[7]  # bodies still load


def test_a_small_store_keeps_no_copy(tmp_path: Path) -> None:
    path = tmp_path / "small.sqlite"
    with EventStore(path) as store:
        store.append_many(bodies(10))
    assert not colcache.path_for(path).exists()


def test_rows_written_after_the_copy_come_from_the_file(
    big: Path, tmp_path: Path, read_from_file: list[int]
) -> None:
    # A writer that never closes (a killed kernel) leaves the copy behind the file.
    writer = EventStore(big)
    writer.append_many(bodies(20, seed=2))
    with EventStore(big, readonly=True) as reader:
        assert read_from_file[-1] == 20
        assert len(reader.events) == ROWS + 20
        same(reader.events, from_file_only(big, tmp_path))
    writer._db.close()  # gone without close(): no new copy


def test_repeats_of_copied_rows_since_the_copy_are_read_back(
    big: Path, tmp_path: Path, read_from_file: list[int]
) -> None:
    again = bodies(ROWS)[::37]
    writer = EventStore(big)
    writer.append_many(again, received_at=1_760_000_000)
    with EventStore(big, readonly=True) as reader:
        assert read_from_file[-1] == 0
        frame = reader.events
        assert int(frame.deliveries.sum()) == ROWS + len(again)
        assert frame.last_received_at.loc[1 + 37] == pd.Timestamp(1_760_000_000, unit="s", tz="UTC")
        same(frame, from_file_only(big, tmp_path))
        assert reader.counts["duplicates"] == len(again)
    writer._db.close()


def test_a_copy_from_another_store_is_not_used(big: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with EventStore(other) as store:  # other rows, but as many, and the same last body
        store.append_many([*bodies(ROWS - 1, seed=3), bodies(ROWS)[-1]])
    shutil.copy(colcache.path_for(big), colcache.path_for(other))
    with EventStore(other) as store:
        same(store.events, from_file_only(other, tmp_path))


def test_a_copy_newer_than_a_restored_file_is_not_used(
    big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = tmp_path / "backup.sqlite"
    shutil.copy(big, backup)  # the store as it was (same id), without the rows that follow
    with EventStore(big) as store:
        store.append_many(bodies(100, seed=4))  # the copy made at close holds these
    shutil.copy(backup, big)
    # Then other rows, as many, by a writer that keeps no copy: the counts match the copy's.
    monkeypatch.setattr(colcache, "MIN_ROWS", 10**9)
    writer = EventStore(big)
    writer.append_many(bodies(100, seed=5))
    writer._db.close()
    monkeypatch.setattr(colcache, "MIN_ROWS", 50)
    with EventStore(big) as store:
        assert len(store.events) == ROWS + 100
        same(store.events, from_file_only(big, tmp_path))


def test_a_copy_whose_counts_went_down_is_not_used(big: Path, tmp_path: Path) -> None:
    with sqlite3.connect(big) as db:  # the same rows, but fewer deliveries than the copy says
        db.execute("UPDATE events SET deliveries = 0 WHERE id = 5")
    with EventStore(big) as store:
        assert store.events.deliveries.loc[5] == 0
        same(store.events, from_file_only(big, tmp_path))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickled column", "not text", "short column"])
def test_a_damaged_copy_is_ignored_with_a_warning(
    big: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    copy = colcache.path_for(big)
    members = {}
    with zipfile.ZipFile(copy) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    if damage == "garbage":
        copy.write_bytes(b"not a zip at all")
    elif damage == "truncated":
        copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 2])
    else:
        import io

        import numpy as np

        if damage == "pickled column":
            buf = io.BytesIO()
            np.save(buf, np.array([{"x": 1}] * ROWS, dtype=object), allow_pickle=True)
            members["status.npy"] = buf.getvalue()
        elif damage == "not text":
            members["agent_id.json"] = json.dumps([1, 2, 3]).encode()
        else:
            buf = io.BytesIO()
            np.save(buf, np.arange(ROWS - 1, dtype=np.int64))
            members["body_bytes.npy"] = buf.getvalue()
        with zipfile.ZipFile(copy, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    with caplog.at_level(logging.WARNING, logger="elwh_nb.store"), EventStore(big) as store:
        same(store.events, from_file_only(big, tmp_path))
    assert "ignoring the column copy" in caplog.text


def test_a_copy_made_for_other_columns_is_not_used(
    big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_from_file: list[int]
) -> None:
    monkeypatch.setattr(colcache, "_KEPT", (*colcache._KEPT, ("new_column", "text")))
    with EventStore(big, readonly=True):
        assert read_from_file == [ROWS]


def test_turnaround_of_announced_jobs_survives_a_reopening_from_the_copy(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    factory = PayloadFactory(seed=5, now=1_750_000_000)
    job = factory.make("speech_to_text_transcription", at=1_750_000_000)
    request_id = job["data"]["request_id"]
    with EventStore(path) as store:
        store.expect(request_id, submitted_at=1_749_999_990)
        store.append_many([*bodies(ROWS), factory.body(job)], received_at=1_750_000_010)
        before = store.events.turnaround_s.dropna()
    with EventStore(path) as store:
        assert store.events.turnaround_s.dropna().equals(before)
        assert list(before) == [20.0]


def test_turnaround_from_webhook_metadata_survives_a_reopening_from_the_copy(
    tmp_path: Path, read_from_file: list[int]
) -> None:
    path = tmp_path / "meta.sqlite"
    factory = PayloadFactory(seed=5, now=1_750_000_000)
    timed = [
        factory.speech_to_text_transcription(webhook_metadata={"submitted_at": 1_749_999_900 + i})
        for i in range(3)
    ]
    with EventStore(path) as store:
        store.append_many([*bodies(ROWS), *map(factory.body, timed)], received_at=1_750_000_010)
        before = store.events.turnaround_s.dropna()
    with EventStore(path) as store:
        assert read_from_file[-1] == 0  # every row came from the copy
        assert store.events.turnaround_s.dropna().equals(before)
        assert list(before) == [110.0, 109.0, 108.0]


def test_the_copy_holds_only_the_listed_columns_and_no_pickle(big: Path) -> None:
    import numpy as np

    with zipfile.ZipFile(colcache.path_for(big)) as zf:
        names = set(zf.namelist())
        meta: dict[str, Any] = json.loads(zf.read("meta.json"))
        for name in names - {"meta.json"}:
            if name.endswith(".npy"):
                with zf.open(name) as f:
                    np.lib.format.read_array(f, allow_pickle=False)  # raises on an object array
    kept = {c for c, _ in colcache._KEPT}
    assert names <= {"meta.json"} | {f"{c}.npy" for c in kept} | {f"{c}.json" for c in kept}
    assert "body" not in kept and "body_sha256" not in kept
    assert meta["rows"] == ROWS and meta["deliveries"] == ROWS


def test_a_read_only_store_writes_no_copy(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite"
    with EventStore(path) as store:
        store.append_many(bodies(ROWS))
    colcache.path_for(path).unlink()
    with EventStore(path, readonly=True) as reader:
        assert len(reader.events) == ROWS
    assert not colcache.path_for(path).exists()


def test_a_big_read_from_the_file_is_kept_at_once(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    writer = EventStore(path)
    writer.append_many(bodies(ROWS))
    writer._db.close()  # killed: no copy
    assert not colcache.path_for(path).exists()
    with EventStore(path):
        assert colcache.path_for(path).exists()  # written while opening, not only at close


def rewrite(copy: Path, change: dict[str, Any]) -> None:
    """Rewrite the copy as a well-formed zip with some members' arrays replaced."""
    import io

    import numpy as np

    with zipfile.ZipFile(copy) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    for name, values in change.items():
        buf = io.BytesIO()
        np.save(buf, values, allow_pickle=False)
        members[name] = buf.getvalue()
    with zipfile.ZipFile(copy, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def column(copy: Path, name: str) -> Any:
    import numpy as np

    with zipfile.ZipFile(copy) as zf, zf.open(f"{name}.npy") as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def test_a_well_formed_copy_with_other_contents_is_not_used(
    big: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Consistent with itself (a valid zip, every count right), but not what the writer saved."""
    copy = colcache.path_for(big)
    rewrite(copy, {"conversation_id.npy": column(copy, "conversation_id")[::-1].copy()})
    with caplog.at_level(logging.WARNING, logger="elwh_nb.store"), EventStore(big) as store:
        same(store.events, from_file_only(big, tmp_path))
    assert "not those this store's writer saved" in caplog.text


@pytest.mark.parametrize("name", ["agent_id", "event_type"])
def test_codes_out_of_range_either_way_are_not_used(
    big: Path, tmp_path: Path, name: str, read_from_file: list[int]
) -> None:
    """Codes below -1 would index from the end of the list; the digest is made to match too."""
    import numpy as np

    copy = colcache.path_for(big)
    codes = column(copy, name).copy()
    codes[3] = -2
    rewrite(copy, {f"{name}.npy": codes})
    digest = colcache._Digest()
    with zipfile.ZipFile(copy) as zf:
        for kept, _ in colcache._KEPT:
            with zf.open(f"{kept}.npy") as f:
                values = np.lib.format.read_array(f, allow_pickle=False)
            texts = zf.read(f"{kept}.json") if f"{kept}.json" in zf.namelist() else b""
            digest.add(kept, values, texts)
    with sqlite3.connect(big) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (digest.hexdigest(), colcache.DIGEST_KEY))
    with EventStore(big, readonly=True) as store:
        assert read_from_file == [ROWS]  # the copy was refused: every row came from the file
        same(store.events, from_file_only(big, tmp_path))


def test_a_copy_with_no_digest_in_the_file_is_not_used(big: Path, read_from_file: list[int]) -> None:
    with sqlite3.connect(big) as db:  # as an older writer left it
        db.execute("DELETE FROM meta WHERE key = ?", (colcache.DIGEST_KEY,))
    with EventStore(big, readonly=True):
        assert read_from_file == [ROWS]


def test_temporary_copies_left_by_killed_writers_go_at_the_next_save(
    big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    copy = colcache.path_for(big)
    dead = [copy.with_name(copy.name + f"dead{i}.tmp") for i in range(2)]
    for tmp in dead:
        tmp.write_bytes(b"half a zip")
        os.utime(tmp, (0, 0))  # long untouched
    fresh = copy.with_name(copy.name + "writing.tmp")  # another writer's, being written now
    fresh.write_bytes(b"being written")
    with EventStore(big) as store:
        store.append_many(bodies(5, seed=9))  # moved: the close saves again
    assert not any(t.exists() for t in dead) and fresh.exists()
