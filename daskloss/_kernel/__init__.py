"""The exact kernel's tiny interface: float64 rows in, exact integer sums out.

A :class:`RowAccumulator` feeds aligned float64 chunks of ``(y_true, y_pred,
weight)`` through the compiled code (:mod:`daskloss._kernel.compiled`) and
returns a :class:`RowSums`: every sum an ``int`` in units of
``2**-FRACTION_BITS`` (see :mod:`daskloss.exact`), ``max |d|``, and the rows
left out and why. Merging and rounding happen above, on those integers.

Two paths give the same integers: the *window* path (fast, the default) and
the *row* path (every term of every row into its bin: the reference). How
they work is written up in ``docs/kernel.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from daskloss._kernel import compiled
from daskloss.exact import FRACTION_BITS

__all__ = ["LeftOut", "Path", "RowAccumulator", "RowSums", "accumulate", "accumulate_chunks"]

Path = Literal["window", "row"]

_BLOCKS = {
    ("window", False): compiled.windows_unweighted,
    ("window", True): compiled.windows_weighted,
    ("row", False): compiled.rows_unweighted,
    ("row", True): compiled.rows_weighted,
}
_NO_WEIGHT = np.empty(0, np.float64)


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Rows the kernel left out of every sum, and why."""

    #: Rows with a NaN or an infinity in any of their values.
    skipped: int = 0
    #: Non-finite values per column (a row may count in several).
    nonfinite_true: int = 0
    nonfinite_pred: int = 0
    nonfinite_weight: int = 0
    #: Finite rows with a negative weight.
    negative_weight: int = 0
    #: Finite rows whose residual ``y_pred - y_true`` overflows float64.
    residual_overflow: int = 0


@dataclass(frozen=True, slots=True)
class RowSums:
    """Exact sums over the rows kept (integers in units of ``2**-FRACTION_BITS``)."""

    count: int
    weight_sum: int
    squared_error: int
    abs_error: int
    signed_error: int
    target_sum: int
    target_squared: int
    #: ``max |d|`` over the rows kept with a positive weight (0.0 when none).
    max_abs_error: float
    left_out: LeftOut


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


class RowAccumulator:
    """Exact sums of rows fed chunk by chunk: create, :meth:`add`, then :meth:`result`.

    All chunks share one set of bins, flushed to Python integers every
    ``BLOCK_ROWS`` rows, so many small chunks cost no more than one big one.

    Parameters
    ----------
    weighted : bool
        Whether rows carry a weight (``weight`` is ignored otherwise).
    path : {'window', 'row'}
        The fast window path, or the row path (the reference).
    """

    def __init__(self, weighted: bool, *, path: Path = "window") -> None:
        self.weighted = weighted
        self._block = _BLOCKS[path, weighted]
        self._totals = [0] * len(compiled.ACCUMULATORS)
        self._counts = np.zeros(len(compiled.COUNTS), np.int64)
        self._bins = np.zeros((len(compiled.ACCUMULATORS), compiled.NBINS, 2), np.uint64)
        self._pending = 0
        self._max_abs = 0.0

    def add(self, y_true: np.ndarray, y_pred: np.ndarray, weight: np.ndarray | None) -> None:
        """Add aligned contiguous float64 arrays of rows."""
        for start in range(0, len(y_true), compiled.BLOCK_ROWS):
            stop = start + compiled.BLOCK_ROWS
            rows = min(stop, len(y_true)) - start
            if self._pending + rows > compiled.BLOCK_ROWS:
                self._flush()
            block_max = self._block(
                _readonly(y_true[start:stop]),
                _readonly(y_pred[start:stop]),
                _readonly(weight[start:stop] if self.weighted else _NO_WEIGHT),
                self._bins,
                self._counts,
            )
            self._max_abs = max(self._max_abs, block_max)
            self._pending += rows

    def left_out(self) -> LeftOut:
        """The rows left out so far, and why."""
        found = dict(zip(compiled.COUNTS, map(int, self._counts), strict=True))
        del found["rows"]
        return LeftOut(**found)

    def result(self) -> RowSums:
        """The exact sums of every row added."""
        self._flush()
        sums = dict(zip(compiled.ACCUMULATORS, self._totals, strict=True))
        rows = int(self._counts[compiled.COUNTS.index("rows")])
        return RowSums(
            count=rows,
            weight_sum=sums["weight"] if self.weighted else rows << FRACTION_BITS,
            squared_error=sums["squared_error"],
            abs_error=sums["positive_error"] + sums["negative_error"],
            signed_error=sums["positive_error"] - sums["negative_error"],
            target_sum=sums["target_positive"] - sums["target_negative"],
            target_squared=sums["target_squared"],
            max_abs_error=float(self._max_abs),
            left_out=self.left_out(),
        )

    def _flush(self) -> None:
        """Add the bins to the running totals and zero them."""
        self._totals = [
            total + _bins_to_int(row) for total, row in zip(self._totals, self._bins, strict=True)
        ]
        self._bins[:] = 0
        self._pending = 0


def _readonly(array: np.ndarray) -> np.ndarray:
    """A read-only view: numpy and Arrow inputs then share one compiled signature."""
    view = array.view()
    view.flags.writeable = False
    return view


def _bins_to_int(bins: np.ndarray) -> int:
    """The exact value of one accumulator, an integer in units of ``2**-FRACTION_BITS``."""
    data, first = compiled.bins_to_bytes(bins)
    return int.from_bytes(data.tobytes(), "little") << first
