"""The exact arithmetic: sums in the kernel's bins, and correct rounding."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from daskloss._kernel import accumulate
from daskloss.exact import (
    FRACTION_BITS,
    round_ratio,
    round_sqrt_ratio,
    round_sqrt_sum,
    to_fraction,
)
from tests.metrics.reference import round_root_sum
from tests.reference import fraction_float, fraction_sqrt
from tests.strategies import wild_values


def exact_sum(values: np.ndarray) -> int:
    """The kernel's exact sum of finite values: the target sum of rows predicted exactly."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    return accumulate(values, values).target_sum


ADVERSARIAL = [
    np.array([1e300, 1.0, -1e300, 1e-300]),
    np.array([5e-324, -5e-324, 5e-324, 2.2250738585072014e-308, 1e-310]),
    np.array([1.7976931348623157e308, -1.7976931348623157e308, 1e-320]),
    np.array([1e16, 1.0, -1e16, 1.0] * 50),
    np.array([0.1] * 10),
    np.array([], dtype=np.float64),
]


@pytest.mark.parametrize("values", ADVERSARIAL)
def test_exact_sum_matches_fractions(values):
    """exact_sum equals the Fraction sum of the same float64 values."""
    assert to_fraction(exact_sum(values)) == sum(map(Fraction, values.tolist()), Fraction(0))


@given(st.lists(wild_values, max_size=60))
def test_exact_sum_property(values):
    """exact_sum equals the Fraction sum for arbitrary finite floats."""
    array = np.array(values, dtype=np.float64)
    assert to_fraction(exact_sum(array)) == sum(map(Fraction, values), Fraction(0))


@given(st.lists(wild_values, max_size=60))
def test_exact_sum_rounds_like_fsum(values):
    """Rounding the exact sum once gives math.fsum's correctly rounded result."""
    total = exact_sum(np.array(values, dtype=np.float64))
    expected = math.fsum(values)
    assert round_ratio(total, 1 << FRACTION_BITS) == expected


@given(st.integers(-(10**700), 10**700), st.integers(1, 10**700))
def test_round_ratio_matches_fraction(numerator, denominator):
    """round_ratio is float(Fraction) with overflow to infinity."""
    assert round_ratio(numerator, denominator) == fraction_float(Fraction(numerator, denominator))


def test_round_ratio_subnormal_and_overflow():
    """Results in the subnormal range and beyond the float64 range round correctly."""
    assert round_ratio(1, 1 << 1074) == 5e-324
    assert round_ratio(1, 1 << 1076) == 0.0
    assert round_ratio(3, 1 << 1076) == 5e-324
    assert round_ratio(1 << 1024, 1) == math.inf
    assert round_ratio(-(1 << 1024), 1) == -math.inf


@given(st.integers(0, 10**800), st.integers(1, 10**800))
def test_round_sqrt_ratio_matches_reference(numerator, denominator):
    """round_sqrt_ratio is the correctly rounded square root of the exact ratio."""
    expected = fraction_sqrt(Fraction(numerator, denominator))
    assert round_sqrt_ratio(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("numerator", "denominator"),
    [(1, 1 << 2200), (1, 1 << 2148), (3, 1 << 2147), ((1 << 2100) + 1, 1), (1000, 1), (2, 1)],
    ids=["underflow-to-zero", "smallest-subnormal", "subnormal", "overflow", "l2-seed", "sqrt2"],
)
def test_round_sqrt_ratio_extremes(numerator, denominator):
    """Square roots deep in the subnormal range or of huge values are exact."""
    expected = fraction_sqrt(Fraction(numerator, denominator))
    assert round_sqrt_ratio(numerator, denominator) == expected


def test_round_sqrt_ratio_rejects_negative():
    """A negative radicand is a programming error, not a silent NaN."""
    with pytest.raises(ValueError):
        round_sqrt_ratio(-1, 1)


_RADICANDS = st.fractions(min_value=0, max_value=10**30, max_denominator=10**30)


@given(
    st.lists(
        st.tuples(st.fractions(-5, 5, max_denominator=1000), _RADICANDS), min_size=1, max_size=4
    ),
    st.fractions(1, 10, max_denominator=100),
)
def test_round_sqrt_sum_matches_decimal_reference(terms, divisor):
    """round_sqrt_sum is the correctly rounded weighted sum of square roots."""
    if not any(c and q for c, q in terms):
        assert round_sqrt_sum(terms, divisor) == 0.0
        return
    assert round_sqrt_sum(terms, divisor) == round_root_sum(terms, divisor)


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ([(Fraction(1), Fraction(8)), (Fraction(-2), Fraction(2))], 0.0),  # 2√2 - 2√2
        ([(Fraction(1), Fraction(9, 4)), (Fraction(1), Fraction(1, 4))], 2.0),  # rational roots
        ([(Fraction(3), Fraction(2)), (Fraction(-1), Fraction(8))], math.sqrt(2)),  # 3√2 - 2√2
        ([(Fraction(1), Fraction(2)), (Fraction(-1), Fraction(2) + Fraction(1, 2**100))], None),
    ],
    ids=["cancelling", "rational", "combined", "nearly-cancelling"],
)
def test_round_sqrt_sum_of_related_roots(terms, expected):
    """Roots of one square class combine exactly; a near cancellation is still exact."""
    if expected is None:
        expected = round_root_sum(terms, Fraction(1))
        assert expected < 0 and expected > -1e-30
    assert round_sqrt_sum(terms, Fraction(1)) == expected
