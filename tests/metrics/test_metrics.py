"""daskloss.metrics: inputs of every kind, lazy values, one pass, errors, warnings, decisions."""

from __future__ import annotations

import functools
import math
import threading
import uuid
import warnings

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning as SklearnUndefinedMetricWarning

from daskloss import metrics
from daskloss.errors import (
    DasklossError,
    DataError,
    InvalidParameterError,
    NonFiniteValueError,
    SchemaError,
    UndefinedMetricWarning,
    ZeroWeightError,
)
from tests.metrics.reference import exact_metric
from tests.metrics.sklearn_suite import same_bits

Y_TRUE = np.array([3.0, -0.5, 2.0, 7.0, 4.25, 1e-3])
Y_PRED = np.array([2.5, 0.0, 2.0, 8.0, 4.0, 2e-3])
WEIGHT = np.array([1.0, 2.0, 0.5, 0.0, 3.0, 1.5])
EXPECTED = exact_metric("mean_squared_error", Y_TRUE, Y_PRED, WEIGHT)


def _kinds(values: np.ndarray) -> dict[str, object]:
    """``values`` as every kind of input the metric functions take."""
    return {
        "numpy": values,
        "list": values.tolist(),
        "pandas": pd.Series(values, index=np.arange(len(values))[::-1]),
        "arrow": pa.array(values),
        "arrow-chunked": pa.chunked_array([values[:2], values[2:]]),
        "dask-array": da.from_array(values, chunks=3),
        "dask-series": dd.from_pandas(pd.Series(values), npartitions=2),
    }


@pytest.mark.parametrize("weight_kind", ["numpy", "dask-array", "dask-series", "list"])
@pytest.mark.parametrize("pred_kind", list(_kinds(Y_PRED)))
@pytest.mark.parametrize("true_kind", ["numpy", "pandas", "arrow-chunked", "dask-series"])
def test_every_kind_of_input_and_their_mixtures(true_kind, pred_kind, weight_kind):
    """Any mixture of NumPy, lists, pandas, pyarrow and Dask inputs gives the same bits."""
    found = metrics.mean_squared_error(
        _kinds(Y_TRUE)[true_kind],
        _kinds(Y_PRED)[pred_kind],
        sample_weight=_kinds(WEIGHT)[weight_kind],
    )
    assert same_bits(found, EXPECTED)


def test_dataframes_are_several_outputs():
    """A pandas or Dask DataFrame of k columns is k outputs, as a (n, k) array is."""
    y_true = np.column_stack([Y_TRUE, Y_PRED * 2])
    y_pred = np.column_stack([Y_PRED, Y_TRUE])
    expected = metrics.r2_score(y_true, y_pred, multioutput="raw_values")
    frame = pd.DataFrame(y_pred, columns=["a", "b"])
    for given in (frame, dd.from_pandas(frame, npartitions=3)):
        found = metrics.r2_score(y_true, given, multioutput="raw_values")
        assert same_bits(found, expected)


def test_a_column_and_a_vector_are_one_output_never_broadcast():
    """(n,) against (n, 1) is one output, as in scikit-learn; nothing becomes (n, n)."""
    found = metrics.mean_squared_error(Y_TRUE, Y_PRED[:, None], multioutput="raw_values")
    assert found.shape == (1,)
    assert same_bits(float(found[0]), metrics.mean_squared_error(Y_TRUE, Y_PRED))
    lazy = da.from_array(Y_PRED[:, None], chunks=(2, 1))
    assert same_bits(metrics.mean_squared_error(Y_TRUE, lazy), float(found[0]))


def test_unequal_lengths_raise_with_scikit_learns_message():
    """Inputs of different known lengths raise at once, naming every length."""
    with pytest.raises(SchemaError, match=r"inconsistent numbers of samples: \[6, 5, 6\]"):
        metrics.mean_squared_error(
            Y_TRUE, da.from_array(Y_PRED[:5], chunks=2), sample_weight=WEIGHT, compute=False
        )


def test_unequal_lengths_of_unknown_size_raise_when_computed():
    """Dask Series of unknown lengths are checked lazily: the error comes with the result."""
    y_true = dd.from_pandas(pd.Series(Y_TRUE), npartitions=2)
    y_pred = dd.from_pandas(pd.Series(Y_PRED[:5]), npartitions=2)
    lazy = metrics.mean_squared_error(y_true, y_pred, compute=False)
    with pytest.raises(SchemaError, match="inconsistent numbers of samples in"):
        lazy.compute()


def test_unknown_lengths_against_an_array_in_memory():
    """A Dask Series of unknown length pairs with a NumPy array, checked when computed."""
    y_true = dd.from_pandas(pd.Series(Y_TRUE), npartitions=3)
    assert same_bits(metrics.mean_squared_error(y_true, Y_PRED, sample_weight=WEIGHT), EXPECTED)
    lazy = metrics.mean_squared_error(y_true, Y_PRED[:5], compute=False)
    with pytest.raises(SchemaError, match="hold 6 rows in all and y_pred 5"):
        lazy.compute()


def test_unknown_chunk_sizes_that_cannot_be_paired_raise_a_clear_error():
    """Dask inputs of unknown lengths and different partition counts cannot be paired."""
    y_true = dd.from_pandas(pd.Series(Y_TRUE), npartitions=2)
    y_pred = dd.from_pandas(pd.Series(Y_PRED), npartitions=3)
    with pytest.raises(SchemaError, match=r"to_dask_array\(lengths=True\)"):
        metrics.mean_squared_error(y_true, y_pred, compute=False)


def test_dask_arrays_of_unknown_chunk_sizes_pair_with_dataframes():
    """A Dask array with NaN chunk sizes (from a DataFrame) pairs partition by partition."""
    frame = dd.from_pandas(pd.DataFrame({"y": Y_TRUE, "p": Y_PRED}), npartitions=3)
    assert same_bits(
        metrics.mean_squared_error(frame.y, frame.p.to_dask_array(), sample_weight=WEIGHT),
        EXPECTED,
    )


def test_dask_arrays_of_different_chunks_are_aligned():
    """Dask arrays chunked differently are rechunked alike (dask-ml's chunk-pattern case)."""
    found = metrics.r2_score(da.from_array(Y_TRUE, chunks=4), da.from_array(Y_PRED, chunks=3))
    assert same_bits(found, metrics.r2_score(Y_TRUE, Y_PRED))


def test_compute_false_returns_dask_arrays():
    """compute=False gives 0-d (raw values: 1-d) Dask arrays computing to the same values."""
    lazy = metrics.r2_score(Y_TRUE, Y_PRED, sample_weight=WEIGHT, compute=False)
    assert isinstance(lazy, da.Array) and lazy.shape == ()
    assert same_bits(lazy.compute(), metrics.r2_score(Y_TRUE, Y_PRED, sample_weight=WEIGHT))
    two = np.column_stack([Y_TRUE, Y_PRED])
    raw = metrics.mean_absolute_error(two, two[::-1], multioutput="raw_values", compute=False)
    assert raw.shape == (2,)
    assert same_bits(
        raw.compute(), metrics.mean_absolute_error(two, two[::-1], multioutput="raw_values")
    )


_READS: dict[str, int] = {}
_READS_LOCK = threading.Lock()


def _read_rows(source: str, rows: list[int]) -> pd.DataFrame:
    with _READS_LOCK:
        _READS[source] = _READS.get(source, 0) + 1
    return pd.DataFrame({"y": Y_TRUE[rows], "p": Y_PRED[rows], "w": WEIGHT[rows]})


class _CountingReads:
    """A Dask DataFrame of four partitions that counts how often they are read."""

    def __init__(self) -> None:
        self.source = uuid.uuid4().hex
        pieces = np.array_split(np.arange(len(Y_TRUE)), 4)
        read = functools.partial(_read_rows, self.source)
        self.frame = dd.from_map(read, [p.tolist() for p in pieces])
        self.before = _READS.get(self.source, 0)  # from_map reads one partition for its meta

    @property
    def reads(self) -> int:
        return _READS.get(self.source, 0) - self.before


def test_lazy_values_computed_together_read_the_data_once():
    """dask.compute of lazy metrics, even of different per-row terms, reads each partition once."""
    source = _CountingReads()
    frame = source.frame
    lazy = [
        metrics.mean_squared_error(frame.y, frame.p, compute=False),
        metrics.r2_score(frame.y, frame.p, compute=False),
        metrics.mean_absolute_error(frame.y, frame.p, compute=False),
        metrics.mean_pinball_loss(frame.y, frame.p, alpha=0.9, compute=False),
    ]
    found = dask.compute(*lazy)
    assert source.reads == 4
    assert same_bits(found[1], metrics.r2_score(Y_TRUE, Y_PRED))


def test_lazy_values_of_one_term_share_their_statistics():
    """Lazy metrics of equal inputs needing the same sums share every task but the last."""
    y_true, y_pred = da.from_array(Y_TRUE, chunks=2), da.from_array(Y_PRED, chunks=2)
    mse = metrics.mean_squared_error(y_true, y_pred, compute=False)
    r2 = metrics.r2_score(y_true, y_pred, compute=False)
    shared = set(mse.__dask_graph__()) & set(r2.__dask_graph__())
    assert len(shared) == len(mse.__dask_graph__()) - 2  # the value and its array
    assert same_bits(dask.compute(mse, r2)[1], metrics.r2_score(Y_TRUE, Y_PRED))


def test_regression_metrics_reads_the_data_once():
    """Several metrics in one call: one pass, and each the same bits as its own function."""
    source = _CountingReads()
    frame = source.frame
    asked = {
        "mse": "mean_squared_error",
        "q9": ("mean_pinball_loss", {"alpha": 0.9}),
        "r2": ("r2_score", {"force_finite": False}),
        "max": "max_error",
    }
    found = metrics.regression_metrics(frame.y, frame.p, metrics=asked, sample_weight=frame.w)
    assert source.reads == 4
    assert same_bits(found["mse"], EXPECTED)
    assert same_bits(
        found["q9"], metrics.mean_pinball_loss(Y_TRUE, Y_PRED, sample_weight=WEIGHT, alpha=0.9)
    )
    assert found["max"] == 0.5  # the row of weight 0 (|d| = 1) does not count


def test_regression_metrics_lazily_share_one_graph():
    """compute=False gives a dict of Dask arrays that compute together in one pass."""
    source = _CountingReads()
    lazy = metrics.regression_metrics(source.frame.y, source.frame.p, compute=False)
    found = dask.compute(lazy)[0]
    assert source.reads == 4
    assert set(found) == set(metrics.DEFAULT_METRICS)


def test_library_never_creates_a_client():
    """Computing metrics of Dask inputs leaves no distributed Client behind."""
    distributed = pytest.importorskip("distributed")
    metrics.regression_metrics(da.from_array(Y_TRUE, chunks=2), Y_PRED)
    with pytest.raises(ValueError, match="No clients found"):
        distributed.default_client()


def test_negative_weights_are_summed_exactly():
    """Negative weights, as scikit-learn allows, give the exact reference."""
    weight = np.array([1.0, -2.0, 0.5, 3.0, -0.25, 1.0])
    found = metrics.explained_variance_score(Y_TRUE, Y_PRED, sample_weight=weight)
    assert same_bits(found, exact_metric("explained_variance_score", Y_TRUE, Y_PRED, weight))
    assert math.isclose(found, skm.explained_variance_score(Y_TRUE, Y_PRED, sample_weight=weight))


def test_weights_summing_to_zero_raise_zero_division():
    """Weights that cancel exactly make means undefined: ZeroDivisionError, as in scikit-learn."""
    with pytest.raises(ZeroWeightError, match="Weights sum to zero") as caught:
        metrics.mean_squared_error([1.0, 2.0], [2.0, 2.0], sample_weight=[-1.0, 1.0])
    assert isinstance(caught.value, ZeroDivisionError)
    assert metrics.sum_squared_error([1.0, 2.0], [2.0, 2.0], sample_weight=[-1.0, 1.0]) == -1.0


def test_all_zero_weights_raise():
    """All-zero weights raise scikit-learn's error."""
    with pytest.raises(DataError, match="at least one non-zero number"):
        metrics.mean_absolute_error(Y_TRUE, Y_PRED, sample_weight=np.zeros(6))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mean_squared_error", {}),
        ("root_mean_squared_error", {}),
        ("mean_absolute_error", {}),
        ("max_error", {}),
        ("r2_score", {}),
        ("r2_score", {"force_finite": False}),
        ("explained_variance_score", {}),
        ("mean_pinball_loss", {"alpha": 0.25}),
    ],
)
@pytest.mark.parametrize(
    ("y_true", "y_pred"),
    [([1e308, 0.0], [-1e308, 0.0]), ([1e308, 1e308 - 2**971], [-1e308, 0.0]), ([-1e308], [1e308])],
)
def test_overflowing_residuals_give_what_scikit_learn_gives(name, params, y_true, y_pred):
    """A residual beyond the float64 range gives inf or NaN, as in scikit-learn; never an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = getattr(skm, name)(y_true, y_pred, **params)
        found = getattr(metrics, name)(y_true, y_pred, **params)
    assert same_bits(found, float(expected))


def test_a_constant_target_with_an_overflowing_residual_is_still_constant():
    """Exact sums see a constant target where scikit-learn's overflowing mean makes R² NaN."""
    with np.errstate(all="ignore"):
        assert math.isnan(skm.r2_score([1e308, 1e308], [-1e308, 1e308]))
    assert metrics.r2_score([1e308, 1e308], [-1e308, 1e308]) == 0.0
    assert metrics.r2_score([1e308, 1e308], [-1e308, 1e308], force_finite=False) == -math.inf


def test_overflowing_terms_give_infinity():
    """A per-row term beyond the float64 range (MAPE of a zero target) gives inf."""
    with np.errstate(all="ignore"):
        assert metrics.mean_absolute_percentage_error([0.0], [1e300]) == math.inf


def test_sums_never_overflow_only_results_can():
    """Squares beyond the float64 range still give the exact mean (scikit-learn: inf)."""
    y_true = np.full(1000, 1.3e153)
    assert metrics.mean_squared_error(y_true, np.zeros(1000)) == 1.3e153 * 1.3e153
    assert metrics.sum_squared_error(y_true, np.zeros(1000)) == math.inf


def test_zero_weight_rows_count_for_nothing_even_when_they_overflow():
    """A row of weight 0 is as good as absent, even if its residual is infinite."""
    found = metrics.mean_squared_error(
        [1e308, 1.0, 2.0], [-1e308, 2.0, 2.0], sample_weight=[0.0, 1.0, 1.0]
    )
    assert found == 0.5


def test_constant_target_is_recognised_exactly():
    """R² of a constant target is 0.0, even where scikit-learn's float mean is not the constant."""
    assert metrics.r2_score([0.1] * 3, [1.1] * 3) == 0.0
    assert metrics.r2_score([0.1] * 3, [1.1] * 3, force_finite=False) == -math.inf
    assert skm.r2_score([0.1] * 3, [1.1] * 3) < -1e30


def test_l2_norm_is_the_rounded_root_of_the_exact_sum():
    """l2_norm is sqrt(SE) rounded once; sum_squared_error is SE rounded once."""
    y_true, y_pred = np.arange(10.0, 20.0), np.arange(10.0)
    assert metrics.sum_squared_error(y_true, y_pred) == 1000.0
    assert metrics.l2_norm(y_true, y_pred) == 31.622776601683793
    assert metrics.l2_norm(y_true, y_pred, multioutput="raw_values").tolist() == [
        31.622776601683793
    ]


def test_float32_is_computed_in_float64():
    """float32 inputs are widened exactly: the result is that of their float64 values."""
    y_true, y_pred = Y_TRUE.astype(np.float32), Y_PRED.astype(np.float32)
    found = metrics.mean_squared_error(y_true, y_pred, multioutput="raw_values")
    assert found.dtype == np.float64
    expected = metrics.mean_squared_error(y_true.astype(float), y_pred.astype(float))
    assert same_bits(float(found[0]), expected)


def test_integers_float64_cannot_hold_are_refused():
    """Integers beyond 2**53 would be rounded: refused, not rounded."""
    with pytest.raises(SchemaError, match="2\\*\\*53"):
        metrics.mean_squared_error([2**53 + 1, 0], [0.5, 0])
    with pytest.raises(SchemaError, match="2\\*\\*53"):
        metrics.mean_squared_error(np.array([2**60 + 1, 0]), [0.5, 0])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: metrics.mean_squared_error(1.0, [1.0]), TypeError, "must be an array-like"),
        (lambda: metrics.r2_score([1, 2], [1, 2], force_finite=1), TypeError, "'bool'"),
        (lambda: metrics.mean_pinball_loss([1], [1], alpha=1.5), ValueError, r"\[0.0, 1.0\]"),
        (lambda: metrics.mean_tweedie_deviance([1], [1], power=0.5), ValueError, "power"),
        (
            lambda: metrics.mean_squared_error([1], [1], multioutput="variance_weighted"),
            ValueError,
            "multioutput",
        ),
        (lambda: metrics.mean_squared_error([1], [1], compute="yes"), TypeError, "compute"),
        (lambda: metrics.mean_squared_error([1, np.nan], [1, 2]), ValueError, "Input contains NaN"),
        (lambda: metrics.max_error([[1, 2]], [[1, 2]]), ValueError, "Multioutput not supported"),
        (lambda: metrics.mean_squared_error([[1, 2]], [1]), ValueError, r"output \(2!=1\)"),
        (
            lambda: metrics.mean_squared_error([1, 2], [1, 2], multioutput=[1, 2]),
            ValueError,
            "Custom weights are useful only",
        ),
        (lambda: metrics.mean_squared_log_error([-1], [1]), ValueError, "less than or equal to -1"),
        (lambda: metrics.mean_gamma_deviance([0], [1]), ValueError, "strictly positive y and"),
        (lambda: metrics.mean_squared_error([], []), ValueError, "0 sample"),
        (lambda: metrics.mean_squared_error([1j], [1]), ValueError, "Complex data not supported"),
        (lambda: metrics.mean_squared_error(["a"], [1]), ValueError, "could not convert"),
    ],
)
def test_errors_are_daskloss_errors_and_scikit_learns_exceptions(call, error, match):
    """Bad input raises a DasklossError that is also the exception scikit-learn raises."""
    with pytest.raises(DasklossError, match=match) as caught:
        call()
    assert isinstance(caught.value, error)


def test_invalid_parameters_are_type_and_value_errors():
    """A bad parameter is both a TypeError and a ValueError, as scikit-learn's."""
    assert issubclass(InvalidParameterError, TypeError)
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(NonFiniteValueError, ValueError)


def test_nan_in_a_dask_input_raises_when_computed():
    """A NaN in a Dask input is found by the pass, and raised with scikit-learn's message."""
    y_pred = da.from_array(np.array([1.0, np.nan, 2.0, 3.0, 4.0, 5.0]), chunks=2)
    lazy = metrics.mean_squared_error(Y_TRUE, y_pred, compute=False)
    with pytest.raises(NonFiniteValueError, match="Input contains NaN"):
        lazy.compute()


def test_one_sample_r2_warns_with_both_warning_classes():
    """R² of one sample is NaN with a warning that is daskloss's and scikit-learn's class."""
    with pytest.warns(UndefinedMetricWarning) as caught:
        assert math.isnan(metrics.r2_score([1.0], [2.0]))
    assert issubclass(caught[0].category, SklearnUndefinedMetricWarning)
    assert caught[0].filename == __file__


def test_multioutput_weights_may_be_a_dask_array():
    """Output weights given as a Dask array are used as a NumPy array would be."""
    two = np.column_stack([Y_TRUE, Y_PRED])
    weights = np.array([0.25, 0.75])
    expected = metrics.mean_squared_error(two, two[::-1], multioutput=weights)
    found = metrics.mean_squared_error(two, two[::-1], multioutput=da.from_array(weights))
    assert same_bits(found, expected)


def test_average_of_roots_is_rounded_once():
    """RMSE averaged over outputs is the exact mean of the square roots, rounded once."""
    two = np.column_stack([Y_TRUE, Y_PRED * 3])
    for multioutput in ("uniform_average", [0.3, -0.7]):
        found = metrics.root_mean_squared_error(two, two[::-1], multioutput=multioutput)
        expected = exact_metric("root_mean_squared_error", two, two[::-1], multioutput=multioutput)
        assert same_bits(found, expected)


def test_runs_on_the_active_client():
    """With a distributed Client active, Dask inputs are computed there, with the same bits."""
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        )
    with cluster, distributed.Client(cluster):
        found = metrics.mean_squared_error(
            da.from_array(Y_TRUE, chunks=2), Y_PRED, sample_weight=WEIGHT
        )
    assert same_bits(found, EXPECTED)
