"""What a work unit hands the statistics: aligned float64 columns and where they came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Chunk", "Origin"]

#: A run of a chunk's rows that came from one place: ``(where, rows)``, where
#: ``where`` names a file (or a partition), or is "" for arrays given directly.
Origin = tuple[str, int]


@dataclass(frozen=True)
class Chunk:
    """Some rows: contiguous float64 arrays of equal length, keyed by column name.

    ``origins`` lists, in row order, where runs of the rows came from (several
    small files read together make one chunk), so that an error can name the
    file that holds a bad value.
    """

    values: Mapping[str, np.ndarray]
    origins: tuple[Origin, ...]

    @property
    def rows(self) -> int:
        """The number of rows."""
        return sum(rows for _, rows in self.origins)
