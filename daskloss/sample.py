"""A realistic, deterministic sample dataset of regression predictions.

:func:`write_sample` writes a directory of Parquet files such as a model's
batch-scoring job would leave behind: one row per scored item, with an
``id``, a ``segment`` label, the observed target ``y_true``, the model's
prediction ``y_pred`` (the target plus noise, with a few gross outliers), a
positive sample ``weight``, and ``y_pred_baseline``, the prediction of an
older model to compare with: noisier, but without the gross outliers, and
better in the ``wholesale`` segment (so the new model wins on absolute errors
and loses on squared errors). Files have unequal sizes, as real output does.
The same ``rows``, ``files`` and ``seed`` always give the same values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from daskloss.errors import ConfigError

__all__ = ["SEGMENTS", "write_sample"]

#: Segment labels and the typical target value of each.
SEGMENTS: dict[str, float] = {"retail": 120.0, "online": 80.0, "wholesale": 900.0, "partner": 300.0}
_OUTLIER_SHARE = 0.005
#: The relative noise of the baseline model by segment: without the candidate's
#: gross outliers, and better than it in one segment.
_BASELINE_SPREAD: dict[str, float] = {
    "retail": 0.16,
    "online": 0.15,
    "wholesale": 0.05,
    "partner": 0.14,
}
_FILE_NAME = "part-{:05d}.parquet"
_FILE_PATTERN = re.compile(r"part-\d{5}\.parquet")


def write_sample(
    directory: str | os.PathLike[str], rows: int = 1_000_000, files: int = 8, seed: int = 0
) -> list[Path]:
    """Write ``rows`` rows of sample predictions as ``files`` Parquet files.

    Parameters
    ----------
    directory : str or os.PathLike
        Created if missing. It may only hold files this function wrote
        (``part-NNNNN.parquet``); those are replaced.
    rows : int
        Total number of rows, at least ``files``.
    files : int
        Number of files; their sizes differ (the first ones are the largest).
    seed : int
        Seed of the random generator: the same arguments give the same data.

    Returns
    -------
    list of pathlib.Path
        The files written, in order.

    Raises
    ------
    ConfigError
        Bad sizes, or a directory holding other files.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> paths = write_sample(tempfile.mkdtemp(), rows=1000, files=3, seed=1)
    >>> sum(len(pd.read_parquet(p)) for p in paths)
    1000
    """
    if files < 1 or rows < files:
        raise ConfigError(f"need 1 <= files <= rows, got rows={rows} and files={files}")
    target = _prepare_directory(Path(directory))
    sizes = _file_sizes(rows, files, np.random.default_rng(seed))
    streams = np.random.SeedSequence(seed).spawn(files)
    paths, start = [], 0
    for index, (size, stream) in enumerate(zip(sizes, streams, strict=True)):
        path = target / _FILE_NAME.format(index)
        table = _make_table(start, int(size), np.random.default_rng(stream))
        pq.write_table(table, path)
        paths.append(path)
        start += int(size)
    return paths


def _prepare_directory(directory: Path) -> Path:
    """Create ``directory``, or empty it of earlier sample files; refuse any other file."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the sample directory {directory}: {exc.strerror or exc}; "
            "choose a new directory"
        ) from None
    foreign = sorted(p.name for p in directory.iterdir() if not _FILE_PATTERN.fullmatch(p.name))
    if foreign:
        raise ConfigError(
            f"{directory} holds files that make-sample did not write ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); choose an empty or new directory"
        )
    for old in directory.iterdir():
        old.unlink()
    return directory


def _file_sizes(rows: int, files: int, rng: np.random.Generator) -> np.ndarray:
    """Unequal file sizes, largest first, each at least one row, summing to ``rows``."""
    shares = np.sort(rng.uniform(1.0, 4.0, size=files))[::-1]
    sizes = 1 + np.floor(shares / shares.sum() * (rows - files)).astype(np.int64)
    sizes[0] += rows - sizes.sum()
    return sizes


def _make_table(first_id: int, size: int, rng: np.random.Generator) -> pa.Table:
    """One file's rows: targets by segment, predictions with noise and outliers."""
    names = np.array(list(SEGMENTS))
    codes = rng.choice(len(names), size=size, p=[0.4, 0.3, 0.1, 0.2])
    scale = np.array(list(SEGMENTS.values()))[codes]
    y_true = scale * rng.lognormal(mean=0.0, sigma=0.5, size=size)
    noise = rng.normal(0.0, 0.08, size=size) * y_true
    outliers = rng.random(size) < _OUTLIER_SHARE
    noise[outliers] = rng.standard_t(df=3, size=int(outliers.sum())) * scale[outliers] * 2.0
    weight = 0.05 + rng.gamma(shape=2.0, scale=0.5, size=size)
    spread = np.array(list(_BASELINE_SPREAD.values()))[codes]
    baseline = y_true + rng.normal(0.0, 1.0, size=size) * spread * y_true
    return pa.table(
        {
            "id": pa.array(np.arange(first_id, first_id + size, dtype=np.int64)),
            "segment": pa.array(names[codes], type=pa.string()),
            "y_true": pa.array(y_true),
            "y_pred": pa.array(y_true + noise),
            "weight": pa.array(weight),
            "y_pred_baseline": pa.array(baseline),
        }
    )
