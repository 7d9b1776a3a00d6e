"""Shared fixtures: a local S3-compatible server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


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
