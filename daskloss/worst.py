"""The worst rows: the ``k`` rows of largest ``|d|``, overall or per slice, the same for any split.

:class:`WorstRows` holds, for each slice (one, ``()``, without slices), its
``k`` worst rows: their target, prediction, residual ``d = fl(y_pred -
y_true)``, weight and the id columns the user named. It is a mergeable
value: the worst rows of two sets of rows are the worst of their worst rows.

Rows are ordered by a total order, so the list does not depend on how the
rows were split: largest ``|d|`` first, then by ``d``, ``y_true``,
``y_pred``, the weight and the id columns, each ascending (nulls last), then
by the bit patterns of ``d``, ``y_true``, ``y_pred`` and the weight (which
tells ``-0.0`` from ``0.0``). Two rows equal under all of these print the
same, so whichever is kept, the list is the same.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from daskloss.keys import SliceKeys

__all__ = ["WORST_FIELDS", "WorstRows", "candidate_table"]

#: The value fields of a worst row, besides its id columns (``weight`` when weighted).
WORST_FIELDS: tuple[str, ...] = ("y_true", "y_pred", "error")
_KEY, _ID = "key:", "id:"
_VALUES = ("abs_error", "error", "y_true", "y_pred", "weight")
_BITS = ("error", "y_true", "y_pred", "weight")


@dataclass(frozen=True, eq=False)
class WorstRows:
    """The ``k`` worst rows of each slice: an Arrow table, at most ``k`` rows per slice key.

    Columns: ``key:<column>`` for each slice key column, ``id:<column>`` for
    each id column, then ``abs_error``, ``error``, ``y_true``, ``y_pred`` and
    ``weight`` (1.0 when unweighted).

    Examples
    --------
    >>> rows = WorstRows.of_arrays(2, np.array([0.0, 0.0, 0.0]), np.array([1.0, -3.0, 2.0]),
    ...                            ids={"id": pa.array([7, 8, 9])})
    >>> [(row["id"], row["error"]) for row in rows.rows()]
    [(8, -3.0), (9, 2.0)]
    """

    k: int
    table: pa.Table
    keys: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    weighted: bool = False

    @classmethod
    def of_arrays(
        cls,
        k: int,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        weight: np.ndarray | None = None,
        *,
        keys: Mapping[str, pa.Array] | None = None,
        ids: Mapping[str, pa.Array] | None = None,
    ) -> WorstRows:
        """The worst rows among these (finite, with positive weight), in one go."""
        d = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
        table = candidate_table(
            np.asarray(y_true, np.float64),
            np.asarray(y_pred, np.float64),
            d,
            None if weight is None else np.asarray(weight, np.float64),
            dict(keys or {}),
            dict(ids or {}),
        )
        if weight is not None:
            table = table.filter(pc.greater(table["weight"], 0.0))
        found = cls(k, table, tuple(keys or {}), tuple(ids or {}), weight is not None)
        return found.reduced()

    def reduced(self) -> WorstRows:
        """Only the ``k`` first rows of each slice under the total order, sorted."""
        return WorstRows.merge_all([self])

    def merge(self, other: WorstRows) -> WorstRows:
        """The worst rows of both sets of rows."""
        return WorstRows.merge_all([self, other])

    @classmethod
    def merge_all(cls, parts: Sequence[WorstRows]) -> WorstRows:
        """The worst rows of every part's rows (at least one part), sorted."""
        first = parts[0]
        tables = [part.table for part in parts if part.table.num_rows]
        if not tables:
            return cls(first.k, first.table.slice(0, 0), first.keys, first.ids, first.weighted)
        table = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
        codes, _ = _slice_codes(table, first.keys)
        order = _order(table, codes)
        sorted_codes = codes[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        kept = order[rank < first.k]
        return cls(first.k, table.take(pa.array(kept)), first.keys, first.ids, first.weighted)

    def rows_of(self, keys: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """The worst rows of the slices ``keys`` taken together (as :meth:`rows`)."""
        if len(keys) == 1 or not self.keys:
            return self.rows(keys[0] if keys else ())
        codes, slice_keys = _slice_codes(self.table, self.keys)
        wanted = {tuple(key) for key in keys}
        chosen = np.array([key in wanted for key in slice_keys], bool)[codes]
        table = self.table.filter(pa.array(chosen))
        return WorstRows(self.k, table, (), self.ids, self.weighted).reduced().rows()

    def slice_keys(self) -> list[tuple[Any, ...]]:
        """The slice keys that have worst rows (``()`` alone without slices)."""
        return list(self._by_key)

    def rows(self, key: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """A slice's worst rows as JSON-ready dicts: the id columns, y_true, y_pred, error.

        With weights, each also holds its ``weight``. Largest ``|error|`` first.
        """
        return self._by_key.get(tuple(key), [])

    @functools.cached_property
    def _by_key(self) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
        table = self.table
        if not table.num_rows:
            return {}
        codes, slice_keys = _slice_codes(table, self.keys)
        order = _order(table, codes)
        columns = {name: table[name].to_pylist() for name in table.column_names}
        found: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for index in order.tolist():
            key = slice_keys[codes[index]] if self.keys else ()
            row = {name: _json_value(columns[_ID + name][index]) for name in self.ids}
            for name in ("y_true", "y_pred", "error"):
                row[name] = columns[name][index]
            if self.weighted:
                row["weight"] = columns["weight"][index]
            found.setdefault(key, []).append(row)
        return found

    def to_data(self) -> dict[str, Any]:
        """The worst rows as JSON-ready data: ``{k, keys, ids, weighted, table}``.

        ``table`` is the Arrow table as an Arrow IPC stream, base64-encoded, so
        every value and type is kept exactly. :meth:`from_data` reads it back.
        """
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.table.schema) as writer:
            writer.write_table(self.table)
        return {
            "k": self.k,
            "keys": list(self.keys),
            "ids": list(self.ids),
            "weighted": self.weighted,
            "table": base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii"),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> WorstRows:
        """The worst rows :meth:`to_data` wrote.

        Raises
        ------
        ValueError, TypeError, KeyError
            Data that is not what :meth:`to_data` writes.
        """
        k, weighted = data["k"], data["weighted"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise TypeError(f"worst rows' k must be an integer >= 0; got {k!r}")
        if not isinstance(weighted, bool):
            raise TypeError(f"worst rows' weighted must be true or false; got {weighted!r}")
        keys, ids = _names(data["keys"]), _names(data["ids"])
        try:
            table = pa.ipc.open_stream(base64.b64decode(data["table"], validate=True)).read_all()
        except pa.ArrowException as exc:
            raise ValueError(f"the worst rows' table is not an Arrow stream ({exc})") from exc
        _check_columns(table, keys, ids)
        return cls(k, table, keys, ids, weighted)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorstRows) and (
            self.k,
            self.keys,
            self.ids,
            self.weighted,
            self._by_key,
        ) == (other.k, other.keys, other.ids, other.weighted, other._by_key)

    __hash__ = None  # type: ignore[assignment]


def candidate_table(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    d: np.ndarray,
    weight: np.ndarray | None,
    keys: Mapping[str, pa.Array],
    ids: Mapping[str, pa.Array],
) -> pa.Table:
    """Some rows as a table of :class:`WorstRows`'s columns (dictionaries decoded)."""
    columns: dict[str, pa.Array] = {}
    for prefix, arrays in ((_KEY, keys), (_ID, ids)):
        for name, array in arrays.items():
            if pa.types.is_dictionary(array.type):
                array = array.dictionary_decode()
            columns[prefix + name] = array
    columns["abs_error"] = pa.array(np.abs(d))
    columns["error"] = pa.array(d)
    columns["y_true"] = pa.array(y_true)
    columns["y_pred"] = pa.array(y_pred)
    columns["weight"] = pa.array(np.ones(len(d)) if weight is None else weight)
    return pa.table(columns)


def _names(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(name, str) for name in values):
        raise TypeError(f"expected a list of column names; got {values!r}")
    return tuple(values)


def _check_columns(table: pa.Table, keys: Sequence[str], ids: Sequence[str]) -> None:
    """A table of :class:`WorstRows`'s columns (the key and id columns may lack if it is empty)."""
    names = set(table.column_names)
    named = {_KEY + name for name in keys} | {_ID + name for name in ids}
    missing = [name for name in _VALUES if name not in names]
    if table.num_rows:
        missing += sorted(named - names)
    unknown = sorted(names - named - set(_VALUES))
    if missing or unknown:
        raise ValueError(f"worst rows' table lacks columns {missing} or has others {unknown}")
    for name in _VALUES:
        if table.schema.field(name).type != pa.float64():
            raise TypeError(f"worst rows' column {name} is {table.schema.field(name).type}")


def _slice_codes(table: pa.Table, keys: Sequence[str]) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Each row's slice code in this table, and the keys of the codes."""
    if not keys:
        return np.zeros(table.num_rows, np.int64), [()]
    coder = SliceKeys(keys)
    codes = coder.codes({name: table[_KEY + name] for name in keys})
    return codes, coder.keys


def _order(table: pa.Table, codes: np.ndarray) -> np.ndarray:
    """Row indices sorted by slice code, then by the worst rows' total order."""
    columns: dict[str, Any] = {"__slice": pa.array(codes)}
    sort_keys: list[tuple[str, str]] = [("__slice", "ascending")]
    for name in _VALUES:
        columns[name] = table[name]
        sort_keys.append((name, "descending" if name == "abs_error" else "ascending"))
    for name in table.column_names:
        if name.startswith(_ID):
            columns[name] = table[name]
            sort_keys.append((name, "ascending"))
    for name in _BITS:
        values = table[name].to_numpy()
        columns["bits:" + name] = pa.array(values.view(np.int64))
        sort_keys.append(("bits:" + name, "ascending"))
    return pc.sort_indices(pa.table(columns), sort_keys=sort_keys).to_numpy()


def _json_value(value: Any) -> Any:
    """An id value as JSON: dates and times as ISO-8601 text, decimals and bytes as text."""
    if isinstance(value, (date, datetime, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value
