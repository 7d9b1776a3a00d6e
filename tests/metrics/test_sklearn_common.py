"""scikit-learn's ``sklearn/metrics/tests/test_common.py``, its regression items, against daskloss.

The installed file is executed as :mod:`tests.metrics.sklearn_suite` describes,
so its ``REGRESSION_METRICS`` hold daskloss's functions (``r2_score`` as
``partial(r2_score, multioutput="variance_weighted")``, the Tweedie family with
several powers...). This is where scikit-learn tests ``sample_weight`` (unit
weights, integer weights as repeated rows, zero weights as removed rows,
scaling, invalid weights), sample order, 1-D against column and list inputs,
NaN and infinity, single samples, output shuffling and return types.

Only the items about the metrics daskloss implements are collected (those
naming ``median_absolute_error``, the ``d2_*`` scores or a classification
metric would test scikit-learn alone). Not applicable, so not collected
either:

* ``test_array_api_compliance`` and ``test_mixed_array_api_namespace_input_compliance``
  pass array API namespaces (PyTorch, CuPy, ``array_api_strict``) and check the
  result stays in that namespace and device; daskloss takes NumPy, pandas,
  pyarrow and Dask inputs and returns NumPy values.
"""

from __future__ import annotations

import pytest

from tests.metrics import sklearn_suite

_MODULE = sklearn_suite.load("test_common")

#: The tests that name regression metrics, by what names the metric in their parameters.
TESTS = {
    "test_symmetric_metric": "name",
    "test_not_symmetric_metric": "name",
    "test_sample_order_invariance": "name",
    "test_sample_order_invariance_multilabel_and_multioutput": None,
    "test_format_invariance_with_1d_vectors": "name",
    "test_continuous_inf_nan_input": "metric",
    "test_single_sample": "name",
    "test_single_sample_multioutput": "name",
    "test_multioutput_number_of_output_differ": "name",
    "test_multioutput_regression_invariance_to_dimension_shuffling": "name",
    "test_regression_sample_weight_invariance": "name",
    "test_regression_with_invalid_sample_weight": "name",
    "test_multioutput_sample_weight_invariance": "name",
    "test_continuous_multilabel_multioutput_permutations_invariance": "name",
    "test_metrics_dataframe_series": "metric_name",
    "test_returned_value_consistency": "name",
}
#: Tests about regression metrics that cannot apply (see the module docstring); deselected.
NOT_APPLICABLE = {
    "test_array_api_compliance",
    "test_mixed_array_api_namespace_input_compliance",
}
#: The keys of the file's ``ALL_METRICS`` whose functions are daskloss's.
OURS = frozenset(
    name for name, metric in _MODULE.REGRESSION_METRICS.items() if sklearn_suite.is_exported(metric)
)

globals().update({name: getattr(_MODULE, name) for name in TESTS})


def selected(item: pytest.Item) -> bool:
    """Whether an item is about a metric daskloss implements (read by ``conftest.py``)."""
    test = getattr(item, "originalname", item.name)
    if test in NOT_APPLICABLE:
        return False
    if test not in TESTS:
        return True  # this module's own tests
    parameter = TESTS[test]
    if parameter is None:
        return True
    value = item.callspec.params[parameter]
    if isinstance(value, str):
        return value in OURS
    return sklearn_suite.is_exported(value)


def test_the_file_has_the_tests_pinned():
    """The file still holds the tests listed here, and daskloss replaced every metric it has."""
    assert set(TESTS) | NOT_APPLICABLE <= {
        name for name in vars(_MODULE) if name.startswith("test_")
    }
    assert _MODULE.REPLACED == sklearn_suite.IMPLEMENTED
    assert len(OURS) == 15
