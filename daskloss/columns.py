"""Column-like inputs (numpy, pandas, pyarrow) as float64 chunks: exact, or refused.

The kernel reads contiguous float64 arrays. A pyarrow column arrives as
chunks (one per Parquet row group); each chunk without nulls is viewed, not
copied. Integers (and wider floats such as ``np.longdouble``) are accepted
only when float64 holds every value exactly; nulls and masked entries become
NaN so that the NaN policy sees them. Nothing is ever rounded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from daskloss.chunks import Chunk, Origin
from daskloss.errors import SchemaError

__all__ = ["aligned_chunks", "check_python_integers", "chunks_of_columns", "float64_chunks"]

_EXACT_INTEGER_LIMIT = 2**53


def float64_chunks(values: Any, column: str, where: str = "") -> list[np.ndarray]:
    """``values`` as a list of contiguous float64 arrays (zero-copy where possible).

    Raises
    ------
    SchemaError
        Non-numeric values, or integers that float64 cannot hold exactly.
    """
    if isinstance(values, pd.Series):
        values = _unwrap_series(values)
    if isinstance(values, pa.ChunkedArray):
        return [_arrow_chunk(chunk, column, where) for chunk in values.chunks]
    if isinstance(values, pa.Array):
        return [_arrow_chunk(values, column, where)]
    if isinstance(values, np.ma.MaskedArray):
        return [_masked(values, column, where)]
    if not isinstance(values, np.ndarray):
        check_python_integers(values, column, where)
    return [_numpy(np.asarray(values), column, where)]


def aligned_chunks(
    columns: Sequence[list[np.ndarray]],
) -> Iterator[tuple[np.ndarray, ...]]:
    """Slices of the columns' chunks that line up row for row (views, no copies).

    Columns read from one Parquet file share their chunk boundaries, so this
    usually yields the chunks as they are.
    """
    lengths = {sum(map(len, chunks)) for chunks in columns}
    if len(lengths) > 1:
        raise SchemaError(f"columns have different lengths: {sorted(lengths)}")
    if all(len(chunks) == 1 for chunks in columns):  # the usual case: no offsets to work out
        yield tuple(chunks[0] for chunks in columns)
        return
    starts = [np.cumsum([0] + [len(chunk) for chunk in chunks]) for chunks in columns]
    boundaries = sorted(set().union(*(offsets.tolist() for offsets in starts)))
    for low, high in itertools.pairwise(boundaries):
        yield tuple(
            _rows(chunks, offsets, low, high)
            for chunks, offsets in zip(columns, starts, strict=True)
        )


def chunks_of_columns(
    columns: Mapping[str, Any],
    origins: Sequence[Origin] | None = None,
    where: str = "",
    keys: Mapping[str, pa.Array | pa.ChunkedArray] | None = None,
    ids: Mapping[str, pa.Array | pa.ChunkedArray] | None = None,
) -> Iterator[Chunk]:
    """Named column-like values of the same rows as aligned float64 :class:`Chunk` objects.

    ``origins`` says where runs of the rows came from (see :class:`Chunk`;
    omitted, nowhere in particular); ``where`` is added to error messages
    (``" in FILE"``). ``keys`` are slice key columns of the same rows, passed
    on as Arrow arrays; so are ``ids``, id columns of the same rows.

    Raises
    ------
    SchemaError
        A column that is not numeric, integers float64 cannot hold, or columns
        of different lengths.
    """
    names = list(columns)
    chunked = [float64_chunks(columns[name], name, where) for name in names]
    try:
        pieces = list(aligned_chunks(chunked))
    except SchemaError as exc:
        raise SchemaError(f"{exc}{where} (columns {names})") from None
    keys = keys or {}
    ids = ids or {}
    start = 0
    for piece in pieces:
        stop = start + len(piece[0])
        cut = (("", stop - start),) if origins is None else _cut(origins, start, stop)
        keyed = {name: _key_rows(column, start, stop) for name, column in keys.items()}
        named = {name: _key_rows(column, start, stop) for name, column in ids.items()}
        yield Chunk(dict(zip(names, piece, strict=True)), cut, keyed, named)
        start = stop


def _key_rows(column: pa.Array | pa.ChunkedArray, start: int, stop: int) -> pa.Array:
    """Rows ``start:stop`` of a key column as one Arrow array."""
    part = column.slice(start, stop - start)
    return part.combine_chunks() if isinstance(part, pa.ChunkedArray) else part


def _cut(origins: Sequence[Origin], start: int, stop: int) -> tuple[Origin, ...]:
    """The origins of rows ``start:stop``."""
    cut = []
    offset = 0
    for where, rows in origins:
        low, high = max(start, offset), min(stop, offset + rows)
        if high > low:
            cut.append((where, high - low))
        offset += rows
    return tuple(cut)


def _rows(chunks: list[np.ndarray], offsets: np.ndarray, low: int, high: int) -> np.ndarray:
    """Rows ``low:high`` of a chunked column, when they lie within one chunk."""
    index = int(np.searchsorted(offsets, low, side="right")) - 1
    return chunks[index][low - offsets[index] : high - offsets[index]]


def _unwrap_series(series: pd.Series) -> Any:
    """The pyarrow data behind an Arrow-backed Series, else a numpy array."""
    if isinstance(series.dtype, pd.ArrowDtype):
        return series.array.__arrow_array__()
    if isinstance(series.dtype, pd.SparseDtype):
        return series.sparse.to_dense().to_numpy()
    if isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
        if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
            series.dtype
        ):
            return series.to_numpy()  # refused below with the dtype in the message
        return pa.array(series.array, from_pandas=True)  # masked ints/floats: nulls kept
    return series.to_numpy()


def _arrow_chunk(chunk: pa.Array, column: str, where: str) -> np.ndarray:
    kind = chunk.type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
        raise _not_numeric(column, where, str(kind))
    if chunk.null_count == 0:
        return _numpy(chunk.to_numpy(zero_copy_only=False), column, where)
    filled = _numpy(pc.fill_null(chunk, 0).to_numpy(zero_copy_only=False), column, where)
    filled = filled.copy() if not filled.flags.writeable else filled
    filled[chunk.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return filled


def _masked(values: np.ma.MaskedArray, column: str, where: str) -> np.ndarray:
    """A numpy masked array with its masked entries as NaN (missing, like nulls)."""
    converted = _numpy(np.ma.getdata(values), column, where)
    mask = np.ma.getmaskarray(values)
    return np.where(mask, np.nan, converted) if mask.any() else converted


def check_python_integers(values: Any, column: str, where: str = "") -> None:
    """Refuse integers in a (nested) list that numpy would round when it makes it float64.

    ``np.asarray([2**53 + 1, 0.5])`` is float64 already, so the integer check
    on numpy arrays would never see the integer it rounded.
    """
    if not isinstance(values, (list, tuple)):
        return
    for value in values:
        if isinstance(value, (list, tuple)):
            check_python_integers(value, column, where)
        elif isinstance(value, (int, np.integer)) and not _float64_holds(int(value)):
            raise _inexact_integers(column, where)


def _float64_holds(value: int) -> bool:
    if abs(value) <= _EXACT_INTEGER_LIMIT:
        return True
    try:
        return int(float(value)) == value
    except OverflowError:
        return False


def _numpy(array: np.ndarray, column: str, where: str) -> np.ndarray:
    if array.dtype == np.float64:
        return np.ascontiguousarray(array)
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        return array.astype(np.float64)  # widening float16/float32 is exact
    if array.dtype.kind == "f":
        return _narrowed_exactly(array, column, where)
    if array.dtype.kind in "iu":
        converted = array.astype(np.float64)
        if not _exact_in_float64(array, converted):
            raise _inexact_integers(column, where)
        return converted
    raise _not_numeric(column, where, str(array.dtype))


def _narrowed_exactly(array: np.ndarray, column: str, where: str) -> np.ndarray:
    """A float wider than float64 (``np.longdouble``) as float64, if no value changes."""
    with np.errstate(over="ignore"):
        converted = array.astype(np.float64)
    finite = np.isfinite(array)
    same = converted.astype(array.dtype) == array
    if not (same | ~finite).all():
        raise SchemaError(
            f"column {column!r}{where} has dtype {array.dtype} and holds values that float64 "
            "cannot represent exactly; cast the column to float64 yourself if rounding is "
            "acceptable"
        )
    return converted


def _exact_in_float64(array: np.ndarray, converted: np.ndarray) -> bool:
    """Whether every integer survived the conversion to float64 unchanged."""
    if array.dtype.itemsize < 7 or array.size == 0:
        return True
    big = array > _EXACT_INTEGER_LIMIT
    if array.dtype.kind == "i":
        big |= array < -_EXACT_INTEGER_LIMIT
    if not big.any():
        return True
    beyond = 2.0 ** (8 * array.dtype.itemsize - (array.dtype.kind == "i"))
    rounded = converted[big]
    if ((rounded >= beyond) | (rounded < -beyond)).any():  # rounded out of the type's range
        return False
    return bool((rounded.astype(array.dtype) == array[big]).all())


def _inexact_integers(column: str, where: str) -> SchemaError:
    return SchemaError(
        f"column {column!r}{where} holds integers that float64 cannot represent "
        "exactly (beyond 2**53); cast the column to float64 yourself if rounding is "
        "acceptable"
    )


def _not_numeric(column: str, where: str, found: str) -> SchemaError:
    return SchemaError(
        f"column {column!r}{where} must be numeric (float or integer), found {found}; "
        "fix the writer of this dataset or cast the column"
    )
