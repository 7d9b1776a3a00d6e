"""Reading prediction datasets from an S3-compatible object store (moto on 127.0.0.1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import daskloss
from daskloss import EmptyDatasetError, ReadError
from tests.reference import assert_bit_identical, reference_metrics

pytestmark = pytest.mark.s3

RNG = np.random.default_rng(11)
FRAME = pd.DataFrame({"y_true": RNG.normal(size=600), "w": RNG.random(600)})
FRAME["y_pred"] = FRAME.y_true + RNG.normal(size=600)


def _upload(s3_bucket, prefix: str, nfiles: int = 3) -> str:
    fs, bucket = s3_bucket["fs"], s3_bucket["bucket"]
    bounds = np.linspace(0, len(FRAME), nfiles + 1).astype(int)
    for i in range(nfiles):
        with fs.open(f"{bucket}/{prefix}/part-{i}.parquet", "wb") as handle:
            FRAME.iloc[bounds[i] : bounds[i + 1]].to_parquet(handle, index=False)
    return f"s3://{bucket}/{prefix}/"


def test_reads_s3_prefix_with_storage_options(s3_bucket):
    """An s3:// prefix is listed and read through fsspec with the given options."""
    url = _upload(s3_bucket, "preds")
    result = daskloss.evaluate(url, weight="w", storage_options=s3_bucket["storage_options"])
    assert_bit_identical(result.metrics, reference_metrics(FRAME.y_true, FRAME.y_pred, FRAME.w))
    assert result.files == tuple(f"{url}part-{i}.parquet" for i in range(3))


def test_reads_s3_with_environment_credentials(s3_bucket, monkeypatch):
    """Standard AWS environment variables work when no credentials are configured."""
    url = _upload(s3_bucket, "env")
    options = s3_bucket["storage_options"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", options["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", options["secret"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", options["client_kwargs"]["endpoint_url"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    result = daskloss.evaluate(url)
    assert_bit_identical(result.metrics, reference_metrics(FRAME.y_true, FRAME.y_pred))


def test_empty_prefix_is_an_error_without_secrets(s3_bucket):
    """A prefix with no files is an EmptyDatasetError that does not show the secret."""
    options = s3_bucket["storage_options"]
    with pytest.raises(EmptyDatasetError) as caught:
        daskloss.evaluate(f"s3://{s3_bucket['bucket']}/nothing/", storage_options=options)
    assert options["secret"] not in str(caught.value)


def test_corrupt_object_names_the_url(s3_bucket):
    """A corrupt object is a ReadError naming its s3:// URL, without the secret."""
    url = _upload(s3_bucket, "corrupt")
    with s3_bucket["fs"].open(f"{url}part-1.parquet", "wb") as handle:
        handle.write(b"PAR1 truncated")
    options = s3_bucket["storage_options"]
    with pytest.raises(ReadError, match=r"s3://.*/corrupt/part-1\.parquet") as caught:
        daskloss.evaluate(url, storage_options=options)
    assert options["secret"] not in str(caught.value)
