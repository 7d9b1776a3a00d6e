"""The mergeable exact statistics of an evaluation: per prediction, per pair, per slice.

Every statistic here is an immutable value with three operations: the
statistics of no rows (``empty``), of some rows (``from_chunks``) and of two
sets of rows together (``merge``, never mutating). Exact sums are Python
integers in units of ``2**-FRACTION_BITS`` (see :mod:`daskloss.exact`), so
merging is exact, associative and commutative.

* :class:`ErrorStats`: one prediction's sums (and optionally its moments).
* :class:`PairStats`: the cross moments of a prediction and its baseline.
* :class:`SliceStats`: every prediction's and pair's statistics over one slice.
* :class:`EvaluationStats`: the slices of an evaluation, keyed by slice key.

The rows' sums come from the exact kernel (:mod:`daskloss._kernel`); the
formulas that round them are in :mod:`daskloss.formulas`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any

import numpy as np

from daskloss._kernel import Accumulator, LeftOut, RowSums
from daskloss.chunks import Chunk, Origin
from daskloss.columns import chunks_of_columns
from daskloss.errors import ConfigError, DataError, NonFiniteValueError
from daskloss.exact import dyadic_text, dyadic_value, pack_exact, to_fraction, unpack_exact
from daskloss.formulas import compute_metrics
from daskloss.keys import SliceKeys
from daskloss.names import NAN_POLICIES, NanPolicy, check_choice
from daskloss.roles import EvaluationSpec, Roles

__all__ = ["ErrorStats", "EvaluationStats", "PairStats", "SliceStats"]


def _summed() -> Any:
    return field(default=0, metadata={"merge": operator.add, "exact": True})


def _counted() -> Any:
    return field(default=0, metadata={"merge": operator.add})


def _add_moment(a: int | None, b: int | None) -> int | None:
    """Moments are None where they were not summed: the other side's, or their sum."""
    if a is None:
        return b
    return a if b is None else a + b


def _moment() -> Any:
    return field(default=None, metadata={"merge": _add_moment, "exact": True})


class _Exact:
    """Merging, exact values, compact pickles and JSON for a dataclass of exact sums."""

    __slots__ = ()

    def merge(self, other: Any) -> Any:
        """The statistics of the rows of ``self`` and ``other`` together (exact)."""
        return type(self)(
            *(
                f.metadata["merge"](getattr(self, f.name), getattr(other, f.name))
                for f in fields(self)  # type: ignore[arg-type]
            )
        )

    @classmethod
    def merge_all(cls, parts: Iterable[Any]) -> Any:
        """Merge any number of statistics in one pass (the empty ones for none)."""
        specs = fields(cls)  # type: ignore[arg-type]
        totals = [f.default for f in specs]
        for part in parts:
            totals = [
                f.metadata["merge"](total, getattr(part, f.name))
                for f, total in zip(specs, totals, strict=True)
            ]
        return cls(*totals)

    def exact(self, name: str) -> Fraction:
        """The exact value of a summed field as a :class:`~fractions.Fraction`."""
        names = {f.name for f in fields(self) if f.metadata.get("exact")}  # type: ignore[arg-type]
        if name not in names or getattr(self, name) is None:
            raise KeyError(f"{name!r} is not an exact sum here; choose one of {sorted(names)}")
        return to_fraction(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` reads back, exact and compact.

        Exact sums are written as ``"0x<mantissa>p<exponent>"`` text (their
        significant bits only, see :func:`daskloss.exact.dyadic_text`).
        """
        return {
            f.name: _to_json(getattr(self, f.name), f.metadata.get("exact", False))
            for f in fields(self)  # type: ignore[arg-type]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Rebuild statistics saved with :meth:`to_dict`.

        Raises
        ------
        DataError
            Missing fields or values that are not what :meth:`to_dict` writes.
        """
        try:
            return cls(
                *(
                    _from_json(data, f.name, f.metadata.get("exact", False), f.default)
                    for f in fields(cls)  # type: ignore[arg-type]
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"saved {cls.__name__} are not readable: {exc}") from None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by their significant bits (statistics travel between Dask workers)."""
        specs = fields(self)  # type: ignore[arg-type]
        exact = [getattr(self, f.name) for f in specs if f.metadata.get("exact")]
        moments = tuple(value is not None for value in exact)
        other = tuple(getattr(self, f.name) for f in specs if not f.metadata.get("exact"))
        packed = pack_exact([value or 0 for value in exact])
        return _rebuild, (type(self), packed, moments, other)


def _rebuild(cls: type, packed: bytes, present: tuple[bool, ...], other: tuple) -> Any:
    exact = iter(
        value if here else None for value, here in zip(unpack_exact(packed), present, strict=True)
    )
    rest = iter(other)
    return cls(*(next(exact) if f.metadata.get("exact") else next(rest) for f in fields(cls)))


def _to_json(value: Any, exact: bool) -> Any:
    if exact and value is not None:
        return dyadic_text(value)
    return value


def _from_json(data: Mapping[str, Any], name: str, exact: bool, default: Any) -> Any:
    if name not in data and default is None:
        return None
    value = data[name]
    if exact and value is not None:
        if not isinstance(value, str):
            raise TypeError(f"{name} should be exact text such as '0x3p-2', got {value!r}")
        return dyadic_value(value)
    return value


@dataclass(frozen=True, slots=True)
class ErrorStats(_Exact):
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
    weight_squared : int or None
        Exact ``sum(w**2)``, when moments were summed (for standard errors).
    fourth_power : int or None
        Exact ``sum(w * d**4)``, when moments were summed.

    Examples
    --------
    >>> import numpy as np
    >>> a = ErrorStats.from_arrays(np.array([10.0, 11.0]), np.array([0.0, 1.0]))
    >>> b = ErrorStats.from_arrays(np.arange(12.0, 20.0), np.arange(2.0, 10.0))
    >>> m = a.merge(b).metrics()
    >>> m["mse"], m["l2"]
    (100.0, 31.622776601683793)
    """

    count: int = _counted()
    weight_sum: int = _summed()
    squared_error: int = _summed()
    abs_error: int = _summed()
    signed_error: int = _summed()
    target_sum: int = _summed()
    target_squared: int = _summed()
    max_abs_error: float = field(default=0.0, metadata={"merge": max})
    skipped_rows: int = _counted()
    weight_squared: int | None = _moment()
    fourth_power: int | None = _moment()

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
        spec = EvaluationSpec(roles.y_true, (roles.y_pred,), roles.weight)
        evaluation = EvaluationStats.from_chunks(chunks, spec, nan_policy=nan_policy)
        return evaluation.overall().predictions[0]

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
        """The statistics of the rows the kernel summed for one prediction, without groups."""
        return cls(
            count=sums.count,
            weight_sum=sums.weight_sum,
            squared_error=sums.squared_error,
            abs_error=sums.abs_error,
            signed_error=sums.signed_error,
            target_sum=sums.target_sum,
            target_squared=sums.target_squared,
            max_abs_error=sums.max_abs_error,
            skipped_rows=sums.left_out.skipped,
        )

    def metrics(self) -> dict[str, float | int]:
        """Every metric, each the correctly rounded float64 of its exact value.

        See :func:`daskloss.formulas.compute_metrics` for the definitions.
        """
        return compute_metrics(self)


@dataclass(frozen=True, slots=True)
class PairStats(_Exact):
    """Exact cross moments of a prediction's residuals ``d_a`` and its baseline's ``d_b``.

    Attributes
    ----------
    squared_product : int
        Exact ``sum(w * d_a**2 * d_b**2)``.
    abs_product : int
        Exact ``sum(w * |d_a| * |d_b|)``.
    """

    squared_product: int = _summed()
    abs_product: int = _summed()

    @classmethod
    def empty(cls) -> PairStats:
        """The statistics of no rows."""
        return cls()


@dataclass(frozen=True, slots=True)
class SliceStats:
    """Every prediction's statistics over one slice's rows, and each comparison's."""

    predictions: tuple[ErrorStats, ...]
    pairs: tuple[PairStats, ...] = ()

    @classmethod
    def empty(cls, spec: EvaluationSpec) -> SliceStats:
        """The statistics of no rows."""
        return cls(tuple(ErrorStats() for _ in spec.y_pred), tuple(PairStats() for _ in spec.pairs))

    @property
    def count(self) -> int:
        """Rows in the slice."""
        return self.predictions[0].count

    def merge(self, other: SliceStats) -> SliceStats:
        """The statistics of both slices' rows together."""
        return SliceStats(
            tuple(a.merge(b) for a, b in zip(self.predictions, other.predictions, strict=True)),
            tuple(a.merge(b) for a, b in zip(self.pairs, other.pairs, strict=True)),
        )

    @classmethod
    def merge_all(cls, parts: Sequence[SliceStats]) -> SliceStats:
        """Merge the statistics of several slices (at least one)."""
        return cls(
            tuple(
                ErrorStats.merge_all(side)
                for side in zip(*(p.predictions for p in parts), strict=True)
            ),
            tuple(
                PairStats.merge_all(side) for side in zip(*(p.pairs for p in parts), strict=True)
            ),
        )


@dataclass(frozen=True)
class EvaluationStats:
    """The exact statistics of an evaluation: each slice's, keyed by slice key.

    A slice key is a tuple of one value per ``group_by`` column (``()`` for an
    evaluation without slices). Statistics merge only with statistics of the
    same spec (columns, slices, comparisons). Each slice is held as a flat
    tuple of its sums (``rows``), which merges in microseconds; :attr:`slices`
    gives them as :class:`SliceStats`.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> from daskloss.chunks import Chunk
    >>> spec = EvaluationSpec.of("y", "p", group_by="g")
    >>> chunk = Chunk({"y": np.arange(4.0), "p": np.zeros(4)}, (("", 4),),
    ...               keys={"g": pa.array(["a", "b", "a", "b"])})
    >>> stats = EvaluationStats.from_chunks([chunk], spec)
    >>> {key: s.predictions[0].metrics()["mse"] for key, s in stats.slices.items()}
    {('a',): 2.0, ('b',): 5.0}
    """

    spec: EvaluationSpec
    rows: Mapping[tuple[Any, ...], tuple[Any, ...]]

    @classmethod
    def empty(cls, spec: EvaluationSpec) -> EvaluationStats:
        """The statistics of no rows."""
        return cls(spec, {})

    @classmethod
    def from_chunks(
        cls,
        chunks: Iterable[Chunk],
        spec: EvaluationSpec,
        *,
        nan_policy: NanPolicy = "error",
        observe: Observer | None = None,
    ) -> EvaluationStats:
        """The statistics of a stream of chunks (see :meth:`ErrorStats.from_chunks`).

        Each chunk must hold the spec's value columns and, among its keys, its
        ``group_by`` columns. ``observe(chunk, codes, keys)``, if given, sees
        each chunk as it is summed, with its rows' slice codes of the
        :class:`~daskloss.keys.SliceKeys` ``keys`` (None without slices).
        """
        policy = check_choice("nan_policy", nan_policy, NAN_POLICIES)
        return _accumulate(chunks, spec, policy, observe)

    @functools.cached_property
    def slices(self) -> dict[tuple[Any, ...], SliceStats]:
        """Each slice's statistics, by key."""
        layout = _Layout.of(self.spec)
        return {key: layout.slice(row) for key, row in self.rows.items()}

    def merge(self, other: EvaluationStats) -> EvaluationStats:
        """The statistics of both evaluations' rows together, slice by slice."""
        return EvaluationStats.merge_all([self, other])

    @classmethod
    def merge_all(cls, parts: Sequence[EvaluationStats]) -> EvaluationStats:
        """Merge the statistics of any number of evaluations of one spec (at least one)."""
        spec = parts[0].spec
        operations = _Layout.of(spec).operations
        merged: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for part in parts:
            if part.spec != spec:
                raise ConfigError(
                    "statistics of different evaluations cannot be merged: "
                    f"{_describe(spec)} against {_describe(part.spec)}"
                )
            for key, row in part.rows.items():
                known = merged.get(key)
                merged[key] = (
                    row
                    if known is None
                    else tuple([op(a, b) for op, a, b in zip(operations, known, row, strict=True)])
                )
        return cls(spec, merged)

    def overall(self) -> SliceStats:
        """The statistics of every row, whatever its slice."""
        layout = _Layout.of(self.spec)
        if not self.rows:
            return layout.slice(layout.zero)
        return layout.slice(
            EvaluationStats(self.spec, {(): layout.zero})
            .merge_all([EvaluationStats(self.spec, {(): row}) for row in self.rows.values()])
            .rows[()]
        )

    def sorted_keys(self) -> list[tuple[Any, ...]]:
        """The slice keys in a stable order: by value, nulls last, column by column."""
        return sorted(self.rows, key=lambda key: tuple((v is None, _sortable(v)) for v in key))

    @classmethod
    def from_slices(
        cls, spec: EvaluationSpec, slices: Mapping[tuple[Any, ...], SliceStats]
    ) -> EvaluationStats:
        """The statistics whose :attr:`slices` are ``slices`` (statistics saved and read back).

        Raises
        ------
        ConfigError
            A slice whose predictions or pairs are not the spec's.
        """
        layout = _Layout.of(spec)
        return cls(spec, {key: layout.row(stats) for key, stats in slices.items()})

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled compactly: the keys, the exact sums by their significant bits, the maxima."""
        floats = _Layout.of(self.spec).float_positions
        rows = list(self.rows.values())
        exact = [value for row in rows for i, value in enumerate(row) if i not in floats]
        maxima = [row[i] for row in rows for i in sorted(floats)]
        return _rebuild_evaluation, (self.spec, list(self.rows), pack_exact(exact), maxima)


def _rebuild_evaluation(
    spec: EvaluationSpec, keys: list[tuple[Any, ...]], packed: bytes, maxima: list[float]
) -> EvaluationStats:
    layout = _Layout.of(spec)
    floats = layout.float_positions
    exact, largest = iter(unpack_exact(packed)), iter(maxima)
    width = len(layout.operations)
    rows = {
        key: tuple(next(largest) if i in floats else next(exact) for i in range(width))
        for key in keys
    }
    return EvaluationStats(spec, rows)


@dataclass(frozen=True)
class _Layout:
    """Where each sum sits in a slice's flat tuple, and how each merges.

    The order of :meth:`daskloss._kernel.Accumulator.rows`: ``(count, skipped,
    weight_sum, target_sum, target_squared, weight_squared)``, then per
    prediction ``(squared_error, abs_error, signed_error, max_abs_error,
    fourth_power)``, then per pair ``(squared_product, abs_product)``. Moments
    are 0 where they are not summed.
    """

    predictions: int
    pairs: int
    moments: bool

    SHARED = 6
    PER_PREDICTION = 5

    @classmethod
    @functools.cache
    def of(cls, spec: EvaluationSpec) -> _Layout:
        return cls(len(spec.y_pred), len(spec.pairs), spec.moments)

    @functools.cached_property
    def operations(self) -> tuple[Any, ...]:
        per_prediction = (operator.add, operator.add, operator.add, max, operator.add)
        return (
            (operator.add,) * self.SHARED
            + per_prediction * self.predictions
            + (operator.add,) * (2 * self.pairs)
        )

    @functools.cached_property
    def float_positions(self) -> frozenset[int]:
        """Where the maxima sit (every other value is an exact integer)."""
        return frozenset(i for i, op in enumerate(self.operations) if op is max)

    @functools.cached_property
    def zero(self) -> tuple[Any, ...]:
        return tuple(0.0 if op is max else 0 for op in self.operations)

    def row(self, stats: SliceStats) -> tuple[Any, ...]:
        """A slice's :class:`SliceStats` as its flat tuple (the inverse of :meth:`slice`)."""
        if len(stats.predictions) != self.predictions or len(stats.pairs) != self.pairs:
            raise ConfigError(
                f"expected the statistics of {self.predictions} prediction(s) and {self.pairs} "
                f"comparison(s), got {len(stats.predictions)} and {len(stats.pairs)}"
            )
        first = stats.predictions[0]
        shared = (
            first.count,
            first.skipped_rows,
            first.weight_sum,
            first.target_sum,
            first.target_squared,
            first.weight_squared or 0,
        )
        per_prediction = tuple(
            value
            for p in stats.predictions
            for value in (
                p.squared_error,
                p.abs_error,
                p.signed_error,
                p.max_abs_error,
                p.fourth_power or 0,
            )
        )
        pairs = tuple(value for p in stats.pairs for value in (p.squared_product, p.abs_product))
        return shared + per_prediction + pairs

    def slice(self, row: tuple[Any, ...]) -> SliceStats:
        """A slice's flat tuple as :class:`SliceStats`."""
        count, skipped, weight, target, target_squared, weight_squared = row[: self.SHARED]
        moment = (lambda value: value) if self.moments else (lambda value: None)
        predictions = []
        for j in range(self.predictions):
            at = self.SHARED + j * self.PER_PREDICTION
            squared, absolute, signed, largest, fourth = row[at : at + self.PER_PREDICTION]
            predictions.append(
                ErrorStats(
                    count,
                    weight,
                    squared,
                    absolute,
                    signed,
                    target,
                    target_squared,
                    largest,
                    skipped,
                    moment(weight_squared),
                    moment(fourth),
                )
            )
        at = self.SHARED + self.predictions * self.PER_PREDICTION
        pairs = tuple(PairStats(row[at + 2 * p], row[at + 2 * p + 1]) for p in range(self.pairs))
        return SliceStats(tuple(predictions), pairs)


def _sortable(value: Any) -> tuple[str, Any]:
    """A key value made comparable with values of other types (bool before int)."""
    return (type(value).__name__, value) if value is not None else ("", 0)


def _describe(spec: EvaluationSpec) -> str:
    return (
        f"(y_true={spec.y_true!r}, y_pred={list(spec.y_pred)}, weight={spec.weight!r}, "
        f"group_by={list(spec.group_by)}, baseline={spec.baseline!r})"
    )


#: Sees each chunk as it is summed: ``observe(chunk, slice codes, slice keys)``.
Observer = Callable[[Chunk, np.ndarray | None, SliceKeys | None], None]


def _accumulate(
    chunks: Iterable[Chunk], spec: EvaluationSpec, nan_policy: str, observe: Observer | None = None
) -> EvaluationStats:
    """Sum chunks exactly per slice; raise for bad rows, naming where the first were.

    With slices, chunks are gathered up to ``GROUPED_ROWS`` rows before they
    are summed: each slice's rows are then sorted together once, so that a
    slice costs one pass of the kernel per gathering, not per chunk.
    """
    keys = SliceKeys(spec.group_by)
    accumulator = Accumulator(
        len(spec.y_pred), spec.weight is not None, moments=spec.moments, pairs=spec.pairs
    )
    flagged: dict[str, LeftOut] = {}

    def add(arrays: _Arrays, origins: tuple[Origin, ...], codes: np.ndarray | None) -> None:
        before = accumulator.left_out()
        accumulator.add(*arrays, groups=codes, ngroups=max(len(keys), 1))
        if _refused(accumulator.left_out() - before, nan_policy):
            for where, left_out in _left_out_by_origin(arrays, origins, accumulator, before):
                if _refused(left_out, nan_policy):
                    flagged[where] = flagged.get(where, _no_left_out(spec)) + left_out

    held: list[tuple[_Arrays, tuple[Origin, ...], np.ndarray]] = []
    held_rows = 0
    for chunk in chunks:
        arrays = _arrays(chunk, spec)
        if not spec.group_by:
            if observe is not None:
                observe(chunk, None, None)
            add(arrays, chunk.origins, None)
            continue
        codes = keys.codes(chunk.keys)
        if observe is not None:
            observe(chunk, codes, keys)
        held.append((arrays, chunk.origins, codes))
        held_rows += len(arrays[0])
        if held_rows >= GROUPED_ROWS:
            add(*_joined(held))
            held, held_rows = [], 0
    if held:
        add(*_joined(held))
    if flagged:
        where, left_out = next(iter(flagged.items()))
        _raise_refused(left_out, spec, nan_policy, f" in {where}" if where else "")
    slice_keys = keys.keys if spec.group_by else [()]
    return EvaluationStats(spec, dict(zip(slice_keys, accumulator.rows(), strict=False)))


#: Rows of sliced chunks gathered before they are summed together (about 8 bytes a
#: value: 48 MB for a weighted prediction).
GROUPED_ROWS = 1 << 21


def _joined(
    held: list[tuple[_Arrays, tuple[Origin, ...], np.ndarray]],
) -> tuple[_Arrays, tuple[Origin, ...], np.ndarray]:
    """Gathered chunks as one: their columns, origins and slice codes end to end."""
    if len(held) == 1:
        return held[0]
    parts = [arrays for arrays, _, _ in held]
    y_true = np.concatenate([p[0] for p in parts])
    predictions = [np.concatenate([p[1][j] for p in parts]) for j in range(len(parts[0][1]))]
    weight = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])
    origins = tuple(origin for _, found, _ in held for origin in found)
    codes = np.concatenate([codes for _, _, codes in held])
    return (y_true, predictions, weight), origins, codes


_Arrays = tuple[np.ndarray, list[np.ndarray], np.ndarray | None]


def _arrays(chunk: Chunk, spec: EvaluationSpec) -> _Arrays:
    values = chunk.values
    return (
        values[spec.y_true],
        [values[name] for name in spec.y_pred],
        values[spec.weight] if spec.weight else None,
    )


def _no_left_out(spec: EvaluationSpec) -> LeftOut:
    return LeftOut(nonfinite_pred=(0,) * len(spec.y_pred))


def _left_out_by_origin(
    arrays: _Arrays, origins: tuple[Origin, ...], accumulator: Accumulator, before: LeftOut
) -> list[tuple[str, LeftOut]]:
    """The rows one chunk left out, per place they came from."""
    if len(origins) == 1:
        return [(origins[0][0], accumulator.left_out() - before)]
    found = []  # several files in one chunk: sum each file's rows again to tell them apart
    y_true, predictions, weight = arrays
    start = 0
    for where, rows in origins:
        part = Accumulator(len(predictions), weight is not None)
        stop = start + rows
        part.add(
            y_true[start:stop],
            [p[start:stop] for p in predictions],
            None if weight is None else weight[start:stop],
        )
        found.append((where, part.left_out()))
        start = stop
    return found


def _refused(left_out: LeftOut, nan_policy: str) -> bool:
    """Whether rows were left out that the policy does not allow to leave out."""
    skipped = nan_policy == "error" and left_out.skipped
    return bool(left_out.negative_weight or left_out.residual_overflow or skipped)


def _raise_refused(left_out: LeftOut, spec: EvaluationSpec, nan_policy: str, where: str) -> None:
    """Raise for rows the kernel refused, per the NaN policy."""
    weight = spec.weight or "weight"
    if left_out.negative_weight:
        raise DataError(
            f"column {weight!r}{where} has {left_out.negative_weight} negative "
            "weight(s); weights must be >= 0"
        )
    if left_out.residual_overflow:
        predictions = " or ".join(repr(name) for name in spec.y_pred)
        raise DataError(
            f"{left_out.residual_overflow} row(s){where} have a residual {predictions} - "
            f"{spec.y_true!r} that overflows float64 (|d| > 1.8e308); rescale the data"
        )
    found: dict[str, int] = {}
    for name, count in [
        (spec.y_true, left_out.nonfinite_true),
        *zip(spec.y_pred, left_out.nonfinite_pred, strict=True),
        (weight, left_out.nonfinite_weight),
    ]:
        found[name] = found.get(name, 0) + count
    detail = ", ".join(f"{count} in {name!r}" for name, count in found.items() if count)
    raise NonFiniteValueError(
        f"NaN or infinite values{where}: {detail}; clean the data or use nan_policy='skip' "
        "to leave those rows out"
    )
