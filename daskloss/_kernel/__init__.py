"""The exact kernel's small interface: float64 rows in, exact integer sums out.

An :class:`Accumulator` takes aligned float64 chunks of a target, one or more
predictions and an optional weight, optionally with a group code per row, and
sums them exactly through the compiled code (:mod:`daskloss._kernel.compiled`).
:meth:`Accumulator.result` gives, per group, a :class:`GroupSums`: every sum
an ``int`` in units of ``2**-FRACTION_BITS`` (see :mod:`daskloss.exact`),
``max |d|`` per prediction, and the rows left out and why. Merging and
rounding happen above, on those integers.

Two paths give the same integers: the *window* path (fast, the default) and
the *row* path (every term of every row into the sums: the reference). How
they work is written up in ``docs/kernel.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from daskloss._kernel import compiled
from daskloss.exact import FRACTION_BITS

__all__ = [
    "Accumulator",
    "GroupSums",
    "LeftOut",
    "PairSums",
    "Path",
    "PredictionSums",
    "RowAccumulator",
    "RowSums",
    "accumulate",
    "accumulate_chunks",
]

Path = Literal["window", "row"]

_SEGMENTS = {
    ("window", False): compiled.segments_windows_unweighted,
    ("window", True): compiled.segments_windows_weighted,
    ("row", False): compiled.segments_rows_unweighted,
    ("row", True): compiled.segments_rows_weighted,
}
_NO_WEIGHT = np.empty(0, np.float64)
_COUNT = {name: index for index, name in enumerate(compiled.COUNTS)}
_SUM = {name: index for index, name in enumerate(compiled.ACCUMULATORS)}
#: Pool entries (full-range integers) allocated at first; doubled when needed.
_POOL = 8
_HEADER = 0
_POOL_START, _POOL_USED, _POOL_ROOM = 0, 1, 2


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Rows the kernel left out of every sum, and why."""

    #: Rows with a NaN or an infinity in any of their values.
    skipped: int = 0
    #: Non-finite values per column (a row may count in several).
    nonfinite_true: int = 0
    nonfinite_weight: int = 0
    #: Non-finite values in each prediction column.
    nonfinite_pred: tuple[int, ...] = (0,)
    #: Finite rows with a negative weight.
    negative_weight: int = 0
    #: Finite rows whose residual ``y_pred - y_true`` overflows float64.
    residual_overflow: int = 0

    def __add__(self, other: LeftOut) -> LeftOut:
        return LeftOut(
            self.skipped + other.skipped,
            self.nonfinite_true + other.nonfinite_true,
            self.nonfinite_weight + other.nonfinite_weight,
            tuple(a + b for a, b in zip(self.nonfinite_pred, other.nonfinite_pred, strict=True)),
            self.negative_weight + other.negative_weight,
            self.residual_overflow + other.residual_overflow,
        )

    def __sub__(self, other: LeftOut) -> LeftOut:
        return LeftOut(
            self.skipped - other.skipped,
            self.nonfinite_true - other.nonfinite_true,
            self.nonfinite_weight - other.nonfinite_weight,
            tuple(a - b for a, b in zip(self.nonfinite_pred, other.nonfinite_pred, strict=True)),
            self.negative_weight - other.negative_weight,
            self.residual_overflow - other.residual_overflow,
        )


@dataclass(frozen=True, slots=True)
class PredictionSums:
    """Exact sums of one prediction's residuals ``d = fl(y_pred - y_true)``."""

    squared_error: int
    abs_error: int
    signed_error: int
    #: ``max |d|`` over the rows kept with a positive weight (0.0 when none).
    max_abs_error: float
    #: ``sum(w * d**4)`` (None unless moments were asked for).
    fourth_power: int | None = None


@dataclass(frozen=True, slots=True)
class PairSums:
    """Exact cross moments of two predictions' residuals ``d_a`` and ``d_b``."""

    #: ``sum(w * d_a**2 * d_b**2)``
    squared_product: int
    #: ``sum(w * |d_a| * |d_b|)``
    abs_product: int


@dataclass(frozen=True, slots=True)
class GroupSums:
    """Exact sums over one group's rows kept (integers in units of ``2**-FRACTION_BITS``)."""

    count: int
    weight_sum: int
    target_sum: int
    target_squared: int
    predictions: tuple[PredictionSums, ...]
    left_out: LeftOut = field(default_factory=LeftOut)
    #: ``sum(w**2)`` (None unless moments were asked for).
    weight_squared: int | None = None
    #: The cross moments of each pair asked for.
    pairs: tuple[PairSums, ...] = ()


@dataclass(frozen=True, slots=True)
class RowSums:
    """Exact sums of one prediction over the rows kept (see :class:`GroupSums`)."""

    count: int
    weight_sum: int
    squared_error: int
    abs_error: int
    signed_error: int
    target_sum: int
    target_squared: int
    max_abs_error: float
    left_out: LeftOut


class Accumulator:
    """Exact sums of rows fed chunk by chunk, per group: create, :meth:`add`, :meth:`result`.

    Parameters
    ----------
    predictions : int
        Prediction columns per row; they share the rows (a row left out for
        any of its values is left out for all of them).
    weighted : bool
        Whether rows carry a weight (``weight`` is ignored otherwise).
    path : {'window', 'row'}
        The fast window path, or the row path (the reference).
    moments : bool
        Also ``sum(w**2)`` and each prediction's ``sum(w * d**4)`` (for
        standard errors), and the cross moments of ``pairs``.
    pairs : sequence of (int, int)
        Pairs of prediction indices whose cross moments to sum (with ``moments``).
    """

    def __init__(
        self,
        predictions: int = 1,
        weighted: bool = False,
        *,
        path: Path = "window",
        moments: bool = False,
        pairs: Sequence[tuple[int, int]] = (),
    ):
        self.predictions = predictions
        self.weighted = weighted
        self.moments = moments
        self._segments = _SEGMENTS[path, weighted]
        self._pairs = np.array(list(pairs), np.int64).reshape(-1, 2)
        moment_sums = compiled.moment_sums(predictions, len(self._pairs)) if moments else 0
        self._sums = predictions * compiled.NSUMS + moment_sums
        self._groups = 0
        self._capacity = 0
        self._pool_room = _POOL
        self._state = self._new_state(0, _POOL)
        self._counts = np.zeros((0, len(compiled.COUNTS)), np.int64)
        self._max_abs = np.zeros((0, predictions), np.float64)
        self._extra: dict[int, LeftOut] = {}  # rows left out before the kernel, per group
        self._extra_total = self._no_left_out()

    def add(
        self,
        y_true: np.ndarray,
        predictions: Sequence[np.ndarray],
        weight: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        ngroups: int = 1,
    ) -> None:
        """Add aligned contiguous float64 arrays of rows.

        ``groups`` gives each row's group code, from 0 to ``ngroups - 1``
        (None: every row is in group 0).
        """
        self._grow(ngroups)
        if len(predictions) > 1:
            preds = np.ascontiguousarray(np.stack(predictions))
        else:
            preds = predictions[0].reshape(1, -1)
        weight = weight if self.weighted else _NO_WEIGHT
        if self.predictions > 1:
            y_true, preds, weight, groups = self._keep_good_rows(y_true, preds, weight, groups)
        n = len(y_true)
        if groups is None:
            segments = np.array([[0, 0, n]], np.int64) if n else np.zeros((0, 3), np.int64)
        else:
            y_true, preds, weight, segments = compiled.group_rows(
                np.asarray(groups, np.int64), ngroups, y_true, preds, weight
            )
        spare = np.zeros(len(compiled.COUNTS), np.int64)
        step = 0
        while True:
            step = self._segments(
                _readonly(y_true),
                _readonly(preds),
                _readonly(weight),
                segments,
                (self._sums, self._pairs),
                self._state,
                self._counts,
                spare,
                self._max_abs,
                step,
            )
            if step == len(segments) * (self.predictions + self.moments):
                return
            self._resize(self._capacity, 2 * self._pool_room)

    def left_out(self) -> LeftOut:
        """The rows left out so far over every group, and why."""
        return self._left_out_of(self._counts[: self._groups].sum(axis=0)) + self._extra_total

    def result(self) -> list[GroupSums]:
        """The exact sums of every group, indexed by group code."""
        values = self._values()
        return [self._group_result(g, values[g]) for g in range(self._groups)]

    def rows(self) -> list[tuple[Any, ...]]:
        """:meth:`result` as one flat tuple per group, quicker to make and to merge.

        Each is ``(count, skipped, weight_sum, target_sum, target_squared,
        weight_squared)``, then per prediction ``(squared_error, abs_error,
        signed_error, max_abs_error, fourth_power)``, then per pair
        ``(squared_product, abs_product)``; moments are 0 unless asked for.
        """
        values = self._values()
        counts = self._counts[: self._groups, [_COUNT["rows"], _COUNT["skipped"]]].tolist()
        largest = self._max_abs[: self._groups].tolist()
        extra_skipped = {g: found.skipped for g, found in self._extra.items()}
        nsums, npreds = compiled.NSUMS, self.predictions
        weight, squared = _SUM["weight"], _SUM["squared_error"]
        positive, negative = _SUM["positive_error"], _SUM["negative_error"]
        target_pos, target_neg = _SUM["target_positive"], _SUM["target_negative"]
        target_squared = _SUM["target_squared"]
        moments_at = npreds * nsums
        found = []
        for g, ((count, skipped), sums, maxima) in enumerate(
            zip(counts, values, largest, strict=True)
        ):
            moments = sums[moments_at:] if self.moments else None
            row = [
                count,
                skipped + extra_skipped.get(g, 0),
                sums[weight] if self.weighted else count << FRACTION_BITS,
                sums[target_pos] - sums[target_neg],
                sums[target_squared],
                moments[0] if moments else 0,
            ]
            for j in range(npreds):
                at = j * nsums
                row += (
                    sums[at + squared],
                    sums[at + positive] + sums[at + negative],
                    sums[at + positive] - sums[at + negative],
                    maxima[j],
                    moments[1 + j] if moments else 0,
                )
            if moments:
                row += moments[1 + npreds :]
            found.append(tuple(row))
        return found

    def _grow(self, ngroups: int) -> None:
        """Room for ``ngroups`` groups (the state doubled as codes appear)."""
        if ngroups > self._capacity:
            extra = max(ngroups, 2 * self._capacity) - self._capacity
            self._resize(self._capacity + extra, self._pool_room)
            self._counts = np.concatenate(
                [self._counts, np.zeros((extra, len(compiled.COUNTS)), np.int64)]
            )
            self._max_abs = np.concatenate([self._max_abs, np.zeros((extra, self.predictions))])
        self._groups = max(self._groups, ngroups)

    def _new_state(self, capacity: int, pool_room: int) -> np.ndarray:
        """A state array: the header, ``capacity`` groups' sums, ``pool_room`` pool entries."""
        rows = compiled.HEADER_ROWS + capacity * self._sums
        state = np.zeros((rows + pool_room * compiled.POOL_ROWS, compiled.STATE_COLUMNS), np.uint64)
        state[compiled.HEADER_ROWS : rows, compiled.WORDS] = np.uint64(
            np.int64(compiled.UNSET).view(np.uint64)
        )
        state[_HEADER, _POOL_START] = rows
        state[_HEADER, _POOL_ROOM] = pool_room
        return state

    def _resize(self, capacity: int, pool_room: int) -> None:
        """Move the sums and the pool into a state array with more room."""
        old, old_rows = self._state, self._sum_rows(self._capacity)
        state = self._new_state(capacity, pool_room)
        state[compiled.HEADER_ROWS : old_rows] = old[compiled.HEADER_ROWS : old_rows]
        pool = old[old_rows:]
        start = self._sum_rows(capacity)
        state[start : start + len(pool)] = pool
        state[_HEADER, _POOL_USED] = old[_HEADER, _POOL_USED]
        self._state, self._capacity, self._pool_room = state, capacity, pool_room

    def _sum_rows(self, capacity: int) -> int:
        return compiled.HEADER_ROWS + capacity * self._sums

    def _keep_good_rows(self, y_true, preds, weight, groups):
        """Rows good in every column; the others counted per group (several predictions)."""
        nonfinite = np.zeros(2 + self.predictions, np.int64)
        outcome, bad = compiled.row_outcomes(y_true, preds, weight, nonfinite)
        if not bad:
            return y_true, preds, weight, groups
        codes = np.zeros(len(y_true), np.int64) if groups is None else np.asarray(groups)
        for g in np.unique(codes[outcome != compiled.ROW_KEPT]):
            mine = outcome[codes == g]
            column_counts = _column_counts(y_true, preds, weight, codes == g)
            found = LeftOut(
                skipped=int((mine == compiled.ROW_SKIPPED).sum()),
                nonfinite_true=int(column_counts[0]),
                nonfinite_weight=int(column_counts[1]),
                nonfinite_pred=tuple(int(c) for c in column_counts[2:]),
                negative_weight=int((mine == compiled.ROW_NEGATIVE_WEIGHT).sum()),
                residual_overflow=int((mine == compiled.ROW_OVERFLOW).sum()),
            )
            self._extra[int(g)] = self._extra.get(int(g), self._no_left_out()) + found
            self._extra_total += found
        keep = outcome == compiled.ROW_KEPT
        weight = weight[keep] if weight.size else weight
        return y_true[keep], preds[:, keep], weight, None if groups is None else codes[keep]

    def _no_left_out(self) -> LeftOut:
        return LeftOut(nonfinite_pred=(0,) * self.predictions)

    def _left_out_of(self, counts: np.ndarray) -> LeftOut:
        """The kernel's counts of rows left out as a :class:`LeftOut`."""
        if not counts[1:].any():  # the usual case: nothing left out
            return self._none_left_out
        return LeftOut(
            skipped=int(counts[_COUNT["skipped"]]),
            nonfinite_true=int(counts[_COUNT["nonfinite_true"]]),
            nonfinite_weight=int(counts[_COUNT["nonfinite_weight"]]),
            nonfinite_pred=(int(counts[_COUNT["nonfinite_pred"]]),) + (0,) * (self.predictions - 1),
            negative_weight=int(counts[_COUNT["negative_weight"]]),
            residual_overflow=int(counts[_COUNT["residual_overflow"]]),
        )

    @functools.cached_property
    def _none_left_out(self) -> LeftOut:
        return self._no_left_out()

    def _group_left_out(self, g: int) -> LeftOut:
        found = self._left_out_of(self._counts[g])
        extra = self._extra.get(g)
        return found if extra is None else found + extra

    def _group_result(self, g: int, values: list[int]) -> GroupSums:
        rows = int(self._counts[g, _COUNT["rows"]])
        first = values[: compiled.NSUMS]

        def sum_of(sums: list[int], name: str) -> int:
            return sums[_SUM[name]]

        moments = values[self.predictions * compiled.NSUMS :] if self.moments else []
        predictions = []
        for j in range(self.predictions):
            sums = values[j * compiled.NSUMS : (j + 1) * compiled.NSUMS]
            positive, negative = sum_of(sums, "positive_error"), sum_of(sums, "negative_error")
            predictions.append(
                PredictionSums(
                    squared_error=sum_of(sums, "squared_error"),
                    abs_error=positive + negative,
                    signed_error=positive - negative,
                    max_abs_error=float(self._max_abs[g, j]),
                    fourth_power=moments[1 + j] if moments else None,
                )
            )
        cross = moments[1 + self.predictions :]
        return GroupSums(
            count=rows,
            weight_sum=sum_of(first, "weight") if self.weighted else rows << FRACTION_BITS,
            target_sum=sum_of(first, "target_positive") - sum_of(first, "target_negative"),
            target_squared=sum_of(first, "target_squared"),
            predictions=tuple(predictions),
            left_out=self._group_left_out(g),
            weight_squared=moments[0] if moments else None,
            pairs=tuple(PairSums(*cross[2 * p : 2 * p + 2]) for p in range(len(self._pairs))),
        )

    def _values(self) -> list[list[int]]:
        """Every sum of every group: fixed-point words at their anchors, plus pool entries."""
        first = compiled.HEADER_ROWS
        rows = self._state[first : first + self._groups * self._sums]
        anchors = rows[:, compiled.WORDS].view(np.int64).tolist()
        entries = rows[:, compiled.WORDS + 1].tolist()
        raw = np.ascontiguousarray(rows[:, : compiled.WORDS]).tobytes()
        size = 8 * compiled.WORDS
        pool_start = int(self._state[_HEADER, _POOL_START])
        values = []
        for index, (anchor, entry) in enumerate(zip(anchors, entries, strict=True)):
            value = 0
            if anchor != compiled.UNSET:
                value = int.from_bytes(raw[index * size : (index + 1) * size], "little")
                shift = anchor + FRACTION_BITS
                value = value << shift if shift >= 0 else value >> -shift
            if entry:
                start = pool_start + (entry - 1) * compiled.POOL_ROWS
                words = self._state[start : start + compiled.POOL_ROWS]
                value += int.from_bytes(words.tobytes(), "little")
            values.append(value)
        return [values[g * self._sums : (g + 1) * self._sums] for g in range(self._groups)]


class RowAccumulator:
    """Exact sums of one prediction's rows, no groups: create, :meth:`add`, :meth:`result`."""

    def __init__(self, weighted: bool, *, path: Path = "window") -> None:
        self.weighted = weighted
        self._accumulator = Accumulator(1, weighted, path=path)

    def add(self, y_true: np.ndarray, y_pred: np.ndarray, weight: np.ndarray | None) -> None:
        """Add aligned contiguous float64 arrays of rows."""
        self._accumulator.add(y_true, [y_pred], weight)

    def left_out(self) -> LeftOut:
        """The rows left out so far, and why."""
        return self._accumulator.left_out()

    def result(self) -> RowSums:
        """The exact sums of every row added."""
        found = self._accumulator.result()
        if not found:
            return RowSums(0, 0, 0, 0, 0, 0, 0, 0.0, LeftOut())
        group = found[0]
        prediction = group.predictions[0]
        return RowSums(
            count=group.count,
            weight_sum=group.weight_sum,
            squared_error=prediction.squared_error,
            abs_error=prediction.abs_error,
            signed_error=prediction.signed_error,
            target_sum=group.target_sum,
            target_squared=group.target_squared,
            max_abs_error=prediction.max_abs_error,
            left_out=group.left_out,
        )


def accumulate(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    path: Path = "window",
) -> RowSums:
    """Exact sums of float64 arrays of equal length.

    Examples
    --------
    >>> import numpy as np
    >>> accumulate(np.array([1.0, 2.0]), np.array([1.5, 1.0])).count
    2
    """
    return accumulate_chunks([(y_true, y_pred, weight)], weighted=weight is not None, path=path)


def accumulate_chunks(
    chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    weighted: bool,
    *,
    path: Path = "window",
) -> RowSums:
    """Exact sums over aligned chunks ``(y_true, y_pred, weight)`` of float64 arrays."""
    accumulator = RowAccumulator(weighted, path=path)
    for y_true, y_pred, weight in chunks:
        accumulator.add(y_true, y_pred, weight)
    return accumulator.result()


def _readonly(array: np.ndarray) -> np.ndarray:
    """A read-only view: numpy and Arrow inputs then share one compiled signature."""
    view = array.view()
    view.flags.writeable = False
    return view


def _column_counts(y_true, preds, weight, rows) -> np.ndarray:
    """Non-finite values per column (target, weight, each prediction) among ``rows``."""
    nonfinite = np.zeros(2 + preds.shape[0], np.int64)
    weight = weight[rows] if weight.size else weight
    compiled.row_outcomes(y_true[rows], np.ascontiguousarray(preds[:, rows]), weight, nonfinite)
    return nonfinite
