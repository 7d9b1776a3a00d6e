"""The public API: exported names and the error hierarchy."""

from __future__ import annotations

import daskloss
from daskloss import DataError, EmptyDatasetError, NonFiniteValueError, ReadError, SchemaError


def test_errors_share_one_base_class():
    """Every daskloss error is a DasklossError."""
    for error in (DataError, EmptyDatasetError, NonFiniteValueError, ReadError, SchemaError):
        assert issubclass(error, daskloss.DasklossError)


def test_public_api():
    """The package exports the documented names, each of them real."""
    assert {"evaluate", "ErrorStats", "DasklossError", "EvaluationResult"} <= set(daskloss.__all__)
    assert all(hasattr(daskloss, name) for name in daskloss.__all__)
    assert callable(daskloss.evaluate)


def test_metrics_module_exports_scikit_learns_names():
    """daskloss.metrics exports the documented metric functions, each with sklearn's name."""
    from daskloss import metrics

    assert set(metrics.__all__) >= {
        "mean_squared_error",
        "root_mean_squared_error",
        "mean_absolute_error",
        "max_error",
        "r2_score",
        "explained_variance_score",
        "sum_squared_error",
        "l2_norm",
        "mean_squared_log_error",
        "root_mean_squared_log_error",
        "mean_absolute_percentage_error",
        "mean_pinball_loss",
        "mean_poisson_deviance",
        "mean_gamma_deviance",
        "mean_tweedie_deviance",
        "regression_metrics",
    }
    assert all(callable(getattr(metrics, name)) for name in metrics.__all__)
