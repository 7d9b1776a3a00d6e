"""Planning a dataset on storage: list its files once, cut them into work units.

A dataset is a path or fsspec URL of Parquet or CSV files (a file, a
directory searched recursively, a hive-partitioned tree, a glob, or a list of
files). The client lists the files once, checks them against the read roots,
reads the first file's schema (a Parquet footer or a CSV header) and the
footers of large Parquet files, and cuts the files into *pieces*: a whole
file, or for a large Parquet file a run of its row groups (about
``PIECE_BYTES`` of decoded columns). Consecutive small files are grouped into
units (no footer of a small file is read here: the unit sizes its reads by
their decoded size where it runs); every other piece is a unit of its own.
How many units: at least ``MIN_BATCHES`` (four per core), on a cluster four
per worker thread as long as each keeps ``MIN_UNIT_BYTES`` on storage, each at
most ``BATCH_BYTES``. A task costs about 0.05 ms of the threaded scheduler and
1-2 ms of a distributed one besides its work, which is about 0.1 s per 37 MB
of files: 100M rows in 64 files took two worker processes 1.16x the threads'
time as 64 units of one file, 1.03x as 19 units of three or four (and the
threads 0.97x). Only regular files are data: a
directory listing skips anything else, and a FIFO, device or socket named
by the path or matched by its glob is refused. Nothing else is read here:
the units read their rows where they run (:mod:`daskloss.sources.reader`),
checking the read roots again on each file they open.

Each listed file is a :class:`~daskloss.sources.plan.FileEntry`: its path,
size and version (modification time or ETag). A :class:`PartitionWindow`
keeps the files of the last few hive partitions (``day=.../``); a ``known``
callback (an incremental run's cache) names the files whose statistics need
not be read again: they are evaluated but get no unit.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import unquote

import fsspec
import pyarrow as pa

from daskloss.errors import ConfigError, EmptyDatasetError, ReadError, SchemaError
from daskloss.names import FILE_FORMATS, FileFormat, check_choice
from daskloss.policy import ReadRoots, redact_text
from daskloss.sources.plan import FileEntry, Plan
from daskloss.sources.reader import FileReader, FileUnit, Piece, is_local

__all__ = [
    "BATCH_BYTES",
    "MIN_BATCHES",
    "MIN_UNIT_BYTES",
    "PIECE_BYTES",
    "UNITS_PER_THREAD",
    "Known",
    "PartitionWindow",
    "fewest_units",
    "plan_files",
    "would_list",
]

_LOG = logging.getLogger(__name__)

#: Target decoded size of one piece when a Parquet file is split by row groups.
PIECE_BYTES = 256 * 2**20
#: Small files are read together, so that ten thousand tiny files do not cost ten
#: thousand tasks, in units of at most this many bytes on storage (under a second's work).
BATCH_BYTES = 512 * 2**20
#: ...but in no fewer units than this (or than there are files), to keep every core
#: busy however the rows fall: four units per core of this machine, 16 at least...
MIN_BATCHES = max(16, 4 * (os.cpu_count() or 1))
#: ...and on a cluster (``threads`` given) four units per worker thread...
UNITS_PER_THREAD = 4
#: ...while each keeps this many bytes on storage: the scheduler's work per task
#: (1-2 ms) must stay small beside the unit's (about 0.1 s per 37 MB).
MIN_UNIT_BYTES = 32 * 2**20
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")


class PartitionWindow(NamedTuple):
    """The files of the ``last`` greatest values of the hive partition ``partition``.

    Values are compared as integers when every one is an integer, else as
    text (ISO dates sort by date); the null partition
    (``__HIVE_DEFAULT_PARTITION__``) counts as the smallest.

    Examples
    --------
    >>> PartitionWindow("day", 7)
    PartitionWindow(partition='day', last=7)
    """

    partition: str
    last: int


#: Names the files of the dataset whose statistics are known already, given the
#: files evaluated, every file listed, and how files are read (see plan_files).
Known = Callable[[Sequence[FileEntry], Sequence[FileEntry], str], Collection[str]]


def plan_files(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
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
    """List and check the files at ``path``, to read only ``columns`` from them.

    Parameters
    ----------
    path : str, os.PathLike or list of them
        A file, directory (searched recursively, skipping names that start
        with ``_`` or ``.``), glob, or fsspec URL such as ``s3://bucket/preds/``.
    columns : sequence of str
        The columns to read; each must exist and be numeric in every file.
    keys : sequence of str
        Slice key columns: columns of the files (strings, integers, booleans,
        dates...), or the names of hive partition directories (``day=.../``).
    format : {'parquet', 'csv'}, optional
        Inferred from the file names when omitted (``.csv`` means CSV).
    storage_options : mapping, optional
        Passed to fsspec (credentials, endpoint_url...).
    read_roots : ReadRoots, optional
        Where the job may read: the path and every listed file are checked
        before any file is opened, and each file again where it is read.
    window : PartitionWindow, optional
        Evaluate only the files of the last few values of a hive partition.
    known : callable, optional
        ``known(evaluated, listed, reading)`` names the files evaluated whose
        statistics are known already (kept from an earlier run); they get no
        unit. ``reading`` is a text that changes whenever the statistics of an
        unchanged file could (format, columns and their types, keys).
    ids : sequence of str
        Id columns of the files read too (any plain type), for the worst rows.
    threads : int, optional
        The worker threads of the cluster that will read the files: small
        files then make at least ``UNITS_PER_THREAD`` units per thread.

    Raises
    ------
    ConfigError
        A bad format, or a path or file outside the read roots.
    EmptyDatasetError
        No file matches ``path``.
    ReadError
        The path or the first file cannot be read.
    SchemaError
        A column is missing or not numeric.
    """
    if format is not None:
        check_choice("format", format, FILE_FORMATS)
    roots = read_roots or ReadRoots()
    for url in _urls(path):
        roots.check_path(url)
    started = time.perf_counter()
    fs, listed = _list_files(path, dict(storage_options or {}))
    _LOG.debug(
        "listed %d files (%d bytes) in %.3f s",
        len(listed),
        sum(entry.size for entry in listed),
        time.perf_counter() - started,
    )
    roots.check_files([entry.path for entry in listed])
    files = _in_window(listed, window, path) if window is not None else listed
    names = [entry.path for entry in files]
    chosen = format or _inferred_format(names, path)
    reader = FileReader(fs, tuple(columns), chosen, format_given=format is not None, roots=roots)
    in_files = set(reader.column_names(names[0])) if keys else set()
    partitions = _partitions(names, [key for key in keys if key not in in_files])
    reader = replace(
        reader,
        keys=tuple(key for key in keys if key in in_files),
        partition_keys=tuple((name, kind) for name, (kind, _) in partitions.items()),
        ids=tuple(ids),
    )
    schema = reader.schema(names[0])
    reader = replace(reader, types=tuple(schema.types))
    skipped = set(known(files, listed, _reading(reader))) if known is not None else set()
    sized = [
        (piece, entry.size)
        for index, entry in enumerate(files)
        if entry.path not in skipped
        for piece in _pieces(
            reader,
            entry.path,
            entry.size,
            tuple((key, found[index]) for key, (_, found) in partitions.items()),
        )
    ]
    units = tuple(FileUnit(reader, batch) for batch in _batches(sized, threads))
    _LOG.debug(
        "%s files: %d pieces in %d units, columns %s with types %s",
        chosen,
        len(sized),
        len(units),
        list(reader.columns),
        [str(kind) for kind in schema.types],
    )
    return Plan(
        units=units,
        kind="files",
        path=_display(path),
        format=chosen,
        files=tuple(name for name in names if name not in skipped),
        listing=tuple(files),
    )


def _reading(reader: FileReader) -> str:
    """What decides the statistics of an unchanged file besides the evaluation's spec:
    the format, the columns read, their types in the dataset's first file (every
    file must match them) and the slice keys' sources and types."""
    return repr(
        (
            reader.format,
            reader.read_columns,
            tuple(map(str, reader.types or ())),
            tuple((name, str(kind)) for name, kind in reader.partition_keys),
        )
    )


def _in_window(files: Sequence[FileEntry], window: PartitionWindow, path: Any) -> list[FileEntry]:
    """The files whose ``window.partition`` directory holds one of its ``last`` greatest values.

    Raises
    ------
    ConfigError
        A window of fewer than one value.
    SchemaError
        A file without a directory of the partition.
    """
    if isinstance(window.last, bool) or not isinstance(window.last, int) or window.last < 1:
        raise ConfigError(f"a window keeps the last N >= 1 partitions; got {window.last!r}")
    names = [entry.path for entry in files]
    window_of = "the window's partition {!r} is not"
    _, values = _partitions(names, [window.partition], window_of, "dataset.window")[
        window.partition
    ]
    distinct = sorted(set(values), key=lambda value: (value is not None, value or 0))
    kept = set(distinct[-window.last :])
    chosen = [entry for entry, value in zip(files, values, strict=True) if value in kept]
    _LOG.debug(
        "window %s: the last %d of %d values of %s (%d of %d files)",
        window.partition,
        len(kept),
        len(distinct),
        _display(path),
        len(chosen),
        len(files),
    )
    return chosen


def _urls(path: Any) -> list[str]:
    if isinstance(path, (list, tuple)):
        return [os.fspath(p) for p in path]
    return [os.fspath(path)]


def _pieces(
    reader: FileReader, path: str, size: int, partition: tuple[tuple[str, Any], ...] = ()
) -> list[Piece]:
    """A small file is one piece; a large Parquet file is cut between row groups."""
    if reader.format == "csv" or size <= PIECE_BYTES // 4:
        return [Piece(path, None, partition)]
    metadata = reader.footer(path)
    pieces: list[Piece] = []
    run: list[int] = []
    run_bytes = 0
    for index in range(metadata.num_row_groups):
        group_bytes = reader.decoded_bytes(metadata.row_group(index).num_rows)
        if run and run_bytes + group_bytes > PIECE_BYTES:
            pieces.append(Piece(path, tuple(run), partition))
            run, run_bytes = [], 0
        run.append(index)
        run_bytes += group_bytes
    pieces.append(Piece(path, tuple(run) if run else None, partition))
    return pieces if len(pieces) > 1 else [Piece(path, None, partition)]


#: The directory value hive writers use for a null key.
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_INTEGER = re.compile(r"-?[0-9]+")


def _partitions(
    files: Sequence[str],
    keys: Sequence[str],
    role: str = "group_by column {!r} is not a column of the dataset's first file nor",
    setting: str = "evaluation.group_by",
) -> dict[str, tuple[pa.DataType, list[Any]]]:
    """Each key's type and value in each file, from hive directory names ``key=value/``.

    A key whose every value is an integer is an int64, else a string; the
    directory value ``__HIVE_DEFAULT_PARTITION__`` is a null.

    Raises
    ------
    SchemaError
        A key that is neither a column of the files nor a directory of one of them.
    """
    partitions: dict[str, tuple[pa.DataType, list[Any]]] = {}
    for key in keys:
        found: list[Any] = []
        for file in files:
            values = [
                unquote(part.split("=", 1)[1])
                for part in file.replace("\\", "/").split("/")[:-1]
                if part.startswith(key + "=")
            ]
            if not values:
                raise SchemaError(
                    f"{role.format(key)} a partition directory ({key}=value/) of {file}; "
                    f"check {setting}"
                )
            found.append(None if values[-1] == _HIVE_NULL else values[-1])
        if all(v is None or _INTEGER.fullmatch(v) for v in found):
            partitions[key] = (pa.int64(), [None if v is None else int(v) for v in found])
        else:
            partitions[key] = (pa.string(), found)
    return partitions


def _inferred_format(names: Sequence[str], path: Any) -> FileFormat:
    """CSV when every file name says so, Parquet when none does; a mix is refused."""
    csv = [name for name in names if name.lower().endswith(_CSV_SUFFIXES)]
    if not csv:
        return "parquet"
    if len(csv) == len(names):
        return "csv"
    other = next(name for name in names if not name.lower().endswith(_CSV_SUFFIXES))
    raise SchemaError(
        f"{_display(path)} mixes CSV files ({csv[0]}, {len(csv)} in all) with other files "
        f"({other}); point the path at one format, or set the format (dataset.format) if "
        "the other files are data of that format too"
    )


def fewest_units(total: int, threads: int | None) -> int:
    """The fewest units ``total`` bytes of small files make, for a cluster of ``threads``.

    Examples
    --------
    >>> fewest_units(2**40, 2000) == UNITS_PER_THREAD * 2000  # a TiB: four per thread
    True
    >>> fewest_units(3 * MIN_UNIT_BYTES, 2000) == MIN_BATCHES  # too little to cut finer
    True
    """
    on_cluster = min(UNITS_PER_THREAD * (threads or 0), total // MIN_UNIT_BYTES)
    return max(MIN_BATCHES, on_cluster)


def _batches(sized: list[tuple[Piece, int]], threads: int | None) -> list[tuple[Piece, ...]]:
    """Consecutive small whole files grouped up to a size that keeps enough units."""
    total = sum(size for _, size in sized)
    target = min(BATCH_BYTES, total // fewest_units(total, threads))
    batches: list[tuple[Piece, ...]] = []
    current: list[Piece] = []
    current_bytes = 0
    for piece, size in sized:
        if current and (piece.row_groups is not None or current_bytes + size > target):
            batches.append(tuple(current))
            current, current_bytes = [], 0
        current.append(piece)
        current_bytes += size
    if current:
        batches.append(tuple(current))
    return batches


def _display(path: Any) -> str:
    """The dataset path as messages show it: URL user information hidden."""
    if isinstance(path, (list, tuple)):
        return ", ".join(redact_text(os.fspath(p)) for p in path)
    return redact_text(os.fspath(path))


def _list_files(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    storage_options: dict[str, Any],
) -> tuple[fsspec.AbstractFileSystem, list[FileEntry]]:
    """The filesystem and the files ``path`` names (path, size, version), sorted by path."""
    urls = _urls(path)
    try:
        fs, _, roots = fsspec.core.get_fs_token_paths(urls, storage_options=storage_options)
        if any(fsspec.core.has_magic(url) for url in urls):  # a glob: as a directory listing
            roots = [root for root in roots if not _hidden_name(os.path.basename(root))]
        found: dict[str, Any] = {}
        for root in roots:
            if is_local(fs) and os.path.isdir(root):
                found.update(_local_files(root))
            elif fs.isdir(root):
                listing = fs.find(root, detail=True)
                found.update((f, info) for f, info in listing.items() if not _hidden(f, root))
            elif fs.exists(root):
                info = _checked_info(fs, root)
                found[root] = _local_info(os.stat(root)) if is_local(fs) else info
    except ReadError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise ReadError(f"cannot list {_display(path)}: {redact_text(str(exc))}") from exc
    if not found:
        raise EmptyDatasetError(
            f"no data files found at {_display(path)}; check the path (directories are searched "
            "recursively, names starting with '_' or '.' are ignored)"
        )
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if is_local(fs) else f"{protocol}://"
    files = (
        FileEntry(
            f if f.startswith(prefix) else prefix + f,
            int(info.get("size") or 0),
            info.get("version") if is_local(fs) else _remote_version(info),
        )
        for f, info in found.items()
    )
    return fs, sorted(files, key=lambda entry: entry.path)


#: The details of a remote file (fsspec's ``info``) that say which content it holds,
#: best first: an ETag (S3, Azure, HTTP), a generation (GCS), else a modification time.
_VERSION_FIELDS = (
    "ETag",
    "etag",
    "generation",
    "mtime",
    "LastModified",
    "last_modified",
    "updated",
    "modified",
)


def _remote_version(info: Mapping[str, Any]) -> str | None:
    """A remote file's version from its details, or None if they tell none."""
    for name in _VERSION_FIELDS:
        value = info.get(name)
        if value not in (None, ""):
            if isinstance(value, datetime):
                value = value.timestamp()
            return f"{name}={value}"
    return None


def _local_info(status: os.stat_result) -> dict[str, Any]:
    """A local file's size and version: its modification and change times (ns).

    The change time moves on any write, even one that restores the
    modification time (``cp -p``, ``rsync -t``).
    """
    return {
        "size": status.st_size,
        "version": f"mtime_ns={status.st_mtime_ns},ctime_ns={status.st_ctime_ns}",
    }


def _checked_info(fs: fsspec.AbstractFileSystem, path: str) -> dict[str, Any]:
    """A named file's details, refusing a local FIFO, device or socket (reading one can hang).

    Directories are listed without such entries: only regular files are data.
    """
    info = fs.info(path)
    if is_local(fs) and info.get("type") == "other":
        raise ReadError(
            f"{path} is not a regular file (a FIFO, device or socket); daskloss reads regular "
            "files only: point dataset.path at data files"
        )
    return info


def _local_files(
    root: str, seen: set[tuple[int, int]] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The data files under a local directory, as ``fs.find(detail=True)`` gives them.

    ``os.scandir`` lists 10,000 files in about a fifth of fsspec's time.
    Directories linked twice (or in a loop) are listed once.
    """
    seen = set() if seen is None else seen
    status = os.stat(root)
    if (status.st_dev, status.st_ino) in seen:
        return
    seen.add((status.st_dev, status.st_ino))
    for entry in os.scandir(root):
        if _hidden_name(entry.name):
            continue
        if entry.is_dir():
            yield from _local_files(entry.path, seen)
        elif entry.is_file():
            yield entry.path, _local_info(entry.stat())


def would_list(dataset: str, path: str) -> bool:
    """Whether listing ``dataset`` (a file, directory or glob) would find the file ``path``.

    Both are local paths, or both URLs (then compared as written). A file
    under a name starting with ``_`` or ``.`` is never listed. Used to keep a
    report from overwriting an input, or from being read as data next time.

    Examples
    --------
    >>> would_list("s3://b/preds/", "s3://b/preds/report.json")
    True
    >>> would_list("s3://b/preds/", "s3://b/preds/_report.json")
    False
    >>> would_list("/d/*.csv", "/d/r.json")
    False
    """
    if ("://" in dataset) != ("://" in path):
        return False
    local = "://" not in dataset
    names = {os.path.abspath(path), os.path.realpath(path)} if local else {path}
    if fsspec.core.has_magic(dataset):
        pattern = re.compile(
            fsspec.utils.glob_translate(os.path.abspath(dataset) if local else dataset)
        )
        return any(
            pattern.fullmatch(match)
            and not _hidden(name, match)
            and not _hidden_name(match.rstrip("/").rpartition("/")[2])
            for name in names
            for match in _ancestors(name)
        )
    root = os.path.realpath(dataset) if local else dataset
    if local and not os.path.isdir(root):
        return root in names
    return any(
        name == root or (name.startswith(root.rstrip("/") + "/") and not _hidden(name, root))
        for name in names
    )


def _ancestors(path: str) -> list[str]:
    """``path`` and each directory above it: "/a/b" -> ["/a/b", "/a", "/"]."""
    parts = path.rstrip("/").split("/")
    return ["/".join(parts[:end]) or "/" for end in range(len(parts), 0, -1)]


def _hidden(file: str, root: str) -> bool:
    relative = file[len(root.rstrip("/")) :].lstrip("/")
    return any(_hidden_name(part) for part in relative.split("/"))


def _hidden_name(name: str) -> bool:
    """Names starting with ``_`` or ``.`` (``_SUCCESS``, ``.crc``...) are not data."""
    return name.startswith(("_", "."))
