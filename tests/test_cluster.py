"""Where the job runs: the embedded default, a LocalCluster, a running scheduler."""

from __future__ import annotations

import json
import logging

import dask
import pytest

import daskloss
from daskloss.cluster import Connection, connect
from daskloss.config import ClusterSettings
from daskloss.progress import track_progress
from tests._helpers import job_config, run_cli, sample_dataset, write_config
from tests.conftest import dask_processes, free_port


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return sample_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory):
    """A Dask scheduler and two workers, each a separate process on 127.0.0.1."""
    with dask_processes(2, tmp_path_factory.mktemp("dask-logs")) as (address, _):
        yield address


def test_embedded_default_runs_on_threads():
    """Without an address or n_workers the job uses Dask's threaded scheduler, no Client."""
    with connect(ClusterSettings()) as connection:
        assert connection == Connection("threads")
        assert dask.config.get("scheduler") == "threads"


def test_threads_per_worker_sizes_the_thread_pool():
    """threads_per_worker sets the number of threads of the embedded default."""
    with connect(ClusterSettings(threads_per_worker=3)):
        assert dask.config.get("num_workers") == 3


def test_unreachable_scheduler_is_a_connection_error():
    """An address where nothing listens raises ConnectionError naming it."""
    address = f"tcp://127.0.0.1:{free_port()}"
    settings = ClusterSettings(address=address, connect_timeout=0.5)
    with pytest.raises(ConnectionError, match=f"cannot connect to the Dask scheduler at {address}"):
        with connect(settings):
            pass


def test_progress_is_logged_on_threads(sample, caplog):
    """Without a terminal, progress of the threaded scheduler goes to INFO log lines."""
    caplog.set_level(logging.INFO, logger="daskloss")
    with connect(ClusterSettings()) as connection:
        with track_progress(connection, interactive=False, interval=0.0):
            daskloss.evaluate(str(sample))
    assert any("tasks done" in record.message for record in caplog.records)


@pytest.mark.cluster
def test_local_cluster_of_processes(sample):
    """n_workers without an address starts a LocalCluster of worker processes."""
    settings = ClusterSettings(n_workers=1, threads_per_worker=1)
    with connect(settings) as connection:
        assert connection.scheduler == "local-cluster"
        assert daskloss.evaluate(str(sample)).metrics["count"] > 0


@pytest.mark.cluster
def test_job_on_a_running_cluster_matches_embedded(sample, scheduler_address, tmp_path, capsys):
    """--scheduler runs on separate worker processes; the metrics are bit-identical."""
    config = write_config(tmp_path / "job.toml", job_config(sample, tmp_path / "embedded.json"))
    assert run_cli(["evaluate", str(config)], capsys).code == 0
    remote = tmp_path / "remote.json"
    argv = ["evaluate", str(config), "--scheduler", scheduler_address, "--output", str(remote)]
    run = run_cli(argv, capsys)
    assert run.code == 0, run.err
    embedded = json.loads((tmp_path / "embedded.json").read_text())
    on_cluster = json.loads(remote.read_text())
    assert on_cluster["scheduler"] == scheduler_address
    assert on_cluster["metrics"] == embedded["metrics"]


@pytest.mark.cluster
def test_progress_is_logged_on_a_cluster(sample, scheduler_address, caplog):
    """Without a terminal, progress on a cluster goes to INFO log lines too."""
    caplog.set_level(logging.INFO, logger="daskloss")
    settings = ClusterSettings(address=scheduler_address)
    with connect(settings) as connection:
        with track_progress(connection, interactive=False, interval=0.01):
            metrics = daskloss.evaluate(str(sample)).metrics
    assert metrics == daskloss.evaluate(str(sample)).metrics
    assert any("still evaluating" in record.message for record in caplog.records)
