"""The compiled kernel's fast paths (window sums per stretch) against exact references.

Unweighted rows are summed in windows of binades per stretch of rows, with
lower windows and then the bins for values under the window, a redo for values
above it, and the row-by-row path for stretches holding a non-finite value.
Weighted rows multiply window limbs; rows with a value outside its window or a
negative weight go through the bins. Each case below forces one of those
branches over several stretches, and every sum must equal its
``fractions.Fraction`` value exactly.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from daskloss._kernel import Accumulator, RowSums, accumulate, accumulate_chunks, jit
from daskloss._kernel.compiled import STRETCH_ROWS
from daskloss.exact import FRACTION_BITS

ROWS = 3 * STRETCH_ROWS + 17  # three whole stretches and a short one


def reference_sums(
    y_true: np.ndarray, y_pred: np.ndarray, weight: np.ndarray | None = None
) -> dict[str, int]:
    """Every sum of the kernel, from Fractions, in its units."""
    w = np.ones_like(y_true) if weight is None else weight
    residual = y_pred - y_true
    finite = np.isfinite(y_true) & np.isfinite(y_pred) & np.isfinite(residual) & np.isfinite(w)
    kept = finite & ~(w < 0)
    columns = (w[kept].tolist(), residual[kept].tolist(), y_true[kept].tolist())
    rows = [tuple(map(Fraction, row)) for row in zip(*columns, strict=True)]
    scale = 1 << FRACTION_BITS

    def units(total: Fraction) -> int:
        assert (total * scale).denominator == 1
        return int(total * scale)

    def total(terms) -> int:
        return units(sum(terms, Fraction(0)))

    return {
        "count": int(kept.sum()),
        "left_out.skipped": int((~finite).sum()),
        "left_out.negative_weight": int((finite & (w < 0)).sum()),
        "weight_sum": total(a for a, _, _ in rows),
        "squared_error": total(a * d * d for a, d, _ in rows),
        "abs_error": total(a * abs(d) for a, d, _ in rows),
        "signed_error": total(a * d for a, d, _ in rows),
        "target_sum": total(a * y for a, _, y in rows),
        "target_squared": total(a * y * y for a, _, y in rows),
        "max_abs_error": max((abs(float(d)) for a, d, _ in rows if a > 0), default=0.0),
    }


def assert_exact(
    sums: RowSums, y_true: np.ndarray, y_pred: np.ndarray, weight: np.ndarray | None = None
) -> None:
    for name, expected in reference_sums(y_true, y_pred, weight).items():
        value = sums
        for part in name.split("."):
            value = getattr(value, part)
        assert value == expected, name


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(20261123)
    normal = rng.standard_normal
    y = 50.0 + 10.0 * normal(ROWS)
    scales = {
        "narrow": 2.0,
        # residuals over 15 binades: values under the window, lower windows
        "wide": 10.0 ** rng.integers(-12, 3, ROWS),
        # over 600 decades: more windows than allowed, the rest go to the bins
        "huge range": 10.0 ** rng.integers(-300, 300, ROWS),
    }
    cases = {name: (y, y + scale * normal(ROWS)) for name, scale in scales.items()}

    # a tiny first residual places the first window far too low: redone above
    tiny_first = y + 2.0 * normal(ROWS)
    tiny_first[0] = y[0] + 2.0**-40 * y[0]
    cases["window redone above"] = (y, tiny_first)

    # subnormals and values near the smallest normals: windows would overlap
    near_zero = normal(ROWS) * 1e-300
    near_zero[::3] = normal(len(near_zero[::3])) * 1e-310
    cases["near zero"] = (near_zero * 0.5, near_zero)

    # mostly exact predictions: zero residuals, which no window needs
    exact = np.round(y)
    with_zeros = exact.copy()
    with_zeros[::11] += 1e-6
    cases["zero residuals"] = (exact, with_zeros)

    # targets of both signs and huge magnitudes: the target windows move
    mixed = normal(ROWS) * 10.0 ** rng.integers(-5, 150, ROWS)
    cases["signed targets"] = (mixed, mixed * (1 + 1e-3 * normal(ROWS)))

    # a NaN and an infinity in the second stretch only: that stretch goes row by row
    bad_pred = y + normal(ROWS)
    bad_pred[STRETCH_ROWS + 5] = np.nan
    bad_true = y.copy()
    bad_true[STRETCH_ROWS + 9] = -np.inf
    cases["non-finite stretch"] = (bad_true, bad_pred)

    # every residual with all 53 mantissa bits set, at the top of its window: the largest
    # limbs, so the per-stretch sums of limb products come closest to 2**64
    full = np.full(ROWS, (2.0 - 2.0**-52) * 2.0**40)
    full[::7] *= -1.0
    cases["all mantissa bits"] = (np.zeros(ROWS), full)
    return cases


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_every_sum_is_exact(name):
    """Each branch of the window path gives the Fraction sums bit for bit."""
    y_true, y_pred = CASES[name]
    assert_exact(accumulate(y_true, y_pred), y_true, y_pred)


@pytest.mark.parametrize("name", list(CASES))
def test_chunking_does_not_change_the_sums(name):
    """Cutting the rows into chunks (stretches start anew in each) changes no sum."""
    y_true, y_pred = CASES[name]
    whole = accumulate(y_true, y_pred)
    cuts = [0, 1, 4095, 4097, 9000, ROWS]
    chunks = [(y_true[a:b], y_pred[a:b], None) for a, b in itertools.pairwise(cuts)]
    assert accumulate_chunks(chunks, weighted=False) == whole


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    spread = rng.uniform(0.5, 2.0, ROWS)
    signed = spread.copy()
    signed[::7] = 0.0
    signed[3::11] = -1.0  # refused: counted as negative weights
    signed[5::13] = -0.0  # a zero weight, not a negative one
    bad = spread.copy()
    bad[2 * STRETCH_ROWS + 3] = np.inf
    return {
        "uniform": spread,
        "zeros and negatives": signed,
        # weights over 40 decades: rows outside the weight window go through the bins
        "huge range": 10.0 ** rng.integers(-20, 20, ROWS) * spread,
        "tiny": spread * 1e-300,
        "non-finite weight": bad,
    }


WEIGHTS = _weights()


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("weights", list(WEIGHTS))
def test_every_weighted_sum_is_exact(name, weights):
    """The weighted window path (products of limbs) gives the Fraction sums bit for bit."""
    y_true, y_pred = CASES[name]
    weight = WEIGHTS[weights]
    assert_exact(accumulate(y_true, y_pred, weight), y_true, y_pred, weight)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_window_paths_equal_the_row_by_row_path(seed, weighted):
    """The window paths and the row-by-row bins (independent code) give the same sums."""
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 3 * STRETCH_ROWS))
    y_true = rng.standard_normal(rows) * 10.0 ** rng.integers(-20, 20, rows)
    y_pred = y_true + rng.standard_normal(rows) * 10.0 ** rng.integers(-30, 10, rows)
    weight = rng.uniform(0, 3, rows) * 10.0 ** rng.integers(-3, 3, rows) if weighted else None
    assert accumulate(y_true, y_pred, weight, path="row") == accumulate(y_true, y_pred, weight)


EXTREMES = """
import numpy as np
from daskloss._kernel import accumulate

big, tiny = np.finfo(np.float64).max, np.finfo(np.float64).smallest_subnormal
rng = np.random.default_rng(0)
rows = 3 * 4096 + 5
columns = [
    np.full(rows, big), np.full(rows, -big), np.full(rows, tiny), np.zeros(rows),
    rng.standard_normal(rows) * 10.0 ** rng.integers(-308, 308, rows),
]
for y_true in columns:
    for y_pred in columns:
        for weight in (None, *(np.abs(c) for c in columns)):
            for first in (np.nan, np.inf, None):
                y = y_true.copy()
                if first is not None:
                    y[0] = first
                accumulate(y, y_pred, weight)
print("in bounds")
"""


def test_kernel_stays_in_bounds_on_extreme_values(tmp_path):
    """Compiled with bounds checks, the largest, smallest and non-finite values index no bin
    outside the accumulators (an out-of-range write would corrupt memory silently)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", EXTREMES], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "in bounds" in done.stdout


def test_kernel_compiles_without_a_cache_where_numba_has_none(monkeypatch, caplog):
    """Where numba finds no writable cache directory, the kernel is compiled uncached, with a hint.

    numba raises at decoration time then ("no locator available"), which used to
    fail the import of daskloss.
    """
    real_njit = jit.njit

    def njit_without_locator(**options):
        if options.pop("cache", False):
            raise RuntimeError("cannot cache function 'add_one': no locator available for file")
        return real_njit(**options)

    monkeypatch.setattr(jit, "njit", njit_without_locator)
    jit._warn_uncached.cache_clear()

    @jit.cached_njit(nogil=True)
    def add_one(x):
        return x + 1

    assert add_one(41) == 42
    assert "set NUMBA_CACHE_DIR" in caplog.text


def _moment_reference(y_true, preds, weight, codes, groups):
    """Each group's moments from Fractions: sum(w**2), sum(w*d**4) per prediction, and the
    cross moments sum(w*d_a**2*d_b**2), sum(w*|d_a|*|d_b|) of the pair (0, 1), in units."""
    scale = 1 << FRACTION_BITS
    found = []
    weights = np.ones_like(y_true) if weight is None else weight
    finite = np.isfinite(y_true) & np.isfinite(weights)
    for p in preds:
        with np.errstate(invalid="ignore", over="ignore"):
            finite &= np.isfinite(p - y_true)
    for g in range(groups):
        rows = (codes == g) & finite
        w = [Fraction(v) for v in weights[rows]]
        d = [[Fraction(v) for v in (p[rows] - y_true[rows]).tolist()] for p in preds]
        sums = [sum(x * x for x in w)]
        sums += [sum(x * v**4 for x, v in zip(w, dj, strict=True)) for dj in d]
        sums += [
            sum(x * a * a * b * b for x, a, b in zip(w, d[0], d[1], strict=True)),
            sum(x * abs(a) * abs(b) for x, a, b in zip(w, d[0], d[1], strict=True)),
        ]
        found.append([int(total * scale) for total in sums])
    return found


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "name",
    ["narrow", "wide", "huge range", "zero residuals", "non-finite stretch", "all mantissa bits"],
)
def test_moments_by_windows_are_exact(name, weighted):
    """Moments summed by window limbs equal Fraction sums and the row path, group by group."""
    y_true, y_pred = CASES[name]
    rng = np.random.default_rng(3)
    other = y_true + rng.standard_normal(ROWS) * np.abs(y_true) * 1e-3
    weight = WEIGHTS["huge range"] if weighted else None
    codes = rng.integers(0, 3, ROWS)
    rows = {}
    for path in ("window", "row"):
        accumulator = Accumulator(2, weighted, path=path, moments=True, pairs=[(0, 1)])
        accumulator.add(y_true, [y_pred, other], weight, codes, 3)
        rows[path] = accumulator.rows()
    assert rows["window"] == rows["row"]
    expected = _moment_reference(y_true, [y_pred, other], weight, codes, 3)
    for row, sums in zip(rows["window"], expected, strict=True):
        # (w², d⁴ of each prediction, the pair's two cross moments) from the flat row
        got = [row[5], row[6 + 4], row[11 + 4], row[16], row[17]]
        assert got == sums
