"""The benchmark: exact evaluation against the read floor and the baselines.

One process generates (or reuses) a Parquet dataset, then times every method
*interleaved* (``A B C A B C ...``) after one untimed warm-up round, so a noisy
machine slows all of them alike. Each method's peak RSS is measured apart, in
a fresh child process (this module again, with ``--rss-child``), so one
method's memory does not pollute another's. Every layout of the same row
count holds the same rows (:func:`data_rows`), so daskloss's metrics must be
bit-identical across layouts, schedulers and runs; the report checks it.

The methods:

``floor``
    pyarrow reading the needed columns of every file, nothing else: the read floor.
``daskloss``
    :func:`daskloss.evaluate` on Dask's threaded scheduler (the embedded default).
``daskloss-localcluster``
    The same on a two-process ``LocalCluster``; its start-up is timed apart.
``naive-dask``, ``duckdb``, ``polars``
    What a user writes without daskloss: float sums of the same metrics.
``kernel``
    The exact kernel alone on in-memory arrays (ns/row), next to ``np.sum``
    and ``math.fsum``.

Run it as ``python -m jobs.benchmark --help``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "Layout",
    "Method",
    "build_parser",
    "checks",
    "data_rows",
    "default_path",
    "identical",
    "main",
    "make_method",
    "markdown",
    "measure_rss",
    "prepare_dataset",
    "time_interleaved",
]

DEFAULT_ROWS = 100_000_000
DEFAULT_FILES = 64
TINY_FILES = 10_000
KERNEL_ROWS = 10_000_000
FSUM_ROWS = 1_000_000
SEED = 4
#: Rows generated and written at a time (one Parquet row group).
CHUNK_ROWS = 1 << 20
#: Rows drawn from one seeded generator (see :func:`data_rows`).
SEED_BLOCK_ROWS = 1 << 13
MANIFEST = "_daskloss_bench.json"
MANIFEST_VERSION = 2
TARGET, PREDICTION, WEIGHT = "y_true", "y_pred", "weight"

DATASET_METHODS = ("floor", "daskloss", "daskloss-localcluster", "naive-dask", "duckdb", "polars")
KERNEL = "kernel"
METHODS = (*DATASET_METHODS, KERNEL)
TINY_METHODS = ("floor", "daskloss")
#: Methods whose metrics are compared with daskloss's exact values.
NAIVE_METHODS = ("naive-dask", "duckdb", "polars")
COMPARED_METRICS = ("mse", "mae", "r2")
_MIB = 1 << 20


class Skip(Exception):
    """A method cannot run here (an optional package is missing)."""


# --- the dataset ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """A benchmark dataset: ``rows`` rows split evenly over ``files`` Parquet files."""

    path: Path
    rows: int
    files: int
    weighted: bool = False

    @property
    def columns(self) -> list[str]:
        return [TARGET, PREDICTION, WEIGHT] if self.weighted else [TARGET, PREDICTION]

    @property
    def weight(self) -> str | None:
        return WEIGHT if self.weighted else None

    def manifest(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "rows": self.rows,
            "files": self.files,
            "weighted": self.weighted,
            "seed": SEED,
            "chunk_rows": CHUNK_ROWS,
            "seed_block_rows": SEED_BLOCK_ROWS,
        }

    def file_paths(self) -> list[str]:
        return [str(self.path / _file_name(i, self.files)) for i in range(self.files)]

    def glob(self) -> str:
        return str(self.path / "*.parquet")


def default_path(rows: int, files: int, weighted: bool, parent: Path | None = None) -> Path:
    """Where a layout lives unless ``--data`` says otherwise: named by rows and files."""
    suffix = "-weighted" if weighted else ""
    name = f"daskloss-bench-{rows}-rows-{files}-files{suffix}"
    return (parent or Path(tempfile.gettempdir())) / name


def _file_name(index: int, files: int) -> str:
    return f"part-{index:0{len(str(files - 1))}d}.parquet"


def prepare_dataset(layout: Layout) -> dict[str, Any]:
    """Reuse the dataset at ``layout.path`` if its manifest matches, else (re)write it."""
    manifest = layout.path / MANIFEST
    start = time.perf_counter()
    generated = not (manifest.exists() and json.loads(manifest.read_text()) == layout.manifest())
    if generated:
        _clear(layout.path)
        _log(f"writing {layout.rows:,} rows as {layout.files:,} files in {layout.path} ...")
        _generate(layout)
        manifest.write_text(json.dumps(layout.manifest()))
    return {
        "path": str(layout.path),
        "rows": layout.rows,
        "files": layout.files,
        "weighted": layout.weighted,
        "bytes": sum(os.path.getsize(f) for f in layout.file_paths()),
        "generated": generated,
        "generate_seconds": time.perf_counter() - start if generated else None,
    }


def _clear(path: Path) -> None:
    """Empty a directory this benchmark wrote; refuse to touch anything else."""
    if not path.exists():
        path.mkdir(parents=True)
        return
    entries = list(path.iterdir())
    if entries and not (path / MANIFEST).exists():
        raise SystemExit(
            f"{path} exists and is not a daskloss benchmark dataset (no {MANIFEST}); "
            "pass --data with an empty or new directory"
        )
    for entry in entries:
        entry.unlink()


def _generate(layout: Layout) -> None:
    base, extra = divmod(layout.rows, layout.files)
    sizes = [base + (i < extra) for i in range(layout.files)]
    starts = list(itertools.accumulate(sizes, initial=0))[:-1]
    jobs = [
        (index, start, size) for index, (start, size) in enumerate(zip(starts, sizes, strict=True))
    ]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(lambda job: _write_file(layout, *job), jobs))


def _write_file(layout: Layout, index: int, start: int, rows: int) -> None:
    """File ``index``: rows ``[start, start + rows)``, a row group at a time."""
    path = layout.path / _file_name(index, layout.files)
    partial = path.with_name("." + path.name)
    schema = pa.schema([(name, pa.float64()) for name in layout.columns])
    stop = start + rows
    with pq.ParquetWriter(partial, schema, compression="snappy") as writer:
        for low in range(start, max(stop, start + 1), CHUNK_ROWS):
            columns = data_rows(low, min(low + CHUNK_ROWS, stop))
            writer.write_table(pa.table({name: columns[name] for name in layout.columns}))
    partial.replace(path)


def data_rows(start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows ``[start, stop)`` of the benchmark data, the same whatever the file layout.

    Row ``i`` comes from the generator seeded ``[SEED, i // SEED_BLOCK_ROWS]``, so a
    dataset cut into 64 files and one cut into 10,000 hold the same values
    (and daskloss must give bit-identical metrics on both).
    """
    first, last = start // SEED_BLOCK_ROWS, -(-stop // SEED_BLOCK_ROWS)
    blocks = [_block(index) for index in range(first, last)]
    low, high = start - first * SEED_BLOCK_ROWS, stop - first * SEED_BLOCK_ROWS
    return {
        name: np.concatenate([block[name] for block in blocks] or [np.empty(0)])[low:high]
        for name in (TARGET, PREDICTION, WEIGHT)
    }


def _block(index: int) -> dict[str, np.ndarray]:
    """Targets around 50 and predictions off by a few units: a plausible regression."""
    rng = np.random.default_rng([SEED, index])
    y_true = 50.0 + 10.0 * rng.standard_normal(SEED_BLOCK_ROWS)
    y_pred = y_true + 2.0 * rng.standard_normal(SEED_BLOCK_ROWS)
    return {TARGET: y_true, PREDICTION: y_pred, WEIGHT: rng.uniform(0.5, 2.0, SEED_BLOCK_ROWS)}


# --- the methods ---------------------------------------------------------------------------


@dataclass
class Method:
    """One timed thing: ``run()`` does the work once and returns what it found.

    ``kind`` is the method (``daskloss``...), ``name`` its label in the report.
    """

    kind: str
    name: str
    layout: Layout | None
    rows: int
    run: Callable[[], Any]
    close: Callable[[], None] = lambda: None
    setup_seconds: float | None = None


def _floor(layout: Layout) -> Callable[[], Any]:
    files, columns = layout.file_paths(), layout.columns

    def read(path: str) -> int:
        return pq.read_table(path, columns=columns).num_rows

    def run() -> int:
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            return sum(pool.map(read, files))

    return run


def _daskloss_run(layout: Layout, scheduler: Any) -> Callable[[], Any]:
    import dask

    import daskloss

    def run() -> dict[str, float | int]:
        with dask.config.set(scheduler=scheduler):
            return daskloss.evaluate(str(layout.path), weight=layout.weight).metrics

    return run


def _daskloss(layout: Layout) -> Callable[[], Any]:
    return _daskloss_run(layout, "threads")


def _localcluster(layout: Layout) -> Method:
    """daskloss on two worker processes; the cluster start-up is timed here, apart."""
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = Client(cluster, set_as_default=False)
    client.wait_for_workers(2)
    setup = time.perf_counter() - start

    def close() -> None:
        client.close()
        cluster.close()

    name = "daskloss-localcluster"
    return Method(name, name, layout, layout.rows, _daskloss_run(layout, client), close, setup)


def _times(x: Any, weight: Any) -> Any:
    """``x`` weighted: works alike on Dask series, Polars expressions and SQL text."""
    if weight is None:
        return x
    if isinstance(x, str):
        return f"{weight} * {x}"
    return weight * x


def _naive_dask(layout: Layout) -> Callable[[], Any]:
    import dask
    import dask.dataframe as dd

    def run() -> dict[str, float]:
        with dask.config.set(scheduler="threads"):
            df = dd.read_parquet(str(layout.path), columns=layout.columns)
            d, y = df[PREDICTION] - df[TARGET], df[TARGET]
            w = df[WEIGHT] if layout.weighted else None
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
        return _naive_metrics(found)

    return run


def _duckdb(layout: Layout) -> Callable[[], Any]:
    duckdb = _optional("duckdb")
    w = WEIGHT if layout.weighted else None
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
        return _naive_metrics(dict(zip(terms, values, strict=True)))

    return run


def _polars(layout: Layout) -> Callable[[], Any]:
    pl = _optional("polars")
    d, y = pl.col(PREDICTION) - pl.col(TARGET), pl.col(TARGET)
    w = pl.col(WEIGHT) if layout.weighted else None
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
        return _naive_metrics(frame.row(0, named=True))

    return run


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as exc:
        raise Skip(f"{name} is not installed (pip install 'daskloss[bench]')") from exc


def _naive_metrics(sums: dict[str, Any]) -> dict[str, float]:
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


_FACTORIES: dict[str, Callable[[Layout], Callable[[], Any]]] = {
    "floor": _floor,
    "daskloss": _daskloss,
    "naive-dask": _naive_dask,
    "duckdb": _duckdb,
    "polars": _polars,
}


def make_method(name: str, layout: Layout, label: str | None = None) -> Method:
    """Set up one dataset method (raises :class:`Skip` when it cannot run here)."""
    if name == "daskloss-localcluster":
        method = _localcluster(layout)
    else:
        method = Method(name, name, layout, layout.rows, _FACTORIES[name](layout))
    method.name = label or name
    return method


def _kernel_methods(rows: int) -> list[Method]:
    """The exact kernel on in-memory arrays, and float sums of the same data for scale."""
    from daskloss._kernel import accumulate

    y_true, y_pred, weight = data_rows(0, rows).values()
    head = y_pred[:FSUM_ROWS]
    return [
        Method(KERNEL, "kernel", None, rows, lambda: accumulate(y_true, y_pred)),
        Method(KERNEL, "kernel (weighted)", None, rows, lambda: accumulate(y_true, y_pred, weight)),
        Method(KERNEL, "np.sum", None, rows, lambda: float(np.sum(y_pred))),
        Method(KERNEL, "math.fsum", None, len(head), lambda: math.fsum(head)),
    ]


# --- timing and memory ---------------------------------------------------------------------


def time_interleaved(
    methods: Sequence[Method], repeat: int
) -> tuple[dict[str, list[float]], dict[str, list[Any]]]:
    """Run every method once per round, ``A B C A B C ...``; round 0 is an untimed warm-up.

    Returns the timed seconds and the results of the timed runs, per method.
    """
    times: dict[str, list[float]] = {m.name: [] for m in methods}
    results: dict[str, list[Any]] = {m.name: [] for m in methods}
    for round_number in range(repeat + 1):
        for method in methods:
            gc.collect()
            start = time.perf_counter()
            result = method.run()
            elapsed = time.perf_counter() - start
            if round_number:
                times[method.name].append(elapsed)
                results[method.name].append(result)
            kind = f"run {round_number}/{repeat}" if round_number else "warm-up"
            _log(f"  {kind:>10}  {method.name:<24} {elapsed:8.3f} s")
    return times, results


def _summary(method: Method, seconds: list[float]) -> dict[str, Any]:
    median = statistics.median(seconds)
    return {
        "rows": method.rows,
        "files": method.layout.files if method.layout else None,
        "seconds": seconds,
        "median_seconds": median,
        "min_seconds": min(seconds),
        "rows_per_second": method.rows / median,
        "ns_per_row": median / method.rows * 1e9,
        "setup_seconds": method.setup_seconds,
    }


class _PeakSampler:
    """Samples the summed RSS of this process and its descendants (cluster workers)."""

    def __init__(self, interval: float = 0.01) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak = 0

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def tree_rss(self) -> int:
        import psutil

        total = 0
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self.tree_rss())


def _rss_child(method: Method) -> dict[str, Any]:
    """Run one method once in this (fresh) process and measure its memory."""
    with _PeakSampler() as sampler:
        baseline = sampler.tree_rss()
        method.run()
        sampler.peak = max(sampler.peak, sampler.tree_rss())
    own_peak = _high_water_mark()
    return {
        "peak_rss_bytes": max(sampler.peak, own_peak),
        "baseline_rss_bytes": baseline,
        "process_high_water_bytes": own_peak,
    }


def _high_water_mark() -> int:
    """This process's exact peak RSS (``VmHWM``).

    Not ``getrusage(...).ru_maxrss``: Linux carries the parent's peak into it
    across ``fork`` + ``exec``, so a child started from a big benchmark
    process would report the parent's memory.
    """
    try:
        with open("/proc/self/status") as status:
            lines = [line for line in status if line.startswith("VmHWM:")]
    except OSError:  # not Linux: the sampled peak stands alone
        return 0
    return int(lines[0].split()[1]) * 1024 if lines else 0


def measure_rss(name: str, layout: Layout) -> dict[str, Any]:
    """Peak RSS of one method, measured in a fresh interpreter."""
    command = [
        sys.executable, "-m", "benchmarks.bench", "--rss-child", "--only", name,
        "--rows", str(layout.rows), "--files", str(layout.files), "--data", str(layout.path),
    ]  # fmt: skip
    if layout.weighted:
        command.append("--weighted")
    root = Path(__file__).resolve().parents[1]  # run from the repository, where this package is
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["no output"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    agree with itself across layouts and schedulers, run after run.
    """
    exact = [run for m in methods if m.kind.startswith("daskloss") for run in results[m.name]]
    if not exact:
        return {}
    naive = [m.name for m in methods if m.kind in NAIVE_METHODS]
    return {
        "daskloss_runs_identical": all(identical(exact[0], run) for run in exact),
        "naive_relative_difference": {
            name: {
                key: _relative(results[name][-1][key], exact[0][key]) for key in COMPARED_METRICS
            }
            for name in naive
        },
        "naive_distinct_mse_values": {
            name: len({_bits(run["mse"]) for run in results[name]}) for name in naive
        },
    }


# --- the report ----------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    """The human summary: the timing table, then the checks and the kernel scale."""
    lines = [_title(report), "", *_method_table(report)]
    lines += _notes(report)
    if report.get("kernel"):
        lines += ["", *_kernel_table(report["kernel"])]
    return "\n".join(lines)


def _title(report: dict[str, Any]) -> str:
    data = report["datasets"][0]
    columns = 3 if data["weighted"] else 2
    layouts = " vs ".join(
        f"{d['files']:,} files ({d['bytes'] / 1e9:.2f} GB)" for d in report["datasets"]
    )
    return (
        f"### {data['rows']:,} rows, {columns} float64 columns in {layouts} of snappy Parquet; "
        f"median of {report['config']['repeat']} "
        f"interleaved runs, page cache warm; {report['environment']['cpu_count']} cores"
    )


def _method_table(report: dict[str, Any]) -> list[str]:
    lines = [
        "| method | files | median (s) | min (s) | rows/s | / floor | / floor, paired "
        "| peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in report["methods"].items():
        ratios = (entry.get("floor_ratio"), entry.get("paired_floor_ratio"))
        shown = " | ".join("—" if r is None else f"{r:.2f}" for r in ratios)
        lines.append(
            f"| {name} | {entry['files']:,} | {entry['median_seconds']:.3f} | "
            f"{entry['min_seconds']:.3f} | {_si(entry['rows_per_second'])} | "
            f"{shown} | {_mib(entry.get('rss'))} |"
        )
    return lines


def _notes(report: dict[str, Any]) -> list[str]:
    environment = report["environment"]
    git = environment["git"]
    before, after = environment["load_average"][0], environment["load_average_after"][0]
    lines = [
        "",
        f"- daskloss at commit {git['commit'][:10] or 'unknown'}"
        f"{' with uncommitted changes' if git['dirty'] else ''}; 1-minute load average "
        f"{before:.2f} before, {after:.2f} after",
    ]
    for name, entry in report["methods"].items():
        if entry.get("setup_seconds") is not None:
            lines.append(
                f"- {name}: cluster start-up {entry['setup_seconds']:.2f} s (not in the run times)"
            )
    for name, reason in report["skipped"].items():
        lines.append(f"- {name}: skipped, {reason}")
    found = report["checks"]
    if "daskloss_runs_identical" in found:
        verdict = "yes" if found["daskloss_runs_identical"] else "**NO**"
        runs = ", ".join(n for n in report["methods"] if n.startswith("daskloss"))
        lines.append(f"- daskloss metrics bit-identical across every run of {runs}: {verdict}")
    if "tiny_files_ratio" in report:
        lines.append(
            f"- daskloss on {TINY_FILES:,} files / on {report['datasets'][0]['files']} files: "
            f"{report['tiny_files_ratio']:.2f}x, paired per round "
            f"{report['paired_tiny_files_ratio']:.2f}x (target: within 3x)"
        )
    for name, diffs in found.get("naive_relative_difference", {}).items():
        text = ", ".join(f"{key} {value:.1e}" for key, value in diffs.items())
        distinct = found["naive_distinct_mse_values"][name]
        lines.append(
            f"- {name}: relative difference from the exact metrics: {text}; "
            f"{distinct} distinct MSE value(s) over the timed runs"
        )
    return lines


def _kernel_table(kernel: dict[str, Any]) -> list[str]:
    lines = [
        "| in memory | rows | median (s) | min (s) | ns/row (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, entry in kernel.items():
        seconds, fastest, per_row = (
            entry[k] for k in ("median_seconds", "min_seconds", "ns_per_row")
        )
        lines.append(
            f"| {name} | {entry['rows']:,} | {seconds:.4f} | {fastest:.4f} | {per_row:.2f} |"
        )
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
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": git("status", "--porcelain", "daskloss").splitlines(),
    }


def _write_json(path: Path, report: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(path)


# --- the job -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.benchmark",
        description="Time exact evaluation against the read floor and the float baselines.",
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows (default %(default)s)")
    parser.add_argument(
        "--files", type=int, default=DEFAULT_FILES, help="Parquet files (default %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default %(default)s)")
    parser.add_argument(
        "--data",
        type=Path,
        help="dataset directory, reused when its manifest matches (default: under the temp dir, "
        "named by rows and files); the --tiny-files layout is written next to it",
    )
    parser.add_argument("--output", type=Path, help="write the JSON results here")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(METHODS)}")
    parser.add_argument("--weighted", action="store_true", help="add and use a weight column")
    parser.add_argument(
        "--tiny-files",
        action="store_true",
        help=f"time on {TINY_FILES:,} files against --files files (default: floor,daskloss); "
        "writing 100M rows as 10,000 files takes about a minute",
    )
    parser.add_argument(
        "--kernel-rows", type=int, default=KERNEL_ROWS, help="rows of the in-memory kernel timing"
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    return parser


@dataclass
class _Plan:
    layouts: list[Layout]
    names: list[str]
    kernel: bool
    args: argparse.Namespace = field(repr=False)


def _plan(argv: Sequence[str] | None) -> _Plan:
    parser = build_parser()
    args = parser.parse_args(argv)
    default = TINY_METHODS if args.tiny_files else METHODS
    names = args.only.split(",") if args.only else list(default)
    unknown = sorted(set(names) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if min(args.rows, args.files, args.repeat) < 1:
        parser.error("--rows, --files and --repeat must be at least 1")
    path = args.data or default_path(args.rows, args.files, args.weighted)
    layouts = [Layout(path, args.rows, args.files, args.weighted)]
    if args.tiny_files:
        tiny = default_path(args.rows, TINY_FILES, args.weighted, parent=path.parent)
        layouts.append(Layout(tiny, args.rows, TINY_FILES, args.weighted))
    dataset_names = [n for n in names if n != KERNEL]
    return _Plan(layouts, dataset_names, KERNEL in names and not args.rss_child, args)


def _setup(plan: _Plan) -> tuple[list[Method], dict[str, str]]:
    methods, skipped = [], {}
    for layout in plan.layouts:
        for name in plan.names:
            label = f"{name} @ {layout.files:,} files" if len(plan.layouts) > 1 else name
            try:
                methods.append(make_method(name, layout, label))
            except Skip as exc:
                skipped[label] = str(exc)
                print(f"note: {label} skipped: {exc}", file=sys.stderr)
    return methods, skipped


def _time_methods(plan: _Plan, methods: list[Method]) -> dict[str, Any]:
    report: dict[str, Any] = {"methods": {}}
    try:
        times, results = time_interleaved(methods, plan.args.repeat)
    finally:
        for method in methods:
            method.close()
    floors = {m.layout: times[m.name] for m in methods if m.kind == "floor"}
    for method in methods:
        entry = _summary(method, times[method.name])
        floor = floors.get(method.layout)
        entry["floor_ratio"] = entry["median_seconds"] / statistics.median(floor) if floor else None
        entry["paired_floor_ratio"] = paired_ratio(times[method.name], floor) if floor else None
        if isinstance(results[method.name][0], dict):
            entry["metrics"] = results[method.name][0]
        report["methods"][method.name] = entry
    report["checks"] = checks(methods, results)
    exact = [m.name for m in methods if m.kind == "daskloss"]
    if len(exact) == 2:  # --tiny-files: the same rows in many more files
        small, tiny = (report["methods"][name]["median_seconds"] for name in exact)
        report["tiny_files_ratio"] = tiny / small
        report["paired_tiny_files_ratio"] = paired_ratio(times[exact[1]], times[exact[0]])
    return report


def paired_ratio(seconds: Sequence[float], baseline: Sequence[float]) -> float:
    """The median over rounds of ``seconds / baseline`` timed in the same round.

    Runs of one round are seconds apart, so they share the machine's state;
    on a machine whose speed drifts this is steadier than a ratio of medians.
    """
    return statistics.median(a / b for a, b in zip(seconds, baseline, strict=True))


def _kernel_report(plan: _Plan) -> dict[str, Any]:
    methods = _kernel_methods(plan.args.kernel_rows)
    times, _ = time_interleaved(methods, plan.args.repeat)
    return {m.name: _summary(m, times[m.name]) for m in methods}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the Markdown table and write the JSON (see ``--help``)."""
    plan = _plan(argv)
    datasets = [prepare_dataset(layout) for layout in plan.layouts]
    if plan.args.rss_child:
        (method,) = _setup(plan)[0]
        print(json.dumps(_rss_child(method)))
        return 0
    methods, skipped = _setup(plan)
    report = {"config": _config(plan), "environment": _environment(), "datasets": datasets}
    report |= _time_methods(plan, methods) if methods else {"methods": {}, "checks": {}}
    report["skipped"] = skipped
    report["kernel"] = _kernel_report(plan) if plan.kernel else None
    report["environment"]["load_average_after"] = os.getloadavg()
    if not plan.args.no_rss:
        for method in methods:
            _log(f"peak RSS of {method.name} in a fresh process ...")
            report["methods"][method.name]["rss"] = measure_rss(method.kind, method.layout)
    print(markdown(report))
    if plan.args.output:
        _write_json(plan.args.output, report)
    return 0


def _config(plan: _Plan) -> dict[str, Any]:
    args = plan.args
    return {
        "rows": plan.layouts[0].rows,
        "files": [layout.files for layout in plan.layouts],
        "repeat": args.repeat,
        "weighted": args.weighted,
        "methods": plan.names + ([KERNEL] if plan.kernel else []),
        "kernel_rows": args.kernel_rows if plan.kernel else None,
        "tiny_files": args.tiny_files,
    }


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
