"""Every wait has a deadline: paused workers and schedulers (SIGSTOP), a killed cluster, FIFOs.

The job runs as a process of its own (``daskloss evaluate``), so that these tests see what
it prints on the real stderr and that it exits at all; each is bounded by a timeout, and
every paused process is killed before the cluster is torn down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import (
    dask_processes,
    job_config,
    leaked_secrets,
    start_daskloss,
    write_config,
)

#: Seconds without a finished task before the job gives up, in these tests.
STALL = 3
#: How long the tests give the scheduler to answer (cluster.connect_timeout).
CONNECT = 5
#: The most a test waits for the job: generous, for a loaded machine; a hang check.
DEADLINE = 120


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    """A dataset that keeps two single-threaded workers busy for a second or two."""
    data = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(3)
    for i in range(160):
        y_true = rng.normal(size=20_000)
        columns = {"y_true": y_true, "y_pred": y_true + 1.0, "weight": np.ones(20_000)}
        pq.write_table(pa.table(columns), data / f"part-{i:04d}.parquet")
    return data


def _job(tmp_path, data) -> list[str]:
    cluster = {"connect_timeout": CONNECT, "stall_timeout": STALL}
    config = job_config(data, tmp_path / "report.json", cluster=cluster)
    return ["evaluate", str(write_config(tmp_path / "job.toml", config))]


def _finish(job: subprocess.Popen) -> tuple[int, str, float]:
    """The job's exit code, stderr and how long it took to end (killed after DEADLINE)."""
    started = time.monotonic()
    try:
        _, err = job.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        job.kill()
        job.communicate()
        pytest.fail(f"the job still ran {DEADLINE} s later")
    assert not leaked_secrets(err)
    return job.returncode, err, time.monotonic() - started


def _busy_worker(client, deadline: float = 60.0) -> str:
    """A worker running tasks of the evaluation, once one does."""
    stop = time.monotonic() + deadline
    while True:
        busy = [worker for worker, keys in client.processing().items() if keys]
        if busy:
            return busy[0]
        assert time.monotonic() < stop, "the job never started on the cluster"
        time.sleep(0.01)


@contextlib.contextmanager
def _paused(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` for the block, SIGKILL after, whatever happens.

    Killed rather than continued: a worker continued after a pause spends 15 s
    on its way out, and the process is of no further use.
    """
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGKILL)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


pytestmark = pytest.mark.cluster


def test_a_worker_paused_mid_run_stops_the_job_naming_it(many_files, tmp_path):
    """SIGSTOP of a busy worker: exit 4 after cluster.stall_timeout, naming the worker."""
    from distributed import Client

    with dask_processes(2, tmp_path) as (address, _), Client(address) as watcher:
        pids = watcher.run(os.getpid)
        job = start_daskloss([*_job(tmp_path, many_files), "--scheduler", address])
        victim = _busy_worker(watcher)
        with _paused(pids[victim]):
            code, err, took = _finish(job)
    line = _one_line(err)
    assert code == 4, err
    assert f"no task finished on the Dask cluster ({address}) in" in line
    assert f"stuck on: {victim}" in line and "cluster.stall_timeout = 3" in line
    assert took < STALL + DEADLINE / 2
    assert not (tmp_path / "report.json").exists()


def test_the_only_worker_paused_before_the_run(many_files, tmp_path):
    """A registered worker that never answers: exit 4 within connect_timeout, naming it."""
    from distributed import Client

    with dask_processes(1, tmp_path) as (address, _), Client(address) as watcher:
        ((worker, pid),) = watcher.run(os.getpid).items()
        with _paused(pid):
            code, err, _ = _finish(
                start_daskloss([*_job(tmp_path, many_files), "--scheduler", address])
            )
    assert code == 4, err
    assert f"worker(s) {worker} of the Dask scheduler at {address} did not answer within 5 s" in (
        _one_line(err)
    )


def test_a_scheduler_paused_mid_run(many_files, tmp_path):
    """SIGSTOP of the scheduler mid-run: exit 4 once nothing moved and it did not answer."""
    from distributed import Client

    with dask_processes(2, tmp_path) as (address, processes):
        with Client(address) as watcher:
            job = start_daskloss([*_job(tmp_path, many_files), "--scheduler", address])
            _busy_worker(watcher)
        with _paused(processes[0].pid):
            code, err, _ = _finish(job)
    line = _one_line(err)
    assert code == 4, err
    assert f"the Dask scheduler at {address} did not answer within 5 s" in line


def test_a_killed_cluster_is_one_line_without_distributed_s_errors(many_files, tmp_path):
    """SIGKILL of the whole cluster: the job's one line, not distributed's ERROR lines."""
    from distributed import Client

    with dask_processes(2, tmp_path) as (address, processes), Client(address) as watcher:
        job = start_daskloss([*_job(tmp_path, many_files), "--scheduler", address])
        _busy_worker(watcher)
        for process in processes:
            process.send_signal(signal.SIGKILL)
        code, err, _ = _finish(job)
    assert code == 4, err
    assert "lost the Dask cluster" in _one_line(err) and "ERROR" not in err
