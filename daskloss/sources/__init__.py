"""Sources: anything that holds rows, cut into picklable work units.

:func:`plan_source` turns a source into a :class:`Plan`: files on local disk
or an object store (:mod:`daskloss.sources.files`, read by
:mod:`daskloss.sources.reader`), a Dask DataFrame or a pandas DataFrame
(:mod:`daskloss.sources.frames`). Each unit yields aligned float64
:class:`~daskloss.chunks.Chunk` objects tagged with where they came from;
nothing above this package knows about file formats.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import dask.dataframe as dd
import pandas as pd

from daskloss.errors import ConfigError
from daskloss.names import FileFormat
from daskloss.policy import ReadRoots
from daskloss.sources.files import Known, PartitionWindow, plan_files
from daskloss.sources.frames import plan_dask, plan_pandas
from daskloss.sources.plan import Plan, SourceKind, Unit

__all__ = ["Plan", "Source", "SourceKind", "Unit", "plan_source"]

#: What :func:`plan_source` accepts.
Source = dd.DataFrame | pd.DataFrame | str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def plan_source(
    source: Source,
    columns: Sequence[str],
    *,
    keys: Sequence[str] = (),
    format: FileFormat | None = None,
    storage_options: Mapping[str, Any] | None = None,
    read_roots: ReadRoots | None = None,
    window: PartitionWindow | None = None,
    known: Known | None = None,
    ids: Sequence[str] = (),
    threads: int | None = None,
) -> Plan:
    """Cut ``source`` into work units that read the numeric ``columns`` and the slice ``keys``.

    ``ids`` are id columns read too (any plain type), for the worst rows.
    ``format``, ``storage_options``, ``read_roots``, ``window``, ``known`` and
    ``threads`` apply to files (see :func:`daskloss.sources.files.plan_files`).

    Raises
    ------
    ConfigError
        A source of a kind daskloss cannot read, or a window for a DataFrame.
    """
    if window is not None and not (_is_path(source) or isinstance(source, (list, tuple))):
        raise ConfigError("a partition window selects files; the source is not files")
    if isinstance(source, dd.DataFrame):
        return plan_dask(source, columns, keys, ids)
    if isinstance(source, pd.DataFrame):
        return plan_pandas(source, columns, keys, ids)
    if _is_path(source) or (
        isinstance(source, (list, tuple)) and source and all(map(_is_path, source))
    ):
        return plan_files(
            source,
            columns,
            keys=keys,
            format=format,
            storage_options=storage_options,
            read_roots=read_roots,
            window=window,
            known=known,
            ids=ids,
            threads=threads,
        )
    raise ConfigError(
        "source must be a path, glob or URL of Parquet/CSV files (or a list of them), a Dask "
        f"DataFrame or a pandas DataFrame; got {type(source).__name__}"
    )


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))
