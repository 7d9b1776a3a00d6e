"""The Dask graph: per-partition statistics and their tree reduction.

One :meth:`dask.dataframe.DataFrame.reduction` does all the work: its chunk
step runs :meth:`ErrorStats.from_arrays` on each partition (fused with the
read, so rows never leave the worker that read them), and its combine and
aggregate steps merge the small statistics objects in a tree of fan-in
``split_every``. Whatever the partitioning or merge order, the exact merge
gives the same statistics, hence bit-identical metrics. This module knows
nothing of file formats or command lines, and never creates a Client: the
computation runs on whichever Dask scheduler is active.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.dataframe as dd
import pandas as pd

from daskloss.dataset import SOURCE_ATTR, FileFormat, open_dataset
from daskloss.errors import DataError, EmptyDatasetError, SchemaError
from daskloss.stats import NAN_POLICIES, ErrorStats, NanPolicy

__all__ = ["EvaluationResult", "evaluate", "reduce_stats"]

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
        Partitions of the evaluated Dask DataFrame.
    files : tuple of str
        The files read (empty when a DataFrame was passed in).
    """

    metrics: dict[str, float | int]
    stats: ErrorStats
    skipped_rows: int
    npartitions: int
    files: tuple[str, ...] = field(default=())


def evaluate(
    source: dd.DataFrame | str | os.PathLike[str] | Sequence[str],
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
    source : dask.dataframe.DataFrame, str, os.PathLike or list of str
        A Dask DataFrame, or the path/glob/fsspec URL of Parquet or CSV files
        (see :func:`daskloss.dataset.open_dataset`).
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
    wanted = [name for name in columns if name is not None]
    if isinstance(source, dd.DataFrame):
        frame, files = _select_columns(source, wanted), ()
    else:
        dataset = open_dataset(source, wanted, format=format, storage_options=storage_options)
        frame, files = dataset.frame, dataset.files
    stats = reduce_stats(frame, columns, nan_policy=nan_policy, split_every=split_every).compute()
    _check_result(stats)
    return EvaluationResult(
        metrics=stats.metrics(),
        stats=stats,
        skipped_rows=stats.skipped_rows,
        npartitions=frame.npartitions,
        files=files,
    )


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
