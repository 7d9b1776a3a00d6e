"""The benchmark's datasets: the same rows cut into different layouts of Parquet files.

Every layout of the same row count holds the same rows in the same order
(:func:`data_rows`), so daskloss's metrics must be bit-identical across
layouts. Every file holds the three columns ``y_true``, ``y_pred`` and
``weight``; an unweighted evaluation reads the first two.

A layout is written once and reused while its manifest matches.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "CHUNK_ROWS",
    "COLUMNS",
    "Layout",
    "data_rows",
    "layout_directory",
    "parse_layout",
    "prepare_dataset",
]

SEED = 4
#: Rows per row group of a layout with large row groups.
CHUNK_ROWS = 1 << 20
#: Rows drawn from one seeded generator (see :func:`data_rows`).
SEED_BLOCK_ROWS = 1 << 13
MANIFEST = "_daskloss_bench.json"
MANIFEST_VERSION = 3
TARGET, PREDICTION, WEIGHT = "y_true", "y_pred", "weight"
COLUMNS = (TARGET, PREDICTION, WEIGHT)


@dataclass(frozen=True)
class Layout:
    """``rows`` rows split evenly over ``files`` snappy Parquet files in ``path``.

    ``row_group_rows`` is the most rows a row group holds; None for one row
    group per file.
    """

    path: Path
    rows: int
    files: int
    row_group_rows: int | None = CHUNK_ROWS

    @property
    def spec(self) -> str:
        """How ``--layouts`` names it: ``64`` (large row groups) or ``32/1`` (one per file)."""
        return f"{self.files}/1" if self.row_group_rows is None else str(self.files)

    @property
    def label(self) -> str:
        """How the report names it."""
        groups = " of one row group" if self.row_group_rows is None else ""
        return f"{self.files:,} files{groups}"

    def manifest(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "rows": self.rows,
            "files": self.files,
            "row_group_rows": self.row_group_rows,
            "columns": list(COLUMNS),
            "seed": SEED,
            "seed_block_rows": SEED_BLOCK_ROWS,
        }

    def file_paths(self) -> list[str]:
        return [str(self.path / _file_name(i, self.files)) for i in range(self.files)]

    def glob(self) -> str:
        return str(self.path / "*.parquet")


def parse_layout(spec: str, rows: int, parent: Path) -> Layout:
    """A layout from its ``--layouts`` name: ``FILES`` or ``FILES/1``, under ``parent``."""
    files, _, groups = spec.partition("/")
    if not files.isdigit() or int(files) < 1 or groups not in ("", "1"):
        raise ValueError(
            f"layout {spec!r}: expected a number of files, such as 64 (row groups of "
            f"{CHUNK_ROWS:,} rows) or 32/1 (one row group per file)"
        )
    row_group_rows = None if groups else CHUNK_ROWS
    probe = Layout(Path(), rows, int(files), row_group_rows)
    return Layout(layout_directory(probe, parent), rows, int(files), row_group_rows)


def layout_directory(layout: Layout, parent: Path | None = None) -> Path:
    """Where a layout lives: named by its rows, files and row groups."""
    groups = "-1rg" if layout.row_group_rows is None else ""
    name = f"daskloss-bench-{layout.rows}-rows-{layout.files}-files{groups}"
    return (parent or Path(tempfile.gettempdir())) / name


def _file_name(index: int, files: int) -> str:
    return f"part-{index:0{len(str(files - 1))}d}.parquet"


def prepare_dataset(layout: Layout, log: Any = None) -> dict[str, Any]:
    """Reuse the dataset at ``layout.path`` if its manifest matches, else (re)write it."""
    manifest = layout.path / MANIFEST
    start = time.perf_counter()
    generated = not (manifest.exists() and json.loads(manifest.read_text()) == layout.manifest())
    if generated:
        _clear(layout.path)
        if log:
            log(f"writing {layout.rows:,} rows as {layout.label} in {layout.path} ...")
        _generate(layout)
        manifest.write_text(json.dumps(layout.manifest()))
    return {
        "path": str(layout.path),
        "spec": layout.spec,
        "label": layout.label,
        "rows": layout.rows,
        "files": layout.files,
        "row_group_rows": layout.row_group_rows,
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
    jobs = list(enumerate(zip(starts, sizes, strict=True)))
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(lambda job: _write_file(layout, job[0], *job[1]), jobs))


def _write_file(layout: Layout, index: int, start: int, rows: int) -> None:
    """File ``index``: rows ``[start, start + rows)``, a row group at a time."""
    path = layout.path / _file_name(index, layout.files)
    partial = path.with_name("." + path.name)
    schema = pa.schema([(name, pa.float64()) for name in COLUMNS])
    stop = start + rows
    step = max(rows, 1) if layout.row_group_rows is None else layout.row_group_rows
    with pq.ParquetWriter(partial, schema, compression="snappy") as writer:
        for low in range(start, max(stop, start + 1), step):
            columns = data_rows(low, min(low + step, stop))
            writer.write_table(pa.table(columns, schema=schema), row_group_size=step)
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
        for name in COLUMNS
    }


def _block(index: int) -> dict[str, np.ndarray]:
    """Targets around 50 and predictions off by a few units: a plausible regression."""
    rng = np.random.default_rng([SEED, index])
    y_true = 50.0 + 10.0 * rng.standard_normal(SEED_BLOCK_ROWS)
    y_pred = y_true + 2.0 * rng.standard_normal(SEED_BLOCK_ROWS)
    return {TARGET: y_true, PREDICTION: y_pred, WEIGHT: rng.uniform(0.5, 2.0, SEED_BLOCK_ROWS)}
