"""The choice sets of the API and the config, each defined once.

Examples
--------
>>> check_choice("nan_policy", "skip", NAN_POLICIES)
'skip'
>>> check_choice("nan_policy", "bogus", NAN_POLICIES)
Traceback (most recent call last):
...
daskloss.errors.ConfigError: nan_policy must be one of 'error', 'skip'; got 'bogus'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar, get_args

from daskloss.errors import ConfigError

__all__ = [
    "FILE_FORMATS",
    "MAX_WORST_K",
    "METRIC_NAMES",
    "MULTIOUTPUT_OPTIONS",
    "NAN_POLICIES",
    "FileFormat",
    "MultioutputOption",
    "NanPolicy",
    "check_choice",
]

#: The most worst rows a report lists per prediction and slice (``worst_k``): their heaps
#: are allocated up front, and the per-row losses hold every row.
MAX_WORST_K = 10_000

NanPolicy = Literal["error", "skip"]
#: What to do with rows holding NaN or infinity: fail, or leave them out and count them.
NAN_POLICIES: tuple[NanPolicy, ...] = get_args(NanPolicy)

FileFormat = Literal["parquet", "csv"]
#: The file formats a dataset on storage may have.
FILE_FORMATS: tuple[FileFormat, ...] = get_args(FileFormat)

MultioutputOption = Literal["raw_values", "uniform_average", "variance_weighted"]
#: How the functions of :mod:`daskloss.metrics` aggregate outputs, by name (scikit-learn's);
#: ``variance_weighted`` is for R² and explained variance only.
MULTIOUTPUT_OPTIONS: tuple[MultioutputOption, ...] = get_args(MultioutputOption)

#: The metric keys, in report order (their formulas are in :mod:`daskloss.formulas`).
METRIC_NAMES: tuple[str, ...] = (
    "count",
    "weight_sum",
    "se",
    "mse",
    "rmse",
    "l2",
    "ae",
    "mae",
    "max_error",
    "bias",
    "r2",
)

_T = TypeVar("_T")


def check_choice(name: str, value: object, choices: Sequence[_T]) -> _T:
    """``value`` if it is one of ``choices``, else a :class:`ConfigError` naming them."""
    if isinstance(value, str) and value in choices:
        return value  # type: ignore[return-value]
    options = ", ".join(map(repr, choices))
    raise ConfigError(f"{name} must be one of {options}; got {value!r}")
