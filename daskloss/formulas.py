"""Every metric formula, in one place, each rounded once from its exact value.

With ``d = fl(y_pred - y_true)``, weights ``w`` (1 when absent) and ``W = sum(w)``:

=============  =====================================================
``count``      rows evaluated (an int)
``weight_sum`` ``W``
``se``         ``SE = sum(w * d**2)``
``mse``        ``SE / W``
``rmse``       ``sqrt(SE / W)``
``l2``         ``sqrt(SE)``, the Euclidean norm of ``sqrt(w) * d``
``ae``         ``AE = sum(w * |d|)``, the L1 norm
``mae``        ``AE / W``
``max_error``  ``max |d|`` over rows with ``w > 0`` (the L-infinity norm)
``bias``       ``sum(w * d) / W``, the mean signed error (prediction minus target)
``r2``         ``1 - SE / SST`` with ``SST = sum(w * y**2) - sum(w * y)**2 / W``
=============  =====================================================

Each value is the float64 nearest to the exact real number (ties to even), so
it does not depend on how rows were split or merged. A metric that is
undefined (a mean over zero weight, R² of a constant target) is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

import numpy as np

from daskloss.errors import ZeroWeightError
from daskloss.exact import (
    FRACTION_BITS,
    Expression,
    round_expression,
    round_fraction,
    round_ratio,
    round_sqrt_ratio,
    round_sqrt_sum,
)
from daskloss.names import METRIC_NAMES

if TYPE_CHECKING:
    from daskloss.termstats import SignedStats

__all__ = [
    "COMPARED_METRICS",
    "INTERVAL_METRICS",
    "METRIC_NAMES",
    "Z95",
    "PairedStats",
    "Root",
    "SufficientStats",
    "Value",
    "ValueKind",
    "average_values",
    "compare",
    "compute_metrics",
    "explained_fraction",
    "intervals",
    "output_value",
    "round_value",
]

_UNIT = 1 << FRACTION_BITS


class SufficientStats(Protocol):
    """The exact sums the formulas need (see :class:`daskloss.ErrorStats`)."""

    @property
    def count(self) -> int: ...
    @property
    def weight_sum(self) -> int: ...
    @property
    def squared_error(self) -> int: ...
    @property
    def abs_error(self) -> int: ...
    @property
    def signed_error(self) -> int: ...
    @property
    def target_sum(self) -> int: ...
    @property
    def target_squared(self) -> int: ...
    @property
    def max_abs_error(self) -> float: ...
    @property
    def weight_squared(self) -> int | None: ...
    @property
    def fourth_power(self) -> int | None: ...


def compute_metrics(stats: SufficientStats) -> dict[str, float | int]:
    """All metrics of ``stats`` as plain Python numbers, keyed as :data:`METRIC_NAMES`.

    Examples
    --------
    >>> import numpy as np
    >>> from daskloss.stats import ErrorStats
    >>> stats = ErrorStats.from_arrays(np.arange(10.0, 20.0), np.arange(10.0))
    >>> compute_metrics(stats)["rmse"]
    10.0
    """
    total_weight = stats.weight_sum

    def per_weight(exact_sum: int) -> float:
        return round_ratio(exact_sum, total_weight) if total_weight > 0 else math.nan

    return {
        "count": stats.count,
        "weight_sum": round_ratio(total_weight, _UNIT),
        "se": round_ratio(stats.squared_error, _UNIT),
        "mse": per_weight(stats.squared_error),
        "rmse": (
            round_sqrt_ratio(stats.squared_error, total_weight) if total_weight > 0 else math.nan
        ),
        "l2": round_sqrt_ratio(stats.squared_error, _UNIT),
        "ae": round_ratio(stats.abs_error, _UNIT),
        "mae": per_weight(stats.abs_error),
        "max_error": stats.max_abs_error,
        "bias": per_weight(stats.signed_error),
        "r2": _r_squared(stats),
    }


def _r_squared(stats: SufficientStats) -> float:
    """``1 - SE / SST`` exactly, as ``(W*Syy - Sy**2 - SE*W) / (W*Syy - Sy**2)``."""
    total_weight = stats.weight_sum
    spread = total_weight * stats.target_squared - stats.target_sum**2  # = W * SST, >= 0
    if total_weight <= 0 or spread == 0:
        return math.nan
    return round_ratio(spread - stats.squared_error * total_weight, spread)


# The metrics of :mod:`daskloss.metrics`: scikit-learn's definitions, exact.
#
# Each output's value is exact (a Fraction, or the square root of one) when
# every sum is finite, so that averaging over outputs rounds once too. A sum
# that overflowed (``SignedStats.nonfinite``) makes the value infinite or NaN,
# computed in IEEE arithmetic as scikit-learn would.

#: How an output's value comes from the sums of its term.
ValueKind = Literal["mse", "rmse", "mae", "sse", "l2", "mean", "max", "r2", "evs"]
_NONFINITE_INDEX = {"squared_error": 0, "abs_error": 1, "signed_error": 2}


class Root(NamedTuple):
    """The exact value ``sqrt(radicand)``."""

    radicand: Fraction


#: An exact value, or a float that is NaN or infinite.
Value = Fraction | Root | float


def output_value(
    kind: ValueKind, sums: SignedStats, *, force_finite: bool = True
) -> tuple[Value, Fraction]:
    """One output's exact value, and its weight under ``multioutput='variance_weighted'``.

    ``kind`` names the formula (with ``W = sum(w)``, ``d`` the term's residual):
    ``mse`` ``sum(w d²)/W``, ``rmse`` its square root, ``mae`` ``sum(w |d|)/W``,
    ``sse`` ``sum(w d²)``, ``l2`` its square root, ``mean`` ``sum(w d)/W`` (the
    mean of a per-row term), ``max`` ``max |d|``, ``r2`` and ``evs`` (see
    :func:`explained_fraction`). The weight is the variance of ``y_true``
    (``r2``: its weighted sum of squares about the mean), else 1.

    Raises
    ------
    ZeroWeightError
        A mean over weights that sum to exactly zero.
    """
    total = sums.total()
    weight = _exact(total.weight_sum)
    if kind in ("sse", "l2", "max"):
        if kind == "max":
            return total.max_abs_error, Fraction(1)
        squares = _sum(sums, "squared_error")
        return (squares if kind == "sse" else _root(squares)), Fraction(1)
    if weight == 0:
        raise ZeroWeightError("Weights sum to zero, can't be normalized")
    if kind in ("r2", "evs"):
        numerator, denominator = _explained_parts(kind, sums, weight)
        return explained_fraction(numerator, denominator, force_finite), denominator
    field = {"mse": "squared_error", "rmse": "squared_error", "mae": "abs_error"}.get(
        kind, "signed_error"
    )
    mean = _divide(_sum(sums, field), weight)
    return (_root(mean) if kind == "rmse" else mean), Fraction(1)


def explained_fraction(numerator: Value, denominator: Fraction, force_finite: bool) -> Value:
    """``1 - numerator / denominator``, scikit-learn's R² and explained variance.

    With ``force_finite``, a zero numerator gives 1 and a zero denominator
    (a constant target) gives 0, instead of NaN and -inf. Here both tests
    are exact, where scikit-learn tests its rounded sums.
    """
    if isinstance(numerator, float):
        if force_finite and denominator == 0:
            return 0.0
        return _ieee(lambda: 1 - np.float64(numerator) / round_fraction(denominator))
    if force_finite and numerator == 0:
        return Fraction(1)
    if denominator == 0:
        if force_finite:
            return Fraction(0)
        return math.nan if numerator == 0 else math.copysign(math.inf, -numerator)
    assert isinstance(numerator, Fraction)
    return 1 - numerator / denominator


def round_value(value: Value) -> float:
    """The float64 nearest to an exact value (NaN and infinities as they are)."""
    if isinstance(value, Root):
        return round_sqrt_ratio(value.radicand.numerator, value.radicand.denominator)
    if isinstance(value, Fraction):
        return round_fraction(value)
    return float(value)


def average_values(values: Sequence[Value], weights: Sequence[Fraction] | None = None) -> float:
    """``sum(w * v) / sum(w)`` over outputs, correctly rounded once (1 for every weight if None).

    Raises
    ------
    ZeroWeightError
        Weights that sum to zero.
    """
    weights = list(weights) if weights is not None else [Fraction(1)] * len(values)
    total = sum(weights, Fraction(0))
    if total == 0:
        raise ZeroWeightError("Weights sum to zero, can't be normalized")
    if any(isinstance(v, float) for v in values):
        # A NaN or an infinity decides the sum whatever the finite terms (and 0 * inf is
        # NaN, as in np.average): IEEE arithmetic gives the result.
        floats = np.array([round_value(v) for v in values])
        scales = np.array([round_fraction(w) for w in weights])
        return _ieee(lambda: np.sum(floats * scales) / round_fraction(total))
    if not any(isinstance(v, Root) for v in values):
        return round_fraction(
            sum((w * v for w, v in zip(weights, values, strict=True)), Fraction(0)) / total
        )  # type: ignore[operator]
    terms = [
        (w, v.radicand) if isinstance(v, Root) else (w if v >= 0 else -w, v * v)
        for w, v in zip(weights, values, strict=True)
    ]
    return round_sqrt_sum(terms, total)


def _explained_parts(
    kind: ValueKind, sums: SignedStats, weight: Fraction
) -> tuple[Value, Fraction]:
    """The numerator and denominator of R² (weighted sums of squares) or of explained variance."""
    total = sums.total()
    target, squares = _exact(total.target_sum), _exact(total.target_squared)
    if kind == "r2":
        return _sum(sums, "squared_error"), squares - target * target / weight
    denominator = squares / weight - (target / weight) ** 2
    residual, signed = _sum(sums, "squared_error"), _sum(sums, "signed_error")
    if isinstance(residual, float) or isinstance(signed, float):
        scale = round_fraction(weight)
        return _ieee(
            lambda: np.float64(residual) / scale - (np.float64(signed) / scale) ** 2
        ), denominator
    return residual / weight - (signed / weight) ** 2, denominator


def _sum(sums: SignedStats, field: str) -> Fraction | float:
    """An exact sum over the rows, or the IEEE sum of its overflowed contributions."""
    overflowed = sums.nonfinite[_NONFINITE_INDEX[field]]
    return overflowed if overflowed else _exact(getattr(sums.total(), field))


def _divide(value: Fraction | float, weight: Fraction) -> Fraction | float:
    if isinstance(value, float):
        return _ieee(lambda: np.float64(value) / round_fraction(weight))
    return value / weight


def _root(value: Fraction | float) -> Value:
    """The square root: exact, or NaN for a negative value (negative weights), as np.sqrt."""
    if isinstance(value, float):
        return _ieee(lambda: np.sqrt(value))
    return Root(value) if value >= 0 else math.nan


def _exact(value: int) -> Fraction:
    return Fraction(value, _UNIT)


def _ieee(compute: Callable[[], Any]) -> float:
    with np.errstate(all="ignore"):
        return float(compute())


# --- Paired comparisons ------------------------------------------------------------------------

#: The 0.975 quantile of the standard normal distribution, as the float64 nearest it;
#: a 95% interval is ``difference ± Z95 * stderr``, with Z95 taken as that exact float.
Z95 = 1.959963984540054
#: The metrics a comparison reports the difference of.
COMPARED_METRICS: tuple[str, ...] = ("mse", "mae", "rmse")


class PairedStats(Protocol):
    """The cross moments a comparison needs (see :class:`daskloss.PairStats`)."""

    @property
    def squared_product(self) -> int: ...
    @property
    def abs_product(self) -> int: ...


def compare(
    prediction: SufficientStats, baseline: SufficientStats, pair: PairedStats
) -> dict[str, dict[str, Any]]:
    """Differences of MSE, MAE and RMSE (``prediction - baseline``) on the same rows.

    For each metric: ``difference``, its ``stderr``, the 95% interval ``low``
    to ``high``, whether the interval ``excludes_zero`` and, if it does, which
    model is ``better`` (lower error): ``"prediction"`` or ``"baseline"``
    (else None). Each number is the correctly rounded float64 of its exact
    value; undefined ones (one row, no moments, a zero MSE for RMSE) are NaN.

    The estimator, for MSE: with per-row ``a = w * (d_p**2 - d_b**2)``, the
    difference is ``sum(a) / W``; its variance is the weighted variance of
    ``d_p**2 - d_b**2`` over ``n_eff - 1``, ``n_eff = W**2 / sum(w**2)`` (for
    unweighted rows, the sample variance over ``n``: the paired t statistic's
    standard error). MAE likewise with ``|d_p| - |d_b|``. RMSE by the delta
    method on the two MSEs. Rows are taken as independent draws; the interval
    is the large-sample normal one.
    """
    unit = Fraction(_UNIT)
    weight = prediction.weight_sum / unit
    found = _variance_scale(prediction) if baseline.fourth_power is not None else None
    defined = found is not None
    scale = found if found is not None else Fraction(0)  # 1 / (n_eff - 1)
    se_p, se_b = Fraction(prediction.squared_error) / unit, Fraction(baseline.squared_error) / unit
    ae_p, ae_b = Fraction(prediction.abs_error) / unit, Fraction(baseline.abs_error) / unit
    results = {}
    if weight:
        mse_p, mse_b = se_p / weight, se_b / weight
        mse = (mse_p - mse_b, None)
        mae = ((ae_p - ae_b) / weight, None)
        if defined:
            fourth_p = Fraction(prediction.fourth_power) / unit
            fourth_b = Fraction(baseline.fourth_power) / unit
            cross_squares = Fraction(pair.squared_product) / unit
            cross_abs = Fraction(pair.abs_product) / unit
            mse = (mse[0], (fourth_p - 2 * cross_squares + fourth_b) / weight - mse[0] ** 2)
            mae = (mae[0], (se_p - 2 * cross_abs + se_b) / weight - mae[0] ** 2)
        results["mse"] = _interval(mse[0], None if mse[1] is None else mse[1] * scale)
        results["mae"] = _interval(mae[0], None if mae[1] is None else mae[1] * scale)
        results["rmse"] = _rmse_interval(
            prediction, baseline, pair, weight, scale if defined else None
        )
    else:
        results = {name: _interval(None, None) for name in COMPARED_METRICS}
    return results


def _interval(difference: Fraction | None, variance: Fraction | None) -> dict[str, Any]:
    """A difference, its standard error and 95% interval, rounded once each."""
    if difference is None:
        return _undefined_interval()
    estimate = round_fraction(difference)
    if variance is None:
        return {**_undefined_interval(), "difference": estimate}
    return _rounded_interval(difference, ("sqrt", variance), estimate)


def _rounded_interval(
    difference: Expression, stderr: Expression, estimate: float
) -> dict[str, Any]:
    bounds = _bounds95(difference, stderr)
    low, high = bounds["low"], bounds["high"]
    excludes = (low > 0 or high < 0) if not math.isnan(low) else False
    return {
        "difference": estimate,
        **bounds,
        "excludes_zero": excludes,
        "better": ("baseline" if low > 0 else "prediction") if excludes else None,
    }


def _bounds95(centre: Expression, stderr: Expression) -> dict[str, float]:
    """``stderr`` and the 95% interval ``centre ± Z95 * stderr``, each rounded once."""
    return {
        "stderr": round_expression(stderr),
        "low": round_expression(("sum", centre, ("times", -Fraction(Z95), stderr))),
        "high": round_expression(("sum", centre, ("times", Fraction(Z95), stderr))),
    }


def _variance_scale(stats: SufficientStats) -> Fraction | None:
    """``1 / (n_eff - 1)`` with ``n_eff = W**2 / sum(w**2)``, the effective number of rows.

    None without moments (``sum(w**2)``, ``sum(w * d**4)``) or for ``n_eff <= 1``.
    """
    if stats.weight_squared is None or stats.fourth_power is None or stats.weight_sum <= 0:
        return None
    unit = Fraction(_UNIT)
    weight = stats.weight_sum / unit
    squares = Fraction(stats.weight_squared) / unit
    spread = weight * weight - squares
    return squares / spread if spread > 0 else None


# --- Uncertainty of each metric --------------------------------------------------------------

#: The metrics :func:`intervals` gives a standard error and a 95% interval for.
INTERVAL_METRICS: tuple[str, ...] = ("mse", "rmse", "mae", "bias")


def intervals(stats: SufficientStats) -> dict[str, dict[str, float]]:
    """Standard error and 95% interval of MSE, RMSE, MAE and bias, from exact moments.

    For each metric of :data:`INTERVAL_METRICS`: ``stderr``, ``low`` and
    ``high`` (``estimate ± Z95 * stderr``), each the correctly rounded
    float64 of its exact value. The estimator is that of :func:`compare`
    for one model: with ``W = sum(w)``, ``n_eff = W**2 / sum(w**2)`` and the
    per-row loss ``l`` (``d**2`` for MSE, ``|d|`` for MAE, ``d`` for bias),
    the mean ``m = sum(w l) / W`` has variance ``s**2 / (n_eff - 1)`` with
    ``s**2 = sum(w l**2) / W - m**2`` (``sum(w d**4)`` for MSE, ``sum(w d**2)``
    for MAE and bias). RMSE by the delta method: ``Var(sqrt(MSE)) =
    Var(MSE) / (4 MSE)``. Intervals are not clipped at zero. Undefined values
    (no moments summed, ``n_eff <= 1``, a zero MSE for RMSE) are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from daskloss.roles import EvaluationSpec
    >>> from daskloss.stats import EvaluationStats
    >>> from daskloss.chunks import Chunk
    >>> spec = EvaluationSpec.of("y", "p", moments=True)
    >>> chunk = Chunk({"y": np.zeros(4), "p": np.array([1.0, -1.0, 3.0, -3.0])}, (("", 4),))
    >>> found = intervals(EvaluationStats.from_chunks([chunk], spec).overall().predictions[0])
    >>> found["bias"]["stderr"], found["mse"]["stderr"]
    (1.2909944487358056, 2.309401076758503)
    """
    scale = _variance_scale(stats)
    if scale is None:
        return {name: _undefined_bounds() for name in INTERVAL_METRICS}
    unit = Fraction(_UNIT)
    weight = stats.weight_sum / unit
    squares = Fraction(stats.squared_error) / unit / weight
    fourth = Fraction(stats.fourth_power) / unit / weight  # type: ignore[arg-type]
    mse = squares
    mae = Fraction(stats.abs_error) / unit / weight
    bias = Fraction(stats.signed_error) / unit / weight
    mse_variance = (fourth - mse * mse) * scale
    found = {
        "mse": _bounds95(mse, ("sqrt", mse_variance)),
        "mae": _bounds95(mae, ("sqrt", (squares - mae * mae) * scale)),
        "bias": _bounds95(bias, ("sqrt", (squares - bias * bias) * scale)),
        "rmse": (
            _bounds95(("sqrt", mse), ("sqrt", mse_variance / (4 * mse)))
            if mse > 0
            else _undefined_bounds()
        ),
    }
    return {name: found[name] for name in INTERVAL_METRICS}


def _undefined_bounds() -> dict[str, float]:
    return {"stderr": math.nan, "low": math.nan, "high": math.nan}


def _undefined_interval() -> dict[str, Any]:
    return {
        "difference": math.nan,
        "stderr": math.nan,
        "low": math.nan,
        "high": math.nan,
        "excludes_zero": False,
        "better": None,
    }


def _rmse_interval(
    prediction: SufficientStats,
    baseline: SufficientStats,
    pair: PairedStats,
    weight: Fraction,
    scale: Fraction | None,
) -> dict[str, Any]:
    """``sqrt(MSE_p) - sqrt(MSE_b)`` and its delta-method standard error.

    ``Var = V_pp / (4 m_p) + V_bb / (4 m_b) - V_pb / (2 sqrt(m_p m_b))`` with
    ``V`` the (co)variances of the two MSE estimates; undefined where an MSE
    is zero.
    """
    unit = Fraction(_UNIT)
    mse_p = Fraction(prediction.squared_error) / unit / weight
    mse_b = Fraction(baseline.squared_error) / unit / weight
    difference: Expression = ("sum", ("sqrt", mse_p), ("times", Fraction(-1), ("sqrt", mse_b)))
    estimate = round_expression(difference)
    if scale is None or mse_p == 0 or mse_b == 0:
        return {**_undefined_interval(), "difference": estimate}
    fourth_p = Fraction(prediction.fourth_power) / unit / weight
    fourth_b = Fraction(baseline.fourth_power) / unit / weight
    cross = Fraction(pair.squared_product) / unit / weight
    var_p = (fourth_p - mse_p**2) * scale
    var_b = (fourth_b - mse_b**2) * scale
    covariance = (cross - mse_p * mse_b) * scale
    variance = (
        "sum",
        var_p / (4 * mse_p) + var_b / (4 * mse_b),
        ("times", -covariance / 2, ("sqrt", 1 / (mse_p * mse_b))),
    )
    return _rounded_interval(difference, ("sqrt", variance), estimate)
