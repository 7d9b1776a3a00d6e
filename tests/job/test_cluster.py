"""Where the job runs: the embedded default, a LocalCluster, a running scheduler."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dask
import pytest
from distributed import Client

import daskloss
from daskloss.cluster import Connection, connect
from daskloss.config import ClusterSettings
from daskloss.progress import track_progress
from tests.helpers import (
    EXPECTED_WEIGHTED,
    FRAME,
    free_port,
    job_config,
    run_cli,
    write_config,
    write_parquet,
)
from tests.reference import assert_bit_identical


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


#: How long a test gives connect() beyond connect_timeout before calling it a hang:
#: generous, for a loaded machine; this is a hang check, not a performance assertion.
HANG_MARGIN = 15.0


def _silent(conn: socket.socket) -> None:
    """Accept and say nothing, like a service waiting for its own protocol."""


def _http_error(conn: socket.socket) -> None:
    """Answer whatever comes with an HTTP error, like a web server (the dashboard)."""
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def _banner(conn: socket.socket) -> None:
    """Talk first, like sshd."""
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def _hang_up(conn: socket.socket) -> None:
    """Close every connection at once."""
    conn.close()


@contextmanager
def _serve(behaviour: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on 127.0.0.1 treating each connection with ``behaviour``; yields its address."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    connections: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
                connections.append(conn)
                behaviour(conn)
            except OSError:  # no one came yet, or the client hung up first
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()
        for conn in connections:
            conn.close()


def _connect_error(settings: ClusterSettings) -> tuple[BaseException | None, float]:
    """Run connect() in a daemon thread; fail the test, rather than hang, if it does not end."""
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            with connect(settings):
                outcome.append(None)
        except BaseException as exc:  # handed to the test below
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=settings.connect_timeout + HANG_MARGIN)
    elapsed = time.monotonic() - started
    if thread.is_alive():
        pytest.fail(f"connect() to {settings.address} still blocked after {elapsed:.0f} s")
    return outcome[0], elapsed


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (_silent, "no Dask scheduler answered there"),
        (_http_error, "does not speak Dask's protocol"),
        (_banner, "does not speak Dask's protocol"),
        (_hang_up, "does not speak Dask's protocol"),
    ],
    ids=["silent", "http", "banner", "hang-up"],
)
def test_a_service_that_is_not_dask_is_a_connection_error(behaviour, expected):
    """A port served by something else fails within the timeout, naming the address."""
    with _serve(behaviour) as address:
        settings = ClusterSettings(address=address, connect_timeout=1.0)
        error, elapsed = _connect_error(settings)
    assert isinstance(error, ConnectionError), repr(error)
    assert f"cannot connect to the Dask scheduler at {address}" in str(error)
    assert expected in str(error)
    assert "8786" in str(error)
    assert elapsed < settings.connect_timeout + HANG_MARGIN


def test_a_failed_connection_leaves_no_thread_behind():
    """Giving up on a silent service stops every thread the attempt started."""
    with _serve(_silent) as address:
        settings = ClusterSettings(address=address, connect_timeout=0.5)
        _connect_error(settings)  # warm up distributed's own lazily created threads
        before = set(threading.enumerate())
        with pytest.raises(ConnectionError):
            with connect(settings):
                pass
    assert set(threading.enumerate()) <= before


@pytest.mark.parametrize("address", ["127.0.0.1", "tcp://127.0.0.1", "tcp://127.0.0.1:"])
def test_an_address_without_port_says_how_to_write_it(address):
    """A scheduler address without a port names the problem and the usual port."""
    with pytest.raises(ConnectionError, match="has no port") as caught:
        with connect(ClusterSettings(address=address, connect_timeout=30.0)):
            pass
    assert "tcp://127.0.0.1:8786" in str(caught.value)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tcp://127.0.0.1:99999", "expected a number from 1 to 65535"),
        ("tcp://127.0.0.1:http", "expected a number from 1 to 65535"),
        ("tcp://::1", "is not tcp://HOST:PORT"),
        ("htp://127.0.0.1:8786", "unknown scheme 'htp'"),
        ("tls://127.0.0.1:8786", "Dask has no TLS settings"),
    ],
)
def test_an_address_that_cannot_be_tried_is_refused_at_once(address, expected):
    """An address distributed cannot try as written is refused before any connection."""
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=expected):
        with connect(ClusterSettings(address=address, connect_timeout=30.0)):
            pass
    assert time.monotonic() - started < HANG_MARGIN


def test_an_unencrypted_address_is_refused_when_encryption_is_required():
    """With distributed.comm.require-encryption, a tcp:// address is refused at once."""
    address = f"tcp://127.0.0.1:{free_port()}"
    with dask.config.set({"distributed.comm.require-encryption": True}):
        with pytest.raises(ConnectionError, match="requires encryption"):
            with connect(ClusterSettings(address=address, connect_timeout=30.0)):
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
def test_local_cluster_takes_any_free_dashboard_port(sample, recwarn):
    """With port 8787 taken, a LocalCluster starts without distributed's port warning."""
    with contextlib.ExitStack() as stack:
        try:
            taken = stack.enter_context(socket.create_server(("0.0.0.0", 8787)))
        except OSError:
            taken = None  # taken already: the same situation
        with connect(ClusterSettings(n_workers=1, threads_per_worker=1)):
            pass
        del taken
    assert not [w for w in recwarn if "already in use" in str(w.message)]


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
def test_sliced_two_model_job_on_a_cluster_matches_embedded(
    sample, scheduler_address, tmp_path, capsys
):
    """Slices, two predictions and their comparison: the same bits on worker processes."""
    config = job_config(
        sample,
        tmp_path / "embedded.json",
        columns={"y_pred": ["y_pred", "y_pred_baseline"]},
        evaluation={"group_by": ["segment"], "split_every": 2},
    )
    path = write_config(tmp_path / "job.toml", config)
    assert run_cli(["evaluate", str(path)], capsys).code == 0
    remote = tmp_path / "remote.json"
    argv = ["evaluate", str(path), "--scheduler", scheduler_address, "--output", str(remote)]
    assert run_cli(argv, capsys).code == 0
    embedded = json.loads((tmp_path / "embedded.json").read_text())
    on_cluster = json.loads(remote.read_text())
    for key in ("metrics", "slices", "predictions", "comparisons"):
        assert on_cluster[key] == embedded[key], key


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


@pytest.mark.cluster
def test_a_worker_address_is_not_a_scheduler(scheduler_address):
    """The address of a worker, given by mistake, is refused with a clear message."""
    with Client(scheduler_address, timeout=30) as client:
        worker = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(ConnectionError, match="a Dask Worker answers there, not a scheduler"):
        with connect(ClusterSettings(address=worker, connect_timeout=5.0)):
            pass


def test_a_refused_port_is_reported_as_refused_at_once():
    """Nothing listening: "connection refused" within seconds, not "Timed out" after 30 s."""
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="connection refused") as caught:
        with connect(ClusterSettings(address=address, connect_timeout=30.0)):
            pass
    assert time.monotonic() - started < 10 and "Timed out" not in str(caught.value)
    assert f"cannot connect to the Dask scheduler at {address}" in str(caught.value)


@pytest.mark.cluster
def test_units_follow_the_clusters_threads(scheduler_address, tmp_path, monkeypatch):
    """On a cluster, evaluate() cuts small files into at least four units per worker thread."""
    monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", 1)
    monkeypatch.setattr("daskloss.sources.files.MIN_UNIT_BYTES", 1)
    write_parquet(tmp_path, FRAME, 40)
    with Client(scheduler_address, timeout=30) as client:
        threads = sum(client.nthreads().values())
        result = daskloss.evaluate(tmp_path, weight="w")
    assert result.npartitions >= min(40, 4 * threads)
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)
