"""Shared fixtures: the sample dataset, a local S3-compatible server, a Dask cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import dask_processes, free_port, sample_dataset


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> Path:
    """The job tests' sample dataset (see :func:`tests.helpers.sample_dataset`)."""
    return sample_dataset(tmp_path_factory)


@pytest.fixture(scope="session")
def scheduler_address(tmp_path_factory) -> Iterator[str]:
    """A Dask scheduler and two workers, each a separate process on 127.0.0.1."""
    with dask_processes(2, tmp_path_factory.mktemp("dask-logs")) as (address, _):
        yield address


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
