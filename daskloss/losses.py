"""Per-row losses written out: a Parquet dataset of the id columns, d, d² and |d|.

Each input file (each piece of a large file, each DataFrame partition)
gives one Parquet file holding, row for row, the id columns and, for each
prediction, ``error`` (``d = fl(y_pred - y_true)``), ``squared_error``
(``fl(d * d)``) and ``abs_error`` (``|d|``); with several predictions these are
named ``<prediction>_error`` and so on. Rows left out under
``nan_policy = "skip"`` are there too, their errors NaN. The workers write
these files themselves, where they read the rows.

Writes are all or nothing. Workers write into a staging directory beside the
target (``.<name>.staging-<token>``, a name listings skip), each file under a
temporary name renamed when complete. Only once the whole evaluation has
succeeded does :meth:`LossesTarget.commit` write the manifest
(``_daskloss_losses.json``) and, for a local directory, rename the staging
directory into place (an existing losses directory is renamed away first and
then deleted); on any failure :meth:`LossesTarget.abort` deletes the staging
directory. Tasks of a failed run may still be running when it is aborted (a
scheduler reports the first error without waiting for the rest): the staging
directory holds a marker (``_daskloss_staging``) from :meth:`LossesTarget.open`
until the run ends, and a writer starts or completes a file only while the
marker is there, so a late task leaves nothing behind. On an object store,
where there is no rename of a directory, the files are moved into place one
by one and the manifest is written last: readers should wait for it. A
target that exists must be a directory this module wrote (it holds the
manifest) or an empty one: anything else is refused before any work, as are
targets the dataset's next listing would read as data.
"""

from __future__ import annotations

import json
import os
import posixpath
import secrets
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from daskloss.chunks import Chunk
from daskloss.errors import ConfigError, DataError
from daskloss.policy import file_kind, redact_url
from daskloss.roles import EvaluationSpec

__all__ = ["MANIFEST", "LossesTarget", "LossesWriter", "check_losses_path", "loss_columns"]

#: The manifest a committed losses directory holds (written last).
MANIFEST = "_daskloss_losses.json"
#: In the staging directory while the run that owns it is live.
STAGING_MARKER = "_daskloss_staging"
_SUFFIXES = (".parquet", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz", ".csv")
_LOSSES = ("error", "squared_error", "abs_error")


def loss_columns(spec: EvaluationSpec) -> list[tuple[int, str, str]]:
    """``(prediction index, loss, column name)`` of each loss column written."""
    single = len(spec.y_pred) == 1
    return [
        (j, loss, loss if single else f"{name}_{loss}")
        for j, name in enumerate(spec.y_pred)
        for loss in _LOSSES
    ]


def check_loss_columns(
    spec: EvaluationSpec, ids: Sequence[str]
) -> tuple[tuple[int, str, str], ...]:
    """The loss columns of ``spec``, refusing id columns of the same names.

    Raises
    ------
    ConfigError
        An id column with the name of a loss column.
    """
    columns = tuple(loss_columns(spec))
    clash = sorted({name for _, _, name in columns} & set(ids))
    if clash:
        raise ConfigError(
            f"id column(s) {clash} have the name of a loss column of the per-row losses; "
            "choose other evaluation.id_columns"
        )
    return columns


def check_losses_path(path: str, dataset: str | None = None) -> None:
    """Fail before any work if the losses cannot or must not be written to directory ``path``.

    Raises
    ------
    ConfigError
        ``memory://``, a place the dataset's next listing would read as data,
        an existing path that is not a directory daskloss wrote its losses to
        (or an empty one), or a parent that is not a writable directory.
    """
    from daskloss.sources.files import would_list

    if path.lower().startswith("memory://"):
        raise ConfigError("losses path memory:// keeps nothing once the job ends; give a directory")
    if dataset is not None and (
        would_list(dataset, path) or would_list(dataset, path.rstrip("/") + "/part.parquet")
    ):
        raise ConfigError(
            f"losses path {redact_url(path)} is inside the dataset {redact_url(dataset)}, where "
            "the next run would read its files as data; write the losses elsewhere (or under a "
            "name starting with '_' or '.', which listings skip)"
        )
    if "://" in path and not path.startswith("file://"):
        return
    local = fsspec.core.url_to_fs(path)[1]
    try:
        mode = os.lstat(local).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None:
        if not stat.S_ISDIR(mode):
            raise ConfigError(
                f"losses path {local} is {file_kind(mode)}, not a directory; give the path of a "
                "new directory, or of one daskloss wrote losses to"
            )
        if os.listdir(local) and not os.path.exists(os.path.join(local, MANIFEST)):
            raise ConfigError(
                f"losses path {local} holds files daskloss did not write (no {MANIFEST}); give "
                "a new or empty directory: daskloss only replaces losses it wrote"
            )
    parent = os.path.dirname(os.path.abspath(local))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write the losses to {local}: {parent} is not a writable directory"
        )


@dataclass(frozen=True)
class LossesTarget:
    """Where the per-row losses go: a directory, staged beside it, then committed. Picklable.

    Attributes
    ----------
    path : str
        The directory (a local path or an fsspec URL).
    staging : str
        Where workers write until the commit.
    columns : tuple of (int, str, str)
        The loss columns (see :func:`loss_columns`).
    ids : tuple of str
        The id columns written first.
    root : str
        The dataset's directory: output files keep their input's path below it.
    """

    path: str
    staging: str
    columns: tuple[tuple[int, str, str], ...]
    ids: tuple[str, ...] = ()
    root: str = ""
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def plan(
        cls,
        path: str,
        spec: EvaluationSpec,
        ids: Sequence[str] = (),
        *,
        files: Sequence[str] = (),
        storage_options: Mapping[str, Any] | None = None,
    ) -> LossesTarget:
        """A fresh target for one run (its own staging directory); ``files`` are the input's.

        Raises
        ------
        ConfigError
            A loss column name that is also an id column.
        """
        columns = check_loss_columns(spec, ids)
        trimmed = path.rstrip("/")
        parent, name = posixpath.split(trimmed) if "://" in path else os.path.split(trimmed)
        joined = posixpath.join if "://" in path else os.path.join
        staging = joined(parent, f".{name}.staging-{secrets.token_hex(6)}")
        root = _common_directory(files) if files else ""
        return cls(trimmed, staging, columns, tuple(ids), root, dict(storage_options or {}))

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str, str]:
        """The filesystem, and the target's and the staging directory's paths on it."""
        fs, target = fsspec.core.url_to_fs(self.path, **dict(self.storage_options))
        return fs, target, fsspec.core.url_to_fs(self.staging, **dict(self.storage_options))[1]

    def open(self) -> None:
        """Create the staging directory and its marker: writers may write from now on."""
        fs, _, staging = self.filesystem()
        fs.makedirs(staging, exist_ok=True)
        fs.pipe_file(f"{staging}/{STAGING_MARKER}", b"")

    def writer(self, names: Mapping[str, str]) -> LossesWriter:
        """A writer of one unit's rows; ``names`` maps each origin to its output file's name."""
        return LossesWriter(self, names)

    def output_name(self, source: str, row_groups: tuple[int, ...] | None = None) -> str:
        """The output file of an input file (or a run of its row groups), below the target."""
        relative = source[len(self.root) :].lstrip("/") if self.root else posixpath.basename(source)
        for suffix in _SUFFIXES:
            if relative.lower().endswith(suffix):
                relative = relative[: -len(suffix)]
                break
        if row_groups is not None:
            relative += f".rg{row_groups[0]}-{row_groups[-1]}"
        return relative + ".parquet"

    def commit(self, written: Sequence[tuple[str, int]]) -> dict[str, Any]:
        """Put the staged files in place, the manifest last; what was written.

        ``written`` lists ``(file name, rows)`` of every file the units wrote.
        """
        fs, target, staging = self.filesystem()
        files = sorted(written)
        manifest = {
            "files": len(files),
            "rows": sum(rows for _, rows in files),
            "columns": [*self.ids, *(name for _, _, name in self.columns)],
        }
        fs.rm(f"{staging}/{STAGING_MARKER}")
        text = json.dumps({**manifest, "written": files}, indent=1) + "\n"
        if _local(fs):
            with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8") as stream:
                stream.write(text)
            _replace_directory(staging, target)
        else:
            if fs.exists(target):
                fs.rm(target, recursive=True)
            for name, _ in files:
                fs.mv(f"{staging}/{name}", f"{target}/{name}")
            fs.pipe_file(f"{target}/{MANIFEST}", text.encode())
            fs.rm(staging, recursive=True)
        return {"path": redact_url(self.path), **manifest}

    def abort(self) -> None:
        """Delete the staging directory and what it holds (a failed run leaves nothing)."""
        try:
            fs, _, staging = self.filesystem()
            if fs.exists(f"{staging}/{STAGING_MARKER}"):
                fs.rm(f"{staging}/{STAGING_MARKER}")
            if _local(fs):
                shutil.rmtree(staging, ignore_errors=True)
            elif fs.exists(staging):
                fs.rm(staging, recursive=True)
        except Exception:  # cleaning up after an error: that error is the one to report
            pass


class LossesWriter:
    """Writes the losses of one unit's chunks, one Parquet file per origin, atomically each.

    Rows of an origin arrive together (a file is read in order), so one file
    is open at a time; :meth:`close` ends the last and lists what was written.
    """

    def __init__(self, target: LossesTarget, names: Mapping[str, str]) -> None:
        self.target = target
        self.names = names
        self.written: list[tuple[str, int]] = []
        self._fs, _, self._staging = target.filesystem()
        self._marker = f"{self._staging}/{STAGING_MARKER}"
        self._current: tuple[str, str, Any, Any, int] | None = None

    def add(self, chunk: Chunk, spec: EvaluationSpec) -> None:
        """Write a chunk's rows, run by run of its origins."""
        values = chunk.values
        y_true = values[spec.y_true]
        start = 0
        for where, rows in chunk.origins:
            stop = start + rows
            columns: dict[str, Any] = {
                name: chunk.arrow_column(name).slice(start, rows) for name in self.target.ids
            }
            errors = {
                j: values[name][start:stop] - y_true[start:stop]
                for j, name in enumerate(spec.y_pred)
            }
            for j, loss, name in self.target.columns:
                d = errors[j]
                columns[name] = _loss(loss, d)
            self._write(where, pa.table(columns))
            start = stop

    def close(self) -> list[tuple[str, int]]:
        """Finish the open file; every ``(file name, rows)`` this writer wrote."""
        self._finish()
        return self.written

    def abort(self) -> None:
        """Drop the open file (its temporary name is deleted)."""
        if self._current is not None:
            _, temporary, writer, handle, _ = self._current
            self._current = None
            try:
                writer.close()
                handle.close()
            finally:
                self._fs.rm(temporary)

    def _write(self, where: str, table: pa.Table) -> None:
        if self._current is None or self._current[0] != where:
            self._finish()
            name = self.names.get(where) or f"part-{len(self.written):05d}.parquet"
            final = f"{self._staging}/{name}"
            parent = posixpath.dirname(final)
            self._check_live()
            self._fs.makedirs(parent, exist_ok=True)
            temporary = f"{parent}/.{posixpath.basename(final)}.{secrets.token_hex(6)}.tmp"
            handle = self._fs.open(temporary, "wb")
            writer = pq.ParquetWriter(handle, table.schema)
            self._current = (where, temporary, writer, handle, 0)
        where, temporary, writer, handle, rows = self._current
        writer.write_table(table)
        self._current = (where, temporary, writer, handle, rows + table.num_rows)

    def _finish(self) -> None:
        if self._current is None:
            return
        where, temporary, writer, handle, rows = self._current
        self._current = None
        writer.close()
        handle.close()
        name = self.names.get(where) or f"part-{len(self.written):05d}.parquet"
        self._fs.mv(temporary, f"{self._staging}/{name}")
        self.written.append((name, rows))
        if not self._fs.exists(self._marker):  # the run was aborted meanwhile
            self._fs.rm(self._staging, recursive=True)
            self._check_live()

    def _check_live(self) -> None:
        """Stop a task whose run has ended (aborted: the staging directory is gone)."""
        if not self._fs.exists(self._marker):
            raise DataError(f"the per-row losses of {self.target.path} were aborted")


def _loss(loss: str, d: np.ndarray) -> np.ndarray:
    if loss == "error":
        return d
    return d * d if loss == "squared_error" else np.abs(d)


def _local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return bool({"file", "local"} & set(protocols))


def _replace_directory(staging: str, target: str) -> None:
    """Rename ``staging`` to ``target``; an old ``target`` is renamed away first, then deleted."""
    old = None
    if os.path.lexists(target):
        parent, name = os.path.split(target)
        old = os.path.join(parent, f".{name}.old-{secrets.token_hex(6)}")
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _common_directory(files: Sequence[str]) -> str:
    """The deepest directory holding every file (its path as the files write it)."""
    directories = [posixpath.dirname(f.replace("\\", "/")) for f in files]
    common = posixpath.commonpath(directories) if len(directories) > 1 else directories[0]
    if "://" in files[0] and "://" not in common:  # commonpath collapses "s3://" to "s3:/"
        common = common.replace(":/", "://", 1)
    return common
