"""daskloss: exact, partition-invariant regression metrics over Dask dataframes.

Examples
--------
>>> import dask.dataframe as dd, pandas as pd
>>> import daskloss
>>> frame = pd.DataFrame({"y_true": range(10, 20), "y_pred": range(10)})
>>> daskloss.evaluate(dd.from_pandas(frame, npartitions=2)).metrics["mse"]
100.0
"""

from importlib import metadata as _metadata

from daskloss.errors import (
    ConfigError,
    DasklossError,
    DataError,
    EmptyDatasetError,
    InvalidParameterError,
    NonFiniteValueError,
    ReadError,
    SchemaError,
    UndefinedMetricWarning,
    ZeroWeightError,
)
from daskloss.evaluate import EvaluationResult, evaluate
from daskloss.names import METRIC_NAMES
from daskloss.stats import ErrorStats

try:
    __version__ = _metadata.version("daskloss")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "METRIC_NAMES",
    "ConfigError",
    "DasklossError",
    "DataError",
    "EmptyDatasetError",
    "ErrorStats",
    "EvaluationResult",
    "InvalidParameterError",
    "NonFiniteValueError",
    "ReadError",
    "SchemaError",
    "UndefinedMetricWarning",
    "ZeroWeightError",
    "__version__",
    "evaluate",
]
