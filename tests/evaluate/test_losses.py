"""Per-row losses: one Parquet file per input file, row for row, written all or nothing."""

from __future__ import annotations

import json
import os

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import daskloss
from daskloss import ConfigError, NonFiniteValueError
from daskloss.losses import MANIFEST, check_losses_path
from tests.helpers import write_parquet


def _frame(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    y = rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": y,
            "p": y + rng.normal(size=n),
            "q": y + rng.normal(size=n),
            "key": [f"k{i}" for i in range(n)],
            "seg": rng.choice(["a", "b"], n),
        }
    )


FRAME = _frame()


def test_each_input_file_gives_its_rows_losses(tmp_path):
    """A file per input file (nested directories kept), holding its rows' ids, d, d² and |d|."""
    write_parquet(tmp_path / "data" / "day=1", FRAME.iloc[:700], 2)
    write_parquet(tmp_path / "data" / "day=2", FRAME.iloc[700:], 3)
    result = daskloss.evaluate(
        str(tmp_path / "data"), "y", "p", id_columns="key", losses=str(tmp_path / "out")
    )
    assert result.losses["files"] == 5 and result.losses["rows"] == len(FRAME)
    for source in sorted((tmp_path / "data").rglob("*.parquet")):
        relative = source.relative_to(tmp_path / "data")
        written = pq.read_table(tmp_path / "out" / relative).to_pandas()
        rows = pd.read_parquet(source)
        d = (rows.p - rows.y).to_numpy()
        assert written.columns.tolist() == ["key", "error", "squared_error", "abs_error"]
        assert written.key.tolist() == rows.key.tolist()
        np.testing.assert_array_equal(written.error, d)
        np.testing.assert_array_equal(written.squared_error, d * d)
        np.testing.assert_array_equal(written.abs_error, np.abs(d))
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["rows"] == len(FRAME)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_several_predictions_and_a_dask_dataframe(tmp_path):
    """Loss columns are named by prediction; a Dask DataFrame gives a file per partition."""
    source = dd.from_pandas(FRAME, npartitions=4, sort=False)
    daskloss.evaluate(source, "y", ["p", "q"], losses=str(tmp_path / "out"), id_columns=["seg"])
    names = sorted(name for name in os.listdir(tmp_path / "out") if name.endswith(".parquet"))
    assert names == [f"part-{i:05d}.parquet" for i in range(4)]
    written = pd.concat(pq.read_table(tmp_path / "out" / name).to_pandas() for name in names)
    assert written.columns.tolist() == [
        "seg",
        "p_error",
        "p_squared_error",
        "p_abs_error",
        "q_error",
        "q_squared_error",
        "q_abs_error",
    ]
    np.testing.assert_array_equal(written.q_error, (FRAME.q - FRAME.y).to_numpy())


def test_a_failed_run_writes_nothing_and_keeps_the_old_losses(tmp_path):
    """A run that fails (NaN) leaves the earlier losses as they were, and no staging behind."""
    write_parquet(tmp_path / "data", FRAME, 3)
    out = tmp_path / "out"
    daskloss.evaluate(str(tmp_path / "data"), "y", "p", losses=str(out))
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    bad = FRAME.copy()
    bad.loc[1500, "p"] = np.nan
    write_parquet(tmp_path / "data", bad, 3)
    with pytest.raises(NonFiniteValueError):
        daskloss.evaluate(str(tmp_path / "data"), "y", "p", losses=str(out))
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert sorted(os.listdir(tmp_path)) == ["data", "out"]


def test_a_second_run_replaces_the_losses(tmp_path):
    """Losses written before are replaced whole, files of the old run gone."""
    write_parquet(tmp_path / "data", FRAME, 3)
    out = tmp_path / "out"
    daskloss.evaluate(str(tmp_path / "data"), "y", "p", losses=str(out))
    (out / "part-0002.parquet").rename(out / "stale.parquet")
    daskloss.evaluate(str(tmp_path / "data"), "y", "p", losses=str(out))
    assert "stale.parquet" not in os.listdir(out)
    assert sorted(os.listdir(tmp_path)) == ["data", "out"]


def test_unsafe_losses_paths_are_refused(tmp_path):
    """A directory daskloss did not write, a file, or a place inside the dataset is refused."""
    write_parquet(tmp_path / "data", FRAME, 2)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    (tmp_path / "file").write_text("x")
    for path, message in [
        (tmp_path / "mine", "holds files daskloss did not write"),
        (tmp_path / "file", "not a directory"),
        (tmp_path / "data" / "losses", "inside the dataset"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_losses_path(str(path), str(tmp_path / "data"))
    check_losses_path(str(tmp_path / "data" / "_losses"), str(tmp_path / "data"))


def test_an_id_column_may_not_take_a_loss_columns_name(tmp_path):
    """An id column named like a loss column is refused before any work."""
    frame = FRAME.assign(abs_error=1.0)
    with pytest.raises(ConfigError, match="name of a loss column"):
        daskloss.evaluate(frame, "y", "p", id_columns="abs_error", losses=str(tmp_path / "out"))
