"""The Dask graph: per-partition statistics and their tree reduction.

For a Dask DataFrame, one :meth:`dask.dataframe.DataFrame.reduction` does
all the work: its chunk step runs :meth:`ErrorStats.from_arrays` on each
partition (fused with whatever made the partition), and its combine and
aggregate steps merge the small statistics in a tree of fan-in
``split_every``. For a dataset on storage the graph is the same shape
without pandas in between: one task per batch of pieces streams their Arrow
record batches through the kernel (so rows never leave the worker that read
them, and only a row group at a time is in memory), and :func:`tree_merge`
merges the results. Building pandas frames cost more than the kernel on
small files (measured: 2,000 files of 10 rows took 4.3 s through a DataFrame
against 2.1 s this way).

Whatever the partitioning or merge order, the exact merge gives the same
statistics, hence bit-identical metrics. This module knows nothing of file
formats or command lines, and never creates a Client: the computation runs
on whichever Dask scheduler is active.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.dataframe as dd
import pandas as pd
from dask import delayed
from dask.delayed import Delayed

from daskloss.dataset import SOURCE_ATTR, Dataset, FileFormat, Piece, open_dataset
from daskloss.errors import DataError, EmptyDatasetError, SchemaError
from daskloss.stats import NAN_POLICIES, ErrorStats, NanPolicy

__all__ = [
    "EvaluationResult",
    "evaluate",
    "needed_columns",
    "reduce_dataset",
    "reduce_stats",
    "tree_merge",
]

_STATS = "stats"


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` found.

    Attributes
    ----------
    metrics : dict
        Plain Python numbers keyed as :data:`daskloss.metrics.METRIC_NAMES`.
    stats : ErrorStats
        The merged exact statistics (mergeable with other results).
    skipped_rows : int
        Rows left out under ``nan_policy='skip'``.
    npartitions : int
        Partitions evaluated (pieces of files, or DataFrame partitions).
    files : tuple of str
        The files read (empty when a DataFrame was passed in).
    format : {'parquet', 'csv'} or None
        The file format read, given or inferred (None for a DataFrame).
    """

    metrics: dict[str, float | int]
    stats: ErrorStats
    skipped_rows: int
    npartitions: int
    files: tuple[str, ...] = field(default=())
    format: FileFormat | None = None


def evaluate(
    source: dd.DataFrame | Dataset | str | os.PathLike[str] | Sequence[str],
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    weight: str | None = None,
    *,
    nan_policy: NanPolicy = "error",
    format: FileFormat | None = None,
    storage_options: Mapping[str, Any] | None = None,
    split_every: int | None = None,
) -> EvaluationResult:
    """Evaluate predictions exactly over a Dask DataFrame or a dataset on storage.

    Parameters
    ----------
    source : dask.dataframe.DataFrame, Dataset, str, os.PathLike or list of str
        A Dask DataFrame, or the path/glob/fsspec URL of Parquet or CSV files
        (see :func:`daskloss.dataset.open_dataset`), or a dataset opened with
        it for :func:`needed_columns` (``format`` and ``storage_options`` are
        then those it was opened with).
    y_true, y_pred : str
        Names of the target and prediction columns.
    weight : str, optional
        Name of a column of non-negative sample weights.
    nan_policy : {'error', 'skip'}
        What to do with NaN or infinite values (see :meth:`ErrorStats.from_arrays`).
    format : {'parquet', 'csv'}, optional
        File format when ``source`` is a path; inferred from file names if omitted.
    storage_options : mapping, optional
        fsspec options (credentials, endpoint) when ``source`` is a URL.
    split_every : int, optional
        Fan-in of the merge tree (Dask's default when omitted).

    Returns
    -------
    EvaluationResult

    Raises
    ------
    DasklossError
        A subclass naming the column/file and the fix, for bad input.

    Examples
    --------
    >>> import dask.dataframe as dd, pandas as pd
    >>> frame = pd.DataFrame({"y_true": range(10, 20), "y_pred": range(10)})
    >>> result = evaluate(dd.from_pandas(frame, npartitions=3))
    >>> result.metrics["mse"], result.metrics["l2"]
    (100.0, 31.622776601683793)
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    columns = (y_true, y_pred, weight)
    wanted = needed_columns(y_true, y_pred, weight)
    if isinstance(source, dd.DataFrame):
        frame = _select_columns(source, wanted)
        lazy = reduce_stats(frame, columns, nan_policy=nan_policy, split_every=split_every)
        npartitions, files, read_format = frame.npartitions, (), None
    else:
        dataset = (
            source
            if isinstance(source, Dataset)
            else open_dataset(source, wanted, format=format, storage_options=storage_options)
        )
        if list(dataset.reader.columns) != wanted:
            raise ValueError(
                f"the dataset was opened for the columns {list(dataset.reader.columns)}, "
                f"not {wanted}; open it with needed_columns(y_true, y_pred, weight)"
            )
        lazy = reduce_dataset(dataset, columns, nan_policy=nan_policy, split_every=split_every)
        npartitions, files, read_format = len(dataset.batches), dataset.files, dataset.format
    stats = lazy.compute()
    _check_result(stats)
    return EvaluationResult(
        metrics=stats.metrics(),
        stats=stats,
        skipped_rows=stats.skipped_rows,
        npartitions=npartitions,
        files=files,
        format=read_format,
    )


def needed_columns(y_true: str, y_pred: str, weight: str | None = None) -> list[str]:
    """The columns to read for these roles, each once (a column may serve two roles)."""
    return list(dict.fromkeys(name for name in (y_true, y_pred, weight) if name is not None))


def reduce_stats(
    frame: dd.DataFrame,
    columns: tuple[str, str, str | None],
    *,
    nan_policy: NanPolicy = "error",
    split_every: int | None = None,
) -> Any:
    """The lazy :class:`ErrorStats` of ``frame`` (a Dask scalar; call ``.compute()``)."""
    return frame.reduction(
        chunk=_partition_stats,
        combine=_combine_stats,
        aggregate=_aggregate_stats,
        chunk_kwargs={"columns": columns, "nan_policy": nan_policy},
        split_every=split_every,
        meta=(_STATS, object),
        token="daskloss-stats",
    )


def reduce_dataset(
    dataset: Dataset,
    columns: tuple[str, str, str | None],
    *,
    nan_policy: NanPolicy = "error",
    split_every: int | None = None,
) -> Delayed:
    """The lazy :class:`ErrorStats` of a dataset: a task per batch, then a merge tree."""
    source = delayed(dataset, pure=True, traverse=False)  # one key, shipped once per worker
    parts = [
        delayed(_batch_stats, pure=True)(source, index, columns, nan_policy)
        for index in range(len(dataset.batches))
    ]
    return tree_merge(parts, split_every)


def tree_merge(parts: list[Delayed], split_every: int | None = None) -> Delayed:
    """Merge lazy statistics in a tree of fan-in ``split_every`` (8 by default)."""
    fan_in = split_every or 8
    if fan_in < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    while len(parts) > 1:
        parts = [
            delayed(ErrorStats.merge_all, pure=True)(parts[i : i + fan_in])
            for i in range(0, len(parts), fan_in)
        ]
    return parts[0] if parts else delayed(ErrorStats.empty)()


def _batch_stats(
    dataset: Dataset,
    index: int,
    columns: tuple[str, str, str | None],
    nan_policy: NanPolicy,
) -> ErrorStats:
    """Stream batch ``index`` of the dataset through the kernel in one pass (one task).

    The pieces' record batches go through the kernel together, one at a time;
    should they hold bad values, each piece is evaluated alone so that the
    error names its file.
    """
    batch = dataset.batches[index]
    if len(batch) == 1:
        return _stream_stats(dataset, batch, columns, nan_policy, str(batch[0]))
    try:
        return _small_files_stats(dataset, batch, columns, nan_policy)
    except DataError:
        for piece in batch:
            _stream_stats(dataset, (piece,), columns, nan_policy, str(piece))
        raise


def _small_files_stats(
    dataset: Dataset,
    pieces: tuple[Piece, ...],
    columns: tuple[str, str, str | None],
    nan_policy: NanPolicy,
) -> ErrorStats:
    """Small files read whole and joined into one array per column: one kernel call.

    Per-chunk work (checks, conversions, a kernel dispatch) cost more than
    copying the few MiB of a batch of small files together.
    """
    joined = dataset.read_together(pieces)
    y_true, y_pred, weight = columns
    return ErrorStats.from_arrays(
        joined[y_true],
        joined[y_pred],
        None if weight is None else joined[weight],
        nan_policy=nan_policy,
        columns=columns,
    )


def _stream_stats(
    dataset: Dataset,
    pieces: tuple[Piece, ...],
    columns: tuple[str, str, str | None],
    nan_policy: NanPolicy,
    source: str,
) -> ErrorStats:
    y_true, y_pred, weight = columns
    records = (record for piece in pieces for record in dataset.iter_batches(piece))
    return ErrorStats.from_batches(
        (
            (
                record.column(y_true),
                record.column(y_pred),
                None if weight is None else record.column(weight),
            )
            for record in records
        ),
        weighted=weight is not None,
        nan_policy=nan_policy,
        columns=columns,
        source=source,
    )


def _select_columns(frame: dd.DataFrame, wanted: list[str]) -> dd.DataFrame:
    """Check the columns of a user's DataFrame up front and keep only those."""
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        raise SchemaError(
            f"column(s) {missing} not found in the DataFrame; its columns are: "
            f"{[str(c) for c in frame.columns]}"
        )
    for name in wanted:
        dtype = frame.dtypes[name]
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise SchemaError(
                f"column {name!r} must be numeric (float or integer), found dtype {dtype}; "
                "cast it first"
            )
    return frame[wanted]


def _partition_stats(
    part: pd.DataFrame, columns: tuple[str, str, str | None], nan_policy: NanPolicy
) -> pd.DataFrame:
    """Chunk step: one partition's rows to a one-row frame holding its statistics."""
    y_true, y_pred, weight = columns
    stats = ErrorStats.from_arrays(
        part[y_true],
        part[y_pred],
        None if weight is None else part[weight],
        nan_policy=nan_policy,
        columns=columns,
        source=part.attrs.get(SOURCE_ATTR, ""),
    )
    return _wrap(stats)


def _wrap(stats: ErrorStats) -> pd.DataFrame:
    return pd.DataFrame({_STATS: [stats]})


def _combine_stats(parts: pd.DataFrame) -> pd.DataFrame:
    """Combine step: many partial statistics to one, still as a one-row frame."""
    return _wrap(ErrorStats.merge_all(parts[_STATS]))


def _aggregate_stats(parts: pd.DataFrame) -> ErrorStats:
    """Aggregate step: the final merge."""
    return ErrorStats.merge_all(parts[_STATS])


def _check_result(stats: ErrorStats) -> None:
    if stats.count == 0:
        if stats.skipped_rows:
            raise EmptyDatasetError(
                f"all {stats.skipped_rows} rows were skipped for NaN or infinite values; "
                "nothing is left to evaluate"
            )
        raise EmptyDatasetError("the dataset has no rows; check the path and the files")
    if stats.weight_sum == 0:
        raise DataError(
            f"the total weight of the {stats.count} rows is zero, so means are undefined; "
            "check the weight column"
        )
