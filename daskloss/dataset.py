"""Opening a prediction dataset as a Dask DataFrame: the one place that touches files.

A source is a path or fsspec URL of a Parquet dataset (a file, a directory,
a hive-partitioned directory tree, or a glob) or of CSV files. Files are
listed once on the client; each becomes one partition, read on a worker with
pyarrow (only the needed columns) by :func:`dask.dataframe.from_map`. Reading
file by file lets every error name the file it comes from, and checks each
file's column types against the first file's, so a dataset whose files
disagree fails loudly instead of being cast silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dask.dataframe as dd
import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from daskloss.errors import EmptyDatasetError, ReadError, SchemaError

__all__ = ["SOURCE_ATTR", "Dataset", "FileFormat", "open_dataset"]

FileFormat = Literal["parquet", "csv"]
FORMATS: tuple[str, ...] = ("parquet", "csv")
#: Key in ``DataFrame.attrs`` naming the file a partition was read from.
SOURCE_ATTR = "daskloss_source"
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")


@dataclass(frozen=True)
class Dataset:
    """An opened dataset: the lazy frame and what it was made from."""

    frame: dd.DataFrame
    path: str
    format: FileFormat
    files: tuple[str, ...]


def open_dataset(
    path: str | os.PathLike[str] | Sequence[str],
    columns: Sequence[str],
    *,
    format: FileFormat | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Dataset:
    """Open the files at ``path`` as a Dask DataFrame holding only ``columns``.

    Parameters
    ----------
    path : str, os.PathLike or list of str
        A file, directory (searched recursively, skipping names that start
        with ``_`` or ``.``), glob, or fsspec URL such as ``s3://bucket/preds/``.
    columns : sequence of str
        The columns to read; each must exist and be numeric in every file.
    format : {'parquet', 'csv'}, optional
        Inferred from the file names when omitted (``.csv`` means CSV).
    storage_options : mapping, optional
        Passed to fsspec (credentials, endpoint_url...).

    Raises
    ------
    EmptyDatasetError
        No file matches ``path``.
    ReadError
        The path or the first file cannot be read.
    SchemaError
        A column is missing or not numeric.

    Examples
    --------
    >>> ds = open_dataset("sample/", ["y_true", "y_pred"])  # doctest: +SKIP
    >>> ds.frame.npartitions  # doctest: +SKIP
    8
    """
    fs, files = _list_files(path, dict(storage_options or {}))
    if format is None:
        format = "csv" if all(f.lower().endswith(_CSV_SUFFIXES) for f in files) else "parquet"
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    reader = _FileReader(fs=fs, columns=tuple(columns), format=format, types=None)
    first = reader.read_table(files[0])
    reader = _FileReader(fs, tuple(columns), format, tuple(first.schema.types))
    meta = reader.to_frame(first.slice(0, 0), files[0])
    frame = dd.from_map(reader, files, meta=meta, label="daskloss-read", enforce_metadata=False)
    return Dataset(frame=frame, path=_display(path), format=format, files=tuple(files))


def _display(path: Any) -> str:
    if isinstance(path, (list, tuple)):
        return ", ".join(map(str, path))
    return os.fspath(path)


def _list_files(
    path: str | os.PathLike[str] | Sequence[str], storage_options: dict[str, Any]
) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """The filesystem and the sorted data files that ``path`` names."""
    urls = [os.fspath(p) for p in path] if isinstance(path, (list, tuple)) else [os.fspath(path)]
    try:
        fs, _, roots = fsspec.core.get_fs_token_paths(urls, storage_options=storage_options)
        files: list[str] = []
        for root in roots:
            if fs.isdir(root):
                files.extend(f for f in fs.find(root) if not _hidden(f, root))
            elif fs.exists(root):
                files.append(root)
    except (OSError, ValueError, ImportError) as exc:
        raise ReadError(f"cannot list {_display(path)}: {exc}") from exc
    if not files:
        raise EmptyDatasetError(
            f"no data files found at {_display(path)}; check the path (directories are searched "
            "recursively, names starting with '_' or '.' are ignored)"
        )
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    return fs, sorted(prefix + f if not f.startswith(prefix) else f for f in files)


def _hidden(file: str, root: str) -> bool:
    relative = file[len(root.rstrip("/")) :].lstrip("/")
    return any(part.startswith(("_", ".")) for part in relative.split("/"))


@dataclass(frozen=True)
class _FileReader:
    """Reads one file's columns into pandas, checking them (a picklable callable)."""

    fs: fsspec.AbstractFileSystem
    columns: tuple[str, ...]
    format: FileFormat
    types: tuple[pa.DataType, ...] | None

    def __call__(self, path: str) -> pd.DataFrame:
        return self.to_frame(self.read_table(path), path)

    def read_table(self, path: str) -> pa.Table:
        try:
            with self.fs.open(path, "rb", compression="infer") as handle:
                if self.format == "csv":
                    return self._read_csv(handle, path)
                return self._read_parquet(handle, path)
        except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            raise ReadError(f"cannot open {path}: {exc}") from exc
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError, EOFError) as exc:
            raise ReadError(
                f"cannot read {self.format} file {path}: {exc}; the file may be truncated or "
                "corrupt: rewrite it or remove it from the dataset"
            ) from exc

    def _read_parquet(self, handle: Any, path: str) -> pa.Table:
        parquet = pq.ParquetFile(handle)
        present = set(parquet.schema_arrow.names)
        self._check_present(present, path)
        table = parquet.read(columns=list(self.columns), use_threads=False)
        self._check_types(table.schema, path)
        return table

    def _read_csv(self, handle: Any, path: str) -> pa.Table:
        options = pacsv.ConvertOptions(
            include_columns=list(self.columns),
            column_types={name: pa.float64() for name in self.columns},
        )
        try:
            return pacsv.read_csv(
                handle, read_options=pacsv.ReadOptions(use_threads=False), convert_options=options
            )
        except pa.ArrowKeyError:
            with self.fs.open(path, "rb", compression="infer") as again:
                header = pacsv.open_csv(again).schema.names
            self._check_present(set(header), path)
            raise
        except pa.ArrowInvalid as exc:
            raise SchemaError(
                f"CSV file {path} has a value that is not a number in one of the columns "
                f"{list(self.columns)}: {exc}; fix the file or leave it out"
            ) from exc

    def _check_present(self, present: set[str], path: str) -> None:
        missing = [name for name in self.columns if name not in present]
        if missing:
            raise SchemaError(
                f"column(s) {missing} not found in {path}; its columns are: {sorted(present)}; "
                "set the right names (config keys columns.y_true, columns.y_pred, columns.weight)"
            )

    def _check_types(self, schema: pa.Schema, path: str) -> None:
        for name, found in zip(self.columns, schema.types, strict=True):
            if not (pa.types.is_floating(found) or pa.types.is_integer(found)):
                raise SchemaError(
                    f"column {name!r} in {path} has type {found}, expected a number "
                    "(float or integer); fix the writer of this file or leave it out"
                )
        if self.types is not None:
            for name, expected, found in zip(self.columns, self.types, schema.types, strict=True):
                if found != expected:
                    raise SchemaError(
                        f"column {name!r} in {path} has type {found} but the dataset's first "
                        f"file has {expected}; rewrite the files with one schema"
                    )

    def to_frame(self, table: pa.Table, path: str) -> pd.DataFrame:
        """Arrow-backed pandas columns: a view of the table, not a copy."""
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        frame.attrs[SOURCE_ATTR] = path
        return frame
