"""Progress of a long evaluation, on stderr (stdout carries the report).

When stderr is a terminal, a progress bar: Dask's :class:`ProgressBar` on the
threaded scheduler, :func:`distributed.progress` on a cluster. Otherwise (a
log file, CI), a log line at INFO every ``interval`` seconds. Short runs stay
silent: the bar appears after one second, the first log line after
``interval``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any

import dask
from dask.callbacks import Callback
from dask.diagnostics import ProgressBar
from distributed import Client, futures_of, progress, wait

from daskloss.cluster import Connection

__all__ = ["track_progress"]

_LOG = logging.getLogger(__name__)


@contextmanager
def track_progress(
    connection: Connection, *, interactive: bool, interval: float = 10.0
) -> Iterator[None]:
    """Report the progress of every computation inside the ``with`` block.

    Parameters
    ----------
    connection : Connection
        Where the computation runs (see :func:`daskloss.cluster.connect`).
    interactive : bool
        Draw a progress bar (stderr is a terminal) rather than log lines.
    interval : float
        Seconds between log lines when not interactive.
    """
    if connection.client is None:
        tracker = ProgressBar(minimum=1.0, out=sys.stderr) if interactive else _TaskLog(interval)
        with tracker:
            yield
    else:
        get = _TrackedGet(connection.client, interactive, interval)
        with dask.config.set(scheduler=get):
            yield


class _TaskLog(Callback):
    """Logs finished/total tasks of the threaded scheduler every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self._interval = interval
        self._started = self._logged = time.monotonic()

    def _start(self, dsk: Any) -> None:
        self._started = self._logged = time.monotonic()

    def _posttask(self, key: Any, result: Any, dsk: Any, state: dict, worker_id: Any) -> None:
        now = time.monotonic()
        if now - self._logged >= self._interval:
            self._logged = now
            done = len(state["finished"])
            total = done + sum(len(state[k]) for k in ("ready", "waiting", "running"))
            _LOG.info("%d of %d tasks done, %.0f s elapsed", done, total, now - self._started)


class _TrackedGet:
    """A Dask ``get`` function: submit to the Client, track progress, gather."""

    def __init__(self, client: Client, interactive: bool, interval: float) -> None:
        self._client = client
        self._interactive = interactive
        self._interval = interval

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        packed = self._client.get(dsk, keys, sync=False, **kwargs)
        futures = futures_of(packed)
        if self._interactive:
            with redirect_stdout(sys.stderr):  # distributed draws its bar on stdout
                progress(futures)
        else:
            self._log_until_done(futures)
        return self._client.gather(packed)

    def _log_until_done(self, futures: list[Any]) -> None:
        started = time.monotonic()
        while not all(future.done() for future in futures):
            try:
                wait(futures, timeout=self._interval)
            except TimeoutError:
                _LOG.info("still evaluating, %.0f s elapsed", time.monotonic() - started)
