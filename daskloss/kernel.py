"""The per-chunk kernel: every error statistic of a chunk of rows in one pass.

One compiled loop reads the target, prediction and (optional) weight arrays
once and accumulates all exact sums, the row counts and ``max |d|``; no
temporary array is made per metric. The residual is ``d = fl(y_pred - y_true)``,
the float64 difference that numpy and scikit-learn use; from there on every
product and sum is exact (see :mod:`daskloss.exact`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numba import njit

from daskloss.exact import (
    BLOCK_ROWS,
    FRACTION_BITS,
    NONFINITE_UNIT,
    add_mantissa,
    add_product,
    add_triple,
    bins_to_int,
    new_bins,
    split,
)

__all__ = ["ChunkSums", "accumulate", "accumulate_chunks"]

# Accumulators (first axis of the bins array): one exact sum each, signs apart.
_WEIGHT, _SQUARED, _POSITIVE, _NEGATIVE, _TARGET_POS, _TARGET_NEG, _TARGET_SQUARED = range(7)
_NSUMS = 7
# Slots of the counts array.
_ROWS, _SKIPPED, _BAD_TRUE, _BAD_PRED, _BAD_WEIGHT, _NEGATIVE_WEIGHT, _OVERFLOW = range(7)
_NCOUNTS = 7


@njit(inline="always")
def _count_nonfinite(y, p, w, counts):
    """Count a row with a non-finite value, or whose finite values overflow."""
    bad_true = not math.isfinite(y)
    bad_pred = not math.isfinite(p)
    bad_weight = not math.isfinite(w)
    counts[_BAD_TRUE] += bad_true
    counts[_BAD_PRED] += bad_pred
    counts[_BAD_WEIGHT] += bad_weight
    if bad_true or bad_pred or bad_weight:
        counts[_SKIPPED] += 1
    else:
        counts[_OVERFLOW] += 1


@njit(nogil=True, cache=True)
def _accumulate_block(y_true, y_pred, weight, weighted, bins, counts):
    """Accumulate one block of rows into ``bins`` and ``counts``; return max |d|.

    Rows with a non-finite value, a negative weight or an overflowing residual
    are counted in their slot of ``counts`` and left out of every sum.
    """
    max_abs = 0.0
    for i in range(y_true.size):
        y = y_true[i]
        w = weight[i] if weighted else 1.0
        d = y_pred[i] - y
        a = abs(d)
        md, ud = split(a)
        my, uy = split(y)
        mw, uw = split(w)
        # d is finite only if y_pred is; split() flags inf and NaN by their exponent
        if ud == NONFINITE_UNIT or uy == NONFINITE_UNIT or uw == NONFINITE_UNIT:
            _count_nonfinite(y, y_pred[i], w, counts)
            continue
        if w < 0.0:
            counts[_NEGATIVE_WEIGHT] += 1
            continue
        counts[_ROWS] += 1
        if w > 0.0:
            max_abs = max(max_abs, a)
        side = _POSITIVE if d > 0.0 else _NEGATIVE
        target_side = _TARGET_POS if y > 0.0 else _TARGET_NEG
        if weighted:
            add_mantissa(bins, _WEIGHT, uw, mw)
            high, low = add_product(bins, side, uw + ud, mw, md)
            add_triple(bins, _SQUARED, uw + 2 * ud, high, low, md)
            high, low = add_product(bins, target_side, uw + uy, mw, my)
            add_triple(bins, _TARGET_SQUARED, uw + 2 * uy, high, low, my)
        else:
            add_mantissa(bins, side, ud, md)
            add_product(bins, _SQUARED, 2 * ud, md, md)
            add_mantissa(bins, target_side, uy, my)
            add_product(bins, _TARGET_SQUARED, 2 * uy, my, my)
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
    """Exact sums of float64 arrays of equal length.

    Examples
    --------
    >>> import numpy as np
    >>> accumulate(np.array([1.0, 2.0]), np.array([1.5, 1.0])).rows
    2
    """
    return accumulate_chunks([(y_true, y_pred, weight)], weighted=weight is not None)


def accumulate_chunks(
    chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray | None]], weighted: bool
) -> ChunkSums:
    """Exact sums over aligned chunks ``(y_true, y_pred, weight)`` of float64 arrays.

    All chunks share one set of bins, flushed to Python integers every
    ``BLOCK_ROWS`` rows, so many small chunks cost no more than one big one.
    """
    no_weight = np.empty(0, np.float64)
    totals = [0] * _NSUMS
    counts = np.zeros(_NCOUNTS, np.int64)
    bins = new_bins(_NSUMS)
    pending = 0
    max_abs = 0.0
    for y_true, y_pred, weight in chunks:
        for start in range(0, len(y_true), BLOCK_ROWS):
            stop = start + BLOCK_ROWS
            rows = min(stop, len(y_true)) - start
            if pending + rows > BLOCK_ROWS:
                totals = _flush(bins, totals)
                pending = 0
            block_max = _accumulate_block(
                y_true[start:stop],
                y_pred[start:stop],
                weight[start:stop] if weighted else no_weight,
                weighted,
                bins,
                counts,
            )
            max_abs = max(max_abs, block_max)
            pending += rows
    totals = _flush(bins, totals)
    rows = int(counts[_ROWS])
    return ChunkSums(
        rows=rows,
        weight_sum=totals[_WEIGHT] if weighted else rows << FRACTION_BITS,
        squared_error=totals[_SQUARED],
        positive_error=totals[_POSITIVE],
        negative_error=totals[_NEGATIVE],
        target_sum=totals[_TARGET_POS] - totals[_TARGET_NEG],
        target_squared=totals[_TARGET_SQUARED],
        max_abs_error=float(max_abs),
        skipped_rows=int(counts[_SKIPPED]),
        nonfinite_true=int(counts[_BAD_TRUE]),
        nonfinite_pred=int(counts[_BAD_PRED]),
        nonfinite_weight=int(counts[_BAD_WEIGHT]),
        negative_weight=int(counts[_NEGATIVE_WEIGHT]),
        residual_overflow=int(counts[_OVERFLOW]),
    )


def _flush(bins: np.ndarray, totals: list[int]) -> list[int]:
    """Add the bins to the running totals and zero them."""
    flushed = [total + bins_to_int(row) for total, row in zip(totals, bins, strict=True)]
    bins[:] = 0
    return flushed
