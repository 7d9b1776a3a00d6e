"""daskloss.evaluate: the same bits for any partitioning, merge tree and scheduler."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import daskloss
from daskloss import DataError, EmptyDatasetError
from tests.helpers import EXPECTED, EXPECTED_WEIGHTED, FRAME, write_parquet
from tests.reference import assert_bit_identical, reference_metrics


@pytest.mark.parametrize("split_every", [False, None, 2])
@pytest.mark.parametrize("npartitions", [1, 3, 17])
def test_partitions_and_split_every(npartitions, split_every):
    """Metrics are bit-identical to the reference for any partitioning and merge tree."""
    frame = dd.from_pandas(FRAME, npartitions=npartitions)
    result = daskloss.evaluate(frame, weight="w", split_every=split_every)
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)
    assert result.npartitions == npartitions


@pytest.mark.parametrize("npartitions", [1, 7, 64])
def test_1_7_64_partitions_and_shuffled_rows(npartitions):
    """1, 7 and 64 partitions of shuffled rows all give the same bits."""
    shuffled = FRAME.sample(frac=1.0, random_state=npartitions)
    result = daskloss.evaluate(dd.from_pandas(shuffled, npartitions=npartitions, sort=False))
    assert_bit_identical(result.metrics, EXPECTED)


def test_empty_partitions():
    """Empty partitions merge as the identity."""
    frame = dd.from_pandas(FRAME, npartitions=5)
    index = frame.index.to_series()
    with_empty = frame[(index < 500) | (index > 2500)]
    kept = FRAME.iloc[np.r_[0:500, 2501:3000]]
    result = daskloss.evaluate(with_empty, split_every=2)
    assert_bit_identical(result.metrics, reference_metrics(kept.y_true, kept.y_pred))


def test_distributed_client_gives_same_bits():
    """Under a distributed Client the result is bit-identical to the threaded run."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        result = daskloss.evaluate(dd.from_pandas(FRAME, npartitions=9), weight="w")
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)


def test_skip_policy_reports_skipped_rows(tmp_path):
    """Under 'skip', rows with NaN are dropped and counted across files."""
    frame = FRAME.copy()
    frame.loc[[3, 1500, 2999], "y_pred"] = np.nan
    write_parquet(tmp_path, frame, 3)
    result = daskloss.evaluate(tmp_path, nan_policy="skip")
    kept = frame.dropna()
    assert result.skipped_rows == 3
    assert_bit_identical(result.metrics, reference_metrics(kept.y_true, kept.y_pred))


def test_all_rows_skipped(tmp_path):
    """When the skip policy leaves nothing, that is an error, not NaN metrics."""
    pq.write_table(
        pa.table({"y_true": [np.nan, 1.0], "y_pred": [1.0, np.inf]}), tmp_path / "a.parquet"
    )
    with pytest.raises(EmptyDatasetError, match="all 2 rows were skipped"):
        daskloss.evaluate(tmp_path, nan_policy="skip")


def test_zero_total_weight(tmp_path):
    """Rows whose weights are all zero cannot give means."""
    write_parquet(tmp_path, FRAME.assign(w=0.0), 2)
    with pytest.raises(DataError, match=r"total weight .* is zero"):
        daskloss.evaluate(tmp_path, weight="w")
