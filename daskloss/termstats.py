"""The statistics of the metric functions: exact sums per term and output, and input facts.

A pass of :mod:`daskloss.metrics` reads each row once and keeps, like
:class:`~daskloss.stats.ErrorStats`, a mergeable value (:class:`PassStats`):

* the facts validation needs (:class:`ColumnFacts`): NaN and infinite values
  and the lowest value of every column, and the number of rows;
* per per-row term (:mod:`daskloss.terms`) and output, the exact sums of the
  term (:class:`SignedStats`). Unlike the job's statistics these allow what
  scikit-learn allows: negative sample weights (their rows are summed apart,
  with weight ``-w``, and subtracted exactly) and residuals or terms that
  overflow float64 (their contributions are summed in IEEE arithmetic, where
  only infinities and NaN can arise, so that sum does not depend on order).

A chunk holding NaN or infinity in any input is only counted: the pass then
fails its checks whatever the sums would be.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from daskloss._kernel import RowAccumulator
from daskloss.chunks import Chunk
from daskloss.roles import Roles
from daskloss.stats import ErrorStats
from daskloss.terms import Term, term_columns

__all__ = ["ColumnFacts", "PassSpec", "PassStats", "SignedStats"]

_NONE = (0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class SignedStats:
    """Exact sums of one term over some rows, whatever the sign of their weights.

    Attributes
    ----------
    positive : ErrorStats
        The rows of weight ``w >= 0`` (see :class:`~daskloss.stats.ErrorStats`).
    negative : ErrorStats
        The rows of weight ``w < 0``, summed with weight ``-w``.
    nonfinite : tuple of float
        IEEE sums of ``w * d**2``, ``w * |d|`` and ``w * d`` over the rows of
        non-zero weight whose ``d`` is not finite (0.0 when there are none).
        Those rows' weights and targets are in the exact sums.
    """

    positive: ErrorStats = field(default_factory=ErrorStats)
    negative: ErrorStats = field(default_factory=ErrorStats)
    nonfinite: tuple[float, float, float] = _NONE

    def merge(self, other: SignedStats) -> SignedStats:
        """The sums of the rows of ``self`` and ``other`` together."""
        return SignedStats(
            self.positive.merge(other.positive),
            self.negative.merge(other.negative),
            tuple(a + b for a, b in zip(self.nonfinite, other.nonfinite, strict=True)),  # type: ignore[arg-type]
        )

    def total(self) -> ErrorStats:
        """The exact sums over all rows: the positive part less the negative part.

        ``max_abs_error`` is over every row of non-zero weight (infinite when
        a residual overflowed); ``count`` counts every row.
        """
        summed = {
            f.name: getattr(self.positive, f.name) - getattr(self.negative, f.name)
            for f in fields(ErrorStats)
            if f.metadata.get("exact") and getattr(self.positive, f.name) is not None
        }
        largest = max(self.positive.max_abs_error, self.negative.max_abs_error)
        return ErrorStats(
            count=self.positive.count + self.negative.count,
            max_abs_error=math.inf if self.nonfinite[0] else largest,
            **summed,
        )


@dataclass(frozen=True, slots=True)
class ColumnFacts:
    """What the checks need to know of a column: its non-finite values and its lowest value."""

    nan: int = 0
    infinite: int = 0
    #: The lowest finite value (infinity when there is none).
    lowest: float = math.inf

    @classmethod
    def of(cls, values: np.ndarray) -> ColumnFacts:
        """The facts of a float64 column."""
        finite = np.isfinite(values)
        if finite.all():
            return cls(lowest=float(values.min()) if len(values) else math.inf)
        nan = int(np.isnan(values).sum())
        lowest = float(values[finite].min()) if finite.any() else math.inf
        return cls(nan, len(values) - int(finite.sum()) - nan, lowest)

    def merge(self, other: ColumnFacts) -> ColumnFacts:
        return ColumnFacts(
            self.nan + other.nan, self.infinite + other.infinite, min(self.lowest, other.lowest)
        )

    @property
    def finite(self) -> bool:
        return not (self.nan or self.infinite)


@dataclass(frozen=True)
class PassSpec:
    """What a pass computes: the sums of these terms, for each output's roles."""

    terms: tuple[Term, ...]
    roles: tuple[Roles, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column read: the targets, then the predictions, then the weight."""
        weight = (self.roles[0].weight,) if self.roles[0].weight else ()
        return (
            *(r.y_true for r in self.roles),
            *(r.y_pred for r in self.roles),
            *weight,
        )


@dataclass(frozen=True)
class PassStats:
    """The mergeable result of a pass (see the module docstring).

    Attributes
    ----------
    rows : int
        Rows read.
    facts : tuple of ColumnFacts
        One per column of :attr:`PassSpec.columns`.
    sums : tuple of tuple of SignedStats
        ``sums[i][j]``: the sums of term ``i`` of the spec for output ``j``.
    """

    rows: int = 0
    facts: tuple[ColumnFacts, ...] = ()
    sums: tuple[tuple[SignedStats, ...], ...] = ()

    @classmethod
    def from_chunks(cls, chunks: Iterable[Chunk], spec: PassSpec) -> PassStats:
        """The statistics of a stream of chunks holding the spec's columns."""
        accumulators = {
            (i, j): _SignedAccumulator(weighted=role.weight is not None)
            for i in range(len(spec.terms))
            for j, role in enumerate(spec.roles)
        }
        rows = 0
        facts = [ColumnFacts()] * len(spec.columns)
        for chunk in chunks:
            found = [ColumnFacts.of(chunk.values[name]) for name in spec.columns]
            facts = [a.merge(b) for a, b in zip(facts, found, strict=True)]
            rows += chunk.rows
            if not all(f.finite for f in found):
                continue  # the checks fail; no sums are needed
            for j, role in enumerate(spec.roles):
                y_true, y_pred = chunk.values[role.y_true], chunk.values[role.y_pred]
                weight = chunk.values[role.weight] if role.weight else None
                for i, term in enumerate(spec.terms):
                    accumulators[i, j].add(*term_columns(term, y_true, y_pred), weight)
        sums = tuple(
            tuple(accumulators[i, j].result() for j in range(len(spec.roles)))
            for i in range(len(spec.terms))
        )
        return cls(rows, tuple(facts), sums)

    @classmethod
    def merge_all(cls, parts: Sequence[PassStats]) -> PassStats:
        """Merge any number of statistics (the empty ones for none)."""
        merged = cls()
        for part in parts:
            merged = merged.merge(part)
        return merged

    def merge(self, other: PassStats) -> PassStats:
        """The statistics of the rows of ``self`` and ``other`` together (exact)."""
        return PassStats(
            self.rows + other.rows,
            _pairwise(self.facts, other.facts, ColumnFacts.merge),
            tuple(
                _pairwise(mine, theirs, SignedStats.merge)
                for mine, theirs in itertools.zip_longest(self.sums, other.sums, fillvalue=())
            ),
        )


def _pairwise(mine: Sequence[Any], theirs: Sequence[Any], merge: Any) -> tuple[Any, ...]:
    """Merge two sequences item by item (an empty one is the identity)."""
    if not mine or not theirs:
        return tuple(mine or theirs)
    return tuple(merge(a, b) for a, b in zip(mine, theirs, strict=True))


class _SignedAccumulator:
    """A :class:`RowAccumulator` for rows of any weight sign, and residuals that overflow."""

    def __init__(self, weighted: bool) -> None:
        self.positive = RowAccumulator(weighted)
        self.negative: RowAccumulator | None = None
        self.nonfinite = _NONE

    def add(self, a: np.ndarray, b: np.ndarray, weight: np.ndarray | None) -> None:
        before = self.positive.left_out()
        self.positive.add(a, b, weight)
        if self.positive.left_out() != before:
            self._add_left_out(a, b, np.ones_like(a) if weight is None else weight)

    def _add_left_out(self, a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> None:
        """Sum the rows the kernel left out: negative weights, and ``d`` not finite."""
        with np.errstate(all="ignore"):
            d = b - a
        finite = np.isfinite(d)
        self._add_negative(a[finite], b[finite], weight[finite])
        a, d, weight = a[~finite], d[~finite], weight[~finite]
        heavy = weight != 0
        if heavy.any():
            with np.errstate(all="ignore"):
                w, r = weight[heavy], d[heavy]
                found = (np.sum(w * r * r), np.sum(w * np.abs(r)), np.sum(w * r))
            self.nonfinite = tuple(float(x + y) for x, y in zip(self.nonfinite, found, strict=True))  # type: ignore[assignment]
        up = weight >= 0  # the rows' weights and targets still count, their residuals as 0
        if up.any():
            self.positive.add(a[up], a[up], weight[up])
        self._add_negative(a[~up], a[~up], weight[~up])

    def _add_negative(self, a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> None:
        down = weight < 0
        if down.any():
            self.negative = self.negative or RowAccumulator(weighted=True)
            self.negative.add(a[down], b[down], -weight[down])

    def result(self) -> SignedStats:
        negative = ErrorStats.from_sums(self.negative.result()) if self.negative else ErrorStats()
        return SignedStats(ErrorStats.from_sums(self.positive.result()), negative, self.nonfinite)
