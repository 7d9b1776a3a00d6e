"""The exceptions daskloss raises.

Every error a user can cause derives from :class:`DasklossError`, so a job can
catch one type and map it to an exit code. Each subclass takes a single message
argument, which keeps them picklable: they travel back from Dask workers.

The errors of :mod:`daskloss.metrics` also derive from the built-in exception
scikit-learn raises in the same case (``ValueError``, ``TypeError`` for a bad
parameter, ``ZeroDivisionError`` for weights summing to zero), so code written
against scikit-learn keeps catching them.
"""

from __future__ import annotations

import functools
import warnings

__all__ = [
    "ConfigError",
    "DasklossError",
    "DataError",
    "EmptyDatasetError",
    "InvalidParameterError",
    "NonFiniteValueError",
    "ReadError",
    "SchemaError",
    "UndefinedMetricWarning",
    "ZeroWeightError",
    "warn_undefined_metric",
]


class DasklossError(Exception):
    """Base class of every error daskloss raises on purpose."""


class ConfigError(DasklossError, ValueError):
    """A job configuration or an argument is invalid (unknown key, wrong type...)."""


class InvalidParameterError(ConfigError, TypeError):
    """A metric function's argument has the wrong type or value (as scikit-learn's)."""


class DataError(DasklossError, ValueError):
    """The input data cannot give a correct result (bad values, zero weight...)."""


class SchemaError(DataError):
    """A column is missing, not numeric, or typed differently across files."""


class NonFiniteValueError(DataError):
    """NaN or infinity in a target, prediction or weight under ``nan_policy='error'``."""


class EmptyDatasetError(DataError):
    """The dataset holds no files or no rows to evaluate."""


class ReadError(DasklossError, OSError):
    """A file cannot be found, opened or decoded (truncated, corrupt, permissions)."""


class ZeroWeightError(DataError, ZeroDivisionError):
    """The sample weights sum to exactly zero, so a weighted mean is undefined."""


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for the data given (R² of fewer than two samples): it is NaN."""


def warn_undefined_metric(message: str, stacklevel: int = 2) -> None:
    """Warn with :class:`UndefinedMetricWarning`, also a scikit-learn one where installed.

    scikit-learn is imported only here, when a warning is due, so that
    ``pytest.warns(sklearn.exceptions.UndefinedMetricWarning)`` and warning
    filters on either class see it without daskloss depending on scikit-learn.
    """
    warnings.warn(message, _undefined_metric_class(), stacklevel=stacklevel + 1)


@functools.cache
def _undefined_metric_class() -> type[Warning]:
    try:
        from sklearn.exceptions import UndefinedMetricWarning as SklearnWarning
    except ImportError:
        return UndefinedMetricWarning
    return type(
        "UndefinedMetricWarning",
        (UndefinedMetricWarning, SklearnWarning),
        {"__module__": __name__, "__doc__": UndefinedMetricWarning.__doc__},
    )
