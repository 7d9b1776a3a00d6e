"""The scheduled pipeline task: statistics artifacts, incremental runs, gates, run paths."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from daskloss.report import render_json
from tests.helpers import job_config, run_cli, run_daskloss, write_config, write_day

#: The report's keys that hold numbers computed from the statistics.
METRIC_KEYS = (
    "metrics",
    "count",
    "weight_sum",
    "skipped_rows",
    "slices",
    "other_slices",
    "predictions",
    "comparisons",
)
#: The report's keys of the shape of the errors (the first prediction's; the others'
#: are in ``predictions``, each slice's worst rows in ``slices``).
SHAPE_KEYS = ("intervals", "quantiles", "histogram", "se_share", "worst")
#: Runs without the histogram and the worst rows (their reports' shape keys are null).
NO_RESIDUALS = {"histogram": False, "worst_k": 0}


def _config(tmp_path: Path, data: Path, **sections) -> Path:
    """A sliced two-model job over ``data`` writing ``tmp_path/report.json``."""
    config = job_config(
        data,
        tmp_path / "report.json",
        columns={"y_pred": ["y_pred", "y_old"], "weight": "w"},
        # set, so that a cache keeps them too (with [cache] they are off unless set)
        evaluation={
            "group_by": ["segment", "day"],
            "baseline": "y_old",
            "min_slice_count": 40,
            "histogram": True,
            "worst_k": 10,
        },
    )
    for name, table in sections.items():
        config[name] = {**config.get(name, {}), **table}
    return write_config(tmp_path / "job.toml", config)


def _metric_bytes(report: dict) -> str:
    """The report's numbers as its JSON text: what must be identical, byte for byte."""
    return render_json({key: report.get(key) for key in METRIC_KEYS})


def _report_bytes(report: dict) -> str:
    """The numbers and the shape of the errors (which must be there) as JSON text."""
    assert report["quantiles"] and report["histogram"] and report["worst"], "no shape"
    return render_json({key: report.get(key) for key in METRIC_KEYS + SHAPE_KEYS})


def _evaluate(capsys, config: Path, *argv: str) -> tuple[int, dict, str]:
    run = run_cli(["evaluate", str(config), *argv], capsys)
    report = json.loads(run.out) if run.out.startswith("{") else {}
    return run.code, report, run.err


def _days(root: Path, days, **kwargs) -> Path:
    for day in days:
        write_day(root, day, **kwargs)
    return root


def _merged_and_union(tmp_path: Path, capsys, **evaluation) -> tuple[dict, dict]:
    """Runs over A and B writing statistics, ``merge A B``, ``report ALL``; one run over both.

    Returns the report of the merged statistics and that of the run over the union.
    """
    data = tmp_path / "data"
    _days(data / "a", range(1, 5)), _days(data / "b", range(5, 9))
    config = _config(tmp_path, data, evaluation={"min_slice_count": 68, **evaluation})
    for part in ("a", "b"):
        code, _, err = _evaluate(
            capsys, config, "--set", f"dataset.path={data / part}", "--set",
            f"output.stats={tmp_path / part}.json", "--output", str(tmp_path / f"{part}.report"),
        )  # fmt: skip
        assert code == 0, err
    artifacts = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    merged = run_cli(["merge", *artifacts, "-o", str(tmp_path / "all.json.gz")], capsys)
    assert merged.code == 0, merged.err
    assert merged.out.splitlines()[-1] == str(tmp_path / "all.json.gz")
    reported = run_cli(["report", str(tmp_path / "all.json.gz")], capsys)
    assert reported.code == 0, reported.err
    from_statistics = json.loads(reported.out)
    code, union, err = _evaluate(capsys, config)
    assert code == 0, err
    assert _metric_bytes(from_statistics) == _metric_bytes(union)
    assert from_statistics["comparisons"] and from_statistics["other_slices"]
    assert from_statistics["inputs"]["digest"] == union["inputs"]["digest"]
    assert from_statistics["inputs"]["files"] == union["dataset"]["files"] == 8
    return from_statistics, union


def test_merged_statistics_report_equals_one_run_over_the_union(tmp_path, capsys):
    """merge A B -o ALL; report ALL: every number equals one run over A and B's rows,
    the quantiles, histogram, share of SE and worst rows (every prediction, slice) too."""
    from_statistics, union = _merged_and_union(tmp_path, capsys)
    assert _report_bytes(from_statistics) == _report_bytes(union)
    assert len(from_statistics["worst"]) == 10 and from_statistics["se_share"]
    per_prediction = from_statistics["predictions"]
    assert per_prediction == union["predictions"] and per_prediction["y_old"]["worst"]
    assert all(entry["worst"] for entry in per_prediction["y_pred"]["slices"])
    assert from_statistics["other_slices"]["worst"] == union["other_slices"]["worst"]
    evaluation = from_statistics["settings"]["evaluation"]
    assert (evaluation["histogram"], evaluation["worst_k"]) == (True, 10)


def test_merged_statistics_without_residuals_report_them_as_null(tmp_path, capsys):
    """Runs without the histogram and worst rows: the merged report's numbers are the
    union's, and its shape keys null as the union's (the intervals are there)."""
    from_statistics, union = _merged_and_union(tmp_path, capsys, **NO_RESIDUALS)
    for report in (from_statistics, union):
        assert report["quantiles"] is None and report["histogram"] is None
        assert report["se_share"] is None and report["worst"] is None
    shape = {key: from_statistics[key] for key in SHAPE_KEYS}
    assert render_json(shape) == render_json({key: union[key] for key in SHAPE_KEYS})
    assert shape["intervals"]["mse"]["stderr"] > 0


def test_a_cached_run_reports_the_shape_of_the_errors_as_a_full_run(tmp_path, capsys):
    """With [cache] and the residuals set: quantiles, histogram, se_share and worst rows of
    every prediction and slice are a full run's, byte for byte; per-row losses exit 2."""
    data = _days(tmp_path / "data", [1, 2, 3])
    config = _config(tmp_path, data, cache={"path": str(tmp_path / "cache")})
    code, first, err = _evaluate(capsys, config)
    assert code == 0 and first["cache"]["files_read"] == 3 and first["worst"], err
    write_day(data, 4), write_day(data, 2, seed=5)
    code, second, err = _evaluate(capsys, config)
    assert code == 0, err
    assert (second["cache"]["files_reused"], second["cache"]["files_read"]) == (2, 2)
    code, full, err = _evaluate(capsys, config, "--set", "cache.path=")
    assert code == 0, err
    assert _report_bytes(second) == _report_bytes(full)
    assert len(second["worst"]) == 10 and second["predictions"]["y_old"]["worst"]
    assert all(entry["worst"] for entry in second["predictions"]["y_pred"]["slices"])
    assert second["se_share"]["low"] <= second["se_share"]["high"]
    code, _, err = _evaluate(capsys, config, "--set", f"output.losses={tmp_path / 'losses'}")
    assert code == 2 and "per-row losses need every file read" in err
    assert not (tmp_path / "losses").exists()


def test_a_cache_leaves_the_residuals_off_unless_they_are_set(tmp_path, capsys):
    """[cache] with histogram and worst_k unset: no residuals, and the report says so."""
    data = _days(tmp_path / "data", [1, 2])
    config = job_config(
        data,
        tmp_path / "report.json",
        columns={"y_pred": "y_pred", "weight": "w"},
        cache={"path": str(tmp_path / "cache")},
    )
    path = write_config(tmp_path / "job.toml", config)
    code, report, err = _evaluate(capsys, path)
    assert code == 0, err
    assert report["worst"] is None and report["quantiles"] is None
    assert report["intervals"]["mse"]["stderr"] > 0
    evaluation = report["settings"]["evaluation"]
    assert (evaluation["histogram"], evaluation["worst_k"]) == (False, 0)
    code, report, err = _evaluate(capsys, path, "--set", "cache.path=")
    assert code == 0 and len(report["worst"]) == 10 and report["quantiles"]["abs_error"]
    evaluation = report["settings"]["evaluation"]
    assert (evaluation["histogram"], evaluation["worst_k"]) == (True, 10)


def test_report_of_statistics_is_shaped_like_the_run_and_stays_out_of_the_dataset(
    tmp_path, capsys, monkeypatch
):
    """report ARTIFACT: y_pred as the run gave it, an absolute path; never into the dataset."""
    data = _days(tmp_path / "data", [1, 2])
    config = job_config(data, tmp_path / "r.json", columns={"y_pred": "y_pred", "weight": "w"})
    path = write_config(tmp_path / "job.toml", config)
    code, _, err = _evaluate(capsys, path, "--set", f"output.stats={tmp_path / 's.json'}")
    assert code == 0, err
    artifact = str(tmp_path / "s.json")
    monkeypatch.chdir(tmp_path)
    reported = run_cli(["report", artifact, "--output", "rr.json"], capsys)
    assert reported.code == 0, reported.err
    report = json.loads(reported.out)
    assert report["settings"]["columns"]["y_pred"] == "y_pred"
    assert report["outputs"]["report"] == str(tmp_path / "rr.json")
    for argv in (["report", artifact, "--output"], ["merge", artifact, "-o"]):
        inside = run_cli([*argv, str(data / "day=01" / "x.json")], capsys)
        assert inside.code == 2 and "dataset" in inside.err, inside.err


def test_merge_refuses_artifacts_of_other_evaluations_with_exit_3(tmp_path, capsys):
    """Statistics of other slices (or the same files twice) are refused: one line, exit 3."""
    data = _days(tmp_path / "data", [1, 2])
    config = _config(tmp_path, data)
    for name, group_by in (("x", '["segment", "day"]'), ("y", '["segment"]')):
        code, _, err = _evaluate(
            capsys, config, "--set", f"output.stats={tmp_path / name}.json", "--set",
            f"evaluation.group_by={group_by}",
        )  # fmt: skip
        assert code == 0, err
    x, y, output = (str(tmp_path / name) for name in ("x.json", "y.json", "m.json"))
    other = run_cli(["merge", x, y, "-o", output], capsys)
    assert other.code == 3 and "different slices (group_by)" in other.err
    twice = run_cli(["merge", x, x, "-o", output], capsys)
    assert twice.code == 3 and "count its rows twice" in twice.err
    assert not os.path.exists(output)


def test_day_two_reads_three_files_and_reports_as_a_full_run(tmp_path, capsys, reads):
    """Day 1: 10 files. Day 2: 2 added, 1 rewritten, 1 deleted: 3 files read, same report."""
    data = _days(tmp_path / "data", range(1, 11))
    config = _config(tmp_path, data, cache={"path": str(tmp_path / "cache")})
    code, first, err = _evaluate(capsys, config)
    assert code == 0, err
    assert first["cache"]["files_read"] == 10 and len(reads) == 10
    _days(data, [11, 12])
    write_day(data, 3, seed=42)
    os.remove(data / "day=06" / "part.parquet")
    reads.clear()
    code, second, err = _evaluate(capsys, config)
    assert code == 0, err
    assert sorted(reads) == [str(data / f"day={d}" / "part.parquet") for d in ("03", "11", "12")]
    assert second["cache"] | {"path": None} == {
        "path": None,
        "files_reused": 8,
        "bytes_reused": second["inputs"]["bytes"] - second["inputs"]["read"]["bytes"],
        "files_read": 3,
        "bytes_read": second["inputs"]["read"]["bytes"],
        "entries_dropped": 2,
        "stored": True,
        "error": None,
    }
    assert second["inputs"]["files"] == second["dataset"]["files"] == 11
    assert "cache: 3 files read, 8 reused" in err
    code, full, err = _evaluate(capsys, config, "--set", "cache.path=")
    assert code == 0, err
    assert _report_bytes(second) == _report_bytes(full)
    assert second["inputs"]["digest"] == full["inputs"]["digest"]


def test_a_window_of_days_in_the_config(tmp_path, capsys, reads):
    """dataset.window keeps the last N day= partitions; the report says which."""
    data = _days(tmp_path / "data", range(1, 6))
    window = {"window": {"partition": "day", "last": 3}}
    config = _config(tmp_path, data, dataset=window, cache={"path": str(tmp_path / "c")})
    code, report, err = _evaluate(capsys, config)
    assert code == 0, err
    assert sorted({s["key"]["day"] for s in report["predictions"]["y_pred"]["slices"]}) == [3, 4, 5]
    assert report["inputs"]["window"] == {"partition": "day", "last": 3}
    assert report["inputs"]["files"] == 3 and len(reads) == 3


def test_same_inputs_same_bytes_and_digest(tmp_path, capsys):
    """Two runs over unchanged files give the same metric bytes and inputs digest."""
    data = _days(tmp_path / "data", [1, 2, 3])
    config = _config(tmp_path, data)
    reports = [_evaluate(capsys, config)[1] for _ in range(2)]
    assert _report_bytes(reports[0]) == _report_bytes(reports[1])
    assert reports[0]["inputs"]["digest"] == reports[1]["inputs"]["digest"]
    assert reports[0]["inputs"]["digest"].startswith("sha256:")
    write_day(data, 2, seed=9)
    assert _evaluate(capsys, config)[1]["inputs"]["digest"] != reports[0]["inputs"]["digest"]


def test_output_paths_carry_the_run_date_and_id(tmp_path, capsys):
    """{date} and {run_id} name where the report and statistics go; --format path prints it."""
    data = _days(tmp_path / "data", [1])
    output = {
        "path": str(tmp_path / "r/{date}/{run_id}.json"),
        "stats": str(tmp_path / "s/{date}.gz"),
    }
    config = _config(tmp_path, data, output=output)
    run_flags = ["--run-date", "2026-01-31", "--run-id", "nightly-3", "--format", "path"]
    run = run_cli(["evaluate", str(config), *run_flags], capsys)
    assert run.code == 0, run.err
    expected = tmp_path / "r" / "2026-01-31" / "nightly-3.json"
    assert run.out == f"{expected}\n"
    report = json.loads(expected.read_text())
    assert report["run"] == {"date": "2026-01-31", "id": "nightly-3"}
    assert report["outputs"]["statistics"] == str(tmp_path / "s" / "2026-01-31.gz")
    assert (tmp_path / "s" / "2026-01-31.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert report["settings"]["output"]["path"].endswith("{date}/{run_id}.json")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--run-date", "31/01/2026"], "--run-date: expected a date"),
        (["--run-id", "../x"], "--run-id: expected"),
        (["--set", "output.path=r/{day}.json"], "unknown placeholder '{day}'"),
        (["--format", "path", "--set", "output.path="], "--format path prints where"),
    ],
)
def test_bad_run_paths_are_usage_errors(tmp_path, capsys, argv, message):
    """A bad run date or id, an unknown placeholder: exit 2 before any work."""
    config = _config(tmp_path, _days(tmp_path / "data", [1]))
    run = run_cli(["evaluate", str(config), *argv], capsys)
    assert run.code == 2 and message in run.err


def _gates(*gates: str) -> list[str]:
    return ["--set", f"gates=[{', '.join(gates)}]"]


def test_gates_on_values_changes_and_comparisons(tmp_path, capsys):
    """Value bounds, a slice, a baseline prediction with excludes_zero: values and verdicts."""
    data = _days(tmp_path / "data", range(1, 5))
    config = _config(tmp_path, data)
    code, report, err = _evaluate(
        capsys, config, *_gates(
            '{metric = "count", min = 800}',
            '{name = "mse day 2", metric = "mse", slice = {segment = "a", day = 2}, max = 1e300}',
            '{metric = "mae", baseline = "y_old", max_change = 0.0, excludes_zero = true}',
            '{metric = "r2", baseline = "y_old", min_change = -1.0, min_relative_change = -0.5}',
        ),
    )  # fmt: skip
    assert code == 0, err
    results = report["gates"]["results"]
    assert report["gates"] == {"passed": True, "failed": 0, "results": results}
    assert [r["verdict"] for r in results] == ["pass"] * 4
    assert results[0]["value"] == report["count"] == 800
    by_slice = report["predictions"]["y_pred"]["slices"]
    day2 = next(s for s in by_slice if s["key"] == {"segment": "a", "day": 2})
    assert results[1]["value"] == day2["metrics"]["mse"] and results[1]["name"] == "mse day 2"
    comparison = report["comparisons"][0]["metrics"]["mae"]
    assert results[2]["change"] == comparison["difference"] < 0
    assert results[2]["interval"] == {
        "low": comparison["low"],
        "high": comparison["high"],
        "excludes_zero": True,
    }
    r2 = report["predictions"]
    assert results[3]["baseline"] == {"prediction": "y_old", "value": r2["y_old"]["metrics"]["r2"]}
    assert results[3]["interval"] is None and results[3]["bounds"] == {
        "min_change": -1.0,
        "min_relative_change": -0.5,
    }


def test_a_failed_gate_writes_the_report_then_exits_5(tmp_path, capsys):
    """A failed gate: the report (with each verdict and why) is written, exit code 5."""
    data = _days(tmp_path / "data", [1, 2])
    config = _config(tmp_path, data)
    code, report, err = _evaluate(
        capsys, config, *_gates(
            '{metric = "mse", max = 0.0}',
            '{metric = "mse", baseline = "y_old", min_change = 0.0, excludes_zero = true}',
            '{metric = "mae", slice = {segment = "z", day = 1}, max = 1.0}',
        ),
    )  # fmt: skip
    assert code == 5
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["gates"] == report["gates"] and report["gates"]["failed"] == 3
    reasons = [r["reasons"] for r in report["gates"]["results"]]
    assert reasons[0] == [f"mse {report['metrics']['mse']!r} > max 0.0"]
    assert reasons[1][0].startswith("mse change -") and "< min_change 0.0" in reasons[1][0]
    assert reasons[2] == ['no rows of slice {"segment": "z", "day": 1} in this run']
    assert "daskloss: error: 3 of 3 gates failed" in err and "the report was written" in err
    assert "FAILED mse: mse" in err


def test_gates_against_an_earlier_report_or_artifact(tmp_path, capsys):
    """baseline_file: yesterday's report or statistics; relative change, per slice."""
    data = _days(tmp_path / "data", [1, 2])
    config = _config(tmp_path, data, output={"stats": str(tmp_path / "stats.json")})
    code, yesterday, err = _evaluate(capsys, config)
    assert code == 0, err
    shutil.copy(tmp_path / "report.json", tmp_path / "yesterday.json")
    write_day(data, 2, seed=77)
    for baseline in ("yesterday.json", "stats.json"):
        gate = (
            f'{{metric = "rmse", slice = {{segment = "b", day = 2}}, baseline_file = '
            f'"{tmp_path / baseline}", max_relative_change = 0.0}}'
        )
        code, today, err = _evaluate(capsys, config, "--set", "output.stats=", *_gates(gate))
        result = today["gates"]["results"][0]
        before = next(s for s in yesterday["slices"] if s["key"] == {"segment": "b", "day": 2})[
            "metrics"
        ]["rmse"]
        now = next(s for s in today["slices"] if s["key"] == {"segment": "b", "day": 2})
        assert result["baseline"] == {"file": str(tmp_path / baseline), "value": before}
        assert result["value"] == now["metrics"]["rmse"] != before
        assert result["relative_change"] == pytest.approx((result["value"] - before) / before)
        assert code == (0 if result["value"] <= before else 5)
        assert result["verdict"] == ("pass" if code == 0 else "fail")


def test_a_missing_baseline_file_fails_before_any_work(tmp_path, capsys, reads):
    """A gate's baseline that cannot be read: exit 3, nothing evaluated, no report."""
    config = _config(tmp_path, _days(tmp_path / "data", [1]))
    gate = f'{{metric = "mse", baseline_file = "{tmp_path / "none.json"}", max_change = 0}}'
    run = run_cli(["evaluate", str(config), *_gates(gate)], capsys)
    assert run.code == 3 and "cannot read the gates' baseline" in run.err
    assert reads == [] and not (tmp_path / "report.json").exists()


def test_report_of_statistics_applies_their_gates(tmp_path, capsys):
    """daskloss report ARTIFACT: the run's gates again, exit 5; --format table and --output."""
    config = _config(
        tmp_path,
        _days(tmp_path / "data", [1]),
        output={"stats": str(tmp_path / "s.json")},
        evaluation=NO_RESIDUALS,
    )
    code, report, _ = _evaluate(capsys, config, *_gates('{metric = "mse", max = 0.0}'))
    assert code == 5
    flags = ["--format", "table", "--output", str(tmp_path / "again.json")]
    again = run_cli(["report", str(tmp_path / "s.json"), *flags], capsys)
    assert again.code == 5 and "gates: 0 of 1 passed" in again.out
    written = json.loads((tmp_path / "again.json").read_text())
    assert _metric_bytes(written) == _metric_bytes(report)
    assert written["gates"] == report["gates"]
    assert written["outputs"]["statistics"] == str(tmp_path / "s.json")


def test_the_scheduled_task_as_a_subprocess(tmp_path):
    """As a scheduler runs it: exit 0 and the path on the last line; then a failed gate, 5."""
    data = _days(tmp_path / "data", [1, 2])
    config = _config(
        tmp_path,
        data,
        output={"path": str(tmp_path / "reports/{date}/report.json")},
        cache={"path": str(tmp_path / "cache")},
    )
    argv = ["evaluate", str(config), "--run-date", "2026-02-01", "--format", "path"]
    passed = run_daskloss([*argv, *_gates('{metric = "count", min = 1}')], timeout=120)
    report_path = tmp_path / "reports" / "2026-02-01" / "report.json"
    assert passed.code == 0, passed.err
    assert passed.out.splitlines()[-1] == str(report_path)
    failed = run_daskloss([*argv, *_gates('{metric = "count", min = 10000}')], timeout=120)
    assert failed.code == 5, failed.err
    assert failed.out.splitlines()[-1] == str(report_path)
    report = json.loads(report_path.read_text())
    assert report["gates"]["passed"] is False and report["cache"]["files_reused"] == 2
    assert report["gates"]["results"][0]["reasons"] == ["count 400 < min 10000"]


@pytest.mark.cluster
def test_incremental_run_on_a_cluster(tmp_path, capsys, scheduler_address):
    """On worker processes, per-file statistics are cached and reused just the same."""
    data = _days(tmp_path / "data", [1, 2, 3])
    config = _config(tmp_path, data, cache={"path": str(tmp_path / "cache")})
    on_cluster = ["--scheduler", scheduler_address]
    code, first, err = _evaluate(capsys, config, *on_cluster)
    assert code == 0, err
    write_day(data, 4)
    code, second, err = _evaluate(capsys, config, *on_cluster)
    assert code == 0, err
    assert (first["cache"]["files_read"], second["cache"]["files_read"]) == (3, 1)
    assert second["scheduler"] == scheduler_address
    code, embedded, err = _evaluate(capsys, config, "--set", "cache.path=")
    assert _report_bytes(second) == _report_bytes(embedded)


@pytest.mark.s3
def test_cache_statistics_and_report_on_an_object_store(tmp_path, capsys, s3_bucket, reads):
    """Data, cache, statistics and report on S3: the second run reads only the new file."""
    fs, bucket = s3_bucket["fs"], s3_bucket["bucket"]
    local = _days(tmp_path / "local", [1, 2, 3])
    for path in local.glob("*/*.parquet"):
        fs.put_file(str(path), f"{bucket}/data/{path.parent.name}/{path.name}")
    options = s3_bucket["storage_options"]
    url = f"s3://{bucket}"
    config = _config(
        tmp_path,
        f"{url}/data/",
        dataset={"storage_options": options},
        output={
            "path": f"{url}/reports/{{date}}.json",
            "stats": f"{url}/stats/{{date}}.json.gz",
            "storage_options": options,
        },
        cache={"path": f"{url}/cache/", "storage_options": options},
    )
    code, first, err = _evaluate(capsys, config, "--run-date", "2026-03-01")
    assert code == 0, err
    assert first["cache"]["files_read"] == 3 and first["cache"]["stored"]
    assert fs.ls(f"{bucket}/cache/")[0].endswith(".json.gz")
    write_day(local, 4)
    fs.put_file(str(local / "day=04" / "part.parquet"), f"{bucket}/data/day=04/part.parquet")
    reads.clear()
    code, second, err = _evaluate(capsys, config, "--run-date", "2026-03-02")
    assert code == 0, err
    assert reads == [f"{url}/data/day=04/part.parquet"]
    assert second["cache"]["files_reused"] == 3
    assert second["settings"]["cache"]["storage_options"]["secret"] == "***"
    code, full, err = _evaluate(capsys, config, "--set", "cache.path=", "--set", "output.stats=")
    assert code == 0, err
    assert _report_bytes(second) == _report_bytes(full)
    assert json.loads(fs.cat(f"{bucket}/reports/2026-03-02.json"))["count"] == 800
    assert fs.cat(f"{bucket}/stats/2026-03-02.json.gz")[:2] == b"\x1f\x8b"
