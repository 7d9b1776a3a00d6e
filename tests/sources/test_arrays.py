"""Array-likes as work units: how inputs are cut and paired, and what the units hold."""

from __future__ import annotations

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from daskloss.errors import SchemaError
from daskloss.sources import arrays
from daskloss.sources.arrays import matrix_columns, plan_arrays


def _rows(plan) -> list[dict[str, list[float]]]:
    units = dask.compute(*plan.units)
    return [
        {name: values.tolist() for name, values in chunk.values.items()}
        for unit in units
        for chunk in unit.chunks()
    ]


def test_inputs_in_memory_are_cut_into_units(monkeypatch):
    """Rows in memory make units of PANDAS_UNIT_ROWS rows, columns named by role and output."""
    monkeypatch.setattr(arrays, "PANDAS_UNIT_ROWS", 4)
    y = np.arange(10.0)
    plan = plan_arrays(y, np.column_stack([y]), sample_weight=y.tolist())
    assert plan.in_memory and plan.n_outputs == 1 and len(plan.units) == 3
    rows = _rows(plan)
    assert rows[2] == {
        "y_true[0]": [8.0, 9.0],
        "y_pred[0]": [8.0, 9.0],
        "sample_weight": [8.0, 9.0],
    }


def test_dask_arrays_follow_the_first_ones_chunks():
    """Other Dask arrays are rechunked, inputs in memory sliced, at the first's chunks."""
    y = np.arange(6.0)
    plan = plan_arrays(da.from_array(y, chunks=4), da.from_array(y * 2, chunks=3), y * 3)
    assert [row["y_pred[0]"] for row in _rows(plan)] == [[0.0, 2.0, 4.0, 6.0], [8.0, 10.0]]
    assert [row["y_true[0]"] for row in _rows(plan)] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]


def test_dask_frames_pair_by_position_not_index():
    """Dask Series pair row by row within partitions, whatever their indexes."""
    y_true = dd.from_pandas(pd.Series([1.0, 2.0, 3.0], index=[7, 8, 9]), npartitions=1)
    y_pred = dd.from_pandas(pd.Series([4.0, 5.0, 6.0], index=[0, 1, 2]), npartitions=1)
    (row,) = _rows(plan_arrays(y_true, y_pred, np.ones(3)))
    assert row == {
        "y_true[0]": [1.0, 2.0, 3.0],
        "y_pred[0]": [4.0, 5.0, 6.0],
        "sample_weight": [1.0, 1.0, 1.0],
    }


def test_three_dimensions_are_refused():
    """Inputs of more than two dimensions are refused with scikit-learn's message."""
    with pytest.raises(SchemaError, match="dim 3, while dim <= 2"):
        plan_arrays(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


def test_matrix_columns_of_every_kind():
    """Booleans, objects holding numbers and nullable pandas columns become float64 columns."""
    assert matrix_columns(np.array([True, False]), "y")[0].tolist() == [1.0, 0.0]
    assert matrix_columns(np.array([1, 2.5], dtype=object), "y")[0].tolist() == [1.0, 2.5]
    nullable = matrix_columns(pd.Series([1, None], dtype="Int64"), "y")[0]
    assert nullable[0] == 1.0 and np.isnan(nullable[1])
