"""Shared fixtures: a local S3-compatible server, Dask clusters of real processes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 for the session; yields its endpoint URL."""
    moto_server = pytest.importorskip("moto.server")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server, request) -> dict:
    """A fresh bucket on the local server; yields its name and storage options."""
    s3fs = pytest.importorskip("s3fs")
    options = {
        "key": "daskloss-test-key",
        "secret": "daskloss-test-secret-do-not-leak",
        "client_kwargs": {"endpoint_url": s3_server, "region_name": "us-east-1"},
    }
    fs = s3fs.S3FileSystem(**options)
    bucket = "b-" + request.node.name.lower().replace("_", "-")[:50]
    fs.call_s3("create_bucket", Bucket=bucket)
    fs.invalidate_cache()
    return {"bucket": bucket, "storage_options": options, "fs": fs}


@contextlib.contextmanager
def dask_processes(
    workers: int, logs: Path, *, nanny: bool = False, threads: int = 1
) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A Dask scheduler and ``workers`` workers, each a separate process on 127.0.0.1.

    Yields the scheduler address and the processes (scheduler first). Should
    pytest be killed before the cleanup runs, the scheduler exits after 5 idle
    minutes and the workers 30 s after losing it.
    """
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    local = ["--host", "127.0.0.1", "--no-dashboard"]
    worker = ["worker", address, *local, "--nthreads", str(threads), "--death-timeout", "30"]
    commands = {
        "scheduler": ["scheduler", *local, "--port", str(port), "--idle-timeout", "300"],
        **{f"worker-{i}": [*worker, "--nanny" if nanny else "--no-nanny"] for i in range(workers)},
    }
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    processes: list[subprocess.Popen] = []
    try:
        for name, args in commands.items():
            with open(logs / f"{name}.log", "w") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "dask", *args],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=logs,
                        env=environment,
                    )
                )
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, processes
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
