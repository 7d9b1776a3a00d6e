"""Independent references for daskloss.metrics: exact sums of float per-row terms, rounded once.

Nothing here uses daskloss. Each row's term is computed with NumPy the way
scikit-learn 1.9 writes it (the residual ``fl(y_pred - y_true)``, ``log1p``,
the MAPE quotient, the pinball loss, the unit deviance); from there on the
sums are exact dyadic rationals (:class:`fractions.Fraction`), square roots
are rounded by exact comparison (:func:`tests.reference.fraction_sqrt`) and
averages of square roots by :mod:`decimal` arithmetic of growing precision.
"""

from __future__ import annotations

import decimal
import math
from fractions import Fraction
from typing import Any

import numpy as np

from tests.reference import fraction_float, fraction_sqrt

EPSILON = float(np.finfo(np.float64).eps)
#: The metrics without ``multioutput``.
SINGLE_OUTPUT = frozenset(
    {"max_error", "mean_tweedie_deviance", "mean_poisson_deviance", "mean_gamma_deviance"}
)


def exact_metric(
    name: str,
    y_true: Any,
    y_pred: Any,
    sample_weight: Any = None,
    *,
    multioutput: Any = "uniform_average",
    force_finite: bool = True,
    alpha: float = 0.5,
    power: float = 0,
) -> Any:
    """The reference value of ``daskloss.metrics.<name>`` for finite inputs."""
    y_true, y_pred = _matrix(y_true), _matrix(y_pred)
    n, k = y_true.shape
    weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = [Fraction(v) for v in weight.tolist()]
    total = exact_sum(w)
    outputs = [
        _output(name, y_true[:, j], y_pred[:, j], w, total, force_finite, alpha, power)
        for j in range(k)
    ]
    values = [value for value, _ in outputs]
    if name in SINGLE_OUTPUT:
        return _round(values[0])
    if isinstance(multioutput, str) and multioutput == "raw_values":
        return np.array([_round(v) for v in values])
    if multioutput is None or (isinstance(multioutput, str) and multioutput == "uniform_average"):
        weights = [Fraction(1)] * k
    elif isinstance(multioutput, str):  # variance_weighted
        weights = [den for _, den in outputs]
        if not any(weights):
            weights = [Fraction(1)] * k
    else:
        weights = [Fraction(float(v)) for v in np.asarray(multioutput, dtype=np.float64)]
    return average(values, weights)


def exact_sum(values: list[Fraction]) -> Fraction:
    """The exact sum of Fractions, quickly when they are dyadic (denominators powers of two)."""
    if not all(v.denominator & (v.denominator - 1) == 0 for v in values):
        return sum(values, Fraction(0))
    if not values:
        return Fraction(0)
    denominator = max(v.denominator for v in values)
    return Fraction(sum(v.numerator * (denominator // v.denominator) for v in values), denominator)


def average(values: list[Any], weights: list[Fraction]) -> float:
    """``sum(w * v) / sum(w)`` rounded once; a value is a Fraction or ``("sqrt", q)``."""
    divisor = sum(weights, Fraction(0))
    if all(isinstance(v, Fraction) for v in values):
        return fraction_float(
            sum((w * v for w, v in zip(weights, values, strict=True)), Fraction(0)) / divisor
        )
    return round_root_sum([(w, v[1]) for w, v in zip(weights, values, strict=True)], divisor)


def pinball_terms(y_true: np.ndarray, y_pred: np.ndarray, alpha: float) -> np.ndarray:
    diff = y_true - y_pred
    sign = (diff >= 0).astype(diff.dtype)
    return alpha * sign * diff - (1 - alpha) * (1 - sign) * diff


def tweedie_terms(y_true: np.ndarray, y_pred: np.ndarray, power: float) -> np.ndarray:
    p = power
    with np.errstate(all="ignore"):
        if p == 1:
            ratio = y_true * np.log(y_true / y_pred)
            return 2 * (np.where(y_true == 0, 0.0, ratio) - y_true + y_pred)
        if p == 2:
            return 2 * (np.log(y_pred / y_true) + y_true / y_pred - 1)
        base = np.where(y_true > 0, y_true, 0.0) if p < 0 else y_true
        return 2 * (
            np.power(base, 2 - p) / ((1 - p) * (2 - p))
            - y_true * np.power(y_pred, 1 - p) / (1 - p)
            + np.power(y_pred, 2 - p) / (2 - p)
        )


def _output(
    name: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    w: list[Fraction],
    total: Fraction,
    force_finite: bool,
    alpha: float,
    power: float,
) -> tuple[Any, Fraction]:
    """One output's exact value (a Fraction, or ``("sqrt", q)``) and its variance weight."""
    if name in ("mean_squared_log_error", "root_mean_squared_log_error"):
        y_true, y_pred = np.log1p(y_true), np.log1p(y_pred)
    d = [Fraction(v) for v in (y_pred - y_true).tolist()]
    if name == "max_error":
        return max(abs(v) for v in d), Fraction(1)
    squares = exact_sum([wi * di * di for wi, di in zip(w, d, strict=True)])
    if name in ("sum_squared_error", "l2_norm"):
        return (squares if name == "sum_squared_error" else ("sqrt", squares)), Fraction(1)
    if name in ("r2_score", "explained_variance_score"):
        y = [Fraction(v) for v in y_true.tolist()]
        mean_y = exact_sum([wi * yi for wi, yi in zip(w, y, strict=True)]) / total
        spread = exact_sum([wi * (yi - mean_y) ** 2 for wi, yi in zip(w, y, strict=True)])
        if name == "r2_score":
            return _explained(squares, spread, force_finite), spread
        mean_d = exact_sum([wi * di for wi, di in zip(w, d, strict=True)]) / total
        variance = exact_sum([wi * (di - mean_d) ** 2 for wi, di in zip(w, d, strict=True)]) / total
        return _explained(variance, spread / total, force_finite), spread / total
    if name in ("mean_squared_error", "mean_squared_log_error") or (
        name == "mean_tweedie_deviance" and power == 0
    ):
        return squares / total, Fraction(1)
    if name in ("root_mean_squared_error", "root_mean_squared_log_error"):
        return ("sqrt", squares / total), Fraction(1)
    if name == "mean_absolute_error":
        return exact_sum([wi * abs(di) for wi, di in zip(w, d, strict=True)]) / total, Fraction(1)
    if name == "mean_absolute_percentage_error":
        terms = np.abs(y_pred - y_true) / np.maximum(np.abs(y_true), EPSILON)
    elif name == "mean_pinball_loss":
        terms = pinball_terms(y_true, y_pred, alpha)
    else:
        fixed = {"mean_poisson_deviance": 1, "mean_gamma_deviance": 2}
        terms = tweedie_terms(y_true, y_pred, fixed.get(name, power))
    t = [Fraction(v) for v in terms.tolist()]
    return exact_sum([wi * ti for wi, ti in zip(w, t, strict=True)]) / total, Fraction(1)


def _explained(numerator: Fraction, denominator: Fraction, force_finite: bool) -> Any:
    if force_finite and numerator == 0:
        return Fraction(1)
    if denominator == 0:
        if force_finite:
            return Fraction(0)
        return math.nan if numerator == 0 else math.copysign(math.inf, -numerator)
    return 1 - numerator / denominator


def _round(value: Any) -> float:
    if isinstance(value, tuple):  # a square root: NaN of a negative sum (negative weights)
        return fraction_sqrt(value[1]) if value[1] >= 0 else math.nan
    if isinstance(value, Fraction):
        return fraction_float(value)
    return value


def round_root_sum(terms: list[tuple[Fraction, Fraction]], divisor: Fraction) -> float:
    """``sum(c * sqrt(q)) / divisor`` rounded once, by decimal intervals of growing precision."""
    for digits in (60, 120, 240, 480, 960, 1920):
        with decimal.localcontext() as context:
            context.prec = digits
            low = high = Fraction(0)
            for c, q in terms:
                estimate = Fraction(_decimal(q, context).sqrt(context))
                slack = estimate * Fraction(1, 10 ** (digits - 5))  # both roundings are relative
                ends = (c * (estimate - slack), c * (estimate + slack))
                low, high = low + min(ends), high + max(ends)
        ends = sorted((low / divisor, high / divisor))
        rounded = (fraction_float(ends[0]), fraction_float(ends[1]))
        if rounded[0] == rounded[1]:
            return rounded[0]
    raise AssertionError("the average of square roots lies too close to a rounding boundary")


def _decimal(value: Fraction, context: decimal.Context) -> decimal.Decimal:
    return context.divide(decimal.Decimal(value.numerator), decimal.Decimal(value.denominator))


def _matrix(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array.reshape(len(array), -1)
