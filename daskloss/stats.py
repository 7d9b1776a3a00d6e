"""ErrorStats: the mergeable sufficient statistics of a regression evaluation.

Pure: numpy and the exact kernel, no Dask, no I/O. An :class:`ErrorStats` is an
immutable value; :meth:`ErrorStats.merge` returns a new one. The exact sums are
Python integers in units of ``2**-FRACTION_BITS`` (see :mod:`daskloss.exact`),
so merging is exact, associative and commutative, and the empty statistics are
its identity.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any, Literal

from daskloss.columns import aligned_chunks, float64_chunks
from daskloss.errors import DataError, NonFiniteValueError, SchemaError
from daskloss.exact import FRACTION_BITS, to_fraction
from daskloss.kernel import accumulate_chunks

__all__ = ["ErrorStats", "NanPolicy"]

NanPolicy = Literal["error", "skip"]
NAN_POLICIES: tuple[str, ...] = ("error", "skip")


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
    def from_arrays(
        cls,
        y_true: Any,
        y_pred: Any,
        weight: Any = None,
        *,
        nan_policy: NanPolicy = "error",
        columns: tuple[str, str, str | None] = ("y_true", "y_pred", "weight"),
        source: str = "",
    ) -> ErrorStats:
        """Compute the statistics of one chunk of rows.

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
            ``'error'`` raises :class:`NonFiniteValueError` on NaN or infinity in
            any of the three arrays; ``'skip'`` leaves those rows out and counts
            them in ``skipped_rows``.
        columns : tuple of str
            Names of the three columns, used in error messages only.
        source : str
            Where the rows came from (a file), used in error messages only.

        Raises
        ------
        SchemaError
            Arrays of different lengths, or values that are not numeric.
        NonFiniteValueError
            NaN or infinity under ``nan_policy='error'``.
        DataError
            A negative weight, or a residual that overflows float64.
        """
        return cls.from_batches(
            [(y_true, y_pred, weight)],
            weighted=weight is not None,
            nan_policy=nan_policy,
            columns=columns,
            source=source,
        )

    @classmethod
    def from_batches(
        cls,
        batches: Iterable[tuple[Any, Any, Any]],
        *,
        weighted: bool,
        nan_policy: NanPolicy = "error",
        columns: tuple[str, str, str | None] = ("y_true", "y_pred", "weight"),
        source: str = "",
    ) -> ErrorStats:
        """Compute the statistics of a stream of ``(y_true, y_pred, weight)`` batches.

        The same as :meth:`from_arrays` over the batches put end to end, but
        the batches are consumed one at a time (a Parquet file read batch by
        batch never sits in memory whole) and all share one pass of the
        kernel. ``weight`` is ignored unless ``weighted``.
        """
        if nan_policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
        where = f" in {source}" if source else ""
        names = dict(zip(("y_true", "y_pred", "weight"), columns, strict=True))

        def aligned() -> Iterator[tuple[Any, Any, Any]]:
            for y_true, y_pred, weight in batches:
                given = {"y_true": y_true, "y_pred": y_pred}
                if weighted:
                    given["weight"] = weight
                chunked = [
                    float64_chunks(values, names[role] or role, where)
                    for role, values in given.items()
                ]
                try:
                    pieces = list(aligned_chunks(chunked))
                except SchemaError as exc:
                    raise SchemaError(f"{exc}{where} (columns {columns})") from None
                for piece in pieces:
                    yield piece[0], piece[1], piece[2] if weighted else None

        sums = accumulate_chunks(aligned(), weighted=weighted)
        _check_counts(sums, names, nan_policy, where)
        return cls(
            count=sums.rows,
            weight_sum=sums.weight_sum,
            squared_error=sums.squared_error,
            abs_error=sums.positive_error + sums.negative_error,
            signed_error=sums.positive_error - sums.negative_error,
            target_sum=sums.target_sum,
            target_squared=sums.target_squared,
            max_abs_error=sums.max_abs_error,
            skipped_rows=sums.skipped_rows,
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

        See :func:`daskloss.metrics.compute_metrics` for the definitions.
        """
        from daskloss.metrics import compute_metrics

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


def _check_counts(sums: Any, names: dict[str, str | None], nan_policy: str, where: str) -> None:
    """Raise for rows the kernel refused, per the NaN policy."""
    if sums.negative_weight:
        raise DataError(
            f"column {names['weight']!r}{where} has {sums.negative_weight} negative weight(s); "
            "weights must be >= 0"
        )
    if sums.residual_overflow:
        raise DataError(
            f"{sums.residual_overflow} row(s){where} have a residual {names['y_pred']!r} - "
            f"{names['y_true']!r} that overflows float64 (|d| > 1.8e308); rescale the data"
        )
    if nan_policy == "error" and sums.skipped_rows:
        found = {
            names["y_true"]: sums.nonfinite_true,
            names["y_pred"]: sums.nonfinite_pred,
            names["weight"]: sums.nonfinite_weight,
        }
        detail = ", ".join(f"{count} in {name!r}" for name, count in found.items() if count)
        raise NonFiniteValueError(
            f"NaN or infinite values{where}: {detail}; clean the data or use nan_policy='skip' "
            "to leave those rows out"
        )
