"""Incremental runs: per-file statistics in a cache, reused only while their file is unchanged."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest

import daskloss
from daskloss import ConfigError, NonFiniteValueError
from daskloss.cache import StatisticsCache
from tests.helpers import day_frame, write_day

KWARGS = {"y_pred": ["y_pred", "y_old"], "weight": "w", "group_by": ["segment", "day"]}


def _same(a: daskloss.EvaluationResult, b: daskloss.EvaluationResult) -> None:
    """The same exact statistics, and the same metrics to the last bit (NaN included)."""
    assert a.evaluation.rows == b.evaluation.rows
    assert repr((a.overall, a.slices)) == repr((b.overall, b.slices))


def test_day_two_reads_only_new_and_changed_files(tmp_path, reads):
    """Day 2 adds 2 files, rewrites 1, deletes 1: 3 files are read, the result is a full run's."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    for day in range(1, 11):
        write_day(data, day)
    first = daskloss.evaluate(data, cache=cache, **KWARGS)
    assert (first.cache.files_read, first.cache.files_reused) == (10, 0)
    assert sorted(reads) == sorted(str(p) for p in data.glob("*/*.parquet"))
    write_day(data, 11), write_day(data, 12)
    write_day(data, 4, seed=99)
    os.remove(data / "day=07" / "part.parquet")
    reads.clear()
    second = daskloss.evaluate(data, cache=cache, **KWARGS)
    assert sorted(reads) == [str(data / f"day={d}" / "part.parquet") for d in ("04", "11", "12")]
    assert (second.cache.files_read, second.cache.files_reused) == (3, 8)
    assert second.cache.entries_dropped == 2 and second.cache.stored
    assert len(second.listing) == 11 and len(second.files) == 3
    _same(second, daskloss.evaluate(data, **KWARGS))
    assert 7 not in {s.key["day"] for s in second.slices}


def test_nothing_changed_reads_nothing(tmp_path, reads):
    """With every file unchanged, no rows are read and the result is the same bits."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    for day in range(3):
        write_day(data, day)
    first = daskloss.evaluate(data, cache=cache, **KWARGS)
    reads.clear()
    again = daskloss.evaluate(data, cache=cache, **KWARGS)
    assert reads == [] and again.npartitions == 0 and again.cache.files_reused == 3
    _same(again, first)


def test_a_window_of_partitions_comes_from_the_cache(tmp_path, reads):
    """The last 7 day= partitions: read once, then only the new day is read."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    for day in range(1, 10):
        write_day(data, day)
    first = daskloss.evaluate(data, cache=cache, window=("day", 7), **KWARGS)
    assert sorted({s.key["day"] for s in first.slices}) == list(range(3, 10))
    write_day(data, 10)
    reads.clear()
    second = daskloss.evaluate(data, cache=cache, window=("day", 7), **KWARGS)
    assert reads == [str(data / "day=10" / "part.parquet")]
    assert sorted({s.key["day"] for s in second.slices}) == list(range(4, 11))
    _same(second, daskloss.evaluate([str(data / f"day={d:02d}") for d in range(4, 11)], **KWARGS))
    reads.clear()
    wider = daskloss.evaluate(data, cache=cache, window=("day", 9), **KWARGS)
    assert reads == [str(data / "day=02" / "part.parquet")]  # day 1 is out, days 3-10 cached
    assert wider.cache.files_reused == 8


def test_small_files_read_together_keep_statistics_per_file(tmp_path, monkeypatch, reads):
    """Files joined in one unit (one kernel call) still get statistics of their own."""
    monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", 1)
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    for day in range(6):
        write_day(data, day, n=50)
    first = daskloss.evaluate(data, cache=cache, **KWARGS)
    assert first.npartitions == 1
    write_day(data, 2, seed=7, n=60)
    reads.clear()
    second = daskloss.evaluate(data, cache=cache, **KWARGS)
    assert reads == [str(data / "day=02" / "part.parquet")]
    _same(second, daskloss.evaluate(data, **KWARGS))


def test_a_large_file_cut_into_pieces_is_one_entry(tmp_path, monkeypatch):
    """A file read as several row-group pieces (several units) is cached as one file."""
    monkeypatch.setattr("daskloss.sources.files.PIECE_BYTES", 40_000)
    data = tmp_path / "data"
    data.mkdir()
    day_frame(1, 3000).assign(day=1).to_parquet(data / "big.parquet", row_group_size=300)
    cache = StatisticsCache(str(tmp_path / "cache"))
    first = daskloss.evaluate(data, cache=cache, **KWARGS)
    assert first.npartitions > 1 and first.cache.files_read == 1
    again = daskloss.evaluate(data, cache=cache, **KWARGS)
    assert again.cache.files_reused == 1
    _same(again, daskloss.evaluate(data, **KWARGS))


def test_other_settings_use_other_entries(tmp_path, reads):
    """Statistics of another spec or NaN policy are never reused for this one."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    write_day(data, 1)
    daskloss.evaluate(data, cache=cache, **KWARGS)
    reads.clear()
    daskloss.evaluate(data, cache=cache, y_pred="y_old", group_by="segment")
    daskloss.evaluate(data, cache=cache, nan_policy="skip", **KWARGS)
    assert len(reads) == 2
    assert len(os.listdir(tmp_path / "cache")) == 3


def test_a_changed_schema_reads_everything_again(tmp_path, reads):
    """When the first file's column types change, no cached statistics are reused."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    write_day(data, 1), write_day(data, 2)
    daskloss.evaluate(data, cache=cache, y_pred="y_pred")
    frame = day_frame(1).astype({"y_pred": "float32"}).astype({"y_pred": "float64"})
    frame["y_true"] = frame["y_true"].round()
    frame.astype({"y_true": "int64"}).to_parquet(data / "day=01" / "part.parquet", index=False)
    frame.astype({"y_true": "int64"}).to_parquet(data / "day=02" / "part.parquet", index=False)
    reads.clear()
    daskloss.evaluate(data, cache=cache, y_pred="y_pred")
    assert len(reads) == 2


def test_a_corrupt_cache_is_ignored_and_replaced(tmp_path, caplog):
    """An unreadable cache document only costs a full read, with a warning."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    write_day(data, 1)
    first = daskloss.evaluate(data, cache=cache, **KWARGS)
    document = tmp_path / "cache" / os.listdir(tmp_path / "cache")[0]
    document.write_bytes(gzip.compress(b"{not json")[:-3])
    again = daskloss.evaluate(data, cache=cache, **KWARGS)
    assert again.cache.files_read == 1 and "not readable" in again.cache.error
    assert "is ignored" in caplog.text
    _same(again, first)
    assert json.loads(gzip.decompress(document.read_bytes()))["format"] == "daskloss-cache"


def test_an_unwritable_cache_leaves_the_result_correct(tmp_path, caplog):
    """A cache that cannot be written is reported (stored false); the metrics are right."""
    data = tmp_path / "data"
    write_day(data, 1)
    (tmp_path / "file").write_text("")
    result = daskloss.evaluate(data, cache=StatisticsCache(str(tmp_path / "file")), **KWARGS)
    assert not result.cache.stored and "cannot be written" in result.cache.error
    _same(result, daskloss.evaluate(data, **KWARGS))


def test_a_failed_run_keeps_the_cache(tmp_path):
    """A new file with NaN fails the run; the cache still holds the earlier files."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    write_day(data, 1)
    daskloss.evaluate(data, cache=cache, **KWARGS)
    day_frame(2).assign(y_pred=np.nan).to_parquet(write_day(data, 2), index=False)
    with pytest.raises(NonFiniteValueError, match=r"day=02"):
        daskloss.evaluate(data, cache=cache, **KWARGS)
    os.remove(data / "day=02" / "part.parquet")
    assert daskloss.evaluate(data, cache=cache, **KWARGS).cache.files_reused == 1


def test_the_cache_must_not_be_inside_the_dataset(tmp_path):
    """A cache the listing would read as data is refused; one under _name is fine."""
    data = tmp_path / "data"
    write_day(data, 1)
    with pytest.raises(ConfigError, match="inside the dataset"):
        daskloss.evaluate(data, cache=StatisticsCache(str(data / "cache")), **KWARGS)
    result = daskloss.evaluate(data, cache=StatisticsCache(str(data / "_cache")), **KWARGS)
    assert result.cache.stored


def test_a_dataframe_has_no_cache_nor_window():
    """Cache and window are for files."""
    frame = day_frame(1)
    with pytest.raises(ConfigError, match="files"):
        daskloss.evaluate(frame, cache=StatisticsCache("/tmp/unused"))
    with pytest.raises(ConfigError, match="files"):
        daskloss.evaluate(frame, window=("day", 2))
