"""The incremental-run benchmark end to end on a tiny dataset: structure, never timings."""

from __future__ import annotations

import json

import pytest

from jobs.benchmark_incremental import main


@pytest.mark.parametrize("shape", [[], ["--shape"]], ids=["metrics", "shape"])
def test_incremental_benchmark_reads_three_files(tmp_path, capsys, shape):
    """Day 2 reads the 3 new or rewritten files; the summary has every run and size."""
    argv = ["--days", "6", "--rows-per-day", "500", "--repeat", "1", "--data", str(tmp_path)]
    assert main([*argv, *shape]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shape"] is bool(shape)
    assert summary["files_day1"] == 6 and summary["day2_incremental"]["files_read"] == 3
    for run in ("full", "day1_cached", "day2_incremental", "day2_full"):
        assert summary[run]["median_seconds"] > 0
    assert 0 < summary["artifact_gzip_bytes"] < summary["artifact_bytes"]
