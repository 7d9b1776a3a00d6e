"""The evaluation job: settings in, report out.

:func:`run_job` strings the modules together in the one direction data
flows: check that the report can be written, and may be (before any work),
start or connect to the scheduler, evaluate, build the report and write it.
It knows nothing of command lines or exit codes (see :mod:`daskloss.cli`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError
from datetime import UTC, datetime
from typing import Any

from distributed import KilledWorker
from distributed.comm import CommClosedError

from daskloss.cluster import connect
from daskloss.config import Settings, redacted
from daskloss.errors import ConfigError
from daskloss.evaluate import evaluate
from daskloss.policy import ReadRoots, redact_url
from daskloss.progress import track_progress
from daskloss.report import build_report, check_output_path, write_report
from daskloss.warmup import warm_workers

__all__ = ["run_job"]

_LOG = logging.getLogger(__name__)
#: What Dask raises when the cluster fails under a computation: the scheduler
#: connection is lost (futures cancelled), or workers keep dying on a task.
_CLUSTER_FAILURES: tuple[type[BaseException], ...] = (
    CancelledError,
    KilledWorker,
    CommClosedError,
)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def run_job(settings: Settings, *, interactive: bool = False) -> dict[str, Any]:
    """Evaluate the dataset ``settings`` name; write and return the report.

    Parameters
    ----------
    settings : Settings
        Validated settings (see :func:`daskloss.config.load_settings`).
    interactive : bool
        Draw a progress bar on stderr instead of logging progress lines.

    Returns
    -------
    dict
        The report (see :mod:`daskloss.report`).

    Raises
    ------
    DasklossError
        Bad settings (:class:`ConfigError`) or bad data (:class:`DataError`,
        :class:`ReadError`).
    ConnectionError
        The scheduler cannot be reached or has no usable worker.
    """
    _LOG.info("settings: %s", redacted(settings))
    output = settings.output
    roots = ReadRoots.from_environ()
    if output.path is not None:
        check_output_path(output.path, settings.dataset.path)
    weighted = settings.columns.weight is not None
    started = datetime.now(UTC)
    clock = time.perf_counter()
    with (
        connect(settings.cluster) as connection,
        track_progress(connection, interactive=interactive),
    ):
        warming: list[Any] = []
        try:
            if connection.client is not None:  # workers compile while the files are planned
                warming = warm_workers(connection.client, weighted)
            result = evaluate(
                settings.dataset.path,
                settings.columns.y_true,
                settings.columns.y_pred,
                settings.columns.weight,
                nan_policy=settings.evaluation.nan_policy,
                format=settings.dataset.format,
                storage_options=settings.dataset.storage_options,
                split_every=settings.evaluation.split_every,
                read_roots=roots.roots if roots.roots else None,
            )
        except _CLUSTER_FAILURES as exc:
            raise ConnectionError(
                f"lost the Dask cluster ({connection.scheduler}) during the run: "
                f"{type(exc).__name__}: {_first_line(exc)}; no report was written. Tasks of a "
                "dead worker are retried on others (distributed.scheduler.allowed-failures); "
                "re-run the job once the cluster is healthy"
            ) from exc
        finally:
            for future in warming:
                future.release()
    duration = time.perf_counter() - clock
    _LOG.info(
        "evaluated %d rows in %.2f s on %s", result.stats.count, duration, connection.scheduler
    )
    report = build_report(
        result,
        settings,
        scheduler=connection.scheduler,
        started=started,
        finished=datetime.now(UTC),
        duration=duration,
    )
    if output.path is not None:
        _check_not_read(output.path, result.files)
        write_report(report, output.path, output.storage_options)
        _LOG.info("report written to %s", redact_url(output.path))
    return report


def _check_not_read(output: str, files: Sequence[str]) -> None:
    """Refuse to write the report over a file the evaluation read.

    :func:`check_output_path` refused, before the run, a report path the
    dataset's path names; this catches one the listing reached another way
    (a directory linked into the dataset), by comparing the files of the
    same name.
    """
    if "://" in output:
        return
    name = os.path.basename(output)
    real = os.path.realpath(output)
    same = [f for f in files if os.path.basename(f) == name and os.path.realpath(f) == real]
    if same:
        raise ConfigError(
            f"output path {output} is the data file {same[0]} of this run; no report was "
            "written: write the report outside the dataset"
        )
