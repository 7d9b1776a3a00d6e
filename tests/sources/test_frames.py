"""DataFrames in hand: a Dask DataFrame's partitions and a pandas DataFrame's rows."""

from __future__ import annotations

import dask.dataframe as dd
import pytest

import daskloss
from daskloss import SchemaError
from tests.helpers import EXPECTED_WEIGHTED, FRAME
from tests.reference import assert_bit_identical


def test_missing_column_in_dask_frame():
    """A missing column of a DataFrame source is caught before computing."""
    with pytest.raises(SchemaError, match="'nope'"):
        daskloss.evaluate(dd.from_pandas(FRAME, npartitions=2), weight="nope")


def test_non_numeric_dask_column():
    """A string column of a DataFrame source is refused up front."""
    with pytest.raises(SchemaError, match="'segment' must be numeric"):
        daskloss.evaluate(dd.from_pandas(FRAME, npartitions=2), y_pred="segment")


def test_pandas_dataframe_is_a_source(monkeypatch):
    """A pandas DataFrame is evaluated directly, cut into units, with the same bits."""
    monkeypatch.setattr("daskloss.sources.frames.PANDAS_UNIT_ROWS", 700)
    result = daskloss.evaluate(FRAME, weight="w")
    assert result.npartitions == 5 and result.source == "pandas"
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)
