"""Slices, several predictions and comparisons: each number against an independent reference.

Every slice's metrics must be the very bits of evaluating that slice's rows
alone (Fraction sums), for any partitioning; several predictions share their
rows; comparisons match a Fraction/decimal reference of the stated estimator.
"""

from __future__ import annotations

import datetime
import math
import pickle

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import daskloss
from daskloss import ConfigError, NonFiniteValueError, SchemaError
from daskloss.roles import EvaluationSpec
from tests.helpers import write_parquet
from tests.reference import assert_bit_identical, reference_comparison, reference_metrics


def _frame(n: int = 6000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    magnitude = 10.0 ** rng.integers(-8, 8, n)
    y = rng.normal(size=n) * magnitude
    return pd.DataFrame(
        {
            "y": y,
            "a": y + rng.normal(size=n) * magnitude * 1e-2,
            "b": y + rng.normal(size=n) * magnitude * 1.2e-2,
            "w": rng.exponential(size=n),
            "segment": rng.choice(["north", "south", "east", None], n, p=[0.4, 0.3, 0.2, 0.1]),
            "store": rng.integers(0, 5, n),
            "flag": rng.random(n) < 0.3,
        }
    )


FRAME = _frame()


def _slice_reference(frame: pd.DataFrame, keys: list[str], prediction: str = "a", weight=None):
    """Each slice's reference metrics, from its rows alone."""
    found = {}
    for key, rows in frame.groupby(keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(None if (isinstance(v, float) and math.isnan(v)) else v for v in key)
        w = None if weight is None else rows[weight]
        found[key] = reference_metrics(rows.y, rows[prediction], w)
    return found


def _by_key(result, prediction: str = "a") -> dict:
    return {tuple(s.key.values()): s.predictions[prediction] for s in result.slices}


@pytest.mark.parametrize("npartitions", [1, 7, 64])
def test_each_slice_equals_its_rows_alone(npartitions):
    """Every slice's metrics are the bits of its own rows' Fraction reference, null slice too."""
    source = dd.from_pandas(FRAME, npartitions=npartitions, sort=False)
    result = daskloss.evaluate(source, "y", "a", "w", group_by="segment")
    got = _by_key(result)
    expected = _slice_reference(FRAME, ["segment"], weight="w")
    assert set(got) == set(expected) and (None,) in got
    for key, metrics in expected.items():
        assert_bit_identical(got[key], metrics)
    assert_bit_identical(result.metrics, reference_metrics(FRAME.y, FRAME.a, FRAME.w))


def test_two_key_columns_and_bit_identity_across_partitionings():
    """Slices by two columns: the same EvaluationStats for 1, 7 and 64 partitions."""
    runs = [
        daskloss.evaluate(
            dd.from_pandas(FRAME, npartitions=n, sort=False),
            "y",
            ["a", "b"],
            group_by=["segment", "store"],
        )
        for n in (1, 7, 64)
    ]
    assert runs[0].evaluation == runs[1].evaluation == runs[2].evaluation
    expected = _slice_reference(FRAME, ["segment", "store"], prediction="b")
    got = _by_key(runs[0], "b")
    for key, metrics in expected.items():
        assert_bit_identical(got[key], metrics)


def test_slices_are_in_key_order_with_nulls_last():
    """Slices come sorted by key value, a null key last, whatever the row order."""
    shuffled = FRAME.sample(frac=1.0, random_state=3)
    result = daskloss.evaluate(shuffled, "y", "a", group_by="segment")
    assert [s.key["segment"] for s in result.slices] == ["east", "north", "south", None]


@pytest.mark.parametrize(
    "kind",
    ["string", "integer", "boolean", "dictionary", "date", "csv"],
)
def test_key_types_in_files(tmp_path, kind):
    """Parquet keys of every type, and CSV keys (text; an empty field is null), give each
    slice its rows' reference bits."""
    frame = FRAME.assign(day=[datetime.date(2026, 11, 28 + int(i) % 3) for i in FRAME.store])
    column = {
        "string": "segment",
        "integer": "store",
        "boolean": "flag",
        "dictionary": "segment",
        "date": "day",
        "csv": "segment",
    }[kind]
    if kind == "csv":
        for i, start in enumerate(range(0, len(frame), 2500)):
            part = frame.iloc[start : start + 2500]
            part.to_csv(tmp_path / f"p{i}.csv", index=False, float_format="%.17g")
    else:
        write_parquet(tmp_path, frame, 4, use_dictionary=(kind == "dictionary"))
    result = daskloss.evaluate(tmp_path, "y", "a", "w", group_by=column)
    expected = _slice_reference(frame, [column], weight="w")
    got = _by_key(result)
    assert set(got) == set(expected)
    for key, metrics in expected.items():
        assert_bit_identical(got[key], metrics)


def test_hive_partition_directories_are_keys(tmp_path):
    """day=.../ and store=.../ directories are slice keys (integers as integers, nulls as null)."""
    for (store, day), rows in FRAME.assign(day=FRAME.store % 2).groupby(["store", "day"]):
        folder = "__HIVE_DEFAULT_PARTITION__" if store == 4 else str(store)
        directory = tmp_path / f"day=2026-11-{29 + day}" / f"store={folder}"
        directory.mkdir(parents=True)
        rows.drop(columns=["store", "day"]).to_parquet(directory / "part.parquet", index=False)
    result = daskloss.evaluate(tmp_path, "y", "a", group_by=["day", "store"])
    keys = [tuple(s.key.values()) for s in result.slices]
    assert ("2026-11-29", 0) in keys and ("2026-11-29", None) in keys
    frame = FRAME.assign(day=np.where(FRAME.store % 2, "2026-11-30", "2026-11-29"))
    frame = frame.assign(store=frame.store.where(frame.store != 4, None))
    for s in result.slices:
        rows = frame[(frame.day == s.key["day"]) & (frame.store.astype(object) == s.key["store"])]
        if s.key["store"] is None:
            rows = frame[(frame.day == s.key["day"]) & frame.store.isna()]
        assert_bit_identical(s.predictions["a"], reference_metrics(rows.y, rows.a))


def test_a_float_key_is_refused():
    """A float column cannot key slices (NaN would not equal itself): a clear SchemaError."""
    with pytest.raises(SchemaError, match=r"group_by column 'w'.*type double.*cast"):
        daskloss.evaluate(FRAME, "y", "a", group_by="w")


def test_an_unknown_key_names_the_column(tmp_path):
    """A group_by column in no file and no directory name is named in the error."""
    write_parquet(tmp_path, FRAME, 2)
    with pytest.raises(SchemaError, match=r"group_by column 'region' is not a column"):
        daskloss.evaluate(tmp_path, "y", "a", group_by="region")


def test_several_predictions_share_their_rows_under_skip():
    """A NaN in one prediction leaves the row out for every prediction: counts match."""
    frame = FRAME.copy()
    frame.loc[[5, 77, 1000], "b"] = np.nan
    frame.loc[[9], "a"] = np.inf
    result = daskloss.evaluate(frame, "y", ["a", "b"], "w", nan_policy="skip")
    kept = frame.drop(index=[5, 77, 1000, 9])
    assert result.skipped_rows == 4
    assert_bit_identical(result.overall.predictions["a"], reference_metrics(kept.y, kept.a, kept.w))
    assert_bit_identical(result.overall.predictions["b"], reference_metrics(kept.y, kept.b, kept.w))


def test_nan_in_a_second_prediction_is_named():
    """Under 'error', a NaN in the second prediction column is named with its count."""
    frame = FRAME.copy()
    frame.loc[[3, 4], "b"] = np.nan
    with pytest.raises(NonFiniteValueError, match=r"2 in 'b'"):
        daskloss.evaluate(frame, "y", ["a", "b"])


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_comparison_matches_the_reference(weighted):
    """Differences, standard errors and intervals: the Fraction/decimal reference's bits."""
    w = "w" if weighted else None
    result = daskloss.evaluate(FRAME, "y", ["a", "b"], w, baseline="b")
    got = result.overall.comparisons["a"]
    expected = reference_comparison(FRAME.y, FRAME.a, FRAME.b, None if w is None else FRAME.w)
    for metric, values in expected.items():
        for name, value in values.items():
            assert got[metric][name] == value, (metric, name, got[metric][name], value)


def test_comparisons_per_slice_match_the_reference():
    """Each slice's comparison is the reference over that slice's rows alone."""
    result = daskloss.evaluate(
        dd.from_pandas(FRAME, npartitions=7), "y", ["a", "b"], group_by="store", baseline="b"
    )
    for s in result.slices:
        rows = FRAME[FRAME.store == s.key["store"]]
        expected = reference_comparison(rows.y, rows.a, rows.b)
        for metric, values in expected.items():
            for name, value in values.items():
                assert s.comparisons["a"][metric][name] == value, (s.key, metric, name)


def test_interval_coverage_by_simulation():
    """Over repeated samples, the 95% interval of the MSE and MAE differences covers the truth.

    Errors ``e_a ~ N(0, 1)`` and ``e_b ~ N(0, 1.1**2)`` correlated 0.5: the true
    difference of MSE is ``1 - 1.21``. Of 300 samples of 400 rows, 95% +- 4% of
    the intervals must cover it (binomial standard deviation 1.3%).
    """
    rng = np.random.default_rng(11)
    true_mse = 1.0 - 1.21
    true_mae = math.sqrt(2 / math.pi) * (1.0 - 1.1)
    covered = {"mse": 0, "mae": 0}
    samples = 300
    for _ in range(samples):
        z1, z2 = rng.normal(size=(2, 400))
        e_a = z1
        e_b = 1.1 * (0.5 * z1 + math.sqrt(0.75) * z2)
        y = rng.normal(size=400)
        frame = pd.DataFrame({"y": y, "a": y + e_a, "b": y + e_b})
        found = daskloss.evaluate(frame, "y", ["a", "b"], baseline="b").overall.comparisons["a"]
        covered["mse"] += found["mse"]["low"] <= true_mse <= found["mse"]["high"]
        covered["mae"] += found["mae"]["low"] <= true_mae <= found["mae"]["high"]
    for metric, count in covered.items():
        assert 0.91 <= count / samples <= 0.99, (metric, count)


def test_standard_error_agrees_with_the_bootstrap():
    """The MSE difference's standard error is within 10% of a 2,000-resample bootstrap's."""
    rng = np.random.default_rng(12)
    frame = FRAME.iloc[:1500]
    d = ((frame.a - frame.y) ** 2 - (frame.b - frame.y) ** 2).to_numpy()
    boot = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(2000)]
    found = daskloss.evaluate(frame, "y", ["a", "b"], baseline="b").overall.comparisons["a"]
    assert found["mse"]["stderr"] == pytest.approx(np.std(boot), rel=0.1)


def test_baseline_must_be_a_prediction():
    """A baseline that is not one of the predictions is a ConfigError naming them."""
    with pytest.raises(ConfigError, match=r"baseline must be one of the prediction columns"):
        daskloss.evaluate(FRAME, "y", ["a", "b"], baseline="c")


def test_statistics_merge_only_within_one_spec():
    """EvaluationStats of different specs refuse to merge, naming both."""
    one = daskloss.evaluate(FRAME, "y", "a", group_by="segment").evaluation
    other = daskloss.evaluate(FRAME, "y", "a", group_by="store").evaluation
    with pytest.raises(ConfigError, match="cannot be merged"):
        one.merge(other)


def test_ten_thousand_slices_merge_compactly():
    """10,000 slices over 64 partitions: the same bits as one partition, small pickles."""
    rng = np.random.default_rng(4)
    n = 60_000
    y = rng.normal(size=n) * 100
    frame = pd.DataFrame({"y": y, "a": y + rng.normal(size=n), "key": rng.integers(0, 10_000, n)})
    whole = daskloss.evaluate(frame, "y", "a", group_by="key")
    parts = daskloss.evaluate(dd.from_pandas(frame, npartitions=64), "y", "a", group_by="key")
    assert whole.evaluation == parts.evaluation
    assert len(whole.slices) == len(set(frame.key))
    size = len(pickle.dumps(whole.evaluation))
    assert size / len(whole.slices) < 200, size
    sample = frame[frame.key == whole.slices[17].key["key"]]
    assert_bit_identical(whole.slices[17].predictions["a"], reference_metrics(sample.y, sample.a))


def test_spec_checks_its_columns():
    """A slice column that is also a value column, or a repeated prediction, is refused."""
    with pytest.raises(ConfigError, match=r"group_by column\(s\) \['a'\]"):
        EvaluationSpec.of("y", "a", group_by="a")
    with pytest.raises(ConfigError, match=r"y_pred names \['a'\] more than once"):
        EvaluationSpec.of("y", ["a", "a"])


def test_dictionary_keys_with_changing_dictionaries(tmp_path):
    """Row groups with different dictionaries of the same key column give one slice per value."""
    table = pa.table(
        {
            "y": [1.0, 2.0, 3.0, 4.0],
            "a": [1.5, 2.0, 2.0, 5.0],
            "k": pa.chunked_array(
                [pa.array(["x", "y"]).dictionary_encode(), pa.array(["y", "z"]).dictionary_encode()]
            ),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=2)
    result = daskloss.evaluate(tmp_path, "y", "a", group_by="k")
    assert [(s.key["k"], s.count) for s in result.slices] == [("x", 1), ("y", 2), ("z", 1)]
