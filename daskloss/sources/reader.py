"""Reading a piece of a file on a worker: the one place where rows are read from storage.

A :class:`FileUnit` is one task's work: one piece of a file (streamed in
record batches, so only a row group's worth is in memory) or several small
files (read whole and joined up to ``JOIN_BYTES`` decoded, so that ten
thousand tiny files do not cost ten thousand kernel calls). Its
:meth:`FileUnit.chunks` yields the needed columns as aligned float64
:class:`~daskloss.chunks.Chunk` objects, each tagged with the file it came
from. Every file's columns are checked against the dataset's first file, so a
dataset whose files disagree fails loudly instead of being cast silently; a
piece too large for the memory a worker thread can spare is refused before it
is read.

Small files are batched by their size on storage, which says little about
their size in memory (a file of constants compresses a thousandfold), so a
unit sizes its work by the decoded size its files' footers give (rows times
column widths) as it opens them: a file of at least a record batch
(``BATCH_ROWS`` rows) is streamed a batch at a time like a large file, and
smaller ones are joined, handed on whenever the next would pass
``JOIN_BYTES``. CSV files are always streamed. Memory stays flat for any
compression ratio.

Files are opened on the worker through the read roots
(:meth:`daskloss.policy.ReadRoots.open_local`): only a regular file inside
them is read, and it is read through the very descriptor that was checked.
Each Parquet row group's row count is checked against its columns' value
counts in the footer and against the rows decoded.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from daskloss.chunks import Chunk
from daskloss.columns import chunks_of_columns
from daskloss.errors import DasklossError, DataError, ReadError, SchemaError
from daskloss.keys import check_id_type, check_key_type
from daskloss.names import FileFormat
from daskloss.policy import ReadRoots, redact_text

__all__ = ["BATCH_ROWS", "JOIN_BYTES", "FileReader", "FileUnit", "Piece", "memory_budget"]

#: Rows per record batch when a Parquet piece is streamed.
BATCH_ROWS = 1 << 17
#: Decoded bytes of small files a unit joins before handing them on (one kernel call):
#: 8 MiB was as fast as 64 MiB (10,000 files of 10,000 rows: 303 against 315 us of CPU
#: a file), and a thread holds less of them at once.
JOIN_BYTES = 8 * 2**20
#: Bytes of a local Parquet column chunk read at a time (measured as fast as
#: reading whole chunks, 0.74 s against 0.79 s for 100M rows in 64 files).
STREAM_BUFFER_BYTES = 256 * 2**10
_PARQUET_MAGIC = b"PAR1"
#: What a low-level error in reading a file may be (a corrupt footer can even
#: give a UnicodeDecodeError); each becomes a ReadError naming the file.
_READ_FAILURES = (pa.ArrowException, OSError, EOFError, ValueError, IndexError)


@dataclass(frozen=True)
class Piece:
    """One task's worth of a file: all of it, or a run of its row groups.

    ``partition`` holds the values of the slice keys its directories name
    (``day=2026-11-30/``), as ``(column, value)`` pairs.
    """

    path: str
    row_groups: tuple[int, ...] | None = None
    partition: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        if self.row_groups is None:
            return self.path
        first, last = self.row_groups[0], self.row_groups[-1]
        return f"{self.path} (row groups {first}-{last})"


@dataclass(frozen=True)
class FileReader:
    """Reads and checks the needed columns of a dataset's files. Picklable.

    ``columns`` are the numeric columns to read, ``keys`` the slice key
    columns the files hold and ``ids`` the id columns shown with the worst
    rows (any plain type); ``partition_keys`` are ``(name, type)`` of the
    slice keys that directory names give (see :class:`Piece`). ``types`` are
    the types of the columns and keys in the dataset's first file (None while
    that file is being opened); ``format_given`` says whether the user named the format, so that
    an error can suggest naming it; ``roots`` are the read roots, checked
    again on the file opened wherever it is read.
    """

    fs: fsspec.AbstractFileSystem
    columns: tuple[str, ...]
    format: FileFormat
    types: tuple[pa.DataType, ...] | None = None
    format_given: bool = True
    roots: ReadRoots = field(default_factory=ReadRoots)
    keys: tuple[str, ...] = ()
    partition_keys: tuple[tuple[str, pa.DataType], ...] = ()
    ids: tuple[str, ...] = ()

    @property
    def read_columns(self) -> tuple[str, ...]:
        """Every column read from the files: the numeric ones, the keys, then the other ids."""
        return self.columns + self.keys + self.extra_ids

    @property
    def extra_ids(self) -> tuple[str, ...]:
        """The id columns that are neither numeric columns read nor keys."""
        return tuple(name for name in self.ids if name not in self.columns + self.keys)

    @functools.cached_property
    def local(self) -> bool:
        """Whether the files are on local disk."""
        return is_local(self.fs)

    @functools.cached_property
    def expected_schema(self) -> pa.Schema:
        """The columns read, with the types of the dataset's first file."""
        assert self.types is not None, "reading needs the dataset's column types"
        return pa.schema(list(zip(self.read_columns, self.types, strict=True)))

    def schema(self, path: str) -> pa.Schema:
        """The schema of the columns read, from the Parquet footer or the CSV header, checked."""
        if self.format == "csv":
            self._check_csv_header(path)
            return pa.schema(
                [(name, pa.float64()) for name in self.columns]
                + [(name, pa.string()) for name in self.keys + self.extra_ids]
            )
        with self._open(path) as handle:
            return self._checked_schema(self._parquet(handle, path), path)

    def column_names(self, path: str) -> list[str]:
        """Every column name of a file (its Parquet schema or CSV header)."""
        if self.format == "csv":
            return self._csv_names(path)
        with self._open(path) as handle:
            try:
                return self._parquet(handle, path).schema_arrow.names
            except _READ_FAILURES as exc:
                raise self._corrupt(path, exc) from exc

    def footer(self, path: str) -> pq.FileMetaData:
        """A Parquet file's footer (its row groups and their row counts)."""
        with self._open(path) as handle:
            return self._parquet(handle, path).metadata

    def decoded_bytes(self, rows: int) -> int:
        """Bytes the columns read take for ``rows`` rows once decoded (about 8 per value)."""
        return rows * 8 * len(self.read_columns)

    def iter_batches(self, piece: Piece) -> Iterator[pa.RecordBatch]:
        """The needed columns of one piece, checked, as record batches.

        A Parquet piece streams ``BATCH_ROWS`` rows at a time, so it is never
        in memory whole; so does a CSV file, a block of text at a time.
        """
        if self.format == "csv":
            yield from self._csv_batches(piece.path)
            return
        with self._open(piece.path) as handle:
            yield from self.opened(handle, piece).batches()

    def opened(self, handle: Any, piece: Piece) -> OpenParquet:
        """A Parquet piece in the open file ``handle``: its footer read and checked.

        Each row group's row count must equal every needed column's count of
        values, and the file's the sum of its row groups': a footer whose row
        count was altered would otherwise make pyarrow decode that many rows
        and drop the others silently. (About 4 us a file.)
        """
        parquet = self._parquet(handle, piece.path)
        try:
            metadata = parquet.metadata
            groups = piece.row_groups or range(metadata.num_row_groups)
            try:
                indices = [parquet.reader.column_name_idx(name) for name in self.read_columns]
            except KeyError:  # a column is missing: the schema's check names it
                indices = []
            rows = []
            for group in groups:
                row_group = metadata.row_group(group)
                rows.append(row_group.num_rows)
                for name, index in zip(self.read_columns, indices, strict=False):
                    values = row_group.column(index).num_values
                    if values != rows[-1]:
                        raise self._corrupt(
                            piece.path,
                            f"its footer says row group {group} has {rows[-1]} rows but column "
                            f"{name!r} has {values} values",
                        )
            if piece.row_groups is None and sum(rows) != metadata.num_rows:
                raise self._corrupt(
                    piece.path,
                    f"its footer says it has {metadata.num_rows} rows but its row groups "
                    f"have {sum(rows)}",
                )
        except DasklossError:
            raise
        except _READ_FAILURES as exc:
            raise self._corrupt(piece.path, exc) from exc
        return OpenParquet(self, piece, parquet, list(groups), rows, self.decoded_bytes(sum(rows)))

    def _open(self, path: str) -> Any:
        """A file to read: for local Parquet pyarrow's own file, else a Python file.

        Compressed CSV is not decompressed here: see :func:`_decompressed`.

        A local file is opened through the read roots (a regular file, inside
        them once open) and read through that same descriptor; a remote one is
        checked against the roots by its URL.

        fsspec's Python file object cost about 30% of a local run (measured:
        1.19 s against 0.83 s for 100M rows in 64 files). A memory map was as
        fast, but its pages count in the process's memory until the file is
        closed (+50 MiB at 100M rows in 64 files), and mapping thousands of
        small files serialised the threads (10,000 files: 3.4 s against 3.1 s).
        """
        try:
            if self.local:
                descriptor = self.roots.open_local(path)
                if self.format == "parquet":
                    return _arrow_file(descriptor)
                return os.fdopen(descriptor, "rb")
            self.roots.check_files([path])
            return self.fs.open(path, "rb")
        except OSError as exc:
            raise ReadError(f"cannot open {path}: {exc.strerror or exc}") from exc

    def _parquet(self, handle: Any, path: str) -> pq.ParquetFile:
        """An open Parquet file, its pages' checksums verified as they are read.

        Pre-buffering coalesces reads, which pays on object stores; on local
        disk it only costs (measured: 93 us against 198 us for a tiny file).
        Locally, column chunks are read ``STREAM_BUFFER_BYTES`` at a time rather
        than whole: peak memory then no longer grows with the row groups.
        """
        try:
            if self.local:
                return pq.ParquetFile(
                    handle,
                    pre_buffer=False,
                    buffer_size=STREAM_BUFFER_BYTES,
                    page_checksum_verification=True,
                )
            return pq.ParquetFile(handle, pre_buffer=True, page_checksum_verification=True)
        except _READ_FAILURES as exc:
            raise self._corrupt(path, exc) from exc

    def _checked_schema(self, parquet: pq.ParquetFile, path: str) -> pa.Schema:
        """The needed columns' schema in a Parquet file, after checking them."""
        try:
            found = parquet.schema_arrow
        except _READ_FAILURES as exc:  # a corrupt footer: even a UnicodeDecodeError
            raise self._corrupt(path, exc) from exc
        self._check_names(found.names, path)
        schema = pa.schema([found.field(name) for name in self.read_columns])
        if self.types is None or tuple(schema.types) != self.types:  # else checked already
            self._check_types(schema, path)
        return schema

    def _csv_batches(self, path: str) -> Iterator[pa.RecordBatch]:
        """A CSV file's needed columns, parsed as float64 a block of text at a time."""
        self._check_csv_header(path)
        options = pacsv.ConvertOptions(
            include_columns=list(self.read_columns),
            column_types={name: pa.float64() for name in self.columns}
            | {name: pa.string() for name in self.keys + self.extra_ids},
            strings_can_be_null=True,  # an empty key field is a null key, as for numbers
        )
        with self._open(path) as raw, _decompressed(raw, path) as handle:
            try:
                reader = pacsv.open_csv(
                    handle,
                    read_options=pacsv.ReadOptions(use_threads=False),
                    convert_options=options,
                )
                yield from reader
            except pa.ArrowInvalid as exc:
                if "conversion error" not in str(exc).lower():
                    raise self._corrupt(path, exc) from exc
                raise SchemaError(
                    f"CSV file {path} has a value that is not a number in one of the columns "
                    f"{list(self.columns)}: {_without_content(exc)}; fix the file or leave it out"
                ) from exc
            except (OSError, EOFError, UnicodeDecodeError) as exc:
                raise self._corrupt(path, exc) from exc

    def _check_csv_header(self, path: str) -> None:
        """Each needed column once in a CSV file's header (pyarrow would take the first)."""
        self._check_names(self._csv_names(path), path)

    def _csv_names(self, path: str) -> list[str]:
        with self._open(path) as raw, _decompressed(raw, path) as handle:
            try:
                reader = pacsv.open_csv(handle, read_options=pacsv.ReadOptions(use_threads=False))
                return reader.schema.names
            except (pa.ArrowInvalid, OSError, EOFError, UnicodeDecodeError) as exc:
                raise self._corrupt(path, exc) from exc

    def _check_names(self, names: Sequence[str], path: str) -> None:
        """Each needed column present in a file's column ``names``, and only once."""
        missing = [name for name in self.read_columns if name not in names]
        if missing:
            raise SchemaError(
                f"column(s) {missing} not found in {path}; its columns are: {sorted(set(names))}; "
                "set the right names (config keys columns.y_true, columns.y_pred, columns.weight, "
                "evaluation.group_by, evaluation.id_columns)"
            )
        repeated = sorted({name for name in self.read_columns if names.count(name) > 1})
        if repeated:
            raise SchemaError(
                f"{path} has more than one column named {repeated}; rewrite it with unique "
                "column names"
            )

    def _check_types(self, schema: pa.Schema, path: str) -> None:
        for index, name in enumerate(self.read_columns):
            found = schema.field(name).type
            if name in self.keys:
                check_key_type(name, found, f" in {path}")
            elif name in self.extra_ids:
                check_id_type(name, found, f" in {path}")
            elif not (pa.types.is_floating(found) or pa.types.is_integer(found)):
                raise SchemaError(
                    f"column {name!r} in {path} has type {found}, expected a number "
                    "(float or integer); fix the writer of this file or leave it out"
                )
            if self.types is not None and found != self.types[index]:
                raise SchemaError(
                    f"column {name!r} in {path} has type {found} but the dataset's first "
                    f"file has {self.types[index]}; rewrite the files with one schema"
                )

    def _corrupt(self, path: str, exc: BaseException | str) -> ReadError:
        """The error for a file that cannot be parsed, with a hint when the format is in doubt."""
        hint = "the file may be truncated or corrupt: rewrite it or remove it from the dataset"
        if self.format == "parquet" and not self.format_given and not self._starts_as_parquet(path):
            hint = (
                "it is not a Parquet file (it does not start with PAR1); if it holds CSV, set "
                'the format (dataset.format = "csv", or format="csv"), else the file may be '
                "truncated or corrupt: rewrite it or remove it from the dataset"
            )
        return ReadError(f"cannot read {self.format} file {path}: {_without_content(exc)}; {hint}")

    def _starts_as_parquet(self, path: str) -> bool:
        try:
            with self._open(path) as handle:
                return handle.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC
        except OSError:
            return True  # unknown: say nothing about the format


@dataclass(slots=True)
class OpenParquet:
    """A piece of an open Parquet file whose footer was checked: its row groups, their
    rows, and the bytes the needed columns take once decoded. Made per file: not frozen,
    which costs microseconds."""

    reader: FileReader
    piece: Piece
    file: pq.ParquetFile
    row_groups: list[int]
    rows: list[int]
    decoded: int

    def read(self, budget: int | None = None) -> pa.Table:
        """The piece read whole, once it is known to fit ``budget``."""
        reader, piece = self.reader, self.piece
        _check_fits(piece, self.decoded, budget)
        try:
            # The schema is checked on the table read (converting the file's
            # whole schema to Arrow first cost 10% of a 10,000-row file).
            table = self.file.read_row_groups(
                self.row_groups, columns=list(reader.read_columns), use_threads=False
            )
        except _READ_FAILURES as exc:
            reader._checked_schema(self.file, piece.path)
            raise reader._corrupt(piece.path, exc) from exc
        if not table.schema.equals(reader.expected_schema):
            reader._checked_schema(self.file, piece.path)  # raises if a column is wrong
        self._check_decoded(table.num_rows)
        return table

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The piece a record batch at a time, once its largest row group is known to fit."""
        reader, piece = self.reader, self.piece
        reader._checked_schema(self.file, piece.path)
        _check_fits(piece, reader.decoded_bytes(max(self.rows, default=0)))
        decoded = 0
        try:
            for batch in self.file.iter_batches(
                batch_size=BATCH_ROWS,
                row_groups=self.row_groups,
                columns=list(reader.read_columns),
                use_threads=False,
            ):
                decoded += batch.num_rows
                yield batch
        except _READ_FAILURES as exc:
            raise reader._corrupt(piece.path, exc) from exc
        self._check_decoded(decoded)

    def _check_decoded(self, decoded: int) -> None:
        """The rows decoded are the rows the footer counts."""
        if decoded != sum(self.rows):
            raise self.reader._corrupt(
                self.piece.path,
                f"{decoded} rows were decoded where its footer counts {sum(self.rows)}",
            )


@dataclass(frozen=True)
class FileUnit:
    """One task's work on files: a piece streamed, or small whole files read together."""

    reader: FileReader
    pieces: tuple[Piece, ...]

    def chunks(self) -> Iterator[Chunk]:
        """The pieces' needed columns as aligned float64 chunks, in row order."""
        reader = self.reader
        if len(self.pieces) == 1:
            piece = self.pieces[0]
            for batch in reader.iter_batches(piece):
                yield from _chunks_of(batch, reader, [(piece, batch.num_rows)])
            return
        joined = _Joined(reader, memory_budget())
        for piece in self.pieces:
            if reader.format == "csv":
                for batch in reader.iter_batches(piece):
                    yield from joined.add(piece, batch)
                continue
            with reader._open(piece.path) as handle:
                part = reader.opened(handle, piece)
                if part.decoded >= reader.decoded_bytes(BATCH_ROWS):  # large enough alone
                    for batch in part.batches():
                        yield from joined.add(piece, batch)
                    continue
                yield from joined.make_room(part.decoded)
                yield from joined.add(piece, part.read(joined.room))
        yield from joined.flush()

    def __str__(self) -> str:
        return ", ".join(map(str, self.pieces))


class _Joined:
    """Small tables of a unit's files, held to be joined (one kernel call) up to ``JOIN_BYTES``.

    The tables held and the next one read must fit the budget together
    (``room``): what is held is in memory at once. Data of ``BATCH_ROWS``
    rows or more is large enough for a kernel call of its own: it is handed
    on at once, never held.
    """

    def __init__(self, reader: FileReader, budget: int) -> None:
        self.reader = reader
        self.budget = budget
        self.held: list[tuple[Piece, pa.Table | pa.RecordBatch]] = []
        self.held_bytes = 0

    @property
    def room(self) -> int:
        """Bytes the next table read may take."""
        return self.budget - self.held_bytes

    def make_room(self, size: int) -> Iterator[Chunk]:
        """Hand on what is held if ``size`` more bytes would pass ``JOIN_BYTES``."""
        if self.held and self.held_bytes + size > JOIN_BYTES:
            yield from self.flush()

    def add(self, piece: Piece, data: pa.Table | pa.RecordBatch) -> Iterator[Chunk]:
        """Hold ``data`` (rows of ``piece``), or hand it on if it is large enough alone."""
        if data.num_rows >= BATCH_ROWS:
            yield from self.flush()
            yield from _chunks_of(data, self.reader, [(piece, data.num_rows)])
            return
        size = self.reader.decoded_bytes(data.num_rows)  # (nbytes costs 4 us)
        yield from self.make_room(size)
        self.held.append((piece, data))
        self.held_bytes += size

    def flush(self) -> Iterator[Chunk]:
        """The held rows as chunks, joined; nothing is held after."""
        if not self.held:
            return
        tables = [
            pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
            for _, data in self.held
        ]
        origins = [(piece, data.num_rows) for piece, data in self.held]
        self.held, self.held_bytes = [], 0
        joined = pa.concat_tables(tables).combine_chunks()
        del tables
        yield from _chunks_of(joined, self.reader, origins)


def _chunks_of(
    data: pa.Table | pa.RecordBatch, reader: FileReader, origins: list[tuple[Piece, int]]
) -> Iterator[Chunk]:
    """Rows read from files (runs of ``origins``) as chunks: values, file keys, partition keys."""
    where = str(origins[0][0]) if len(origins) == 1 else ""
    values = {name: data.column(name) for name in reader.columns}
    keys = {name: data.column(name) for name in reader.keys}
    for name, kind in reader.partition_keys:
        keys[name] = _partition_column(name, kind, origins)
    ids = {name: data.column(name) for name in reader.ids}
    yield from chunks_of_columns(
        values,
        [(str(piece), rows) for piece, rows in origins],
        where=f" in {where}" if where else "",
        keys=keys,
        ids=ids,
    )


def _partition_column(name: str, kind: pa.DataType, origins: list[tuple[Piece, int]]) -> pa.Array:
    """A partition key's value for each row: each file's value, repeated for its rows."""
    parts = [
        pa.repeat(pa.scalar(dict(piece.partition)[name], type=kind), rows)
        for piece, rows in origins
    ]
    return parts[0] if len(parts) == 1 else pa.concat_arrays(parts)


#: Where this process's open descriptors can be opened again: opening ``N`` there
#: opens the very file descriptor N has open, whatever its path names by now.
_DESCRIPTORS = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"


def _arrow_file(descriptor: int) -> pa.OSFile:
    """pyarrow's own file on the file ``descriptor`` has open; the descriptor is closed.

    pyarrow cannot take a descriptor, and a Python file around it cost 30%
    (see :meth:`FileReader._open`); this costs about 5 us a file.
    """
    try:
        return pa.OSFile(f"{_DESCRIPTORS}/{descriptor}")
    finally:
        os.close(descriptor)


def _decompressed(handle: Any, path: str) -> Any:
    """``handle`` decompressed as the name's suffix says (``.gz``, ``.zst``...).

    Closing the result may leave ``handle`` open: close both.
    """
    compression = fsspec.utils.infer_compression(path)
    if compression is not None:
        return fsspec.compression.compr[compression](handle, mode="rb")
    if path.lower().endswith(".zst"):  # fsspec needs the zstandard package; pyarrow does not
        return pa.CompressedInputStream(handle, "zstd")
    return handle


#: A CSV error's text from where it quotes the file: the cell or the row.
_QUOTED = re.compile(r"(invalid value|Expected \d+ columns?, got \d+)[: ].*", re.DOTALL)


def _without_content(exc: BaseException) -> str:
    """An error's text without what it quotes of the file (a cell, a row), URLs redacted.

    A file read by mistake must not leak into an error line (and a log).
    """
    return redact_text(_QUOTED.sub(r"\1", str(exc)))


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether an fsspec filesystem is the local disk."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return bool({"file", "local"} & set(protocols))


def memory_budget() -> int:
    """Bytes one task may take: half the memory per worker thread.

    On a Dask worker that is its ``memory_limit`` over its threads; elsewhere
    (the threaded scheduler) the machine's memory over its cores.
    """
    try:
        from distributed import get_worker

        worker = get_worker()
        limit = worker.memory_manager.memory_limit
        if limit:
            return int(limit) // max(worker.state.nthreads, 1) // 2
    except (ImportError, ValueError):
        pass
    return _machine_budget()


@functools.cache
def _machine_budget() -> int:
    import psutil

    return psutil.virtual_memory().total // (os.cpu_count() or 1) // 2


def _check_fits(piece: Piece, needed: int, budget: int | None = None) -> None:
    budget = memory_budget() if budget is None else budget
    if needed > budget:
        raise DataError(
            f"{piece} needs about {needed / 2**20:,.0f} MiB in memory to evaluate, more than "
            f"the {budget / 2**20:,.0f} MiB a worker thread can spare; repartition the dataset "
            "into smaller files or row groups (for example dask.dataframe.read_parquet(...)"
            ".repartition(partition_size='128MiB').to_parquet(...)), or give workers more memory"
        )
