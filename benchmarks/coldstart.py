"""Cold start: a fresh process's first evaluation against its second, from an empty numba cache.

Every case runs in fresh processes whose ``NUMBA_CACHE_DIR`` is a new empty
directory, so nothing is compiled beforehand unless the case does it:

``fresh install``
    A process evaluates twice; the first run compiles the kernel (in the
    background from the start of :func:`daskloss.evaluate`).
``after daskloss warmup``
    ``daskloss warmup --kind K`` runs first (timed apart), as in a container
    image; then a process evaluates twice.
``fresh LocalCluster workers`` (with or without the warm-up first)
    A new two-process LocalCluster: the job's way, each worker asked to warm
    the kernel as the job connects (:func:`daskloss.warmup.warm_workers`), then
    the evaluation; twice.
``workers started with --preload daskloss.warmup``
    The same, the workers importing daskloss and loading the kernel as they
    start (as ``dask worker --preload daskloss.warmup`` does), after the warm-up.

The cold start is the first evaluation's time less the second's. Run this
module itself (``python -m benchmarks.coldstart --path DIR``) for one child.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CASES", "cold_start", "main"]

ROOT = Path(__file__).resolve().parents[1]
#: (name, daskloss warmup first, LocalCluster workers or 0 for threads, workers preload daskloss)
CASES = (
    ("fresh install", False, 0, False),
    ("after daskloss warmup", True, 0, False),
    ("fresh LocalCluster workers", False, 2, False),
    ("fresh LocalCluster workers after daskloss warmup", True, 2, False),
    ("workers started with --preload daskloss.warmup, after daskloss warmup", True, 2, True),
)
_WARMUP = "import sys; from daskloss.cli import main; sys.exit(main(sys.argv[1:]))"


def cold_start(path: str, weightings: Sequence[bool], log: Callable[[str], None]) -> list[dict]:
    """Every case for each weighting, on the dataset at ``path``."""
    found = []
    for weighted in weightings:
        for name, warm_first, workers, preload in CASES:
            log(f"cold start: {name}, {'weighted' if weighted else 'unweighted'} ...")
            found.append(_case(path, weighted, name, warm_first, workers, preload))
    return found


def _case(
    path: str, weighted: bool, name: str, warm_first: bool, workers: int, preload: bool
) -> dict:
    with tempfile.TemporaryDirectory(prefix="daskloss-numba-") as cache:
        environment = {**os.environ, "NUMBA_CACHE_DIR": cache}
        entry: dict[str, Any] = {"case": name, "weighted": weighted, "workers": workers}
        if warm_first:
            kind = "weighted" if weighted else "unweighted"
            command = [sys.executable, "-c", _WARMUP, "warmup", "--kind", kind]
            start = time.perf_counter()
            done = subprocess.run(command, env=environment, capture_output=True, text=True)
            entry["warmup_command_seconds"] = time.perf_counter() - start
            if done.returncode != 0:
                return entry | {"error": done.stderr.strip().splitlines()[-1:]}
        command = [sys.executable, "-m", "benchmarks.coldstart", "--path", path]
        command += ["--weighted"] * weighted + ["--preload"] * preload
        command += ["--workers", str(workers)]
        done = subprocess.run(command, env=environment, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            return entry | {"error": done.stderr.strip().splitlines()[-1:]}
        child = json.loads(done.stdout.strip().splitlines()[-1])
        cold = child["first_seconds"] - child["second_seconds"]
        return entry | child | {"cold_start_seconds": cold}


def main(argv: Sequence[str] | None = None) -> int:
    """One child: import, then evaluate twice; print the seconds as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coldstart")
    parser.add_argument("--path", required=True)
    parser.add_argument("--weighted", action="store_true")
    parser.add_argument("--workers", type=int, default=0, help="a LocalCluster of N, or threads")
    parser.add_argument("--preload", action="store_true", help="workers preload daskloss.warmup")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    import dask

    import daskloss
    from daskloss.warmup import warm_workers

    found: dict[str, Any] = {"import_seconds": time.perf_counter() - start}
    weight = "weight" if args.weighted else None
    client = cluster = None
    if args.workers:
        from distributed import Client, LocalCluster

        start = time.perf_counter()
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            preload=["daskloss.warmup"] if args.preload else None,
        )
        client = Client(cluster, set_as_default=False)
        client.wait_for_workers(args.workers)
        found["cluster_start_seconds"] = time.perf_counter() - start
    runs = []
    for _ in range(2):
        start = time.perf_counter()
        with dask.config.set(scheduler=client or "threads"):
            warming = warm_workers(client, weighted=args.weighted) if client else []
            metrics = daskloss.evaluate(args.path, weight=weight).metrics
            del warming
        runs.append(time.perf_counter() - start)
    found |= {"first_seconds": runs[0], "second_seconds": runs[1], "count": metrics["count"]}
    if client is not None:
        client.close()
        cluster.close()
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
