"""A planned source: its work units, and what it was."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from daskloss.chunks import Chunk
from daskloss.names import FileFormat

__all__ = ["FileEntry", "Plan", "SourceKind", "Unit", "listing_digest"]

SourceKind = Literal["files", "dask", "pandas"]


class Unit(Protocol):
    """One task's work: picklable, it reads its rows where it runs."""

    def chunks(self) -> Iterator[Chunk]:
        """The unit's rows as aligned float64 chunks, tagged with where they came from."""
        ...


@dataclass(frozen=True)
class FileEntry:
    """A listed file: its path, its size in bytes and its version.

    ``version`` says which content the path held when it was listed: on local
    disk the modification and change times (nanoseconds), on an object store
    the ETag (else a generation or modification time); None where the storage
    tells none.
    """

    path: str
    size: int
    version: str | None = None


def listing_digest(entries: Iterable[FileEntry]) -> str:
    """``"sha256:<hex>"`` of the files' paths, sizes and versions, whatever their order.

    Two runs over the same files, unchanged, give the same digest.

    Examples
    --------
    >>> a, b = FileEntry("/d/a.parquet", 10, "1-1"), FileEntry("/d/b.parquet", 20, "2-2")
    >>> listing_digest([a, b]) == listing_digest([b, a]) != listing_digest([a])
    True
    """
    lines = sorted(f"{e.path}\0{e.size}\0{e.version or ''}\n" for e in entries)
    return "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


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
        The files to read (files only): those listed, less any whose
        statistics are already known (see :func:`daskloss.sources.files.plan_files`).
    listing : tuple of FileEntry
        The files evaluated (files only): every file listed (in a window, if
        one was given), read or not.
    """

    units: tuple[Unit, ...]
    kind: SourceKind
    path: str | None = None
    format: FileFormat | None = None
    files: tuple[str, ...] = field(default=())
    listing: tuple[FileEntry, ...] = field(default=())
