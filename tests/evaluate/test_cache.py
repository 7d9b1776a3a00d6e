"""Incremental runs: per-file statistics in a cache, reused only while their file is unchanged."""

from __future__ import annotations

import base64
import gzip
import json
import os
from datetime import date
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

import daskloss
from daskloss import ConfigError, NonFiniteValueError
from daskloss.cache import CACHE_VERSION, StatisticsCache
from daskloss.distribution import Histogram
from daskloss.roles import EvaluationSpec
from daskloss.shape import PredictionShape, ShapeSpec, ShapeStats
from daskloss.worst import WorstRows
from tests.helpers import day_frame, write_day

KWARGS = {"y_pred": ["y_pred", "y_old"], "weight": "w", "group_by": ["segment", "day"]}
#: The shape of the errors as a job gathers it by default, with an id column of text.
SHAPE = {**KWARGS, "histogram": True, "worst_k": 4, "id_columns": ["id"]}


def _same(a: daskloss.EvaluationResult, b: daskloss.EvaluationResult) -> None:
    """The same exact statistics, and the same metrics to the last bit (NaN included)."""
    assert a.evaluation.rows == b.evaluation.rows
    assert repr((a.overall, a.slices)) == repr((b.overall, b.slices))


def _same_shape(a: daskloss.EvaluationResult, b: daskloss.EvaluationResult) -> None:
    """:func:`_same`, and every prediction's histogram, quantiles, share of SE and worst
    rows (overall and of each slice) to the last bit."""
    _same(a, b)
    assert a.shape is not None and b.shape is not None
    for name in a.evaluation.spec.y_pred:
        assert a.histogram(name) == b.histogram(name)
        assert a.histogram(name).bins(7) == b.histogram(name).bins(7)
        assert repr(a.quantiles(name)) == repr(b.quantiles(name))
        assert repr(a.se_share(name)) == repr(b.se_share(name))
        assert a.worst(name) == b.worst(name) and len(a.worst(name)) == SHAPE["worst_k"]
        for found in b.slices:
            assert a.worst(name, found.key) == b.worst(name, found.key)


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


def test_day_two_keeps_the_shape_of_the_errors_exactly(tmp_path, reads):
    """Day 2 with histograms and worst rows (ids, slices, two weighted predictions): 3 files
    read, and every quantile, bin, share of SE and worst row is a full run's."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    for day in range(1, 11):
        write_day(data, day, ids=True)
    first = daskloss.evaluate(data, cache=cache, **SHAPE)
    _same_shape(first, daskloss.evaluate(data, **SHAPE))
    write_day(data, 11, ids=True), write_day(data, 12, ids=True)
    write_day(data, 4, seed=99, ids=True)
    os.remove(data / "day=07" / "part.parquet")
    reads.clear()
    second = daskloss.evaluate(data, cache=cache, **SHAPE)
    assert sorted(reads) == [str(data / f"day={d}" / "part.parquet") for d in ("04", "11", "12")]
    assert (second.cache.files_read, second.cache.files_reused) == (3, 8)
    _same_shape(second, daskloss.evaluate(data, **SHAPE))
    shown = [row["id"] for name in KWARGS["y_pred"] for row in second.worst(name)]
    shown += [
        row["id"]
        for name in KWARGS["y_pred"]
        for found in second.slices
        for row in second.worst(name, found.key)
    ]
    assert not [name for name in shown if name.startswith(("7:", "4:None:"))]  # gone, stale
    assert any(name.startswith("4:99:") for name in shown)
    reads.clear()
    again = daskloss.evaluate(data, cache=cache, **SHAPE)
    assert reads == [] and again.npartitions == 0
    _same_shape(again, second)


def test_the_shape_of_small_files_read_together(tmp_path, monkeypatch, reads):
    """Files joined in one unit (one kernel call) still get a shape of their own."""
    monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", 1)
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    for day in range(6):
        write_day(data, day, n=50, ids=True)
    first = daskloss.evaluate(data, cache=cache, **SHAPE)
    assert first.npartitions == 1
    _same_shape(first, daskloss.evaluate(data, **SHAPE))
    changed = write_day(data, 2, seed=7, n=60, ids=True)
    reads.clear()
    second = daskloss.evaluate(data, cache=cache, **SHAPE)
    assert reads == [str(changed)]
    _same_shape(second, daskloss.evaluate(data, **SHAPE))


def test_the_shape_of_a_file_cut_into_pieces(tmp_path, monkeypatch):
    """Files read as several row-group pieces (several units) keep one shape each."""
    monkeypatch.setattr("daskloss.sources.files.PIECE_BYTES", 40_000)
    data = tmp_path / "data"
    data.mkdir()
    for day in (1, 2):
        frame = day_frame(day, 3000).assign(day=day, id=[f"{day}:{i}" for i in range(3000)])
        frame.to_parquet(data / f"{day}.parquet", row_group_size=300)
    cache = StatisticsCache(str(tmp_path / "cache"))
    first = daskloss.evaluate(data, cache=cache, **SHAPE)
    assert first.npartitions > 2 and first.cache.files_read == 2
    again = daskloss.evaluate(data, cache=cache, **SHAPE)
    assert again.cache.files_reused == 2
    _same_shape(again, daskloss.evaluate(data, **SHAPE))
    _same_shape(first, again)


def test_entries_of_other_shape_settings_are_not_reused(tmp_path, reads):
    """Another histogram, worst_k or id columns (or none): every file is read again."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    write_day(data, 1, ids=True), write_day(data, 2, ids=True)
    daskloss.evaluate(data, cache=cache, **SHAPE)
    others = [
        {"worst_k": 5},
        {"histogram": False},
        {"id_columns": []},
        {"id_columns": ["id", "segment"]},
        {"histogram": False, "worst_k": 0, "id_columns": []},
    ]
    for other in others:
        reads.clear()
        result = daskloss.evaluate(data, cache=cache, **{**SHAPE, **other})
        assert (len(reads), result.cache.files_reused) == (2, 0), other
    assert len(os.listdir(tmp_path / "cache")) == 1 + len(others)
    reads.clear()
    assert daskloss.evaluate(data, cache=cache, **SHAPE).cache.files_reused == 2 and not reads


def test_losses_with_a_cache_are_refused(tmp_path):
    """Per-row losses need every file read: refused with a cache, in one line."""
    write_day(tmp_path / "data", 1, ids=True)
    cache = StatisticsCache(str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="per-row losses need every file read") as error:
        daskloss.evaluate(tmp_path / "data", cache=cache, losses=str(tmp_path / "l"), **SHAPE)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "l").exists()


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


def _document(cache: StatisticsCache) -> tuple[str, dict]:
    path = os.path.join(cache.path, os.listdir(cache.path)[0])
    with open(path, "rb") as file:
        return path, json.loads(gzip.decompress(file.read()))


def _rewrite(path: str, document: dict) -> None:
    with open(path, "wb") as file:
        file.write(gzip.compress(json.dumps(document).encode()))


def test_a_document_of_another_version_is_ignored_and_replaced(tmp_path, caplog, reads):
    """A cache document of version 1 (no shapes) is not read: every file is, and it is replaced."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    write_day(data, 1, ids=True), write_day(data, 2, ids=True)
    first = daskloss.evaluate(data, cache=cache, **SHAPE)
    path, document = _document(cache)
    assert document["version"] == CACHE_VERSION == 2
    assert document["key"]["shape"] == {"histogram": True, "worst_k": 4, "id_columns": ["id"]}
    for entry in document["files"].values():
        entry.pop("shape")
    _rewrite(path, {**document, "version": 1})
    reads.clear()
    again = daskloss.evaluate(data, cache=cache, **SHAPE)
    assert len(reads) == 2 and "not a daskloss cache of this version" in again.cache.error
    assert "is ignored" in caplog.text
    _same_shape(again, first)
    assert _document(cache)[1]["version"] == CACHE_VERSION
    reads.clear()
    assert daskloss.evaluate(data, cache=cache, **SHAPE).cache.files_reused == 2 and not reads


@pytest.mark.parametrize(
    "damage",
    ["no shape", "worst rows not Arrow", "histogram codes unsorted", "other worst_k", "a float"],
)
def test_a_damaged_shape_entry_is_read_again(tmp_path, caplog, reads, damage):
    """A file's entry whose shape cannot be read as asked for: that file is read again."""
    data, cache = tmp_path / "data", StatisticsCache(str(tmp_path / "cache"))
    write_day(data, 1, ids=True), write_day(data, 2, ids=True)
    first = daskloss.evaluate(data, cache=cache, **SHAPE)
    path, document = _document(cache)
    name = str(data / "day=01" / "part.parquet")
    entry = document["files"][name]
    shape = entry["shape"][1]
    if damage == "no shape":
        entry["shape"] = None
    elif damage == "worst rows not Arrow":
        shape["worst"]["table"] = base64.b64encode(b"not arrow").decode()
    elif damage == "histogram codes unsorted":
        shape["histogram"]["codes"].reverse()
    elif damage == "other worst_k":
        shape["worst"]["k"] = 3
    else:
        shape["histogram"]["weights"]["mantissas"][0] = 0.5
    _rewrite(path, document)
    reads.clear()
    again = daskloss.evaluate(data, cache=cache, **SHAPE)
    assert reads == [name] and again.cache.files_reused == 1
    assert "day=01" in again.cache.error and "not readable" in caplog.text
    _same_shape(again, first)


def test_shapes_round_trip_through_json_exactly():
    """Histograms of weights over 600 binades, worst rows of ids of many types: the same."""
    rng = np.random.default_rng(5)
    n = 400
    d = rng.normal(size=n) * 2.0 ** rng.integers(-200, 200, n)
    w = rng.exponential(size=n) * 2.0 ** rng.integers(-300, 300, n)
    ids = {
        "text": pa.array([f"r{i}" if i % 7 else None for i in range(n)]),
        "day": pa.array([date(2026, 1, 1 + i % 28) for i in range(n)]),
        "amount": pa.array([Decimal(i) / 100 for i in range(n)], pa.decimal128(9, 2)),
        "at": pa.array(np.arange(n), pa.timestamp("ns", tz="UTC")),
        "code": pa.array([str(i % 3) for i in range(n)]).dictionary_encode(),
    }
    segment = {"segment": pa.array(rng.choice(["a", "b"], n))}
    spec = EvaluationSpec.of("y", ["p", "q"], "w", group_by="segment")
    shape = ShapeSpec.of(spec, histogram=True, worst_k=9, id_columns=list(ids))
    sides = []
    for scale in (1.0, -3.0):
        rows = WorstRows.of_arrays(9, np.zeros(n), scale * d, w, keys=segment, ids=ids)
        sides.append(PredictionShape(Histogram.of_residuals(scale * d, w), rows))
    stats = ShapeStats(tuple(sides))
    data = json.loads(json.dumps(stats.to_data(), allow_nan=False))
    back = ShapeStats.from_data(data, spec, shape)
    assert back.predictions == stats.predictions
    for found, given in zip(back.predictions, stats.predictions, strict=True):
        assert found.worst.table.equals(given.worst.table)
        assert found.histogram.weights == given.histogram.weights
        assert found.worst.rows(("a",))[0]["day"] == given.worst.rows(("a",))[0]["day"]
    unweighted = ShapeStats((PredictionShape(Histogram.of_residuals(d), None),))
    only = ShapeSpec.of(EvaluationSpec.of("y", "p"), histogram=True)
    assert ShapeStats.from_data(unweighted.to_data(), EvaluationSpec.of("y", "p"), only) == (
        unweighted
    )
    with pytest.raises(ValueError, match="weights are not as the spec"):
        ShapeStats.from_data(unweighted.to_data(), EvaluationSpec.of("y", "p", "w"), only)


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
