"""Toward many machines: planning many files, the scheduler's cost per task, bytes per task.

Measured here, then put together in :func:`model` for a run of 1,000
workers over 100,000 files:

* **planning**: listing and planning a layout's files exactly as
  :func:`daskloss.evaluate` does, and building its graph, counting every
  Parquet footer and schema the client reads (only the first file's schema
  should be read: small files are sized by the unit that reads them);
* **the scheduler's cost per task**: a tree of trivial tasks through the same
  :func:`daskloss.reduce.tree_reduce` on a two-process LocalCluster (the
  scheduler runs in this process, so its CPU is this process's) and on threads;
* **bytes per task**: what the scheduler ships to run a unit (its pickled
  work unit) and what each task sends up the merge tree (its pickled statistics).
"""

from __future__ import annotations

import functools
import math
import pickle
import statistics
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

from benchmarks.data import PREDICTION, TARGET, WEIGHT, Layout

__all__ = [
    "LISTING_ROWS_PER_FILE",
    "MODEL_FILES",
    "MODEL_THREADS",
    "MODEL_WORKERS",
    "bytes_per_task",
    "model",
    "planning",
    "scheduler_overhead",
]

#: The run modelled: workers of two threads each, over this many files.
MODEL_WORKERS = 1_000
MODEL_THREADS = 2
MODEL_FILES = 100_000
#: Rows per file of the layout that is only listed and planned.
LISTING_ROWS_PER_FILE = 10
#: Tasks of the trivial tree that measures the scheduler.
OVERHEAD_TASKS = 2_000


def _merge_levels(units: int, fan_in: int) -> list[int]:
    """Tasks per level of the merge tree above ``units`` unit tasks."""
    levels = []
    while units > 1:
        units = math.ceil(units / fan_in)
        levels.append(units)
    return levels


def planning(layout: Layout, repeat: int = 3) -> dict[str, Any]:
    """List and plan ``layout``'s files as evaluate() does, build the graph; reads counted."""
    from daskloss.evaluate import unit_statistics
    from daskloss.reduce import DEFAULT_SPLIT_EVERY, tree_reduce
    from daskloss.roles import EvaluationSpec
    from daskloss.sources import plan_source
    from daskloss.sources.reader import FileReader
    from daskloss.stats import EvaluationStats

    spec = EvaluationSpec.of(TARGET, PREDICTION)
    plan_times, graph_times = [], []
    with (
        mock.patch.object(FileReader, "footer", autospec=True, side_effect=FileReader.footer) as f,
        mock.patch.object(FileReader, "schema", autospec=True, side_effect=FileReader.schema) as s,
    ):
        for _ in range(repeat):
            start = time.perf_counter()
            plan = plan_source(str(layout.path), spec.value_columns)
            plan_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            graph = tree_reduce(
                plan.units,
                functools.partial(unit_statistics, spec=spec, nan_policy="error"),
                EvaluationStats.merge_all,
                traverse=False,
            )
            graph_times.append(time.perf_counter() - start)
    levels = _merge_levels(len(plan.units), DEFAULT_SPLIT_EVERY)
    return {
        "files": layout.files,
        "units": len(plan.units),
        "tasks": len(graph.__dask_graph__()),
        "merge_levels": len(levels),
        "plan_seconds": statistics.median(plan_times),
        "plan_seconds_range": [min(plan_times), max(plan_times)],
        "graph_seconds": statistics.median(graph_times),
        "footers_read": f.call_count // repeat,
        "schemas_read": s.call_count // repeat,
        "unit_pickle_bytes": statistics.median(len(pickle.dumps(unit)) for unit in plan.units),
    }


def scheduler_overhead(tasks: int = OVERHEAD_TASKS, repeat: int = 3) -> dict[str, Any]:
    """Wall and scheduler CPU per task of a tree of trivial tasks, on processes and threads."""
    import dask
    from distributed import Client, LocalCluster

    from daskloss.reduce import tree_reduce

    def timed(scheduler: Any, cpu: Callable[[], float]) -> dict[str, float]:
        walls, cpus = [], []
        total = 0
        for _ in range(repeat + 1):
            graph = tree_reduce(range(tasks), int, sum, traverse=False)
            total = len(graph.__dask_graph__())
            before, start = cpu(), time.perf_counter()
            with dask.config.set(scheduler=scheduler):
                graph.compute()
            walls.append(time.perf_counter() - start)
            cpus.append(cpu() - before)
        walls, cpus = walls[1:], cpus[1:]  # the first round warms up
        return {
            "tasks": total,
            "wall_us_per_task": statistics.median(walls) / total * 1e6,
            "scheduler_cpu_us_per_task": statistics.median(cpus) / total * 1e6,
        }

    found = {"threads": timed("threads", time.process_time)}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        found["local-cluster"] = timed(client, time.process_time)
    return found


def bytes_per_task(layout: Layout) -> dict[str, Any]:
    """Pickled bytes of a unit (sent to run it) and of its statistics (sent up the tree)."""
    from daskloss.evaluate import unit_statistics
    from daskloss.roles import EvaluationSpec
    from daskloss.sources import plan_source

    found: dict[str, Any] = {}
    for weighted in (False, True):
        spec = EvaluationSpec.of(TARGET, PREDICTION, WEIGHT if weighted else None)
        plan = plan_source(str(layout.path), spec.value_columns)
        stats = unit_statistics(plan.units[0], spec, "error")
        kind = "weighted" if weighted else "unweighted"
        found[f"statistics_bytes_{kind}"] = len(pickle.dumps(stats))
        found["unit_bytes"] = len(pickle.dumps(plan.units[0]))
    return found


def model(
    measured: dict[str, Any],
    file_bytes: float,
    rows_per_file: float,
    cpu_ns_per_row: float | None,
) -> dict[str, Any]:
    """A run of MODEL_WORKERS workers over MODEL_FILES files like those measured.

    ``file_bytes`` and ``rows_per_file`` describe a file (from the layout of
    small files); ``cpu_ns_per_row`` is daskloss's CPU per row on them.
    """
    from daskloss.reduce import DEFAULT_SPLIT_EVERY
    from daskloss.sources.files import BATCH_BYTES, fewest_units

    threads = MODEL_WORKERS * MODEL_THREADS
    total = int(MODEL_FILES * file_bytes)
    target = min(BATCH_BYTES, total // fewest_units(total, threads))
    files_per_unit = max(1, int(target // file_bytes))
    units = math.ceil(MODEL_FILES / files_per_unit)
    levels = _merge_levels(units, DEFAULT_SPLIT_EVERY)
    tasks = units + sum(levels)
    planning_found = measured.get("planning", {})
    overhead = measured.get("scheduler", {}).get("local-cluster", {})
    per_task = overhead.get("scheduler_cpu_us_per_task")
    stats_bytes = measured.get("bytes", {}).get("statistics_bytes_weighted")
    rows = MODEL_FILES * rows_per_file
    return {
        "workers": MODEL_WORKERS,
        "threads": threads,
        "files": MODEL_FILES,
        "rows": rows,
        "bytes_on_storage": total,
        "files_per_unit": files_per_unit,
        "units": units,
        "busy_threads": min(units, threads),
        "merge_tasks": sum(levels),
        "tasks": tasks,
        "tree_depth": len(levels),
        "client_planning_seconds": planning_found.get("plan_seconds", 0.0)
        + planning_found.get("graph_seconds", 0.0),
        "scheduler_seconds": None if per_task is None else tasks * per_task / 1e6,
        "merge_tree_bytes": None if stats_bytes is None else (tasks - 1) * stats_bytes,
        "compute_seconds": None
        if cpu_ns_per_row is None
        else rows * cpu_ns_per_row / 1e9 / min(units, threads),
    }
