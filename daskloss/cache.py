"""Incremental runs: each file's statistics kept between runs, so that only new files are read.

With a cache, every work unit computes the statistics of each of its files
apart (:func:`file_statistics`: the same chunks, cut where one file's rows end,
so small files are still read together), with the shape of its errors (the
residual histogram and worst rows, :mod:`daskloss.shape`) when asked for, and
the merge tree gathers them by file. The next run over the same dataset reuses
a file's statistics when the file is listed with the same path, size and
version (modification and change times on local disk, the ETag on an object
store) and is read the same way (format, columns and their types in the
dataset's first file, slice keys and their types); every other file is read
again. The run's statistics and shape are then one exact merge of the reused
and the fresh ones, so its report is the same, bit for bit, as a run that
reads everything.

The statistics of one dataset under one evaluation (spec, NaN policy, shape
settings) are kept in one gzip-compressed JSON document under the cache's path
(a directory or an object-store prefix), named by the digest of what they
depend on::

    <cache.path>/daskloss-stats-<digest>.json.gz

    format      "daskloss-cache"
    version     2 (CACHE_VERSION); another version is ignored (and replaced)
    key         {daskloss, statistics (the artifact version), spec, nan_policy,
                shape {histogram, worst_k, id_columns}, dataset}
    files       {path: {size, version, reading, slices, shape}}: ``reading`` is the
                digest of how the file was read, ``slices`` as in a statistics
                artifact, ``shape`` the file's histogram and worst rows
                (:meth:`ShapeStats.to_data <daskloss.shape.ShapeStats.to_data>`:
                exact counts and weight sums, the worst rows as an Arrow IPC
                stream), null when not gathered

Since the key holds the shape settings, a run with another histogram,
``worst_k`` or id columns uses a document of its own and never reuses entries
computed otherwise.

A file deleted since drops out (its entry is removed), a rewritten one is read
again and its entry replaced: no row is ever counted twice or counted stale.
Files the storage gives no version for are always read. The document is
replaced whole (atomically) after each successful run; a document that cannot
be read is ignored with a warning (every file is read again), and one that
cannot be written leaves the report correct (``cache.stored`` is false).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import operator
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import daskloss
from daskloss.artifacts import (
    ARTIFACT_VERSION,
    MAX_ARTIFACT_BYTES,
    decode_slices,
    encode_slices,
    spec_data,
)
from daskloss.chunks import Chunk
from daskloss.errors import ConfigError
from daskloss.names import NanPolicy
from daskloss.policy import redact_text, redact_url
from daskloss.roles import EvaluationSpec
from daskloss.shape import ShapeAccumulator, ShapeSpec, ShapeStats
from daskloss.sources.files import would_list
from daskloss.sources.plan import FileEntry
from daskloss.sources.reader import FileUnit
from daskloss.stats import EvaluationStats
from daskloss.storage import gunzip, gzipped, read_bytes, write_bytes

__all__ = [
    "CACHE_VERSION",
    "CacheOutcome",
    "CacheSession",
    "FileStatistics",
    "StatisticsCache",
    "dataset_name",
    "file_statistics",
    "merge_file_statistics",
]

_LOG = logging.getLogger(__name__)

#: The cache document's format version.
CACHE_VERSION = 2
_FORMAT = "daskloss-cache"
_NO_SHAPE = ShapeSpec()
#: The document is rewritten by every run: gzip's fastest level (a histogram's exact
#: weights make megabytes of text; level 1 is 8 times faster than 9, 10% larger).
_GZIP_LEVEL = 1


@dataclass(frozen=True)
class FileStatistics:
    """One file's statistics, and the shape of its errors when gathered (else None)."""

    stats: EvaluationStats
    shape: ShapeStats | None = None

    def merge(self, other: FileStatistics) -> FileStatistics:
        """The statistics (and shape) of both parts' rows."""
        shape = None
        if self.shape is not None and other.shape is not None:
            shape = self.shape.merge(other.shape)
        return FileStatistics(self.stats.merge(other.stats), shape)


@dataclass(frozen=True)
class StatisticsCache:
    """Where per-file statistics are kept between runs: a directory or object-store prefix.

    Parameters
    ----------
    path : str
        A local directory (created when first written) or a URL prefix such as
        ``s3://bucket/daskloss-cache/``.
    storage_options : mapping, optional
        fsspec options for a URL.

    Examples
    --------
    >>> import tempfile, daskloss, pandas as pd
    >>> from daskloss.cache import StatisticsCache
    >>> data = tempfile.mkdtemp()
    >>> pd.DataFrame({"y_true": [1.0, 2.0], "y_pred": [1.5, 2.0]}).to_parquet(f"{data}/a.parquet")
    >>> cache = StatisticsCache(tempfile.mkdtemp())
    >>> first = daskloss.evaluate(data, cache=cache)
    >>> again = daskloss.evaluate(data, cache=cache)
    >>> first.cache.files_read, again.cache.files_read, again.cache.files_reused
    (1, 0, 1)
    >>> again.metrics == first.metrics
    True
    """

    path: str
    storage_options: Mapping[str, Any] | None = None

    def document(
        self, spec: EvaluationSpec, nan_policy: str, dataset: str, shape: ShapeSpec = _NO_SHAPE
    ) -> str:
        """Where the statistics of ``dataset`` under this spec, NaN policy and shape are kept."""
        key = _key(spec, nan_policy, dataset, shape)
        text = json.dumps(key, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        return f"{self.path.rstrip('/')}/daskloss-stats-{digest}.json.gz"

    def session(
        self,
        spec: EvaluationSpec,
        nan_policy: NanPolicy,
        dataset: str,
        shape: ShapeSpec = _NO_SHAPE,
    ) -> CacheSession:
        """One run's use of the cache: its statistics of ``dataset``, loaded now.

        ``shape`` says which shape of the errors each file's entry holds.

        Raises
        ------
        ConfigError
            The cache lies where listing the dataset would read it as data.
        """
        document = self.document(spec, nan_policy, dataset, shape)
        paths = json.loads(dataset) if dataset.startswith("[") else [dataset]
        if any(would_list(path, document) for path in paths):
            raise ConfigError(
                f"cache path {redact_url(self.path)} is inside the dataset "
                f"{redact_url(dataset)}, where the next run would read it as data; keep the "
                "cache outside the dataset (or under a name starting with '_' or '.')"
            )
        return CacheSession(self, spec, nan_policy, dataset, shape)


@dataclass(frozen=True)
class CacheOutcome:
    """What one run did with the cache (the report's ``cache``).

    Attributes
    ----------
    path : str
        The cache document (URL user information hidden).
    files_reused, bytes_reused : int
        Files (and their bytes) whose statistics came from the cache.
    files_read, bytes_read : int
        Files read (new, changed, or read another way than when cached).
    entries_dropped : int
        Entries removed: files deleted or changed since they were cached.
    stored : bool
        Whether the cache was written back.
    error : str or None
        Why the cache could not be read or written, if so (the run is correct
        either way: unreadable entries are read again).
    """

    path: str
    files_reused: int
    bytes_reused: int
    files_read: int
    bytes_read: int
    entries_dropped: int
    stored: bool
    error: str | None = None


class CacheSession:
    """One run's use of a :class:`StatisticsCache`.

    :meth:`known` (given to the planner) names the files whose statistics can
    be reused; :meth:`complete` merges them with those just computed and
    writes the cache back.
    """

    def __init__(
        self,
        cache: StatisticsCache,
        spec: EvaluationSpec,
        nan_policy: str,
        dataset: str,
        shape: ShapeSpec = _NO_SHAPE,
    ) -> None:
        self.cache = cache
        self.spec = spec
        self.shape = shape
        self.key = _key(spec, nan_policy, dataset, shape)
        self.document = cache.document(spec, nan_policy, dataset, shape)
        self.error: str | None = None
        self.entries: dict[str, Mapping[str, Any]] = self._load()
        self.reused: dict[str, FileStatistics] = {}
        self.evaluated: tuple[FileEntry, ...] = ()
        self.listed: tuple[FileEntry, ...] = ()
        self.reading = ""

    def known(
        self, evaluated: Sequence[FileEntry], listed: Sequence[FileEntry], reading: str
    ) -> set[str]:
        """The files evaluated whose cached statistics still hold (see the module docstring)."""
        self.evaluated, self.listed = tuple(evaluated), tuple(listed)
        self.reading = _digest(reading)
        for entry in evaluated:
            cached = self.entries.get(entry.path)
            if cached is None or not _current(cached, entry) or cached["reading"] != self.reading:
                continue
            try:
                self.reused[entry.path] = self._decode(cached)
            except (KeyError, TypeError, ValueError, ConfigError) as exc:
                self._ignore(f"its entry of {redact_url(entry.path)} is not readable ({exc})")
        _LOG.info(
            "cache: statistics of %d of %d files reused", len(self.reused), len(self.evaluated)
        )
        return set(self.reused)

    def complete(
        self, fresh: Mapping[str, FileStatistics]
    ) -> tuple[EvaluationStats, ShapeStats | None, CacheOutcome]:
        """The run's statistics and shape (reused and fresh, merged), and the outcome.

        The cache is written back. The shape is None when not gathered, or when
        no file was evaluated.
        """
        parts = [*self.reused.values(), *fresh.values()]
        evaluation = (
            EvaluationStats.merge_all([part.stats for part in parts])
            if parts
            else EvaluationStats.empty(self.spec)
        )
        shapes = [part.shape for part in parts if part.shape is not None]
        shape = ShapeStats.merge_all(shapes) if shapes else None
        listed = {entry.path: entry for entry in self.listed}
        kept = {
            path: cached
            for path, cached in self.entries.items()
            if path in listed and _current(cached, listed[path])
        }
        dropped = len(self.entries) - len(kept)
        for path, part in fresh.items():
            entry = listed.get(path)
            if entry is not None and entry.version is not None:
                kept[path] = {
                    "size": entry.size,
                    "version": entry.version,
                    "reading": self.reading,
                    "slices": encode_slices(part.stats),
                    "shape": None if part.shape is None else part.shape.to_data(),
                }
            elif path in kept:
                del kept[path]
        stored = self._store(kept)
        sizes = {entry.path: entry.size for entry in self.evaluated}
        outcome = CacheOutcome(
            path=redact_url(self.document),
            files_reused=len(self.reused),
            bytes_reused=sum(sizes.get(path, 0) for path in self.reused),
            files_read=len(fresh),
            bytes_read=sum(sizes.get(path, 0) for path in fresh),
            entries_dropped=dropped,
            stored=stored,
            error=self.error,
        )
        return evaluation, shape, outcome

    def _decode(self, cached: Mapping[str, Any]) -> FileStatistics:
        """A cached entry's statistics and shape (see :meth:`known`)."""
        stats = decode_slices(self.spec, cached["slices"])
        data = cached["shape"]
        if not self.shape.active:
            if data is not None:
                raise ValueError("it holds a shape that was not asked for")
            return FileStatistics(stats)
        return FileStatistics(stats, ShapeStats.from_data(data, self.spec, self.shape))

    def _load(self) -> dict[str, Mapping[str, Any]]:
        """The document's entries; none if it is missing, unreadable or of another key."""
        try:
            data = read_bytes(self.document, self.cache.storage_options, limit=MAX_ARTIFACT_BYTES)
        except FileNotFoundError:
            return {}
        except Exception as exc:  # an object store's own errors too
            self._ignore(f"it cannot be read ({type(exc).__name__}: {exc})")
            return {}
        try:
            document = json.loads(gunzip(data, MAX_ARTIFACT_BYTES))
            if document.get("format") != _FORMAT or document.get("version") != CACHE_VERSION:
                raise ValueError("it is not a daskloss cache of this version")
            if document["key"] != self.key:
                raise ValueError("it was written for another evaluation")
            files = document["files"]
            if not isinstance(files, dict):
                raise TypeError("its files are not a table")
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError) as exc:
            self._ignore(f"it is not readable ({exc})")
            return {}
        return files

    def _store(self, entries: Mapping[str, Mapping[str, Any]]) -> bool:
        document = {
            "format": _FORMAT,
            "version": CACHE_VERSION,
            "key": self.key,
            "files": dict(sorted(entries.items())),
        }
        text = json.dumps(document, separators=(",", ":"), allow_nan=False)
        data = gzipped(text.encode(), _GZIP_LEVEL)
        try:
            write_bytes(self.document, data, self.cache.storage_options)
        except Exception as exc:  # an object store's own errors too
            reason = f"it cannot be written ({type(exc).__name__}: {exc})"
            self.error = redact_text(" ".join(f"{self.error or ''} {reason}".split()))
            _LOG.warning(
                "cache %s: %s; the report is complete, the next run reads every file",
                redact_url(self.document),
                redact_text(reason),
            )
            return False
        return True

    def _ignore(self, reason: str) -> None:
        shown = redact_text(" ".join(reason.split()))
        self.error = shown
        _LOG.warning(
            "cache %s: %s; it is ignored: the files it held are read again",
            redact_url(self.document),
            shown,
        )


def file_statistics(
    unit: FileUnit, spec: EvaluationSpec, nan_policy: NanPolicy, shape: ShapeSpec = _NO_SHAPE
) -> dict[str, FileStatistics]:
    """The statistics (and shape, if ``shape`` is active) of each file of one work unit.

    One task. The unit's chunks are cut where a file's rows end (a chunk of
    several small files read together); a file without rows gets the
    statistics of no rows.
    """
    paths = {str(piece): piece.path for piece in unit.pieces}
    parts = ((paths[where], part) for chunk in unit.chunks() for where, part in _by_origin(chunk))
    found: dict[str, FileStatistics] = {}
    for path, group in itertools.groupby(parts, key=operator.itemgetter(0)):
        stats = _statistics((part for _, part in group), spec, nan_policy, shape)
        found[path] = found[path].merge(stats) if path in found else stats
    for piece in unit.pieces:
        if piece.path not in found:
            found[piece.path] = _statistics([], spec, nan_policy, shape)
    return found


def _statistics(
    chunks: Iterable[Chunk], spec: EvaluationSpec, nan_policy: NanPolicy, shape: ShapeSpec
) -> FileStatistics:
    """The statistics and shape of some chunks of one file, in one pass."""
    if not shape.active:
        return FileStatistics(EvaluationStats.from_chunks(chunks, spec, nan_policy=nan_policy))
    gathered = ShapeAccumulator(spec, shape)
    stats = EvaluationStats.from_chunks(chunks, spec, nan_policy=nan_policy, observe=gathered.add)
    return FileStatistics(stats, gathered.result())


def merge_file_statistics(
    parts: Sequence[Mapping[str, FileStatistics]],
) -> dict[str, FileStatistics]:
    """Per-file statistics of several units together (a large file's pieces merged)."""
    merged: dict[str, FileStatistics] = {}
    for part in parts:
        for path, stats in part.items():
            merged[path] = merged[path].merge(stats) if path in merged else stats
    return merged


def _by_origin(chunk: Chunk) -> Iterator[tuple[str, Chunk]]:
    """A chunk cut into the runs of rows of each place it came from (views, no copies)."""
    if len(chunk.origins) == 1:
        yield chunk.origins[0][0], chunk
        return
    start = 0
    for where, rows in chunk.origins:
        stop = start + rows
        yield (
            where,
            Chunk(
                {name: values[start:stop] for name, values in chunk.values.items()},
                ((where, rows),),
                {name: keys.slice(start, rows) for name, keys in chunk.keys.items()},
                {name: ids.slice(start, rows) for name, ids in chunk.ids.items()},
            ),
        )
        start = stop


def _key(spec: EvaluationSpec, nan_policy: str, dataset: str, shape: ShapeSpec) -> dict[str, Any]:
    """What every entry of one cache document depends on."""
    return {
        "daskloss": daskloss.__version__,
        "statistics": ARTIFACT_VERSION,
        "spec": spec_data(spec),
        "nan_policy": nan_policy,
        "shape": {
            "histogram": shape.histogram,
            "worst_k": shape.worst_k,
            "id_columns": list(shape.id_columns),
        },
        "dataset": dataset,
    }


def _current(cached: Mapping[str, Any], entry: FileEntry) -> bool:
    """Whether a cached entry is of the file as listed now (same size and version)."""
    return (
        entry.version is not None
        and cached.get("size") == entry.size
        and cached.get("version") == entry.version
    )


@functools.cache
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dataset_name(source: Any) -> str:
    """The dataset's name in a cache key: its path, or its paths joined."""
    if isinstance(source, (list, tuple)):
        return json.dumps([os.fspath(path) for path in source])
    return os.fspath(source)
