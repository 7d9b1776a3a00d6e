"""Where the job runs: the embedded default or a connection to a Dask scheduler.

:func:`connect` is the only place that creates a :class:`distributed.Client`;
library functions such as :func:`daskloss.evaluate` use whichever scheduler is
active. Three cases, from ``[cluster]`` settings:

* ``address`` set: a Client to that running scheduler (``tcp://host:8786``).
  The job waits up to ``connect_timeout`` seconds for the scheduler and for a
  first worker, and checks that the workers can import daskloss.
* no address, ``n_workers`` set: a :class:`distributed.LocalCluster` of that
  many worker processes (``threads_per_worker`` threads each), closed at exit.
* no address and no ``n_workers``: the embedded default, Dask's threaded
  scheduler with ``threads_per_worker`` threads (all cores when omitted).

Threads are the default because they were measured faster: the numba kernel
releases the GIL, so the threads use every core, and a one-shot job does not
pay a process cluster's start-up (about 3 s on two cores) or the transfer of
results between processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import dask
from distributed import Client, LocalCluster

import daskloss
from daskloss.config import ClusterSettings

__all__ = ["Connection", "connect"]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Connection:
    """The scheduler the job runs on.

    Attributes
    ----------
    scheduler : str
        ``"threads"``, ``"local-cluster"`` or the scheduler's address.
    client : distributed.Client or None
        The Client (the default Client while connected); None for threads.
    """

    scheduler: str
    client: Client | None = None


@contextmanager
def connect(settings: ClusterSettings) -> Iterator[Connection]:
    """Start or connect to the scheduler ``settings`` describe; close it on exit.

    Raises
    ------
    ConnectionError
        The scheduler cannot be reached, has no worker within the timeout,
        or its workers cannot import daskloss.

    Examples
    --------
    >>> with connect(ClusterSettings()) as connection:
    ...     connection.scheduler
    'threads'
    """
    if settings.address:
        with _remote(settings) as client:
            yield Connection(settings.address, client)
    elif settings.n_workers is not None:
        _LOG.info(
            "starting a LocalCluster of %d worker processes, %s threads each",
            settings.n_workers,
            settings.threads_per_worker or "default",
        )
        with (
            LocalCluster(
                n_workers=settings.n_workers,
                threads_per_worker=settings.threads_per_worker,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield Connection("local-cluster", client)
    else:
        threads = settings.threads_per_worker or os.cpu_count() or 1
        _LOG.info("running on Dask's threaded scheduler with %d threads", threads)
        with dask.config.set(scheduler="threads", num_workers=threads):
            yield Connection("threads")


@contextmanager
def _remote(settings: ClusterSettings) -> Iterator[Client]:
    address, timeout = settings.address, settings.connect_timeout
    if settings.n_workers is not None or settings.threads_per_worker is not None:
        _LOG.warning(
            "cluster.n_workers and cluster.threads_per_worker are ignored with a scheduler "
            "address: the running cluster decides"
        )
    _LOG.info("connecting to the Dask scheduler at %s", address)
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConnectionError(
            f"cannot connect to the Dask scheduler at {address} within {timeout:g} s ({exc}); "
            "check the address and port, and that the scheduler is running"
        ) from exc
    try:
        _check_workers(client, address, timeout)
        yield client
    finally:
        client.close()


def _check_workers(client: Client, address: str, timeout: float) -> None:
    """Fail early, with a clear message, on a cluster that cannot run the job."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError as exc:
        raise ConnectionError(
            f"the Dask scheduler at {address} has no worker after {timeout:g} s; "
            "start workers with: dask worker " + address
        ) from exc
    try:
        found = client.run(version, "daskloss")
    except PackageNotFoundError as exc:
        raise ConnectionError(
            f"a worker of {address} cannot import daskloss; install daskloss (same version) "
            "in the workers' Python environment"
        ) from exc
    ours = daskloss.__version__
    differing = {worker: v for worker, v in found.items() if v != ours}
    if differing:
        _LOG.warning("workers run daskloss %s, this job runs %s", differing, ours)
    _LOG.info("connected: %d worker(s) at %s", len(found), address)
