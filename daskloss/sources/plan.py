"""A planned source: its work units, and what it was."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from daskloss.chunks import Chunk
from daskloss.names import FileFormat

__all__ = ["Plan", "SourceKind", "Unit"]

SourceKind = Literal["files", "dask", "pandas"]


class Unit(Protocol):
    """One task's work: picklable, it reads its rows where it runs."""

    def chunks(self) -> Iterator[Chunk]:
        """The unit's rows as aligned float64 chunks, tagged with where they came from."""
        ...


@dataclass(frozen=True)
class Plan:
    """A source cut into work units.

    Attributes
    ----------
    units : tuple of Unit
        The work, one task each. A Dask DataFrame's units hold their
        partitions as Dask collections, computed where the task runs.
    kind : {'files', 'dask', 'pandas'}
        What the source was.
    path : str or None
        The dataset's path as given (files only).
    format : {'parquet', 'csv'} or None
        The file format read, given or inferred (files only).
    files : tuple of str
        The files listed (files only).
    """

    units: tuple[Unit, ...]
    kind: SourceKind
    path: str | None = None
    format: FileFormat | None = None
    files: tuple[str, ...] = field(default=())
