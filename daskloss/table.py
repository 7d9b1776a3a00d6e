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
    if report.get("slices") is not None:
        lines += _slices_block(report)
    if report.get("comparisons"):
        lines += _comparisons_block(report["comparisons"])
    lines.append(f"evaluated on {report['scheduler']} in {report['duration_seconds']} s")
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


def _slices_block(report: Mapping[str, Any]) -> list[str]:
    """The worst slices of the first prediction by the table metric, and a count of the rest."""
    output = report.get("settings", {}).get("output", {})
    shown, metric = output.get("table_slices", 20), output.get("table_metric", "mse")
    slices = list(report["slices"])
    worst = _worst(slices, metric)[:shown]
    keys = list(report.get("columns", {}).get("group_by") or (slices[0]["key"] if slices else []))
    if isinstance(keys, str):
        keys = [keys]
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


def _worst(slices: Sequence[Mapping[str, Any]], metric: str) -> list[Mapping[str, Any]]:
    """Slices from worst to best by ``metric`` (undefined last)."""

    def badness(entry: Mapping[str, Any]) -> tuple[bool, float]:
        value = entry["metrics"].get(metric)
        if value is None:
            return (True, 0.0)
        number = float(value)
        return (False, number if metric == "r2" else -number)

    return sorted(slices, key=badness)


def _comparisons_block(comparisons: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each comparison: the differences, their 95% intervals and the verdict."""
    lines = []
    for comparison in comparisons:
        prediction, baseline = comparison["prediction"], comparison["baseline"]
        lines.append(f"{prediction} against {baseline} (difference, 95% interval):")
        rows = []
        for metric, found in comparison["metrics"].items():
            verdict = {
                "prediction": f"{comparison['prediction']} better",
                "baseline": f"{comparison['baseline']} better",
            }.get(found["better"], "no clear difference")
            rows.append(
                [
                    metric,
                    _short(found["difference"]),
                    f"[{_short(found['low'])}, {_short(found['high'])}]",
                    verdict,
                ]
            )
        lines += _aligned(rows)
    return lines


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
