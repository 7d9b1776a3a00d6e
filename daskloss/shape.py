"""The shape of the errors: each prediction's residual histogram and worst rows, per unit.

:class:`ShapeSpec` says what to gather besides the exact sums: the
histogram (:mod:`daskloss.distribution`) and the ``worst_k`` worst rows with
their id columns (:mod:`daskloss.worst`). :class:`ShapeAccumulator` gathers
them from a unit's chunks in one compiled pass per chunk
(:mod:`daskloss._rowpass`), as the exact statistics are summed from the same
chunks; :class:`ShapeStats` is the mergeable result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa

from daskloss import _rowpass
from daskloss.chunks import Chunk
from daskloss.distribution import Histogram, histogram_from_dense
from daskloss.errors import ConfigError
from daskloss.exact import FRACTION_BITS
from daskloss.keys import SliceKeys
from daskloss.names import MAX_WORST_K
from daskloss.roles import EvaluationSpec
from daskloss.worst import WORST_FIELDS, WorstRows, candidate_table

__all__ = ["PredictionShape", "ShapeAccumulator", "ShapeSpec", "ShapeStats"]

#: Pages of exact weight sums a prediction's pool starts with (doubled when full).
_POOL = 16
#: Rows after which the uint64 limb sums are moved into Python integers (they hold 2**32).
_FLUSH_ROWS = 1 << 31
#: Binades below the first weight that the window of exact weight sums reaches.
_BELOW_FIRST_WEIGHT = 30
_NO_CODES = np.zeros(0, np.int64)
_NO_WEIGHT = np.zeros(0, np.float64)


@dataclass(frozen=True)
class ShapeSpec:
    """What to gather besides the exact sums.

    Attributes
    ----------
    histogram : bool
        Each prediction's residual histogram (quantiles, the share of SE).
    worst_k : int
        Worst rows kept per prediction and slice (0: none).
    id_columns : tuple of str
        Columns shown with each worst row (and in the per-row losses).
    """

    histogram: bool = False
    worst_k: int = 0
    id_columns: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        spec: EvaluationSpec,
        *,
        histogram: bool = False,
        worst_k: int = 0,
        id_columns: str | Sequence[str] | None = None,
    ) -> ShapeSpec:
        """The checked shape spec of an evaluation.

        Raises
        ------
        ConfigError
            ``worst_k`` not an integer >= 0, id columns that are not distinct
            non-empty strings, or that take a name of the worst rows' fields.
        """
        if isinstance(worst_k, bool) or not isinstance(worst_k, int) or worst_k < 0:
            raise ConfigError(f"worst_k must be an integer >= 0; got {worst_k!r}")
        if worst_k > MAX_WORST_K:
            raise ConfigError(
                f"worst_k = {worst_k} is more rows than a report should list (at most "
                f"{MAX_WORST_K:,}); write the per-row losses (output.losses) to see them all"
            )
        names = (id_columns,) if isinstance(id_columns, str) else tuple(id_columns or ())
        for name in names:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"id_columns must be column names; got {name!r}")
        if len(set(names)) < len(names):
            raise ConfigError(f"id_columns names a column more than once: {list(names)}")
        reserved = sorted(set(names) & {*WORST_FIELDS, "weight"})
        if reserved:
            raise ConfigError(
                f"id_columns {reserved} take the name of a field of the worst rows "
                f"({', '.join([*WORST_FIELDS, 'weight'])}); choose other evaluation.id_columns "
                "(the target and predictions are shown already)"
            )
        return cls(bool(histogram), worst_k, names)

    @property
    def active(self) -> bool:
        """Whether there is anything to gather."""
        return self.histogram or self.worst_k > 0


@dataclass(frozen=True)
class PredictionShape:
    """One prediction's histogram and worst rows (None where not gathered)."""

    histogram: Histogram | None = None
    worst: WorstRows | None = None


@dataclass(frozen=True)
class ShapeStats:
    """Every prediction's :class:`PredictionShape`; merged prediction by prediction."""

    predictions: tuple[PredictionShape, ...]

    @classmethod
    def merge_all(cls, parts: Sequence[ShapeStats]) -> ShapeStats:
        """The shape of every part's rows (at least one part)."""
        merged = []
        for sides in zip(*(part.predictions for part in parts), strict=True):
            histograms = [side.histogram for side in sides if side.histogram is not None]
            worst = [side.worst for side in sides if side.worst is not None]
            merged.append(
                PredictionShape(
                    Histogram.merge_all(histograms) if histograms else None,
                    WorstRows.merge_all(worst) if worst else None,
                )
            )
        return cls(tuple(merged))

    def merge(self, other: ShapeStats) -> ShapeStats:
        """The shape of both parts' rows."""
        return ShapeStats.merge_all([self, other])

    def settings(self) -> ShapeSpec:
        """What was gathered: the histogram or not, ``worst_k`` and the worst rows' id columns.

        Read off the shape itself (the id columns only matter with worst rows:
        none without them), so that two shapes merge exactly when equal.
        """
        first = self.predictions[0]
        worst = first.worst
        if worst is None:
            return ShapeSpec(first.histogram is not None)
        return ShapeSpec(first.histogram is not None, worst.k, worst.ids)

    def to_data(self) -> list[dict[str, Any]]:
        """JSON-ready data, exactly: ``[{histogram, worst}, ...]``, one per prediction.

        Each is :meth:`Histogram.to_data <daskloss.distribution.Histogram.to_data>`
        and :meth:`WorstRows.to_data <daskloss.worst.WorstRows.to_data>`, or None
        where not gathered. :meth:`from_data` reads it back.
        """
        return [
            {
                "histogram": None if side.histogram is None else side.histogram.to_data(),
                "worst": None if side.worst is None else side.worst.to_data(),
            }
            for side in self.predictions
        ]

    @classmethod
    def from_data(cls, data: Any, spec: EvaluationSpec, shape: ShapeSpec) -> ShapeStats:
        """The shape :meth:`to_data` wrote, checked to be what ``spec`` and ``shape`` gather.

        Raises
        ------
        ValueError, TypeError, KeyError
            Data that is not what :meth:`to_data` writes for them.
        """
        if not isinstance(data, list) or len(data) != len(spec.y_pred):
            raise ValueError(f"expected the shape of {len(spec.y_pred)} predictions")
        return cls(tuple(_prediction_of(side, spec, shape) for side in data))


class ShapeAccumulator:
    """Histograms and worst-row candidates of a unit's chunks: create, :meth:`add`, :meth:`result`.

    Mutable, one per unit task; :meth:`result` gives the immutable value.
    """

    def __init__(self, spec: EvaluationSpec, shape: ShapeSpec) -> None:
        self.spec, self.shape = spec, shape
        npred = len(spec.y_pred)
        self.weighted = spec.weight is not None
        codes = 2 * _rowpass.NCODES if shape.histogram else 0
        self._counts = np.zeros((npred, codes), np.int64)
        self._pages = np.full((npred, 2 * _rowpass.NPAGES), -1, np.int64)
        self._limbs = np.zeros((npred, _POOL if self.weighted else 0, _rowpass.PAGE, 4), np.uint64)
        self._used = np.zeros(npred, np.int64)
        self._base: int | None = None
        self._weights: list[dict[int, int]] = [{} for _ in range(npred)]
        self._rows_since_flush = 0
        self._heaps = np.zeros((npred, 1, shape.worst_k), np.float64)
        self._sizes = np.zeros((npred, 1), np.int64)
        self._floors = np.full((npred, 1), -1.0)
        self._pending: list[list[pa.Table]] = [[] for _ in range(npred)]
        self._pending_rows = 0
        self._worst: list[WorstRows | None] = [None] * npred
        self._slice_keys: SliceKeys | None = None

    def add(self, chunk: Chunk, codes: np.ndarray | None, keys: SliceKeys | None) -> None:
        """Gather a chunk's rows; ``codes`` are its rows' slice codes of ``keys``."""
        values = chunk.values
        y_true = values[self.spec.y_true]
        if len(y_true) == 0:
            return
        preds = [values[name] for name in self.spec.y_pred]
        stacked = preds[0].reshape(1, -1) if len(preds) == 1 else np.stack(preds)
        weight = values[self.spec.weight] if self.weighted else _NO_WEIGHT
        self._slice_keys = keys
        slices = _NO_CODES
        if codes is not None and self.shape.worst_k:
            slices = np.ascontiguousarray(codes, np.int64)
            self._grow_slices(len(keys) if keys is not None else 1)
        self._place_weights(weight)
        npred = len(preds)
        candidates = np.empty((npred, len(y_true) if self.shape.worst_k else 0), np.int64)
        odd = np.empty(len(y_true) if self._limbs.shape[1] else 0, np.int64)
        found = np.zeros(npred + 1, np.int64)
        start = 0
        while True:
            start = _rowpass.observe(
                y_true,
                stacked,
                weight,
                slices,
                start,
                self._counts,
                self._pages,
                self._limbs,
                self._used,
                self._base or 0,
                odd,
                self._heaps,
                self._sizes,
                self._floors,
                candidates,
                found,
            )
            if start == npred * len(y_true):
                break
            self._grow_pool()
        if found[npred]:
            self._add_odd(odd[: found[npred]], y_true, stacked, weight)
        self._rows_since_flush += len(y_true)
        if self._rows_since_flush >= _FLUSH_ROWS:
            self._flush_weights()
        if self.shape.worst_k:
            self._add_candidates(chunk, candidates, found, stacked, y_true, weight, slices)

    def result(self) -> ShapeStats:
        """The unit's histograms and worst rows."""
        self._flush_weights()
        shapes = []
        for j in range(len(self.spec.y_pred)):
            histogram = None
            if self.shape.histogram:
                histogram = histogram_from_dense(
                    self._counts[j].reshape(2, -1), self._weights[j] if self.weighted else None
                )
            worst = self._reduced_worst(j) if self.shape.worst_k else None
            shapes.append(PredictionShape(histogram, worst))
        return ShapeStats(tuple(shapes))

    # --- exact weight sums ---------------------------------------------------------------

    def _place_weights(self, weight: np.ndarray) -> None:
        """Place the window of exact weight sums below the unit's first positive weight."""
        if self._base is not None or not self._limbs.shape[1] or not self.shape.histogram:
            return
        positive = np.flatnonzero((weight > 0) & np.isfinite(weight))
        if positive.size:
            biased = int(weight[positive[0] : positive[0] + 1].view(np.uint64)[0] >> np.uint64(52))
            self._base = max(biased, 1) - 1075 - _BELOW_FIRST_WEIGHT

    def _grow_pool(self) -> None:
        limbs = self._limbs
        grown = np.zeros((limbs.shape[0], 2 * limbs.shape[1], *limbs.shape[2:]), np.uint64)
        grown[:, : limbs.shape[1]] = limbs
        self._limbs = grown

    def _add_odd(self, rows: np.ndarray, y_true, stacked, weight) -> None:
        """Weights outside the window, added exactly one by one (rare)."""
        for j in range(stacked.shape[0]):
            d = stacked[j, rows] - y_true[rows]
            for code, value in zip(_signed_codes(d).tolist(), weight[rows].tolist(), strict=True):
                self._weights[j][code] = self._weights[j].get(code, 0) + int(
                    Fraction(value) * (1 << FRACTION_BITS)
                )

    def _flush_weights(self) -> None:
        """Move the limb sums into the exact Python sums, and zero them."""
        self._rows_since_flush = 0
        if self._base is None or not self._limbs.shape[1]:
            return
        shift = self._base + FRACTION_BITS
        for j in range(self._limbs.shape[0]):
            sums = self._weights[j]
            pages = self._pages[j].reshape(2, -1)
            for sign in (0, 1):
                for page in np.flatnonzero(pages[sign] >= 0).tolist():
                    block = self._limbs[j, pages[sign, page]]
                    for slot in np.flatnonzero(block.any(axis=1)).tolist():
                        limbs = [int(x) for x in block[slot].tolist()]
                        total = limbs[0] + (limbs[1] << 32) + (limbs[2] << 64) + (limbs[3] << 96)
                        code = page * _rowpass.PAGE + slot
                        signed = -code if sign else code
                        sums[signed] = sums.get(signed, 0) + (total << shift)
            self._limbs[j] = 0

    # --- worst rows ------------------------------------------------------------------------

    def _grow_slices(self, slices: int) -> None:
        if slices <= self._heaps.shape[1]:
            return
        room = max(slices, 2 * self._heaps.shape[1])
        heaps = np.zeros((self._heaps.shape[0], room, self._heaps.shape[2]), np.float64)
        sizes = np.zeros((self._sizes.shape[0], room), np.int64)
        floors = np.full((self._floors.shape[0], room), -1.0)
        heaps[:, : self._heaps.shape[1]] = self._heaps
        sizes[:, : self._sizes.shape[1]] = self._sizes
        floors[:, : self._floors.shape[1]] = self._floors
        self._heaps, self._sizes, self._floors = heaps, sizes, floors

    def _add_candidates(self, chunk, candidates, found, stacked, y_true, weight, slices) -> None:
        """The chunk's candidates still at or above their slice's threshold, as tables."""
        k = self.shape.worst_k
        for j in range(stacked.shape[0]):
            rows = candidates[j, : found[j]]
            if not rows.size:
                continue
            s = slices[rows] if slices.size else np.zeros(len(rows), np.int64)
            threshold = self._floors[j, s]
            d = stacked[j, rows] - y_true[rows]
            rows = rows[np.abs(d) >= threshold]
            taken = pa.array(rows)
            keys = {name: chunk.keys[name].take(taken) for name in self.spec.group_by}
            ids = {name: chunk.arrow_column(name).take(taken) for name in self.shape.id_columns}
            self._pending[j].append(
                candidate_table(
                    y_true[rows],
                    stacked[j, rows],
                    stacked[j, rows] - y_true[rows],
                    weight[rows] if self.weighted else None,
                    keys,
                    ids,
                )
            )
            self._pending_rows += len(rows)
        if self._pending_rows > max(1 << 16, 4 * k * self._heaps.shape[1]):
            for j in range(stacked.shape[0]):
                self._worst[j] = self._reduced_worst(j)
            self._pending_rows = 0

    def _reduced_worst(self, j: int) -> WorstRows:
        parts = [WorstRows(self.shape.worst_k, t, *self._naming()) for t in self._pending[j]]
        if self._worst[j] is not None:
            parts.append(self._worst[j])  # type: ignore[arg-type]
        self._pending[j] = []
        if not parts:
            empty = candidate_table(_NO_WEIGHT, _NO_WEIGHT, _NO_WEIGHT, None, {}, {})
            return WorstRows(self.shape.worst_k, empty, *self._naming())
        return WorstRows.merge_all(parts)

    def _naming(self) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        return self.spec.group_by, self.shape.id_columns, self.weighted


def _prediction_of(data: Any, spec: EvaluationSpec, shape: ShapeSpec) -> PredictionShape:
    """One prediction's part of :meth:`ShapeStats.from_data`, checked against the settings."""
    weighted = spec.weight is not None
    histogram = data["histogram"]
    if (histogram is not None) != shape.histogram:
        raise ValueError("the shape's histogram is not as asked for")
    if histogram is not None:
        histogram = Histogram.from_data(histogram)
        if histogram.weighted != weighted:
            raise ValueError("the histogram's weights are not as the spec's")
    worst = data["worst"]
    if (worst is not None) != (shape.worst_k > 0):
        raise ValueError("the shape's worst rows are not as asked for")
    if worst is not None:
        worst = WorstRows.from_data(worst)
        naming = (shape.worst_k, spec.group_by, shape.id_columns, weighted)
        if (worst.k, worst.keys, worst.ids, worst.weighted) != naming:
            raise ValueError("the worst rows are of other settings")
    return PredictionShape(histogram, worst)


def _signed_codes(d: np.ndarray) -> np.ndarray:
    bits = np.abs(d).view(np.uint64).astype(np.int64)
    code = np.where(bits == 0, 0, (bits >> (52 - _rowpass.MANTISSA_BITS)) + 1)
    return np.where(d < 0, -code, code)
