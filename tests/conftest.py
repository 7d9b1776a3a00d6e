"""Shared fixtures: the sample dataset, a local S3-compatible server, a Dask cluster;
and a check over every test that no test secret reaches any output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daskloss.sources import reader as reader_module
from tests.helpers import (
    S3_KEY,
    S3_SECRET,
    dask_processes,
    free_port,
    leaked_secrets,
    sample_dataset,
)

#: tests/system/test_secrets.py runs the secrets check below on a test that leaks one.
pytest_plugins = ("pytester",)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Fail a test whose captured stdout, stderr or log holds a test secret.

    The secret itself is not shown: the report would print it.
    """
    outcome = yield
    report = outcome.get_result()
    for section, content in report.sections:
        if section.endswith(f" {report.when}") and leaked_secrets(content):
            report.outcome = "failed"
            report.longrepr = (
                f"{item.nodeid}: a test secret (tests/helpers.py TEST_SECRETS) appeared in "
                f"'{section}'"
            )
            report.sections = [(name, text) for name, text in report.sections if name != section]
            break


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
        "key": S3_KEY,
        "secret": S3_SECRET,
        "client_kwargs": {"endpoint_url": s3_server, "region_name": "us-east-1"},
    }
    fs = s3fs.S3FileSystem(**options)
    bucket = "b-" + request.node.name.lower().replace("_", "-")[:50]
    fs.call_s3("create_bucket", Bucket=bucket)
    fs.invalidate_cache()
    return {"bucket": bucket, "storage_options": options, "fs": fs}


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The files whose rows are read (each work unit's pieces), in this process."""
    found: list[str] = []
    original = reader_module.FileUnit.chunks

    def chunks(self):
        found.extend(piece.path for piece in self.pieces)
        yield from original(self)

    monkeypatch.setattr(reader_module.FileUnit, "chunks", chunks)
    return found
