"""Memory stays bounded by a few partitions, whatever the dataset's size."""

from __future__ import annotations

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
result = daskloss.evaluate(sys.argv[1])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak": peak, "count": result.metrics["count"]}))
"""


def _write(directory, files: int) -> None:
    directory.mkdir()
    rng = np.random.default_rng(files)
    for i in range(files):
        y_true = rng.normal(size=ROWS_PER_FILE)
        table = pa.table({"y_true": y_true, "y_pred": y_true + rng.normal(size=ROWS_PER_FILE)})
        pq.write_table(table, directory / f"part-{i:03d}.parquet")


def _peak_rss(directory) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(directory)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    measured = json.loads(out)
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
