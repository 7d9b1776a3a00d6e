"""Fuzzing with malformed datasets: a correct result or a daskloss error, nothing else."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import daskloss
from tests.reference import assert_bit_identical, reference_metrics

VALUES = st.one_of(
    st.floats(width=64, allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0.0, -1.0, 1e308, -1e308, 5e-324]),
)
TYPES = st.sampled_from(["float64", "float64", "float64", "float32", "int64", "string", "missing"])


@st.composite
def files(draw):
    """One file's columns: each a type (or missing) and values, maybe nulls."""
    n = draw(st.integers(0, 8))
    table = {}
    for name in ("y_true", "y_pred", "w"):
        kind = draw(TYPES) if draw(st.integers(0, 4)) == 0 else "float64"
        if kind == "missing":
            continue
        values = draw(st.lists(VALUES, min_size=n, max_size=n))
        nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        table[name] = _column(kind, values, nulls if draw(st.booleans()) else [False] * n)
    return table, draw(st.sampled_from(["intact"] * 6 + ["truncated"]))


def _column(kind: str, values: list[float], nulls: list[bool]) -> pa.Array:
    mask = pa.array(nulls, type=pa.bool_()) if any(nulls) else None
    if kind == "string":
        return pa.array([str(v) for v in values], type=pa.string(), mask=mask)
    if kind == "int64":
        ints = [int(v) if math.isfinite(v) and abs(v) < 2**62 else 0 for v in values]
        return pa.array(ints, type=pa.int64(), mask=mask)
    return pa.array(values, type=pa.float64(), mask=mask).cast(kind, safe=False)


def _expected(tables, weighted: bool, nan_policy: str):
    """The reference metrics if the dataset is valid, else None (an error is due)."""
    names = ["y_true", "y_pred", "w"] if weighted else ["y_true", "y_pred"]
    if not tables or any(corrupt != "intact" for _, corrupt in tables):
        return None
    first_types = {n: tables[0][0][n].type for n in names if n in tables[0][0]}
    columns = {n: [] for n in names}
    for table, _ in tables:
        for name in names:
            if name not in table:
                return None
            kind = table[name].type
            if kind != first_types.get(name) or pa.types.is_string(kind):
                return None
            columns[name].extend(
                math.nan if v is None else float(v) for v in table[name].to_pylist()
            )
    arrays = {n: np.array(v, dtype=np.float64) for n, v in columns.items()}
    finite = np.logical_and.reduce([np.isfinite(a) for a in arrays.values()])
    if not finite.all() and nan_policy == "error":
        return None
    kept = {n: a[finite] for n, a in arrays.items()}
    with np.errstate(over="ignore", invalid="ignore"):
        residual = kept["y_pred"] - kept["y_true"]
    if not np.isfinite(residual).all() or kept["y_true"].size == 0:
        return None
    if weighted and ((kept["w"] < 0).any() or kept["w"].sum() == 0):
        return None
    return reference_metrics(kept["y_true"], kept["y_pred"], kept["w"] if weighted else None)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(files(), min_size=1, max_size=3),
    st.booleans(),
    st.sampled_from(["error", "skip"]),
)
def test_malformed_datasets(tables, weighted, nan_policy):
    """Either the exact metrics of a valid dataset, or a DasklossError: never a crash."""
    expected = _expected(tables, weighted, nan_policy)
    event("valid dataset" if expected is not None else "invalid dataset")
    with tempfile.TemporaryDirectory() as directory:
        for i, (columns, corruption) in enumerate(tables):
            path = Path(directory) / f"part-{i}.parquet"
            pq.write_table(pa.table(columns) if columns else pa.table({"x": []}), path)
            if corruption == "truncated":
                data = path.read_bytes()
                path.write_bytes(data[: len(data) // 2])
        try:
            result = daskloss.evaluate(
                directory, weight="w" if weighted else None, nan_policy=nan_policy
            )
        except daskloss.DasklossError:
            assert expected is None, "a valid dataset was refused"
            return
    assert expected is not None, "an invalid dataset gave metrics"
    assert_bit_identical(result.metrics, expected)
