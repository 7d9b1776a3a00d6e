"""Column inputs: numpy, pandas and pyarrow, chunked or not, exactly or refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from daskloss import ErrorStats, NonFiniteValueError, SchemaError
from daskloss.columns import aligned_chunks, float64_chunks
from tests.reference import assert_bit_identical, reference_metrics

RNG = np.random.default_rng(3)
Y_TRUE = RNG.normal(size=100)
Y_PRED = Y_TRUE + RNG.normal(size=100)


def test_arrow_chunks_are_views():
    """A float64 chunk without nulls is read without a copy."""
    chunk = pa.array(Y_TRUE)
    (view,) = float64_chunks(chunk, "y")
    assert np.shares_memory(view, np.frombuffer(chunk.buffers()[1], dtype=np.float64))


def test_misaligned_chunks_give_the_same_bits():
    """Columns chunked at different rows are aligned and give the reference bits."""
    y_true = pa.chunked_array([Y_TRUE[:10], Y_TRUE[10:10], Y_TRUE[10:70], Y_TRUE[70:]])
    y_pred = pa.chunked_array([Y_PRED[:33], Y_PRED[33:]])
    stats = ErrorStats.from_arrays(y_true, y_pred)
    assert_bit_identical(stats.metrics(), reference_metrics(Y_TRUE, Y_PRED))


def test_aligned_chunks_cover_every_row_once():
    """aligned_chunks yields slices that line up and cover the columns exactly."""
    a = [np.arange(5.0), np.arange(5.0, 12.0)]
    b = [np.arange(3.0), np.arange(3.0, 3.0), np.arange(3.0, 12.0)]
    pieces = list(aligned_chunks([a, b]))
    assert all(len(x) == len(y) and (x == y).all() for x, y in pieces)
    assert np.concatenate([x for x, _ in pieces]).tolist() == list(range(12))


def test_aligned_chunks_refuse_different_lengths():
    """Columns of different total length are a SchemaError."""
    with pytest.raises(SchemaError, match="different lengths"):
        list(aligned_chunks([[np.ones(3)], [np.ones(4)]]))


def test_arrow_nulls_are_nan():
    """Nulls in an Arrow column count as NaN for the NaN policy."""
    y_true = pa.array([1.0, None, 3.0])
    with pytest.raises(NonFiniteValueError, match="1 in 'y_true'"):
        ErrorStats.from_arrays(y_true, pa.array([1.0, 2.0, 3.0]))
    skipped = ErrorStats.from_arrays(y_true, pa.array([1.0, 2.0, 5.0]), nan_policy="skip")
    assert skipped.skipped_rows == 1 and skipped.metrics()["se"] == 4.0


def test_arrow_integers_with_nulls():
    """Integer Arrow columns with nulls keep their exact values and NaN for nulls."""
    (chunk,) = float64_chunks(pa.array([2**53, None, -7], type=pa.int64()), "y")
    assert chunk[0] == 2.0**53 and np.isnan(chunk[1]) and chunk[2] == -7.0


def test_inexact_big_integers_are_refused():
    """Integers float64 would round: refused, from numpy and from Arrow."""
    with pytest.raises(SchemaError, match=r"2\*\*53"):
        float64_chunks(pa.array([2**53 + 1], type=pa.int64()), "y")
    for value, dtype in ((-(2**60) - 1, np.int64), (2**63 - 1, np.int64), (2**64 - 1, np.uint64)):
        with pytest.raises(SchemaError, match=r"2\*\*53"):
            float64_chunks(np.array([value], dtype=dtype), "y")


def test_exact_big_integers_are_kept():
    """Integers beyond 2**53 that float64 holds exactly are used as they are."""
    values = [2**53 + 2, -(2**60), -(2**63), 2**62 + 2**10]
    (chunk,) = float64_chunks(np.array(values, dtype=np.int64), "y")
    assert [int(v) for v in chunk] == values
    (chunk,) = float64_chunks(np.array([2**63], dtype=np.uint64), "y")
    assert int(chunk[0]) == 2**63


def test_pandas_dtypes_agree():
    """numpy-backed, nullable and Arrow-backed pandas columns give the same bits."""
    expected = reference_metrics(Y_TRUE, Y_PRED)
    for dtype in ("float64", "Float64", pd.ArrowDtype(pa.float64())):
        stats = ErrorStats.from_arrays(
            pd.Series(Y_TRUE, dtype=dtype), pd.Series(Y_PRED, dtype=dtype)
        )
        assert_bit_identical(stats.metrics(), expected)


def test_pandas_nullable_missing_is_nan():
    """pd.NA in a nullable column counts as NaN."""
    y_true = pd.Series([1.0, None, 2.0], dtype="Float64")
    with pytest.raises(NonFiniteValueError):
        ErrorStats.from_arrays(y_true, pd.Series([1.0, 1.0, 1.0]))


def test_float32_widens_exactly():
    """float32 values widen to float64 exactly."""
    y32 = np.array([0.1, 0.2], dtype=np.float32)
    stats = ErrorStats.from_arrays(y32, np.zeros(2, dtype=np.float32))
    assert_bit_identical(stats.metrics(), reference_metrics(y32.astype(np.float64), np.zeros(2)))


def test_strings_and_bools_are_refused():
    """Strings (numpy, pandas, Arrow) and booleans are not numbers."""
    for values in (
        np.array(["1.0"]),
        pd.Series(["1.0"], dtype="string"),
        pa.array(["1.0"]),
        np.array([True]),
    ):
        with pytest.raises(SchemaError, match="must be numeric"):
            float64_chunks(values, "y")


def test_longdouble_is_refused_when_float64_would_round_it():
    """np.longdouble values float64 cannot hold are refused, not rounded; exact ones pass."""
    if np.finfo(np.longdouble).nmant <= 52:
        pytest.skip("np.longdouble is float64 on this platform")
    inexact = np.array([1.0, 1.0], dtype=np.longdouble) + np.longdouble(2) ** -60
    for values in (inexact, pd.Series(inexact)):
        with pytest.raises(SchemaError, match="float64 cannot represent exactly"):
            ErrorStats.from_arrays(np.ones(2), values)
    huge = np.array([np.longdouble(2) ** 2000], dtype=np.longdouble)
    with pytest.raises(SchemaError, match="float64 cannot represent exactly"):
        float64_chunks(huge, "y")
    exact = np.array([0.1, np.inf, np.nan], dtype=np.float64).astype(np.longdouble)
    (chunk,) = float64_chunks(exact, "y")
    assert chunk[0] == 0.1 and chunk[1] == np.inf and np.isnan(chunk[2])


def test_mixed_python_list_refuses_integers_numpy_would_round():
    """A list mixing big integers and floats is checked before numpy makes it float64."""
    with pytest.raises(SchemaError, match=r"2\*\*53"):
        ErrorStats.from_arrays([2**53 + 1, 0.5], [0, 0])
    with pytest.raises(SchemaError, match=r"2\*\*53"):
        float64_chunks([10**400, 0.5], "y")
    (chunk,) = float64_chunks([2**60, np.int64(-(2**53)), 0.5], "y")
    assert chunk.tolist() == [2.0**60, -(2.0**53), 0.5]


def test_masked_entries_are_missing():
    """Masked entries of a numpy masked array count as NaN; the caller's array is untouched."""
    y_true = np.ma.array([1.0, 1e300, 3.0], mask=[False, True, False])
    y_pred = np.array([1.0, 0.0, 5.0])
    with pytest.raises(NonFiniteValueError, match="1 in 'y_true'"):
        ErrorStats.from_arrays(y_true, y_pred)
    stats = ErrorStats.from_arrays(y_true, y_pred, nan_policy="skip")
    assert (stats.count, stats.skipped_rows) == (2, 1)
    assert stats.metrics()["se"] == 4.0 and stats.metrics()["max_error"] == 2.0
    assert np.ma.getdata(y_true)[1] == 1e300


def test_sparse_pandas_column_gives_the_dense_bits():
    """A sparse pandas column is evaluated as its dense values."""
    dense = np.where(Y_TRUE > 0, Y_TRUE, 0.0)
    sparse = pd.Series(pd.arrays.SparseArray(dense, fill_value=0.0))
    stats = ErrorStats.from_arrays(sparse, pd.Series(Y_PRED))
    assert_bit_identical(stats.metrics(), reference_metrics(dense, Y_PRED))
