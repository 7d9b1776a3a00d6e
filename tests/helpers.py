"""Shared test helpers: prediction data, configs and CLI runs, Dask processes, free ports.

Fixtures built on these live in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daskloss import cli
from daskloss.sample import write_sample
from tests.reference import reference_metrics

#: The repository's root directory.
ROOT = Path(__file__).resolve().parent.parent

#: The sample dataset of the job tests: small, several files of unequal sizes.
SAMPLE_ROWS, SAMPLE_FILES, SAMPLE_SEED = 3000, 3, 7

#: Credentials of the local S3 server (moto accepts any).
S3_KEY, S3_SECRET = "daskloss-test-key", "daskloss-test-secret-do-not-leak"
#: Secrets of the redaction tests, each where a real one would be: a URL password
#: holding "/", "#" and "?", a bearer token, an Azure connection string, the user
#: information of an endpoint URL.
URL_PASSWORD = "pa/ss#wo?rd-daskloss-url-secret"
BEARER_TOKEN = "Bearer daskloss-bearer-secret"
CONNECTION_STRING = (
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=daskloss-azure-secret=="
)
ENDPOINT_PASSWORD = "daskloss-endpoint-secret"
#: What no test may ever print: conftest.py fails any test whose captured output
#: (stdout, stderr, logs) holds one; run_cli and run_daskloss check theirs.
TEST_SECRETS = (
    S3_KEY,
    S3_SECRET,
    URL_PASSWORD,
    "daskloss-url-secret",
    "daskloss-bearer-secret",
    "daskloss-azure-secret",
    ENDPOINT_PASSWORD,
)


def leaked_secrets(text: str) -> list[str]:
    """The test secrets found in ``text`` (see :data:`TEST_SECRETS`)."""
    return [secret for secret in TEST_SECRETS if secret in text]


def secret_options(endpoint: str = "http://127.0.0.1:9") -> dict[str, Any]:
    """Storage options holding a secret under every name the redaction must cover."""
    user_info = endpoint.replace("://", f"://minio:{ENDPOINT_PASSWORD}@", 1)
    return {
        "anon": False,
        "headers": {"Authorization": BEARER_TOKEN},
        "connection_string": CONNECTION_STRING,
        "client_kwargs": {"endpoint_url": user_info, "region_name": "us-east-1"},
    }


def sample_dataset(tmp_path_factory: Any) -> Path:
    """Write the job tests' sample dataset into a fresh temporary directory."""
    directory = tmp_path_factory.mktemp("sample")
    write_sample(directory, rows=SAMPLE_ROWS, files=SAMPLE_FILES, seed=SAMPLE_SEED)
    return directory


def toml_text(data: Mapping[str, Mapping[str, Any]]) -> str:
    """A TOML document of tables holding scalars, lists and inline tables."""
    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def job_config(data: Path | str, report: Path | str, **sections: Mapping[str, Any]) -> dict:
    """The config of a job over the ``data`` files, with extra or replaced keys per section."""
    config = {
        "dataset": {"path": str(data), "format": "parquet"},
        "columns": {"y_true": "y_true", "y_pred": "y_pred", "weight": "weight"},
        "output": {"path": str(report)},
    }
    for name, table in sections.items():
        config[name] = {**config.get(name, {}), **table}
    return config


def write_config(path: Path, config: Mapping[str, Mapping[str, Any]]) -> Path:
    path.write_text(toml_text(config))
    return path


@dataclass(frozen=True)
class Run:
    """What one ``daskloss`` command did."""

    code: int
    out: str
    err: str


def run_cli(argv: Sequence[str], capsys: Any) -> Run:
    """Run ``daskloss argv`` in this process; capture its exit code and streams.

    Fails if a test secret was printed (the streams are the test's to read, so
    the suite-wide check in conftest.py does not see them).
    """
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    run = Run(code, captured.out, captured.err)
    assert not leaked_secrets(run.out + run.err), "a test secret was printed"
    return run


def start_daskloss(argv: Sequence[str]) -> subprocess.Popen:
    """Start ``daskloss argv`` as a process of its own, its stdout and stderr piped.

    For what only a whole process shows: what libraries print on the real
    stderr, and that it exits at all.
    """
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    command = "import sys; from daskloss.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", command, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=environment,
    )


def run_daskloss(argv: Sequence[str], timeout: float) -> Run:
    """Run ``daskloss argv`` in a process of its own, killed after ``timeout`` seconds."""
    process = start_daskloss(argv)
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        process.kill()
    run = Run(process.wait(), out, err)
    assert not leaked_secrets(run.out + run.err), "a test secret was printed"
    return run


def prediction_frame(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    """Targets and predictions over 40 decades, exponential weights, a string segment."""
    rng = np.random.default_rng(seed)
    magnitude = 10.0 ** rng.integers(-20, 20, n)
    y_true = rng.normal(size=n) * magnitude
    return pd.DataFrame(
        {
            "y_true": y_true,
            "y_pred": y_true + rng.normal(size=n) * magnitude * 1e-3,
            "w": rng.exponential(size=n),
            "segment": rng.choice(["a", "b", "c"], n),
        }
    )


#: The shared frame of the evaluation tests, and its reference metrics.
FRAME = prediction_frame()
EXPECTED = reference_metrics(FRAME.y_true, FRAME.y_pred)
EXPECTED_WEIGHTED = reference_metrics(FRAME.y_true, FRAME.y_pred, FRAME.w)


def write_parquet(directory: Path, frame: pd.DataFrame, nfiles: int, **kwargs: Any) -> list[Path]:
    """``frame`` cut into ``nfiles`` consecutive Parquet files ``part-NNNN.parquet``."""
    directory.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(frame), nfiles + 1).astype(int)
    paths = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        path = directory / f"part-{i:04d}.parquet"
        frame.iloc[lo:hi].to_parquet(path, index=False, **kwargs)
        paths.append(path)
    return paths


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def dask_processes(
    workers: int, logs: Path, *, nanny: bool = False, threads: int = 1
) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A Dask scheduler and ``workers`` workers, each a separate process on 127.0.0.1.

    Yields the scheduler address and the processes (scheduler first). Should
    pytest be killed before the cleanup runs, the scheduler exits after 5 idle
    minutes and the workers 30 s after losing it.
    """
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    local = ["--host", "127.0.0.1", "--no-dashboard"]
    worker = ["worker", address, *local, "--nthreads", str(threads), "--death-timeout", "30"]
    commands = {
        "scheduler": ["scheduler", *local, "--port", str(port), "--idle-timeout", "300"],
        **{f"worker-{i}": [*worker, "--nanny" if nanny else "--no-nanny"] for i in range(workers)},
    }
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    processes: list[subprocess.Popen] = []
    try:
        for name, args in commands.items():
            with open(logs / f"{name}.log", "w") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "dask", *args],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=logs,
                        env=environment,
                    )
                )
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, processes
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def day_frame(seed: int, n: int = 200) -> pd.DataFrame:
    """Rows of one day: targets over many magnitudes, two models, weights, three segments."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * 10.0 ** rng.integers(-5, 5, n)
    return pd.DataFrame(
        {
            "y_true": y,
            "y_pred": y + rng.normal(size=n),
            "y_old": y + 2 * rng.normal(size=n),
            "w": rng.random(n),
            "segment": rng.choice(["a", "b", "c"], n),
        }
    )


def write_day(
    root: Path, day: int, seed: int | None = None, n: int = 200, *, ids: bool = False
) -> Path:
    """``root/day=DD/part.parquet`` (rewritten if it exists).

    With ``ids``, an ``id`` column of text ``"<day>:<seed>:<row>"`` as well.
    """
    path = root / f"day={day:02d}" / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = day_frame(day if seed is None else seed, n)
    if ids:
        frame["id"] = [f"{day}:{seed}:{row}" for row in range(n)]
    frame.to_parquet(path, index=False)
    return path
