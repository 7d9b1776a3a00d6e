"""The daskloss command line: end to end on a sample dataset, and its exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import daskloss
from daskloss import job
from daskloss.report import REPORT_VERSION
from jobs import evaluate as evaluate_job
from tests.helpers import (
    ROOT,
    SAMPLE_FILES,
    SAMPLE_ROWS,
    free_port,
    job_config,
    run_cli,
    write_config,
)
from tests.reference import assert_bit_identical, reference_metrics


@pytest.fixture
def config(sample, tmp_path):
    """A job config over the sample, writing tmp_path/report.json."""
    return write_config(tmp_path / "job.toml", job_config(sample, tmp_path / "report.json"))


def _copy(sample: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(sample, target)
    return target


def test_version(capsys):
    """--version prints daskloss's version and exits 0."""
    run = run_cli(["--version"], capsys)
    assert run.code == 0
    assert run.out.startswith(f"daskloss {daskloss.__version__} (dask ")


def test_help_lists_the_commands(capsys):
    """--help shows the commands and the quick start."""
    run = run_cli(["--help"], capsys)
    assert run.code == 0
    assert "evaluate" in run.out and "make-sample" in run.out
    assert "daskloss evaluate configs/example.toml" in run.out


def test_evaluate_help_documents_exit_codes_and_precedence(capsys):
    """evaluate --help explains the exit codes and the settings precedence."""
    run = run_cli(["evaluate", "--help"], capsys)
    assert run.code == 0
    assert "exit codes:" in run.out and "130" in run.out
    assert "DASKLOSS_SCHEDULER" in run.out


def test_usage_error_exits_2(capsys):
    """An unknown option is a usage error: exit 2, argparse's message."""
    run = run_cli(["evaluate", "job.toml", "--bogus"], capsys)
    assert run.code == 2
    assert "unrecognized arguments: --bogus" in run.err


def test_end_to_end_matches_evaluate_and_reference(config, sample, tmp_path, capsys):
    """The job's metrics equal daskloss.evaluate's and the Fraction reference, bit for bit."""
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 0, run.err
    report = json.loads((tmp_path / "report.json").read_text())
    library = daskloss.evaluate(str(sample), weight="weight").metrics
    frame = pd.read_parquet(sample)
    reference = reference_metrics(frame.y_true, frame.y_pred, frame.weight)
    assert report["metrics"] == library
    assert_bit_identical(report["metrics"], reference)
    assert report["dataset"]["files"] == SAMPLE_FILES
    assert report["count"] == SAMPLE_ROWS
    assert report["scheduler"] == "threads"


def test_stdout_is_the_report_and_stderr_the_table(config, tmp_path, capsys):
    """By default stdout holds the JSON report written to output.path; stderr the table."""
    run = run_cli(["evaluate", str(config)], capsys)
    assert json.loads(run.out) == json.loads((tmp_path / "report.json").read_text())
    assert "mse" in run.err and "report written to" in run.err


def test_format_table_prints_the_table_on_stdout(config, capsys):
    """--format table puts the table, not JSON, on stdout."""
    run = run_cli(["evaluate", str(config), "--format", "table"], capsys)
    assert run.out.startswith("daskloss: ")
    assert "  mse " in run.out and "{" not in run.out


def test_output_flag_chooses_the_report_path(config, tmp_path, capsys):
    """--output writes the report elsewhere, creating directories."""
    target = tmp_path / "runs" / "r.json"
    assert run_cli(["evaluate", str(config), "--output", str(target)], capsys).code == 0
    assert json.loads(target.read_text())["report_version"] == REPORT_VERSION


def test_jobs_entrypoint_is_daskloss_evaluate(config, tmp_path, capsys):
    """jobs.evaluate.main runs the same job as daskloss evaluate."""
    assert evaluate_job.main([str(config), "--set", "evaluation.metrics=['mse']"]) == 0
    capsys.readouterr()
    assert list(json.loads((tmp_path / "report.json").read_text())["metrics"]) == ["mse"]


def test_jobs_module_runs_as_a_script():
    """python -m jobs.evaluate --help works from the repository root."""
    done = subprocess.run(
        [sys.executable, "-m", "jobs.evaluate", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "usage: daskloss evaluate" in done.stdout


def test_bad_config_exits_2_with_one_line(config, capsys):
    """A config error exits 2 with one line naming the key, and no traceback."""
    run = run_cli(["evaluate", str(config), "--set", "columns.y_pred=3"], capsys)
    assert run.code == 2
    assert run.err.splitlines() == [
        "daskloss: error: config key 'columns.y_pred': expected a string, got 3 "
        "(from --set columns.y_pred)"
    ]


def test_missing_config_file_exits_2(tmp_path, capsys):
    """A config file that does not exist exits 2."""
    assert run_cli(["evaluate", str(tmp_path / "nope.toml")], capsys).code == 2


def test_missing_column_exits_3(config, capsys):
    """A column missing from the data exits 3, naming it, without a traceback."""
    run = run_cli(["evaluate", str(config), "--set", "columns.y_pred=prediction"], capsys)
    assert run.code == 3
    assert "'prediction'" in run.err and "Traceback" not in run.err


def test_no_files_exits_3(config, tmp_path, capsys):
    """A dataset path with no files exits 3."""
    run = run_cli(["evaluate", str(config), "--set", f"dataset.path='{tmp_path}/none'"], capsys)
    assert run.code == 3


def test_nan_exits_3(sample, tmp_path, capsys):
    """A NaN prediction under nan_policy = "error" exits 3."""
    data = _copy(sample, tmp_path)
    pd.DataFrame({"y_true": [1.0], "y_pred": [np.nan], "weight": [1.0]}).to_parquet(
        data / "part-00099.parquet"
    )
    config = write_config(tmp_path / "job.toml", job_config(data, tmp_path / "r.json"))
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 3
    assert "NaN" in run.err


def test_nan_skip_counts_skipped_rows(sample, tmp_path, capsys):
    """Under nan_policy = "skip" the NaN row is left out and counted."""
    data = _copy(sample, tmp_path)
    pd.DataFrame({"y_true": [1.0], "y_pred": [np.nan], "weight": [1.0]}).to_parquet(
        data / "part-00099.parquet"
    )
    config = write_config(
        tmp_path / "job.toml",
        job_config(data, tmp_path / "r.json", evaluation={"nan_policy": "skip"}),
    )
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 0
    assert json.loads(run.out)["skipped_rows"] == 1


def test_corrupt_file_exits_3(sample, tmp_path, capsys):
    """A corrupt Parquet file exits 3, naming the file."""
    data = _copy(sample, tmp_path)
    (data / "part-00001.parquet").write_bytes(b"PAR1 this is not parquet")
    config = write_config(tmp_path / "job.toml", job_config(data, tmp_path / "r.json"))
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 3
    assert "part-00001.parquet" in run.err


def test_unreachable_scheduler_exits_4(config, capsys):
    """A scheduler address where nothing listens exits 4 after the connect timeout."""
    address = f"tcp://127.0.0.1:{free_port()}"
    argv = ["evaluate", str(config), "--scheduler", address, "--set", "cluster.connect_timeout=1"]
    run = run_cli(argv, capsys)
    assert run.code == 4
    assert f"cannot connect to the Dask scheduler at {address}" in run.err
    assert len(run.err.splitlines()) == 1


def test_unexpected_error_exits_4_with_one_line(config, monkeypatch, capsys):
    """An unexpected exception exits 4 with one line pointing to -v."""

    def broken(*args, **kwargs):
        raise RuntimeError("worker exploded")

    monkeypatch.setattr(job, "evaluate", broken)
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 4
    assert run.err.splitlines() == [
        "daskloss: error: RuntimeError: worker exploded (run with -v for the traceback)"
    ]


def test_verbose_shows_the_traceback(config, monkeypatch, capsys):
    """With -v an unexpected exception's traceback is printed."""

    def broken(*args, **kwargs):
        raise RuntimeError("worker exploded")

    monkeypatch.setattr(job, "evaluate", broken)
    run = run_cli(["evaluate", str(config), "-v"], capsys)
    assert run.code == 4
    assert "Traceback (most recent call last)" in run.err


def test_very_verbose_adds_debug_lines(config, capsys):
    """-vv logs more than -v: the planning and the computation at DEBUG."""
    verbose = run_cli(["evaluate", str(config), "-v"], capsys)
    very = run_cli(["evaluate", str(config), "-vv"], capsys)
    assert verbose.code == very.code == 0
    assert " DEBUG " not in verbose.err and " INFO " in verbose.err
    debug = [line for line in very.err.splitlines() if " DEBUG daskloss" in line]
    assert any("listed 3 files" in line for line in debug), very.err
    assert any("statistics of 3000 rows computed" in line for line in debug), very.err


def test_set_with_an_empty_value_removes_the_weight(config, capsys):
    """--set columns.weight= unsets a weight column the config names."""
    run = run_cli(["evaluate", str(config), "--set", "columns.weight="], capsys)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["columns"]["weight"] is None
    assert report["weight_sum"] == float(report["count"])


def test_keyboard_interrupt_exits_130(config, monkeypatch, capsys):
    """Ctrl-C exits 130."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(job, "evaluate", interrupted)
    assert run_cli(["evaluate", str(config)], capsys).code == 130


def test_make_sample_is_deterministic_with_unequal_files(tmp_path, capsys):
    """make-sample writes the same data for a seed, in files of different sizes."""
    for name in ("a", "b"):
        argv = [
            "make-sample",
            str(tmp_path / name),
            "--rows",
            "2000",
            "--files",
            "4",
            "--seed",
            "3",
        ]
        assert run_cli(argv, capsys).code == 0
    first, second = pd.read_parquet(tmp_path / "a"), pd.read_parquet(tmp_path / "b")
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == ["id", "segment", "y_true", "y_pred", "weight", "y_pred_baseline"]
    assert (first.weight > 0).all() and first.id.is_unique
    sizes = {len(pd.read_parquet(p)) for p in sorted((tmp_path / "a").iterdir())}
    assert len(sizes) == 4


def test_make_sample_refuses_a_directory_with_other_files(tmp_path, capsys):
    """make-sample will not mix its files with someone else's: exit 2."""
    (tmp_path / "notes.txt").write_text("mine")
    run = run_cli(["make-sample", str(tmp_path), "--rows", "10"], capsys)
    assert run.code == 2
    assert "notes.txt" in run.err


def test_make_sample_refuses_a_file_as_its_directory(tmp_path, capsys):
    """make-sample given an existing file: exit 2 naming it, no traceback."""
    (tmp_path / "taken").write_text("")
    run = run_cli(["make-sample", str(tmp_path / "taken"), "--rows", "10"], capsys)
    assert run.code == 2
    assert "cannot create the sample directory" in run.err and "taken" in run.err


def test_make_sample_rejects_zero_rows(tmp_path, capsys):
    """--rows must be a positive integer (argparse error, exit 2)."""
    assert run_cli(["make-sample", str(tmp_path), "--rows", "0"], capsys).code == 2


def test_make_sample_rejects_a_negative_seed(tmp_path, capsys):
    """--seed must be an integer >= 0: a usage error (exit 2), not a runtime failure."""
    run = run_cli(["make-sample", str(tmp_path / "s"), "--seed", "-1"], capsys)
    assert run.code == 2 and "--seed: expected an integer >= 0" in run.err


def test_bad_evaluation_settings_fail_before_the_cluster_is_reached(sample, tmp_path, capsys):
    """An id column named like a worst-row field is a config error (2), not a lost cluster (4)."""
    config = write_config(tmp_path / "job.toml", job_config(sample, tmp_path / "r.json"))
    for setting in ("evaluation.id_columns=error", "evaluation.id_columns=y_true"):
        run = run_cli(
            ["evaluate", str(config), "--set", setting, "--scheduler", "tcp://127.0.0.1:1"],
            capsys,
        )
        assert run.code == 2 and "evaluation.id_columns" in run.err, run.err


def test_too_many_worst_rows_is_a_config_error(sample, tmp_path, capsys):
    """A huge worst_k is refused before any work (exit 2), in the job and the library."""
    config = write_config(tmp_path / "job.toml", job_config(sample, tmp_path / "r.json"))
    run = run_cli(["evaluate", str(config), "--set", "evaluation.worst_k=1000000000000"], capsys)
    assert run.code == 2 and "evaluation.worst_k" in run.err and "10000" in run.err
    with pytest.raises(daskloss.ConfigError, match="at most 10,000"):
        daskloss.evaluate(str(sample), worst_k=10_001)


@pytest.mark.s3
def test_credentials_never_reach_the_report_or_logs(sample, s3_bucket, tmp_path, capsys):
    """Storage-option secrets appear in neither the report nor the -vv logs."""
    fs, bucket, options = s3_bucket["fs"], s3_bucket["bucket"], s3_bucket["storage_options"]
    for path in sorted(sample.iterdir()):
        fs.put_file(str(path), f"{bucket}/preds/{path.name}")
    dataset = {"path": f"s3://{bucket}/preds/", "storage_options": options}
    config = write_config(
        tmp_path / "job.toml", job_config(sample, tmp_path / "r.json", dataset=dataset)
    )
    run = run_cli(["evaluate", str(config), "-vv"], capsys)
    assert run.code == 0, run.err
    written = (tmp_path / "r.json").read_text()
    for secret in (options["secret"], options["key"]):
        assert secret not in written and secret not in run.out and secret not in run.err
    assert json.loads(written)["count"] == SAMPLE_ROWS


def test_a_fifo_as_the_config_exits_2_at_once(tmp_path, capsys):
    """A FIFO as the config file: exit 2 at once, not a read blocked forever."""
    os.mkfifo(tmp_path / "job.toml")
    run = run_cli(["evaluate", str(tmp_path / "job.toml")], capsys)
    assert run.code == 2 and "is a FIFO (named pipe), not a regular file" in run.err


def test_read_roots_naming_nothing_exit_2(config, monkeypatch, capsys):
    """DASKLOSS_READ_ROOTS="," is a config error, not confinement switched off."""
    monkeypatch.setenv("DASKLOSS_READ_ROOTS", ",")
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 2 and "lists no directory" in run.err


def test_a_report_inside_the_dataset_exits_2_before_any_work(sample, tmp_path, capsys):
    """--output into the dataset directory (or over an input) is refused up front: exit 2."""
    data = _copy(sample, tmp_path)
    config = write_config(tmp_path / "job.toml", job_config(data, tmp_path / "r.json"))
    for target in (data / "report.json", next(data.iterdir())):
        run = run_cli(["evaluate", str(config), "--output", str(target)], capsys)
        assert run.code == 2 and "where the next run would read it as data" in run.err
    assert sorted(p.name for p in data.iterdir()) == sorted(p.name for p in sample.iterdir())


def test_a_failed_job_creates_no_output_directory(config, tmp_path, capsys):
    """The report's missing directories are made when it is written: not by a job that fails."""
    target = tmp_path / "runs" / "today" / "r.json"
    argv = ["evaluate", str(config), "--output", str(target), "--set", "columns.y_pred=nope"]
    assert run_cli(argv, capsys).code == 3
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key", ["columns.y_pred", "dataset.path"])
def test_a_50_mb_name_is_not_echoed_whole(config, tmp_path, capsys, key):
    """A 50 MB column name or path in an error is shown by its ends, on one short line."""
    huge = "x" * 50_000_000
    value = huge if key.startswith("columns") else f"{tmp_path}/{huge}"
    run = run_cli(["evaluate", str(config), "--set", f"{key}={value}"], capsys)
    assert run.code == 3, run.err[:300]
    assert len(run.err) < 5000 and len(run.err.strip().splitlines()) == 1
    assert "characters cut" in run.err


def test_a_config_file_larger_than_a_megabyte_is_refused(tmp_path, capsys):
    """A config of megabytes (a data file given by mistake) is refused before it is parsed."""
    (tmp_path / "big.toml").write_text("# " + "x" * 2**20 + "\n")
    run = run_cli(["evaluate", str(tmp_path / "big.toml")], capsys)
    assert run.code == 2 and "it is larger than 1048576 bytes" in run.err
