"""The job's report: a versioned JSON document, and its atomic writes.

The table for people is made from the report by :mod:`daskloss.table`.

Report format, version 3 (a JSON object; keys in this order, those marked
"with ..." absent when that does not hold)::

    report_version    3
    metrics           {name: value} for the configured metrics (see below), of the
                      first prediction over every row
    count             rows evaluated
    weight_sum        total weight (float)
    skipped_rows      rows left out under nan_policy = "skip"
    slices            with group_by: [{key, count, skipped_rows, metrics}] of the first
                      prediction, in key order (nulls last); key is {column: value}
    other_slices      with group_by: {slices, count, skipped_rows, metrics} of the slices
                      smaller than min_slice_count, folded together (null when none are)
    predictions       with several predictions: {column: {metrics, slices, other_slices}}
    comparisons       with several predictions: [{prediction, baseline, metrics, slices}],
                      metrics {mse, mae, rmse} each {difference, stderr, low, high,
                      excludes_zero, better}; slices [{key, count, metrics}]
    intervals         {mse, rmse, mae, bias} each {stderr, low, high} (95%) of the first
                      prediction, or null without moments (evaluation.intervals = false);
                      all four whatever evaluation.metrics names
    quantiles         {abs_error: {"0.5", "0.9", "0.99", "0.999"}}: quantiles of |d| within
                      1/257 relative, or null without the histogram
    histogram         {mantissa_bits, quantile_relative_error, bins_per_binade, error,
                      abs_error}: bins [{low, high, count, weight}] of d and of |d|, 4 per
                      binade, exact counts; or null
    se_share          {top, share, low, high}: the share of se of the rows of largest |d|
                      holding the top 1% of the weight, within [low, high]; or null
    worst             [{<id columns>..., y_true, y_pred, error (, weight)}]: the worst_k
                      rows of largest |error| = |y_pred - y_true|, largest first; or null
    losses            {path, files, rows, columns} of the per-row losses written, or null
    dataset           {path, format, files, partitions}
    columns           {y_true, y_pred, weight, group_by, id_columns}
    nan_policy        "error" or "skip"
    scheduler         "threads", "local-cluster" or the scheduler address
    started_at        UTC ISO-8601, e.g. "2025-01-31T12:00:00.000Z"
    finished_at       UTC ISO-8601
    duration_seconds  wall time of the evaluation, starting or connecting to the cluster included
    versions          {daskloss, dask, distributed, python}
    config_digest     "sha256:..." of the canonical resolved settings (secrets redacted)
    settings          the resolved settings, secrets redacted

The job (:mod:`daskloss.job`) appends the keys of a scheduled run::

    run               {date, id}: the run's date and id (--run-date, --run-id)
    inputs            {files, bytes, digest, read: {files, bytes, digest}[, window]}: the
                      files evaluated, the sha256 digest of their paths, sizes and
                      versions, and the same of those read (fewer with a cache)
    outputs           {report, statistics, html}: where they were written (or null)
    cache             with [cache]: {path, files_reused, bytes_reused, files_read,
                      bytes_read, entries_dropped, stored, error}
    gates             with [[gates]]: {passed, failed, results: [{name, metric, prediction,
                      slice, value, baseline, change, relative_change, interval, bounds,
                      verdict, reasons}]}

A metric's value is a JSON number, or ``null`` for a metric that is
undefined (R² of a constant target, a mean over zero weight), or the string
``"Infinity"`` or ``"-Infinity"`` for one beyond the float64 range (the sum of
squares of residuals near 1e308): every standard JSON parser tells the three
apart, and ``float(value)`` reads the number and both strings. Version 1 wrote
null for both undefined and infinite metrics. Floats are written with
Python's shortest round-trip ``repr``, so a reader parsing them as float64
gets back exactly the computed values. A slice key's value is a string,
number, boolean or null as the column holds it; a date or time is its
ISO-8601 text. Version 2 had no slices, predictions or comparisons.

With slices, each entry of ``slices`` (and ``other_slices``) also holds its
``intervals`` and its ``worst`` rows; each entry of ``predictions`` holds that
prediction's ``intervals``, ``quantiles``, ``histogram``, ``se_share`` and
``worst``. These keys were added to version 3 without changing the meaning
of any other key, so the version stays 3; a version 3 report written before
them lacks them.

Writes are atomic for a local path: the report is written to a temporary
file in the destination directory (created then, with the mode the umask
gives), flushed to disk, then renamed over the destination with
:func:`os.replace`; a reader sees the old report or the new one, never a
part, and a failure leaves the old one intact and no temporary file behind.
Only a regular file is ever replaced: never a device, FIFO or link. For an
fsspec URL the complete document is sent in one
:meth:`~fsspec.AbstractFileSystem.pipe_file` call: on object stores (S3, GCS,
Azure) an object is replaced whole when the upload completes, so readers
never see a part; on other remote filesystems the guarantee is that of the
filesystem.
"""

from __future__ import annotations

import json
import math
import os
import platform
import stat
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from importlib.metadata import version
from typing import Any

import fsspec

import daskloss
from daskloss.config import Settings, redacted, settings_digest
from daskloss.distribution import MANTISSA_BITS, QUANTILE_RELATIVE_ERROR, Histogram
from daskloss.errors import ConfigError
from daskloss.evaluate import EvaluationResult
from daskloss.formulas import compare, intervals
from daskloss.policy import file_kind, redact_text, redact_url
from daskloss.roles import EvaluationSpec
from daskloss.sources.files import would_list
from daskloss.stats import EvaluationStats, SliceStats
from daskloss.storage import write_bytes

__all__ = [
    "REPORT_VERSION",
    "build_report",
    "check_output_path",
    "render_json",
    "write_document",
    "write_report",
]

REPORT_VERSION = 3


def build_report(
    result: EvaluationResult,
    settings: Settings,
    *,
    scheduler: str,
    started: datetime,
    finished: datetime,
    duration: float,
) -> dict[str, Any]:
    """The report of one evaluation (see the module docstring for the format).

    ``started`` and ``finished`` must be timezone-aware UTC datetimes.
    """
    metrics = result.metrics
    chosen = settings.evaluation.metrics
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "metrics": _metrics(metrics, chosen),
        "count": metrics["count"],
        "weight_sum": _json_number(metrics["weight_sum"]),
        "skipped_rows": result.skipped_rows,
    }
    report.update(_breakdown(result, chosen, settings.evaluation.min_slice_count))
    report.update(_shape(result, 0))
    report["losses"] = result.losses
    report.update(
        {
            "dataset": {
                "path": redact_url(settings.dataset.path),
                "format": result.format,
                "files": len(result.listing or result.files),
                "partitions": result.npartitions,
            },
            "columns": {
                "y_true": settings.columns.y_true,
                "y_pred": _plain(settings.columns.y_pred),
                "weight": settings.columns.weight,
                "group_by": _plain(settings.evaluation.group_by),
                "id_columns": _plain(settings.evaluation.id_columns),
            },
            "nan_policy": settings.evaluation.nan_policy,
            "scheduler": scheduler,
            "started_at": _iso(started),
            "finished_at": _iso(finished),
            "duration_seconds": round(duration, 3),
            "versions": {
                "daskloss": daskloss.__version__,
                "dask": version("dask"),
                "distributed": version("distributed"),
                "python": platform.python_version(),
            },
            "config_digest": settings_digest(settings),
            "settings": redacted(settings),
        }
    )
    return report


def _breakdown(
    result: EvaluationResult, chosen: Sequence[str], min_count: int | None
) -> dict[str, Any]:
    """The report's slices, predictions and comparisons (none for a plain evaluation)."""
    evaluation = result.evaluation
    if evaluation is None:
        return {}
    spec = evaluation.spec
    kept, other, folded = _fold(evaluation, min_count)
    small_keys = [key for key in evaluation.rows if key not in dict(kept)]
    breakdown: dict[str, Any] = {}
    per_prediction = {}
    for index, name in enumerate(spec.y_pred):
        entry: dict[str, Any] = {"metrics": _metrics(result.overall.predictions[name], chosen)}
        if spec.group_by:
            entry["slices"] = [
                _slice_shape(
                    _slice_entry(key, stats, spec, index, chosen), result, index, stats, [key]
                )
                for key, stats in kept
            ]
            entry["other_slices"] = (
                None
                if other is None
                else _slice_shape(
                    _other_entry(other, folded, index, chosen), result, index, other, small_keys
                )
            )
        entry.update(_shape(result, index))
        per_prediction[name] = entry
    if spec.group_by:
        first = per_prediction[spec.y_pred[0]]
        breakdown["slices"] = first["slices"]
        breakdown["other_slices"] = first["other_slices"]
    if len(spec.y_pred) > 1:
        breakdown["predictions"] = per_prediction
        breakdown["comparisons"] = [
            {
                "prediction": spec.y_pred[j],
                "baseline": spec.y_pred[base],
                "metrics": _json_value(result.overall.comparisons[spec.y_pred[j]]),
                "slices": [
                    {
                        "key": _key(spec, key),
                        "count": stats.count,
                        "metrics": _json_value(
                            compare(stats.predictions[j], stats.predictions[base], stats.pairs[p])
                        ),
                    }
                    for key, stats in kept
                ]
                if spec.group_by
                else [],
            }
            for p, (j, base) in enumerate(spec.pairs)
        ]
    return breakdown


def _shape(result: EvaluationResult, index: int) -> dict[str, Any]:
    """A prediction's intervals, quantiles, histogram, share of SE and worst rows (or nulls)."""
    spec = result.evaluation.spec if result.evaluation is not None else None
    name = spec.y_pred[index] if spec is not None else None
    histogram = result.histogram(name)
    found = {
        "intervals": result.overall.intervals.get(name) if result.overall is not None else None,
        "quantiles": result.quantiles(name),
        "histogram": None if histogram is None else _histogram_entry(histogram),
        "se_share": result.se_share(name),
        "worst": result.worst(name),
    }
    return {key: _json_value(value) for key, value in found.items()}


#: Bins per binade of the report's histogram: 2**HISTOGRAM_BITS (the counts are exact).
HISTOGRAM_BITS = 2


def _histogram_entry(histogram: Histogram) -> dict[str, Any]:
    return {
        "mantissa_bits": MANTISSA_BITS,
        "quantile_relative_error": float(QUANTILE_RELATIVE_ERROR),
        "bins_per_binade": 2**HISTOGRAM_BITS,
        "error": histogram.bins(HISTOGRAM_BITS, signed=True),
        "abs_error": histogram.bins(HISTOGRAM_BITS, signed=False),
    }


def _slice_shape(
    entry: dict[str, Any],
    result: EvaluationResult,
    index: int,
    stats: SliceStats,
    keys: Sequence[tuple[Any, ...]],
) -> dict[str, Any]:
    """A slice entry with its intervals and worst rows (of the slices ``keys`` together)."""
    spec = result.evaluation.spec  # type: ignore[union-attr]
    entry["intervals"] = _json_value(intervals(stats.predictions[index])) if spec.moments else None
    worst = result.shape.predictions[index].worst if result.shape is not None else None
    entry["worst"] = None if worst is None else _json_value(worst.rows_of(keys))
    return entry


def _fold(
    evaluation: EvaluationStats, min_count: int | None
) -> tuple[list[tuple[tuple[Any, ...], SliceStats]], SliceStats | None, int]:
    """The slices kept, in key order, and the smaller ones folded together with their number."""
    kept, small = [], []
    for key in evaluation.sorted_keys():
        stats = evaluation.slices[key]
        (small if min_count is not None and stats.count < min_count else kept).append((key, stats))
    other = SliceStats.merge_all([stats for _, stats in small]) if small else None
    return kept, other, len(small)


def _slice_entry(
    key: tuple[Any, ...], stats: SliceStats, spec: EvaluationSpec, index: int, chosen: Sequence[str]
) -> dict[str, Any]:
    prediction = stats.predictions[index]
    return {
        "key": _key(spec, key),
        "count": prediction.count,
        "skipped_rows": prediction.skipped_rows,
        "metrics": _metrics(prediction.metrics(), chosen),
    }


def _other_entry(
    other: SliceStats, folded: int, index: int, chosen: Sequence[str]
) -> dict[str, Any]:
    prediction = other.predictions[index]
    return {
        "slices": folded,
        "count": prediction.count,
        "skipped_rows": prediction.skipped_rows,
        "metrics": _metrics(prediction.metrics(), chosen),
    }


def _key(spec: EvaluationSpec, key: tuple[Any, ...]) -> dict[str, Any]:
    """A slice key as JSON: ``{column: value}``, dates and times as ISO-8601 text."""
    return {
        name: value.isoformat() if isinstance(value, (date, datetime, time)) else value
        for name, value in zip(spec.group_by, key, strict=True)
    }


def _metrics(metrics: Mapping[str, float | int], chosen: Sequence[str]) -> dict[str, Any]:
    return {name: _json_number(metrics[name]) for name in chosen}


def _json_value(value: Any) -> Any:
    """Numbers made JSON-safe (see :func:`_json_number`) throughout nested dicts."""
    if isinstance(value, Mapping):
        return {name: _json_value(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, float):
        return _json_number(value)
    return value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _json_number(value: float | int) -> float | int | str | None:
    """JSON has no NaN or infinity: NaN (undefined) is null, infinities are strings."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_json(report: Mapping[str, Any]) -> str:
    """The report as strict JSON text (no NaN), indented, ending with a newline."""
    return json.dumps(report, indent=2, allow_nan=False) + "\n"


def check_output_path(path: str, dataset: str | None = None, what: str = "report") -> None:
    """Fail before any work if the report cannot be written to ``path``, or must not be.

    Nothing is created here: missing directories are made when the report is
    written, so a job that fails leaves none behind. Of a URL, the scheme is
    checked (that fsspec knows it and its package is installed). A local
    path must not name anything but a regular file (a device, a FIFO, a
    link such as ``/proc/self/fd/1`` or a directory is never replaced), and
    its nearest existing directory must be writable. With ``dataset`` (the
    dataset's path), the report must not be one of its files, nor where the
    next run would read it as data. ``what`` names the file in messages.

    Raises
    ------
    ConfigError
        Saying which of these is the matter.
    """
    if dataset is not None and would_list(dataset, path):
        raise ConfigError(
            f"output path {redact_url(path)} is a file of the dataset {redact_url(dataset)}, or "
            f"where the next run would read it as data; write the {what} outside the dataset (or "
            "under a name starting with '_' or '.', which listings skip)"
        )
    if "://" in path and not path.startswith("file://"):
        _check_protocol(path)
        return
    local = fsspec.core.url_to_fs(path)[1]
    try:
        mode = os.lstat(local).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # a file where a directory should be, a name too long...
        raise ConfigError(f"cannot write the {what} to {local}: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise ConfigError(
            f"output path {local} is a directory; give the {what} a file name "
            f"such as {_EXAMPLE_NAMES.get(what, 'report.json')}"
        )
    if mode is not None and not stat.S_ISREG(mode):
        raise ConfigError(
            f"output path {local} is {file_kind(mode)}, not a regular file; the {what} only "
            "ever replaces a regular file: give the path of one, or of a new file"
        )
    _check_directory(local, what)


def _check_directory(local: str, what: str = "report") -> None:
    """The nearest existing directory above ``local`` is one, and writable."""
    existing = os.path.dirname(os.path.abspath(local))
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(
            f"cannot create the {what}'s directory for {local}: {existing} is not a directory"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write the {what} to {local}: directory {existing} is not writable"
        )


#: A file name to suggest for each kind of output.
_EXAMPLE_NAMES = {"statistics": "statistics.json.gz", "HTML report": "report.html"}


def _check_protocol(url: str) -> None:
    protocol = url.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"cannot write the report to {redact_url(url)}: {exc}") from None


def write_document(
    text: str,
    path: str,
    storage_options: Mapping[str, Any] | None = None,
    what: str = "report",
    setting: str = "output.path",
) -> None:
    """Write ``text`` to a local path or fsspec URL atomically, as :func:`write_report` does.

    Raises
    ------
    ConfigError
        The document cannot be written there.
    """
    try:
        write_bytes(path, text.encode("utf-8"), storage_options)
    except Exception as exc:  # an object store's own errors too (botocore's, aiohttp's)
        reason = redact_text(" ".join(f"{type(exc).__name__}: {exc}".split()))
        raise ConfigError(
            f"cannot write the {what} to {redact_url(path)}: {reason}; the evaluation finished "
            f"but no {what} was written: fix {setting} and run the job again"
        ) from exc


def write_report(
    report: Mapping[str, Any], path: str, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Write the report as JSON to a local path or fsspec URL, atomically.

    See the module docstring for what "atomically" guarantees where.

    Raises
    ------
    ConfigError
        The report cannot be written there (permissions, unknown scheme...).

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "report.json")
    >>> write_report({"report_version": 1}, target)
    >>> open(target).read()
    '{\\n  "report_version": 1\\n}\\n'
    """
    write_document(render_json(report), path, storage_options)
