"""The slicing benchmark: daskloss per slice and per model against its unsliced run and GROUP BY.

A dataset of ``--rows`` rows in ``--files`` Parquet files holds a target, two
predictions and an integer key of ``--slices`` values. Timed interleaved in
one process (``A B C A B C ...``, one untimed warm-up round): the read floor,
daskloss unsliced, daskloss sliced by the key, daskloss with two predictions
(and their comparison), both, and DuckDB's and Polars' ``GROUP BY`` of the same
float sums. Ratios are to the unsliced run, paired per round. Peak RSS of a
sliced run with ``--many-slices`` slices is measured in a child process.

Run it as ``python -m jobs.benchmark_slices --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.measure import paired_ratio, time_interleaved
from benchmarks.methods import Method, Skip

__all__ = ["main", "prepare"]

TARGET, PREDICTIONS, KEY = "y_true", ("y_pred", "y_other"), "key"
MANIFEST = "_daskloss_slices.json"


def prepare(path: Path, rows: int, files: int, slices: int) -> None:
    """Write the dataset (or keep it if its manifest matches): deterministic, key uniform."""
    manifest = {"rows": rows, "files": files, "slices": slices, "version": 1}
    marker = path / MANIFEST
    if marker.exists() and json.loads(marker.read_text()) == manifest:
        return
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("part-*.parquet"):
        old.unlink()
    per_file = rows // files
    for index in range(files):
        rng = np.random.default_rng([7, index])
        count = per_file + (rows - per_file * files if index == files - 1 else 0)
        y = rng.normal(100.0, 20.0, count)
        table = pa.table(
            {
                TARGET: y,
                PREDICTIONS[0]: y + rng.normal(0.0, 2.0, count),
                PREDICTIONS[1]: y + rng.normal(0.0, 2.2, count),
                KEY: rng.integers(0, slices, count),
            }
        )
        pq.write_table(table, path / f"part-{index:05d}.parquet", row_group_size=1 << 20)
    marker.write_text(json.dumps(manifest))


def _methods(path: Path) -> list[Method]:
    import daskloss

    files = sorted(str(p) for p in path.glob("part-*.parquet"))

    def run(**options: Any) -> Callable[[], Any]:
        return lambda: daskloss.evaluate(str(path), TARGET, **options).evaluation

    def floor() -> int:
        from concurrent.futures import ThreadPoolExecutor

        def read(file: str) -> int:
            return pq.read_table(file, columns=[TARGET, PREDICTIONS[0], KEY]).num_rows

        with ThreadPoolExecutor(os.cpu_count()) as pool:
            return sum(pool.map(read, files))

    runs = {
        "floor": floor,
        "unsliced": run(y_pred=PREDICTIONS[0]),
        "sliced": run(y_pred=PREDICTIONS[0], group_by=KEY),
        "two models": run(y_pred=list(PREDICTIONS)),
        "two models, sliced": run(y_pred=list(PREDICTIONS), group_by=KEY),
    }
    methods = [Method(name, name, None, False, 0, method) for name, method in runs.items()]
    for name, factory in (("duckdb", _duckdb), ("polars", _polars)):
        try:
            methods.append(Method(name, f"{name} GROUP BY", None, False, 0, factory(path)))
        except Skip:
            pass
    return methods


def _duckdb(path: Path) -> Callable[[], Any]:
    try:
        import duckdb
    except ImportError as exc:
        raise Skip("duckdb") from exc
    query = f"""
        SELECT {KEY}, count(*), sum(d * d), sum(abs(d)), sum(d), sum({TARGET}),
               sum({TARGET} * {TARGET})
        FROM (SELECT {KEY}, {TARGET}, {PREDICTIONS[0]} - {TARGET} AS d
              FROM read_parquet('{path}/part-*.parquet'))
        GROUP BY {KEY}
    """
    return lambda: duckdb.sql(query).fetchall()


def _polars(path: Path) -> Callable[[], Any]:
    try:
        import polars as pl
    except ImportError as exc:
        raise Skip("polars") from exc
    d = pl.col(PREDICTIONS[0]) - pl.col(TARGET)
    aggregations = [
        pl.len(),
        (d * d).sum().alias("se"),
        d.abs().sum().alias("ae"),
        d.sum().alias("signed"),
        pl.col(TARGET).sum().alias("target"),
        (pl.col(TARGET) ** 2).sum().alias("target_squared"),
    ]
    frame = pl.scan_parquet(f"{path}/part-*.parquet")
    return lambda: frame.group_by(KEY).agg(aggregations).collect()


def _peak_rss(path: Path) -> float:
    """Peak RSS (MiB) of a sliced evaluation in a fresh process."""
    code = (
        "import resource, daskloss, sys\n"
        f"daskloss.evaluate({str(path)!r}, {TARGET!r}, {PREDICTIONS[0]!r}, group_by={KEY!r})\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the slicing benchmark; print a table and optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m jobs.benchmark_slices", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--slices", type=int, default=1000)
    parser.add_argument("--many-slices", type=int, default=100_000, help="0 to skip")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path("bench-data") / "slices")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    path = args.data / f"{args.rows}-{args.files}-{args.slices}"
    prepare(path, args.rows, args.files, args.slices)
    methods = _methods(path)
    times, _, results = time_interleaved(methods, args.repeat, log=_log)
    reference = times["unsliced"]
    report: dict[str, Any] = {"rows": args.rows, "files": args.files, "slices": args.slices}
    report["methods"] = {
        name: {
            "median_seconds": statistics.median(seconds),
            "unsliced_ratio": statistics.median(seconds) / statistics.median(reference),
            "paired_unsliced_ratio": paired_ratio(seconds, reference),
        }
        for name, seconds in times.items()
    }
    runs = results["sliced"]
    report["sliced_runs_identical"] = all(run == runs[0] for run in runs)
    if args.many_slices:
        many = args.data / f"{args.rows // 10}-{args.files}-{args.many_slices}"
        prepare(many, args.rows // 10, args.files, args.many_slices)
        report["many_slices"] = {
            "rows": args.rows // 10,
            "slices": args.many_slices,
            "peak_rss_mib": _peak_rss(many),
        }
    print(_table(report))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _table(report: dict[str, Any]) -> str:
    lines = [
        f"### {report['rows']:,} rows in {report['files']} files, {report['slices']:,} slices",
        "",
        "| method | median (s) | / unsliced | / unsliced, paired |",
        "|---|---:|---:|---:|",
    ]
    for name, entry in report["methods"].items():
        lines.append(
            f"| {name} | {entry['median_seconds']:.3f} | {entry['unsliced_ratio']:.2f} | "
            f"{entry['paired_unsliced_ratio']:.2f} |"
        )
    lines.append("")
    lines.append(f"- sliced runs bit-identical: {report['sliced_runs_identical']}")
    many = report.get("many_slices")
    if many:
        lines.append(
            f"- {many['slices']:,} slices over {many['rows']:,} rows: peak RSS "
            f"{many['peak_rss_mib']:.0f} MiB"
        )
    return "\n".join(lines)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
