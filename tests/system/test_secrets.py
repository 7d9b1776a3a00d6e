"""Secrets never reach output: error lines, -v logs and tracebacks, the report, on threads and
on a cluster; and the suite itself fails any test whose output holds a test secret."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from daskloss import job
from tests.helpers import (
    BEARER_TOKEN,
    ROOT,
    URL_PASSWORD,
    free_port,
    job_config,
    leaked_secrets,
    run_cli,
    secret_options,
    write_config,
)


def test_the_suite_fails_a_test_that_prints_a_secret(pytester, monkeypatch):
    """conftest.py turns a passing test whose captured output holds a test secret into a failure."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(
        test_leak=(
            "from tests.helpers import BEARER_TOKEN\n\n"
            "def test_prints():\n    print(BEARER_TOKEN)\n\n"
            "def test_logs(caplog):\n    import logging\n"
            "    logging.getLogger('x').warning('token %s', BEARER_TOKEN)\n\n"
            "def test_quiet():\n    print('nothing to hide')\n"
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=1, failed=2)
    assert not leaked_secrets(result.stdout.str())
    result.stdout.fnmatch_lines(["*a test secret (tests/helpers.py TEST_SECRETS) appeared in*"])


def _secret_job(tmp_path, data, **sections):
    """A job over ``data`` whose dataset and output options hold every kind of secret."""
    options = secret_options(f"http://127.0.0.1:{free_port()}")
    config = job_config(
        data,
        tmp_path / "report.json",
        dataset={"storage_options": options},
        output={"storage_options": options},
        **sections,
    )
    return write_config(tmp_path / "job.toml", config)


def _check_report(path) -> None:
    text = path.read_text()
    assert not leaked_secrets(text)
    shown = json.loads(text)["settings"]["dataset"]["storage_options"]
    assert shown["headers"] == shown["connection_string"] == "***"
    assert shown["client_kwargs"]["endpoint_url"].startswith("http://minio:***@127.0.0.1:")


def test_secrets_reach_neither_the_logs_nor_the_report(sample, tmp_path, capsys):
    """-vv logs the settings and every step: secrets under any option name are hidden."""
    run = run_cli(["evaluate", str(_secret_job(tmp_path, sample)), "-vv"], capsys)
    assert run.code == 0, run.err
    assert " DEBUG daskloss" in run.err and "storage_options" in run.err
    _check_report(tmp_path / "report.json")


def test_a_url_password_is_hidden_in_the_error_line(tmp_path, capsys):
    """A password with "/", "#" and "?" in a dataset URL never shows in the error."""
    url = f"ftp://bob:{URL_PASSWORD}@127.0.0.1:{free_port()}/data/"
    run = run_cli(["evaluate", str(_secret_job(tmp_path, url)), "-v"], capsys)
    assert run.code in (3, 4), run.err
    assert "ftp://bob:***@127.0.0.1" in run.err


def test_a_traceback_is_scrubbed_too(sample, tmp_path, monkeypatch, capsys):
    """An unexpected error quoting a secret, with -v's traceback: scrubbed everywhere."""

    def broken(*args, **kwargs):
        raise RuntimeError(f"the store said no to {BEARER_TOKEN}")

    monkeypatch.setattr(job, "evaluate", broken)
    run = run_cli(["evaluate", str(_secret_job(tmp_path, sample)), "-v"], capsys)
    assert run.code == 4
    assert "RuntimeError: the store said no to ***" in run.err and "Traceback" in run.err


@pytest.mark.cluster
def test_secrets_stay_hidden_on_a_cluster(sample, scheduler_address, tmp_path, capsys):
    """On a cluster: the report, the logs, and a worker's error naming a file whose name holds
    a secret (scrubbed as a known value)."""
    config = _secret_job(tmp_path, sample)
    argv = ["evaluate", str(config), "--scheduler", scheduler_address, "-v"]
    run = run_cli(argv, capsys)
    assert run.code == 0, run.err
    _check_report(tmp_path / "report.json")
    data = tmp_path / "data"
    shutil.copytree(sample, data)
    first = sorted(data.iterdir())[0]
    table = pq.read_table(first).drop_columns(["y_pred"])
    pq.write_table(table, data / f"z-{BEARER_TOKEN}.parquet")  # read by a worker, not listed first
    run = run_cli([*argv, "--set", f"dataset.path='{data}'"], capsys)
    assert run.code == 3, run.err
    assert "not found in" in run.err and "z-***.parquet" in run.err
