"""The job end to end under what clusters and pipelines do: object stores, lost clusters,
re-partitioned data. Nothing may change a reported number or leave a partial report."""

from __future__ import annotations

import json
import signal
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import dask_processes, job_config, run_cli, write_config


def _metrics_text(report_path) -> str:
    """The report's metrics exactly as written (the bytes a pipeline would read)."""
    return json.dumps(json.loads(report_path.read_text())["metrics"], sort_keys=True)


@pytest.mark.s3
def test_s3_dataset_in_s3_report_out(sample, s3_bucket, tmp_path, capsys):
    """Read s3://bucket/prefix/ and write the report to s3://: same metrics as local."""
    fs, bucket, options = s3_bucket["fs"], s3_bucket["bucket"], s3_bucket["storage_options"]
    for path in sorted(sample.iterdir()):
        fs.put_file(str(path), f"{bucket}/preds/{path.name}")
    local = write_config(tmp_path / "local.toml", job_config(sample, tmp_path / "local.json"))
    assert run_cli(["evaluate", str(local)], capsys).code == 0
    remote = job_config(
        f"s3://{bucket}/preds/",
        f"s3://{bucket}/reports/run.json",
        dataset={"storage_options": options},
        output={"storage_options": options},
    )
    run = run_cli(["evaluate", str(write_config(tmp_path / "s3.toml", remote))], capsys)
    assert run.code == 0, run.err
    fs.invalidate_cache()
    written = fs.cat_file(f"{bucket}/reports/run.json").decode()
    assert options["secret"] not in written
    remote_metrics = json.dumps(json.loads(written)["metrics"], sort_keys=True)
    assert remote_metrics == _metrics_text(tmp_path / "local.json")


@pytest.mark.cluster
def test_cluster_lost_mid_run_exits_4_without_a_report(tmp_path, capsys):
    """When the whole cluster dies during a run: exit code 4, one line, no report file."""
    from distributed import Client

    data = tmp_path / "many"
    data.mkdir()
    rng = np.random.default_rng(5)
    for i in range(400):
        y_true = rng.normal(size=2000)
        columns = {"y_true": y_true, "y_pred": y_true + 1.0, "weight": np.ones(2000)}
        pq.write_table(pa.table(columns), data / f"part-{i:04d}.parquet")
    report = tmp_path / "report.json"
    config = write_config(
        tmp_path / "job.toml",
        job_config(data, report, cluster={"connect_timeout": 5}),
    )
    with dask_processes(2, tmp_path) as (address, processes), Client(address) as watcher:
        outcome = {}
        job = threading.Thread(
            target=lambda: outcome.update(
                run=run_cli(["evaluate", str(config), "--scheduler", address], capsys)
            )
        )
        job.start()
        deadline = time.monotonic() + 60
        while not any(watcher.processing().values()):
            assert time.monotonic() < deadline, "the job never started on the cluster"
            time.sleep(0.01)
        for process in processes:
            process.send_signal(signal.SIGKILL)
        job.join(timeout=120)
    assert not job.is_alive(), "the job hung after its cluster died"
    run = outcome["run"]
    assert run.code == 4, run.err
    assert "lost the Dask cluster" in run.err and "no report was written" in run.err
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1
    assert not report.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("report")] == []


@pytest.mark.cluster
def test_same_bytes_on_threads_one_worker_two_workers_and_rewritten_files(sample, tmp_path, capsys):
    """Embedded default, 1 and 2 workers, and the rows rewritten as 7 files: same metric bytes."""
    rewritten = tmp_path / "rewritten"
    rewritten.mkdir()
    table = pq.read_table(sample)
    order = np.random.default_rng(0).permutation(table.num_rows)
    shuffled = table.take(order)
    bounds = np.linspace(0, table.num_rows, 8).astype(int)
    for i in range(7):
        pq.write_table(
            shuffled.slice(bounds[i], bounds[i + 1] - bounds[i]), rewritten / f"p{i}.parquet"
        )
    texts = {}
    runs = {"threads": (sample, None), "rewritten": (rewritten, None)}
    for name, (data, _) in runs.items():
        config = write_config(
            tmp_path / f"{name}.toml", job_config(data, tmp_path / f"{name}.json")
        )
        assert run_cli(["evaluate", str(config)], capsys).code == 0
        texts[name] = _metrics_text(tmp_path / f"{name}.json")
    for workers in (1, 2):
        name = f"{workers}-workers"
        config = write_config(
            tmp_path / f"{name}.toml", job_config(sample, tmp_path / f"{name}.json")
        )
        with dask_processes(workers, tmp_path) as (address, _):
            run = run_cli(["evaluate", str(config), "--scheduler", address], capsys)
        assert run.code == 0, run.err
        texts[name] = _metrics_text(tmp_path / f"{name}.json")
    assert len(set(texts.values())) == 1, texts


def _report(path) -> dict:
    return json.loads(path.read_text())


def test_dataset_outside_the_read_roots_exits_2(sample, tmp_path, capsys, monkeypatch):
    """With DASKLOSS_READ_ROOTS set, a path (or a symlink) leading outside is refused."""
    monkeypatch.setenv("DASKLOSS_READ_ROOTS", str(tmp_path / "allowed"))
    (tmp_path / "allowed").mkdir()
    (tmp_path / "allowed" / "link").symlink_to(sample)
    for path in (tmp_path / "allowed" / ".." / sample.name, tmp_path / "allowed" / "link"):
        config = write_config(tmp_path / "job.toml", job_config(path, tmp_path / "r.json"))
        run = run_cli(["evaluate", str(config)], capsys)
        assert run.code == 2 and "outside the directories this job may read" in run.err
    assert not (tmp_path / "r.json").exists()


def test_symlink_inside_the_read_roots_cannot_lead_outside(sample, tmp_path, capsys, monkeypatch):
    """A link inside an allowed directory to data outside it is refused before any file is read."""
    monkeypatch.setenv("DASKLOSS_READ_ROOTS", str(tmp_path / "allowed"))
    (tmp_path / "allowed" / "data").mkdir(parents=True)
    (tmp_path / "allowed" / "data" / "outside").symlink_to(sample)
    opened = []
    monkeypatch.setattr(
        "daskloss.sources.reader.FileReader._open", lambda self, path: opened.append(path)
    )
    config = write_config(
        tmp_path / "job.toml", job_config(tmp_path / "allowed" / "data", tmp_path / "r.json")
    )
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 2 and "reached through a symbolic link" in run.err
    assert str(sample.resolve()) in run.err
    assert opened == [] and not (tmp_path / "r.json").exists()


def test_config_cannot_run_code(tmp_path, capsys):
    """A YAML-style tag in a TOML config is only a string: nothing runs, the data is missing."""
    marker = tmp_path / "pwned"
    config = tmp_path / "job.toml"
    config.write_text(
        f'[dataset]\npath = "!!python/object/apply:os.system [\\"touch {marker}\\"]"\n'
        '[columns]\ny_true = "y_true"\ny_pred = "y_pred"\n'
    )
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 3 and "no data files found" in run.err
    assert not marker.exists()
    config.write_text("[dataset]\npath = !!python/object:os.system\n")
    assert run_cli(["evaluate", str(config)], capsys).code == 2


def test_duplicate_column_names_are_a_schema_error(tmp_path):
    """A file with two columns of a needed name is refused by name, not with a KeyError."""
    import daskloss
    from daskloss import SchemaError

    columns = [pa.array([1.0, 2.0]), pa.array([1.0, 2.5]), pa.array([3.0, 4.0])]
    table = pa.Table.from_arrays(columns, names=["y_true", "y_pred", "y_pred"])
    pq.write_table(table, tmp_path / "twice.parquet")
    with pytest.raises(SchemaError, match=r"twice\.parquet has more than one column"):
        daskloss.evaluate(tmp_path)


def test_directory_symlink_loop_is_listed_once(tmp_path):
    """A symlink back up the tree neither hangs the listing nor counts files twice."""
    import daskloss

    (tmp_path / "a").mkdir()
    pq.write_table(pa.table({"y_true": [1.0], "y_pred": [3.0]}), tmp_path / "a" / "x.parquet")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    result = daskloss.evaluate(tmp_path)
    assert result.files == (str(tmp_path / "a" / "x.parquet"),)
    assert result.metrics["se"] == 4.0


def test_unicode_and_spaces_in_column_names(tmp_path, capsys):
    """Column names with spaces and non-ASCII characters work end to end."""
    data = tmp_path / "data"
    data.mkdir()
    table = pa.table({"y vrai": [10.0, 11.0, 12.0], "ŷ prédit": [0.0, 1.0, 2.0]})
    pq.write_table(table, data / "part-0.parquet")
    config = write_config(
        tmp_path / "job.toml",
        job_config(data, tmp_path / "r.json", columns={"y_true": "y vrai", "y_pred": "ŷ prédit"}),
    )
    config.write_text(config.read_text().replace('weight = "weight"\n', ""))
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 0, run.err
    assert _report(tmp_path / "r.json")["metrics"]["mse"] == 100.0


def test_all_nan_partition_is_reported_as_skipped(tmp_path, capsys):
    """Under 'skip', a file of NaN rows is left out and the report says how many rows."""
    data = tmp_path / "data"
    data.mkdir()
    good = {"y_true": [1.0, 2.0, 3.0], "y_pred": [1.5, 2.0, 2.0], "weight": [1.0, 1.0, 1.0]}
    pq.write_table(pa.table(good), data / "part-0.parquet")
    nan = {name: [float("nan")] * 4 for name in good}
    pq.write_table(pa.table(nan), data / "part-1.parquet")
    config = job_config(data, tmp_path / "r.json", evaluation={"nan_policy": "skip"})
    run = run_cli(["evaluate", str(write_config(tmp_path / "job.toml", config))], capsys)
    assert run.code == 0, run.err
    report = _report(tmp_path / "r.json")
    assert report["skipped_rows"] == 4 and report["count"] == 3
    assert report["metrics"]["se"] == 0.25 + 0.0 + 1.0
    error = job_config(data, tmp_path / "e.json")
    run = run_cli(["evaluate", str(write_config(tmp_path / "e.toml", error))], capsys)
    assert run.code == 3 and "part-1.parquet" in run.err and not (tmp_path / "e.json").exists()


@pytest.mark.slow
def test_ten_thousand_tiny_files(tmp_path, capsys):
    """10,000 files of 5 rows each: the exact result, in a few batched tasks."""
    data = tmp_path / "data"
    data.mkdir()
    rows = np.arange(50_000, dtype=np.float64).reshape(10_000, 5)
    for i, values in enumerate(rows):
        pq.write_table(
            pa.table({"y_true": values, "y_pred": values + 0.5, "weight": np.ones(5)}),
            data / f"part-{i:05d}.parquet",
        )
    config = write_config(tmp_path / "job.toml", job_config(data, tmp_path / "r.json"))
    run = run_cli(["evaluate", str(config)], capsys)
    assert run.code == 0, run.err
    report = _report(tmp_path / "r.json")
    assert report["count"] == 50_000 and report["dataset"]["files"] == 10_000
    assert report["metrics"]["mse"] == 0.25 and report["metrics"]["bias"] == 0.5
