"""What the shape of the errors costs: histograms, worst rows and moments against a plain run.

On the benchmark's dataset (:mod:`benchmarks.bench`, 100M rows in 64 files by
default, reused if already written), timed interleaved in one process
(``A B C D A B C D ...``, one untimed warm-up round): daskloss plain; with the
histogram and the worst rows (``histogram=True, worst_k=10``); with the
moments behind the intervals (``intervals=True``); and with all three (what
the job does by default). Ratios are to the plain run, paired per round. In
memory, the same split for the parts alone: the compiled distribution pass
(:mod:`daskloss._rowpass`) and the kernel with and without moments, in ns/row.

Run it as ``python -m jobs.benchmark_shape --help``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench import DEFAULT_FILES, DEFAULT_ROWS
from benchmarks.data import WEIGHT, Layout, data_rows, layout_directory, prepare_dataset
from benchmarks.measure import paired_ratio, time_interleaved
from benchmarks.methods import Method

__all__ = ["OPTIONS", "main"]

#: The runs compared: evaluate()'s options beyond the plain run.
OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "histogram + worst_k=10": {"histogram": True, "worst_k": 10},
    "moments (intervals)": {"intervals": True},
    "all three (the job's default)": {"intervals": True, "histogram": True, "worst_k": 10},
}


def _run(layout: Layout, weighted: bool, options: dict[str, Any]) -> Callable[[], Any]:
    import dask

    import daskloss

    def run() -> Any:
        with dask.config.set(scheduler="threads"):
            weight = WEIGHT if weighted else None
            return daskloss.evaluate(layout.glob(), weight=weight, **options).metrics

    return run


def _in_memory(rows: int, weighted: bool, repeat: int) -> dict[str, float]:
    """ns/row of the parts alone on in-memory arrays, one thread (medians)."""
    from daskloss._kernel import Accumulator
    from daskloss.chunks import Chunk
    from daskloss.roles import EvaluationSpec
    from daskloss.shape import ShapeAccumulator, ShapeSpec

    columns = data_rows(0, rows)
    y, p = columns["y_true"], columns["y_pred"]
    w = columns["weight"] if weighted else None
    spec = EvaluationSpec.of("y_true", "y_pred", "weight" if weighted else None)
    chunk_rows = 1 << 17
    chunks = [
        Chunk(
            {"y_true": y[i : i + chunk_rows], "y_pred": p[i : i + chunk_rows]}
            | ({"weight": w[i : i + chunk_rows]} if w is not None else {}),
            (("", len(y[i : i + chunk_rows])),),
        )
        for i in range(0, rows, chunk_rows)
    ]

    def kernel(moments: bool) -> Callable[[], Any]:
        def run() -> Any:
            accumulator = Accumulator(1, weighted, moments=moments)
            for c in chunks:
                accumulator.add(c.values["y_true"], [c.values["y_pred"]], c.values.get("weight"))
            return accumulator.rows()

        return run

    def shape(histogram: bool, worst_k: int) -> Callable[[], Any]:
        def run() -> Any:
            gathered = ShapeAccumulator(spec, ShapeSpec(histogram, worst_k))
            for c in chunks:
                gathered.add(c, None, None)
            return gathered.result()

        return run

    parts = {
        "kernel": kernel(False),
        "kernel with moments": kernel(True),
        "distribution pass: histogram": shape(True, 0),
        "distribution pass: worst_k=10": shape(False, 10),
        "distribution pass: both": shape(True, 10),
    }
    found = {}
    for name, run in parts.items():
        run()  # compile, warm
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - start)
        found[name] = statistics.median(seconds) / rows * 1e9
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Time the runs; print a Markdown table; write the JSON (see ``--help``)."""
    parser = argparse.ArgumentParser(prog="python -m jobs.benchmark_shape", description=__doc__)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--files", type=int, default=DEFAULT_FILES)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--weighted", action="store_true", help="with a weight column")
    parser.add_argument(
        "--data", type=Path, help="directory of the datasets (see jobs.benchmark --data)"
    )
    parser.add_argument("--memory-rows", type=int, default=10_000_000, help="in-memory rows")
    parser.add_argument("--output", type=Path, help="write the JSON results here")
    args = parser.parse_args(argv)
    probe = Layout(Path(), args.rows, args.files)
    layout = Layout(layout_directory(probe, args.data), args.rows, args.files)
    dataset = prepare_dataset(layout, log=_log)
    methods = [
        Method(name, name, layout, args.weighted, args.rows, _run(layout, args.weighted, o))
        for name, o in OPTIONS.items()
    ]
    times, _, results = time_interleaved(methods, args.repeat, log=_log)
    plain = times["plain"]
    report: dict[str, Any] = {"dataset": dataset, "repeat": args.repeat, "runs": {}}
    for name in OPTIONS:
        report["runs"][name] = {
            "seconds": times[name],
            "median_seconds": statistics.median(times[name]),
            "ratio_of_medians": statistics.median(times[name]) / statistics.median(plain),
            "paired_ratio": paired_ratio(times[name], plain),
        }
    metrics = [run for name in OPTIONS for run in results[name]]
    report["metrics_identical"] = all(m == metrics[0] for m in metrics)
    report["in_memory_ns_per_row"] = _in_memory(args.memory_rows, args.weighted, args.repeat)
    print(_markdown(report, args))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _markdown(report: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"### {args.rows:,} rows in {args.files} files{' (weighted)' if args.weighted else ''}, "
        f"median of {args.repeat} interleaved rounds",
        "",
        "| run | median (s) | / plain | / plain, paired |",
        "|---|---:|---:|---:|",
    ]
    for name, entry in report["runs"].items():
        lines.append(
            f"| {name} | {entry['median_seconds']:.3f} | {entry['ratio_of_medians']:.3f} | "
            f"{entry['paired_ratio']:.3f} |"
        )
    lines += ["", f"- metrics bit-identical across every run: {report['metrics_identical']}", ""]
    lines += ["| in memory, one thread | ns/row |", "|---|---:|"]
    for name, value in report["in_memory_ns_per_row"].items():
        lines.append(f"| {name} | {value:.2f} |")
    return "\n".join(lines)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
