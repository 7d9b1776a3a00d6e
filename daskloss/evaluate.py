"""evaluate(): a source's work units, their statistics, one merge, the metrics.

:func:`evaluate` strings the layers together in the one direction data
flows: :func:`~daskloss.sources.plan_source` cuts the source into work units;
each unit's chunks become :class:`~daskloss.stats.EvaluationStats` (per
slice, per prediction) in a task of its own; :func:`~daskloss.reduce.tree_reduce`
merges them; the formulas (:mod:`daskloss.formulas`) round the metrics once. It never creates a
Client: the computation runs on whichever Dask scheduler is active.

With a cache (:mod:`daskloss.cache`), the units compute each file's statistics
apart and the merge tree gathers them by file; the files whose statistics the
cache holds are not read, and one exact merge joins the cached and the fresh.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask

from daskloss.cache import (
    CacheOutcome,
    StatisticsCache,
    dataset_name,
    file_statistics,
    merge_file_statistics,
)
from daskloss.errors import ConfigError, DataError, EmptyDatasetError
from daskloss.formulas import compare
from daskloss.names import FILE_FORMATS, NAN_POLICIES, FileFormat, NanPolicy, check_choice
from daskloss.policy import ReadRoots
from daskloss.reduce import check_split_every, tree_reduce
from daskloss.roles import EvaluationSpec
from daskloss.sources import Plan, Source, SourceKind, Unit, plan_source
from daskloss.sources.files import PartitionWindow
from daskloss.sources.plan import FileEntry
from daskloss.stats import ErrorStats, EvaluationStats, SliceStats

__all__ = ["EvaluationResult", "SliceResult", "evaluate"]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SliceResult:
    """One slice's metrics: per prediction, and each comparison with the baseline.

    Attributes
    ----------
    key : dict
        The slice's value of each ``group_by`` column (None for a null).
    count : int
        Rows evaluated in the slice.
    skipped_rows : int
        Rows of the slice left out under ``nan_policy='skip'``.
    predictions : dict
        Each prediction column's metrics (keyed as :data:`daskloss.METRIC_NAMES`).
    comparisons : dict
        For each prediction compared with the baseline, by its column: the
        differences (see :func:`daskloss.formulas.compare`).
    """

    key: dict[str, Any]
    count: int
    skipped_rows: int
    predictions: dict[str, dict[str, float | int]]
    comparisons: dict[str, dict[str, dict[str, Any]]]

    @classmethod
    def of(cls, key: dict[str, Any], stats: SliceStats, spec: EvaluationSpec) -> SliceResult:
        """The metrics of one slice's statistics."""
        predictions = {
            name: part.metrics() for name, part in zip(spec.y_pred, stats.predictions, strict=True)
        }
        comparisons = {
            spec.y_pred[j]: compare(stats.predictions[j], stats.predictions[base], pair)
            for (j, base), pair in zip(spec.pairs, stats.pairs, strict=True)
        }
        first = stats.predictions[0]
        return cls(key, first.count, first.skipped_rows, predictions, comparisons)


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` found.

    Attributes
    ----------
    metrics : dict
        The first prediction's metrics over every row, keyed as
        :data:`daskloss.METRIC_NAMES`.
    stats : ErrorStats
        The first prediction's merged exact statistics (mergeable with others).
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
    evaluation : EvaluationStats
        Every exact statistic: per slice, per prediction, per comparison.
    overall : SliceResult
        Every prediction's metrics and every comparison over all rows.
    listing : tuple of FileEntry
        The files evaluated, with their sizes and versions: those read and
        those whose statistics came from the cache (empty for a DataFrame).
    cache : CacheOutcome or None
        What the run did with the cache, if it had one.
    """

    metrics: dict[str, float | int]
    stats: ErrorStats
    skipped_rows: int
    npartitions: int
    files: tuple[str, ...] = field(default=())
    format: FileFormat | None = None
    source: SourceKind = "files"
    evaluation: EvaluationStats | None = None
    overall: SliceResult | None = None
    listing: tuple[FileEntry, ...] = field(default=())
    cache: CacheOutcome | None = None

    @classmethod
    def of(
        cls, evaluation: EvaluationStats, plan: Plan, cache: CacheOutcome | None = None
    ) -> EvaluationResult:
        """The metrics of an evaluation's statistics; ``plan`` says what was evaluated."""
        overall = evaluation.overall()
        stats = overall.predictions[0]
        return cls(
            metrics=stats.metrics(),
            stats=stats,
            skipped_rows=stats.skipped_rows,
            npartitions=len(plan.units),
            files=plan.files,
            format=plan.format,
            source=plan.kind,
            evaluation=evaluation,
            overall=SliceResult.of({}, overall, evaluation.spec),
            listing=plan.listing,
            cache=cache,
        )

    @functools.cached_property
    def slices(self) -> list[SliceResult]:
        """Each slice's metrics, in key order (nulls last); empty without ``group_by``."""
        if self.evaluation is None or not self.evaluation.spec.group_by:
            return []
        spec = self.evaluation.spec
        return [
            SliceResult.of(
                dict(zip(spec.group_by, key, strict=True)), self.evaluation.slices[key], spec
            )
            for key in self.evaluation.sorted_keys()
        ]


def evaluate(
    source: Source,
    y_true: str = "y_true",
    y_pred: str | Sequence[str] = "y_pred",
    weight: str | None = None,
    *,
    group_by: str | Sequence[str] | None = None,
    baseline: str | None = None,
    nan_policy: NanPolicy = "error",
    format: FileFormat | None = None,
    storage_options: Mapping[str, Any] | None = None,
    split_every: int | bool | None = None,
    read_roots: Sequence[str] | None = None,
    window: tuple[str, int] | None = None,
    cache: StatisticsCache | None = None,
) -> EvaluationResult:
    """Evaluate predictions exactly over files, a Dask DataFrame or a pandas DataFrame.

    Parameters
    ----------
    source : path, glob, URL, list of them, dask.dataframe.DataFrame or pandas.DataFrame
        Parquet or CSV files (a file, a directory searched recursively, a
        glob, an fsspec URL such as ``s3://bucket/preds/``, or a list of
        files), or a DataFrame.
    y_true : str
        Name of the target column.
    y_pred : str or sequence of str
        Name of the prediction column, or of several (models evaluated on the
        same rows: a row left out for one is left out for all).
    weight : str, optional
        Name of a column of non-negative sample weights.
    group_by : str or sequence of str, optional
        Slice key columns (strings, integers, booleans, dates, or hive
        partition directories such as ``day=2026-11-30/``): every metric per
        slice, from the same pass.
    baseline : str, optional
        The prediction the others are compared with (default: the first, when
        there are several).
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
    window : (str, int), optional
        ``(partition, last)``: evaluate only the files of the ``last`` greatest
        values of the hive partition ``partition`` (``day=.../``), such as
        ``("day", 7)`` (see :class:`~daskloss.sources.files.PartitionWindow`).
    cache : StatisticsCache, optional
        Keep each file's statistics there, and reuse them: only files that
        are new or changed since the last run are read (files only).

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
    spec = EvaluationSpec.of(y_true, y_pred, weight, group_by=group_by, baseline=baseline)
    check_choice("nan_policy", nan_policy, NAN_POLICIES)
    if format is not None:
        check_choice("format", format, FILE_FORMATS)
    check_split_every(split_every)
    roots = ReadRoots.listing(read_roots) if read_roots is not None else None
    session = None
    if cache is not None:
        if not isinstance(source, (str, os.PathLike, list, tuple)):
            raise ConfigError("a cache keeps the statistics of files; the source is not files")
        session = cache.session(spec, nan_policy, dataset_name(source))
    plan = plan_source(
        source,
        spec.value_columns,
        keys=spec.group_by,
        format=format,
        storage_options=storage_options,
        read_roots=roots,
        window=None if window is None else PartitionWindow(*window),
        known=None if session is None else session.known,
    )
    _LOG.debug("computing the statistics of %d %s units", len(plan.units), plan.kind)
    started = time.perf_counter()
    outcome = None
    if session is None:
        lazy = tree_reduce(
            plan.units,
            functools.partial(unit_statistics, spec=spec, nan_policy=nan_policy),
            functools.partial(_merge_all, spec=spec),
            split_every=split_every,
        )
        (evaluation,) = dask.compute(lazy)
    else:
        lazy = tree_reduce(
            plan.units,
            functools.partial(file_statistics, spec=spec, nan_policy=nan_policy),
            merge_file_statistics,
            split_every=split_every,
        )
        (fresh,) = dask.compute(lazy)
        evaluation, outcome = session.complete(fresh)
    overall = evaluation.overall()
    _LOG.debug(
        "statistics of %d rows computed in %.3f s (%d slices)",
        overall.count,
        time.perf_counter() - started,
        len(evaluation.slices),
    )
    _check_result(overall.predictions[0])
    return EvaluationResult.of(evaluation, plan, outcome)


def unit_statistics(unit: Unit, spec: EvaluationSpec, nan_policy: NanPolicy) -> EvaluationStats:
    """The statistics of one work unit's rows (one task)."""
    return EvaluationStats.from_chunks(unit.chunks(), spec, nan_policy=nan_policy)


def _merge_all(parts: list[EvaluationStats], spec: EvaluationSpec) -> EvaluationStats:
    return EvaluationStats.merge_all(parts) if parts else EvaluationStats.empty(spec)


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
