"""The evaluation job: settings in, report out.

:func:`run_job` strings the modules together in the one direction data
flows: check that the report can be written, and may be (before any work),
start or connect to the scheduler, evaluate, build the report and write it.
It knows nothing of command lines or exit codes (see :mod:`daskloss.cli`).

A scheduled run adds to that: output paths named by the run's date and id
(:mod:`daskloss.runs`), the statistics artifact (``output.stats``,
:mod:`daskloss.artifacts`), the cache of an incremental run
(:mod:`daskloss.cache`) and the quality gates (:mod:`daskloss.gates`), whose
verdicts the report records. :func:`merge_statistics` and
:func:`report_statistics` are the ``merge`` and ``report`` commands.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import CancelledError
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from distributed import KilledWorker
from distributed.comm import CommClosedError

from daskloss.artifacts import StatisticsArtifact, read_artifact, write_artifact
from daskloss.cache import StatisticsCache
from daskloss.cluster import connect
from daskloss.config import CacheSettings, Settings, absolute_path, parse_settings, redacted
from daskloss.errors import ConfigError
from daskloss.evaluate import EvaluationResult, evaluate, evaluation_specs
from daskloss.gates import BaselineFile, check_gates, load_baselines
from daskloss.html import render_html
from daskloss.losses import check_losses_path
from daskloss.policy import ReadRoots, redact_url
from daskloss.progress import track_progress
from daskloss.report import build_report, check_output_path, write_document, write_report
from daskloss.runs import RunInfo, inputs_section
from daskloss.sources.plan import Plan
from daskloss.warmup import warm_workers

__all__ = ["merge_statistics", "report_statistics", "run_job"]

_LOG = logging.getLogger(__name__)
#: ``evaluation.worst_k`` when the config leaves it unset (and no cache is used).
DEFAULT_WORST_K = 10
#: What Dask raises when the cluster fails under a computation: the scheduler
#: connection is lost (futures cancelled), or workers keep dying on a task.
_CLUSTER_FAILURES: tuple[type[BaseException], ...] = (
    CancelledError,
    KilledWorker,
    CommClosedError,
)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def run_job(
    settings: Settings, *, interactive: bool = False, run: RunInfo | None = None
) -> dict[str, Any]:
    """Evaluate the dataset ``settings`` name; write and return the report.

    Parameters
    ----------
    settings : Settings
        Validated settings (see :func:`daskloss.config.load_settings`).
    interactive : bool
        Draw a progress bar on stderr instead of logging progress lines.
    run : RunInfo, optional
        The run's date and id (``{date}``, ``{run_id}`` in output paths);
        today's and the start time by default.

    Returns
    -------
    dict
        The report (see :mod:`daskloss.report`).

    Raises
    ------
    DasklossError
        Bad settings (:class:`ConfigError`) or bad data (:class:`DataError`,
        :class:`ReadError`).
    ConnectionError
        The scheduler cannot be reached or has no usable worker.
    """
    _LOG.info("settings: %s", redacted(settings))
    run = run or RunInfo.of()
    output = settings.output
    roots = ReadRoots.from_environ()
    report_path = None if output.path is None else run.expand(output.path)
    stats_path = None if output.stats is None else run.expand(output.stats, "output.stats")
    html_path = None if output.html is None else run.expand(output.html, "output.html")
    losses_path = None if output.losses is None else run.expand(output.losses, "output.losses")
    if report_path is not None:
        check_output_path(report_path, settings.dataset.path)
    if stats_path is not None:
        check_output_path(stats_path, settings.dataset.path, what="statistics")
    if html_path is not None:
        check_output_path(html_path, settings.dataset.path, what="HTML report")
    if losses_path is not None:
        check_losses_path(losses_path, settings.dataset.path)
        _check_outside_losses(losses_path, [report_path, stats_path, html_path])
    cache = _cache(settings.cache, roots)
    if cache is not None and losses_path is not None:
        raise ConfigError(
            "output.losses cannot be written with [cache]: per-row losses need every file "
            "read, and a cached run reads only new or changed files; remove one of them"
        )
    baselines = load_baselines(settings.gates, output.storage_options, roots)
    window = settings.dataset.window
    histogram, worst_k = shape_defaults(
        settings.evaluation.histogram, settings.evaluation.worst_k, cache=cache
    )
    # the report records the values used, not "default"
    evaluation = replace(settings.evaluation, histogram=histogram, worst_k=worst_k)
    settings = replace(settings, evaluation=evaluation)
    evaluation_specs(
        settings.columns.y_true,
        settings.columns.y_pred,
        settings.columns.weight,
        group_by=evaluation.group_by,
        baseline=evaluation.baseline,
        intervals=evaluation.intervals,
        histogram=histogram,
        worst_k=worst_k,
        id_columns=evaluation.id_columns,
        losses=losses_path is not None,
    )
    weighted = settings.columns.weight is not None
    started = datetime.now(UTC)
    clock = time.perf_counter()
    with (
        connect(settings.cluster) as connection,
        track_progress(connection, interactive=interactive),
    ):
        warming: list[Any] = []
        try:
            if connection.client is not None:  # workers compile while the files are planned
                warming = warm_workers(connection.client, weighted)
            result = evaluate(
                settings.dataset.path,
                settings.columns.y_true,
                settings.columns.y_pred,
                settings.columns.weight,
                group_by=settings.evaluation.group_by,
                baseline=settings.evaluation.baseline,
                nan_policy=settings.evaluation.nan_policy,
                format=settings.dataset.format,
                storage_options=settings.dataset.storage_options,
                split_every=settings.evaluation.split_every,
                read_roots=roots.roots if roots.roots else None,
                window=None if window is None else (window["partition"], window["last"]),
                cache=cache,
                intervals=evaluation.intervals,
                histogram=evaluation.histogram,
                worst_k=evaluation.worst_k,
                id_columns=evaluation.id_columns,
                losses=losses_path,
                losses_storage_options=output.storage_options,
            )
        except _CLUSTER_FAILURES as exc:
            raise ConnectionError(
                f"lost the Dask cluster ({connection.scheduler}) during the run: "
                f"{type(exc).__name__}: {_first_line(exc)}; no report was written. Tasks of a "
                "dead worker are retried on others (distributed.scheduler.allowed-failures); "
                "re-run the job once the cluster is healthy"
            ) from exc
        finally:
            for future in warming:
                future.release()
    duration = time.perf_counter() - clock
    _LOG.info(
        "evaluated %d rows in %.2f s on %s", result.stats.count, duration, connection.scheduler
    )
    report = build_report(
        result,
        settings,
        scheduler=connection.scheduler,
        started=started,
        finished=datetime.now(UTC),
        duration=duration,
    )
    report.update(
        _run_sections(result, settings, run, (report_path, stats_path, html_path), baselines)
    )
    evaluated = [entry.path for entry in result.listing] or list(result.files)
    if stats_path is not None:
        _check_not_read(stats_path, evaluated)
        artifact = StatisticsArtifact.of(result, settings.evaluation.nan_policy, redacted(settings))
        write_artifact(artifact, stats_path, output.storage_options)
        _LOG.info("statistics written to %s", redact_url(stats_path))
    if report_path is not None:
        _check_not_read(report_path, evaluated)
        write_report(report, report_path, output.storage_options)
        _LOG.info("report written to %s", redact_url(report_path))
    if html_path is not None:
        _check_not_read(html_path, evaluated)
        page = render_html(report)
        write_document(page, html_path, output.storage_options, "HTML report", "output.html")
        _LOG.info("HTML report written to %s", redact_url(html_path))
    return report


def merge_statistics(
    paths: Sequence[str], output: str, *, run: RunInfo | None = None
) -> StatisticsArtifact:
    """Merge the statistics artifacts at ``paths`` into one, written to ``output``.

    URLs are read and written with the storage's default credentials (the
    environment, credential files).

    Raises
    ------
    ConfigError
        ``output`` cannot be written.
    ReadError, DataError
        An artifact cannot be read, or the artifacts cannot be merged: their
        column roles, slices, baselines or NaN policies differ, or two hold
        the same file.
    """
    target = absolute_path((run or RunInfo.of()).expand(output, "--output"))
    check_output_path(target, what="statistics")
    merged = StatisticsArtifact.merge_all(
        [read_artifact(path) for path in paths], [redact_url(path) for path in paths]
    )
    _check_outside_datasets(target, merged, "statistics")
    write_artifact(merged, target)
    _LOG.info("merged %d statistics into %s", len(paths), redact_url(target))
    return merged


def report_statistics(
    path: str, *, output: str | None = None, run: RunInfo | None = None
) -> dict[str, Any]:
    """The report of a statistics artifact, as the run that wrote it would report it.

    The metrics, slices, predictions and comparisons are those of one run over
    every row the artifact covers; so are the quantiles, histogram, share of SE
    and worst rows when the artifact holds the shape of the errors (null when
    it does not: a version 1 artifact, or a merge of runs that gathered it
    otherwise). The settings that shape the report (``evaluation.metrics``,
    ``min_slice_count``, the gates) are those stored in the artifact, with
    ``evaluation.histogram`` and ``worst_k`` saying what it holds. The report
    is written to ``output`` if given.

    Raises
    ------
    ReadError, DataError
        The artifact (or a gate's baseline) cannot be read.
    ConfigError
        ``output`` cannot be written.
    """
    run = run or RunInfo.of()
    target = None if output is None else absolute_path(run.expand(output, "--output"))
    if target is not None:
        check_output_path(target)
    started, clock = datetime.now(UTC), time.perf_counter()
    artifact = read_artifact(path)
    if target is not None:
        _check_outside_datasets(target, artifact, "report")
    settings = _artifact_settings(artifact, target)
    baselines = load_baselines(settings.gates, None, ReadRoots.from_environ())
    plan = Plan(units=(), kind="files", format=artifact.format, listing=artifact.files)
    result = replace(
        EvaluationResult.of(artifact.evaluation, plan, shape=artifact.shape),
        npartitions=artifact.partitions,
    )
    report = build_report(
        result,
        settings,
        scheduler="none (from statistics)",
        started=started,
        finished=datetime.now(UTC),
        duration=time.perf_counter() - clock,
    )
    report.update(_run_sections(result, settings, run, (target, None, None), baselines))
    report["outputs"]["statistics"] = redact_url(path)
    if target is not None:
        write_report(report, target)
    return report


def _check_outside_datasets(target: str, artifact: StatisticsArtifact, what: str) -> None:
    """Refuse to write where the datasets the artifact covers would list it as data."""
    for dataset in artifact.datasets:
        check_output_path(target, dataset, what=what)


def shape_defaults(
    histogram: bool | None, worst_k: int | None, *, cache: StatisticsCache | None
) -> tuple[bool, int]:
    """``evaluation.histogram`` and ``evaluation.worst_k``, their defaults filled in.

    Both are on by default (a histogram, the 10 worst rows), and off by
    default with a cache: the cache would then keep each file's histogram and
    worst rows, which over many small files costs more than reading them again
    (see the README's "Incremental runs"). Set explicitly, they are kept.
    """
    if histogram is None:
        histogram = cache is None
    if worst_k is None:
        worst_k = DEFAULT_WORST_K if cache is None else 0
    return histogram, worst_k


def _check_outside_losses(losses: str, paths: Sequence[str | None]) -> None:
    """The other outputs must not lie in the losses directory, which is replaced whole."""
    root = losses.rstrip("/") + "/"
    for path in paths:
        if path is not None and (path + "/").startswith(root):
            raise ConfigError(
                f"output path {redact_url(path)} lies in the losses directory "
                f"{redact_url(losses)}, which each run replaces whole; write it elsewhere"
            )


def _cache(settings: CacheSettings, roots: ReadRoots) -> StatisticsCache | None:
    if settings.path is None:
        return None
    roots.check_path(settings.path, key="cache.path")
    return StatisticsCache(settings.path, settings.storage_options)


def _run_sections(
    result: EvaluationResult,
    settings: Settings,
    run: RunInfo,
    outputs: tuple[str | None, str | None, str | None],
    baselines: dict[str, BaselineFile],
) -> dict[str, Any]:
    """The report's keys of a scheduled run: the run, its inputs and outputs, cache, gates.

    ``outputs`` are the paths of the report, the statistics and the HTML page.
    """
    sections: dict[str, Any] = {
        "run": run.to_json(),
        "inputs": inputs_section(result.listing, result.files),
        "outputs": {
            name: None if path is None else redact_url(path)
            for name, path in zip(("report", "statistics", "html"), outputs, strict=True)
        },
    }
    window = settings.dataset.window
    if window is not None:
        sections["inputs"]["window"] = dict(window)
    if result.cache is not None:
        sections["cache"] = asdict(result.cache)
    if settings.gates:
        assert result.evaluation is not None
        sections["gates"] = check_gates(settings.gates, result.evaluation, baselines)
    return sections


def _artifact_settings(artifact: StatisticsArtifact, output: str | None) -> Settings:
    """The settings an artifact's report is made with: the run's, writing only ``output``.

    The column roles, slices, baseline and NaN policy are the statistics'
    own, and the histogram and ``worst_k`` those of the shape they hold (off
    without one); the dataset's path names the datasets they cover.
    """
    spec = artifact.evaluation.spec
    saved = artifact.settings or {}
    stored: dict[str, Any] = {
        name: dict(table) for name, table in saved.items() if isinstance(table, Mapping)
    }
    y_pred = spec.y_pred[0] if len(spec.y_pred) == 1 else list(spec.y_pred)
    stored["columns"] = {"y_true": spec.y_true, "y_pred": y_pred, "weight": spec.weight}
    stored["evaluation"] = {
        **stored.get("evaluation", {}),
        "group_by": list(spec.group_by) or None,
        "baseline": spec.baseline,
        "nan_policy": artifact.nan_policy,
        **_shape_settings(artifact),
    }
    datasets = ", ".join(artifact.datasets) or "(statistics)"
    stored["dataset"] = {"path": datasets}
    stored["output"] = {
        **stored.get("output", {}),
        "path": output,
        **dict.fromkeys(("stats", "html", "losses")),
    }
    stored["gates"] = list(saved.get("gates") or [])
    stored.pop("cache", None)
    settings = parse_settings(stored, source="the statistics' settings")
    return replace(settings, dataset=replace(settings.dataset, path=datasets))


def _shape_settings(artifact: StatisticsArtifact) -> dict[str, Any]:
    """``evaluation.histogram`` and ``worst_k`` as the artifact's shape was gathered."""
    if artifact.shape is None:
        return {"histogram": False, "worst_k": 0}
    gathered = artifact.shape.settings()
    return {"histogram": gathered.histogram, "worst_k": gathered.worst_k}


def _check_not_read(output: str, files: Sequence[str]) -> None:
    """Refuse to write the report over a file the evaluation read.

    :func:`check_output_path` refused, before the run, a report path the
    dataset's path names; this catches one the listing reached another way
    (a directory linked into the dataset), by comparing the files of the
    same name.
    """
    if "://" in output:
        return
    name = os.path.basename(output)
    real = os.path.realpath(output)
    same = [f for f in files if os.path.basename(f) == name and os.path.realpath(f) == real]
    if same:
        raise ConfigError(
            f"output path {output} is the data file {same[0]} of this run; no report was "
            "written: write the report outside the dataset"
        )
