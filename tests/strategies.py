"""Shared hypothesis strategies for prediction data."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

#: Finite float64 values over the whole range whose differences cannot overflow.
values = st.floats(
    min_value=-1e307, max_value=1e307, allow_nan=False, allow_infinity=False, width=64
)
#: Values of a few "magnitude classes" so sums cancel and exponents spread widely.
wild_values = st.one_of(
    values,
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-310, 1e300, -1e300, 1e8 + 1, 1e8 - 1]),
    st.floats(min_value=-1e-300, max_value=1e-300, width=64),
)
weights = st.one_of(
    st.floats(min_value=0.0, max_value=1e300, allow_nan=False, width=64),
    st.sampled_from([0.0, 1.0, 5e-324, 0.5]),
)


@st.composite
def rows(draw, min_size: int = 0, max_size: int = 40, weighted: bool | None = None):
    """(y_true, y_pred, weight-or-None) float64 arrays of one common length."""
    n = draw(st.integers(min_size, max_size))
    y_true = np.array(draw(st.lists(wild_values, min_size=n, max_size=n)), dtype=np.float64)
    y_pred = np.array(draw(st.lists(wild_values, min_size=n, max_size=n)), dtype=np.float64)
    if weighted is None:
        weighted = draw(st.booleans())
    weight = (
        np.array(draw(st.lists(weights, min_size=n, max_size=n)), dtype=np.float64)
        if weighted
        else None
    )
    return y_true, y_pred, weight


def split_points(n: int):
    """Sorted cut points that split ``range(n)`` into pieces, empty pieces allowed."""
    return st.lists(st.integers(0, n), max_size=6).map(sorted)
