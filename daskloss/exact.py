"""Exact accumulation of float64 terms and correctly rounded results.

An exact quantity is held as a plain Python ``int`` ``X`` that stands for
``X * 2**-FRACTION_BITS``. Every product of up to three float64 values (the
largest term daskloss sums is ``w * d * d``) is an integer multiple of that
unit, so sums of them are exact and merging two sums is integer addition:
associative, commutative and identical whatever the order.

The compiled primitives (``add_scaled``, ``normalise``, ``add_product``...)
accumulate terms into *bins*: an ``int64`` array where bin ``i`` counts units
of ``2**(i - FRACTION_BITS)``. Each float64 is split into its integer mantissa
(53 bits) and exponent; the mantissa is added, in two pieces of at most 27
bits, to the bins of its exponent. No rounding ever happens, and a bin absorbs
more than ``2**35`` terms before it could overflow (callers flush long inputs
in blocks of ``BLOCK_ROWS``). Products are made exact with fused multiply-add
on mantissas normalised to [1, 2), so they never overflow or underflow.

The rounding functions turn exact rationals into the nearest float64, once.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = [
    "BLOCK_ROWS",
    "FRACTION_BITS",
    "NBINS",
    "add_product",
    "add_scaled",
    "bins_to_int",
    "exact_sum",
    "normalise",
    "round_ratio",
    "round_sqrt_ratio",
    "to_fraction",
    "two_product",
]

#: Exact values are integers in units of ``2**-FRACTION_BITS``. The smallest
#: piece of an exact product of three subnormals sits at ``2**-3430``.
FRACTION_BITS = 3500
#: Number of bins: the largest piece of a product of three float64 values plus
#: the mantissa split lands below bin 6546.
NBINS = 6560
#: Rows accumulated into one set of bins before it is flushed to Python ints;
#: keeps every bin far from int64 overflow (one row adds < 2**29 to a bin).
BLOCK_ROWS = 1 << 26

_FRACTION_MASK = (1 << 52) - 1
_EXPONENT_FIELD = 0x7FF << 52
_SPLIT_BITS = 26
_LOW_MASK = (1 << _SPLIT_BITS) - 1
_TWO_POW_64 = 2.0**64


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with a single rounding (LLVM ``llvm.fma.f64``)."""
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return signature, codegen


@intrinsic
def _float_bits(typingctx, x):
    """The IEEE-754 bit pattern of a float64 as an int64."""
    signature = types.int64(types.float64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return signature, codegen


@intrinsic
def _bits_float(typingctx, bits):
    """The float64 whose IEEE-754 bit pattern is ``bits``."""
    signature = types.float64(types.int64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return signature, codegen


@njit(inline="always")
def add_scaled(bins, x, shift):
    """Add ``x * 2**shift`` to ``bins`` exactly (``x`` finite, possibly zero)."""
    bits = _float_bits(x)
    biased = (bits >> 52) & 0x7FF
    mantissa = (bits & _FRACTION_MASK) | (np.int64(biased != 0) << 52)
    unit = max(biased, 1) - 1075 + shift + FRACTION_BITS
    unit = max(unit, 0)  # only a zero (mantissa 0) can land below bin 0
    sign = bits >> 63  # -1 for negative x, else 0
    low = mantissa & _LOW_MASK
    high = mantissa >> _SPLIT_BITS
    bins[unit] += (low ^ sign) - sign
    bins[unit + _SPLIT_BITS] += (high ^ sign) - sign


@njit(inline="always")
def normalise(x):
    """Split finite ``x`` into ``(m, e)`` with ``x == m * 2**e`` and ``1 <= |m| < 2``.

    Zero gives ``(0.0, 0)``. Subnormals are scaled up first, so ``e`` ranges
    over [-1074, 1023].
    """
    if x == 0.0:
        return 0.0, 0
    bits = _float_bits(x)
    biased = (bits >> 52) & 0x7FF
    offset = 0
    if biased == 0:
        bits = _float_bits(x * _TWO_POW_64)
        biased = (bits >> 52) & 0x7FF
        offset = 64
    mantissa = _bits_float((bits & ~_EXPONENT_FIELD) | (np.int64(1023) << 52))
    return mantissa, biased - 1023 - offset


@njit(inline="always")
def two_product(a, b):
    """``(high, low)`` with ``high + low == a * b`` exactly, for normalised mantissas."""
    high = a * b
    return high, _fma(a, b, -high)


@njit(inline="always")
def add_product(bins, m, high, low, shift):
    """Add ``m * (high + low) * 2**shift`` exactly.

    ``m`` is a normalised mantissa; ``high + low`` is an exact two-term value
    such as the output of :func:`two_product` (``low`` may be zero).
    """
    p1, p2 = two_product(m, high)
    p3, p4 = two_product(m, low)
    add_scaled(bins, p1, shift)
    add_scaled(bins, p2, shift)
    add_scaled(bins, p3, shift)
    add_scaled(bins, p4, shift)


@njit(nogil=True, cache=True)
def _bins_to_bytes(bins):
    """Little-endian two's-complement bytes of ``sum(bins[i] * 2**i)``."""
    nbits = bins.size + 64
    out = np.zeros((nbits + 7) // 8, np.uint8)
    carry = np.int64(0)
    for i in range(nbits):
        if i < bins.size:
            carry += bins[i]
        if carry & 1:
            out[i >> 3] |= np.uint8(1 << (i & 7))
        carry >>= 1
    return out


def bins_to_int(bins: np.ndarray) -> int:
    """The exact value held by ``bins``, as an integer in units of ``2**-FRACTION_BITS``."""
    return int.from_bytes(_bins_to_bytes(bins).tobytes(), "little", signed=True)


@njit(nogil=True, cache=True)
def _sum_into_bins(values, bins):
    for i in range(values.size):
        add_scaled(bins, values[i], 0)


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
        bins = np.zeros(NBINS, np.int64)
        _sum_into_bins(values[start : start + BLOCK_ROWS], bins)
        total += bins_to_int(bins)
    return total


def to_fraction(value: int):
    """An exact value as a :class:`fractions.Fraction` (for reference and debugging)."""
    from fractions import Fraction

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
