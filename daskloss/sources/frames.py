"""Planning a DataFrame in hand: a Dask DataFrame's partitions, or a pandas DataFrame's rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dask.dataframe as dd
import pandas as pd

from daskloss.chunks import Chunk
from daskloss.columns import chunks_of_columns
from daskloss.errors import SchemaError
from daskloss.sources.plan import Plan

__all__ = ["PANDAS_UNIT_ROWS", "FrameUnit", "plan_dask", "plan_pandas"]

#: Rows of a pandas DataFrame per work unit.
PANDAS_UNIT_ROWS = 1 << 20


@dataclass(frozen=True)
class FrameUnit:
    """Some rows of a DataFrame: a pandas frame (or a Dask partition, computed where it runs)."""

    frame: Any
    label: str

    def chunks(self) -> Iterator[Chunk]:
        """The frame's columns as aligned float64 chunks."""
        frame: pd.DataFrame = self.frame
        values = {name: frame[name] for name in frame.columns}
        yield from chunks_of_columns(values, [(self.label, len(frame))], where=f" in {self.label}")


def plan_dask(frame: dd.DataFrame, columns: Sequence[str]) -> Plan:
    """One unit per partition of a Dask DataFrame, holding only ``columns``.

    The partitions stay lazy: each is computed (with whatever made it) in the
    task that sums it.
    """
    selected = frame[_checked(frame.columns, frame.dtypes, columns)]
    parts = selected.to_delayed(optimize_graph=True)
    units = tuple(
        FrameUnit(part, f"partition {index} of the Dask DataFrame")
        for index, part in enumerate(parts)
    )
    return Plan(units=units, kind="dask")


def plan_pandas(frame: pd.DataFrame, columns: Sequence[str]) -> Plan:
    """Units of up to ``PANDAS_UNIT_ROWS`` rows of a pandas DataFrame, holding only ``columns``."""
    selected = frame[_checked(frame.columns, frame.dtypes, columns)]
    units = tuple(
        FrameUnit(
            selected.iloc[start : start + PANDAS_UNIT_ROWS],
            f"rows {start} to {min(start + PANDAS_UNIT_ROWS, len(selected)) - 1} of the DataFrame",
        )
        for start in range(0, max(len(selected), 1), PANDAS_UNIT_ROWS)
    )
    return Plan(units=units, kind="pandas")


def _checked(names: Any, dtypes: Any, columns: Sequence[str]) -> list[str]:
    """The needed columns, checked up front: present, once, and numeric."""
    missing = [name for name in columns if name not in names]
    if missing:
        raise SchemaError(
            f"column(s) {missing} not found in the DataFrame; its columns are: "
            f"{[str(c) for c in names]}"
        )
    repeated = sorted({name for name in columns if list(names).count(name) > 1})
    if repeated:
        raise SchemaError(f"the DataFrame has more than one column named {repeated}")
    for name in columns:
        dtype = dtypes[name]
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise SchemaError(
                f"column {name!r} must be numeric (float or integer), found dtype {dtype}; "
                "cast it first"
            )
    return list(columns)
