"""scikit-learn's ``sklearn/metrics/tests/test_regression.py``, run against daskloss.metrics.

The installed file is executed with the metrics daskloss implements imported
from :mod:`tests.metrics.sklearn_suite` (see there): every call runs
with Dask arrays or Dask DataFrames and with the inputs as given, and the
two results must have the same bits. The other names it
imports (``median_absolute_error``, the ``d2_*`` scores, ``make_scorer``...)
stay scikit-learn's.

Not applicable (skipped, with the reason):

* ``test__check_reg_targets`` and ``test__check_reg_targets_exception`` test
  scikit-learn's private ``_check_reg_targets`` helper, not a metric.
* ``test_regression_single_sample[d2_tweedie_score]`` and ``[d2_pinball_score]``
  call only scikit-learn's D² scores, which daskloss does not implement.

``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` (``all``, ``a-b`` or a seed) runs the
seeded tests over more seeds, as in scikit-learn.
"""

from __future__ import annotations

import pytest

from tests.metrics import sklearn_suite

_MODULE = sklearn_suite.load("test_regression")

#: The tests of scikit-learn 1.9's file: a new or renamed one fails loudly.
TESTS = {
    "test_regression_metrics",
    "test_root_mean_squared_error_multioutput_raw_value",
    "test_multioutput_regression",
    "test_regression_metrics_at_limits",
    "test__check_reg_targets",
    "test__check_reg_targets_exception",
    "test_regression_multioutput_array",
    "test_regression_custom_weights",
    "test_regression_single_sample",
    "test_tweedie_deviance_continuity",
    "test_mean_absolute_percentage_error",
    "test_mean_pinball_loss_on_constant_predictions",
    "test_dummy_quantile_parameter_tuning",
    "test_pinball_loss_relation_with_mae",
}
_PRIVATE = "tests scikit-learn's private _check_reg_targets helper, not a metric"
NOT_APPLICABLE = {
    "test__check_reg_targets": _PRIVATE,
    "test__check_reg_targets_exception": _PRIVATE,
    "test_regression_single_sample[d2_tweedie_score]": "d2_tweedie_score is scikit-learn's",
    "test_regression_single_sample[d2_pinball_score]": "d2_pinball_score is scikit-learn's",
}

globals().update({name: getattr(_MODULE, name) for name in TESTS})


def not_applicable(item: pytest.Item) -> str | None:
    """Why an item cannot apply to daskloss, or None (read by ``conftest.py``)."""
    name = item.originalname if hasattr(item, "originalname") else item.name
    metric = getattr(getattr(item, "callspec", None), "params", {}).get("metric")
    if metric is not None:
        name = f"{name}[{metric.__name__}]"
    return NOT_APPLICABLE.get(name)


def test_the_file_is_the_one_pinned():
    """The file holds the tests listed here, and imports the metrics daskloss replaces."""
    found = {name for name in vars(_MODULE) if name.startswith("test_")}
    assert found == TESTS
    assert sklearn_suite.IMPLEMENTED - _MODULE.REPLACED == {
        "mean_poisson_deviance",
        "mean_gamma_deviance",
    }
