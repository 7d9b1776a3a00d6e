"""evaluate(): a source's work units, their statistics, one merge, the metrics.

:func:`evaluate` strings the layers together in the one direction data
flows: :func:`~daskloss.sources.plan_source` cuts the source into work units;
each unit's chunks become :class:`~daskloss.stats.EvaluationStats` (per
slice, per prediction) in a task of its own; :func:`~daskloss.reduce.tree_reduce`
merges them; the formulas (:mod:`daskloss.formulas`) round the metrics once. It never creates a
Client: the computation runs on whichever Dask scheduler is active.

With a cache (:mod:`daskloss.cache`), the units compute each file's statistics
(and the shape of its errors) apart and the merge tree gathers them by file;
the files whose statistics the cache holds are not read, and one exact merge
joins the cached and the fresh.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dask
import dask.local
import dask.threaded

from daskloss.cache import (
    CacheOutcome,
    StatisticsCache,
    dataset_name,
    file_statistics,
    merge_file_statistics,
)
from daskloss.chunks import Chunk
from daskloss.distribution import QUANTILE_LEVELS, Histogram
from daskloss.errors import ConfigError, DataError, EmptyDatasetError
from daskloss.formulas import compare
from daskloss.formulas import intervals as metric_intervals
from daskloss.losses import LossesTarget, check_loss_columns
from daskloss.names import FILE_FORMATS, NAN_POLICIES, FileFormat, NanPolicy, check_choice
from daskloss.policy import ReadRoots
from daskloss.reduce import check_split_every, tree_reduce
from daskloss.roles import EvaluationSpec
from daskloss.shape import ShapeAccumulator, ShapeSpec, ShapeStats
from daskloss.sources import Plan, Source, SourceKind, Unit, plan_source
from daskloss.sources.files import PartitionWindow
from daskloss.sources.plan import FileEntry
from daskloss.stats import ErrorStats, EvaluationStats, SliceStats
from daskloss.warmup import warm_in_background
from daskloss.worst import WorstRows

__all__ = ["EvaluationResult", "SliceResult", "UnitResult", "evaluate"]

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
    intervals : dict
        Each prediction's standard errors and 95% intervals of MSE, RMSE, MAE
        and bias (see :func:`daskloss.formulas.intervals`); empty unless the
        moments were summed (``intervals=True``, or several predictions).
    """

    key: dict[str, Any]
    count: int
    skipped_rows: int
    predictions: dict[str, dict[str, float | int]]
    comparisons: dict[str, dict[str, dict[str, Any]]]
    intervals: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

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
        bounds = {}
        if spec.moments:
            bounds = {
                name: metric_intervals(part)
                for name, part in zip(spec.y_pred, stats.predictions, strict=True)
            }
        first = stats.predictions[0]
        return cls(key, first.count, first.skipped_rows, predictions, comparisons, bounds)


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
    shape : ShapeStats or None
        Each prediction's residual histogram and worst rows, when asked for
        (``histogram=True``, ``worst_k > 0``); see :meth:`quantiles`,
        :meth:`se_share` and :meth:`worst`.
    losses : dict or None
        With ``losses``: where the per-row losses were written, ``{path,
        files, rows, columns}``.
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
    shape: ShapeStats | None = None
    losses: dict[str, Any] | None = None

    @classmethod
    def of(
        cls,
        evaluation: EvaluationStats,
        plan: Plan,
        cache: CacheOutcome | None = None,
        shape: ShapeStats | None = None,
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
            shape=shape,
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

    def histogram(self, prediction: str | None = None) -> Histogram | None:
        """A prediction's residual histogram (the first's by default); None if not gathered."""
        return self._shape_of(prediction).histogram

    def quantiles(self, prediction: str | None = None) -> dict[str, dict[str, float]] | None:
        """Quantiles of ``|d|``: ``{"abs_error": {"0.5": ..., "0.9": ..., ...}}`` (within 1/257).

        None without a histogram. See :mod:`daskloss.distribution`.
        """
        histogram = self.histogram(prediction)
        if histogram is None:
            return None
        return {"abs_error": histogram.quantiles(QUANTILE_LEVELS)}

    def se_share(self, prediction: str | None = None, top: str = "0.01") -> dict[str, float] | None:
        """The share of the squared error from the ``top`` fraction of rows by ``|d|``, bounded.

        None without a histogram. See :meth:`daskloss.distribution.Histogram.se_share`.
        """
        histogram = self.histogram(prediction)
        if histogram is None or self.evaluation is None:
            return None
        index = self._prediction_index(prediction)
        squared = self.evaluation.overall().predictions[index].squared_error
        return histogram.se_share(squared, top)

    def worst(
        self, prediction: str | None = None, key: dict[str, Any] | None = None
    ) -> list[dict[str, Any]] | None:
        """The worst rows, largest ``|error|`` first: overall, or of the slice ``key``.

        Each row holds the id columns, ``y_true``, ``y_pred`` and ``error``
        (``y_pred - y_true``), and ``weight`` when weighted. None unless
        ``worst_k > 0``. See :mod:`daskloss.worst` for the order of ties.
        """
        found = self._shape_of(prediction).worst
        if found is None:
            return None
        if key is None:
            return WorstRows(found.k, found.table, (), found.ids, found.weighted).reduced().rows()
        spec = self.evaluation.spec if self.evaluation is not None else None
        names = spec.group_by if spec is not None else ()
        return found.rows(tuple(key[name] for name in names))

    def _prediction_index(self, prediction: str | None) -> int:
        if prediction is None or self.evaluation is None:
            return 0
        return self.evaluation.spec.y_pred.index(prediction)

    def _shape_of(self, prediction: str | None) -> Any:
        from daskloss.shape import PredictionShape

        if self.shape is None:
            return PredictionShape()
        return self.shape.predictions[self._prediction_index(prediction)]


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
    intervals: bool = False,
    histogram: bool = False,
    worst_k: int = 0,
    id_columns: str | Sequence[str] | None = None,
    losses: str | None = None,
    losses_storage_options: Mapping[str, Any] | None = None,
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
        Keep each file's statistics (and histogram and worst rows) there, and
        reuse them: only files that are new or changed since the last run are
        read (files only; not with ``losses``).
    intervals : bool
        Also sum the moments behind each metric's standard error and 95%
        interval (``result.overall.intervals``); always there with several
        predictions.
    histogram : bool
        Also count each prediction's residuals in fixed bins: quantiles of
        ``|d|`` and the share of SE of the top 1% of rows
        (:meth:`EvaluationResult.quantiles`, :meth:`EvaluationResult.se_share`).
    worst_k : int
        Keep each prediction's ``worst_k`` rows of largest ``|d|``, overall and
        per slice (:meth:`EvaluationResult.worst`).
    id_columns : str or sequence of str, optional
        Columns shown with each worst row (any plain type), and written with
        the per-row losses.
    losses : str, optional
        A directory (local or fsspec URL) to write the per-row losses to, a
        Parquet file per input file, by the workers (see :mod:`daskloss.losses`);
        ``losses_storage_options`` are its fsspec options.

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
    spec, shape = evaluation_specs(
        y_true,
        y_pred,
        weight,
        group_by=group_by,
        baseline=baseline,
        intervals=intervals,
        histogram=histogram,
        worst_k=worst_k,
        id_columns=id_columns,
        losses=losses is not None,
    )
    check_choice("nan_policy", nan_policy, NAN_POLICIES)
    if format is not None:
        check_choice("format", format, FILE_FORMATS)
    check_split_every(split_every)
    roots = ReadRoots.listing(read_roots) if read_roots is not None else None
    session = None
    if cache is not None:
        if not isinstance(source, (str, os.PathLike, list, tuple)):
            raise ConfigError("a cache keeps the statistics of files; the source is not files")
        if losses is not None:
            raise ConfigError(
                "per-row losses need every file read, and a cache skips the unchanged ones: "
                "leave output.losses unset, or run without [cache]"
            )
        session = cache.session(spec, nan_policy, dataset_name(source), shape)
    here = _tasks_run_here()
    if here:  # compile the kernel while the files are listed and planned
        warm_in_background(weighted=spec.weight is not None)
    plan = plan_source(
        source,
        spec.value_columns,
        keys=spec.group_by,
        format=format,
        storage_options=storage_options,
        read_roots=roots,
        window=None if window is None else PartitionWindow(*window),
        known=None if session is None else session.known,
        ids=shape.id_columns if shape.worst_k or losses is not None else (),
        threads=None if here else _cluster_threads(),
    )
    target = None
    if losses is not None:
        target = LossesTarget.plan(
            losses,
            spec,
            shape.id_columns,
            files=plan.files,
            storage_options=losses_storage_options,
        )
        _check_output_names(plan, target)
    if session is not None:
        per_unit = functools.partial(file_statistics, spec=spec, nan_policy=nan_policy, shape=shape)
        merge: Any = merge_file_statistics
    elif shape.active or target is not None:
        per_unit = functools.partial(
            unit_results, spec=spec, nan_policy=nan_policy, shape=shape, losses=target
        )
        merge = functools.partial(_merge_results, spec=spec)
    else:
        per_unit = functools.partial(unit_statistics, spec=spec, nan_policy=nan_policy)
        merge = functools.partial(_merge_all, spec=spec)
    lazy = tree_reduce(
        plan.units,
        per_unit,
        merge,
        split_every=split_every,
        traverse=plan.kind == "dask",  # only a Dask DataFrame's units hold collections
    )
    _LOG.debug("computing the statistics of %d %s units", len(plan.units), plan.kind)
    started = time.perf_counter()
    try:
        if target is not None:
            target.open()
        (computed,) = dask.compute(lazy)
    except BaseException:
        if target is not None:
            target.abort()
        raise
    outcome, shaped = None, None
    if session is not None:
        evaluation, shaped, outcome = session.complete(computed)
    elif isinstance(computed, UnitResult):
        evaluation, shaped = computed.stats, computed.shape
    else:
        evaluation = computed
    overall = evaluation.overall()
    _LOG.debug(
        "statistics of %d rows computed in %.3f s (%d slices)",
        overall.count,
        time.perf_counter() - started,
        len(evaluation.slices),
    )
    try:
        _check_result(overall.predictions[0])
    except BaseException:
        if target is not None:
            target.abort()
        raise
    written = None
    if target is not None:
        written = target.commit(computed.losses)
    return replace(EvaluationResult.of(evaluation, plan, outcome, shaped), losses=written)


def evaluation_specs(
    y_true: str,
    y_pred: str | Sequence[str],
    weight: str | None,
    *,
    group_by: str | Sequence[str] | None = None,
    baseline: str | None = None,
    intervals: bool = False,
    histogram: bool = False,
    worst_k: int = 0,
    id_columns: str | Sequence[str] | None = None,
    losses: bool = False,
) -> tuple[EvaluationSpec, ShapeSpec]:
    """What :func:`evaluate` computes, checked: the column roles and the shape of the errors.

    The job calls it before it starts or reaches a cluster, so that a bad
    setting is a config error however the cluster fares.

    Raises
    ------
    ConfigError
        A bad argument (see :func:`evaluate`).
    """
    spec = EvaluationSpec.of(
        y_true, y_pred, weight, group_by=group_by, baseline=baseline, moments=intervals
    )
    shape = ShapeSpec.of(spec, histogram=histogram, worst_k=worst_k, id_columns=id_columns)
    if losses:
        check_loss_columns(spec, shape.id_columns)
    return spec, shape


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


def unit_statistics(unit: Unit, spec: EvaluationSpec, nan_policy: NanPolicy) -> EvaluationStats:
    """The statistics of one work unit's rows (one task)."""
    return EvaluationStats.from_chunks(unit.chunks(), spec, nan_policy=nan_policy)


@dataclass(frozen=True)
class UnitResult:
    """What one unit's task gives when more than the exact sums is gathered.

    ``losses`` lists the per-row loss files written: ``(name, rows)``.
    """

    stats: EvaluationStats
    shape: ShapeStats | None = None
    losses: tuple[tuple[str, int], ...] = ()


def unit_results(
    unit: Unit,
    spec: EvaluationSpec,
    nan_policy: NanPolicy,
    shape: ShapeSpec,
    losses: LossesTarget | None = None,
) -> UnitResult:
    """One work unit's statistics, histograms and worst rows; its per-row losses written."""
    gathered = ShapeAccumulator(spec, shape) if shape.active else None
    writer = losses.writer(output_names(unit, losses)) if losses is not None else None

    def observe(chunk: Chunk, codes: Any, keys: Any) -> None:
        if gathered is not None:
            gathered.add(chunk, codes, keys)
        if writer is not None:
            writer.add(chunk, spec)

    try:
        stats = EvaluationStats.from_chunks(
            unit.chunks(), spec, nan_policy=nan_policy, observe=observe
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return UnitResult(
        stats,
        gathered.result() if gathered is not None else None,
        tuple(writer.close()) if writer is not None else (),
    )


def output_names(unit: Unit, target: LossesTarget) -> dict[str, str]:
    """The per-row loss file of each origin of a unit's rows (a file, piece or partition)."""
    pieces = getattr(unit, "pieces", None)
    if pieces is not None:
        return {str(piece): target.output_name(piece.path, piece.row_groups) for piece in pieces}
    label = getattr(unit, "label", None)
    if label is not None:
        return {label: f"part-{getattr(unit, 'index', 0):05d}.parquet"}
    return {}


def _check_output_names(plan: Plan, target: LossesTarget) -> None:
    """Two inputs must not write the same loss file."""
    seen: dict[str, str] = {}
    for unit in plan.units:
        for origin, name in output_names(unit, target).items():
            if seen.setdefault(name, origin) != origin:
                raise ConfigError(
                    f"the per-row losses of {seen[name]} and of {origin} would both be written "
                    f"to {name}; rename one of the input files"
                )


def _merge_all(parts: list[EvaluationStats], spec: EvaluationSpec) -> EvaluationStats:
    return EvaluationStats.merge_all(parts) if parts else EvaluationStats.empty(spec)


def _merge_results(parts: list[UnitResult], spec: EvaluationSpec) -> UnitResult:
    if not parts:
        return UnitResult(EvaluationStats.empty(spec))
    shapes = [part.shape for part in parts if part.shape is not None]
    return UnitResult(
        EvaluationStats.merge_all([part.stats for part in parts]),
        ShapeStats.merge_all(shapes) if shapes else None,
        tuple(written for part in parts for written in part.losses),
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
