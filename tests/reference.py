"""Independent reference values: every metric from fractions.Fraction, rounded once.

Nothing here uses daskloss's exact module; the square root is found by exact
comparison against float64 neighbours rather than by integer square roots.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np


def fraction_sqrt(x: Fraction) -> float:
    """The float64 nearest to sqrt(x) (ties to even), by exact comparisons."""
    if x == 0:
        return 0.0
    k = (x.numerator.bit_length() - x.denominator.bit_length()) // 2
    try:
        estimate = math.ldexp(math.sqrt(float(x / Fraction(4) ** k)), k)
    except OverflowError:
        estimate = sys.float_info.max
    for _ in range(8):
        if math.isinf(estimate):
            return estimate
        below = math.nextafter(estimate, 0.0)
        above = math.nextafter(estimate, math.inf)
        low_mid = (Fraction(below) + Fraction(estimate)) / 2
        if math.isfinite(above):
            high_mid = (Fraction(estimate) + Fraction(above)) / 2
        else:  # above the largest float, the rounding boundary is max + ulp(max) / 2
            high_mid = Fraction(estimate) + (Fraction(estimate) - Fraction(below)) / 2
        if estimate > 0 and (x < low_mid**2 or (x == low_mid**2 and _odd(estimate))):
            estimate = below
        elif x > high_mid**2 or (x == high_mid**2 and _odd(estimate)):
            estimate = above
        else:
            return estimate
    raise AssertionError("sqrt search did not converge")


def _odd(value: float) -> bool:
    return bool(np.float64(value).view(np.int64) & 1)


def fraction_float(x: Fraction) -> float:
    """float(x) with overflow to infinity, as IEEE-754 rounding does."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def reference_metrics(y_true, y_pred, weight=None) -> dict[str, float | int]:
    """All daskloss metrics of the rows, computed with Fractions and rounded once."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    residual = y_pred - y_true  # d = fl(y_pred - y_true), as numpy and sklearn compute it
    weights = np.ones_like(y_true) if weight is None else np.asarray(weight, dtype=np.float64)
    d = [Fraction(v) for v in residual.tolist()]
    w = [Fraction(v) for v in weights.tolist()]
    y = [Fraction(v) for v in y_true.tolist()]
    total = sum(w, Fraction(0))
    se = sum((wi * di * di for wi, di in zip(w, d, strict=True)), Fraction(0))
    ae = sum((wi * abs(di) for wi, di in zip(w, d, strict=True)), Fraction(0))
    signed = sum((wi * di for wi, di in zip(w, d, strict=True)), Fraction(0))
    sy = sum((wi * yi for wi, yi in zip(w, y, strict=True)), Fraction(0))
    syy = sum((wi * yi * yi for wi, yi in zip(w, y, strict=True)), Fraction(0))
    positive = [abs(v) for v, wi in zip(residual.tolist(), weights.tolist(), strict=True) if wi > 0]
    sst = syy - sy * sy / total if total else Fraction(0)
    return {
        "count": len(d),
        "weight_sum": fraction_float(total),
        "se": fraction_float(se),
        "mse": fraction_float(se / total) if total else math.nan,
        "rmse": fraction_sqrt(se / total) if total else math.nan,
        "l2": fraction_sqrt(se),
        "ae": fraction_float(ae),
        "mae": fraction_float(ae / total) if total else math.nan,
        "max_error": max(positive, default=0.0),
        "bias": fraction_float(signed / total) if total else math.nan,
        "r2": fraction_float(1 - se / sst) if total and sst else math.nan,
    }


def assert_bit_identical(actual: dict, expected: dict) -> None:
    """Every key of ``expected`` is in ``actual`` with the very same float64 bits."""
    for key, value in expected.items():
        got = actual[key]
        same = (math.isnan(got) and math.isnan(value)) if isinstance(value, float) else False
        assert same or (got == value and type(got) is type(value) and _bits(got) == _bits(value)), (
            f"{key}: got {got!r}, expected {value!r}"
        )


def _bits(value: float | int) -> int:
    return int(np.float64(value).view(np.int64)) if isinstance(value, float) else value


#: The 95% interval's quantile, as daskloss takes it (the float64 nearest the normal quantile).
Z95 = 1.959963984540054


def decimal_float(value) -> float:
    """A Decimal computed with ample digits, rounded to float64 (the nearest, by comparison)."""
    from decimal import Decimal

    estimate = float(value)
    if not math.isfinite(estimate) or value == 0:
        return estimate
    below, above = math.nextafter(estimate, -math.inf), math.nextafter(estimate, math.inf)
    return min((below, estimate, above), key=lambda f: abs(Decimal(f) - value))


def reference_comparison(y_true, a, b, weight=None) -> dict[str, dict[str, float]]:
    """Differences (a - b) of MSE, MAE and RMSE with standard errors and 95% intervals.

    Independent of daskloss: Fractions for every sum, then :mod:`decimal` at 120
    digits for square roots, rounded once. The estimator is the one the README
    states: the weighted variance of the per-row difference over ``n_eff - 1``,
    ``n_eff = W**2 / sum(w**2)``; RMSE by the delta method.
    """
    from decimal import Decimal, getcontext

    getcontext().prec = 120
    y = np.asarray(y_true, dtype=np.float64)
    da = [Fraction(v) for v in (np.asarray(a, dtype=np.float64) - y).tolist()]
    db = [Fraction(v) for v in (np.asarray(b, dtype=np.float64) - y).tolist()]
    w = [Fraction(v) for v in (np.ones_like(y) if weight is None else np.asarray(weight)).tolist()]
    total = sum(w, Fraction(0))
    n_minus_1 = (total * total - sum((x * x for x in w), Fraction(0))) / sum(
        (x * x for x in w), Fraction(0)
    )

    def mean(values):
        return sum((x * v for x, v in zip(w, values, strict=True)), Fraction(0)) / total

    def dec(q: Fraction) -> Decimal:
        return Decimal(q.numerator) / Decimal(q.denominator)

    def entry(difference, variance) -> dict[str, float]:
        stderr = dec(variance).sqrt() if not isinstance(variance, Decimal) else variance.sqrt()
        centre = dec(difference) if isinstance(difference, Fraction) else difference
        z = Decimal(Z95)
        return {
            "difference": decimal_float(centre),
            "stderr": decimal_float(stderr),
            "low": decimal_float(centre - z * stderr),
            "high": decimal_float(centre + z * stderr),
        }

    sq = [x * x - v * v for x, v in zip(da, db, strict=True)]
    ab = [abs(x) - abs(v) for x, v in zip(da, db, strict=True)]
    mse = mean(sq)
    mae = mean(ab)
    result = {
        "mse": entry(mse, (mean([s * s for s in sq]) - mse * mse) / n_minus_1),
        "mae": entry(mae, (mean([s * s for s in ab]) - mae * mae) / n_minus_1),
    }
    m_a, m_b = mean([x * x for x in da]), mean([x * x for x in db])
    var_a = (mean([x**4 for x in da]) - m_a * m_a) / n_minus_1
    var_b = (mean([x**4 for x in db]) - m_b * m_b) / n_minus_1
    cov = (mean([x * x * v * v for x, v in zip(da, db, strict=True)]) - m_a * m_b) / n_minus_1
    root_a, root_b = dec(m_a).sqrt(), dec(m_b).sqrt()
    variance = dec(var_a / (4 * m_a) + var_b / (4 * m_b)) - dec(cov) / (2 * root_a * root_b)
    result["rmse"] = entry(root_a - root_b, variance)
    return result


def reference_intervals(y_true, y_pred, weight=None) -> dict[str, dict[str, float]]:
    """Standard errors and 95% intervals of MSE, RMSE, MAE and bias, as the README states them.

    Independent of daskloss: Fractions for every sum, :mod:`decimal` at 120 digits
    for square roots, rounded once. The variance of a weighted mean of per-row
    losses is their weighted variance over ``n_eff - 1``, ``n_eff = W**2 / sum(w**2)``;
    RMSE by the delta method, ``Var(MSE) / (4 MSE)``.
    """
    from decimal import Decimal, getcontext

    getcontext().prec = 120
    y = np.asarray(y_true, dtype=np.float64)
    d = [Fraction(v) for v in (np.asarray(y_pred, dtype=np.float64) - y).tolist()]
    w = [Fraction(v) for v in (np.ones_like(y) if weight is None else np.asarray(weight)).tolist()]
    total = sum(w, Fraction(0))
    squares = sum((x * x for x in w), Fraction(0))
    n_minus_1 = (total * total - squares) / squares

    def mean(values):
        return sum((x * v for x, v in zip(w, values, strict=True)), Fraction(0)) / total

    def dec(q: Fraction) -> Decimal:
        return Decimal(q.numerator) / Decimal(q.denominator)

    def entry(centre: Decimal, variance: Fraction) -> dict[str, float]:
        stderr = dec(variance).sqrt()
        z = Decimal(Z95)
        return {
            "stderr": decimal_float(stderr),
            "low": decimal_float(centre - z * stderr),
            "high": decimal_float(centre + z * stderr),
        }

    mse = mean([x * x for x in d])
    mae = mean([abs(x) for x in d])
    bias = mean(d)
    mse_variance = (mean([x**4 for x in d]) - mse * mse) / n_minus_1
    return {
        "mse": entry(dec(mse), mse_variance),
        "rmse": entry(dec(mse).sqrt(), mse_variance / (4 * mse)),
        "mae": entry(dec(mae), (mse - mae * mae) / n_minus_1),
        "bias": entry(dec(bias), (mse - bias * bias) / n_minus_1),
    }
