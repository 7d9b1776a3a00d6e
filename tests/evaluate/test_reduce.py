"""The one merge tree: every source kind, any fan-in and unit count, the same bits."""

from __future__ import annotations

import math

import dask
import dask.dataframe as dd
import pytest

import daskloss
from daskloss import ConfigError
from daskloss.reduce import DEFAULT_SPLIT_EVERY, check_split_every, tree_reduce
from tests.helpers import EXPECTED_WEIGHTED, FRAME, write_parquet
from tests.reference import assert_bit_identical

FAN_INS = [False, None, 2, 3]
UNIT_COUNTS = [1, 3, 17]


def _source(kind, units, tmp_path, monkeypatch):
    """The shared frame as a source of ``kind`` cut into ``units`` work units."""
    if kind == "files":
        monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", units)
        write_parquet(tmp_path / "data", FRAME, units)
        return tmp_path / "data"
    if kind == "dask":
        return dd.from_pandas(FRAME, npartitions=units)
    monkeypatch.setattr("daskloss.sources.frames.PANDAS_UNIT_ROWS", math.ceil(len(FRAME) / units))
    return FRAME


@pytest.mark.parametrize("split_every", FAN_INS)
@pytest.mark.parametrize("units", UNIT_COUNTS)
@pytest.mark.parametrize("kind", ["files", "dask", "pandas"])
def test_every_source_kind_any_tree(kind, units, split_every, tmp_path, monkeypatch):
    """Files, Dask and pandas sources give the reference bits for any unit count and fan-in."""
    source = _source(kind, units, tmp_path, monkeypatch)
    result = daskloss.evaluate(source, weight="w", split_every=split_every)
    assert result.npartitions == units
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)


@pytest.mark.parametrize(
    ("split_every", "units", "levels"),
    [(None, 64, 2), (None, 65, 3), (2, 17, 5), (3, 9, 2), (False, 50, 1), (False, 1, 0)],
)
def test_the_tree_has_the_fan_in_asked_for(split_every, units, levels):
    """split_every has one meaning: the number of results each merge task takes."""
    fan_ins = []

    def merge_all(parts):
        fan_ins.append(len(parts))
        return sum(parts)

    lazy = tree_reduce(range(units), lambda unit: 1, merge_all, split_every=split_every)
    with dask.config.set(scheduler="sync"):
        assert lazy.compute() == units
    widest = units if split_every is False else (split_every or DEFAULT_SPLIT_EVERY)
    assert max(fan_ins, default=0) <= widest
    merge_levels = {key[0] for key in lazy.dask if "merge" in str(key[0])}
    assert len(merge_levels) == levels


def test_no_units_merge_to_the_identity():
    """A source with no work units reduces to the merge of nothing."""
    assert tree_reduce([], lambda unit: 1, sum).compute() == 0


@pytest.mark.parametrize("bad", [0, 1, -3, True, 2.5, "8"])
def test_bad_split_every_is_a_config_error(bad):
    """A fan-in below 2, or not an integer, is refused with what to give instead."""
    with pytest.raises(ConfigError, match=r"split_every must be an integer >= 2.*got"):
        check_split_every(bad)
