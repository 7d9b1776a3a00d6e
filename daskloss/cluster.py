"""Where the job runs: the embedded default or a connection to a Dask scheduler.

:func:`connect` is the only place that creates a :class:`distributed.Client`;
library functions such as :func:`daskloss.evaluate` use whichever scheduler is
active. Three cases, from ``[cluster]`` settings:

* ``address`` set: a Client to that running scheduler (``tcp://host:8786``).
  The job waits up to ``connect_timeout`` seconds for the scheduler and for a
  first worker, and checks that the workers can import daskloss (naming any
  worker that does not answer in time, such as a paused one). Whatever
  listens at the address (an HTTP server, a silent or a chatty service), the
  wait ends on time with a :class:`ConnectionError` that names the address;
  a port where nothing listens is reported as refused at once.
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

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import dask
from distributed import Client, LocalCluster, Security
from distributed.comm import CommClosedError, parse_address, parse_host_port
from distributed.comm import connect as open_comm

import daskloss
from daskloss.config import ClusterSettings
from daskloss.policy import SchedulerAddressError, check_scheduler_address

__all__ = ["Connection", "connect"]

_LOG = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds the probe of an address gets beyond ``connect_timeout``: distributed
#: gives up on an unreachable address after ``connect_timeout`` and says why
#: (refused, unknown host); the margin lets that reason win over a bare timeout.
_PROBE_MARGIN = 1.0

#: What else answers ``identity`` on a Dask port, given by mistake for the scheduler's.
_NOT_SCHEDULERS = frozenset({"Worker", "Nanny"})

_WRONG_PORT_HINT = (
    "check that the port is the scheduler's (8786 by default), not the dashboard's (8787) "
    "or another service's, and the scheme (tcp:// or tls://)"
)


@dataclass(frozen=True)
class Connection:
    """The scheduler the job runs on.

    Attributes
    ----------
    scheduler : str
        ``"threads"``, ``"local-cluster"`` or the scheduler's address.
    client : distributed.Client or None
        The Client (the default Client while connected); None for threads.
    stall_timeout : float
        Seconds a computation on the Client may go without a task finishing.
    answer_timeout : float
        Seconds the scheduler gets to answer a question (``connect_timeout``).
    """

    scheduler: str
    client: Client | None = None
    stall_timeout: float = 300.0
    answer_timeout: float = 30.0


@contextmanager
def connect(settings: ClusterSettings) -> Iterator[Connection]:
    """Start or connect to the scheduler ``settings`` describe; close it on exit.

    Raises
    ------
    ConnectionError
        The scheduler cannot be reached, has no worker within the timeout,
        or its workers cannot import daskloss.
    SchedulerAddressError
        An address that cannot be tried as written (also a ConfigError).

    Examples
    --------
    >>> with connect(ClusterSettings()) as connection:
    ...     connection.scheduler
    'threads'
    """
    timeouts = {
        "stall_timeout": settings.stall_timeout,
        "answer_timeout": settings.connect_timeout,
    }
    if settings.address:
        with _remote(settings) as client:
            yield Connection(settings.address, client, **timeouts)
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
                dashboard_address="127.0.0.1:0",  # any free port: a one-shot job needs no fixed one
            ) as cluster,
            Client(cluster) as client,
        ):
            yield Connection("local-cluster", client, **timeouts)
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
    connection_args = Security().get_connection_args("client")
    address = check_scheduler_address(address)
    _check_encryption(address, parse_address(address)[0], connection_args)
    _LOG.info("connecting to the Dask scheduler at %s", address)
    _check_listening(address, timeout)
    _probe(address, timeout, connection_args)
    client = _client(address, timeout)
    try:
        _check_workers(client, address, timeout)
        yield client
    finally:
        _close(client, timeout)


def _close(client: Client, timeout: float) -> None:
    """Close the Client within ``timeout``, whatever state the cluster is in.

    After a stall or a lost scheduler, closing can fail or time out; the
    job's own error says what went wrong, so that of the close is only logged.
    """
    try:
        client.close(timeout=timeout)
    except Exception as exc:  # TimeoutError, CommClosedError...
        _LOG.debug("closing the Client failed: %s: %s", type(exc).__name__, exc)


def _check_listening(address: str, timeout: float) -> None:
    """Report a TCP port where nothing listens at once, as refused.

    distributed retries a refused connection until ``connect_timeout`` and
    then says "Timed out"; the kernel's answer is final. Anything else (a
    slow network, an unknown host) is left to the probe.
    """
    scheme, location = parse_address(address)
    if scheme not in ("tcp", "tls"):
        return
    host, port = parse_host_port(location)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except ConnectionRefusedError as exc:
        raise ConnectionError(
            f"cannot connect to the Dask scheduler at {address}: connection refused (nothing "
            f"listens on port {port} of {host}); check the address and port, and that the "
            "scheduler is running"
        ) from exc
    except OSError:
        return


def _check_encryption(address: str, scheme: str, connection_args: dict[str, Any]) -> None:
    """Refuse a TLS address without TLS settings, or a TCP one where encryption is required."""
    if scheme in ("tls", "wss") and connection_args.get("ssl_context") is None:
        raise SchedulerAddressError(
            f"the Dask scheduler address {address} asks for TLS, but Dask has no TLS settings "
            "for a client; set distributed.comm.tls.ca-file, distributed.comm.tls.client.cert "
            "and distributed.comm.tls.client.key in Dask's configuration"
        )
    if scheme == "tcp" and connection_args.get("require_encryption"):
        raise SchedulerAddressError(
            f"the Dask scheduler address {address} is not encrypted, but Dask's configuration "
            "requires encryption (distributed.comm.require-encryption); give its tls:// address"
        )


def _probe(address: str, timeout: float, connection_args: dict[str, Any]) -> None:
    """Check that a Dask scheduler answers at ``address``, on time whatever listens there.

    ``Client(address, timeout=...)`` bounds the TCP connection but not the
    handshake of distributed's protocol that follows (dask/distributed#8071): a
    service that accepts and stays silent, such as an HTTP server on the
    dashboard's port, blocks it forever, and one that talks first (an SSH
    banner) is read as a frame of exabytes (``MemoryError``). The probe does
    the same handshake and asks for the server's identity under a deadline,
    then closes its connection; the Client follows only if a scheduler answered.
    """
    exchange = _identity(address, timeout, connection_args)
    try:
        identity = _run_on_own_loop(asyncio.wait_for(exchange, timeout + _PROBE_MARGIN))
    except TimeoutError as exc:  # before OSError: TimeoutError is one
        raise ConnectionError(
            f"cannot connect to the Dask scheduler at {address} within {timeout:g} s: "
            f"no Dask scheduler answered there; {_WRONG_PORT_HINT}"
        ) from exc
    except CommClosedError as exc:  # hung up during the handshake
        raise ConnectionError(_not_dask(address)) from exc
    except OSError as exc:
        raise ConnectionError(_unreachable(address, timeout, exc)) from exc
    except Exception as exc:  # its bytes read as Dask frames: MemoryError, struct.error...
        raise ConnectionError(_not_dask(address)) from exc
    _check_is_scheduler(identity, address)


async def _identity(address: str, timeout: float, connection_args: dict[str, Any]) -> Any:
    """Connect with distributed's handshake, return the answer to ``identity``, hang up."""
    comm = await open_comm(address, timeout=timeout, deserialize=False, **connection_args)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _run_on_own_loop(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` on a new event loop in a thread of its own; return its result.

    A thread of its own, so that this works even where the caller's thread
    already runs an event loop (a notebook). ``asyncio.run`` closes the loop
    when the coroutine ends and the thread ends with it: nothing is left
    running. The thread is a daemon so that an interrupted wait (Ctrl-C) does
    not hold up the exit; the coroutine ends on its own deadline anyway.
    """
    outcome: Future[_T] = Future()

    def run() -> None:
        try:
            outcome.set_result(asyncio.run(coroutine))
        except BaseException as exc:  # re-raised in the caller's thread below
            outcome.set_exception(exc)

    thread = threading.Thread(target=run, name="daskloss-probe", daemon=True)
    thread.start()
    thread.join()
    return outcome.result()


def _check_is_scheduler(identity: Any, address: str) -> None:
    """Refuse the address of a worker or a nanny, given for the scheduler's."""
    kind = identity.get("type") if isinstance(identity, dict) else None
    if kind not in _NOT_SCHEDULERS:
        return
    scheduler = identity.get("scheduler")
    fix = f"its scheduler is at {scheduler}" if scheduler else "give the scheduler's address"
    raise ConnectionError(
        f"cannot connect to the Dask scheduler at {address}: a Dask {kind} answers there, "
        f"not a scheduler; {fix}"
    )


def _client(address: str, timeout: float) -> Client:
    """A Client to the scheduler at ``address``, which the probe has just heard from.

    The Client's own handshake has no deadline, but it follows a probe that
    got an answer from the scheduler: only a scheduler that stops answering in
    between could still hold it up.
    """
    try:
        return Client(address, timeout=timeout)
    except Exception as exc:
        raise ConnectionError(_unreachable(address, timeout, exc)) from exc


def _unreachable(address: str, timeout: float, exc: Exception) -> str:
    """The message for a scheduler that could not be reached, with the first line of why."""
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    return (
        f"cannot connect to the Dask scheduler at {address} within {timeout:g} s ({reason}); "
        "check the address and port, and that the scheduler is running"
    )


def _not_dask(address: str) -> str:
    """The message for a service that answered, but not in Dask's protocol."""
    return (
        f"cannot connect to the Dask scheduler at {address}: the service listening there "
        f"does not speak Dask's protocol; {_WRONG_PORT_HINT}"
    )


def _check_workers(client: Client, address: str, timeout: float) -> None:
    """Fail early, with a clear message, on a cluster that cannot run the job."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError as exc:
        raise ConnectionError(
            f"the Dask scheduler at {address} has no worker after {timeout:g} s; "
            "start workers with: dask worker " + address
        ) from exc
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    answers = client.sync(_versions, client, workers, timeout, callback_timeout=2 * timeout)
    silent = [worker for worker, answer in answers.items() if isinstance(answer, TimeoutError)]
    if silent:
        raise ConnectionError(
            f"worker(s) {', '.join(silent)} of the Dask scheduler at {address} did not answer "
            f"within {timeout:g} s: paused, overloaded or cut off; restart or remove them"
        )
    failed = next((a for a in answers.values() if isinstance(a, BaseException)), None)
    if isinstance(failed, PackageNotFoundError):
        raise ConnectionError(
            f"a worker of {address} cannot import daskloss; install daskloss (same version) "
            "in the workers' Python environment"
        ) from failed
    if failed is not None:
        raise failed
    found = {worker: answer[worker] for worker, answer in answers.items()}
    ours = daskloss.__version__
    differing = {worker: v for worker, v in found.items() if v != ours}
    if differing:
        _LOG.warning("workers run daskloss %s, this job runs %s", differing, ours)
    _LOG.info("connected: %d worker(s) at %s", len(found), address)


async def _versions(client: Client, workers: list[str], timeout: float) -> dict[str, Any]:
    """Each worker's daskloss version, or the exception it gave (TimeoutError: no answer).

    Asked of each worker on its own, so that one that does not answer (a
    paused process) can be named; each question has its own deadline.
    """
    questions = [
        client.run(
            version, "daskloss", workers=[worker], asynchronous=True, callback_timeout=timeout
        )
        for worker in workers
    ]
    answers = await asyncio.gather(*questions, return_exceptions=True)
    return dict(zip(workers, answers, strict=True))
