"""The compiled kernel: every error statistic of a chunk of rows in one exact pass.

One compiled loop reads the target, prediction and (optional) weight arrays
once and accumulates all exact sums, the row counts and ``max |d|``; no
temporary array is made per metric. The residual is ``d = fl(y_pred - y_true)``,
the float64 difference that numpy and scikit-learn use; from there on every
product and sum is exact.

Every finite float64 is ``m * 2**u`` with an integer mantissa ``m < 2**53``
and ``u >= -1074``, so every product of up to three of them is an integer
multiple of ``2**-FRACTION_BITS``. Sums accumulate into *bins*: a ``uint64``
array of shape ``(NBINS, 2)`` per sum, one unsigned 128-bit integer per bin,
where bin ``i`` counts units of ``2**(i - FRACTION_BITS)``. A product of two
mantissas is one 64x64->128-bit multiplication added to the bin of its
exponent; a product of three is split into two such products. Nothing is
ever rounded, no float operation can overflow or underflow, and subnormals
need no special case. Each add is below ``2**106``, so a bin takes ``2**20``
adds before it could overflow: blocks of ``BLOCK_ROWS`` rows are flushed to
Python integers (each row adds at most twice to any one bin). Signs are kept
apart (bins for positive terms, bins for negative ones), so bins only grow.

All compiled code and the constants it bakes in live in this one module, so
numba's on-disk cache (keyed by this file) can never run stale code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = [
    "BLOCK_ROWS",
    "FRACTION_BITS",
    "NBINS",
    "ChunkSums",
    "accumulate",
    "accumulate_chunks",
    "bins_to_int",
    "exact_sum",
    "new_bins",
]

#: Exact values are integers in units of ``2**-FRACTION_BITS``: the unit of a
#: product of three smallest subnormals.
FRACTION_BITS = 3222
#: Bins per accumulator: the highest bin is that of the upper half of a
#: product of three largest floats (2913 + 53 above the unit).
NBINS = FRACTION_BITS + 2913 + 53 + 1
#: Rows accumulated before bins are flushed: at most two adds below 2**106
#: per row and bin keeps every bin below 2**126.
BLOCK_ROWS = 1 << 19

_FRACTION_MASK = np.uint64((1 << 52) - 1)
_LOW53 = np.uint64((1 << 53) - 1)
_U0 = np.uint64(0)
_U1 = np.uint64(1)


@intrinsic
def _float_bits(typingctx, x):
    """The IEEE-754 bit pattern of a float64 as a uint64."""
    signature = types.uint64(types.float64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return signature, codegen


@intrinsic
def _mul_wide(typingctx, a, b):
    """The full 128-bit product of two uint64 as ``(high, low)`` words."""
    signature = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, sig, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        low = builder.trunc(product, ir.IntType(64))
        high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
        return context.make_tuple(builder, sig.return_type, [high, low])

    return signature, codegen


@njit(inline="always")
def split(x):
    """``(m, u)`` with ``|x| == m * 2**u`` for a finite float64 ``x``.

    ``m`` is the integer mantissa (uint64, below 2**53) and ``u`` the exponent
    of its unit (from -1074): the unit of a product is the sum of the units.
    """
    bits = _float_bits(x)
    biased = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    mantissa = (bits & _FRACTION_MASK) | (np.uint64(biased != 0) << np.uint64(52))
    return mantissa, max(biased, 1) - 1075


#: The unit exponent :func:`split` gives for infinity and NaN.
NONFINITE_UNIT = 0x7FF - 1075


@njit(inline="always")
def _index(k, unit):
    """Unsigned indices: numba then skips its negative-index wraparound (6.3 -> 4.8 ns/row)."""
    return np.uint64(k), np.uint64(unit + FRACTION_BITS)


@njit(inline="always")
def add_wide(bins, k, unit, high, low):
    """Add the 128-bit ``high * 2**64 + low`` times ``2**unit`` to accumulator ``k``."""
    k, index = _index(k, unit)
    total = bins[k, index, _U0] + low
    bins[k, index, _U1] += high + (_U1 if total < low else _U0)
    bins[k, index, _U0] = total


@njit(inline="always")
def add_mantissa(bins, k, unit, m):
    """Add ``m * 2**unit`` to accumulator ``k``."""
    k, index = _index(k, unit)
    total = bins[k, index, _U0] + m
    bins[k, index, _U0] = total
    if total < m:  # the low word wrapped: carry (rare, so a branch beats a store)
        bins[k, index, _U1] += _U1


@njit(inline="always")
def add_product(bins, k, unit, a, b):
    """Add ``a * b * 2**unit`` (two mantissas) to accumulator ``k``; return ``a * b``.

    The product comes back as ``(high, low)`` words for :func:`add_triple`.
    """
    high, low = _mul_wide(a, b)
    add_wide(bins, k, unit, high, low)
    return high, low


@njit(inline="always")
def add_triple(bins, k, unit, high, low, c):
    """Add ``(high * 2**64 + low) * c * 2**unit`` for a product of two mantissas.

    The 106-bit product is split into 53-bit halves; each half times the
    mantissa ``c`` fits 128 bits.
    """
    upper = (high << np.uint64(11)) | (low >> np.uint64(53))
    add_product(bins, k, unit + 53, upper, c)
    add_product(bins, k, unit, low & _LOW53, c)


def new_bins(count: int = 1) -> np.ndarray:
    """``count`` zeroed accumulators, shape ``(count, NBINS, 2)``."""
    return np.zeros((count, NBINS, 2), np.uint64)


@njit(nogil=True, cache=True)
def _bins_to_bytes(bins):
    """``(data, first)``: ``sum(bins[i] * 2**i) == int.from_bytes(data, "little") << first``.

    Bins are 128-bit; only the span from the first to the last non-zero bin
    is converted, carries kept exactly.
    """
    first = 0
    while first < bins.shape[0] and bins[first, 0] == _U0 and bins[first, 1] == _U0:
        first += 1
    if first == bins.shape[0]:
        return np.zeros(0, np.uint8), 0
    first &= ~7  # start on a whole byte
    last = bins.shape[0] - 1
    while bins[last, 0] == _U0 and bins[last, 1] == _U0:
        last -= 1
    nbits = last + 1 - first + 130
    out = np.zeros((nbits + 7) // 8, np.uint8)
    carry_low = _U0
    carry_high = _U0
    for i in range(nbits):
        if first + i <= last:
            low = bins[first + i, 0]
            high = bins[first + i, 1]
            total = carry_low + low
            carry_high += high + (_U1 if total < low else _U0)
            carry_low = total
        if carry_low & _U1:
            out[i >> 3] |= np.uint8(1 << (i & 7))
        carry_low = (carry_low >> _U1) | (carry_high << np.uint64(63))
        carry_high >>= _U1
    return out, first


def bins_to_int(bins: np.ndarray) -> int:
    """The exact value of one accumulator, an integer in units of ``2**-FRACTION_BITS``."""
    data, first = _bins_to_bytes(bins)
    return int.from_bytes(data.tobytes(), "little") << first


@njit(nogil=True, cache=True)
def _sum_into_bins(values, bins):
    for i in range(values.size):
        m, unit = split(values[i])
        add_mantissa(bins, 1 if values[i] < 0.0 else 0, unit, m)


def exact_sum(values: np.ndarray) -> int:
    """The exact sum of finite float64 ``values``, in units of ``2**-FRACTION_BITS``.

    Examples
    --------
    >>> import numpy as np
    >>> exact_sum(np.array([1e100, 1.0, -1e100])) == 1 << FRACTION_BITS
    True
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    total = 0
    for start in range(0, values.size, BLOCK_ROWS):
        bins = new_bins(2)
        _sum_into_bins(values[start : start + BLOCK_ROWS], bins)
        total += bins_to_int(bins[0]) - bins_to_int(bins[1])
    return total


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
def _block_unweighted(y_true, y_pred, weight, bins, counts):
    return _accumulate_block(y_true, y_pred, weight, False, bins, counts)


@njit(nogil=True, cache=True)
def _block_weighted(y_true, y_pred, weight, bins, counts):
    return _accumulate_block(y_true, y_pred, weight, True, bins, counts)


@njit(inline="always")
def _accumulate_block(y_true, y_pred, weight, weighted, bins, counts):
    """Accumulate one block of rows into ``bins`` and ``counts``; return max |d|.

    Inlined into one compiled function per value of ``weighted``, so the
    unweighted loop carries no trace of weights. Rows with a non-finite value,
    a negative weight or an overflowing residual are counted in their slot of
    ``counts`` and left out of every sum.
    """
    max_abs = 0.0
    rows = 0  # counted locally: a store to counts per row costs 15%
    for j in range(y_true.size):
        i = np.uint64(j)  # unsigned: numba skips negative-index wraparound
        y = y_true[i]
        p = y_pred[i]
        w = weight[i] if weighted else 1.0
        d = p - y
        if not (math.isfinite(d) and math.isfinite(y) and math.isfinite(w)):
            _count_nonfinite(y, p, w, counts)
        elif w < 0.0:
            counts[_NEGATIVE_WEIGHT] += 1
        else:
            rows += 1
            a = _add_row(bins, y, d, w, weighted)
            max_abs = max(max_abs, a if w > 0.0 else 0.0)
    counts[_ROWS] += rows
    return max_abs


@njit(inline="always")
def _add_row(bins, y, d, w, weighted):
    """Add one finite row (weight ``w >= 0``) to every sum; return ``|d|``."""
    a = abs(d)
    md, ud = split(a)
    my, uy = split(y)
    side = _POSITIVE if d > 0.0 else _NEGATIVE
    target_side = _TARGET_POS if y > 0.0 else _TARGET_NEG
    if weighted:
        mw, uw = split(w)
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
    return a


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
            block = _block_weighted if weighted else _block_unweighted
            block_max = block(
                _readonly(y_true[start:stop]),
                _readonly(y_pred[start:stop]),
                _readonly(weight[start:stop] if weighted else no_weight),
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


def _readonly(array: np.ndarray) -> np.ndarray:
    """A read-only view: numpy and Arrow inputs then share one compiled signature."""
    view = array.view()
    view.flags.writeable = False
    return view


def _flush(bins: np.ndarray, totals: list[int]) -> list[int]:
    """Add the bins to the running totals and zero them."""
    flushed = [total + bins_to_int(row) for total, row in zip(totals, bins, strict=True)]
    bins[:] = 0
    return flushed
