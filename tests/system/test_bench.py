"""The benchmark job end to end on tiny datasets: structure and values, never timings."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import daskloss
from benchmarks import coldstart
from benchmarks.bench import Layout, paired_ratio, prepare_dataset
from benchmarks.data import parse_layout
from benchmarks.methods import FLOORS
from jobs.benchmark import main

SUMMARY_KEYS = {
    "median_seconds",
    "min_seconds",
    "median_cpu_seconds",
    "rows_per_second",
    "floor_ratio",
    "paired_floor_ratio",
    "cpu_floor_ratio",
    "seconds",
}


def run_job(tmp_path: Path, *extra: str) -> dict:
    output = tmp_path / "bench.json"
    data = tmp_path / "data"
    argv = ["--rows", "3000", "--files", "3", "--repeat", "1", "--data", str(data)]
    assert main([*argv, "--output", str(output), *extra]) == 0
    return json.loads(output.read_text())


def test_report_structure(tmp_path: Path) -> None:
    """A tiny run reports every method, the fastest floor, the dataset, the checks, the kernel."""
    only = "floor,daskloss,naive-dask,kernel"
    report = run_job(tmp_path, "--only", only, "--no-rss", "--kernel-rows", "1000")
    (group,) = report["groups"].values()
    kinds = [report["methods"][name]["kind"] for name in group["methods"]]
    assert kinds == [*FLOORS, "daskloss", "naive-dask"]
    floor = report["methods"][group["floor"]]
    assert floor["kind"] in FLOORS
    assert floor["median_seconds"] == min(
        report["methods"][name]["median_seconds"]
        for name in group["methods"]
        if report["methods"][name]["kind"] in FLOORS
    )
    for entry in report["methods"].values():
        assert SUMMARY_KEYS <= entry.keys()
        assert entry["rows"] == 3000 and len(entry["seconds"]) == 1
    assert report["datasets"][0]["rows"] == 3000 and report["datasets"][0]["files"] == 3
    assert report["checks"]["daskloss_runs_identical"] == {"unweighted": True}
    assert len(report["checks"]["naive_relative_difference"]) == 1
    assert set(report["kernel"]) == {"kernel", "kernel (weighted)", "np.sum", "math.fsum"}


def test_layouts_and_weightings_in_one_run(tmp_path: Path) -> None:
    """Every layout and weighting is timed in one run; daskloss agrees with itself on all."""
    report = run_job(
        tmp_path, "--only", "floor:tables,daskloss", "--layouts", "2/1,7", "--weighting",
        "both", "--no-rss",
    )  # fmt: skip
    assert len(report["groups"]) == 6
    assert report["checks"]["daskloss_runs_identical"] == {"unweighted": True, "weighted": True}
    ratios = [
        entry["paired_first_layout_ratio"]
        for entry in report["methods"].values()
        if entry["kind"] == "daskloss" and entry["layout"] != "3"
    ]
    assert len(ratios) == 4


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
    (entry,) = report["methods"].values()
    assert entry["metrics"] == direct


def test_peak_rss_measured_in_child(tmp_path: Path) -> None:
    """Without --no-rss each method's peak RSS comes from a fresh process, on its own layout."""
    report = run_job(tmp_path, "--only", "floor:tables,daskloss", "--layouts", "2/1")
    for entry in report["methods"].values():
        rss = entry["rss"]
        assert rss["peak_rss_bytes"] >= rss["baseline_rss_bytes"] > 0


def test_scale_plans_without_reading_footers(tmp_path: Path) -> None:
    """--scale lists and plans the small files reading one schema and no footer."""
    report = run_job(tmp_path, "--only", "daskloss", "--no-rss", "--scale", "--listing-files", "40")
    planning = report["scale"]["planning"]
    assert planning["files"] == 40
    assert planning["footers_read"] == 0 and planning["schemas_read"] == 1
    assert report["scale"]["scheduler"]["local-cluster"]["tasks"] > 2000
    (model,) = report["scale"]["models"].values()
    assert model["tasks"] == model["units"] + model["merge_tasks"]


def test_cold_start_child_reports_both_runs(tmp_path: Path, capsys) -> None:
    """The cold-start child evaluates twice and prints both times (here in this process)."""
    layout = Layout(tmp_path / "data", rows=1000, files=2)
    prepare_dataset(layout)
    assert coldstart.main(["--path", str(layout.path), "--weighted"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["count"] == 1000 and found["first_seconds"] > 0 and found["second_seconds"] > 0


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
    """The same rows cut into 1 or 7 files, or 3 of one row group, hold the same values."""
    tables = []
    for spec in ("1", "7", "3/1"):
        layout = parse_layout(spec, 20_000, tmp_path)
        prepare_dataset(layout)
        tables.append(pa.concat_tables(pq.read_table(path) for path in layout.file_paths()))
        groups = pq.ParquetFile(layout.file_paths()[0]).metadata.num_row_groups
        assert groups == 1 or spec != "3/1"
    assert tables[0].num_rows == 20_000
    assert tables[0].equals(tables[1]) and tables[0].equals(tables[2])


def test_a_bad_layout_is_a_usage_error(tmp_path: Path) -> None:
    """A layout that is not FILES or FILES/1 stops the job with a usage error."""
    with pytest.raises(SystemExit):
        main(["--layouts", "ten", "--data", str(tmp_path)])


def test_foreign_directory_left_alone(tmp_path: Path) -> None:
    """A non-empty directory the benchmark did not write is refused, not emptied."""
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not a daskloss benchmark dataset"):
        prepare_dataset(Layout(tmp_path, rows=10, files=1))
    assert (tmp_path / "keep.txt").exists()
