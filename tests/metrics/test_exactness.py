"""daskloss.metrics against the exact reference, and the same bits however the rows are cut."""

from __future__ import annotations

import itertools
import math

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from daskloss import metrics
from daskloss.errors import ZeroWeightError
from tests.metrics.reference import SINGLE_OUTPUT, exact_metric
from tests.metrics.sklearn_suite import same_bits
from tests.strategies import split_points, values, weights

#: Metrics exact from the residual alone: any finite data whose residuals do not overflow.
RESIDUAL = (
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_absolute_error",
    "sum_squared_error",
    "l2_norm",
    "r2_score",
    "explained_variance_score",
)
#: Metrics of a float per-row term, with the parameters tried, on positive data.
TERMS = (
    ("mean_squared_log_error", {}),
    ("root_mean_squared_log_error", {}),
    ("mean_absolute_percentage_error", {}),
    ("mean_pinball_loss", {"alpha": 0.1}),
    ("mean_pinball_loss", {"alpha": 0.5}),
    ("mean_tweedie_deviance", {"power": 0}),
    ("mean_tweedie_deviance", {"power": -1.5}),
    ("mean_tweedie_deviance", {"power": 1.5}),
    ("mean_tweedie_deviance", {"power": 3}),
    ("mean_poisson_deviance", {}),
    ("mean_gamma_deviance", {}),
    ("max_error", {}),
)
MULTIOUTPUT = st.sampled_from(["raw_values", "uniform_average", "variance_weighted", "weights"])


def _call(name, y_true, y_pred, sample_weight=None, **params):
    if name == "max_error":
        return metrics.max_error(y_true, y_pred)
    if name not in SINGLE_OUTPUT and params.get("multioutput") == "variance_weighted":
        if name not in ("r2_score", "explained_variance_score"):
            params["multioutput"] = "uniform_average"
    return getattr(metrics, name)(y_true, y_pred, sample_weight=sample_weight, **params)


def _expected(name, y_true, y_pred, sample_weight=None, **params):
    if name not in SINGLE_OUTPUT and params.get("multioutput") == "variance_weighted":
        if name not in ("r2_score", "explained_variance_score"):
            params["multioutput"] = "uniform_average"
    return exact_metric(name, y_true, y_pred, sample_weight, **params)


def _output_weights(draw_multioutput, k, rng):
    if draw_multioutput != "weights":
        return draw_multioutput
    return (rng.random(k) * 4 - 1).tolist() if k > 1 else "uniform_average"


def _dask(array: np.ndarray, cuts: list[int]) -> da.Array:
    """``array`` as a Dask array cut at ``cuts`` (empty chunks allowed)."""
    bounds = [0, *cuts, len(array)]
    chunks = tuple(high - low for low, high in itertools.pairwise(bounds))
    return da.from_array(array, chunks=(chunks, *array.shape[1:]))


@st.composite
def _data(draw, positive: bool = False, signed_weights: bool = False):
    n = draw(st.integers(2, 30))
    k = draw(st.integers(1, 3))
    element = st.floats(1e-3, 1e3) if positive else values
    y_true = np.array(draw(st.lists(element, min_size=n * k, max_size=n * k))).reshape(n, k)
    y_pred = np.array(draw(st.lists(element, min_size=n * k, max_size=n * k))).reshape(n, k)
    weight_values = st.one_of(weights, weights.map(lambda w: -w)) if signed_weights else weights
    weight = draw(st.one_of(st.none(), st.lists(weight_values, min_size=n, max_size=n)))
    return y_true, y_pred, None if weight is None else np.array(weight), draw(split_points(n))


@settings(max_examples=40, deadline=None)
@given(data=_data(), multioutput=MULTIOUTPUT, name=st.sampled_from(RESIDUAL))
def test_residual_metrics_are_the_exact_reference(data, multioutput, name):
    """Metrics of wide-ranging data equal the Fraction reference, for NumPy and Dask inputs."""
    y_true, y_pred, weight, cuts = data
    multioutput = _output_weights(multioutput, y_true.shape[1], np.random.default_rng(0))
    _assert_exact(name, y_true, y_pred, weight, cuts, multioutput=multioutput)


@settings(max_examples=40, deadline=None)
@given(data=_data(positive=True), metric=st.sampled_from(TERMS))
def test_per_row_term_metrics_are_exact_sums_of_the_terms(data, metric):
    """Per-row-term metrics equal the exact mean of the float terms, for NumPy and Dask inputs."""
    y_true, y_pred, weight, cuts = data
    name, params = metric
    if name in SINGLE_OUTPUT:
        y_true, y_pred = y_true[:, 0], y_pred[:, 0]
    _assert_exact(name, y_true, y_pred, None if name == "max_error" else weight, cuts, **params)


def _assert_exact(name, y_true, y_pred, weight, cuts, **params):
    """The metric of NumPy inputs and of Dask arrays cut at ``cuts`` is the reference."""
    if weight is not None and not weight.any():
        weight[0] = 1.0
    expected = _expected(name, y_true, y_pred, weight, **params)
    assert same_bits(_call(name, y_true, y_pred, weight, **params), expected)
    lazy = _call(name, _dask(y_true, cuts), _dask(y_pred, cuts), weight, **params)
    assert same_bits(lazy, expected)


@settings(max_examples=30, deadline=None)
@given(data=_data(signed_weights=True), name=st.sampled_from(RESIDUAL))
def test_negative_weights_are_exact(data, name):
    """Weights of either sign give the exact reference (or ZeroWeightError when they cancel)."""
    y_true, y_pred, weight, _ = data
    if weight is None or not weight.any():
        weight = np.linspace(-1.0, 2.0, len(y_true))
    try:
        expected = _expected(name, y_true, y_pred, weight, multioutput="raw_values")
    except ZeroDivisionError:
        with pytest.raises(ZeroWeightError):
            _call(name, y_true, y_pred, weight, multioutput="raw_values")
        return
    expected = np.where(np.isnan(expected), np.nan, expected)
    with np.errstate(invalid="ignore"):
        assert same_bits(_call(name, y_true, y_pred, weight, multioutput="raw_values"), expected)


def _long_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows over 40 binades with residuals that cancel: inexact float sums, every kernel path."""
    rng = np.random.default_rng(seed)
    magnitude = 10.0 ** rng.integers(-20, 20, n)
    y_true = rng.normal(size=n) * magnitude
    y_pred = y_true * (1 + rng.normal(size=n) * 1e-9) + rng.choice([0.0, 1e-12, -1e12], n)
    weight = rng.exponential(size=n) * 10.0 ** rng.integers(-5, 5, n)
    return y_true, y_pred, weight


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_long_inputs_give_the_same_bits_whatever_the_chunks(weighted):
    """NumPy, Dask arrays of 1, 7 and 64 chunks and a Dask DataFrame give the same bits."""
    y_true, y_pred, weight = _long_data(7, 20_000)
    weight = weight if weighted else None
    expected = metrics.regression_metrics(y_true, y_pred, sample_weight=weight)
    for chunks in (20_000, -(-20_000 // 7), -(-20_000 // 64)):
        found = metrics.regression_metrics(
            da.from_array(y_true, chunks=chunks),
            da.from_array(y_pred, chunks=chunks),
            sample_weight=None if weight is None else da.from_array(weight, chunks=chunks),
        )
        assert all(same_bits(found[key], expected[key]) for key in expected), chunks
    frame = dd.from_pandas(
        pd.DataFrame({"y": y_true, "p": y_pred, "w": weight if weighted else 1.0}),
        npartitions=7,
    )
    found = metrics.regression_metrics(
        frame.y, frame.p, sample_weight=frame.w if weighted else None
    )
    assert all(same_bits(found[key], expected[key]) for key in expected)


@pytest.mark.parametrize("name", RESIDUAL)
def test_long_inputs_are_the_exact_reference(name):
    """Over 4096 rows of cancelling data (every kernel path), each metric is the reference."""
    y_true, y_pred, weight = _long_data(11, 9_000)
    assert same_bits(_call(name, y_true, y_pred, weight), _expected(name, y_true, y_pred, weight))


def test_float_sums_differ_from_scikit_learn_but_not_from_the_reference():
    """Where float sums are inexact scikit-learn is off by a few ulp at times; daskloss never is."""
    rng = np.random.default_rng(3)
    differ = 0
    for _ in range(10):
        y_true, y_pred = rng.random(1000), rng.random(1000)
        found = metrics.mean_squared_error(y_true, y_pred)
        assert same_bits(found, _expected("mean_squared_error", y_true, y_pred))
        theirs = skm.mean_squared_error(y_true, y_pred)
        assert abs(found - theirs) <= 4 * math.ulp(found)
        differ += found != theirs
    assert differ


@pytest.mark.parametrize(
    ("name", "params"),
    [
        *((name, {}) for name in RESIDUAL if name not in ("sum_squared_error", "l2_norm")),
        ("mean_pinball_loss", {"alpha": 0.5}),
        ("mean_tweedie_deviance", {"power": 0}),
        ("max_error", {}),
    ],
)
def test_equal_to_scikit_learn_where_its_sums_are_exact(name, params):
    """Small integers: scikit-learn's float sums are exact, and both agree to the last bit."""
    y_true = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=float)
    y_pred = np.array([2, 7, 1, 8, 2, 8, 1, 8], dtype=float)
    expected = getattr(skm, name)(y_true, y_pred, **params)
    assert same_bits(_call(name, y_true, y_pred, **params), float(expected))
