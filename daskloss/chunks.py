"""What a work unit hands the statistics: aligned float64 columns, slice keys, and origins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pyarrow as pa

__all__ = ["Chunk", "Origin"]

#: A run of a chunk's rows that came from one place: ``(where, rows)``, where
#: ``where`` names a file (or a partition), or is "" for arrays given directly.
Origin = tuple[str, int]


@dataclass(frozen=True)
class Chunk:
    """Some rows: contiguous float64 arrays of equal length, keyed by column name.

    ``origins`` lists, in row order, where runs of the rows came from (several
    small files read together make one chunk), so that an error can name the
    file that holds a bad value. ``keys`` holds the slice key columns of the
    same rows, as Arrow arrays of any key type; ``ids`` the id columns shown
    with the worst rows, as Arrow arrays of any plain type.
    """

    values: Mapping[str, np.ndarray]
    origins: tuple[Origin, ...]
    keys: Mapping[str, pa.Array] = field(default_factory=lambda: MappingProxyType({}))
    ids: Mapping[str, pa.Array] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def rows(self) -> int:
        """The number of rows."""
        return sum(rows for _, rows in self.origins)

    def arrow_column(self, name: str) -> pa.Array:
        """A column of these rows as an Arrow array: an id, a key or a value column."""
        if name in self.ids:
            return self.ids[name]
        if name in self.keys:
            return self.keys[name]
        return pa.array(self.values[name])
