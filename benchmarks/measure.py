"""Timing methods interleaved (wall and CPU seconds), and their peak memory in fresh processes."""

from __future__ import annotations

import gc
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.methods import Method

__all__ = ["paired_ratio", "peak_rss", "summary", "time_interleaved"]


def time_interleaved(
    methods: Sequence[Method], repeat: int, log: Any = None
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[Any]]]:
    """Run every method once per round, ``A B C A B C ...``; round 0 is an untimed warm-up.

    Returns, per method, the wall seconds and the CPU seconds of the timed
    runs (CPU of every process the method runs in: on a shared machine it
    moves less than wall time), and their results.
    """
    times: dict[str, list[float]] = {m.name: [] for m in methods}
    cpu: dict[str, list[float]] = {m.name: [] for m in methods}
    results: dict[str, list[Any]] = {m.name: [] for m in methods}
    for round_number in range(repeat + 1):
        for method in methods:
            gc.collect()
            cpu_before = method.cpu()
            start = time.perf_counter()
            result = method.run()
            elapsed = time.perf_counter() - start
            cpu_used = method.cpu() - cpu_before
            if round_number:
                times[method.name].append(elapsed)
                cpu[method.name].append(cpu_used)
                results[method.name].append(result)
            if log:
                kind = f"run {round_number}/{repeat}" if round_number else "warm-up"
                log(f"  {kind:>10}  {method.name:<58} {elapsed:8.3f} s  cpu {cpu_used:7.3f} s")
    return times, cpu, results


def summary(method: Method, seconds: list[float], cpu: list[float]) -> dict[str, Any]:
    median = statistics.median(seconds)
    return {
        "kind": method.kind,
        "group": method.group,
        "layout": method.layout.spec if method.layout else None,
        "weighted": method.weighted,
        "rows": method.rows,
        "files": method.layout.files if method.layout else None,
        "seconds": seconds,
        "median_seconds": median,
        "min_seconds": min(seconds),
        "max_seconds": max(seconds),
        "cpu_seconds": cpu,
        "median_cpu_seconds": statistics.median(cpu),
        "rows_per_second": method.rows / median,
        "ns_per_row": median / method.rows * 1e9,
        "cpu_ns_per_row": statistics.median(cpu) / method.rows * 1e9,
        "setup_seconds": method.setup_seconds,
    }


def paired_ratio(seconds: Sequence[float], baseline: Sequence[float]) -> float:
    """The median over rounds of ``seconds / baseline`` timed in the same round.

    Runs of one round are seconds apart, so they share the machine's state;
    on a machine whose speed drifts this is steadier than a ratio of medians.
    """
    return statistics.median(a / b for a, b in zip(seconds, baseline, strict=True))


class _PeakSampler:
    """Samples the summed RSS of this process and its descendants (cluster workers)."""

    def __init__(self, interval: float = 0.01) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak = 0

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def tree_rss(self) -> int:
        import psutil

        total = 0
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self.tree_rss())


def peak_rss(method: Method) -> dict[str, Any]:
    """Run one method once in this (fresh) process and measure its memory."""
    with _PeakSampler() as sampler:
        baseline = sampler.tree_rss()
        method.run()
        sampler.peak = max(sampler.peak, sampler.tree_rss())
    own_peak = _high_water_mark()
    return {
        "peak_rss_bytes": max(sampler.peak, own_peak),
        "baseline_rss_bytes": baseline,
        "process_high_water_bytes": own_peak,
    }


def _high_water_mark() -> int:
    """This process's exact peak RSS (``VmHWM``).

    Not ``getrusage(...).ru_maxrss``: Linux carries the parent's peak into it
    across ``fork`` + ``exec``, so a child started from a big benchmark
    process would report the parent's memory.
    """
    if not sys.platform.startswith("linux"):
        return 0
    with open("/proc/self/status") as status:
        lines = [line for line in status if line.startswith("VmHWM:")]
    return int(lines[0].split()[1]) * 1024 if lines else 0
