"""Exact values and their correct rounding to float64.

An exact quantity is a plain Python ``int`` ``X`` that stands for
``X * 2**-FRACTION_BITS`` (the unit of a product of three smallest
subnormals), so sums of products of float64 values are exact integers and
merging two sums is integer addition: associative, commutative and the same
whatever the order. The compiled kernel (:mod:`daskloss._kernel`) computes
them in this unit; the functions here turn exact rationals into the nearest
float64, once.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["FRACTION_BITS", "round_ratio", "round_sqrt_ratio", "to_fraction"]

#: Exact values are integers in units of ``2**-FRACTION_BITS``: the unit of a
#: product of three smallest subnormals (``3 * 1074``).
FRACTION_BITS = 3222


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
