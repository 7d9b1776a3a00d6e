"""What the benchmark times: the read floors, daskloss, and what a user writes without it.

Every dataset method reads the columns an evaluation needs (``y_true`` and
``y_pred``, and ``weight`` when weighted) from one layout:

``floor:*``
    pyarrow reading those columns with nothing computed, five ways (see
    :data:`FLOORS`); the fastest of them in a run is that layout's *floor*.
``daskloss``
    :func:`daskloss.evaluate` on Dask's threaded scheduler (the embedded default).
``daskloss-localcluster``
    The same on a ``LocalCluster`` of two worker processes of one thread each.
``naive-dask``, ``duckdb``, ``polars``
    Float sums of the same metrics, as a user would write them.
``kernel``
    The exact kernel alone on in-memory arrays (ns/row), next to ``np.sum``
    and ``math.fsum``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from benchmarks.data import PREDICTION, TARGET, WEIGHT, Layout, data_rows

__all__ = [
    "DATASET_METHODS",
    "FLOORS",
    "KERNEL",
    "Method",
    "SharedCluster",
    "Skip",
    "kernel_methods",
    "make_method",
]

#: The read floors: pyarrow reading the needed columns, nothing computed.
FLOORS = {
    "floor:tables": "pq.read_table per file, files in a thread pool (the earlier floor)",
    "floor:row-groups": "each row group read whole (read_row_group), files in a thread pool",
    "floor:batches": "record batches (iter_batches, pyarrow's defaults), files in a thread pool",
    "floor:buffered": "record batches of 131,072 rows through a 256 KiB buffered stream, "
    "no pre-buffering (how daskloss reads), files in a thread pool",
    "floor:scanner": "the dataset scanner (pyarrow.dataset to_batches, its own threads)",
}
DATASET_METHODS = (
    *FLOORS,
    "daskloss",
    "daskloss-localcluster",
    "naive-dask",
    "duckdb",
    "polars",
)
KERNEL = "kernel"
FSUM_ROWS = 1_000_000
#: Rows per batch and bytes of buffer of the buffered floor: those of daskloss's reader.
BATCH_ROWS = 1 << 17
BUFFER_BYTES = 256 * 2**10


class Skip(Exception):
    """A method cannot run here (an optional package is missing)."""


@dataclass
class Method:
    """One timed thing: ``run()`` does the work once and returns what it found.

    ``kind`` is the method (``daskloss``, ``floor:tables``...), ``name`` its
    label in the report; ``cpu()`` reads the CPU seconds used so far by every
    process the method runs in.
    """

    kind: str
    name: str
    layout: Layout | None
    weighted: bool
    rows: int
    run: Callable[[], Any]
    cpu: Callable[[], float] = time.process_time
    setup_seconds: float | None = None

    @property
    def group(self) -> str:
        """The (layout, weighting) whose floor this method is compared with."""
        return group_name(self.layout, self.weighted)


def group_name(layout: Layout | None, weighted: bool) -> str:
    where = layout.label if layout else "in memory"
    return f"{where}, {'weighted' if weighted else 'unweighted'}"


def columns(weighted: bool) -> list[str]:
    return [TARGET, PREDICTION, WEIGHT] if weighted else [TARGET, PREDICTION]


def _in_pool(function: Callable[[str], int], files: list[str]) -> int:
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        return sum(pool.map(function, files))


def _floor_tables(layout: Layout, weighted: bool) -> Callable[[], int]:
    needed = columns(weighted)
    return lambda: _in_pool(
        lambda path: pq.read_table(path, columns=needed).num_rows, layout.file_paths()
    )


def _floor_row_groups(layout: Layout, weighted: bool) -> Callable[[], int]:
    needed = columns(weighted)

    def read(path: str) -> int:
        file = pq.ParquetFile(path)
        return sum(
            file.read_row_group(group, columns=needed, use_threads=False).num_rows
            for group in range(file.metadata.num_row_groups)
        )

    return lambda: _in_pool(read, layout.file_paths())


def _floor_batches(layout: Layout, weighted: bool, **options: Any) -> Callable[[], int]:
    needed = columns(weighted)

    def read(path: str) -> int:
        batches = pq.ParquetFile(path, **options).iter_batches(
            batch_size=BATCH_ROWS, columns=needed, use_threads=False
        )
        return sum(batch.num_rows for batch in batches)

    return lambda: _in_pool(read, layout.file_paths())


def _floor_buffered(layout: Layout, weighted: bool) -> Callable[[], int]:
    return _floor_batches(layout, weighted, buffer_size=BUFFER_BYTES, pre_buffer=False)


def _floor_scanner(layout: Layout, weighted: bool) -> Callable[[], int]:
    needed = columns(weighted)

    def run() -> int:
        dataset = pads.dataset(layout.file_paths(), format="parquet")
        return sum(batch.num_rows for batch in dataset.to_batches(columns=needed))

    return run


def _daskloss_run(layout: Layout, weighted: bool, scheduler: Any) -> Callable[[], Any]:
    import dask

    import daskloss

    def run() -> dict[str, float | int]:
        with dask.config.set(scheduler=scheduler):
            return daskloss.evaluate(str(layout.path), weight=WEIGHT if weighted else None).metrics

    return run


def _daskloss(layout: Layout, weighted: bool) -> Callable[[], Any]:
    return _daskloss_run(layout, weighted, "threads")


class SharedCluster:
    """One two-process LocalCluster for every LocalCluster method of a run, started once."""

    def __init__(self) -> None:
        self.client: Any = None
        self.cluster: Any = None
        self.setup_seconds: float | None = None

    def get(self) -> Any:
        """The Client; the cluster is started at the first call (its start-up timed apart)."""
        if self.client is None:
            from distributed import Client, LocalCluster

            start = time.perf_counter()
            self.cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            self.client = Client(self.cluster, set_as_default=False)
            self.client.wait_for_workers(2)
            self.setup_seconds = time.perf_counter() - start
        return self.client

    def cpu(self) -> float:
        """CPU seconds of this process (client and scheduler) and of the workers."""
        workers = self.client.run(time.process_time) if self.client is not None else {}
        return time.process_time() + sum(workers.values())

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.cluster.close()
            self.client = self.cluster = None


def _times(x: Any, weight: Any) -> Any:
    """``x`` weighted: works alike on Dask series, Polars expressions and SQL text."""
    if weight is None:
        return x
    if isinstance(x, str):
        return f"{weight} * {x}"
    return weight * x


def _naive_dask(layout: Layout, weighted: bool) -> Callable[[], Any]:
    import dask
    import dask.dataframe as dd

    def run() -> dict[str, float]:
        with dask.config.set(scheduler="threads"):
            df = dd.read_parquet(str(layout.path), columns=columns(weighted))
            d, y = df[PREDICTION] - df[TARGET], df[TARGET]
            w = df[WEIGHT] if weighted else None
            sums = {
                "n": y.count(),
                "sw": y.count() if w is None else w.sum(),
                "se": _times(d**2, w).sum(),
                "ae": _times(d.abs(), w).sum(),
                "sd": _times(d, w).sum(),
                "sy": _times(y, w).sum(),
                "syy": _times(y**2, w).sum(),
                "max": d.abs().max(),
            }
            (found,) = dask.compute(sums)
        return naive_metrics(found)

    return run


def _duckdb(layout: Layout, weighted: bool) -> Callable[[], Any]:
    duckdb = _optional("duckdb")
    w = WEIGHT if weighted else None
    d = f"({PREDICTION} - {TARGET})"
    terms = {
        "n": "count(*)",
        "sw": "count(*)" if w is None else f"sum({w})",
        "se": f"sum({_times(f'{d} * {d}', w)})",
        "ae": f"sum({_times(f'abs({d})', w)})",
        "sd": f"sum({_times(d, w)})",
        "sy": f"sum({_times(TARGET, w)})",
        "syy": f"sum({_times(f'{TARGET} * {TARGET}', w)})",
        "max": f"max(abs({d}))",
    }
    select = ", ".join(f"{term} AS {name}" for name, term in terms.items())
    query = f"SELECT {select} FROM read_parquet('{layout.glob()}')"
    connection = duckdb.connect()

    def run() -> dict[str, float]:
        values = connection.execute(query).fetchone()
        return naive_metrics(dict(zip(terms, values, strict=True)))

    return run


def _polars(layout: Layout, weighted: bool) -> Callable[[], Any]:
    pl = _optional("polars")
    d, y = pl.col(PREDICTION) - pl.col(TARGET), pl.col(TARGET)
    w = pl.col(WEIGHT) if weighted else None
    sums = {
        "n": pl.len(),
        "sw": pl.len() if w is None else w.sum(),
        "se": _times(d * d, w).sum(),
        "ae": _times(d.abs(), w).sum(),
        "sd": _times(d, w).sum(),
        "sy": _times(y, w).sum(),
        "syy": _times(y * y, w).sum(),
        "max": d.abs().max(),
    }

    def run() -> dict[str, float]:
        frame = pl.scan_parquet(layout.glob()).select(**sums).collect()
        return naive_metrics(frame.row(0, named=True))

    return run


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as exc:
        raise Skip(f"{name} is not installed (pip install 'daskloss[bench]')") from exc


def naive_metrics(sums: dict[str, Any]) -> dict[str, float]:
    """The metrics a user derives from float sums (R² by the one-pass textbook formula)."""
    sw, se, sy = float(sums["sw"]), float(sums["se"]), float(sums["sy"])
    return {
        "count": int(sums["n"]),
        "mse": se / sw,
        "rmse": math.sqrt(se / sw),
        "mae": float(sums["ae"]) / sw,
        "max_error": float(sums["max"]),
        "bias": float(sums["sd"]) / sw,
        "r2": 1.0 - se / (float(sums["syy"]) - sy * sy / sw),
    }


_FACTORIES: dict[str, Callable[[Layout, bool], Callable[[], Any]]] = {
    "floor:tables": _floor_tables,
    "floor:row-groups": _floor_row_groups,
    "floor:batches": _floor_batches,
    "floor:buffered": _floor_buffered,
    "floor:scanner": _floor_scanner,
    "daskloss": _daskloss,
    "naive-dask": _naive_dask,
    "duckdb": _duckdb,
    "polars": _polars,
}


def make_method(
    kind: str, layout: Layout, weighted: bool, label: str, cluster: SharedCluster | None = None
) -> Method:
    """Set up one dataset method (raises :class:`Skip` when it cannot run here)."""
    if kind == "daskloss-localcluster":
        cluster = cluster or SharedCluster()
        run = _daskloss_run(layout, weighted, cluster.get())
        return Method(
            kind, label, layout, weighted, layout.rows, run, cluster.cpu, cluster.setup_seconds
        )
    return Method(kind, label, layout, weighted, layout.rows, _FACTORIES[kind](layout, weighted))


def kernel_methods(rows: int) -> list[Method]:
    """The exact kernel on in-memory arrays, and float sums of the same data for scale."""
    from daskloss._kernel import accumulate

    found = data_rows(0, rows)
    y_true, y_pred, weight = found[TARGET], found[PREDICTION], found[WEIGHT]
    head = y_pred[:FSUM_ROWS]

    def method(name: str, weighted: bool, count: int, run: Callable[[], Any]) -> Method:
        return Method(KERNEL, name, None, weighted, count, run, time.thread_time)

    return [
        method("kernel", False, rows, lambda: accumulate(y_true, y_pred)),
        method("kernel (weighted)", True, rows, lambda: accumulate(y_true, y_pred, weight)),
        method("np.sum", False, rows, lambda: float(np.sum(y_pred))),
        method("math.fsum", False, len(head), lambda: math.fsum(head)),
    ]
