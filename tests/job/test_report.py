"""The JSON report: its schema, NaN as null, the human table, atomic writes."""

from __future__ import annotations

import json
import math
import os
import stat
import time
from datetime import UTC, datetime, timedelta

import dask.dataframe as dd
import fsspec
import pandas as pd
import pytest

import daskloss
from daskloss import ConfigError
from daskloss.config import parse_settings, settings_digest
from daskloss.report import (
    REPORT_VERSION,
    build_report,
    check_output_path,
    render_json,
    write_report,
)
from daskloss.table import format_table
from tests.helpers import (
    S3_KEY,
    S3_SECRET,
    SAMPLE_FILES,
    SAMPLE_ROWS,
    free_port,
    job_config,
    leaked_secrets,
)

TOP_KEYS = [
    "report_version",
    "metrics",
    "count",
    "weight_sum",
    "skipped_rows",
    "intervals",
    "quantiles",
    "histogram",
    "se_share",
    "worst",
    "losses",
    "dataset",
    "columns",
    "nan_policy",
    "scheduler",
    "started_at",
    "finished_at",
    "duration_seconds",
    "versions",
    "config_digest",
    "settings",
]
STARTED = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)


def _report(dataset_path, **sections):
    settings = parse_settings(job_config(dataset_path, "unused.json", **sections))
    result = daskloss.evaluate(settings.dataset.path, weight="weight")
    return build_report(
        result,
        settings,
        scheduler="threads",
        started=STARTED,
        finished=STARTED + timedelta(seconds=1.5),
        duration=1.5,
    )


def test_report_keys_in_order(sample):
    """The report has these top-level keys, in this order (null where not computed)."""
    assert list(_report(sample)) == TOP_KEYS


def test_report_describes_the_run(sample):
    """The report names the dataset, its files and partitions, and the run."""
    report = _report(sample)
    assert report["report_version"] == REPORT_VERSION == 3
    assert report["dataset"] == {
        "path": str(sample),
        "format": "parquet",
        "files": SAMPLE_FILES,
        "partitions": SAMPLE_FILES,
    }
    assert report["count"] == report["metrics"]["count"] == SAMPLE_ROWS
    assert report["columns"] == {
        "y_true": "y_true",
        "y_pred": "y_pred",
        "weight": "weight",
        "group_by": None,
        "id_columns": None,
    }
    assert set(report["versions"]) == {"daskloss", "dask", "distributed", "python"}


def test_times_are_utc_iso_8601(sample):
    """Start and end are UTC ISO-8601 with a Z; the duration is in seconds."""
    report = _report(sample)
    assert report["started_at"] == "2025-01-31T12:00:00.000Z"
    assert report["finished_at"] == "2025-01-31T12:00:01.500Z"
    assert report["duration_seconds"] == 1.5


def test_only_configured_metrics_are_reported(sample):
    """evaluation.metrics chooses the metrics, in the configured order."""
    report = _report(sample, evaluation={"metrics": ["rmse", "mse"]})
    assert list(report["metrics"]) == ["rmse", "mse"]


def test_digest_is_that_of_the_settings(sample):
    """config_digest is the digest of the resolved settings the report holds."""
    report = _report(sample)
    settings = parse_settings(report["settings"])
    assert report["config_digest"] == settings_digest(settings)


def _built(result, settings):
    return build_report(
        result, settings, scheduler="threads", started=STARTED, finished=STARTED, duration=0
    )


def test_undefined_metric_is_null():
    """A NaN metric (R² of a constant target) is written as null: strict JSON."""
    frame = pd.DataFrame({"y_true": [1.0, 1.0], "y_pred": [0.0, 2.0]})
    result = daskloss.evaluate(dd.from_pandas(frame, npartitions=1))
    settings = parse_settings(job_config("x", "y", columns={"weight": "w"}))
    report = _built(result, settings)
    assert math.isnan(result.metrics["r2"])
    assert json.loads(render_json(report))["metrics"]["r2"] is None


def test_infinite_metric_is_a_string_and_undefined_is_null():
    """An overflowed metric is "Infinity" in the JSON, an undefined one null: never confused."""
    frame = pd.DataFrame({"y_true": [1e200, 1e200], "y_pred": [-1e200, -1e200]})
    result = daskloss.evaluate(frame)
    settings = parse_settings(job_config("x", "y"))
    report = json.loads(render_json(_built(result, settings)))
    assert math.isinf(result.metrics["se"]) and math.isnan(result.metrics["r2"])
    assert report["metrics"]["se"] == "Infinity" and report["metrics"]["r2"] is None
    assert report["metrics"]["l2"] == 2.8284271247461902e200
    assert float(report["metrics"]["se"]) == math.inf
    assert "se            inf (beyond the float64 range)" in format_table(report)


def test_table_lists_every_metric(sample):
    """The human table has one line per reported metric, at full precision."""
    report = _report(sample)
    table = format_table(report)
    for name, value in report["metrics"].items():
        assert f"{name}" in table and repr(value) in table


def test_write_report_writes_the_json(tmp_path):
    """write_report leaves exactly the rendered JSON at the path."""
    target = tmp_path / "report.json"
    write_report({"report_version": 1, "metrics": {"mse": 0.1}}, str(target))
    assert json.loads(target.read_text()) == {"report_version": 1, "metrics": {"mse": 0.1}}
    assert os.listdir(tmp_path) == ["report.json"]


def test_failed_serialisation_keeps_previous_report(tmp_path, monkeypatch):
    """If rendering fails, the previous report is intact and no temporary file is left."""
    target = tmp_path / "report.json"
    target.write_text('{"old": true}\n')

    def broken(*args, **kwargs):
        raise TypeError("cannot serialise")

    monkeypatch.setattr(json, "dumps", broken)
    with pytest.raises(TypeError):
        write_report({"report_version": 1}, str(target))
    assert target.read_text() == '{"old": true}\n'
    assert os.listdir(tmp_path) == ["report.json"]


def test_failed_write_midway_keeps_previous_report(tmp_path, monkeypatch):
    """If the disk write fails after part of the file, the previous report survives whole."""
    target = tmp_path / "report.json"
    target.write_text('{"old": true}\n')

    def failing_fsync(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(ConfigError, match=r"No space left.*no report was written"):
        write_report({"report_version": 1, "metrics": {"mse": 1.0}}, str(target))
    assert target.read_text() == '{"old": true}\n'
    assert os.listdir(tmp_path) == ["report.json"]


def test_write_report_to_fsspec_url():
    """A URL is written through fsspec in one piece."""
    write_report({"report_version": 1}, "memory://reports/run-1.json")
    with fsspec.open("memory://reports/run-1.json", "r") as handle:
        assert json.load(handle) == {"report_version": 1}


def test_check_output_path_creates_directories_only_when_writing(tmp_path):
    """Missing parent directories of the report are checked before the run, created at the write."""
    target = tmp_path / "a" / "b" / "report.json"
    check_output_path(str(target))
    assert not (tmp_path / "a").exists()
    write_report({"report_version": 1}, str(target))
    assert (tmp_path / "a" / "b").is_dir()


def test_check_output_path_rejects_a_directory(tmp_path):
    """A report path that is a directory is a config error."""
    with pytest.raises(ConfigError, match="is a directory"):
        check_output_path(str(tmp_path))


def test_unknown_url_scheme_is_refused_before_the_run():
    """An output URL whose scheme fsspec does not know (or cannot load) is a config error."""
    with pytest.raises(ConfigError, match=r"cannot write the report to foo://b/r\.json"):
        check_output_path("foo://b/r.json")
    check_output_path("memory://reports/r.json")


def test_write_failure_is_a_config_error_naming_the_path(tmp_path):
    """A report that cannot be written after the run is a ConfigError (exit 2), not a traceback."""
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "report.json"  # its "directory" is a file
    with pytest.raises(ConfigError, match=r"cannot write the report to .*file/report\.json"):
        write_report({"report_version": 1}, str(target))


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/dev/null", "a character device"),
        ("/proc/self/fd/1", "a symbolic link"),
    ],
)
def test_output_path_that_is_a_device_or_a_descriptor_link_is_refused(path, kind):
    """A device or a /proc/self/fd link at the report path is refused, never replaced."""
    with pytest.raises(ConfigError, match=f"output path {path} is {kind}, not a regular file"):
        check_output_path(path)


def test_a_fifo_or_a_link_at_the_output_path_is_never_replaced(tmp_path):
    """A FIFO (or a link) is refused before the run, and by the write should it appear later."""
    fifo, link = tmp_path / "fifo.json", tmp_path / "link.json"
    os.mkfifo(fifo)
    link.symlink_to(tmp_path / "elsewhere.json")
    for path in (fifo, link):
        with pytest.raises(ConfigError, match="not a regular file"):
            check_output_path(str(path))
    with pytest.raises(ConfigError, match=r"fifo\.json is a FIFO \(named pipe\), not a regular"):
        write_report({"report_version": 1}, str(fifo))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["fifo.json", "link.json"]


def test_a_report_among_the_dataset_files_is_refused(tmp_path):
    """The report may not overwrite an input, nor sit where the next run would read it."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "part-0.parquet").write_bytes(b"")
    refused = [
        (data / "part-0.parquet", data / "part-0.parquet"),
        (data, data / "report.json"),
        (data, data / "sub" / "report.json"),
        (tmp_path / "data" / "*", data / "report.json"),
        (tmp_path / "link", data / "report.json"),
    ]
    (tmp_path / "link").symlink_to(data)
    for dataset, output in refused:
        with pytest.raises(ConfigError, match="where the next run would read it as data"):
            check_output_path(str(output), str(dataset))
    allowed = [
        (data, data / "_report.json"),
        (data, data / ".reports" / "r.json"),
        (data, tmp_path / "report.json"),
        (tmp_path / "data" / "*.parquet", data / "report.json"),
    ]
    for dataset, output in allowed:
        check_output_path(str(output), str(dataset))


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_the_report_mode_follows_the_umask(tmp_path, umask, mode):
    """The report file gets the mode the umask gives a new file, as any other tool's output."""
    old = os.umask(umask)
    try:
        write_report({"report_version": 1}, str(tmp_path / "r.json"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == mode


def test_unreachable_object_store_for_the_report_is_one_line_without_secrets():
    """An output endpoint where nothing listens: a ConfigError of one line, no credentials."""
    pytest.importorskip("s3fs")
    options = {
        "key": S3_KEY,
        "secret": S3_SECRET,
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{free_port()}"},
        "config_kwargs": {"retries": {"max_attempts": 1}},  # botocore's retries: 8 s, not 2
    }
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        write_report({"report_version": 1}, "s3://bucket/reports/r.json", options)
    message = str(caught.value)
    assert message.startswith("cannot write the report to s3://bucket/reports/r.json: ")
    assert "connect" in message.lower() and "\n" not in message
    assert not leaked_secrets(message)
    assert time.monotonic() - started < 60


def _sliced_report(sample, min_slice_count=None, table_slices=20):
    evaluation = {"group_by": ["segment"], "baseline": "y_pred_baseline"}
    if min_slice_count is not None:
        evaluation["min_slice_count"] = min_slice_count
    settings = parse_settings(
        job_config(
            sample,
            "unused.json",
            columns={"y_pred": ["y_pred", "y_pred_baseline"]},
            evaluation=evaluation,
            output={"table_slices": table_slices},
        )
    )
    result = daskloss.evaluate(
        settings.dataset.path,
        "y_true",
        ["y_pred", "y_pred_baseline"],
        "weight",
        group_by="segment",
        baseline="y_pred_baseline",
    )
    return _built(result, settings), result


def test_sliced_two_model_report_schema(sample):
    """Report v3: slices, predictions and comparisons, each slice the first prediction's."""
    report, result = _sliced_report(sample)
    assert list(report)[:9] == [
        "report_version",
        "metrics",
        "count",
        "weight_sum",
        "skipped_rows",
        "slices",
        "other_slices",
        "predictions",
        "comparisons",
    ]
    assert report["report_version"] == 3 and report["other_slices"] is None
    assert [s["key"]["segment"] for s in report["slices"]] == sorted(daskloss.sample.SEGMENTS)
    assert sum(s["count"] for s in report["slices"]) == report["count"] == SAMPLE_ROWS
    assert report["predictions"]["y_pred"]["slices"] == report["slices"]
    assert report["metrics"] == report["predictions"]["y_pred"]["metrics"]
    (comparison,) = report["comparisons"]
    assert (comparison["prediction"], comparison["baseline"]) == ("y_pred", "y_pred_baseline")
    assert set(comparison["metrics"]) == {"mse", "mae", "rmse"}
    fields = {"difference", "stderr", "low", "high", "excludes_zero", "better"}
    assert set(comparison["metrics"]["mse"]) == fields
    assert comparison["metrics"] == json.loads(json.dumps(result.overall.comparisons["y_pred"]))
    assert len(comparison["slices"]) == 4
    assert report["columns"]["group_by"] == ["segment"]
    json.loads(render_json(report))  # strict JSON


def test_small_slices_fold_into_other(sample):
    """Slices under min_slice_count are one 'other' entry, counted, never dropped."""
    report, result = _sliced_report(sample, min_slice_count=400)
    small = [s for s in result.slices if s.count < 400]
    assert small and report["other_slices"]["slices"] == len(small)
    assert report["other_slices"]["count"] == sum(s.count for s in small)
    assert len(report["slices"]) == 4 - len(small)
    assert sum(s["count"] for s in report["slices"]) + report["other_slices"]["count"] == 3000


def test_table_shows_the_worst_slices_and_the_comparisons(sample):
    """The table lists the worst slices by the table metric, the rest counted, and verdicts."""
    report, _ = _sliced_report(sample, table_slices=2)
    table = format_table(report)
    by_mse = sorted(report["slices"], key=lambda s: -s["metrics"]["mse"])
    worst = [s["key"]["segment"] for s in by_mse][:2]
    slices_block, comparison_block = table.split(" against ", 1)
    rows = [line.split()[0] for line in slices_block.splitlines() if line.startswith("  ")]
    assert "the 2 with the highest mse" in table and "... and 2 more slices" in table
    assert [r for r in rows if r in daskloss.sample.SEGMENTS] == worst
    verdicts = [
        line.split()[0] for line in comparison_block.splitlines() if line.startswith("    ")
    ]
    assert verdicts == worst
    assert "y_pred_baseline" in table.splitlines()[1]  # a column per prediction
