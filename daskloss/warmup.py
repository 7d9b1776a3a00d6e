"""Compiling the exact kernel before rows reach it, so that no evaluation waits for numba.

numba compiles the kernel the first time it runs in a process (about 18 s
for the unweighted kernel and 5 s more for the weighted one on two cores, more
under load) and caches the machine code on disk: in ``NUMBA_CACHE_DIR`` when it
is set, else next to the installed package when that is writable, else in the
user's cache directory. A later process that finds the cache loads it in about
0.2 s. Four things keep the compile off an evaluation's path:

* ``daskloss warmup`` (:func:`warm_kernel`) compiles both kernels into the
  cache. Run it where daskloss is installed (a container image, the image of
  a cluster's workers): every process started from there starts warm.
* :func:`daskloss.evaluate` starts the compile in a background thread
  (:func:`warm_in_background`) when its tasks run in this process, so that it
  overlaps listing and planning the files.
* The job asks each worker of a cluster to compile as soon as it connects
  (:func:`warm_workers`), overlapping its own planning.
* A worker started with ``dask worker --preload daskloss.warmup`` imports
  daskloss and readies both kernels before it connects (:func:`dask_setup`),
  so its first task waits for neither the imports (about 0.7 s) nor the kernel.

The kernels are reached through the statistics' public interface
(:class:`~daskloss.stats.EvaluationStats`, :class:`~daskloss.shape.ShapeAccumulator`)
on a few rows, so this keeps working whatever their internals become. The
sums are exact whichever thread compiled the code: warming changes when the
compile happens, never a result.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import pyarrow as pa

from daskloss.chunks import Chunk
from daskloss.roles import EvaluationSpec
from daskloss.shape import ShapeAccumulator, ShapeSpec
from daskloss.stats import EvaluationStats

__all__ = ["dask_setup", "kernel_kinds", "warm_in_background", "warm_kernel", "warm_workers"]

_LOG = logging.getLogger(__name__)

#: The kinds of kernel, by name: whether rows carry a weight.
_KINDS = {"unweighted": False, "weighted": True}

_lock = threading.Lock()
#: Kinds compiled (or loaded) in this process, and the background threads started.
_warm: set[bool] = set()
_threads: dict[bool, threading.Thread] = {}


def kernel_kinds(weighted: bool | None) -> list[bool]:
    """The kinds of kernel to warm: one, or both when ``weighted`` is None."""
    return list(_KINDS.values()) if weighted is None else [weighted]


def warm_kernel(weighted: bool | None = None) -> dict[str, float]:
    """Compile the exact kernel, or load it from numba's cache; seconds taken per kind.

    Parameters
    ----------
    weighted : bool, optional
        Warm the weighted kernel (True), the unweighted one (False), or both (None).

    Returns
    -------
    dict
        Seconds spent per kind (``"unweighted"``, ``"weighted"``): several seconds
        for a compile, a fraction of one for a load, about nothing when this
        process had it already.

    Examples
    --------
    >>> sorted(warm_kernel(weighted=False))
    ['unweighted']
    """
    seconds = {}
    for kind in kernel_kinds(weighted):
        start = time.perf_counter()
        _run_kernel(kind)
        with _lock:
            _warm.add(kind)
        seconds[_name(kind)] = time.perf_counter() - start
    return seconds


def warm_in_background(weighted: bool) -> threading.Thread | None:
    """Start compiling one kind of kernel in a daemon thread, unless it is warm or warming.

    Callers of the kernel in the meantime wait for that compile (numba
    compiles each function once per process) rather than start their own.
    A failure is only logged: the kernel's first real call raises it again.
    Returns the thread started, or None.
    """
    with _lock:
        if weighted in _warm or weighted in _threads:
            return None
        thread = threading.Thread(
            target=_warm_quietly, args=(weighted,), name="daskloss-warmup", daemon=True
        )
        _threads[weighted] = thread
    thread.start()
    return thread


def warm_workers(client: Any, weighted: bool | None) -> list[Any]:
    """Ask every worker of ``client``'s cluster to warm the kernel; the futures of the asks.

    One task per worker, pinned to it and ahead of other work, so that each
    worker compiles (or loads) the kernel while the client plans the files.
    Keep the futures until the evaluation is done, then drop them.
    """
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    return [
        client.submit(
            warm_kernel,
            weighted,
            workers=[worker],
            allow_other_workers=False,
            pure=False,
            priority=100,
            key=f"daskloss-warmup-{index}-{time.time_ns()}",
        )
        for index, worker in enumerate(workers)
    ]


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: a worker readies both kernels before it takes any work.

    Used as ``dask worker --preload daskloss.warmup`` (or the config key
    ``distributed.worker.preload``). The worker connects once the kernels are
    loaded from numba's cache (about 0.2 s) or, on a cold cache, compiled
    (about 20 s, once): never while it runs tasks, whose threads would then
    wait for the compile and the worker's own threads for the interpreter.
    """
    seconds = warm_kernel()
    _LOG.info("kernels ready in %s", ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))


def _warm_quietly(weighted: bool) -> None:
    try:
        seconds = warm_kernel(weighted)
    except Exception as exc:  # the real call raises it where it can be reported
        _LOG.debug("warming the %s kernel failed: %s", _name(weighted), exc)
    else:
        _LOG.debug("%s kernel ready in %.2f s", _name(weighted), seconds[_name(weighted)])


def _run_kernel(weighted: bool) -> None:
    """Evaluate a few rows every way a task may: the first call compiles, or loads the cache.

    One prediction and two, with and without slices, moments, the histogram
    and the worst rows: every compiled function of the kernel
    (:mod:`daskloss._kernel`) and of the distribution pass
    (:mod:`daskloss._rowpass`) runs once.
    """
    values = {
        "y_true": np.array([1.0, -2.5, 3.0e10, 0.0]),
        "y_pred": np.array([1.5, -2.0, 3.0e10, 1.0e-300]),
        "y_other": np.array([0.5, -2.5, 2.9e10, -1.0]),
        "weight": np.array([1.0, 0.5, 2.0, 0.25]),
    }
    chunk = Chunk(values, (("warmup", 4),), {"key": pa.array(["a", "b", "a", "b"])})
    weight = "weight" if weighted else None
    for predictions, group_by in ((["y_pred"], None), (["y_pred", "y_other"], "key")):
        spec = EvaluationSpec.of("y_true", predictions, weight, group_by=group_by, moments=True)
        shape = ShapeAccumulator(spec, ShapeSpec.of(spec, histogram=True, worst_k=2))
        EvaluationStats.from_chunks([chunk], spec, observe=shape.add)
        shape.result()


def _name(weighted: bool) -> str:
    return "weighted" if weighted else "unweighted"
