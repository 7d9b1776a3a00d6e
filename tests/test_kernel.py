"""The compiled kernel's fast path (window sums per stretch) against exact references.

Unweighted rows are summed in windows of binades per stretch of rows, with
lower windows and then the bins for values under the window, a redo for values
above it, and the row-by-row path for stretches holding a non-finite value.
Each case below forces one of those branches over several stretches, and
every sum must equal its ``fractions.Fraction`` value exactly.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from daskloss.kernel import (
    FRACTION_BITS,
    STRETCH_ROWS,
    ChunkSums,
    accumulate,
    accumulate_chunks,
)

ROWS = 3 * STRETCH_ROWS + 17  # three whole stretches and a short one


def reference_sums(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """Every unweighted sum of the kernel, from Fractions, in its units."""
    residual = y_pred - y_true
    finite = np.isfinite(y_true) & np.isfinite(y_pred) & np.isfinite(residual)
    d = [Fraction(v) for v in residual[finite].tolist()]
    y = [Fraction(v) for v in y_true[finite].tolist()]
    scale = 1 << FRACTION_BITS

    def units(total: Fraction) -> int:
        assert (total * scale).denominator == 1
        return int(total * scale)

    return {
        "rows": int(finite.sum()),
        "skipped_rows": int((~finite).sum()),
        "squared_error": units(sum((v * v for v in d), Fraction(0))),
        "positive_error": units(sum((v for v in d if v > 0), Fraction(0))),
        "negative_error": units(-sum((v for v in d if v < 0), Fraction(0))),
        "target_sum": units(sum(y, Fraction(0))),
        "target_squared": units(sum((v * v for v in y), Fraction(0))),
        "max_abs_error": max((abs(float(v)) for v in d), default=0.0),
    }


def assert_exact(sums: ChunkSums, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    for name, expected in reference_sums(y_true, y_pred).items():
        assert getattr(sums, name) == expected, name


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


@pytest.mark.parametrize("seed", range(4))
def test_window_path_equals_weighted_path_with_unit_weights(seed):
    """The unweighted fast path and the row-by-row weighted path agree on the same rows.

    Weight one makes every weighted sum the unweighted one, computed by the
    other (independent) code path.
    """
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 3 * STRETCH_ROWS))
    y_true = rng.standard_normal(rows) * 10.0 ** rng.integers(-20, 20, rows)
    y_pred = y_true + rng.standard_normal(rows) * 10.0 ** rng.integers(-30, 10, rows)
    fast = accumulate(y_true, y_pred)
    rowwise = accumulate(y_true, y_pred, np.ones(rows))
    assert fast == rowwise
