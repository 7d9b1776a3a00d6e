"""The public API: exported names and the error hierarchy."""

from __future__ import annotations

from types import ModuleType

import pandas as pd
import pytest

import daskloss
from daskloss import (
    ConfigError,
    DataError,
    EmptyDatasetError,
    NonFiniteValueError,
    ReadError,
    SchemaError,
)


def test_errors_share_one_base_class():
    """Every daskloss error is a DasklossError."""
    for error in (DataError, EmptyDatasetError, NonFiniteValueError, ReadError, SchemaError):
        assert issubclass(error, daskloss.DasklossError)


def test_all_lists_exactly_the_public_names():
    """__all__ is every public name the package defines, and nothing else."""
    modules = {name for name, value in vars(daskloss).items() if isinstance(value, ModuleType)}
    public = {name for name in dir(daskloss) if not name.startswith("_")} - modules
    assert set(daskloss.__all__) == public | {"__version__"}, public ^ set(daskloss.__all__)
    assert {"evaluate", "ErrorStats", "DasklossError", "EvaluationResult"} <= public


FRAME = pd.DataFrame({"y_true": [1.0, 2.0, 3.0], "y_pred": [1.5, 2.0, 2.0], "w": [1.0, 2.0, 1.0]})


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"nan_policy": "bogus"}, ConfigError, "nan_policy must be one of 'error', 'skip'"),
        ({"split_every": 1}, ConfigError, "split_every must be an integer >= 2"),
        ({"split_every": True}, ConfigError, "split_every must be an integer >= 2"),
        ({"split_every": "8"}, ConfigError, "split_every must be an integer >= 2"),
        ({"format": "xlsx"}, ConfigError, "format must be one of 'parquet', 'csv'"),
        ({"y_true": None}, ConfigError, "y_true must be a column name"),
        ({"y_pred": 3}, ConfigError, "y_pred must be a column name"),
        ({"weight": ""}, ConfigError, "weight must be a column name"),
        ({"source": {"y_true": [1.0]}}, ConfigError, "source must be a path"),
        ({"source": 42}, ConfigError, "got int"),
        ({"weight": "nope"}, SchemaError, r"\['nope'\] not found in the DataFrame"),
    ],
)
def test_bad_arguments_are_daskloss_errors(arguments, error, message):
    """Every bad argument to evaluate() is a DasklossError subclass naming it."""
    call = {"source": FRAME, **arguments}
    with pytest.raises(error, match=message) as caught:
        daskloss.evaluate(call.pop("source"), **call)
    assert isinstance(caught.value, daskloss.DasklossError)


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
    functions = {name for name in dir(metrics) if callable(getattr(metrics, name))}
    assert set(metrics.__all__) <= functions
