"""Exact accumulation of float64 products and correctly rounded results.

An exact quantity is held as a plain Python ``int`` ``X`` that stands for
``X * 2**-FRACTION_BITS``. Every finite float64 is ``m * 2**u`` with an
integer mantissa ``m < 2**53`` and ``u >= -1074``, so every product of up to
three of them is an integer multiple of ``2**-3222``: sums of such products
are exact integers, and merging two sums is integer addition (associative,
commutative and identical whatever the order).

The compiled primitives accumulate into *bins*: a ``uint64`` array of shape
``(NBINS, 2)`` holding one unsigned 128-bit integer per bin, where bin ``i``
counts units of ``2**(i - FRACTION_BITS)``. A product of two mantissas is
one 64x64->128-bit multiplication added to the bin of its exponent; a
product of three is split into two such products. Nothing is ever rounded,
no float operation can overflow or underflow, and subnormals need no special
case. Each add is below ``2**106``, so a bin takes ``2**20`` adds before it
could overflow: callers flush every ``BLOCK_ROWS`` rows (each row adds at
most twice to any one bin). Signs are kept apart (one set of bins for
positive terms, one for negative), so every bin only grows.

The rounding functions turn exact rationals into the nearest float64, once.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = [
    "BLOCK_ROWS",
    "FRACTION_BITS",
    "NBINS",
    "NONFINITE_UNIT",
    "add_mantissa",
    "add_product",
    "add_triple",
    "add_wide",
    "bins_to_int",
    "exact_sum",
    "new_bins",
    "round_ratio",
    "round_sqrt_ratio",
    "split",
    "to_fraction",
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
def add_wide(bins, k, unit, high, low):
    """Add the 128-bit ``high * 2**64 + low`` times ``2**unit`` to accumulator ``k``."""
    index = unit + FRACTION_BITS
    total = bins[k, index, 0] + low
    bins[k, index, 1] += high + (_U1 if total < low else _U0)
    bins[k, index, 0] = total


@njit(inline="always")
def add_mantissa(bins, k, unit, m):
    """Add ``m * 2**unit`` to accumulator ``k``."""
    index = unit + FRACTION_BITS
    total = bins[k, index, 0] + m
    bins[k, index, 0] = total
    if total < m:  # the low word wrapped: carry (rare, so a branch beats a store)
        bins[k, index, 1] += _U1


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
    >>> round_ratio(exact_sum(np.array([1e100, 1.0, -1e100])), 1 << FRACTION_BITS)
    1.0
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    total = 0
    for start in range(0, values.size, BLOCK_ROWS):
        bins = new_bins(2)
        _sum_into_bins(values[start : start + BLOCK_ROWS], bins)
        total += bins_to_int(bins[0]) - bins_to_int(bins[1])
    return total


def to_fraction(value: int) -> Fraction:
    """An exact value as a :class:`fractions.Fraction` (for reference and debugging)."""
    return Fraction(value, 1 << FRACTION_BITS)


def round_ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` correctly rounded to float64 (half to even).

    Python's integer true division rounds correctly, subnormals included; a
    result beyond the float64 range rounds to infinity, as IEEE-754 does.
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    try:
        return numerator / denominator
    except OverflowError:
        return math.inf if numerator > 0 else -math.inf


def round_sqrt_ratio(numerator: int, denominator: int) -> float:
    """``sqrt(numerator / denominator)`` correctly rounded to float64.

    Computes at least 56 exact bits of the root with ``math.isqrt`` and one
    sticky bit for the remainder, then rounds once.

    Examples
    --------
    >>> round_sqrt_ratio(1000, 1)
    31.622776601683793
    """
    if numerator < 0 or denominator <= 0:
        raise ValueError("need numerator >= 0 and denominator > 0")
    if numerator == 0:
        return 0.0
    shift = 2 * 58 - (numerator.bit_length() - denominator.bit_length())
    shift += shift & 1  # even, so the root scales by an integer power of two
    if shift >= 0:
        quotient, remainder = divmod(numerator << shift, denominator)
    else:
        quotient, remainder = divmod(numerator, denominator << -shift)
    root = math.isqrt(quotient)
    inexact = remainder != 0 or root * root != quotient
    scaled = (root << 1) | int(inexact)  # root and a sticky bit, in half units
    exponent = -(shift // 2) - 1
    if exponent >= 0:
        return round_ratio(scaled << exponent, 1)
    return round_ratio(scaled, 1 << -exponent)
