"""The report as a table for people: the metrics, the worst slices, the comparisons.

Made from the JSON report (:mod:`daskloss.report`), so that the table never
says anything the report does not. The overall metrics are shown at full
precision; slice rows and comparisons with six significant digits, the worst
``output.table_slices`` slices by ``output.table_metric`` (highest first; for
``r2`` lowest first), and a count of the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_table"]

_SLICE_METRICS = ("mse", "rmse", "mae", "bias", "r2")


def format_table(report: Mapping[str, Any]) -> str:
    """A summary table of the report for people.

    Examples
    --------
    >>> print(format_table({"metrics": {"se": "Infinity", "r2": None}, "count": 10,
    ...     "skipped_rows": 0, "scheduler": "threads", "duration_seconds": 0.1,
    ...     "dataset": {"path": "sample", "format": "parquet", "files": 1, "partitions": 2}}))
    daskloss: 10 rows of sample (parquet, 1 file, 2 partitions)
      se            inf (beyond the float64 range)
      r2            undefined
      skipped rows  0
    evaluated on threads in 0.1 s
    """
    dataset = report["dataset"]
    lines = [
        f"daskloss: {_count(report['count'], 'row')} of {dataset['path']} "
        f"({dataset['format']}, {_count(dataset['files'], 'file')}, "
        f"{_count(dataset['partitions'], 'partition')})"
    ]
    lines += _metrics_block(report)
    lines += _shape_block(report)
    if report.get("slices") is not None:
        lines += _slices_block(report)
    if report.get("comparisons"):
        shown, metric, keys = _slice_settings(report)
        order = [entry["key"] for entry in _worst(report.get("slices") or [], metric)][:shown]
        lines += _comparisons_block(report["comparisons"], order, keys)
    lines.append(f"evaluated on {report['scheduler']} in {report['duration_seconds']} s")
    lines += _run_block(report)
    return "\n".join(lines)


def _metrics_block(report: Mapping[str, Any]) -> list[str]:
    """The overall metrics: one column per prediction when there are several."""
    predictions = report.get("predictions")
    if not predictions:
        rows = [*report["metrics"].items(), ("skipped rows", report["skipped_rows"])]
        width = max(len(name) for name, _ in rows)
        return [f"  {name:<{width}}  {_cell(value)}" for name, value in rows]
    names = list(predictions)
    metric_names = list(report["metrics"])
    cells = [[_cell(predictions[n]["metrics"][m]) for n in names] for m in metric_names]
    rows = [["", *names]] + [[m, *row] for m, row in zip(metric_names, cells, strict=True)]
    rows.append(["skipped rows", str(report["skipped_rows"]), *[""] * (len(names) - 1)])
    return _aligned(rows)


def _shape_block(report: Mapping[str, Any]) -> list[str]:
    """The first prediction's intervals, quantiles of |error|, share of SE and worst row."""
    lines = []
    bounds = report.get("intervals")
    if bounds:
        cells = [
            f"{name} [{_short(found['low'])}, {_short(found['high'])}]"
            for name, found in bounds.items()
        ]
        lines.append("  95% intervals: " + "; ".join(cells))
    quantiles = (report.get("quantiles") or {}).get("abs_error")
    if quantiles:
        cells = [f"{float(level) * 100:g}% {_short(value)}" for level, value in quantiles.items()]
        share = report.get("se_share") or {}
        tail = ""
        if share.get("share") is not None:
            tail = f"; top {share['top'] * 100:g}% of rows: {share['share'] * 100:.1f}% of se"
        lines.append("  |error| quantiles: " + ", ".join(cells) + tail)
    worst = report.get("worst")
    if worst:
        ids = report.get("columns", {}).get("id_columns") or []
        shown = ", ".join(f"{name}={worst[0][name]}" for name in ids if name in worst[0])
        lines.append(
            f"  worst row: error {_short(worst[0]['error'])}"
            + (f" ({shown})" if shown else "")
            + f"; {len(worst)} in the report"
        )
    return lines


def _slices_block(report: Mapping[str, Any]) -> list[str]:
    """The worst slices of the first prediction by the table metric, and a count of the rest."""
    shown, metric, keys = _slice_settings(report)
    slices = list(report["slices"])
    worst = _worst(slices, metric)[:shown]
    columns = [m for m in _SLICE_METRICS if slices and m in slices[0]["metrics"]]
    if metric not in columns and slices and metric in slices[0]["metrics"]:
        columns.insert(0, metric)
    order = "lowest" if metric == "r2" else "highest"
    lines = [
        f"slices by {', '.join(keys)}: {len(slices)}"
        + (f"; the {len(worst)} with the {order} {metric}:" if len(worst) < len(slices) else ":")
    ]
    header = [*keys, "count", *columns]
    rows = [
        [_key_cell(entry["key"].get(k)) for k in keys]
        + [str(entry["count"])]
        + [_short(entry["metrics"][m]) for m in columns]
        for entry in worst
    ]
    other = report.get("other_slices")
    if other:
        rows.append(
            [f"other ({other['slices']} slices)"]
            + [""] * (len(keys) - 1)
            + [str(other["count"])]
            + [_short(other["metrics"][m]) for m in columns]
        )
    lines += _aligned([header, *rows])
    if len(worst) < len(slices):
        lines.append(f"  ... and {len(slices) - len(worst)} more slices in the report")
    return lines


def _slice_settings(report: Mapping[str, Any]) -> tuple[int, str, list[str]]:
    """How many slices the table shows, by which metric, and the slice key columns."""
    output = report.get("settings", {}).get("output", {})
    keys = report.get("columns", {}).get("group_by") or []
    keys = [keys] if isinstance(keys, str) else list(keys)
    return output.get("table_slices", 20), output.get("table_metric", "mse"), keys


def _worst(slices: Sequence[Mapping[str, Any]], metric: str) -> list[Mapping[str, Any]]:
    """Slices from worst to best by ``metric`` (undefined last)."""

    def badness(entry: Mapping[str, Any]) -> tuple[bool, float]:
        value = entry["metrics"].get(metric)
        if value is None:
            return (True, 0.0)
        number = float(value)
        return (False, number if metric == "r2" else -number)

    return sorted(slices, key=badness)


def _comparisons_block(
    comparisons: Sequence[Mapping[str, Any]],
    order: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
) -> list[str]:
    """Each comparison: the differences, their 95% intervals and the verdict, then by slice.

    The slices are those of the slice table, in its order (``order`` holds their keys).
    """
    lines = []
    for comparison in comparisons:
        prediction, baseline = comparison["prediction"], comparison["baseline"]
        lines.append(f"{prediction} against {baseline} (difference, 95% interval):")
        rows = []
        for metric, found in comparison["metrics"].items():
            rows.append(
                [
                    metric,
                    _short(found["difference"]),
                    f"[{_short(found['low'])}, {_short(found['high'])}]",
                    _verdict(found, comparison),
                ]
            )
        lines += _aligned(rows)
        by_key = {repr(entry["key"]): entry for entry in comparison.get("slices") or []}
        shown = [by_key[repr(key)] for key in order if repr(key) in by_key]
        if shown:
            lines.append(f"  by {', '.join(keys)} (mse, mae):")
            rows = [
                [
                    *(_key_cell(entry["key"].get(k)) for k in keys),
                    _verdict(entry["metrics"]["mse"], comparison),
                    _verdict(entry["metrics"]["mae"], comparison),
                ]
                for entry in shown
            ]
            lines += ["  " + line for line in _aligned(rows)]
    return lines


def _verdict(found: Mapping[str, Any], comparison: Mapping[str, Any]) -> str:
    """Which model an interval says is better, if it says so."""
    side = found["better"]
    return f"{comparison[side]} better" if side else "no clear difference"


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _cell(value: float | int | str | None) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, str):
        return f"{float(value)} (beyond the float64 range)"
    return repr(value)


def _short(value: float | int | str | None) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, str):
        return str(float(value))
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _key_cell(value: Any) -> str:
    return "null" if value is None else str(value)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _run_block(report: Mapping[str, Any]) -> list[str]:
    """A scheduled run's cache and gates: what was reused, which gates failed and why."""
    lines = []
    cache = report.get("cache")
    if cache is not None:
        stored = "" if cache["stored"] else " (not stored: see cache.error)"
        lines.append(
            f"cache: {_count(cache['files_read'], 'file')} read, "
            f"{cache['files_reused']} reused{stored}"
        )
    gates = report.get("gates")
    if gates is not None:
        results = gates["results"]
        lines.append(f"gates: {len(results) - gates['failed']} of {len(results)} passed")
        lines += [
            f"  FAILED {result['name']}: {'; '.join(result['reasons'])}"
            for result in results
            if result["verdict"] == "fail"
        ]
    return lines
