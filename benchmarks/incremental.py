"""The incremental-run benchmark: a day-2 run with a cache against a full run.

Writes ``--days`` daily files (``day=YYYY-MM-DD/part-0.parquet``: a target,
two models, a weight and a segment), then times, each ``--repeat`` times
(medians reported):

* ``full``: a run over every file, without a cache;
* ``day1_cached``: the same run writing a fresh cache (the cost of keeping
  per-file statistics);
* ``day2_incremental``: after day 2's changes (2 days added, 1 rewritten,
  1 deleted), a run with day 1's cache (restored before each repeat): it
  reads 3 files;
* ``day2_full``: day 2 without a cache.

With ``--shape``, every run also gathers the shape of the errors as a job
does by default (each prediction's histogram and 10 worst rows, which the
cache keeps per file too).

It checks that the incremental run's statistics (and shape) equal the full
run's, and reports the sizes of the cache document and of the run's
statistics artifact.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import daskloss
from daskloss.artifacts import StatisticsArtifact
from daskloss.cache import StatisticsCache

_ARGS = {"y_pred": ["y_pred", "y_pred_baseline"], "weight": "weight", "group_by": "segment"}
_FIRST_DAY = date(2026, 1, 1)
#: What ``--shape`` adds: the job's defaults for the shape of the errors.
_SHAPE = {"histogram": True, "worst_k": 10}


def write_day(root: Path, index: int, rows: int, seed: int | None = None) -> Path:
    """The file of day ``index``: ``root/day=YYYY-MM-DD/part-0.parquet``."""
    rng = np.random.default_rng(index if seed is None else seed)
    y = rng.normal(100.0, 30.0, rows)
    frame = pd.DataFrame(
        {
            "y_true": y,
            "y_pred": y + rng.normal(0.0, 5.0, rows),
            "y_pred_baseline": y + rng.normal(0.0, 6.0, rows),
            "weight": rng.random(rows),
            "segment": rng.choice(["retail", "online", "partner", "wholesale"], rows),
        }
    )
    path = root / f"day={_FIRST_DAY + timedelta(days=index)}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def day_two(root: Path, days: int, rows: int) -> None:
    """Day 2's changes: two days added, one rewritten, one deleted."""
    write_day(root, days, rows), write_day(root, days + 1, rows)
    write_day(root, days // 2, rows, seed=10_000)
    shutil.rmtree(root / f"day={_FIRST_DAY + timedelta(days=1)}")


def _timed(run: Callable[[], Any], repeat: int, before: Callable[[], None] = lambda: None):
    seconds, result = [], None
    for _ in range(repeat):
        before()
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    return {"median_seconds": round(statistics.median(seconds), 4), "seconds": seconds}, result


def run(days: int, rows: int, repeat: int, data: Path, shape: bool = False) -> dict[str, Any]:
    """Write the data under ``data`` and time the four runs (see the module docstring)."""
    args = {**_ARGS, **(_SHAPE if shape else {})}
    root, caches = data / "predictions", data / "caches"
    shutil.rmtree(data, ignore_errors=True)
    for index in range(days):
        write_day(root, index, rows)
    full, _ = _timed(lambda: daskloss.evaluate(root, **args), repeat)

    def fresh_cache() -> None:
        shutil.rmtree(caches, ignore_errors=True)

    cache = StatisticsCache(str(caches / "cache"))
    day1, first = _timed(lambda: daskloss.evaluate(root, cache=cache, **args), repeat, fresh_cache)
    shutil.copytree(caches / "cache", caches / "day1")
    day_two(root, days, rows)

    def day1_cache() -> None:
        shutil.rmtree(caches / "cache")
        shutil.copytree(caches / "day1", caches / "cache")

    incremental, second = _timed(
        lambda: daskloss.evaluate(root, cache=cache, **args), repeat, day1_cache
    )
    day2_full, reference = _timed(lambda: daskloss.evaluate(root, **args), repeat)
    assert second.evaluation.rows == reference.evaluation.rows, "incremental != full"
    for name in _ARGS["y_pred"]:
        same = (second.histogram(name), second.worst(name)) == (
            reference.histogram(name),
            reference.worst(name),
        )
        assert same, "the incremental shape != the full one"
    document = next((caches / "cache").iterdir())
    artifact = StatisticsArtifact.of(second, "error")
    return {
        "days": days,
        "rows_per_day": rows,
        "repeat": repeat,
        "shape": shape,
        "full": full,
        "day1_cached": day1,
        "day2_incremental": incremental | {"files_read": second.cache.files_read},
        "day2_full": day2_full,
        "speedup": round(day2_full["median_seconds"] / incremental["median_seconds"], 2),
        "files_day1": first.cache.files_read,
        "cache_bytes": document.stat().st_size,
        "artifact_bytes": len(artifact.to_bytes()),
        "artifact_gzip_bytes": len(artifact.to_bytes(compress=True)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line ``argv``; print its JSON summary."""
    parser = argparse.ArgumentParser(prog="python -m jobs.benchmark_incremental")
    parser.add_argument("--days", type=int, default=60, help="daily files (default 60)")
    parser.add_argument("--rows-per-day", type=int, default=200_000, help="(default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs each (default 3)")
    parser.add_argument("--data", type=Path, help="where to write (default: a temporary dir)")
    parser.add_argument(
        "--shape", action="store_true", help="also the histogram and 10 worst rows (job defaults)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or Path(scratch)
        summary = run(args.days, args.rows_per_day, args.repeat, data, args.shape)
    print(json.dumps(summary, indent=2))
    return 0
