"""The exceptions daskloss raises.

Every error a user can cause derives from :class:`DasklossError`, so a job can
catch one type and map it to an exit code. Each subclass takes a single message
argument, which keeps them picklable: they travel back from Dask workers.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DasklossError",
    "DataError",
    "EmptyDatasetError",
    "NonFiniteValueError",
    "ReadError",
    "SchemaError",
]


class DasklossError(Exception):
    """Base class of every error daskloss raises on purpose."""


class ConfigError(DasklossError, ValueError):
    """A job configuration or an argument is invalid (unknown key, wrong type...)."""


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
