"""The shape of the errors: intervals, histograms, quantiles, the share of SE, worst rows.

Each against an independent reference: Fraction/decimal intervals (bit for
bit), repeated simulation and the bootstrap for their coverage, numpy's
quantiles, bins assigned with ``math.frexp``, a brute-force share of SE and a
brute-force sort for the worst rows; and the same bits for 1, 7 and 64
partitions.
"""

from __future__ import annotations

import math
from fractions import Fraction

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import daskloss
from daskloss.chunks import Chunk
from daskloss.distribution import QUANTILE_RELATIVE_ERROR, Histogram
from daskloss.exact import FRACTION_BITS
from daskloss.formulas import INTERVAL_METRICS, intervals
from daskloss.roles import EvaluationSpec
from daskloss.stats import EvaluationStats
from tests.reference import reference_intervals


def _frame(n: int = 4000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.normal(100.0, 20.0, n)
    noise = rng.standard_t(3, n) * 2.0
    return pd.DataFrame(
        {
            "y": y,
            "p": y + noise,
            "q": y + rng.normal(0.0, 2.5, n),
            "w": rng.exponential(size=n),
            "segment": rng.choice(["north", "south", "east"], n),
            "id": np.arange(n) * 7,
            "name": [f"row-{i}" for i in range(n)],
        }
    )


FRAME = _frame()


def _evaluate(frame, npartitions=1, **options):
    source = dd.from_pandas(frame, npartitions=npartitions, sort=False) if npartitions else frame
    return daskloss.evaluate(source, "y", options.pop("y_pred", "p"), **options)


# --- intervals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_intervals_match_the_reference(weighted):
    """stderr, low and high of MSE, RMSE, MAE and bias: the Fraction/decimal reference's bits."""
    w = "w" if weighted else None
    result = _evaluate(FRAME, 7, weight=w, intervals=True)
    expected = reference_intervals(FRAME.y, FRAME.p, FRAME.w if weighted else None)
    assert result.overall.intervals["p"] == expected


def test_intervals_per_slice_match_the_reference():
    """Each slice's intervals are the reference over that slice's rows alone."""
    result = _evaluate(FRAME, 7, weight="w", intervals=True, group_by="segment")
    for found in result.slices:
        rows = FRAME[FRAME.segment == found.key["segment"]]
        assert found.intervals["p"] == reference_intervals(rows.y, rows.p, rows.w)


def test_intervals_need_moments_and_more_than_one_row():
    """Without moments there are no intervals; with one row they are undefined (NaN)."""
    assert _evaluate(FRAME).overall.intervals == {}
    one = _evaluate(FRAME.iloc[:1], intervals=True).overall.intervals["p"]
    assert all(math.isnan(v) for entry in one.values() for v in entry.values())


def _interval_of(y, p):
    spec = EvaluationSpec.of("y", "p", moments=True)
    chunk = Chunk({"y": y, "p": p}, (("", len(y)),))
    return intervals(EvaluationStats.from_chunks([chunk], spec).overall().predictions[0])


def test_interval_coverage_by_simulation():
    """Of 300 samples of 400 rows, 91-99% of each metric's 95% intervals cover the truth.

    Residuals ``d ~ N(0.3, 1.5**2)``: MSE ``0.3**2 + 2.25``, bias 0.3, MAE the folded
    normal's mean, RMSE the root of the MSE.
    """
    rng = np.random.default_rng(21)
    mu, sigma = 0.3, 1.5
    truth = {
        "mse": mu**2 + sigma**2,
        "rmse": math.sqrt(mu**2 + sigma**2),
        "bias": mu,
        "mae": sigma * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * sigma**2))
        + mu * math.erf(mu / (sigma * math.sqrt(2))),
    }
    covered = dict.fromkeys(INTERVAL_METRICS, 0)
    samples = 300
    for _ in range(samples):
        y = rng.normal(size=400)
        found = _interval_of(y, y + rng.normal(mu, sigma, 400))
        for name in INTERVAL_METRICS:
            covered[name] += found[name]["low"] <= truth[name] <= found[name]["high"]
    for name, count in covered.items():
        assert 0.91 <= count / samples <= 0.99, (name, count)


def test_standard_errors_agree_with_the_bootstrap():
    """Each metric's standard error is within 10% of a 2,000-resample bootstrap's."""
    rng = np.random.default_rng(22)
    y = FRAME.y.to_numpy()[:1500]
    p = FRAME.p.to_numpy()[:1500]
    d = p - y
    boot = {name: [] for name in INTERVAL_METRICS}
    for _ in range(2000):
        s = d[rng.integers(0, len(d), len(d))]
        mse = float(np.mean(s * s))
        boot["mse"].append(mse)
        boot["rmse"].append(math.sqrt(mse))
        boot["mae"].append(float(np.mean(np.abs(s))))
        boot["bias"].append(float(np.mean(s)))
    found = _interval_of(y, p)
    for name in INTERVAL_METRICS:
        assert found[name]["stderr"] == pytest.approx(np.std(boot[name]), rel=0.1), name


# --- histograms and quantiles -----------------------------------------------------------------


def _reference_bins(d, w=None):
    """Each row's 1/128-binade bin of |d| by math.frexp, signed: {(sign, low): [count, weight]}."""
    w = np.ones_like(d) if w is None else w
    found: dict[tuple[int, Fraction], list] = {}
    for value, weight in zip(d.tolist(), w.tolist(), strict=True):
        magnitude = abs(value)
        if magnitude == 0:
            low = Fraction(0)
        else:
            exponent = math.frexp(magnitude)[1]  # magnitude = m * 2**exponent, 0.5 <= m < 1
            step = Fraction(2) ** (exponent - 1) / 128
            low = step * math.floor(Fraction(magnitude) / step)
        entry = found.setdefault((-1 if value < 0 else 1, low), [0, Fraction(0)])
        entry[0] += 1
        entry[1] += Fraction(weight)
    return found


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_bins_hold_exact_counts_and_weight_sums(weighted):
    """Every bin's count and weight sum equal those of the rows frexp puts there."""
    w = FRAME.w if weighted else None
    histogram = _evaluate(FRAME, 7, weight="w" if weighted else None, histogram=True).histogram()
    expected = _reference_bins((FRAME.p - FRAME.y).to_numpy(), None if w is None else w.to_numpy())
    found = {}
    for entry in histogram.bins(7):
        sign = -1 if entry["high"] <= 0 and entry["low"] < 0 else 1
        low = Fraction(-entry["high"] if sign < 0 else entry["low"])
        found[(sign, low)] = [entry["count"], entry["weight"]]
    expected = {key: [count, float(weight)] for key, (count, weight) in expected.items()}
    assert found == expected
    exact = dict(zip(histogram.codes.tolist(), histogram.bin_weights(), strict=True))
    assert sum(exact.values()) == sum(
        int(Fraction(x) * (1 << FRACTION_BITS))
        for x in (w if w is not None else [1.0] * len(FRAME))
    )


def test_weights_far_apart_are_summed_exactly():
    """Weights over 600 binades (outside any window) and residuals over 400: exact bins."""
    rng = np.random.default_rng(8)
    n = 3000
    d = rng.normal(size=n) * 2.0 ** rng.integers(-200, 200, n)
    w = rng.exponential(size=n) * 2.0 ** rng.integers(-300, 300, n)
    frame = pd.DataFrame({"y": np.zeros(n), "p": d, "w": w})
    histogram = _evaluate(frame, 5, weight="w", histogram=True).histogram()
    assert histogram == Histogram.of_residuals(d, w)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_quantiles_are_within_the_bound_of_numpys(weighted):
    """Each quantile of |d| lies within 1/257 (relative) of numpy's inverted-CDF quantile."""
    w = FRAME.w.to_numpy() if weighted else None
    result = _evaluate(FRAME, 7, weight="w" if weighted else None, histogram=True)
    found = result.quantiles()["abs_error"]
    assert list(found) == ["0.5", "0.9", "0.99", "0.999"]
    magnitude = np.abs(FRAME.p - FRAME.y).to_numpy()
    for level, value in found.items():
        exact = np.quantile(magnitude, float(level), method="inverted_cdf", weights=w)
        bound = float(QUANTILE_RELATIVE_ERROR) * exact * (1 + 2**-50)
        assert abs(value - exact) <= bound, (level, value, exact)


def test_a_zero_quantile_is_zero():
    """A median among mostly exact predictions is exactly 0."""
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0], "p": [1.0, 2.0, 3.0, 4.5, 9.0]})
    assert _evaluate(frame, histogram=True).quantiles()["abs_error"]["0.5"] == 0.0


def _brute_share(d, w, top=Fraction(1, 100)):
    """The exact share of sum(w d**2) of the rows of largest |d| holding ``top`` of the weight."""
    order = np.argsort(-np.abs(d), kind="stable")
    total = sum(Fraction(x) for x in w)
    remaining = top * total
    taken = Fraction(0)
    for index in order.tolist():
        weight = min(Fraction(w[index]), remaining)
        remaining -= weight
        taken += weight * Fraction(d[index]) ** 2
    se = sum(Fraction(x) * Fraction(v) ** 2 for x, v in zip(w, d, strict=True))
    return taken / se


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_share_of_se_bounds_the_brute_force_share(weighted):
    """The exact share of SE of the top 1% lies in [low, high], and high/low <= (129/128)**2."""
    w = FRAME.w.to_numpy() if weighted else np.ones(len(FRAME))
    result = _evaluate(FRAME, 7, weight="w" if weighted else None, histogram=True)
    found = result.se_share()
    exact = _brute_share((FRAME.p - FRAME.y).to_numpy(), w)
    assert Fraction(found["low"]) <= exact <= Fraction(found["high"])
    assert found["high"] / found["low"] <= (129 / 128) ** 2 * (1 + 2**-50)
    assert found["low"] <= found["share"] <= found["high"]


# --- worst rows ---------------------------------------------------------------------------------


def _brute_worst(frame, k, weighted=False, ids=("id",)):
    """The k rows of largest |d| by a full sort with the documented tie-breaks."""
    rows = []
    for row in frame.itertuples(index=False):
        weight = row.w if weighted else 1.0
        if weighted and weight <= 0:
            continue
        d = row.p - row.y
        rows.append(((-abs(d), d, row.y, row.p, weight, *(getattr(row, i) for i in ids)), row, d))
    rows.sort(key=lambda item: item[0])
    found = []
    for _, row, d in rows[:k]:
        entry = {name: getattr(row, name) for name in ids}
        entry.update({"y_true": row.y, "y_pred": row.p, "error": d})
        if weighted:
            entry["weight"] = row.w
        found.append(entry)
    return found


def _ties(n: int = 3000, seed: int = 9) -> pd.DataFrame:
    """Integer data: many rows share each |d|, and some share the whole row but for the id."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n).astype(float)
    return pd.DataFrame(
        {
            "y": y,
            "p": y + rng.integers(-3, 4, n),
            "w": rng.integers(0, 3, n).astype(float),
            "segment": rng.choice(["a", "b"], n),
            "id": rng.permutation(n),
        }
    )


@pytest.mark.parametrize("npartitions", [1, 7, 64])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_worst_rows_equal_a_brute_force_sort_for_any_split(npartitions, weighted):
    """The worst rows, ties included, are the brute-force sort's, for 1, 7 and 64 partitions."""
    frame = _ties()
    result = _evaluate(
        frame, npartitions, weight="w" if weighted else None, worst_k=25, id_columns=["id"]
    )
    assert result.worst() == _brute_worst(frame, 25, weighted)


def test_worst_rows_per_slice_equal_a_brute_force_sort():
    """Each slice's worst rows are the brute-force sort of that slice's rows."""
    frame = _ties()
    result = _evaluate(frame, 7, worst_k=10, id_columns="id", group_by="segment")
    for segment in ("a", "b"):
        rows = frame[frame.segment == segment]
        assert result.worst(key={"segment": segment}) == _brute_worst(rows, 10)


def test_worst_rows_show_string_ids_and_leave_out_skipped_rows():
    """String ids are shown; a row skipped for NaN is never a worst row."""
    frame = FRAME.copy()
    frame.loc[5, "p"] = np.nan
    frame.loc[6, "p"] = 1e6  # the worst by far
    result = _evaluate(frame, 3, worst_k=2, id_columns=["name", "id"], nan_policy="skip")
    worst = result.worst()
    assert worst[0]["name"] == "row-6" and worst[0]["id"] == 42
    assert worst[0]["error"] == 1e6 - frame.y[6]
    assert abs(worst[0]["error"]) == result.metrics["max_error"]


# --- one result for any split -------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_the_same_bits_for_1_7_and_64_partitions(weighted):
    """Histograms, quantiles, shares of SE, intervals and worst rows do not depend on the split."""
    found = []
    for npartitions in (1, 7, 64):
        result = _evaluate(
            FRAME,
            npartitions,
            weight="w" if weighted else None,
            y_pred=["p", "q"],
            group_by="segment",
            histogram=True,
            worst_k=5,
            id_columns="name",
            split_every=3,
        )
        found.append(
            (
                result.histogram("q"),
                result.quantiles("q"),
                result.se_share("q"),
                result.overall.intervals,
                result.worst("q"),
                [s.intervals for s in result.slices],
                result.worst("p", key={"segment": "east"}),
            )
        )
    assert found[0] == found[1] == found[2]
