"""Warming the kernel: the command, the background compile, the workers; never a result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dask
import pytest
from distributed import Client

import daskloss
from daskloss import warmup
from tests.helpers import EXPECTED_WEIGHTED, FRAME, ROOT, run_cli, write_parquet
from tests.reference import assert_bit_identical


def test_warm_kernel_reports_each_kind():
    """Both kinds by default, or the one asked for, each with the seconds it took."""
    assert sorted(warmup.warm_kernel()) == ["unweighted", "weighted"]
    assert list(warmup.warm_kernel(weighted=True)) == ["weighted"]


def test_background_warmup_starts_once_per_kind(monkeypatch):
    """A second ask for a kind warming or warm starts nothing."""
    monkeypatch.setattr(warmup, "_warm", set())
    monkeypatch.setattr(warmup, "_threads", {})
    thread = warmup.warm_in_background(weighted=False)
    assert thread is not None
    assert warmup.warm_in_background(weighted=False) is None
    thread.join()
    assert False in warmup._warm
    assert warmup.warm_in_background(weighted=False) is None


def _recorded(monkeypatch) -> list[bool]:
    started: list[bool] = []

    def record(weighted: bool) -> None:
        started.append(weighted)

    evaluate_module = sys.modules["daskloss.evaluate"]  # the name daskloss.evaluate is the function
    monkeypatch.setattr(evaluate_module, "warm_in_background", record)
    return started


def test_evaluate_warms_the_kernel_it_needs_where_tasks_run(monkeypatch):
    """On threads (or sync) evaluate starts compiling the kind of kernel it is about to use."""
    started = _recorded(monkeypatch)
    daskloss.evaluate(FRAME, weight="w")
    with dask.config.set(scheduler="sync"):
        daskloss.evaluate(FRAME)
    assert started == [True, False]


def test_evaluate_leaves_other_processes_alone(monkeypatch):
    """When another scheduler runs the tasks elsewhere, nothing is compiled here."""
    started = _recorded(monkeypatch)

    def elsewhere(dsk, keys, **kwargs):
        return dask.get(dsk, keys)

    with dask.config.set(scheduler=elsewhere):
        result = daskloss.evaluate(FRAME, weight="w")
    assert started == []
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)


def test_warmup_command_exits_0(capsys):
    """`daskloss warmup` readies both kernels and says where numba caches them."""
    run = run_cli(["warmup"], capsys)
    assert run.code == 0
    assert "unweighted kernel ready" in run.err and "weighted kernel ready" in run.err
    assert run_cli(["warmup", "--kind", "weighted"], capsys).code == 0


def test_preload_hook_readies_both_kernels():
    """`dask worker --preload daskloss.warmup` calls dask_setup, which warms both kinds."""
    warmup.dask_setup(None)
    assert warmup._warm == {False, True}


@pytest.mark.cluster
def test_warm_workers_asks_every_worker(scheduler_address):
    """One warm-up task on each worker of the cluster, each readying the kernel asked for."""
    with Client(scheduler_address, set_as_default=False) as client:
        futures = warmup.warm_workers(client, weighted=False)
        results = client.gather(futures)
        where = client.who_has(futures)
    assert len(results) == 2 and all(list(found) == ["unweighted"] for found in results)
    assert len({worker for holders in where.values() for worker in holders}) == 2


COLD_RUN = """
import json, sys
import daskloss
found = {
    str(weight): daskloss.evaluate(sys.argv[1], weight=weight).metrics
    for weight in (None, "w")
}
print(json.dumps(found))
"""


@pytest.mark.slow
def test_a_cold_process_gives_the_same_bits_and_warmup_fills_the_cache(tmp_path):
    """From an empty numba cache, the background compile changes no bit; warmup then caches."""
    write_parquet(tmp_path / "data", FRAME, 3)
    cache = tmp_path / "numba-cache"
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}

    def python(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *argv], env=environment, capture_output=True, text=True, timeout=300
        )

    cold = python("-c", COLD_RUN, str(tmp_path / "data"))
    assert cold.returncode == 0, cold.stderr
    found = json.loads(cold.stdout)
    assert_bit_identical(found["None"], daskloss.evaluate(tmp_path / "data").metrics)
    assert_bit_identical(found["w"], EXPECTED_WEIGHTED)
    assert list(cache.rglob("*.nbi")), "the cold process left no compiled kernel in the cache"
    command = "import sys; from daskloss.cli import main; sys.exit(main(['warmup']))"
    warm = python("-c", command)
    assert warm.returncode == 0, warm.stderr
    assert str(cache) in warm.stderr
