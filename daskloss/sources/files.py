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
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import fsspec

from daskloss.errors import EmptyDatasetError, ReadError, SchemaError
from daskloss.names import FILE_FORMATS, FileFormat, check_choice
from daskloss.policy import ReadRoots, redact_text
from daskloss.sources.plan import Plan
from daskloss.sources.reader import FileReader, FileUnit, Piece, is_local

__all__ = [
    "BATCH_BYTES",
    "MIN_BATCHES",
    "MIN_UNIT_BYTES",
    "PIECE_BYTES",
    "UNITS_PER_THREAD",
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


def plan_files(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    columns: Sequence[str],
    *,
    format: FileFormat | None = None,
    storage_options: Mapping[str, Any] | None = None,
    read_roots: ReadRoots | None = None,
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
    format : {'parquet', 'csv'}, optional
        Inferred from the file names when omitted (``.csv`` means CSV).
    storage_options : mapping, optional
        Passed to fsspec (credentials, endpoint_url...).
    read_roots : ReadRoots, optional
        Where the job may read: the path and every listed file are checked
        before any file is opened, and each file again where it is read.
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
    fs, files = _list_files(path, dict(storage_options or {}))
    names = [name for name, _ in files]
    _LOG.debug(
        "listed %d files (%d bytes) in %.3f s",
        len(files),
        sum(size for _, size in files),
        time.perf_counter() - started,
    )
    roots.check_files(names)
    chosen = format or _inferred_format(names, path)
    reader = FileReader(fs, tuple(columns), chosen, format_given=format is not None, roots=roots)
    schema = reader.schema(names[0])
    reader = FileReader(fs, tuple(columns), chosen, tuple(schema.types), format is not None, roots)
    sized = [(piece, size) for name, size in files for piece in _pieces(reader, name, size)]
    units = tuple(FileUnit(reader, batch) for batch in _batches(sized, threads))
    _LOG.debug(
        "%s files: %d pieces in %d units, columns %s with types %s",
        chosen,
        len(sized),
        len(units),
        list(reader.columns),
        [str(kind) for kind in schema.types],
    )
    return Plan(units=units, kind="files", path=_display(path), format=chosen, files=tuple(names))


def _urls(path: Any) -> list[str]:
    if isinstance(path, (list, tuple)):
        return [os.fspath(p) for p in path]
    return [os.fspath(path)]


def _pieces(reader: FileReader, path: str, size: int) -> list[Piece]:
    """A small file is one piece; a large Parquet file is cut between row groups."""
    if reader.format == "csv" or size <= PIECE_BYTES // 4:
        return [Piece(path)]
    metadata = reader.footer(path)
    pieces: list[Piece] = []
    run: list[int] = []
    run_bytes = 0
    for index in range(metadata.num_row_groups):
        group_bytes = reader.decoded_bytes(metadata.row_group(index).num_rows)
        if run and run_bytes + group_bytes > PIECE_BYTES:
            pieces.append(Piece(path, tuple(run)))
            run, run_bytes = [], 0
        run.append(index)
        run_bytes += group_bytes
    pieces.append(Piece(path, tuple(run)) if run else Piece(path))
    return pieces if len(pieces) > 1 else [Piece(path)]


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
) -> tuple[fsspec.AbstractFileSystem, list[tuple[str, int]]]:
    """The filesystem and the sorted ``(file, size in bytes)`` that ``path`` names."""
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
                found[root] = _checked_info(fs, root)
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
        (f if f.startswith(prefix) else prefix + f, int(info.get("size") or 0))
        for f, info in found.items()
    )
    return fs, sorted(files)


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
) -> Iterator[tuple[str, dict[str, int]]]:
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
            yield entry.path, {"size": entry.stat().st_size}


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
