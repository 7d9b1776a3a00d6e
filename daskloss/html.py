"""The report as a page to look at: one self-contained HTML file, charts as inline SVG.

Made from the JSON report (:mod:`daskloss.report`), like the terminal table,
so the page never says anything the report does not: the metrics with their
95% intervals, the residual histogram on log axes (with the quantiles of
``|d|`` marked), the per-slice chart of a metric with its intervals, the
comparisons, the worst rows, and the run's provenance. The charts are drawn
by matplotlib's SVG backend and embedded in the page; the page loads
nothing (its Content-Security-Policy forbids every fetch) and holds no
script. Every value from the data or the config is escaped.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_html"]

#: The metrics the slice chart may show with intervals (else: rmse).
_CHARTED = ("mse", "rmse", "mae", "bias")
_INTERVALS = ("mse", "rmse", "mae", "bias")
_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 2em;
     border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .2em .7em;
        border-bottom: 1px solid #eee; text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f6f6f6; } td.name, th.name { text-align: left; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: .92em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: .85em; }
"""
_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page (see the module docstring).

    Examples
    --------
    >>> page = render_html({"metrics": {"mse": 1.5}, "count": 3, "skipped_rows": 0,
    ...     "dataset": {"path": "<data>", "format": "parquet", "files": 1, "partitions": 1}})
    >>> page.startswith("<!DOCTYPE html>"), "&lt;data&gt;" in page, "<data>" in page
    (True, True, False)
    """
    dataset = report.get("dataset", {})
    title = f"daskloss report: {dataset.get('path', '')}"
    sections = [
        _summary(report),
        _metrics_section(report),
        _distribution_section(report),
        _slices_section(report),
        _comparisons_section(report),
        _worst_section(report),
        _provenance_section(report),
    ]
    body = "\n".join(section for section in sections if section)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


# --- sections -----------------------------------------------------------------------------


def _summary(report: Mapping[str, Any]) -> str:
    dataset = report.get("dataset", {})
    where = (
        f"{report.get('count')} rows of {dataset.get('path')} ({dataset.get('format')}, "
        f"{dataset.get('files')} files, {dataset.get('partitions')} partitions)"
    )
    run = ""
    if "scheduler" in report:
        run = (
            f"; evaluated on {report['scheduler']} in {report.get('duration_seconds')} s, "
            f"{report.get('finished_at')}"
        )
    return f"<h1>daskloss report</h1>\n<p>{_text(where + run)}</p>"


def _metrics_section(report: Mapping[str, Any]) -> str:
    predictions = report.get("predictions") or {
        _first_name(report): {"metrics": report.get("metrics", {}), **_shape_of(report)}
    }
    names = list(predictions)
    header = ["metric", *names]
    rows = []
    for metric in report.get("metrics", {}):
        row = [metric]
        for name in names:
            entry = predictions[name]
            value = _number(entry["metrics"].get(metric))
            bounds = (entry.get("intervals") or {}).get(metric)
            if bounds and bounds.get("low") is not None:
                value += f" [{_number(bounds['low'])}, {_number(bounds['high'])}]"
            row.append(value)
        rows.append(row)
    note = (
        "<p class='note'>In brackets: the 95% interval (estimate ± 1.96 standard errors, from "
        "the exact moments; rows taken as independent draws).</p>"
        if any(predictions[n].get("intervals") for n in names)
        else ""
    )
    return f"<h2>Metrics</h2>\n{_table(header, rows)}\n{note}"


def _distribution_section(report: Mapping[str, Any]) -> str:
    histogram = report.get("histogram")
    if not histogram:
        return ""
    quantiles = (report.get("quantiles") or {}).get("abs_error") or {}
    parts = ["<h2>Residuals</h2>", _figure(_histogram_chart(histogram, quantiles), _HIST_CAPTION)]
    if quantiles:
        bound = histogram.get("quantile_relative_error", 0.0)
        rows = [[f"{float(level) * 100:g}%", _number(value)] for level, value in quantiles.items()]
        parts.append(_table(["quantile of |error|", "value"], rows))
        parts.append(f"<p class='note'>Each quantile is within {bound * 100:.2f}% of the exact.")
    share = report.get("se_share")
    if share and share.get("share") is not None:
        parts.append(
            f"<p>The {share['top'] * 100:g}% of rows with the largest |error| hold "
            f"{share['share'] * 100:.2f}% of the squared error (between "
            f"{share['low'] * 100:.2f}% and {share['high'] * 100:.2f}%).</p>"
        )
    return "\n".join(parts)


_HIST_CAPTION = (
    "Rows by |error| = |y_pred - y_true|, over-predictions (error > 0) and under-predictions "
    "(error < 0) apart, on log axes; bins of a quarter binade, exact counts; dashed lines: "
    "the quantiles of |error|."
)


def _slices_section(report: Mapping[str, Any]) -> str:
    slices = report.get("slices")
    if not slices:
        return ""
    output = report.get("settings", {}).get("output", {})
    metric = output.get("table_metric", "mse")
    metric = metric if metric in _CHARTED else "rmse"
    count = max(output.get("table_slices", 20), 1)
    shown = sorted(slices, key=lambda s: _badness(s, metric))[:count]
    keys = _group_by(report)
    labels = [", ".join(str(_key_text(s["key"].get(k))) for k in keys) for s in shown]
    chart = _slice_chart(shown, labels, metric)
    caption = (
        f"{metric} per slice by {', '.join(keys)} with its 95% interval: the {len(shown)} "
        f"with the highest {metric} of {len(slices)}."
    )
    rows = [
        [label, str(s["count"]), *(_number(s["metrics"].get(m)) for m in _CHARTED)]
        for label, s in zip(labels, shown, strict=True)
    ]
    table = _table([", ".join(keys), "count", *_CHARTED], rows)
    return f"<h2>Slices</h2>\n{_figure(chart, caption)}\n{table}"


def _comparisons_section(report: Mapping[str, Any]) -> str:
    comparisons = report.get("comparisons")
    if not comparisons:
        return ""
    rows = []
    for comparison in comparisons:
        for metric, found in comparison["metrics"].items():
            verdict = comparison[found["better"]] if found.get("better") else "no clear difference"
            rows.append(
                [
                    f"{comparison['prediction']} - {comparison['baseline']}",
                    metric,
                    _number(found.get("difference")),
                    f"[{_number(found.get('low'))}, {_number(found.get('high'))}]",
                    f"{verdict} better" if found.get("better") else verdict,
                ]
            )
    header = ["comparison", "metric", "difference", "95% interval", "verdict"]
    return f"<h2>Comparisons</h2>\n{_table(header, rows)}"


def _worst_section(report: Mapping[str, Any]) -> str:
    worst = report.get("worst")
    if worst is None:
        return ""
    ids = _id_columns(report)
    weighted = bool(worst) and "weight" in worst[0]
    fields = [*ids, "y_true", "y_pred", "error"] + (["weight"] if weighted else [])
    rows = [[_cell(row.get(name)) for name in fields] for row in worst]
    parts = [f"<h2>Worst rows</h2>\n<p>The {len(worst)} rows with the largest |error|.</p>"]
    parts.append(_table(fields, rows) if rows else "<p>None.</p>")
    for entry in report.get("slices") or []:
        if entry.get("worst"):
            label = ", ".join(f"{k} = {_key_text(v)}" for k, v in entry["key"].items())
            found = [[_cell(row.get(name)) for name in fields] for row in entry["worst"]]
            parts.append(
                f"<details><summary>{_text(label)}: {len(found)} rows</summary>"
                f"{_table(fields, found)}</details>"
            )
    return "\n".join(parts)


def _provenance_section(report: Mapping[str, Any]) -> str:
    rows = [
        [name, _cell(report.get(name))]
        for name in ("started_at", "finished_at", "duration_seconds", "scheduler", "config_digest")
        if name in report
    ]
    rows += [[f"version of {k}", _cell(v)] for k, v in (report.get("versions") or {}).items()]
    rows.append(["report_version", _cell(report.get("report_version"))])
    settings = json.dumps(report.get("settings", {}), indent=2, sort_keys=True)
    return (
        f"<h2>Provenance</h2>\n{_table(['', 'value'], rows)}\n"
        f"<details><summary>settings (secrets redacted)</summary><pre>{_text(settings)}</pre>"
        "</details>"
    )


# --- charts ------------------------------------------------------------------------------


def _histogram_chart(histogram: Mapping[str, Any], quantiles: Mapping[str, float]) -> str:
    figure, axes = _axes()
    for side, label, colour in ((1, "error > 0", "#c0392b"), (-1, "error < 0", "#2471a3")):
        bins = [b for b in histogram["error"] if b["count"] and _side(b) == side]
        if not bins:
            continue
        edges = [abs(b["low"]) if side > 0 else abs(b["high"]) for b in bins]
        tops = [abs(b["high"]) if side > 0 else abs(b["low"]) for b in bins]
        axes.bar(
            edges,
            [b["count"] for b in bins],
            width=[t - e for e, t in zip(edges, tops, strict=True)],
            align="edge",
            alpha=0.55,
            color=colour,
            label=label,
        )
    for level, value in quantiles.items():
        if value and value > 0:
            axes.axvline(value, color="#555", linestyle="--", linewidth=0.8)
            axes.annotate(
                f"{float(level) * 100:g}%",
                (value, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
            )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("|error|")
    axes.set_ylabel("rows")
    axes.legend(frameon=False)
    return _svg(figure)


def _slice_chart(slices: Sequence[Mapping[str, Any]], labels: Sequence[str], metric: str) -> str:
    figure, axes = _axes(height=max(2.0, 0.3 * len(slices) + 1.0))
    positions = list(range(len(slices)))[::-1]
    values, lows, highs = [], [], []
    for entry in slices:
        value = entry["metrics"].get(metric)
        bounds = (entry.get("intervals") or {}).get(metric) or {}
        value = math.nan if value is None else float(value)
        values.append(value)
        low, high = bounds.get("low"), bounds.get("high")
        lows.append(0.0 if low is None else max(value - float(low), 0.0))
        highs.append(0.0 if high is None else max(float(high) - value, 0.0))
    axes.errorbar(
        values, positions, xerr=[lows, highs], fmt="o", color="#2471a3", ecolor="#7f8c8d", capsize=3
    )
    axes.set_yticks(positions, [label[:40] for label in labels])
    axes.set_xlabel(metric)
    return _svg(figure)


def _axes(height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.0, height), layout="constrained")
    axes = figure.subplots()
    axes.grid(True, which="major", alpha=0.3)
    return figure, axes


def _svg(figure: Any) -> str:
    """The figure as inline SVG: text kept as text, no date (the same figure, the same bytes)."""
    import matplotlib as mpl

    buffer = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "daskloss"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_text(caption)}</figcaption></figure>"


# --- helpers -----------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(
        f"<th class='name'>{_text(h)}</th>" if i == 0 else f"<th>{_text(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='name'>{_text(c)}</td>" if i == 0 else f"<td>{_text(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, str):
        return value
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def _key_text(value: Any) -> str:
    return "null" if value is None else str(value)


def _side(entry: Mapping[str, Any]) -> int:
    return -1 if entry["high"] <= 0 and entry["low"] < 0 else 1


def _badness(entry: Mapping[str, Any], metric: str) -> tuple[bool, float]:
    value = entry["metrics"].get(metric)
    return (value is None, -float(value) if value is not None else 0.0)


def _group_by(report: Mapping[str, Any]) -> list[str]:
    keys = report.get("columns", {}).get("group_by") or []
    return [keys] if isinstance(keys, str) else list(keys)


def _id_columns(report: Mapping[str, Any]) -> list[str]:
    ids = report.get("columns", {}).get("id_columns") or []
    return [ids] if isinstance(ids, str) else list(ids)


def _first_name(report: Mapping[str, Any]) -> str:
    predictions = report.get("columns", {}).get("y_pred") or "y_pred"
    return predictions if isinstance(predictions, str) else predictions[0]


def _shape_of(report: Mapping[str, Any]) -> dict[str, Any]:
    return {"intervals": report.get("intervals")}
