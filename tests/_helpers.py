"""Helpers for the job tests (config, CLI, report, cluster): configs and CLI runs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daskloss import cli
from daskloss.sample import write_sample

#: The sample dataset of the job tests: small, several files of unequal sizes.
SAMPLE_ROWS, SAMPLE_FILES, SAMPLE_SEED = 3000, 3, 7


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
    """Run ``daskloss argv`` in this process; capture its exit code and streams."""
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)
