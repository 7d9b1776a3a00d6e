"""The benchmark: exact evaluation against the fastest read floor and the baselines.

One process generates (or reuses) the datasets, then times every method on
every layout and weighting *interleaved* (``A B C A B C ...``) after one
untimed warm-up round, so a noisy machine slows all of them alike, recording
wall and CPU seconds. Each method's peak RSS is measured apart, in a fresh
child process (this module again, with ``--rss-child``). Every layout holds
the same rows (:func:`benchmarks.data.data_rows`), so daskloss's metrics must
be bit-identical across layouts, schedulers and runs; the report checks it.

For each layout and weighting the *floor* is the fastest of five ways pyarrow
reads the needed columns (:data:`benchmarks.methods.FLOORS`); every ratio is
to it. ``--cold-start`` adds the first evaluation of fresh processes from an
empty numba cache (:mod:`benchmarks.coldstart`); ``--scale`` the planning of
100,000 files, the scheduler's cost per task, the bytes per task and a model
of 1,000 workers (:mod:`benchmarks.scale`). ``--full`` runs everything the
README's performance section shows.

Run it as ``python -m jobs.benchmark --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import coldstart, scale
from benchmarks.data import Layout, data_rows, layout_directory, parse_layout, prepare_dataset
from benchmarks.measure import paired_ratio, peak_rss, summary, time_interleaved
from benchmarks.methods import (
    DATASET_METHODS,
    FLOORS,
    KERNEL,
    Method,
    SharedCluster,
    Skip,
    kernel_methods,
    make_method,
)
from benchmarks.report import markdown

__all__ = [
    "Layout",
    "build_parser",
    "checks",
    "data_rows",
    "identical",
    "layout_directory",
    "main",
    "paired_ratio",
    "prepare_dataset",
]

DEFAULT_ROWS = 100_000_000
DEFAULT_FILES = 64
TINY_FILES = 10_000
#: The layouts of ``--full`` besides the first: one row group per file, and small files.
FULL_LAYOUTS = ("32/1", str(TINY_FILES))
KERNEL_ROWS = 10_000_000
METHODS = (*DATASET_METHODS, KERNEL)
#: Methods run on every layout after the first unless --only says otherwise.
OTHER_LAYOUT_METHODS = (*FLOORS, "daskloss", "duckdb", "polars")
#: Methods whose metrics are compared with daskloss's exact values.
NAIVE_METHODS = ("naive-dask", "duckdb", "polars")
COMPARED_METRICS = ("mse", "mae", "r2")
#: Targets of issue 11, as the report checks them.
TARGETS = {
    "daskloss_over_floor": 1.10,
    "localcluster_over_threads": 1.15,
    "small_files_over_large": 2.0,
    "planning_seconds": 10.0,
    "cold_start_seconds": 1.0,
    "weighted_kernel_ns_per_row": 2.0,
}


# --- the job -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.benchmark",
        description="Time exact evaluation against the fastest read floor and float baselines.",
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows (default %(default)s)")
    parser.add_argument(
        "--files",
        type=int,
        default=DEFAULT_FILES,
        help="files of the first layout, with row groups of 1,048,576 rows (default %(default)s)",
    )
    parser.add_argument(
        "--layouts",
        help="comma-separated layouts of the same rows after the first: FILES (row groups of "
        "1,048,576 rows) or FILES/1 (one row group per file), e.g. 32/1,10000",
    )
    parser.add_argument(
        "--tiny-files",
        action="store_true",
        help=f"add the layout of {TINY_FILES:,} files (writing 100M rows that way takes a minute)",
    )
    parser.add_argument(
        "--weighting",
        choices=("unweighted", "weighted", "both"),
        default="unweighted",
        help="evaluate without the weight column, with it, or both (default %(default)s)",
    )
    parser.add_argument("--weighted", action="store_true", help="the same as --weighting weighted")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default %(default)s)")
    parser.add_argument(
        "--data",
        type=Path,
        help="directory of the datasets, one subdirectory per layout, reused when its manifest "
        "matches (default: the temp directory)",
    )
    parser.add_argument("--output", type=Path, help="write the JSON results here")
    parser.add_argument(
        "--only",
        help=f"comma-separated subset of: floor (every floor), {', '.join(METHODS)}",
    )
    parser.add_argument(
        "--kernel-rows", type=int, default=KERNEL_ROWS, help="rows of the in-memory kernel timing"
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    parser.add_argument(
        "--cold-start",
        action="store_true",
        help="time fresh processes' first evaluation from an empty numba cache (about 2 min)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help=f"plan {scale.MODEL_FILES:,} files, time the scheduler per task, measure bytes per "
        f"task and model {scale.MODEL_WORKERS:,} workers (writes {scale.MODEL_FILES:,} tiny "
        "files once, about a minute)",
    )
    parser.add_argument(
        "--listing-files",
        type=int,
        default=scale.MODEL_FILES,
        help="files of the layout --scale lists and plans (10 rows each; default %(default)s)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="everything the README shows: --layouts 32/1,10000 --weighting both "
        "--cold-start --scale (about 30 min on 2 cores)",
    )
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    return parser


@dataclass
class _Plan:
    layouts: list[Layout]
    weightings: list[bool]
    names: list[str] | None
    kernel: bool
    args: argparse.Namespace = field(repr=False)


def _plan(argv: Sequence[str] | None) -> _Plan:
    parser = build_parser()
    args = parser.parse_args(argv)
    names = _expand(args.only.split(",")) if args.only else None
    unknown = sorted(set(names or ()) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from floor, {', '.join(METHODS)}")
    if min(args.rows, args.files, args.repeat) < 1:
        parser.error("--rows, --files and --repeat must be at least 1")
    if args.full:
        args.weighting, args.cold_start, args.scale = "both", True, True
    parent = args.data or layout_directory(Layout(Path(), 0, 0)).parent
    specs = [str(args.files)]
    specs += args.layouts.split(",") if args.layouts else []
    specs += list(FULL_LAYOUTS) if args.full else []
    specs += [str(TINY_FILES)] if args.tiny_files else []
    try:
        layouts = [parse_layout(spec, args.rows, parent) for spec in dict.fromkeys(specs)]
    except ValueError as exc:
        parser.error(str(exc))
    weighting = "weighted" if args.weighted else args.weighting
    weightings = {"unweighted": [False], "weighted": [True], "both": [False, True]}[weighting]
    kernel = (names is None or KERNEL in names) and not args.rss_child
    return _Plan(layouts, weightings, names, kernel, args)


def _expand(names: list[str]) -> list[str]:
    return [floor for name in names for floor in (FLOORS if name == "floor" else [name])]


def _kinds(plan: _Plan, first: bool) -> list[str]:
    if plan.names is not None:
        return [name for name in plan.names if name != KERNEL]
    return list(DATASET_METHODS if first else OTHER_LAYOUT_METHODS)


def _setup(plan: _Plan, cluster: SharedCluster) -> tuple[list[Method], dict[str, str]]:
    methods, skipped = [], {}
    for index, layout in enumerate(plan.layouts):
        for weighted in plan.weightings:
            for kind in _kinds(plan, first=index == 0):
                label = f"{kind} @ {layout.label}, {'weighted' if weighted else 'unweighted'}"
                try:
                    methods.append(make_method(kind, layout, weighted, label, cluster))
                except Skip as exc:
                    skipped[label] = str(exc)
                    _log(f"note: {label} skipped: {exc}")
    return methods, skipped


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the Markdown tables and write the JSON (see ``--help``)."""
    plan = _plan(argv)
    datasets = [prepare_dataset(layout, _log) for layout in plan.layouts]
    if plan.args.rss_child:
        return _rss_child(plan)
    report: dict[str, Any] = {
        "config": _config(plan),
        "environment": _environment(),
        "datasets": datasets,
        "targets": TARGETS,
    }
    cluster = SharedCluster()
    try:
        methods, report["skipped"] = _setup(plan, cluster)
        empty = {"methods": {}, "groups": {}, "checks": {}}
        report |= _time_methods(plan, methods) if methods else empty
    finally:
        cluster.close()
    report["kernel"] = _kernel_report(plan) if plan.kernel else None
    if plan.args.cold_start:
        report["cold_start"] = coldstart.cold_start(
            str(plan.layouts[0].path), plan.weightings, _log
        )
    if plan.args.scale:
        report["scale"] = _scale(plan, report)
    report["environment"]["load_average_after"] = os.getloadavg()
    if not plan.args.no_rss:
        _measure_rss(plan, methods, report)
    print(markdown(report))
    if plan.args.output:
        _write_json(plan.args.output, report)
    return 0


def _time_methods(plan: _Plan, methods: list[Method]) -> dict[str, Any]:
    times, cpu, results = time_interleaved(methods, plan.args.repeat, _log)
    entries = {m.name: summary(m, times[m.name], cpu[m.name]) for m in methods}
    groups = {}
    for group in dict.fromkeys(m.group for m in methods):
        members = [m for m in methods if m.group == group]
        floors = [m for m in members if m.kind in FLOORS]
        floor = min(floors, key=lambda m: entries[m.name]["median_seconds"]) if floors else None
        polars = next((m for m in members if m.kind == "polars"), None)
        threads = next((m for m in members if m.kind == "daskloss"), None)
        for method in members:
            entry = entries[method.name]
            if floor is not None:
                entry |= _ratios(entry, entries[floor.name], times[method.name], times[floor.name])
            if polars is not None and method.kind.startswith("daskloss"):
                entry["paired_polars_ratio"] = paired_ratio(times[method.name], times[polars.name])
            if threads is not None and method.kind == "daskloss-localcluster":
                threaded = times[threads.name]
                entry["paired_threads_ratio"] = paired_ratio(times[method.name], threaded)
            if isinstance(results[method.name][0], dict):
                entry["metrics"] = results[method.name][0]
        groups[group] = {
            "floor": floor.name if floor else None,
            "methods": [m.name for m in members],
        }
    _layout_ratios(plan, methods, entries, times)
    return {"methods": entries, "groups": groups, "checks": checks(methods, results)}


def _ratios(
    entry: dict[str, Any], floor: dict[str, Any], seconds: list[float], floor_seconds: list[float]
) -> dict[str, float]:
    return {
        "floor_ratio": entry["median_seconds"] / floor["median_seconds"],
        "paired_floor_ratio": paired_ratio(seconds, floor_seconds),
        "cpu_floor_ratio": entry["median_cpu_seconds"] / floor["median_cpu_seconds"],
    }


def _layout_ratios(
    plan: _Plan, methods: list[Method], entries: dict[str, Any], times: dict[str, list[float]]
) -> None:
    """daskloss on each later layout against the first layout, same weighting, paired."""
    first = plan.layouts[0]
    for method in methods:
        if method.kind != "daskloss" or method.layout == first:
            continue
        base = next(
            (
                m
                for m in methods
                if m.kind == "daskloss" and m.layout == first and m.weighted == method.weighted
            ),
            None,
        )
        if base is not None:
            entry, first_entry = entries[method.name], entries[base.name]
            entry["first_layout_ratio"] = entry["median_seconds"] / first_entry["median_seconds"]
            entry["paired_first_layout_ratio"] = paired_ratio(times[method.name], times[base.name])
            entry["cpu_first_layout_ratio"] = (
                entry["median_cpu_seconds"] / first_entry["median_cpu_seconds"]
            )


def _kernel_report(plan: _Plan) -> dict[str, Any]:
    methods = kernel_methods(plan.args.kernel_rows)
    times, cpu, _ = time_interleaved(methods, plan.args.repeat)
    return {m.name: summary(m, times[m.name], cpu[m.name]) for m in methods}


def _scale(plan: _Plan, report: dict[str, Any]) -> dict[str, Any]:
    parent = plan.layouts[0].path.parent
    files = plan.args.listing_files
    listing = parse_layout(f"{files}/1", files * scale.LISTING_ROWS_PER_FILE, parent)
    report["datasets"].append(prepare_dataset(listing, _log))
    _log(f"scale: planning {listing.files:,} files, the scheduler per task, bytes per task ...")
    found: dict[str, Any] = {
        "planning": scale.planning(listing),
        "planning_by_layout": {layout.spec: scale.planning(layout) for layout in plan.layouts},
        "scheduler": scale.scheduler_overhead(),
        "bytes": scale.bytes_per_task(plan.layouts[0]),
    }
    found["models"] = {}
    for layout in plan.layouts:
        dataset = next(d for d in report["datasets"] if d["path"] == str(layout.path))
        cpu = next(
            (
                entry["cpu_ns_per_row"]
                for entry in report["methods"].values()
                if entry["kind"] == "daskloss" and entry["layout"] == layout.spec
            ),
            None,
        )
        found["models"][layout.label] = scale.model(
            found, dataset["bytes"] / layout.files, layout.rows / layout.files, cpu
        )
    return found


def _measure_rss(plan: _Plan, methods: list[Method], report: dict[str, Any]) -> None:
    """Peak RSS, in a fresh process each, of every method but the floors slower than the floor."""
    floors = {group["floor"] for group in report["groups"].values()}
    for method in methods:
        if method.kind in FLOORS and method.name not in floors:
            continue
        _log(f"peak RSS of {method.name} in a fresh process ...")
        report["methods"][method.name]["rss"] = _child_rss(plan, method)


def _child_rss(plan: _Plan, method: Method) -> dict[str, Any]:
    assert method.layout is not None
    first = plan.layouts[0]
    command = [
        sys.executable, "-m", "benchmarks.bench", "--rss-child", "--only", method.kind,
        "--rows", str(plan.args.rows), "--files", str(first.files), "--data",
        str(first.path.parent), "--weighting", "weighted" if method.weighted else "unweighted",
    ]  # fmt: skip
    if method.layout != first:  # the child measures its last layout
        command += ["--layouts", method.layout.spec]
    done = subprocess.run(command, capture_output=True, text=True, cwd=_ROOT, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["no output"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rss_child(plan: _Plan) -> int:
    """Measure the one method of the last layout in this fresh process; print JSON."""
    layout, weighted = plan.layouts[-1], plan.weightings[0]
    kind = _kinds(plan, first=True)[0]
    cluster = SharedCluster()
    try:
        method = make_method(kind, layout, weighted, kind, cluster)
        print(json.dumps(peak_rss(method)))
    finally:
        cluster.close()
    return 0


# --- checks --------------------------------------------------------------------------------


def identical(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two metric dicts hold the same keys and bit-identical values."""
    return a.keys() == b.keys() and all(_bits(a[k]) == _bits(b[k]) for k in a)


def _bits(value: Any) -> Any:
    return struct.pack("<d", value) if isinstance(value, float) else value


def _relative(found: float, exact: float) -> float:
    return abs(found - exact) / abs(exact) if exact else abs(found)


def checks(methods: Sequence[Method], results: dict[str, list[Any]]) -> dict[str, Any]:
    """Bit-identity of every exact run, and how far the naive methods land from it.

    Every layout holds the same rows (see :func:`data_rows`), so daskloss must
    agree with itself across layouts and schedulers, run after run, for each
    weighting.
    """
    found: dict[str, Any] = {"daskloss_runs_identical": {}, "daskloss_runs": {}}
    naive: dict[str, Any] = {}
    distinct: dict[str, Any] = {}
    for weighted in dict.fromkeys(m.weighted for m in methods):
        key = "weighted" if weighted else "unweighted"
        exact = [
            run
            for m in methods
            if m.kind.startswith("daskloss") and m.weighted == weighted
            for run in results[m.name]
        ]
        if not exact:
            continue
        found["daskloss_runs_identical"][key] = all(identical(exact[0], run) for run in exact)
        found["daskloss_runs"][key] = len(exact)
        for m in methods:
            if m.kind in NAIVE_METHODS and m.weighted == weighted:
                last = results[m.name][-1]
                naive[m.name] = {k: _relative(last[k], exact[0][k]) for k in COMPARED_METRICS}
                distinct[m.name] = len({_bits(run["mse"]) for run in results[m.name]})
    found["naive_relative_difference"] = naive
    found["naive_distinct_mse_values"] = distinct
    return found


# --- the environment -----------------------------------------------------------------------

_ROOT = Path(__file__).resolve().parents[1]


def _environment() -> dict[str, Any]:
    packages = (
        "daskloss",
        "dask",
        "distributed",
        "pyarrow",
        "pandas",
        "numpy",
        "numba",
        "duckdb",
        "polars",
    )
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "packages": versions,
        "git": _git_state(),
    }


def _git_state() -> dict[str, Any]:
    """The commit benchmarked, and any uncommitted change to daskloss itself."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": git("status", "--porcelain", "daskloss").splitlines(),
    }


def _config(plan: _Plan) -> dict[str, Any]:
    args = plan.args
    return {
        "rows": plan.layouts[0].rows,
        "layouts": [layout.spec for layout in plan.layouts],
        "files": [layout.files for layout in plan.layouts],
        "weightings": ["weighted" if w else "unweighted" for w in plan.weightings],
        "repeat": args.repeat,
        "methods": plan.names,
        "kernel_rows": args.kernel_rows if plan.kernel else None,
        "cold_start": args.cold_start,
        "scale": args.scale,
        "command": "python -m jobs.benchmark " + " ".join(sys.argv[1:]),
    }


def _write_json(path: Path, report: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(path)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
