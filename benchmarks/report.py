"""The benchmark's Markdown summary: a table per layout and weighting, the targets, the rest."""

from __future__ import annotations

from typing import Any

from benchmarks.methods import FLOORS

__all__ = ["markdown"]

_MIB = 1 << 20


def markdown(report: dict[str, Any]) -> str:
    """The human summary: timing tables, the targets, cold start, scale, kernel, checks."""
    lines = [_title(report), *_environment(report)]
    for group, found in report.get("groups", {}).items():
        lines += ["", *_group_table(report, group, found)]
    lines += ["", *_targets(report)]
    if report.get("cold_start"):
        lines += ["", *_cold_start(report["cold_start"])]
    if report.get("scale"):
        lines += ["", *_scale(report["scale"])]
    if report.get("kernel"):
        lines += ["", *_kernel_table(report["kernel"])]
    lines += ["", *_checks(report)]
    return "\n".join(lines)


def _title(report: dict[str, Any]) -> str:
    config = report["config"]
    layouts = ", ".join(
        f"{d['label']} ({d['bytes'] / 1e9:.2f} GB)"
        for d in report["datasets"]
        if d["spec"] in config["layouts"]
    )
    return (
        f"### {config['rows']:,} rows of float64 y_true, y_pred, weight in snappy Parquet: "
        f"{layouts}; median of {config['repeat']} interleaved rounds, page cache warm; "
        f"{report['environment']['cpu_count']} cores"
    )


def _environment(report: dict[str, Any]) -> list[str]:
    environment = report["environment"]
    git = environment["git"]
    before = environment["load_average"][0]
    after = environment.get("load_average_after", [float("nan")])[0]
    dirty = " with uncommitted changes" if git["dirty"] else ""
    return [
        "",
        f"`{report['config']['command']}` at commit {git['commit'][:10] or 'unknown'}{dirty}; "
        f"1-minute load average {before:.2f} before, {after:.2f} after (the machine is shared: "
        "CPU seconds, of every process a method runs in, move less than wall seconds)",
    ]


def _group_table(report: dict[str, Any], group: str, found: dict[str, Any]) -> list[str]:
    methods = report["methods"]
    floor = found["floor"]
    title = f"#### {group}"
    if floor:
        title += f": floor = {methods[floor]['kind']} ({methods[floor]['median_seconds']:.3f} s)"
    lines = [
        title,
        "",
        "| method | median (s) | range (s) | CPU (s) | rows/s | / floor | / floor, paired "
        "| CPU / floor | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in found["methods"]:
        entry = methods[name]
        ratios = [entry.get(k) for k in ("floor_ratio", "paired_floor_ratio", "cpu_floor_ratio")]
        shown = " | ".join("—" if r is None else f"{r:.2f}" for r in ratios)
        label = f"**{entry['kind']}**" if entry["kind"] == "daskloss" else entry["kind"]
        lines.append(
            f"| {label} | {entry['median_seconds']:.3f} | {entry['min_seconds']:.3f}-"
            f"{entry['max_seconds']:.3f} | {entry['median_cpu_seconds']:.2f} | "
            f"{_si(entry['rows_per_second'])} | {shown} | {_mib(entry.get('rss'))} |"
        )
    return lines


def _targets(report: dict[str, Any]) -> list[str]:
    targets = report["targets"]
    lines = ["#### Targets (issue 11)", "", "| target | figure | limit | met |"]
    lines.append("|---|---:|---:|---|")

    def row(name: str, value: float | None, limit: float, digits: int = 2) -> None:
        if value is None:
            return
        met = "yes" if value <= limit else "**no**"
        lines.append(f"| {name} | {value:.{digits}f} | {limit:g} | {met} |")

    for entry in report["methods"].values():
        group = entry["group"]
        if entry["kind"] == "daskloss":
            row(f"daskloss / floor, paired ({group})", entry.get("paired_floor_ratio"),
                targets["daskloss_over_floor"])  # fmt: skip
            row(f"daskloss / Polars, paired ({group})", entry.get("paired_polars_ratio"), 1.0)
            row(f"daskloss on {group} / on the first layout, paired",
                entry.get("paired_first_layout_ratio"),
                targets["small_files_over_large"])  # fmt: skip
        if entry["kind"] == "daskloss-localcluster":
            row(f"LocalCluster / threads, paired ({group})", entry.get("paired_threads_ratio"),
                targets["localcluster_over_threads"])  # fmt: skip
    planning = report.get("scale", {}).get("planning")
    if planning:
        row(f"listing and planning {planning['files']:,} files (s)", planning["plan_seconds"]
            + planning["graph_seconds"], targets["planning_seconds"])  # fmt: skip
        row(f"Parquet footers read by the client for {planning['files']:,} small files",
            planning["footers_read"], 0, 0)  # fmt: skip
    for case in report.get("cold_start") or []:
        weighting = "weighted" if case["weighted"] else "unweighted"
        row(f"cold start (s): {case['case']}, {weighting}", case.get("cold_start_seconds"),
            targets["cold_start_seconds"])  # fmt: skip
    kernel = (report.get("kernel") or {}).get("kernel (weighted)")
    if kernel:
        row("weighted kernel, ns/row (not in this branch's scope)", kernel["ns_per_row"],
            targets["weighted_kernel_ns_per_row"])  # fmt: skip
    return lines


def _cold_start(cases: list[dict[str, Any]]) -> list[str]:
    lines = [
        "#### Cold start: fresh processes, empty NUMBA_CACHE_DIR",
        "",
        "| case | weighting | `daskloss warmup` (s) | cluster start (s) | first evaluation (s) "
        "| second (s) | cold start (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        weighting = "weighted" if case["weighted"] else "unweighted"
        if "error" in case:
            lines.append(f"| {case['case']} | {weighting} | failed: {case['error']} | | | | |")
            continue
        lines.append(
            f"| {case['case']} | {weighting} | {_number(case.get('warmup_command_seconds'))} | "
            f"{_number(case.get('cluster_start_seconds'))} | {case['first_seconds']:.2f} | "
            f"{case['second_seconds']:.2f} | {case['cold_start_seconds']:.2f} |"
        )
    return lines


def _scale(found: dict[str, Any]) -> list[str]:
    lines = [
        "#### Planning on the client (as evaluate() does: list, plan, build the graph)",
        "",
        "| layout | units | tasks | merge levels | list + plan (s) | graph (s) | footers read "
        "| schemas read | pickled unit (bytes) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = {**found.get("planning_by_layout", {}), "listing": found["planning"]}
    for name, entry in rows.items():
        label = f"{entry['files']:,} files" + (" (listing only)" if name == "listing" else "")
        lines.append(
            f"| {label} | {entry['units']:,} | {entry['tasks']:,} | {entry['merge_levels']} | "
            f"{entry['plan_seconds']:.3f} | {entry['graph_seconds']:.3f} | {entry['footers_read']} "
            f"| {entry['schemas_read']} | {entry['unit_pickle_bytes']:,.0f} |"
        )
    lines += [
        "",
        "| the scheduler, trivial tasks | tasks | wall per task (µs) | scheduler + client CPU "
        "per task (µs) |",
        "|---|---:|---:|---:|",
    ]
    for name, entry in found["scheduler"].items():
        lines.append(
            f"| {name} | {entry['tasks']:,} | {entry['wall_us_per_task']:.0f} | "
            f"{entry['scheduler_cpu_us_per_task']:.0f} |"
        )
    sizes = found["bytes"]
    lines += [
        "",
        f"Bytes per task: the work unit shipped to a worker {sizes['unit_bytes']:,} (first "
        "layout); the statistics each task sends up the merge tree "
        f"{sizes['statistics_bytes_unweighted']:,} unweighted, "
        f"{sizes['statistics_bytes_weighted']:,} weighted (pickled).",
    ]
    models = found["models"]
    if not models:
        return lines
    first = next(iter(models.values()))
    lines += [
        "",
        f"Model: {first['workers']:,} workers x {first['threads'] // first['workers']} threads "
        f"over {first['files']:,} files like those of each layout (compute: daskloss's CPU per "
        "row here, spread over the busy threads; scheduler: its CPU per task here)",
        "",
        "| files like | rows | GB | units (files each) | threads busy | tasks | tree depth | "
        "client planning (s) | scheduler CPU (s) | bytes up the tree | compute (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, model in models.items():
        lines.append(
            f"| {label} | {model['rows']:,.0f} | {model['bytes_on_storage'] / 1e9:,.0f} | "
            f"{model['units']:,} ({model['files_per_unit']:,}) | {model['busy_threads']:,} | "
            f"{model['tasks']:,} | {model['tree_depth']} | {model['client_planning_seconds']:.2f}"
            f" | {_number(model['scheduler_seconds'])} | {_bytes(model['merge_tree_bytes'])} | "
            f"{_number(model['compute_seconds'])} |"
        )
    return lines


def _kernel_table(kernel: dict[str, Any]) -> list[str]:
    lines = [
        "| in memory, one thread | rows | median (s) | min (s) | ns/row (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, entry in kernel.items():
        lines.append(
            f"| {name} | {entry['rows']:,} | {entry['median_seconds']:.4f} | "
            f"{entry['min_seconds']:.4f} | {entry['ns_per_row']:.2f} |"
        )
    return lines


def _checks(report: dict[str, Any]) -> list[str]:
    found = report.get("checks", {})
    lines = []
    for weighting, same in found.get("daskloss_runs_identical", {}).items():
        runs = found["daskloss_runs"][weighting]
        verdict = "yes" if same else "**NO**"
        lines.append(
            f"- daskloss metrics bit-identical across all {runs} {weighting} runs (every layout, "
            f"threads and LocalCluster): {verdict}"
        )
    for name, entry in report.get("methods", {}).items():
        if entry.get("setup_seconds") is not None:
            lines.append(f"- {name}: cluster start-up {entry['setup_seconds']:.2f} s (not timed)")
    for name, reason in report.get("skipped", {}).items():
        lines.append(f"- {name}: skipped, {reason}")
    for name, diffs in found.get("naive_relative_difference", {}).items():
        text = ", ".join(f"{key} {value:.1e}" for key, value in diffs.items())
        distinct = found["naive_distinct_mse_values"][name]
        lines.append(
            f"- {name}: relative difference from the exact metrics: {text}; "
            f"{distinct} distinct MSE value(s) over the timed runs"
        )
    lines.append("- floors: " + "; ".join(f"{kind}: {text}" for kind, text in FLOORS.items()))
    return lines


def _si(value: float) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f}"


def _mib(rss: dict[str, Any] | None) -> str:
    if not rss:
        return "—"
    if "error" in rss:
        return "failed"
    return f"{rss['peak_rss_bytes'] / _MIB:,.0f}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _bytes(value: float | None) -> str:
    if value is None:
        return "—"
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"
