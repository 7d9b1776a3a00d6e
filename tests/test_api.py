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
