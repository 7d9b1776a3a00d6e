"""The per-chunk kernel: every error statistic of a chunk of rows in one pass.

One compiled loop reads the target, prediction and (optional) weight arrays
once and accumulates all exact sums, the row counts and ``max |d|``; no
temporary array is made per metric. The residual is ``d = fl(y_pred - y_true)``,
the float64 difference that numpy and scikit-learn use; from there on every
product and sum is exact (see :mod:`daskloss.exact`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from daskloss.exact import (
    BLOCK_ROWS,
    FRACTION_BITS,
    NBINS,
    add_product,
    add_scaled,
    bins_to_int,
    normalise,
    two_product,
)

__all__ = ["ChunkSums", "accumulate"]

# Rows of the bins array: one exact sum each.
_WEIGHT, _SQUARED, _POSITIVE, _NEGATIVE, _TARGET, _TARGET_SQUARED = range(6)
_NSUMS = 6
# Slots of the counts array.
_ROWS, _SKIPPED, _BAD_TRUE, _BAD_PRED, _BAD_WEIGHT, _NEGATIVE_WEIGHT, _OVERFLOW = range(7)
_NCOUNTS = 7


@njit(nogil=True, cache=True)
def _accumulate_block(y_true, y_pred, weight, weighted, sums, counts):
    """Accumulate one block of rows into ``sums`` and ``counts``; return max |d|.

    Rows with a non-finite value, a negative weight or an overflowing residual
    are counted in their slot of ``counts`` and left out of every sum.
    """
    max_abs = 0.0
    for i in range(y_true.size):
        y = y_true[i]
        p = y_pred[i]
        w = weight[i] if weighted else 1.0
        bad = False
        if not math.isfinite(y):
            counts[_BAD_TRUE] += 1
            bad = True
        if not math.isfinite(p):
            counts[_BAD_PRED] += 1
            bad = True
        if not math.isfinite(w):
            counts[_BAD_WEIGHT] += 1
            bad = True
        if bad:
            counts[_SKIPPED] += 1
            continue
        if w < 0.0:
            counts[_NEGATIVE_WEIGHT] += 1
            continue
        d = p - y
        if not math.isfinite(d):
            counts[_OVERFLOW] += 1
            continue
        counts[_ROWS] += 1
        a = abs(d)
        if w > 0.0 and a > max_abs:
            max_abs = a
        side = _POSITIVE if d > 0.0 else _NEGATIVE
        ma, ea = normalise(a)
        my, ey = normalise(y)
        a_high, a_low = two_product(ma, ma)
        y_high, y_low = two_product(my, my)
        if weighted:
            mw, ew = normalise(w)
            add_scaled(sums[_WEIGHT], w, 0)
            add_product(sums[_SQUARED], mw, a_high, a_low, ew + 2 * ea)
            add_product(sums[side], mw, ma, 0.0, ew + ea)
            add_product(sums[_TARGET], mw, my, 0.0, ew + ey)
            add_product(sums[_TARGET_SQUARED], mw, y_high, y_low, ew + 2 * ey)
        else:
            add_scaled(sums[_SQUARED], a_high, 2 * ea)
            add_scaled(sums[_SQUARED], a_low, 2 * ea)
            add_scaled(sums[side], a, 0)
            add_scaled(sums[_TARGET], y, 0)
            add_scaled(sums[_TARGET_SQUARED], y_high, 2 * ey)
            add_scaled(sums[_TARGET_SQUARED], y_low, 2 * ey)
    return max_abs


@dataclass(frozen=True, slots=True)
class ChunkSums:
    """Raw output of :func:`accumulate` (exact sums in units of ``2**-FRACTION_BITS``)."""

    rows: int
    weight_sum: int
    squared_error: int
    positive_error: int
    negative_error: int
    target_sum: int
    target_squared: int
    max_abs_error: float
    skipped_rows: int
    nonfinite_true: int
    nonfinite_pred: int
    nonfinite_weight: int
    negative_weight: int
    residual_overflow: int


def accumulate(
    y_true: np.ndarray, y_pred: np.ndarray, weight: np.ndarray | None = None
) -> ChunkSums:
    """Exact sums of one chunk of float64 arrays of equal length.

    Examples
    --------
    >>> import numpy as np
    >>> accumulate(np.array([1.0, 2.0]), np.array([1.5, 1.0])).rows
    2
    """
    weighted = weight is not None
    empty = np.empty(0, np.float64)
    totals = np.zeros(_NSUMS, dtype=object)
    counts = np.zeros(_NCOUNTS, np.int64)
    max_abs = 0.0
    for start in range(0, max(len(y_true), 1), BLOCK_ROWS):
        stop = start + BLOCK_ROWS
        bins = np.zeros((_NSUMS, NBINS), np.int64)
        max_abs = max(
            max_abs,
            _accumulate_block(
                y_true[start:stop],
                y_pred[start:stop],
                weight[start:stop] if weighted else empty,
                weighted,
                bins,
                counts,
            ),
        )
        totals += [bins_to_int(row) for row in bins]
    rows = int(counts[_ROWS])
    return ChunkSums(
        rows=rows,
        weight_sum=int(totals[_WEIGHT]) if weighted else rows << FRACTION_BITS,
        squared_error=int(totals[_SQUARED]),
        positive_error=int(totals[_POSITIVE]),
        negative_error=int(totals[_NEGATIVE]),
        target_sum=int(totals[_TARGET]),
        target_squared=int(totals[_TARGET_SQUARED]),
        max_abs_error=float(max_abs),
        skipped_rows=int(counts[_SKIPPED]),
        nonfinite_true=int(counts[_BAD_TRUE]),
        nonfinite_pred=int(counts[_BAD_PRED]),
        nonfinite_weight=int(counts[_BAD_WEIGHT]),
        negative_weight=int(counts[_NEGATIVE_WEIGHT]),
        residual_overflow=int(counts[_OVERFLOW]),
    )
