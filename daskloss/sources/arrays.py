"""Array-likes as work units: the inputs of the :mod:`daskloss.metrics` functions.

``y_true``, ``y_pred`` and ``sample_weight`` may each be a NumPy array, a
list, a pandas Series or DataFrame, a pyarrow (chunked) array, a Dask array
or a Dask Series or DataFrame, mixed freely when they hold the same rows. As
in scikit-learn, a 1-D input and an ``(n, 1)`` one are both one output and an
``(n, k)`` input is ``k`` outputs; nothing is ever broadcast.

:func:`plan_arrays` checks what it can without reading any data (shapes,
dtypes, the lengths known up front), with scikit-learn's messages, then
pairs the inputs' rows into units:

* inputs in memory only: units of up to ``PANDAS_UNIT_ROWS`` rows;
* Dask inputs whose chunk sizes are known: the row chunks of the first Dask
  input; other Dask arrays are rechunked to them and inputs in memory sliced
  at their boundaries;
* Dask inputs of unknown lengths (DataFrames, arrays with NaN chunk sizes):
  partition ``i`` of each is paired with partition ``i`` of the others, so
  they must have as many partitions; inputs in memory are sliced at offsets
  computed in the graph. Lengths that differ raise when the units run.

Dask Series and DataFrames are first put side by side, position by position
and partition by partition (never aligned on their index), into one Dask
DataFrame: Dask then optimises them as one expression, so columns of one
source are read once.

Every unit yields one :class:`~daskloss.chunks.Chunk` whose columns are
named by :func:`daskloss.roles.output_roles`.
"""

from __future__ import annotations

import functools
import itertools
import math
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
from dask.base import tokenize
from dask.delayed import Delayed

from daskloss.chunks import Chunk
from daskloss.columns import check_python_integers, float64_chunks
from daskloss.errors import EmptyDatasetError, InvalidParameterError, SchemaError
from daskloss.roles import output_roles
from daskloss.sources.frames import PANDAS_UNIT_ROWS

__all__ = ["INPUT_NAMES", "ArrayPlan", "ArrayUnit", "matrix_columns", "plan_arrays"]

#: The inputs, in the order scikit-learn checks them.
INPUT_NAMES = ("y_true", "y_pred", "sample_weight")


@dataclass(frozen=True)
class ArrayUnit:
    """Aligned rows of every input: one task's work.

    ``pieces`` maps each input's name to its rows: a tuple of float64
    columns, or a block or partition of a Dask input (a NumPy array or a
    pandas object), converted when the unit is read.
    """

    pieces: Mapping[str, Any]
    n_outputs: int
    label: str

    def chunks(self) -> Iterator[Chunk]:
        """The unit's rows as one chunk of float64 columns, named by ``output_roles``."""
        columns = {
            name: piece if isinstance(piece, tuple) else matrix_columns(piece, name, self.where)
            for name, piece in self.pieces.items()
        }
        lengths = {name: len(found[0]) for name, found in columns.items()}
        if len(set(lengths.values())) > 1:
            raise _partitions_differ(self.label, lengths)
        roles = output_roles(self.n_outputs, weighted="sample_weight" in columns)
        values = {}
        for j, role in enumerate(roles):
            values[role.y_true], values[role.y_pred] = columns["y_true"][j], columns["y_pred"][j]
        if "sample_weight" in columns:
            values["sample_weight"] = columns["sample_weight"][0]
        yield Chunk(values, ((self.label, lengths["y_true"]),))

    @property
    def where(self) -> str:
        return f" in {self.label}"


@dataclass(frozen=True)
class ArrayPlan:
    """The inputs of a metric function as work units.

    Attributes
    ----------
    units : tuple of ArrayUnit, or of Delayed ArrayUnit
        The work, one task each. With Dask inputs, each unit is a ``Delayed``
        computing to the :class:`ArrayUnit` of its blocks or partitions, so
        that they are read where the unit's task runs.
    n_outputs : int
        Columns of ``y_true`` and ``y_pred`` (1 for 1-D inputs).
    weighted : bool
        Whether ``sample_weight`` was given.
    in_memory : bool
        Whether every input is in memory (none is a Dask collection).
    token : str or None
        With ``tokenized=True``, a digest of the inputs and of how they were
        cut: equal inputs give equal tokens, hence equal task keys.
    """

    units: tuple[ArrayUnit | Delayed, ...]
    n_outputs: int
    weighted: bool
    in_memory: bool
    token: str | None = None


def plan_arrays(
    y_true: Any, y_pred: Any, sample_weight: Any = None, *, tokenized: bool = False
) -> ArrayPlan:
    """Check the inputs as far as their metadata allows and cut them into units.

    ``tokenized=True`` also digests the inputs (hashing the data of those in
    memory) into the plan's ``token``.

    Raises
    ------
    InvalidParameterError
        An input with no dimension (a 0-d array).
    SchemaError
        Inputs of different lengths or output counts, more than two dimensions,
        2-D weights, complex or non-numeric values, Dask inputs whose rows
        cannot be paired.
    EmptyDatasetError
        Inputs without rows.
    """
    given = [
        (name, value)
        for name, value in zip(INPUT_NAMES, (y_true, y_pred, sample_weight), strict=True)
    ]
    inputs = [_Input.of(value, name) for name, value in given if value is not None]
    lengths = [found.rows for found in inputs]
    if None not in lengths and len(set(lengths)) > 1:
        raise SchemaError(f"Found input variables with inconsistent numbers of samples: {lengths}")
    for found in inputs:
        found.check()
    n_outputs = inputs[0].n_outputs
    if inputs[1].n_outputs != n_outputs:
        raise SchemaError(
            "y_true and y_pred have different number of output "
            f"({n_outputs}!={inputs[1].n_outputs})"
        )
    token = tokenize("daskloss-arrays", [(f.name, f.value) for f in inputs]) if tokenized else None
    units = _units(inputs, n_outputs, token or uuid.uuid4().hex)
    in_memory = not any(found.lazy for found in inputs)
    return ArrayPlan(units, n_outputs, sample_weight is not None, in_memory, token)


def matrix_columns(values: Any, name: str, where: str = "") -> tuple[np.ndarray, ...]:
    """An input's rows as contiguous float64 columns, one per output (exact, or refused).

    Examples
    --------
    >>> [c.tolist() for c in matrix_columns([[1, 2], [3, 4]], "y_true")]
    [[1.0, 3.0], [2.0, 4.0]]
    """
    if isinstance(values, pd.DataFrame):
        return tuple(_column(values.iloc[:, j], name, where) for j in range(values.shape[1]))
    if isinstance(values, (pd.Series, pa.Array, pa.ChunkedArray)):
        if _dtype_kind(values) == "c":
            raise _complex(values)
        return (_column(values, name, where),)
    array = _numeric(_as_array(values, name), name)
    if array.ndim == 1:
        return (_column(array, name, where),)
    return tuple(_column(array[:, j], name, where) for j in range(array.shape[1]))


@dataclass(frozen=True)
class _Input:
    """One input: its shape and where its rows are (in memory or in a Dask collection)."""

    name: str
    value: Any
    shape: tuple[float, ...]

    @classmethod
    def of(cls, value: Any, name: str) -> _Input:
        if isinstance(value, (da.Array, dd.DataFrame, dd.Series)):
            shape = value.shape if isinstance(value, da.Array) else _frame_shape(value)
        elif isinstance(value, (pd.Series, pd.DataFrame)):
            shape = value.shape
        elif isinstance(value, (pa.Array, pa.ChunkedArray)):
            shape = (len(value),)
        else:
            value = _as_array(value, name)
            shape = value.shape
        if not shape:
            raise InvalidParameterError(
                "Input should have at least 1 dimension i.e. satisfy `len(x.shape) > 0`, got "
                f"scalar `{value!r}` instead (argument {name})."
            )
        return cls(name, value, tuple(shape))

    @property
    def rows(self) -> int | None:
        return None if math.isnan(self.shape[0]) else int(self.shape[0])

    @property
    def n_outputs(self) -> int:
        return 1 if len(self.shape) == 1 else int(self.shape[1])

    @property
    def lazy(self) -> bool:
        return isinstance(self.value, (da.Array, dd.DataFrame, dd.Series))

    def check(self) -> None:
        """scikit-learn's checks of an input that need no data: dimensions, dtype, rows."""
        if _dtype_kind(self.value) == "c":
            raise _complex(self.value)
        if self.name == "sample_weight":
            if len(self.shape) != 1:
                raise SchemaError(
                    f"Sample weights must be 1D array or scalar, got {len(self.shape)}D array. "
                    "Expected either a scalar value or a 1D array of length "
                    f"{self.shape[0]}."
                )
            return
        if len(self.shape) > 2:
            raise SchemaError(
                f"Found array with dim {len(self.shape)}, while dim <= 2 is required ({self.name})."
            )
        if self.rows == 0:
            raise EmptyDatasetError(
                f"Found array with 0 sample(s) (shape={self.shape}) while a minimum of 1 is "
                f"required ({self.name})."
            )
        if self.n_outputs == 0:
            raise SchemaError(
                f"Found array with 0 feature(s) (shape={self.shape}) while a minimum of 1 is "
                f"required ({self.name})."
            )

    def memory_columns(self) -> tuple[np.ndarray, ...]:
        return matrix_columns(self.value, self.name)

    def parts(self, row_chunks: tuple[int, ...] | None = None) -> list[Any]:
        """The Dask input's blocks or partitions as ``Delayed`` values, rechunked if asked."""
        value = self.value
        if isinstance(value, da.Array):
            if value.ndim == 2 and len(value.chunks[1]) > 1:
                value = value.rechunk({1: -1})
            if row_chunks is not None and value.chunks[0] != row_chunks:
                value = value.rechunk({0: row_chunks})
        return list(
            value.to_delayed().ravel() if isinstance(value, da.Array) else value.to_delayed()
        )


def _units(inputs: list[_Input], n_outputs: int, token: str) -> tuple[Any, ...]:
    lazy = [found for found in inputs if found.lazy]
    if not lazy:
        columns = {found.name: found.memory_columns() for found in inputs}
        rows = len(columns["y_true"][0])
        bounds = [*range(0, rows, PANDAS_UNIT_ROWS), rows] if rows else [0, 0]
        return tuple(
            ArrayUnit(
                {name: tuple(c[low:high] for c in found) for name, found in columns.items()},
                n_outputs,
                f"rows {low} to {high - 1}",
            )
            for low, high in itertools.pairwise(bounds)
        )
    if all(found.rows is not None and isinstance(found.value, da.Array) for found in lazy):
        pieces, labels = _known_pieces(inputs, lazy[0])
    else:
        pieces, labels = _paired_pieces(inputs, lazy, token)
    names = tuple(pieces)
    return tuple(  # the Delayed pieces as direct arguments: Dask adds them to the graph as is
        dask.delayed(_unit, pure=False)(
            names,
            n_outputs,
            label,
            *(piece[i] for piece in pieces.values()),
            dask_key_name=(f"daskloss-arrays-{token}", i),
        )
        for i, label in enumerate(labels)
    )


def _unit(names: tuple[Any, ...], n_outputs: int, label: str, *pieces: Any) -> ArrayUnit:
    """The unit of ``pieces``: ``names[i]`` names piece ``i`` (a tuple: a side-by-side frame's)."""
    found = {}
    for name, piece in zip(names, pieces, strict=True):
        if isinstance(name, tuple):
            for each in name:
                found[each] = piece[[c for c in piece.columns if c.startswith(f"{each}[")]]
        else:
            found[name] = piece
    return ArrayUnit(found, n_outputs, label)


def _known_pieces(inputs: list[_Input], lead: _Input) -> tuple[dict[Any, list[Any]], list[str]]:
    """Each input's pieces along the row chunks of ``lead``, a Dask array of known chunk sizes."""
    row_chunks = tuple(int(n) for n in lead.value.chunks[0])
    bounds = np.cumsum((0, *row_chunks)).tolist()
    pieces = {}
    for found in inputs:
        if found.lazy:
            pieces[found.name] = found.parts(row_chunks)
        else:
            columns = found.memory_columns()
            pieces[found.name] = [
                tuple(c[low:high] for c in columns) for low, high in itertools.pairwise(bounds)
            ]
    return pieces, [_block_label(i, bounds) for i in range(len(row_chunks))]


def _paired_pieces(
    inputs: list[_Input], lazy: list[_Input], token: str
) -> tuple[dict[Any, list[Any]], list[str]]:
    """Each input's pieces, pairing partition ``i`` of the Dask inputs (some of unknown lengths).

    The Dask Series and DataFrames become one Dask DataFrame, side by side, whose
    partitions are the pieces of all of them (keyed by the tuple of their names).
    """
    frames = [found for found in lazy if not isinstance(found.value, da.Array)]
    arrays = [found for found in lazy if isinstance(found.value, da.Array)]
    parts: dict[Any, list[Any]] = {found.name: found.parts() for found in arrays}
    if frames:
        counts = {found.name: found.value.npartitions for found in frames}
        if len(set(counts.values())) == 1:
            parts[tuple(counts)] = _side_by_side(frames).to_delayed()
    else:
        counts = {}
    counts.update((name, len(found)) for name, found in parts.items() if isinstance(name, str))
    if len(set(counts.values())) > 1:
        described = ", ".join(f"{name}: {count}" for name, count in counts.items())
        raise SchemaError(
            "the rows of Dask inputs of unknown chunk sizes are paired partition by partition, "
            f"but the inputs have different numbers of partitions ({described}); give them the "
            "same partitions (columns of one DataFrame), or pass Dask arrays with known chunk "
            "sizes (DataFrame.to_dask_array(lengths=True), Array.compute_chunk_sizes())"
        )
    count = next(iter(counts.values()))
    lead = next(iter(parts.values()))  # the lengths in-memory inputs are cut by
    for found in inputs:
        if not found.lazy:
            parts[found.name] = _offset_pieces(found, inputs, lead, token)
    return parts, [f"partition {i} of the Dask inputs" for i in range(count)]


def _side_by_side(frames: list[_Input]) -> dd.DataFrame:
    """Dask Series and DataFrames as one, partition by partition and row by row."""
    names = tuple(found.name for found in frames)
    combine = functools.partial(_columns_side_by_side, names)
    meta = combine(*(found.value._meta for found in frames))
    return dd.map_partitions(
        combine, *(found.value for found in frames), meta=meta, align_dataframes=False
    )


def _columns_side_by_side(names: tuple[str, ...], *parts: Any) -> pd.DataFrame:
    """Partitions of several inputs as one frame, row by row, columns ``name[j]``."""
    lengths = {name: len(part) for name, part in zip(names, parts, strict=True)}
    if len(set(lengths.values())) > 1:
        raise _partitions_differ("a partition of the Dask inputs", lengths)
    frames = []
    for name, part in zip(names, parts, strict=True):
        frame = part.to_frame() if isinstance(part, pd.Series) else part
        frame = frame.reset_index(drop=True)
        frame.columns = [f"{name}[{j}]" for j in range(frame.shape[1])]
        frames.append(frame)
    return pd.concat(frames, axis=1)


def _offset_pieces(found: _Input, inputs: list[_Input], lead: list[Any], token: str) -> list[Any]:
    """An in-memory input cut where each partition of ``lead`` starts, once they are read."""
    lengths = [dask.delayed(len, pure=True)(part) for part in lead]
    starts = dask.delayed(_starts, pure=True)(*lengths)
    columns = dask.delayed(
        found.memory_columns(), traverse=False, name=f"daskloss-{found.name}-{token}"
    )
    others = ", ".join(f.name for f in inputs if f is not found)
    return [
        dask.delayed(_rows_at, pure=True)(columns, starts, i, found.name, others)
        for i in range(len(lead))
    ]


def _starts(*lengths: int) -> list[int]:
    return np.cumsum((0, *lengths)).tolist()


def _rows_at(
    columns: tuple[np.ndarray, ...], starts: list[int], index: int, name: str, others: str
) -> tuple[np.ndarray, ...]:
    """Rows ``starts[index]:starts[index + 1]`` of in-memory columns; raise if the totals differ."""
    if starts[-1] != len(columns[0]):
        raise SchemaError(
            "Found input variables with inconsistent numbers of samples: "
            f"{others} hold {starts[-1]} rows in all and {name} {len(columns[0])}"
        )
    return tuple(column[starts[index] : starts[index + 1]] for column in columns)


def _partitions_differ(where: str, lengths: Mapping[str, int]) -> SchemaError:
    described = ", ".join(f"{name}: {n}" for name, n in lengths.items())
    return SchemaError(
        f"Found input variables with inconsistent numbers of samples in {where} ({described}); "
        "Dask inputs of unknown chunk sizes are paired partition by partition, so give them "
        "the same partitions (columns of one DataFrame), or pass Dask arrays with known chunk "
        "sizes (DataFrame.to_dask_array(lengths=True), Array.compute_chunk_sizes())"
    )


def _block_label(index: int, bounds: list[int]) -> str:
    return f"block {index} (rows {bounds[index]} to {bounds[index + 1] - 1}) of the Dask inputs"


def _frame_shape(frame: dd.DataFrame | dd.Series) -> tuple[float, ...]:
    return (math.nan,) if isinstance(frame, dd.Series) else (math.nan, len(frame.columns))


def _as_array(values: Any, name: str) -> np.ndarray:
    """A NumPy array of ``values``, refusing Python integers that float64 would round."""
    check_python_integers(values, name)
    return np.asarray(values)


def _numeric(array: np.ndarray, name: str) -> np.ndarray:
    """Booleans as 0/1 and numbers held as objects or strings as float64, as scikit-learn does."""
    kind = array.dtype.kind
    if kind == "c":
        raise _complex(array)
    if kind == "b":
        return array.astype(np.float64)
    if kind in "OUS":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"{exc} ({name} must hold numbers)") from None
    return array


def _column(values: Any, name: str, where: str) -> np.ndarray:
    chunks = float64_chunks(values, name, where)
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def _dtype_kind(value: Any) -> str:
    if isinstance(value, (pd.DataFrame, dd.DataFrame)):
        kinds = {getattr(dtype, "kind", "O") for dtype in value.dtypes}
        return "c" if "c" in kinds else "O"
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return "O"
    return getattr(getattr(value, "dtype", None), "kind", "O")


def _complex(value: Any) -> SchemaError:
    return SchemaError(f"Complex data not supported\n{value}\n")
