"""Exact values and their correct rounding to float64.

An exact quantity is a plain Python ``int`` ``X`` that stands for
``X * 2**-FRACTION_BITS`` (the unit of a product of five smallest
subnormals, as in ``w * d**4``), so sums of products of float64 values are
exact integers and
merging two sums is integer addition: associative, commutative and the same
whatever the order. The compiled kernel (:mod:`daskloss._kernel`) computes
them in this unit; the functions here turn exact rationals into the nearest
float64, once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

__all__ = [
    "FRACTION_BITS",
    "round_fraction",
    "round_ratio",
    "round_sqrt_ratio",
    "round_sqrt_sum",
    "to_fraction",
]

#: Exact values are integers in units of ``2**-FRACTION_BITS``: the unit of a
#: product of five smallest subnormals (``5 * 1074``), such as ``w * d**4``.
FRACTION_BITS = 5370


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


def round_fraction(value: Fraction) -> float:
    """``value`` correctly rounded to float64 (beyond the float64 range: infinity)."""
    return round_ratio(value.numerator, value.denominator)


def round_sqrt_sum(terms: Iterable[tuple[Fraction, Fraction]], divisor: Fraction) -> float:
    """``sum(c * sqrt(q) for c, q in terms) / divisor`` correctly rounded to float64.

    Every ``q`` must be >= 0 and ``divisor`` non-zero. Square roots whose
    radicands differ by a rational square factor are first combined exactly
    (``sqrt(8) = 2 * sqrt(2)``); what is left is either rational (rounded
    directly) or irrational, since square roots of rationals from different
    square classes are linearly independent over the rationals. An irrational
    value is never a rounding boundary, so narrowing an interval around it
    with ever more exact bits of each root ends with both ends rounding to
    the same float64.

    Examples
    --------
    >>> round_sqrt_sum([(Fraction(1), Fraction(2)), (Fraction(1), Fraction(8))], Fraction(3))
    1.4142135623730951
    >>> round_sqrt_sum([(Fraction(1), Fraction(4)), (Fraction(-1), Fraction(1))], Fraction(1))
    1.0
    """
    rational, roots = _combine_roots(terms)
    if not roots:
        return round_fraction(rational / divisor)
    if rational == 0 and len(roots) == 1:
        ((radicand, coefficient),) = roots.items()
        scale = coefficient / divisor  # value = scale * sqrt(radicand)
        square = scale * scale * radicand
        magnitude = round_sqrt_ratio(square.numerator, square.denominator)
        return magnitude if scale > 0 else -magnitude
    bits = 64
    while True:
        low = high = rational
        for radicand, coefficient in roots.items():
            root = Fraction(
                math.isqrt(radicand.numerator * 4**bits // radicand.denominator), 2**bits
            )
            ends = (coefficient * root, coefficient * (root + Fraction(1, 2**bits)))
            low, high = low + min(ends), high + max(ends)
        ends = (round_fraction(low / divisor), round_fraction(high / divisor))
        if ends[0] == ends[1]:
            return ends[0]
        bits *= 2


def _combine_roots(
    terms: Iterable[tuple[Fraction, Fraction]],
) -> tuple[Fraction, dict[Fraction, Fraction]]:
    """``sum(c * sqrt(q))`` as a rational part and ``{radicand: coefficient}`` of irrational roots.

    Radicands in the result lie in different square classes (no product of two
    is a rational square) and none is a square; zero coefficients are dropped.
    """
    rational = Fraction(0)
    roots: dict[Fraction, Fraction] = {}
    for coefficient, radicand in terms:
        if radicand < 0:
            raise ValueError("square roots of negative numbers are not real")
        if coefficient == 0 or radicand == 0:
            continue
        root = _rational_sqrt(radicand)
        if root is not None:
            rational += coefficient * root
            continue
        for known in roots:
            ratio = _rational_sqrt(radicand * known)  # sqrt(radicand) = ratio / known * sqrt(known)
            if ratio is not None:
                roots[known] += coefficient * ratio / known
                break
        else:
            roots[radicand] = coefficient
    return rational, {radicand: c for radicand, c in roots.items() if c != 0}


def _rational_sqrt(value: Fraction) -> Fraction | None:
    """The square root of ``value`` if it is rational, else None."""
    numerator, denominator = math.isqrt(value.numerator), math.isqrt(value.denominator)
    if numerator * numerator == value.numerator and denominator * denominator == value.denominator:
        return Fraction(numerator, denominator)
    return None
