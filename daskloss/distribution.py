"""The residuals' histogram: exact counts and weight sums in fixed bins, and what they bound.

A :class:`Histogram` counts the residuals ``d = fl(y_pred - y_true)`` of some
rows in fixed bins that are the same on every worker (see
:mod:`daskloss._rowpass`): a bin for ``d == 0``, then, for each sign, bins of
``|d|`` of width ``2**-MANTISSA_BITS`` relative to the binade they lie in
(``[m * 2**e, (m + 1) * 2**e)`` with ``128 <= m < 256``). Each bin holds the
exact number of rows and the exact sum of their weights, so histograms merge
by addition, exactly, and need no first pass for the data's range.

From the bins:

* :meth:`Histogram.quantile`: the quantile of ``|d|`` at level ``p`` (the
  smallest ``x`` with at least ``p`` of the total weight at ``|d| <= x``: numpy's
  ``inverted_cdf``, weighted) is found exactly to its bin, ``[lo, hi)``, and
  reported as the point of the bin nearest it in relative terms,
  ``2 lo hi / (lo + hi)`` (0 for the zero bin): its relative error is at most
  ``(hi - lo) / (hi + lo) <= 1 / 257`` (under 0.39%) for ``|d| >= 2**-1022``,
  plus the final rounding to float64.
* :meth:`Histogram.se_share`: the share of the squared error ``sum(w d**2)``
  contributed by the rows of largest ``|d|`` holding a fraction ``top`` of
  the weight, bounded from the bins' edges: the true share lies in
  ``[low, high]``, and ``high / low <= (129 / 128)**2`` (1.6%) when those rows'
  residuals are at least ``2**-1022``.

Every reported number is the correctly rounded float64 of an exact rational,
so it is bit-identical for any partitioning of the rows.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from daskloss._rowpass import MANTISSA_BITS, NCODES
from daskloss.exact import FRACTION_BITS, pack_exact, round_fraction, unpack_exact

__all__ = [
    "MANTISSA_BITS",
    "QUANTILE_LEVELS",
    "QUANTILE_RELATIVE_ERROR",
    "Histogram",
    "bin_edges",
    "histogram_from_dense",
]

#: The quantile levels of ``|d|`` the report gives, as text (exact decimals).
QUANTILE_LEVELS: tuple[str, ...] = ("0.5", "0.9", "0.99", "0.999")
#: The largest relative error of a reported quantile (before its rounding to float64).
QUANTILE_RELATIVE_ERROR = Fraction(1, 2 ** (MANTISSA_BITS + 1) + 1)
_UNIT = 1 << FRACTION_BITS
_BIN_SHIFT = 52 - MANTISSA_BITS
_INFINITY_BITS = 0x7FF << 52


def bin_edges(code: int, bits: int = MANTISSA_BITS) -> tuple[Fraction, Fraction]:
    """The exact edges ``[low, high)`` of the ``|d|`` bin of ``code`` (>= 1) at ``bits`` bits.

    Code 0 is the zero bin, ``[0, 0]``.

    Examples
    --------
    >>> bin_edges(0), [float(x) for x in bin_edges(1 + (1023 << 7))]
    ((Fraction(0, 1), Fraction(0, 1)), [1.0, 1.0078125])
    """
    if code == 0:
        return Fraction(0), Fraction(0)
    shift = 52 - bits
    return _from_bits((code - 1) << shift), _from_bits(code << shift)


def _from_bits(bits: int) -> Fraction:
    """The exact value of a non-negative float64 bit pattern (2**1024 for infinity's)."""
    if bits >= _INFINITY_BITS:
        return Fraction(2**1024)
    return Fraction(float(np.array(bits, np.uint64).view(np.float64)))


@dataclass(frozen=True, eq=False)
class Histogram:
    """Exact counts and weight sums of residuals in fixed bins; merged by addition.

    Attributes
    ----------
    codes : numpy.ndarray
        Signed bin codes, ascending (ascending ``d``): ``-c`` for a bin of
        ``d < 0``, ``c`` for ``d >= 0`` (0: ``d == 0``), where ``c`` is the
        code of ``|d|`` (see :func:`bin_edges`).
    counts : numpy.ndarray
        Rows in each bin (int64).
    weights : tuple of int, or None
        Exact sum of the weights in each bin, in units of
        ``2**-FRACTION_BITS``; None for unweighted rows (each weighs 1).

    Examples
    --------
    >>> h = Histogram.of_residuals(np.array([-2.0, 0.0, 1.0, 3.0]))
    >>> h.quantile("0.5"), h.count  # the median, 1, lies in [1, 1 + 1/128)
    (1.0038910505836576, 4)
    >>> h.merge(h).counts.tolist()
    [2, 2, 2, 2]
    """

    codes: np.ndarray
    counts: np.ndarray
    weights: tuple[int, ...] | None = None

    @classmethod
    def empty(cls, weighted: bool = False) -> Histogram:
        """The histogram of no rows."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), () if weighted else None)

    @classmethod
    def of_residuals(cls, d: np.ndarray, weight: np.ndarray | None = None) -> Histogram:
        """The histogram of finite residuals (and non-negative weights) given directly.

        For tests and small data: evaluations build theirs in one compiled pass.
        """
        magnitude = np.abs(np.asarray(d, np.float64))
        bits = magnitude.view(np.uint64).astype(np.int64)
        code = np.where(bits == 0, 0, (bits >> _BIN_SHIFT) + 1)
        signed = np.where(np.asarray(d) < 0, -code, code)
        codes, inverse = np.unique(signed, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(codes)).astype(np.int64)
        if weight is None:
            return cls(codes, counts)
        sums = [0] * len(codes)
        for index, value in zip(inverse.tolist(), np.asarray(weight).tolist(), strict=True):
            sums[index] += int(Fraction(value) * _UNIT)
        return cls(codes, counts, tuple(sums))

    @property
    def count(self) -> int:
        """Rows counted."""
        return int(self.counts.sum())

    @property
    def weighted(self) -> bool:
        """Whether the rows carry weights."""
        return self.weights is not None

    def bin_weights(self) -> list[int]:
        """Each bin's exact weight sum (its count when unweighted), in exact units."""
        if self.weights is None:
            return [count << FRACTION_BITS for count in self.counts.tolist()]
        return list(self.weights)

    def merge(self, other: Histogram) -> Histogram:
        """The histogram of both histograms' rows."""
        return Histogram.merge_all([self, other])

    @classmethod
    def merge_all(cls, parts: Sequence[Histogram]) -> Histogram:
        """The histogram of every part's rows (at least one part)."""
        if len(parts) == 1:
            return parts[0]
        codes = np.concatenate([p.codes for p in parts])
        merged, inverse = np.unique(codes, return_inverse=True)
        counts = np.zeros(len(merged), np.int64)
        np.add.at(counts, inverse, np.concatenate([p.counts for p in parts]))
        if parts[0].weights is None:
            return cls(merged, counts)
        sums = [0] * len(merged)
        flat = (value for p in parts for value in p.weights or ())
        for index, value in zip(inverse.tolist(), flat, strict=True):
            sums[index] += value
        return cls(merged, counts, tuple(sums))

    def magnitudes(self) -> tuple[list[int], list[int], list[int]]:
        """The ``|d|`` histogram: codes ascending, and each bin's count and exact weight."""
        found: dict[int, list[int]] = {}
        for code, count, weight in zip(
            self.codes.tolist(), self.counts.tolist(), self.bin_weights(), strict=True
        ):
            entry = found.setdefault(abs(code), [0, 0])
            entry[0] += count
            entry[1] += weight
        codes = sorted(found)
        return codes, [found[c][0] for c in codes], [found[c][1] for c in codes]

    def quantile(self, level: str | Fraction) -> float:
        """The quantile of ``|d|`` at ``level`` (0 < level <= 1), within 1/257 relative.

        NaN when the rows weigh nothing. See the module docstring for the
        definition and the bound.
        """
        p = Fraction(level)
        if not 0 < p <= 1:
            raise ValueError(f"a quantile level must lie in (0, 1]; got {level!r}")
        codes, _, weights = self.magnitudes()
        total = sum(weights)
        if total <= 0:
            return math.nan
        cumulative = 0
        for code, weight in zip(codes, weights, strict=True):
            cumulative += weight
            if cumulative * p.denominator >= p.numerator * total and weight > 0:
                return round_fraction(_nearest_in_bin(*bin_edges(code)))
        raise AssertionError("the cumulative weight never reached the level")  # p <= 1

    def quantiles(self, levels: Iterable[str] = QUANTILE_LEVELS) -> dict[str, float]:
        """:meth:`quantile` at each level, keyed by the level's text."""
        return {level: self.quantile(level) for level in levels}

    def se_share(self, squared_error: int, top: str | Fraction = "0.01") -> dict[str, float]:
        """The share of ``sum(w d**2)`` from the largest ``|d|`` with ``top`` of the weight.

        ``squared_error`` is the exact ``sum(w d**2)`` of the same rows (in
        exact units, as :attr:`daskloss.ErrorStats.squared_error`). Returns
        ``share`` (the middle of the bounds), ``low`` and ``high``: the true
        share lies in ``[low, high]``. A row straddling the ``top`` line counts
        for the part of its weight above it. NaN when undefined (no weight, or
        a zero squared error).
        """
        fraction = Fraction(top)
        codes, _, weights = self.magnitudes()
        total = sum(weights)
        if total <= 0 or squared_error <= 0 or not 0 < fraction <= 1:
            return {"top": float(fraction), "share": math.nan, "low": math.nan, "high": math.nan}
        remaining = fraction * total  # weight still to take, in exact units
        top_low = top_high = rest_low = rest_high = Fraction(0)
        for code, weight in zip(reversed(codes), reversed(weights), strict=True):
            low, high = bin_edges(code)
            taken = min(Fraction(weight), remaining)
            remaining -= taken
            top_low += taken * low * low
            top_high += taken * high * high
            rest_low += (weight - taken) * low * low
            rest_high += (weight - taken) * high * high
        se = Fraction(squared_error)
        low = max(top_low, se - rest_high) / se
        high = min(top_high, se - rest_low) / se
        return {
            "top": float(fraction),
            "share": round_fraction((low + high) / 2),
            "low": round_fraction(low),
            "high": round_fraction(high),
        }

    def bins(self, bits: int = 2, *, signed: bool = True) -> list[dict[str, Any]]:
        """The bins merged to ``2**bits`` per binade, ascending: low, high, count, weight.

        Fine bins nest in coarse ones, so the coarse counts and weights are
        exact too. Signed bins of ``d < 0`` are ``[-high, -low)`` mirrored,
        reported as ``low = -high``, ``high = -low``; ``weight`` is the sum of
        the weights, correctly rounded (the count when unweighted).
        """
        if not 0 <= bits <= MANTISSA_BITS:
            raise ValueError(f"bits must be from 0 to {MANTISSA_BITS}; got {bits}")
        step = MANTISSA_BITS - bits
        grouped: dict[int, list[int]] = {}
        if signed:
            rows = zip(self.codes.tolist(), self.counts.tolist(), self.bin_weights(), strict=True)
        else:
            rows = zip(*self.magnitudes(), strict=True)
        for code, count, weight in rows:
            magnitude = abs(code)
            coarse = 0 if magnitude == 0 else ((magnitude - 1) >> step) + 1
            key = -coarse if code < 0 else coarse
            entry = grouped.setdefault(key, [0, 0])
            entry[0] += count
            entry[1] += weight
        found = []
        for key in sorted(grouped):
            low, high = bin_edges(abs(key), bits)
            if key < 0:
                low, high = -high, -low
            count, weight = grouped[key]
            found.append(
                {
                    "low": round_fraction(low),
                    "high": round_fraction(high),
                    "count": count,
                    "weight": round_fraction(Fraction(weight, _UNIT)),
                }
            )
        return found

    def to_data(self) -> dict[str, Any]:
        """The histogram as JSON-ready data, exactly: ``{codes, counts, weights}``.

        Codes and counts are lists of integers. ``weights`` is None when
        unweighted, else ``{exponent, mantissas}``: bin ``i``'s exact weight sum
        is ``int(mantissas[i], 16) * 2**exponent``, one exponent for the
        histogram (that of its finest sum), so the text holds significant bits
        only, whatever the unit of this daskloss. :meth:`from_data` reads it back.

        Examples
        --------
        >>> h = Histogram.of_residuals(np.array([-2.0, 1.0]), np.array([0.5, 3.0]))
        >>> data = h.to_data()
        >>> data["codes"], data["counts"], data["weights"]
        ([-131073, 130945], [1, 1], {'exponent': -1, 'mantissas': ['1', '6']})
        >>> Histogram.from_data(h.to_data()) == h
        True
        """
        weights = None
        if self.weights is not None:
            bits = functools.reduce(operator.or_, self.weights, 0)  # any sum's set bits
            zeros = (bits & -bits).bit_length() - 1 if bits else 0
            weights = {
                "exponent": zeros - FRACTION_BITS,
                "mantissas": [format(weight >> zeros, "x") for weight in self.weights],
            }
        return {"codes": self.codes.tolist(), "counts": self.counts.tolist(), "weights": weights}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Histogram:
        """The histogram :meth:`to_data` wrote.

        Raises
        ------
        ValueError, TypeError, KeyError
            Data that is not what :meth:`to_data` writes.
        """
        codes = _integers(data["codes"], "codes", -NCODES, NCODES)
        counts = _integers(data["counts"], "counts", -1, np.iinfo(np.int64).max)
        if len(counts) != len(codes):
            raise ValueError(f"{len(codes)} histogram codes but {len(counts)} counts")
        if np.any(np.diff(codes) <= 0):
            raise ValueError("histogram codes must be ascending and distinct")
        weights = data["weights"]
        if weights is not None:
            weights = _exact_weights(weights["exponent"], weights["mantissas"], len(codes))
        return cls(codes, counts, weights)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled compactly: codes and counts as arrays, weights by their significant bits."""
        packed = None if self.weights is None else pack_exact(self.weights)
        return _rebuild, (self.codes, self.counts, packed)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Histogram)
            and np.array_equal(self.codes, other.codes)
            and np.array_equal(self.counts, other.counts)
            and self.weights == other.weights
        )

    __hash__ = None  # type: ignore[assignment]


def _rebuild(codes: np.ndarray, counts: np.ndarray, packed: bytes | None) -> Histogram:
    weights = None if packed is None else tuple(unpack_exact(packed))
    return Histogram(codes, counts, weights)


def _integers(values: Any, what: str, low: int, high: int) -> np.ndarray:
    """A JSON list of integers in ``(low, high)``, checked, as int64."""
    array = np.array(values) if isinstance(values, list) else None
    if array is None or array.ndim != 1 or (array.size and array.dtype.kind != "i"):
        raise TypeError(f"histogram {what} must be a list of integers")
    if array.size and (array.min() <= low or array.max() >= high):
        raise ValueError(f"histogram {what} must lie in ({low}, {high})")
    return array.astype(np.int64)


def _exact_weights(exponent: Any, mantissas: Any, bins: int) -> tuple[int, ...]:
    """Each bin's exact weight sum from its hex mantissa and the shared exponent."""
    if type(exponent) is not int or not isinstance(mantissas, list) or len(mantissas) != bins:
        raise TypeError("histogram weights must be an exponent and a hex mantissa per bin")
    shift = exponent + FRACTION_BITS
    if shift < 0:
        raise ValueError(f"histogram weights of 2**{exponent} are finer than this daskloss's unit")
    weights = tuple(int(mantissa, 16) << shift for mantissa in mantissas)
    if weights and min(weights) < 0:
        raise ValueError("a histogram weight sum is negative")
    return weights


def _nearest_in_bin(low: Fraction, high: Fraction) -> Fraction:
    """The point of ``[low, high)`` of least largest relative error: their harmonic mean."""
    if low == 0:
        return high / 2
    return 2 * low * high / (low + high)


def histogram_from_dense(counts: np.ndarray, weights: Mapping[int, int] | None) -> Histogram:
    """A histogram from the compiled pass's dense ``(2, NCODES)`` counts and sparse weights.

    ``weights`` maps a signed code to its exact weight sum (None: unweighted).
    Zero is counted with ``d >= 0``.
    """
    positive = np.flatnonzero(counts[0])
    negative = np.flatnonzero(counts[1])
    codes = np.concatenate([-negative[::-1], positive]).astype(np.int64)
    values = np.concatenate([counts[1][negative[::-1]], counts[0][positive]]).astype(np.int64)
    if weights is None:
        return Histogram(codes, values)
    return Histogram(codes, values, tuple(weights.get(code, 0) for code in codes.tolist()))
