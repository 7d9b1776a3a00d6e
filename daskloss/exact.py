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
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

__all__ = [
    "FRACTION_BITS",
    "Expression",
    "dyadic_text",
    "dyadic_value",
    "pack_exact",
    "round_expression",
    "round_fraction",
    "round_ratio",
    "round_sqrt_ratio",
    "round_sqrt_sum",
    "to_fraction",
    "unpack_exact",
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


def dyadic_text(value: int) -> str:
    """An exact value as compact text: ``"0x<mantissa>p<exponent>"``, its significant bits only.

    The text stands for ``mantissa * 2**exponent`` (the value's real magnitude,
    whatever ``FRACTION_BITS`` is), so saved statistics stay exact and small.

    Examples
    --------
    >>> dyadic_text(3 << FRACTION_BITS), dyadic_text(-1 << (FRACTION_BITS - 2)), dyadic_text(0)
    ('0x3p0', '-0x1p-2', '0x0p0')
    >>> dyadic_value(dyadic_text(12345 << 7)) == 12345 << 7
    True
    """
    if value == 0:
        return "0x0p0"
    zeros = (value & -value).bit_length() - 1
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value) >> zeros:#x}p{zeros - FRACTION_BITS}"


def dyadic_value(text: str) -> int:
    """The exact value (in units of ``2**-FRACTION_BITS``) that :func:`dyadic_text` wrote.

    Raises
    ------
    ValueError
        Text that is not of that form, or a value finer than ``2**-FRACTION_BITS``.
    """
    mantissa, sep, exponent = text.partition("p")
    if not sep:
        raise ValueError(f"expected an exact value such as '0x3p-2', got {text[:40]!r}")
    shift = int(exponent) + FRACTION_BITS
    magnitude = int(mantissa.lstrip("-"), 16)
    if shift < 0:
        if magnitude & ((1 << -shift) - 1):
            raise ValueError(f"{text[:40]!r} is finer than this daskloss's unit")
        value = magnitude >> -shift
    else:
        value = magnitude << shift
    return -value if mantissa.startswith("-") else value


def pack_exact(values: Sequence[int]) -> bytes:
    """Exact integers packed into bytes by their significant bits (for pickling).

    Each value is stored as its sign, its trailing-zero count and the bytes of
    what is left, so a sum of a few dozen significant bits takes a few dozen
    bits whatever ``FRACTION_BITS`` is. :func:`unpack_exact` reads it back.

    Examples
    --------
    >>> unpack_exact(pack_exact([0, 5 << 4000, -(7 << 3)])) == [0, 5 << 4000, -(7 << 3)]
    True
    >>> len(pack_exact([5 << 4000]))
    4
    """
    out = bytearray()
    for value in values:
        if value == 0:
            out += b"\x00"
            continue
        zeros = (value & -value).bit_length() - 1
        magnitude = abs(value) >> zeros
        size = (magnitude.bit_length() + 7) // 8
        _varint(out, (size << 1) | (value < 0))
        _varint(out, zeros)
        out += magnitude.to_bytes(size, "little")
    return bytes(out)


def unpack_exact(data: bytes) -> list[int]:
    """The integers :func:`pack_exact` packed."""
    values = []
    at = 0
    while at < len(data):
        head, at = _read_varint(data, at)
        if head == 0:
            values.append(0)
            continue
        zeros, at = _read_varint(data, at)
        size = head >> 1
        magnitude = int.from_bytes(data[at : at + size], "little") << zeros
        at += size
        values.append(-magnitude if head & 1 else magnitude)
    return values


def _varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


#: An exact real number built from rationals, square roots, sums and rational multiples:
#: a Fraction, ``("sqrt", e)``, ``("sum", e1, e2, ...)`` or ``("times", q, e)``.
Expression = Any


def round_expression(expression: Expression) -> float:
    """An :data:`Expression` correctly rounded to float64 (NaN if a root's radicand is negative).

    Rational parts are reduced exactly; what is left is evaluated in interval
    arithmetic with ever more exact bits of each square root until both ends
    of the interval round to the same float64. An irrational value is never a
    rounding boundary, so this ends; a rational value reached through roots
    of squares is found exact first.

    Examples
    --------
    >>> root2 = ("sqrt", Fraction(2))
    >>> round_expression(("sum", Fraction(1), ("times", Fraction(-2), root2)))  # 1 - 2 sqrt(2)
    -1.82842712474619
    >>> round_expression(("sqrt", ("sum", Fraction(3), ("times", Fraction(2), root2))))
    2.414213562373095
    """
    simple = _simplified(expression)
    if simple is None:
        return math.nan
    if isinstance(simple, Fraction):
        return round_fraction(simple)
    bits = 64
    while bits <= _MOST_BITS:
        low, high = _bounds(simple, bits)
        ends = (round_fraction(low), round_fraction(high))
        if ends[0] == ends[1] and math.copysign(1, ends[0]) == math.copysign(1, ends[1]):
            return ends[0]
        bits *= 2
    return round_fraction((low + high) / 2)  # a rational boundary reached by chance: unseen


#: Precision at which :func:`round_expression` stops refining (a value exactly on a
#: rounding boundary that is not recognised as rational would need infinitely many).
_MOST_BITS = 1 << 16


def _simplified(expression: Expression) -> Expression | None:
    """The expression with its rational parts computed; None where a radicand is negative."""
    if isinstance(expression, Fraction):
        return expression
    kind, *parts = expression
    if kind == "times":
        inner = _simplified(parts[1])
        if inner is None:
            return None
        if isinstance(inner, Fraction) or parts[0] == 0:
            return parts[0] * inner if isinstance(inner, Fraction) else Fraction(0)
        return ("times", parts[0], inner)
    if kind == "sqrt":
        inner = _simplified(parts[0])
        if inner is None or (isinstance(inner, Fraction) and inner < 0):
            return None
        if isinstance(inner, Fraction):
            root = _rational_sqrt(inner)
            return root if root is not None else ("sqrt", inner)
        return ("sqrt", inner)
    terms = [_simplified(part) for part in parts]
    if any(term is None for term in terms):
        return None
    rational = sum((term for term in terms if isinstance(term, Fraction)), Fraction(0))
    rest = [term for term in terms if not isinstance(term, Fraction)]
    if not rest:
        return rational
    return ("sum", rational, *rest)


def _bounds(expression: Expression, bits: int) -> tuple[Fraction, Fraction]:
    """Rational bounds of an expression, each square root known to ``bits`` bits."""
    if isinstance(expression, Fraction):
        return expression, expression
    kind, *parts = expression
    if kind == "times":
        low, high = _bounds(parts[1], bits)
        ends = (parts[0] * low, parts[0] * high)
        return min(ends), max(ends)
    if kind == "sqrt":
        low, high = _bounds(parts[0], bits)
        scale = 4**bits
        floor = math.isqrt(max(low, Fraction(0)) * scale // 1)
        ceil = math.isqrt(-(-max(high, Fraction(0)) * scale // 1)) + 1
        return Fraction(floor, 2**bits), Fraction(ceil, 2**bits)
    ends = [_bounds(part, bits) for part in parts]
    return sum((e[0] for e in ends), Fraction(0)), sum((e[1] for e in ends), Fraction(0))
