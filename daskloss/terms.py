"""Per-row terms: the float64 value of each row that a metric's exact sums add up.

The exact kernel (:mod:`daskloss._kernel`) reads a pair of float64 columns
``(a, b)`` and weights ``w``, and sums ``w``, ``w * d``, ``w * |d|``,
``w * d**2``, ``w * a`` and ``w * a**2`` with ``d = fl(b - a)``, exactly. A
:class:`Term` says which pair a metric needs:

============  =============================================  ===================================
kind          ``(a, b)``                                     metrics
============  =============================================  ===================================
``residual``  ``(y_true, y_pred)``                           MSE, RMSE, MAE, max error, R²,
                                                             explained variance, SE, L2,
                                                             Tweedie deviance with power 0
``log1p``     ``(log1p(y_true), log1p(y_pred))``             MSLE, RMSLE
``ape``       ``(0, |y_pred - y_true| / max(|y_true|, eps))``  MAPE
``pinball``   ``(0, pinball loss of the row)``               mean pinball loss (``alpha``)
``tweedie``   ``(0, unit deviance of the row)``              Tweedie (``power``), Poisson, Gamma
============  =============================================  ===================================

A logarithm, a power or a quotient has no exact value in float64, so these
terms are computed in float64 exactly as scikit-learn 1.9 computes them: the
same NumPy operations in the same order, elementwise (so a row's term does
not depend on which rows share its chunk). Everything after the term is
exact: its weighted sums, and the one rounding of the metric.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

__all__ = ["EPSILON", "Term", "TermKind", "domain_violated", "term_columns"]

TermKind = Literal["residual", "log1p", "ape", "pinball", "tweedie"]

#: The floor of ``|y_true|`` in the MAPE denominator (scikit-learn's).
EPSILON = float(np.finfo(np.float64).eps)


class Term(NamedTuple):
    """A per-row term: its kind and its parameter (``alpha``, ``power``), as a float."""

    kind: TermKind
    parameter: float | None = None


def term_columns(
    term: Term, y_true: np.ndarray, y_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pair ``(a, b)`` of float64 columns whose exact sums give ``term``'s metrics.

    Examples
    --------
    >>> a, b = term_columns(Term("ape"), np.array([2.0, 0.0]), np.array([3.0, 1.0]))
    >>> a.tolist(), b.tolist()
    ([0.0, 0.0], [0.5, 4503599627370496.0])
    """
    if term.kind == "residual":
        return y_true, y_pred
    with np.errstate(all="ignore"):  # out-of-domain rows fail the domain check later
        if term.kind == "log1p":
            return np.log1p(y_true), np.log1p(y_pred)
        if term.kind == "ape":
            loss = np.abs(y_pred - y_true) / np.maximum(np.abs(y_true), EPSILON)
        elif term.kind == "pinball":
            loss = _pinball(y_true, y_pred, term.parameter)
        else:
            loss = _tweedie(y_true, y_pred, term.parameter)
    return np.zeros_like(loss), np.ascontiguousarray(loss)


def domain_violated(term: Term, lowest_true: float, lowest_pred: float) -> bool:
    """Whether rows with these lowest values leave the term's domain (scikit-learn's checks).

    ``log1p`` needs every value above -1. The Tweedie deviance with power
    ``p`` needs ``y_pred > 0`` (``p < 0``), also ``y_true >= 0`` (``1 <= p < 2``)
    or ``y_true > 0`` (``p >= 2``); power 0 has no constraint.
    """
    if term.kind == "log1p":
        return lowest_true <= -1 or lowest_pred <= -1
    if term.kind != "tweedie" or term.parameter == 0:
        return False
    power = term.parameter
    if power < 0:
        return lowest_pred <= 0
    if power < 2:
        return lowest_true < 0 or lowest_pred <= 0
    return lowest_true <= 0 or lowest_pred <= 0


def _pinball(y_true: np.ndarray, y_pred: np.ndarray, alpha: float | None) -> np.ndarray:
    """``sklearn.metrics.mean_pinball_loss``'s per-row loss."""
    assert alpha is not None
    diff = y_true - y_pred
    sign = (diff >= 0).astype(diff.dtype)
    return alpha * sign * diff - (1 - alpha) * (1 - sign) * diff


def _tweedie(y_true: np.ndarray, y_pred: np.ndarray, power: float | None) -> np.ndarray:
    """``sklearn.metrics.mean_tweedie_deviance``'s per-row unit deviance (power != 0)."""
    assert power is not None
    p = power
    if p == 1:
        ratio = y_true * np.log(y_true / y_pred)  # xlogy(y_true, y_true / y_pred)
        xlogy = np.where(y_true == 0.0, np.asarray(0.0, dtype=ratio.dtype), ratio)
        return 2 * (xlogy - y_true + y_pred)
    if p == 2:
        return 2 * (np.log(y_pred / y_true) + y_true / y_pred - 1)
    base = np.where(y_true > 0, y_true, 0.0) if p < 0 else y_true
    return 2 * (
        np.power(base, 2 - p) / ((1 - p) * (2 - p))
        - y_true * np.power(y_pred, 1 - p) / (1 - p)
        + np.power(y_pred, 2 - p) / (2 - p)
    )
