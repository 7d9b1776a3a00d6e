"""Planning a DataFrame in hand: a Dask DataFrame's partitions, or a pandas DataFrame's rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa

from daskloss.chunks import Chunk
from daskloss.columns import chunks_of_columns
from daskloss.errors import SchemaError
from daskloss.keys import check_id_type, check_key_type
from daskloss.sources.plan import Plan

__all__ = ["PANDAS_UNIT_ROWS", "FrameUnit", "plan_dask", "plan_pandas"]

#: Rows of a pandas DataFrame per work unit.
PANDAS_UNIT_ROWS = 1 << 20


@dataclass(frozen=True)
class FrameUnit:
    """Some rows of a DataFrame: a pandas frame (or a Dask partition, computed where it runs).

    ``keys`` names the frame's slice key columns and ``ids`` its id columns;
    ``extra`` those of the id columns that are neither keys nor numeric
    columns. Every other column is numeric. ``index`` numbers the unit in its plan.
    """

    frame: Any
    label: str
    keys: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    index: int = 0

    def chunks(self) -> Iterator[Chunk]:
        """The frame's columns as aligned float64 chunks, its key and id columns as Arrow arrays."""
        frame: pd.DataFrame = self.frame
        where = f" in {self.label}"
        skipped = {*self.keys, *self.extra}
        values = {name: frame[name] for name in frame.columns if name not in skipped}
        keys = {name: pa.array(frame[name], from_pandas=True) for name in self.keys}
        for name, column in keys.items():
            check_key_type(name, column.type, where)
        ids = {name: pa.array(frame[name], from_pandas=True) for name in self.ids}
        for name, column in ids.items():
            check_id_type(name, column.type, where)
        yield from chunks_of_columns(
            values, [(self.label, len(frame))], where=where, keys=keys, ids=ids
        )


def plan_dask(
    frame: dd.DataFrame, columns: Sequence[str], keys: Sequence[str] = (), ids: Sequence[str] = ()
) -> Plan:
    """One unit per partition of a Dask DataFrame, holding only ``columns``, ``keys`` and ``ids``.

    The partitions stay lazy: each is computed (with whatever made it) in the
    task that sums it.
    """
    selected = frame[_checked(frame.columns, frame.dtypes, columns, keys, ids)]
    parts = selected.to_delayed(optimize_graph=True)
    extra = _extra(columns, keys, ids)
    units = tuple(
        FrameUnit(
            part, f"partition {index} of the Dask DataFrame", tuple(keys), tuple(ids), extra, index
        )
        for index, part in enumerate(parts)
    )
    return Plan(units=units, kind="dask")


def plan_pandas(
    frame: pd.DataFrame, columns: Sequence[str], keys: Sequence[str] = (), ids: Sequence[str] = ()
) -> Plan:
    """Units of up to ``PANDAS_UNIT_ROWS`` rows of a pandas DataFrame: columns, keys and ids."""
    selected = frame[_checked(frame.columns, frame.dtypes, columns, keys, ids)]
    extra = _extra(columns, keys, ids)
    units = tuple(
        FrameUnit(
            selected.iloc[start : start + PANDAS_UNIT_ROWS],
            f"rows {start} to {min(start + PANDAS_UNIT_ROWS, len(selected)) - 1} of the DataFrame",
            tuple(keys),
            tuple(ids),
            extra,
            index,
        )
        for index, start in enumerate(range(0, max(len(selected), 1), PANDAS_UNIT_ROWS))
    )
    return Plan(units=units, kind="pandas")


def _extra(columns: Sequence[str], keys: Sequence[str], ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(name for name in ids if name not in columns and name not in keys)


def _checked(
    names: Any,
    dtypes: Any,
    columns: Sequence[str],
    keys: Sequence[str],
    ids: Sequence[str] = (),
) -> list[str]:
    """The needed columns, checked up front: present, once, numeric (keys: not float)."""
    missing = [name for name in [*columns, *keys, *ids] if name not in names]
    if missing:
        raise SchemaError(
            f"column(s) {missing} not found in the DataFrame; its columns are: "
            f"{[str(c) for c in names]}"
        )
    repeated = sorted({name for name in [*columns, *keys] if list(names).count(name) > 1})
    if repeated:
        raise SchemaError(f"the DataFrame has more than one column named {repeated}")
    for name in columns:
        dtype = dtypes[name]
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise SchemaError(
                f"column {name!r} must be numeric (float or integer), found dtype {dtype}; "
                "cast it first"
            )
    for name in keys:
        if pd.api.types.is_float_dtype(dtypes[name]):
            check_key_type(name, pa.float64(), " of the DataFrame")  # refused, with the reason
    return list(dict.fromkeys([*columns, *keys, *ids]))
