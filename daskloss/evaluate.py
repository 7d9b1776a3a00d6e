"""evaluate(): a source's work units, their statistics, one merge, the metrics.

:func:`evaluate` strings the layers together in the one direction data
flows: :func:`~daskloss.sources.plan_source` cuts the source into work units;
each unit's chunks become :class:`~daskloss.stats.ErrorStats` in a task of
its own; :func:`~daskloss.reduce.tree_reduce` merges them; the formulas
(:mod:`daskloss.formulas`) round the metrics once. It never creates a
Client: the computation runs on whichever Dask scheduler is active.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.local
import dask.threaded

from daskloss.errors import DataError, EmptyDatasetError
from daskloss.names import FILE_FORMATS, NAN_POLICIES, FileFormat, NanPolicy, check_choice
from daskloss.policy import ReadRoots
from daskloss.reduce import check_split_every, tree_reduce
from daskloss.roles import Roles
from daskloss.sources import Plan, Source, SourceKind, Unit, plan_source
from daskloss.stats import ErrorStats
from daskloss.warmup import warm_in_background

__all__ = ["EvaluationResult", "evaluate"]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` found.

    Attributes
    ----------
    metrics : dict
        Plain Python numbers keyed as :data:`daskloss.METRIC_NAMES`.
    stats : ErrorStats
        The merged exact statistics (mergeable with other results).
    skipped_rows : int
        Rows left out under ``nan_policy='skip'``.
    npartitions : int
        Work units evaluated (pieces of files, DataFrame partitions).
    files : tuple of str
        The files read (empty for a DataFrame).
    format : {'parquet', 'csv'} or None
        The file format read, given or inferred (None for a DataFrame).
    source : {'files', 'dask', 'pandas'}
        What the source was.
    """

    metrics: dict[str, float | int]
    stats: ErrorStats
    skipped_rows: int
    npartitions: int
    files: tuple[str, ...] = field(default=())
    format: FileFormat | None = None
    source: SourceKind = "files"


def evaluate(
    source: Source,
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    weight: str | None = None,
    *,
    nan_policy: NanPolicy = "error",
    format: FileFormat | None = None,
    storage_options: Mapping[str, Any] | None = None,
    split_every: int | bool | None = None,
    read_roots: Sequence[str] | None = None,
) -> EvaluationResult:
    """Evaluate predictions exactly over files, a Dask DataFrame or a pandas DataFrame.

    Parameters
    ----------
    source : path, glob, URL, list of them, dask.dataframe.DataFrame or pandas.DataFrame
        Parquet or CSV files (a file, a directory searched recursively, a
        glob, an fsspec URL such as ``s3://bucket/preds/``, or a list of
        files), or a DataFrame.
    y_true, y_pred : str
        Names of the target and prediction columns.
    weight : str, optional
        Name of a column of non-negative sample weights.
    nan_policy : {'error', 'skip'}
        ``'error'`` fails on NaN or infinity; ``'skip'`` leaves those rows out
        and counts them.
    format : {'parquet', 'csv'}, optional
        File format of a path; inferred from the file names if omitted.
    storage_options : mapping, optional
        fsspec options (credentials, endpoint) for a URL.
    split_every : int, False or None
        Fan-in of the merge tree: None for the default (8), an integer >= 2,
        or False to merge every unit's statistics at once.
    read_roots : sequence of str, optional
        Directories or URL prefixes the files must lie under (see the
        README's Reliability section); None for no confinement, never an
        empty list.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    DasklossError
        A subclass naming the argument, column or file and the fix, for bad input.

    Examples
    --------
    >>> import dask.dataframe as dd, pandas as pd
    >>> frame = pd.DataFrame({"y_true": range(10, 20), "y_pred": range(10)})
    >>> result = evaluate(dd.from_pandas(frame, npartitions=3))
    >>> result.metrics["mse"], result.metrics["l2"]
    (100.0, 31.622776601683793)
    >>> evaluate(frame).metrics["rmse"]
    10.0
    """
    roles = Roles(y_true, y_pred, weight)
    check_choice("nan_policy", nan_policy, NAN_POLICIES)
    if format is not None:
        check_choice("format", format, FILE_FORMATS)
    check_split_every(split_every)
    roots = ReadRoots.listing(read_roots) if read_roots is not None else None
    here = _tasks_run_here()
    if here:  # compile the kernel while the files are listed and planned
        warm_in_background(weighted=roles.weight is not None)
    plan = plan_source(
        source,
        roles.columns,
        format=format,
        storage_options=storage_options,
        read_roots=roots,
        threads=None if here else _cluster_threads(),
    )
    lazy = tree_reduce(
        plan.units,
        functools.partial(unit_statistics, roles=roles, nan_policy=nan_policy),
        ErrorStats.merge_all,
        split_every=split_every,
        traverse=plan.kind == "dask",  # only a Dask DataFrame's units hold collections
    )
    _LOG.debug("computing the statistics of %d %s units", len(plan.units), plan.kind)
    started = time.perf_counter()
    (stats,) = dask.compute(lazy)
    _LOG.debug(
        "statistics of %d rows computed in %.3f s", stats.count, time.perf_counter() - started
    )
    _check_result(stats)
    return _result(stats, plan)


def _tasks_run_here() -> bool:
    """Whether the active Dask scheduler runs tasks in this process (threads, or sync)."""
    scheduler = dask.base.get_scheduler()
    return scheduler is None or scheduler in (dask.threaded.get, dask.local.get_sync)


def _cluster_threads() -> int | None:
    """The worker threads of the default distributed Client's cluster, if there is one."""
    try:
        from distributed import default_client

        return sum(default_client().nthreads().values())
    except (ImportError, ValueError):  # no distributed, or no Client
        return None


def unit_statistics(unit: Unit, roles: Roles, nan_policy: NanPolicy) -> ErrorStats:
    """The statistics of one work unit's rows (one task)."""
    return ErrorStats.from_chunks(unit.chunks(), roles, nan_policy=nan_policy)


def _result(stats: ErrorStats, plan: Plan) -> EvaluationResult:
    return EvaluationResult(
        metrics=stats.metrics(),
        stats=stats,
        skipped_rows=stats.skipped_rows,
        npartitions=len(plan.units),
        files=plan.files,
        format=plan.format,
        source=plan.kind,
    )


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
