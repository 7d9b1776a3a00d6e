"""The job's intervals, quantiles, histogram, share of SE, worst rows, losses and HTML page."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from daskloss import ConfigError
from daskloss.config import parse_settings
from daskloss.html import render_html
from daskloss.job import shape_defaults
from tests.helpers import job_config, run_cli, write_config


def _run(tmp_path, sample, capsys, *extra, **sections):
    config = write_config(
        tmp_path / "job.toml", job_config(sample, tmp_path / "r.json", **sections)
    )
    run = run_cli(["evaluate", str(config), *extra], capsys)
    assert run.code == 0, run.err
    return json.loads(run.out), run


def test_config_keys_have_defaults_and_are_checked():
    """The new keys' defaults, and a wrong value is one line naming the key."""
    settings = parse_settings(job_config("data", "r.json"))
    evaluation = settings.evaluation
    # histogram and worst_k are left unset: on, unless a cache is used (shape_defaults)
    assert (evaluation.intervals, evaluation.histogram, evaluation.worst_k) == (True, None, None)
    assert shape_defaults(None, None, cache=None) == (True, 10)
    assert shape_defaults(None, None, cache=object()) == (False, 0)
    assert shape_defaults(False, 3, cache=object()) == (False, 3)
    assert evaluation.id_columns is None and settings.output.html is None
    ids = parse_settings(job_config("d", "r", evaluation={"id_columns": "id"})).evaluation
    assert ids.id_columns == ("id",)
    for section, key, value, message in [
        ("evaluation", "worst_k", -1, "expected an integer >= 0"),
        ("evaluation", "intervals", "yes", "expected true or false"),
        ("evaluation", "id_columns", 3, "expected a string"),
        ("output", "html", "memory://x.html", "expected a place that outlives the job"),
    ]:
        with pytest.raises(ConfigError, match=f"config key '{section}.{key}': {message}"):
            parse_settings(job_config("d", "r", **{section: {key: value}}))


def test_the_report_holds_the_shape_of_the_errors(tmp_path, sample, capsys):
    """intervals, quantiles, histogram, se_share and worst (with the id columns) are reported."""
    report, _ = _run(tmp_path, sample, capsys, evaluation={"id_columns": ["id"], "worst_k": 3})
    assert set(report["intervals"]) == {"mse", "rmse", "mae", "bias"}
    for found in report["intervals"].values():
        assert set(found) == {"stderr", "low", "high"} and found["low"] < found["high"]
    assert list(report["quantiles"]["abs_error"]) == ["0.5", "0.9", "0.99", "0.999"]
    bins = report["histogram"]["abs_error"]
    assert sum(b["count"] for b in bins) == report["count"]
    assert sum(b["count"] for b in report["histogram"]["error"]) == report["count"]
    assert report["se_share"]["low"] <= report["se_share"]["share"] <= report["se_share"]["high"]
    worst = report["worst"]
    assert len(worst) == 3 and list(worst[0]) == ["id", "y_true", "y_pred", "error", "weight"]
    assert abs(worst[0]["error"]) == report["metrics"]["max_error"]
    assert worst[0]["error"] == worst[0]["y_pred"] - worst[0]["y_true"]
    assert [abs(r["error"]) for r in worst] == sorted(
        (abs(r["error"]) for r in worst), reverse=True
    )
    assert report["columns"]["id_columns"] == ["id"]


def test_slices_and_predictions_hold_their_own(tmp_path, sample, capsys):
    """Each slice has its intervals and worst rows; each prediction all of its shape."""
    report, run = _run(
        tmp_path,
        sample,
        capsys,
        columns={"y_pred": ["y_pred", "y_pred_baseline"]},
        evaluation={"group_by": "segment", "worst_k": 2, "min_slice_count": 700},
    )
    for entry in [*report["slices"], report["other_slices"]]:
        assert set(entry["intervals"]) == {"mse", "rmse", "mae", "bias"}
        assert len(entry["worst"]) == 2
    for name in ("y_pred", "y_pred_baseline"):
        entry = report["predictions"][name]
        assert {"intervals", "quantiles", "histogram", "se_share", "worst"} <= set(entry)
    assert report["quantiles"] == report["predictions"]["y_pred"]["quantiles"]
    assert "95% intervals: mse [" in run.err and "|error| quantiles: 50% " in run.err


def test_switched_off_the_fields_are_null(tmp_path, sample, capsys):
    """Without intervals, histogram and worst rows, their keys are null."""
    report, _ = _run(
        tmp_path,
        sample,
        capsys,
        evaluation={"intervals": False, "histogram": False, "worst_k": 0},
    )
    for key in ("intervals", "quantiles", "histogram", "se_share", "worst", "losses"):
        assert report[key] is None, key


def test_the_job_writes_the_losses(tmp_path, sample, capsys):
    """output.losses: a Parquet file per input file; the report says where and how many rows."""
    report, _ = _run(
        tmp_path,
        sample,
        capsys,
        evaluation={"id_columns": "id"},
        output={"losses": str(tmp_path / "losses")},
    )
    assert report["losses"]["rows"] == report["count"]
    written = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "losses").glob("*.parquet")))
    assert len(written) == report["count"] and written.columns[0] == "id"


def test_a_report_inside_the_losses_is_refused(tmp_path, sample, capsys):
    """The report may not lie in the losses directory, which each run replaces."""
    config = write_config(
        tmp_path / "job.toml",
        job_config(sample, tmp_path / "out" / "r.json", output={"losses": str(tmp_path / "out")}),
    )
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 2 and "lies in the losses directory" in run.err


# --- the HTML page ------------------------------------------------------------------------------


def _page(tmp_path, sample, capsys, **sections):
    page = tmp_path / "report.html"
    _run(tmp_path, sample, capsys, "--html", str(page), **sections)
    return page


def test_html_is_self_contained(tmp_path, sample, capsys):
    """--html writes one page: charts inline, no script, nothing fetched from anywhere."""
    page = _page(
        tmp_path,
        sample,
        capsys,
        evaluation={"group_by": "segment", "id_columns": "id", "worst_k": 4},
    )
    text = page.read_text()
    assert text.count("<svg") == 2 and "<script" not in text
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#|data:)""", text)
    assert "default-src 'none'" in text
    for heading in ("Metrics", "Residuals", "Slices", "Worst rows", "Provenance"):
        assert f"<h2>{heading}</h2>" in text


def test_html_escapes_what_the_data_says():
    """A slice key or id value holding markup is shown as text, never as markup."""
    hostile = "<script>alert(1)</script>"
    report = {
        "metrics": {"mse": 1.0},
        "count": 1,
        "dataset": {"path": hostile},
        "columns": {"group_by": ["k"], "id_columns": ["id"]},
        "slices": [{"key": {"k": hostile}, "count": 1, "metrics": {"mse": 1.0}, "worst": []}],
        "worst": [{"id": hostile, "y_true": 0.0, "y_pred": 1.0, "error": 1.0}],
    }
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium or Chrome installed")
def test_html_loads_in_a_headless_browser(tmp_path, sample, capsys):
    """Headless Chromium loads the page: both charts in the DOM, no console message at all.

    Chromium logs every console message (a blocked fetch, a parse error) on
    stderr with ``--enable-logging=stderr``; the page has no script, so any
    such line is a fault.
    """
    page = _page(tmp_path, sample, capsys, evaluation={"group_by": "segment", "id_columns": "id"})
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("<svg") == 2 and "Worst rows" in done.stdout
    assert "<path" in done.stdout  # the charts' marks were parsed as SVG
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console


def test_an_id_column_of_lists_is_refused(tmp_path, capsys):
    """An id column of a nested type is a data error naming it."""
    table = pa.table({"y_true": [1.0], "y_pred": [2.0], "tags": [[1, 2]]})
    pq.write_table(table, tmp_path / "d.parquet")
    config = write_config(
        tmp_path / "job.toml",
        {
            "dataset": {"path": str(tmp_path / "d.parquet")},
            "columns": {"y_true": "y_true", "y_pred": "y_pred"},
            "evaluation": {"id_columns": ["tags"]},
        },
    )
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 3 and "id column 'tags'" in run.err
