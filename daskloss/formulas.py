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
from typing import Protocol

from daskloss.exact import FRACTION_BITS, round_ratio, round_sqrt_ratio
from daskloss.names import METRIC_NAMES

__all__ = ["METRIC_NAMES", "SufficientStats", "compute_metrics"]

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
