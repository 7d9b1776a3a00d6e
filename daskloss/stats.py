"""ErrorStats: the mergeable sufficient statistics of a regression evaluation.

An :class:`ErrorStats` is an immutable value with three operations: the
statistics of no rows (:meth:`ErrorStats.empty`), of some rows
(:meth:`ErrorStats.from_chunks`, :meth:`ErrorStats.from_arrays`) and of two
sets of rows together (:meth:`ErrorStats.merge`). The exact sums are Python
integers in units of ``2**-FRACTION_BITS`` (see :mod:`daskloss.exact`), so
merging is exact, associative and commutative, and the empty statistics are
its identity. The rows' sums come from the exact kernel
(:mod:`daskloss._kernel`); the metric formulas are in :mod:`daskloss.formulas`.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any

import numpy as np

from daskloss._kernel import LeftOut, RowAccumulator, RowSums, accumulate
from daskloss.chunks import Chunk, Origin
from daskloss.columns import chunks_of_columns
from daskloss.errors import DataError, NonFiniteValueError
from daskloss.exact import FRACTION_BITS, to_fraction
from daskloss.formulas import compute_metrics
from daskloss.names import NAN_POLICIES, NanPolicy, check_choice
from daskloss.roles import Roles

__all__ = ["ErrorStats"]


def _summed() -> Any:
    return field(default=0, metadata={"merge": operator.add})


@dataclass(frozen=True, slots=True)
class ErrorStats:
    """Exact sufficient statistics of ``d = fl(y_pred - y_true)`` over some rows.

    Attributes
    ----------
    count : int
        Rows that entered the statistics.
    weight_sum : int
        Exact ``sum(w)`` (``count`` when unweighted), in units of ``2**-FRACTION_BITS``.
    squared_error : int
        Exact ``sum(w * d**2)``.
    abs_error : int
        Exact ``sum(w * |d|)``.
    signed_error : int
        Exact ``sum(w * d)``.
    target_sum : int
        Exact ``sum(w * y_true)``.
    target_squared : int
        Exact ``sum(w * y_true**2)``.
    max_abs_error : float
        ``max |d|`` over rows with positive weight (0.0 when there are none).
    skipped_rows : int
        Rows left out under ``nan_policy='skip'``.

    Examples
    --------
    >>> import numpy as np
    >>> a = ErrorStats.from_arrays(np.array([10.0, 11.0]), np.array([0.0, 1.0]))
    >>> b = ErrorStats.from_arrays(np.arange(12.0, 20.0), np.arange(2.0, 10.0))
    >>> m = a.merge(b).metrics()
    >>> m["mse"], m["l2"]
    (100.0, 31.622776601683793)
    """

    count: int = _summed()
    weight_sum: int = _summed()
    squared_error: int = _summed()
    abs_error: int = _summed()
    signed_error: int = _summed()
    target_sum: int = _summed()
    target_squared: int = _summed()
    max_abs_error: float = field(default=0.0, metadata={"merge": max})
    skipped_rows: int = _summed()

    @classmethod
    def empty(cls) -> ErrorStats:
        """The statistics of no rows: the identity of :meth:`merge`."""
        return cls()

    @classmethod
    def from_chunks(
        cls, chunks: Iterable[Chunk], roles: Roles, *, nan_policy: NanPolicy = "error"
    ) -> ErrorStats:
        """The statistics of a stream of chunks, consumed one at a time.

        Parameters
        ----------
        chunks : iterable of Chunk
            Aligned float64 columns holding (at least) the columns of ``roles``.
        roles : Roles
            Which column is the target, the prediction and the weight.
        nan_policy : {'error', 'skip'}
            ``'error'`` raises :class:`NonFiniteValueError` on NaN or infinity in
            any role's column; ``'skip'`` leaves those rows out and counts them
            in ``skipped_rows``.

        Raises
        ------
        NonFiniteValueError
            NaN or infinity under ``nan_policy='error'``, naming where it was.
        DataError
            A negative weight, or a residual that overflows float64.
        """
        return _accumulate(
            (
                (
                    chunk.values[roles.y_true],
                    chunk.values[roles.y_pred],
                    chunk.values[roles.weight] if roles.weight else None,
                    chunk.origins,
                )
                for chunk in chunks
            ),
            _names(roles),
            check_choice("nan_policy", nan_policy, NAN_POLICIES),
        )

    @classmethod
    def from_arrays(
        cls,
        y_true: Any,
        y_pred: Any,
        weight: Any = None,
        *,
        nan_policy: NanPolicy = "error",
        columns: tuple[str, str, str | None] = ("y_true", "y_pred", "weight"),
    ) -> ErrorStats:
        """The statistics of rows given as arrays.

        Parameters
        ----------
        y_true, y_pred : array-like of float
            Targets and predictions, one value per row: numpy arrays, pandas
            Series or pyarrow (chunked) arrays, read without copies where
            possible. Integers (and wider floats) are accepted when float64
            holds them exactly; nulls and masked entries count as NaN.
        weight : array-like of float, optional
            Non-negative sample weights; ``None`` weighs every row 1.
        nan_policy : {'error', 'skip'}
            See :meth:`from_chunks`.
        columns : tuple of str
            Names of the three columns, used in error messages only.

        Raises
        ------
        SchemaError
            Arrays of different lengths, or values that are not numeric.
        NonFiniteValueError, DataError
            See :meth:`from_chunks`.
        """
        given = [("y_true", y_true), ("y_pred", y_pred)]
        if weight is not None:
            given.append(("weight", weight))
        names = [name or role for (role, _), name in zip(given, columns, strict=False)]
        if len(set(names)) < len(names):  # one name for two arrays: tell them apart by role
            names = [role for role, _ in given]
        values = {name: array for name, (_, array) in zip(names, given, strict=True)}
        roles = Roles(*names)
        return cls.from_chunks(chunks_of_columns(values), roles, nan_policy=nan_policy)

    @classmethod
    def from_sums(cls, sums: RowSums) -> ErrorStats:
        """The statistics of the rows the kernel summed (see :mod:`daskloss._kernel`)."""
        return cls(
            **{f.name: getattr(sums, f.name) for f in _FIELDS if f.name != "skipped_rows"},
            skipped_rows=sums.left_out.skipped,
        )

    def merge(self, other: ErrorStats) -> ErrorStats:
        """The statistics of the rows of ``self`` and ``other`` together (exact)."""
        return ErrorStats(
            **{
                f.name: f.metadata["merge"](getattr(self, f.name), getattr(other, f.name))
                for f in _FIELDS
            }
        )

    @classmethod
    def merge_all(cls, parts: Iterable[ErrorStats]) -> ErrorStats:
        """Merge any number of statistics in one pass (the empty ones for none)."""
        totals: dict[str, Any] = {f.name: f.default for f in _FIELDS}
        for part in parts:
            for f in _FIELDS:
                totals[f.name] = f.metadata["merge"](totals[f.name], getattr(part, f.name))
        return cls(**totals)

    def metrics(self) -> dict[str, float | int]:
        """Every metric, each the correctly rounded float64 of its exact value.

        See :func:`daskloss.formulas.compute_metrics` for the definitions.
        """
        return compute_metrics(self)

    def exact(self, name: str) -> Fraction:
        """The exact value of a summed field as a :class:`~fractions.Fraction`."""
        if name not in _EXACT_FIELDS:
            raise KeyError(f"{name!r} is not an exact sum; choose one of {sorted(_EXACT_FIELDS)}")
        return to_fraction(getattr(self, name))

    def to_dict(self) -> dict[str, int | float]:
        """A JSON-ready dict (integers stay exact) that :meth:`from_dict` reads back."""
        return {f.name: getattr(self, f.name) for f in _FIELDS} | {"fraction_bits": FRACTION_BITS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorStats:
        """Rebuild statistics saved with :meth:`to_dict`."""
        if data.get("fraction_bits") != FRACTION_BITS:
            raise DataError(
                f"saved statistics use fraction_bits={data.get('fraction_bits')!r}, "
                f"this daskloss uses {FRACTION_BITS}; recompute them with this version"
            )
        return cls(**{f.name: data[f.name] for f in _FIELDS})


_FIELDS = fields(ErrorStats)
_EXACT_FIELDS = {
    "weight_sum",
    "squared_error",
    "abs_error",
    "signed_error",
    "target_sum",
    "target_squared",
}
_Rows = tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[Origin, ...]]


def _names(roles: Roles) -> dict[str, str]:
    return {"y_true": roles.y_true, "y_pred": roles.y_pred, "weight": roles.weight or "weight"}


def _accumulate(rows: Iterator[_Rows], names: dict[str, str], nan_policy: str) -> ErrorStats:
    """Sum aligned float64 rows exactly; raise for bad rows, naming where the first were."""
    accumulator: RowAccumulator | None = None
    flagged: dict[str, LeftOut] = {}
    for y_true, y_pred, weight, origins in rows:
        accumulator = accumulator or RowAccumulator(weighted=weight is not None)
        before = accumulator.left_out()
        accumulator.add(y_true, y_pred, weight)
        if _refused(accumulator.left_out() - before, nan_policy):
            found = _left_out_by_origin(
                (y_true, y_pred, weight), origins, accumulator.left_out(), before
            )
            for where, left_out in found:
                if _refused(left_out, nan_policy):
                    flagged[where] = flagged.get(where, LeftOut()) + left_out
    if flagged:
        where, left_out = next(iter(flagged.items()))
        _raise_refused(left_out, names, nan_policy, f" in {where}" if where else "")
    if accumulator is None:
        return ErrorStats.empty()
    return ErrorStats.from_sums(accumulator.result())


def _left_out_by_origin(
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    origins: tuple[Origin, ...],
    after: LeftOut,
    before: LeftOut,
) -> list[tuple[str, LeftOut]]:
    """The rows one chunk left out, per place they came from."""
    if len(origins) == 1:
        return [(origins[0][0], after - before)]
    found = []  # several files in one chunk: sum each file's rows again to tell them apart
    start = 0
    for where, rows in origins:
        y_true, y_pred, weight = (None if a is None else a[start : start + rows] for a in arrays)
        found.append((where, accumulate(y_true, y_pred, weight).left_out))
        start += rows
    return found


def _refused(left_out: LeftOut, nan_policy: str) -> bool:
    """Whether rows were left out that the policy does not allow to leave out."""
    skipped = nan_policy == "error" and left_out.skipped
    return bool(left_out.negative_weight or left_out.residual_overflow or skipped)


def _raise_refused(left_out: LeftOut, names: dict[str, str], nan_policy: str, where: str) -> None:
    """Raise for rows the kernel refused, per the NaN policy."""
    if left_out.negative_weight:
        raise DataError(
            f"column {names['weight']!r}{where} has {left_out.negative_weight} negative "
            "weight(s); weights must be >= 0"
        )
    if left_out.residual_overflow:
        raise DataError(
            f"{left_out.residual_overflow} row(s){where} have a residual {names['y_pred']!r} - "
            f"{names['y_true']!r} that overflows float64 (|d| > 1.8e308); rescale the data"
        )
    found = {
        names["y_true"]: left_out.nonfinite_true,
        names["y_pred"]: sum(left_out.nonfinite_pred),
        names["weight"]: left_out.nonfinite_weight,
    }
    detail = ", ".join(f"{count} in {name!r}" for name, count in found.items() if count)
    raise NonFiniteValueError(
        f"NaN or infinite values{where}: {detail}; clean the data or use nan_policy='skip' "
        "to leave those rows out"
    )
