"""ErrorStats: exact statistics, the merge laws, metrics, bad values."""

from __future__ import annotations

import itertools
import json
import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from daskloss import METRIC_NAMES, DataError, ErrorStats, NonFiniteValueError, SchemaError
from tests.reference import assert_bit_identical, fraction_sqrt, reference_metrics
from tests.strategies import long_rows, long_split_points, rows, split_points

RNG = np.random.default_rng(20261123)


def _stats(y_true, y_pred, weight=None, **kwargs) -> ErrorStats:
    return ErrorStats.from_arrays(y_true, y_pred, weight, **kwargs)


def test_seed_example():
    """y = 10..19 and predictions 0..9 give MSE 100 and L2 norm sqrt(1000)."""
    metrics = _stats(np.arange(10.0, 20.0), np.arange(10.0)).metrics()
    assert metrics["mse"] == 100.0
    assert metrics["l2"] == 31.622776601683793
    assert metrics["rmse"] == 10.0
    assert metrics["bias"] == -10.0


def test_metric_keys():
    """metrics() has exactly the documented keys, as plain Python numbers."""
    metrics = _stats(np.array([1.0, 2.0]), np.array([1.5, 2.5])).metrics()
    assert tuple(metrics) == METRIC_NAMES
    assert type(metrics["count"]) is int
    assert all(type(metrics[k]) is float for k in METRIC_NAMES if k != "count")


ADVERSARIAL = {
    "huge-cancelling": (
        np.array([1e300, -1e300, 1e300, 3.0, -2.0]),
        np.array([-1e300, 1e300, 1e300, 1.0, 5e-324]),
    ),
    "magnitudes": (
        np.array([1e-300, 1e300, 1e-150, 1e150, 1.0, -1e200]),
        np.array([2e-300, -1e300, 0.0, 1e150, 1.0 + 2**-52, 1e-200]),
    ),
    "subnormal": (
        np.array([5e-324, 1e-310, -3e-320, 2.2250738585072014e-308, 0.0]),
        np.array([0.0, -1e-310, 3e-320, 0.0, -5e-324]),
    ),
    "near-1e8": (
        1e8 + np.array([1.0, -1.0, 1.0, -1.0, 0.0, 1.0, -1.0]),
        1e8 + np.array([0.5, -0.5, 1.5, -1.0, 0.25, 1.0, -2.0]),
    ),
    "tiny-residuals": (
        np.array([1.0, 2.0, 3.0, 4.0]),
        np.array([1.0, 2.0, 3.0, 4.0]) + np.array([1e-200, -1e-200, 2e-200, 3e-200]),
    ),
    "huge-residuals": (
        np.array([0.0, 1e200, -1e200, 5.0]),
        np.array([1e200, -1e200, 1e200, -1e200]),
    ),
}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_matches_fractions(name, weighted):
    """Every metric equals the Fraction reference bit for bit on adversarial data."""
    y_true, y_pred = ADVERSARIAL[name]
    weight = (
        RNG.random(len(y_true)) * 10.0 ** RNG.integers(-300, 300, len(y_true)) if weighted else None
    )
    assert_bit_identical(
        _stats(y_true, y_pred, weight).metrics(), reference_metrics(y_true, y_pred, weight)
    )


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_random_matches_fractions(weighted):
    """Every metric equals the Fraction reference bit for bit on ordinary random data."""
    y_true = RNG.normal(100.0, 30.0, 2000)
    y_pred = y_true + RNG.standard_t(3, 2000)
    weight = RNG.exponential(size=2000) if weighted else None
    assert_bit_identical(
        _stats(y_true, y_pred, weight).metrics(), reference_metrics(y_true, y_pred, weight)
    )


@settings(max_examples=150, deadline=None)
@given(rows())
def test_property_matches_fractions(data):
    """For arbitrary finite data every metric equals the Fraction reference."""
    y_true, y_pred, weight = data
    assert_bit_identical(
        _stats(y_true, y_pred, weight).metrics(), reference_metrics(y_true, y_pred, weight)
    )


def test_naive_r2_falls_apart_but_exact_does_not():
    """Targets 1e8 +/- 1: float R² loses everything the exact R² keeps."""
    y_true = 1e8 + np.tile([1.0, -1.0], 500)
    y_pred = y_true + np.tile([0.5, -0.25, 0.0, 0.125], 250)
    exact = _stats(y_true, y_pred).metrics()["r2"]
    assert exact == reference_metrics(y_true, y_pred)["r2"]
    mean = np.mean(y_true)
    naive_sst = np.sum(y_true**2) - y_true.size * mean**2  # the one-pass float formula
    with np.errstate(divide="ignore"):
        naive = 1 - np.sum((y_pred - y_true) ** 2) / naive_sst
    assert not abs(naive - exact) < 1e-3


def test_l2_and_rmse_survive_overflowing_se():
    """Residuals of 1e200: SE overflows to inf, yet L2 and RMSE are finite and exact."""
    y_pred = np.full(4, 1e200)
    metrics = _stats(np.zeros(4), y_pred).metrics()
    assert metrics["se"] == math.inf
    assert metrics["l2"] == 2e200
    assert metrics["rmse"] == 1e200
    assert_bit_identical(metrics, reference_metrics(np.zeros(4), y_pred))


def test_l2_and_rmse_survive_underflowing_se():
    """Residuals of 1e-200: SE underflows to 0, yet L2 and RMSE are exact."""
    y_pred = np.array([1e-200, -1e-200, 3e-200])
    metrics = _stats(np.zeros(3), y_pred).metrics()
    assert metrics["se"] == 0.0
    assert metrics["l2"] == fraction_sqrt(sum(Fraction(v) ** 2 for v in y_pred.tolist()))
    assert metrics["l2"] > 3e-200
    assert_bit_identical(metrics, reference_metrics(np.zeros(3), y_pred))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_agrees_with_sklearn(weighted):
    """MSE, RMSE, MAE, max error and R² agree with scikit-learn within its float error."""
    y_true = RNG.normal(5.0, 2.0, 5000)
    y_pred = y_true + RNG.normal(0.0, 0.5, 5000)
    weight = RNG.random(5000) if weighted else None
    metrics = _stats(y_true, y_pred, weight).metrics()
    kw = {"sample_weight": weight}
    expected = {
        "mse": skm.mean_squared_error(y_true, y_pred, **kw),
        "rmse": skm.root_mean_squared_error(y_true, y_pred, **kw),
        "mae": skm.mean_absolute_error(y_true, y_pred, **kw),
        "r2": skm.r2_score(y_true, y_pred, **kw),
    }
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-12), key
    if not weighted:
        assert metrics["max_error"] == skm.max_error(y_true, y_pred)


@given(rows(), rows())
def test_merge_is_commutative(a, b):
    """a.merge(b) == b.merge(a), exactly."""
    sa, sb = _stats(*a), _stats(*b)
    assert sa.merge(sb) == sb.merge(sa)


@given(rows(weighted=True), rows(weighted=True), rows(weighted=True))
def test_merge_is_associative(a, b, c):
    """(a + b) + c == a + (b + c), exactly."""
    sa, sb, sc = _stats(*a), _stats(*b), _stats(*c)
    assert sa.merge(sb).merge(sc) == sa.merge(sb.merge(sc))


@given(rows())
def test_empty_is_identity(a):
    """Merging with the empty statistics changes nothing."""
    stats = _stats(*a)
    assert stats.merge(ErrorStats.empty()) == stats == ErrorStats.empty().merge(stats)
    assert _stats(np.empty(0), np.empty(0)) == ErrorStats.empty()


@settings(deadline=None)
@given(rows(max_size=60).flatmap(lambda r: st.tuples(st.just(r), split_points(len(r[0])))))
def test_split_invariance(data):
    """Statistics of the whole equal the merge of the statistics of any split."""
    (y_true, y_pred, weight), cuts = data
    bounds = [0, *cuts, len(y_true)]
    pieces = [
        _stats(y_true[lo:hi], y_pred[lo:hi], None if weight is None else weight[lo:hi])
        for lo, hi in itertools.pairwise(bounds)
    ]
    assert ErrorStats.merge_all(pieces) == _stats(y_true, y_pred, weight)


@settings(deadline=None)
@given(rows(min_size=2), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(data, random):
    """Shuffling the rows gives bit-identical statistics and metrics."""
    y_true, y_pred, weight = data
    order = list(range(len(y_true)))
    random.shuffle(order)
    shuffled = _stats(y_true[order], y_pred[order], None if weight is None else weight[order])
    assert shuffled == _stats(y_true, y_pred, weight)


@settings(deadline=None, max_examples=25)
@given(long_rows().flatmap(lambda r: st.tuples(st.just(r), long_split_points(len(r[0])))))
def test_split_invariance_across_kernel_stretches(data):
    """Cuts anywhere in inputs longer than several stretches (at and next to their boundaries,
    where the window paths hand over) merge to the statistics of the whole, exactly."""
    (y_true, y_pred, weight), cuts = data
    bounds = [0, *cuts, len(y_true)]
    pieces = [
        _stats(y_true[lo:hi], y_pred[lo:hi], None if weight is None else weight[lo:hi])
        for lo, hi in itertools.pairwise(bounds)
    ]
    assert ErrorStats.merge_all(pieces) == _stats(y_true, y_pred, weight)


@settings(deadline=None, max_examples=15)
@given(long_rows(), st.integers(0, 2**32 - 1))
def test_long_inputs_in_any_row_order(data, seed):
    """Shuffling thousands of rows (every stretch's window placed anew) changes no bit."""
    y_true, y_pred, weight = data
    order = np.random.default_rng(seed).permutation(len(y_true))
    shuffled = _stats(y_true[order], y_pred[order], None if weight is None else weight[order])
    assert shuffled == _stats(y_true, y_pred, weight)


def test_merge_all_equals_pairwise_merges():
    """merge_all over many parts equals a left fold of merge."""
    parts = [_stats(RNG.normal(size=n), RNG.normal(size=n)) for n in (0, 1, 5, 100)]
    folded = ErrorStats.empty()
    for part in parts:
        folded = folded.merge(part)
    assert ErrorStats.merge_all(parts) == folded


def test_nan_policy_error_names_column_and_count():
    """A NaN under the default policy raises, naming the column and the count."""
    with pytest.raises(NonFiniteValueError, match=r"2 in 'pred'.*nan_policy='skip'"):
        _stats(np.ones(3), np.array([np.nan, 1.0, np.inf]), columns=("true", "pred", None))


def test_nan_policy_error_for_weight():
    """A NaN weight raises too."""
    with pytest.raises(NonFiniteValueError, match="1 in 'weight'"):
        _stats(np.ones(2), np.ones(2), np.array([1.0, np.nan]))


def test_nan_policy_skip_drops_and_counts():
    """Under 'skip' the bad rows are left out and counted, the rest evaluated exactly."""
    y_true = np.array([1.0, np.nan, 3.0, 4.0, -np.inf])
    y_pred = np.array([2.0, 2.0, np.nan, 5.0, 1.0])
    stats = _stats(y_true, y_pred, nan_policy="skip")
    assert stats.skipped_rows == 3
    assert stats.count == 2
    assert_bit_identical(stats.metrics(), reference_metrics(y_true[[0, 3]], y_pred[[0, 3]]))


def test_negative_weight_is_an_error():
    """Negative weights are refused whatever the NaN policy."""
    with pytest.raises(DataError, match="negative weight"):
        _stats(np.ones(2), np.ones(2), np.array([1.0, -0.5]), nan_policy="skip")


def test_overflowing_residual_is_an_error():
    """A residual that overflows float64 is an error, not an infinite metric."""
    with pytest.raises(DataError, match="overflows float64"):
        _stats(np.array([-1.7e308]), np.array([1.7e308]))


def test_non_numeric_is_a_schema_error():
    """String arrays are refused with the column name."""
    with pytest.raises(SchemaError, match=r"'y_pred'.*numeric"):
        _stats(np.ones(2), np.array(["a", "b"]))


def test_length_mismatch_is_a_schema_error():
    """Arrays of different lengths are refused."""
    with pytest.raises(SchemaError, match="different lengths"):
        _stats(np.ones(2), np.ones(3))


def test_integers_are_exact_or_refused():
    """Integer columns are used when exact in float64 and refused beyond 2**53."""
    ints = _stats(np.arange(10, 20), np.arange(10)).metrics()
    assert ints["mse"] == 100.0
    with pytest.raises(SchemaError, match="2\\*\\*53"):
        _stats(np.array([2**60 + 1]), np.array([0]))


def test_unknown_nan_policy_is_refused():
    """A mistyped policy is an error, not silently 'error'."""
    with pytest.raises(ValueError, match="nan_policy"):
        _stats(np.ones(1), np.ones(1), nan_policy="ignore")


def test_zero_weight_rows_do_not_set_max_error():
    """max_error is over rows with positive weight."""
    stats = _stats(np.zeros(2), np.array([100.0, 1.0]), np.array([0.0, 1.0]))
    assert stats.metrics()["max_error"] == 1.0
    assert stats.count == 2


def test_empty_metrics_are_nan():
    """Means over no rows are NaN; sums are zero."""
    metrics = ErrorStats.empty().metrics()
    assert metrics["count"] == 0 and metrics["se"] == 0.0
    assert math.isnan(metrics["mse"]) and math.isnan(metrics["r2"])


def test_constant_target_r2_is_nan():
    """R² of a constant target is undefined: NaN, not a made-up 0 or 1."""
    assert math.isnan(_stats(np.ones(3), np.array([1.0, 2.0, 3.0])).metrics()["r2"])


def test_dict_round_trip_through_json():
    """to_dict/from_dict survive JSON exactly, so saved statistics merge across runs."""
    stats = _stats(RNG.normal(size=50), RNG.normal(size=50), RNG.random(50))
    assert ErrorStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats


def test_pickle_round_trip():
    """Statistics pickle exactly (they travel between Dask workers)."""
    stats = _stats(RNG.normal(size=50), RNG.normal(size=50))
    assert pickle.loads(pickle.dumps(stats)) == stats


def test_exact_accessor():
    """exact() returns the exact Fraction of a summed field."""
    stats = _stats(np.array([0.0, 0.0]), np.array([0.1, 0.2]))
    assert stats.exact("squared_error") == Fraction(0.1) ** 2 + Fraction(0.2) ** 2
    with pytest.raises(KeyError):
        stats.exact("count")
