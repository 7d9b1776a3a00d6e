"""Faults on a real cluster of processes: a killed worker must not change the result."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import daskloss
from tests.helpers import dask_processes
from tests.reference import assert_bit_identical

pytestmark = pytest.mark.cluster

PARTITIONS = 16
SECONDS_PER_PARTITION = 0.1


def slow_partition(index: int) -> pd.DataFrame:
    """A deterministic partition that takes a while to make (runs on the workers)."""
    time.sleep(SECONDS_PER_PARTITION)
    rng = np.random.default_rng(index)
    y_true = rng.normal(size=4000) * 10.0 ** rng.integers(-8, 8, 4000)
    return pd.DataFrame({"y_true": y_true, "y_pred": y_true + rng.normal(size=4000)})


def _frame() -> dd.DataFrame:
    meta = pd.DataFrame(
        {"y_true": pd.Series(dtype="float64"), "y_pred": pd.Series(dtype="float64")}
    )
    return dd.from_map(slow_partition, range(PARTITIONS), meta=meta)


def _wait_until_busy(client, address: str, deadline: float = 30.0) -> None:
    """Return once the worker at ``address`` is running tasks of the evaluation."""
    stop = time.monotonic() + deadline
    while not client.processing().get(address):
        if time.monotonic() > stop:
            raise AssertionError(f"worker {address} never started a task")
        time.sleep(0.02)


def test_killed_worker_does_not_change_the_result(tmp_path):
    """SIGKILL of a worker mid-evaluation: the job finishes with bit-identical metrics."""
    from distributed import Client

    expected = daskloss.evaluate(_frame()).metrics
    with dask_processes(2, tmp_path, nanny=True) as (address, _), Client(address) as client:
        pids = client.run(os.getpid)
        victim, victim_pid = sorted(pids.items())[0]
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(daskloss.evaluate, _frame())
            _wait_until_busy(client, victim)
            assert not running.done()
            os.kill(victim_pid, signal.SIGKILL)
            result = running.result(timeout=120)
        assert victim_pid not in client.run(os.getpid).values()
    assert_bit_identical(result.metrics, expected)
