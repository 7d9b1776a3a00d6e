"""Slice keys: the group-by columns of a chunk's rows as group codes, and back.

A unit's rows arrive chunk by chunk; :class:`SliceKeys` gives each distinct
key (a tuple of one value per group-by column) a code, the same for the whole
unit, in order of first appearance. Keys are Python values (``str``, ``int``,
``bool``, ``datetime.date``, ``None`` for a null), so that the statistics of
units merge by key wherever they were computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from daskloss.errors import SchemaError

__all__ = ["SliceKeys", "check_id_type", "check_key_type"]

Key = tuple[Any, ...]


def check_key_type(name: str, kind: pa.DataType, where: str) -> None:
    """Refuse a group-by column of a type slices cannot be keyed by (floats, nested types).

    Strings, integers, booleans, dates, timestamps and dictionaries of them
    are keys; a float column is refused (NaN would not equal itself).
    """
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_date(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_null(kind)
    ):
        return
    raise SchemaError(
        f"group_by column {name!r}{where} has type {kind}; slice keys must be strings, "
        "integers, booleans, dates or timestamps (round or cast the column first)"
    )


def check_id_type(name: str, kind: pa.DataType, where: str) -> None:
    """Refuse an id column whose values cannot be ordered (lists, structs, maps...)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_nested(kind):
        raise SchemaError(
            f"id column {name!r}{where} has type {kind}; id columns must hold plain values "
            "(numbers, strings, dates, timestamps...): choose other evaluation.id_columns"
        )


class SliceKeys:
    """Codes of the distinct keys of a unit's rows, and the keys of the codes.

    Examples
    --------
    >>> import pyarrow as pa
    >>> keys = SliceKeys(["segment"])
    >>> keys.codes({"segment": pa.array(["a", "b", None, "a"])}).tolist()
    [0, 1, 2, 0]
    >>> keys.codes({"segment": pa.array(["c", "a"])}).tolist(), keys.keys
    ([3, 0], [('a',), ('b',), (None,), ('c',)])
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.keys: list[Key] = []
        self._codes: dict[Key, int] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def codes(self, columns: Mapping[str, pa.Array | pa.ChunkedArray]) -> np.ndarray:
        """The code of each row's key (int64), new keys numbered as they appear."""
        parts = [_encoded(columns[name]) for name in self.names]
        if len(parts) == 1:
            indices, values = parts[0]
            return self._code_of([(value,) for value in values])[indices]
        combined = np.zeros(len(parts[0][0]), np.int64)
        for indices, values in parts:  # a distinct code per combination of the columns
            combined = combined * (len(values)) + indices
        distinct, inverse = np.unique(combined, return_inverse=True)
        keys = []
        for code in distinct.tolist():
            key = []
            for _indices, values in reversed(parts):
                code, index = divmod(code, len(values))
                key.append(values[index])
            keys.append(tuple(reversed(key)))
        return self._code_of(keys)[inverse]

    def _code_of(self, keys: list[Key]) -> np.ndarray:
        """The codes of these keys, numbering the new ones."""
        found = np.empty(len(keys), np.int64)
        for index, key in enumerate(keys):
            code = self._codes.get(key)
            if code is None:
                code = self._codes[key] = len(self.keys)
                self.keys.append(key)
            found[index] = code
        return found


def _encoded(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """``(indices, values)``: each row's index into its column's distinct values (null last)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_integer(column.type) and not column.null_count and len(column):
        found = _encoded_integers(column.to_numpy())
        if found is not None:
            return found
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    values = column.dictionary.to_pylist()
    indices = column.indices
    if indices.null_count:
        filled = pc.fill_null(indices, len(values)).to_numpy(zero_copy_only=False)
        return filled.astype(np.int64, copy=False), [*values, None]
    return indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), values


def _encoded_integers(values: np.ndarray) -> tuple[np.ndarray, list[Any]] | None:
    """Integers of a narrow range encoded by offset, without hashing (None if too wide)."""
    low, high = int(values.min()), int(values.max())
    if high - low > 4 * len(values) + 4096:
        return None
    offsets = (values - low).astype(np.int64, copy=False)
    present = np.flatnonzero(np.bincount(offsets, minlength=high - low + 1))
    lookup = np.empty(high - low + 1, np.int64)
    lookup[present] = np.arange(len(present))
    return lookup[offsets], (present + low).tolist()
