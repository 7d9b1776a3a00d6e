"""Memory stays bounded by a few partitions, whatever the dataset's size or compression."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import ROOT

ROWS_PER_FILE = 250_000

_MEASURE = """
import json, resource, sys
import daskloss
if sys.argv[2:] == ["one-task"]:  # every small file in one task, as beside a large file
    daskloss.sources.files.MIN_BATCHES = 1
result = daskloss.evaluate(sys.argv[1])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak": peak, "count": result.metrics["count"]}))
"""


def _write(directory, files: int) -> None:
    directory.mkdir(parents=True)
    rng = np.random.default_rng(files)
    for i in range(files):
        y_true = rng.normal(size=ROWS_PER_FILE)
        table = pa.table({"y_true": y_true, "y_pred": y_true + rng.normal(size=ROWS_PER_FILE)})
        pq.write_table(table, directory / f"part-{i:03d}.parquet")


def _measure(directory, *options: str) -> dict:
    """Evaluate ``directory`` in a fresh process: its peak RSS (bytes) and the count."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(directory), *options],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return json.loads(out)


def _peak_rss(directory) -> int:
    measured = _measure(directory)
    assert measured["count"] == ROWS_PER_FILE * len(list(directory.iterdir()))
    return measured["peak"]


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_dataset(tmp_path):
    """Six times the files (2M vs 12M rows) cost no more than a few partitions."""
    small, large = tmp_path / "small", tmp_path / "large"
    _write(small, 8)
    _write(large, 48)
    partition_bytes = ROWS_PER_FILE * 2 * 8
    growth = _peak_rss(large) - _peak_rss(small)
    assert growth < 3 * partition_bytes, f"peak RSS grew by {growth / 2**20:.0f} MiB"


#: Rows of each file of constants: 48 MB decoded, a few kB on storage.
CONSTANT_ROWS = 3_000_000


def _constants(directory, files: int, format: str) -> None:
    """``files`` files of constant rows, which compress about a thousandfold."""
    directory.mkdir(exist_ok=True)
    for i in range(files):
        if format == "parquet":
            table = pa.table(
                {"y_true": np.full(CONSTANT_ROWS, 1.0), "y_pred": np.full(CONSTANT_ROWS, 1.5)}
            )
            pq.write_table(table, directory / f"small-{i:03d}.parquet")
        else:
            text = "y_true,y_pred\n" + "1.0,1.5\n" * CONSTANT_ROWS
            (directory / f"small-{i:03d}.csv.gz").write_bytes(gzip.compress(text.encode(), 1))


@pytest.mark.slow
@pytest.mark.parametrize(("format", "files"), [("parquet", 16), ("csv", 6)])
def test_peak_memory_is_flat_for_any_compression_ratio(tmp_path, format, files):
    """Files a thousandfold smaller on storage than in memory, batched by their size on
    storage into one task (as they are beside a large file), are read by their decoded
    size: the peak RSS is that of one such file, not of all of them at once."""
    one, many = tmp_path / "one", tmp_path / "many"
    _constants(one, 1, format)
    _constants(many, files, format)
    measured = _measure(many, "one-task")
    assert measured["count"] == files * CONSTANT_ROWS
    growth = measured["peak"] - _measure(one, "one-task")["peak"]
    assert growth < 100 * 2**20, f"peak RSS grew by {growth / 2**20:.0f} MiB"
