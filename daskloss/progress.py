"""Progress of a long evaluation on stderr (stdout carries the report), and its deadline.

When stderr is a terminal, a progress bar: Dask's :class:`ProgressBar` on the
threaded scheduler, a bar of the tasks left on a cluster. Otherwise (a log
file, CI), a log line at INFO every ``interval`` seconds. Short runs stay
silent: the bar appears after one second, the first log line after
``interval``.

On a cluster, progress is also a deadline: when no task has finished for
``cluster.stall_timeout`` seconds (a worker paused or cut off, a scheduler
that stopped answering), the job stops with a :class:`StallError` naming the
workers still holding tasks, instead of waiting for distributed to notice
(``distributed.scheduler.worker-ttl``, 5 minutes, and only for workers).
On the threaded scheduler the tasks run in this process: nothing can stall
apart from it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask
from dask.callbacks import Callback
from dask.diagnostics import ProgressBar
from distributed import Client, futures_of, wait
from distributed.comm import CommClosedError
from distributed.diagnostics.progressbar import ProgressBar as ClusterProgress
from distributed.utils_comm import pack_data

from daskloss.cluster import Connection

__all__ = ["StallError", "track_progress"]

_LOG = logging.getLogger(__name__)

#: Seconds between two looks at a running computation on a cluster.
_POLL_SECONDS = 0.5


class StallError(ConnectionError):
    """No task of the evaluation finished within ``cluster.stall_timeout`` (exit code 4)."""


@contextmanager
def track_progress(
    connection: Connection, *, interactive: bool, interval: float = 10.0
) -> Iterator[None]:
    """Report the progress of every computation inside the ``with`` block.

    Parameters
    ----------
    connection : Connection
        Where the computation runs (see :func:`daskloss.cluster.connect`);
        on a cluster, its ``stall_timeout`` and ``answer_timeout`` bound the
        waits.
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
        get = _TrackedGet(connection, interactive, interval)
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


class _Feed(ClusterProgress):
    """Distributed's progress feed of a computation: the tasks left, and when that changed.

    The scheduler sends the count of tasks left every 200 ms; nothing comes
    while it is paused, so the count stays put and the stall deadline runs.
    """

    def __init__(self, futures: list[Any], client: Client, bar: bool) -> None:
        super().__init__(futures, scheduler=client.scheduler.address, interval="200ms")
        self.bar = bar
        self.remaining: int | None = None
        self.total = 0
        self.changed = time.monotonic()
        self.drawn = False

    def _draw_bar(self, remaining: int, all: int, **kwargs: Any) -> None:
        if remaining != self.remaining:
            self.remaining, self.changed = remaining, time.monotonic()
        self.total = all
        if self.bar and self.elapsed >= 1.0:
            done = (1 - remaining / all) if all else 1.0
            sys.stderr.write(
                f"\r[{'#' * int(40 * done):<40}] | {int(100 * done)}% Completed | "
                f"{self.elapsed:.1f}s"
            )
            sys.stderr.flush()
            self.drawn = True

    def _draw_stop(self, **kwargs: Any) -> None:
        self.clear()

    def clear(self) -> None:
        """Erase the bar, if one was drawn."""
        if self.drawn:
            self.drawn = False
            sys.stderr.write("\33[2K\r")
            sys.stderr.flush()


class _TrackedGet:
    """A Dask ``get`` function: submit to the Client, watch progress and stalls, gather."""

    def __init__(self, connection: Connection, interactive: bool, interval: float) -> None:
        assert connection.client is not None
        self._client: Client = connection.client
        self._connection = connection
        self._interactive = interactive
        self._interval = interval

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        packed = self._client.get(dsk, keys, sync=False, **kwargs)
        futures = futures_of(packed)
        feed = _Feed(futures, self._client, bar=self._interactive)
        self._client.loop.add_callback(feed.listen)
        try:
            self._watch(futures, feed)
        finally:
            feed.clear()
        stall = self._connection.stall_timeout
        return pack_data(keys, {future.key: future.result(timeout=stall) for future in futures})

    def _watch(self, futures: list[Any], feed: _Feed) -> None:
        """Return when the futures are done; raise StallError when nothing moves."""
        started = logged = time.monotonic()
        while True:
            try:
                wait(futures, timeout=min(_POLL_SECONDS, self._interval))
                return
            except TimeoutError:
                pass
            now = time.monotonic()
            if now - feed.changed >= self._connection.stall_timeout:
                raise StallError(self._stalled(now - feed.changed))
            if not self._interactive and now - logged >= self._interval:
                logged = now
                left = "" if feed.remaining is None else f", {feed.remaining} of {feed.total} left"
                _LOG.info("still evaluating, %.0f s elapsed%s", now - started, left)

    def _stalled(self, idle: float) -> str:
        """The message for a computation that stopped moving: who holds its tasks."""
        connection = self._connection
        where = f"the Dask cluster ({connection.scheduler})"
        setting = f"{idle:.0f} s (cluster.stall_timeout = {connection.stall_timeout:g})"
        try:
            processing = self._client.sync(
                self._client.scheduler.processing,
                workers=None,
                callback_timeout=connection.answer_timeout,
            )
        except Exception as exc:  # TimeoutError, or the connection lost
            if isinstance(exc, CommClosedError | ConnectionError):  # refused: it is gone
                return (
                    f"lost the Dask cluster ({connection.scheduler}) during the run: no task "
                    f"finished in {setting} and the scheduler's connection is closed "
                    f"({type(exc).__name__}); no report was written: re-run the job once the "
                    "cluster is healthy"
                )
            return (
                f"no task finished in {setting} and the Dask scheduler at {connection.scheduler} "
                f"did not answer within {connection.answer_timeout:g} s "
                f"({type(exc).__name__}): it may be paused, overloaded or cut off; no report "
                "was written"
            )
        busy = {worker: len(keys) for worker, keys in processing.items() if keys}
        holders = (
            ", ".join(f"{worker} ({count} tasks)" for worker, count in sorted(busy.items()))
            if busy
            else "no worker is running any of its tasks"
        )
        return (
            f"no task finished on {where} in {setting}; stuck on: {holders}. A worker may be "
            "paused, overloaded or cut off; no report was written. Restart or remove the "
            "worker, or raise cluster.stall_timeout for tasks that legitimately take longer"
        )
