"""The benchmark job end to end on tiny datasets: structure and values, never timings."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import daskloss
from benchmarks.bench import Layout, paired_ratio, prepare_dataset
from jobs.benchmark import main

SUMMARY_KEYS = {
    "median_seconds",
    "min_seconds",
    "rows_per_second",
    "floor_ratio",
    "paired_floor_ratio",
    "seconds",
}


def run_job(tmp_path: Path, *extra: str) -> dict:
    output = tmp_path / "bench.json"
    data = tmp_path / "data"
    argv = ["--rows", "3000", "--files", "3", "--repeat", "1", "--data", str(data)]
    assert main([*argv, "--output", str(output), *extra]) == 0
    return json.loads(output.read_text())


def test_report_structure(tmp_path: Path) -> None:
    """A tiny run reports every requested method, the dataset, the checks and the kernel."""
    only = "floor,daskloss,naive-dask,kernel"
    report = run_job(tmp_path, "--only", only, "--no-rss", "--kernel-rows", "1000")
    assert list(report["methods"]) == ["floor", "daskloss", "naive-dask"]
    for entry in report["methods"].values():
        assert SUMMARY_KEYS <= entry.keys()
        assert entry["rows"] == 3000 and len(entry["seconds"]) == 1
    assert report["datasets"][0]["rows"] == 3000 and report["datasets"][0]["files"] == 3
    assert report["checks"]["daskloss_runs_identical"] is True
    assert set(report["checks"]["naive_relative_difference"]) == {"naive-dask"}
    assert set(report["kernel"]) == {"kernel", "kernel (weighted)", "np.sum", "math.fsum"}


def test_paired_ratio_compares_runs_of_the_same_round() -> None:
    """Each round's ratio first, then the median: a slow round slows both of its runs."""
    assert paired_ratio([2.0, 4.0, 30.0], [1.0, 4.0, 10.0]) == 2.0
    assert paired_ratio([1.0], [4.0]) == 0.25
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])


def test_reported_metrics_match_evaluate(tmp_path: Path) -> None:
    """daskloss's metrics in the report are exactly those of a direct evaluate()."""
    report = run_job(tmp_path, "--only", "daskloss", "--no-rss", "--weighted")
    direct = daskloss.evaluate(report["datasets"][0]["path"], weight="weight").metrics
    assert report["methods"]["daskloss"]["metrics"] == direct


def test_peak_rss_measured_in_child(tmp_path: Path) -> None:
    """Without --no-rss each method's peak RSS comes from a fresh process."""
    report = run_job(tmp_path, "--only", "floor")
    rss = report["methods"]["floor"]["rss"]
    assert rss["peak_rss_bytes"] >= rss["baseline_rss_bytes"] > 0


def test_dataset_reused_when_manifest_matches(tmp_path: Path) -> None:
    """A second prepare of the same layout reuses the files; another layout rewrites them."""
    layout = Layout(tmp_path / "data", rows=100, files=2)
    assert prepare_dataset(layout)["generated"] is True
    assert prepare_dataset(layout)["generated"] is False
    assert prepare_dataset(Layout(layout.path, rows=100, files=3))["generated"] is True
    assert sorted(p.name for p in layout.path.glob("*.parquet")) == [
        "part-0.parquet",
        "part-1.parquet",
        "part-2.parquet",
    ]


def test_layouts_hold_the_same_rows(tmp_path: Path) -> None:
    """The same rows cut into 1 or 7 files hold the same values in the same order."""
    tables = []
    for files in (1, 7):
        layout = Layout(tmp_path / str(files), rows=20_000, files=files)
        prepare_dataset(layout)
        tables.append(pa.concat_tables(pq.read_table(path) for path in layout.file_paths()))
    assert tables[0].num_rows == 20_000
    assert tables[0].equals(tables[1])


def test_foreign_directory_left_alone(tmp_path: Path) -> None:
    """A non-empty directory the benchmark did not write is refused, not emptied."""
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not a daskloss benchmark dataset"):
        prepare_dataset(Layout(tmp_path, rows=10, files=1))
    assert (tmp_path / "keep.txt").exists()
