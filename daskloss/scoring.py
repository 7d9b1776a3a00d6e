"""The driver behind :mod:`daskloss.metrics`: requests, one pass, checks, values.

:func:`score` strings the layers together as :func:`daskloss.evaluate` does:
:func:`~daskloss.sources.arrays.plan_arrays` checks the inputs' metadata and
cuts them into units; each unit's :class:`~daskloss.termstats.PassStats`
(the exact sums of every term the requested metrics need, and the facts the
checks need) is computed in a task of its own;
:func:`~daskloss.reduce.tree_reduce` merges them; then the data checks run in
scikit-learn's order and :mod:`daskloss.formulas` gives each value, rounded
once. However many metrics are requested, the data is read once.

The checks that need no data run when a function is called, with
scikit-learn's messages; those that need data (NaN, zero weights, domains)
run after the pass, in the task that finishes a lazy value. Nothing here
creates a Dask Client: Dask inputs are computed by the active scheduler;
inputs that are all in memory are computed in this process (they are here
already; a cluster would only receive copies of them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from numbers import Real
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize

from daskloss.errors import (
    DataError,
    EmptyDatasetError,
    InvalidParameterError,
    NonFiniteValueError,
    SchemaError,
    warn_undefined_metric,
)
from daskloss.formulas import ValueKind, average_values, output_value, round_value
from daskloss.names import MULTIOUTPUT_OPTIONS
from daskloss.reduce import tree_reduce
from daskloss.roles import output_roles
from daskloss.sources.arrays import ArrayPlan, ArrayUnit, plan_arrays
from daskloss.terms import Term, domain_violated
from daskloss.termstats import PassSpec, PassStats

__all__ = ["METRICS", "Metric", "Request", "check_array_like", "request", "score"]

_MEAN_OPTIONS = MULTIOUTPUT_OPTIONS[:2]  # raw_values, uniform_average
_EXPLAINED_OPTIONS = MULTIOUTPUT_OPTIONS


@dataclass(frozen=True)
class Metric:
    """What a metric function computes.

    Attributes
    ----------
    term : str
        The kind of per-row term whose sums it needs (see :mod:`daskloss.terms`).
    kind : str
        The formula of an output's value (see :func:`daskloss.formulas.output_value`).
    multioutput : tuple of str or None
        The strings ``multioutput`` may be, or None when the function has no
        ``multioutput`` and takes one output only.
    label : str
        How scikit-learn's messages name it.
    """

    term: str
    kind: ValueKind
    multioutput: tuple[str, ...] | None = _MEAN_OPTIONS
    label: str = ""


#: The metric functions, by name.
METRICS: dict[str, Metric] = {
    "mean_squared_error": Metric("residual", "mse"),
    "root_mean_squared_error": Metric("residual", "rmse"),
    "mean_absolute_error": Metric("residual", "mae"),
    "sum_squared_error": Metric("residual", "sse"),
    "l2_norm": Metric("residual", "l2"),
    "max_error": Metric("residual", "max", None, "max_error"),
    "r2_score": Metric("residual", "r2", _EXPLAINED_OPTIONS),
    "explained_variance_score": Metric("residual", "evs", _EXPLAINED_OPTIONS),
    "mean_squared_log_error": Metric("log1p", "mse", label="Mean Squared Logarithmic Error"),
    "root_mean_squared_log_error": Metric(
        "log1p", "rmse", label="Root Mean Squared Logarithmic Error"
    ),
    "mean_absolute_percentage_error": Metric("ape", "mean"),
    "mean_pinball_loss": Metric("pinball", "mean"),
    "mean_tweedie_deviance": Metric("tweedie", "mean", None, "mean_tweedie_deviance"),
    "mean_poisson_deviance": Metric("tweedie", "mean", None, "mean_tweedie_deviance"),
    "mean_gamma_deviance": Metric("tweedie", "mean", None, "mean_tweedie_deviance"),
}
_FIXED_POWER = {"mean_poisson_deviance": 1, "mean_gamma_deviance": 2}


@dataclass(frozen=True)
class Request:
    """One metric to compute, with its parameters (checked by :func:`request`)."""

    name: str
    multioutput: Any = "uniform_average"
    force_finite: bool = True
    alpha: float = 0.5
    power: float = 0

    @property
    def metric(self) -> Metric:
        return METRICS[self.name]

    @property
    def term(self) -> Term:
        kind = self.metric.term
        if kind == "pinball":
            return Term("pinball", float(self.alpha))
        if kind == "tweedie":
            return Term("tweedie", float(self.power)) if self.power != 0 else Term("residual")
        return Term(kind)  # type: ignore[arg-type]

    @property
    def kind(self) -> ValueKind:
        return (
            "mse"
            if self.term.kind == "residual" and self.metric.term == "tweedie"
            else self.metric.kind
        )


def request(name: str, function: str | None = None, **params: Any) -> Request:
    """A :class:`Request` for metric ``name``, its parameters checked as scikit-learn does.

    ``function`` names the function called, in messages (default: ``name``).

    Raises
    ------
    InvalidParameterError
        An unknown metric, or a parameter of the wrong type or out of range.
    """
    if name not in METRICS:
        raise InvalidParameterError(
            f"unknown metric {name!r}; choose one of {', '.join(sorted(METRICS))}"
        )
    function = function or name
    metric = METRICS[name]
    allowed = {"multioutput"} if metric.multioutput is not None else set()
    allowed |= {
        "r2_score": {"force_finite"},
        "explained_variance_score": {"force_finite"},
        "mean_pinball_loss": {"alpha"},
        "mean_tweedie_deviance": {"power"},
    }.get(name, set())
    unknown = set(params) - allowed
    if unknown:
        raise InvalidParameterError(
            f"{name} got unexpected keyword argument(s) {sorted(unknown)}; it takes "
            f"{sorted(allowed) or 'none'}"
        )
    if "multioutput" in params:
        params["multioutput"] = _multioutput(function, params["multioutput"], metric, name)
    if "force_finite" in params and not isinstance(params["force_finite"], (bool, np.bool_)):
        raise _invalid(
            function,
            "force_finite",
            "an instance of 'bool' or an instance of 'numpy.bool'",
            params["force_finite"],
        )
    if "alpha" in params:
        alpha = params["alpha"]
        if not _real(alpha) or not 0 <= alpha <= 1:
            raise _invalid(function, "alpha", "a float in the range [0.0, 1.0]", alpha)
    if "power" in params:
        power = params["power"]
        if not _real(power) or not (power <= 0 or power >= 1) or math.isinf(power):
            raise _invalid(
                function,
                "power",
                "a float in the range (-inf, 0.0] or a float in the range [1.0, inf)",
                power,
            )
    params.setdefault("power", _FIXED_POWER.get(name, 0))
    return Request(name, **params)


def check_array_like(function: str, name: str, value: Any, *, optional: bool = False) -> None:
    """Refuse a scalar where an array-like is due, with scikit-learn's message."""
    if optional and value is None:
        return
    if _is_array_like(value):
        return
    expected = "an array-like or None" if optional else "an array-like"
    raise _invalid(function, name, expected, value)


def score(
    requests: Mapping[str, Request],
    y_true: Any,
    y_pred: Any,
    sample_weight: Any = None,
    *,
    compute: bool = True,
    stacklevel: int = 1,
) -> dict[str, Any]:
    """Every requested metric of the rows, from one pass over them.

    Returns Python floats (NumPy arrays for ``multioutput='raw_values'``), or
    with ``compute=False`` 0-d (1-d) Dask arrays that compute to them. Lazy
    values of equal inputs and terms share their tasks, so ``dask.compute``
    of several of them reads the data once. ``stacklevel`` counts the frames
    from the caller to the user's code, for warnings.
    """
    plan = plan_arrays(y_true, y_pred, sample_weight, tokenized=not compute)
    for item in requests.values():
        _check_outputs(item, plan.n_outputs)
    spec = PassSpec(
        tuple(dict.fromkeys(item.term for item in requests.values())),
        output_roles(plan.n_outputs, plan.weighted),
    )
    token = tokenize(plan.token, spec) if plan.token else None
    stats = tree_reduce(
        plan.units,
        functools.partial(unit_pass, spec=spec),
        PassStats.merge_all,
        name="daskloss-metrics",
        token=token,
    )
    if not compute:
        return {key: _lazy(item, stats, spec, token) for key, item in requests.items()}
    weights = [item.multioutput for item in requests.values()]
    local = not any(dask.is_dask_collection(w) for w in weights)
    merged, weights = dask.compute(
        stats, weights, scheduler=_local_scheduler(plan) if local else None
    )
    values = {}
    for (key, item), found in zip(requests.items(), weights, strict=True):
        item = replace(item, multioutput=found)
        values[key] = finish(item, merged, spec, stacklevel=stacklevel + 2)
    return values


def _local_scheduler(plan: ArrayPlan) -> str | None:
    """Where to compute: here for inputs in memory (no copies to a cluster), else Dask's default.

    One unit runs in this thread; several run on Dask's local threads (the
    kernel releases the GIL).
    """
    if not plan.in_memory:
        return None
    return "sync" if len(plan.units) == 1 else "threads"


def unit_pass(unit: ArrayUnit, spec: PassSpec) -> PassStats:
    """The statistics of one unit's rows (one task)."""
    return PassStats.from_chunks(unit.chunks(), spec)


def finish(item: Request, stats: PassStats, spec: PassSpec, *, stacklevel: int = 3) -> Any:
    """The value of one metric from the merged statistics, after the data checks.

    The checks run in scikit-learn's order: targets, predictions, weights,
    the output weights, the metric's domain.
    """
    _check_inputs(stats, spec)
    weights = _output_weights(item.multioutput)
    term = item.term
    outputs = stats.sums[spec.terms.index(term)]
    _check_domain(item, term, stats, spec)
    if item.name == "r2_score" and stats.rows < 2:
        warn_undefined_metric(
            "R^2 score is not well-defined with less than two samples.", stacklevel
        )
        return math.nan
    values, variances = zip(
        *(output_value(item.kind, sums, force_finite=item.force_finite) for sums in outputs),
        strict=True,
    )
    if item.metric.multioutput is None:
        return round_value(values[0])
    if isinstance(item.multioutput, str) and item.multioutput == "raw_values":
        return np.array([round_value(v) for v in values], dtype=np.float64)
    if isinstance(item.multioutput, str) and item.multioutput == "variance_weighted":
        weights = list(variances) if any(variances) else None
    return average_values(values, weights)


def _lazy(item: Request, stats: Any, spec: PassSpec, token: str | None) -> da.Array:
    """The value as a Dask array, keyed by the inputs' token and the request."""
    raw = isinstance(item.multioutput, str) and item.multioutput == "raw_values"
    shape = (len(spec.roles),) if raw else ()
    name = f"daskloss-{item.name}-{tokenize(token, item)}"
    value = dask.delayed(_finish_shaped, pure=True)(item, stats, spec, shape, dask_key_name=name)
    return da.from_delayed(value, shape=shape, dtype=np.float64, name=f"{name}-array")


def _finish_shaped(item: Request, stats: PassStats, spec: PassSpec, shape: tuple) -> Any:
    """:func:`finish`, with the NaN of R² of one row spread over ``shape`` (raw values)."""
    value = finish(item, stats, spec)
    return np.full(shape, value) if shape and not isinstance(value, np.ndarray) else value


def _check_outputs(item: Request, n_outputs: int) -> None:
    """The checks of ``multioutput`` against the number of outputs (no data needed)."""
    metric = item.metric
    if metric.multioutput is None:
        if n_outputs > 1:
            raise SchemaError(f"Multioutput not supported in {metric.label}")
        return
    weights = item.multioutput
    if weights is None or isinstance(weights, str):
        return
    if n_outputs == 1:
        raise SchemaError("Custom weights are useful only in multi-output cases.")
    if weights.shape[0] != n_outputs:
        raise SchemaError(
            f"There must be equally many custom weights ({weights.shape[0]}) as outputs "
            f"({n_outputs})."
        )


def _check_inputs(stats: PassStats, spec: PassSpec) -> None:
    """scikit-learn's checks of the data: finite values, rows, non-zero weights."""
    if stats.rows == 0:
        raise EmptyDatasetError(
            "Found array with 0 sample(s) while a minimum of 1 is required (the Dask inputs "
            "have no rows)."
        )
    facts = dict(zip(spec.columns, stats.facts, strict=True))
    roles = spec.roles
    for name, columns in (
        ("y_true", [r.y_true for r in roles]),
        ("y_pred", [r.y_pred for r in roles]),
        ("sample_weight", [roles[0].weight] if roles[0].weight else []),
    ):
        nan = sum(facts[c].nan for c in columns)
        infinite = sum(facts[c].infinite for c in columns)
        if nan or infinite:
            input_name = "Input sample_weight" if name == "sample_weight" else "Input"
            found = "NaN" if nan else "infinity or a value too large for dtype('float64')"
            raise NonFiniteValueError(
                f"{input_name} contains {found}. ({name} holds {nan} NaN and {infinite} "
                "infinite value(s); remove or fill them)"
            )
    first = stats.sums[0][0]
    if roles[0].weight and first.positive.weight_sum == first.negative.weight_sum == 0:
        raise DataError("Sample weights must contain at least one non-zero number.")


def _output_weights(weights: Any) -> list | None:
    """Custom output weights as exact fractions, after scikit-learn's finiteness check."""
    if weights is None or isinstance(weights, str):
        return None
    array = np.asarray(weights, dtype=np.float64)
    if not np.isfinite(array).all():
        found = (
            "NaN" if np.isnan(array).any() else "infinity or a value too large for dtype('float64')"
        )
        raise NonFiniteValueError(f"Input contains {found}. (in multioutput)")
    return [Fraction(w) for w in array.tolist()]


def _check_domain(item: Request, term: Term, stats: PassStats, spec: PassSpec) -> None:
    facts = dict(zip(spec.columns, stats.facts, strict=True))
    lowest_true = min(facts[r.y_true].lowest for r in spec.roles)
    lowest_pred = min(facts[r.y_pred].lowest for r in spec.roles)
    if not domain_violated(term, lowest_true, lowest_pred):
        return
    if term.kind == "log1p":
        raise DataError(
            f"{item.metric.label} cannot be used when targets contain values less than or "
            "equal to -1."
        )
    power = item.power
    required = (
        "strictly positive y_pred."
        if power < 0
        else "non-negative y and strictly positive y_pred."
        if power < 2
        else "strictly positive y and y_pred."
    )
    raise DataError(
        f"Mean Tweedie deviance error with power={power} can only be used on {required}"
    )


def _multioutput(function: str, value: Any, metric: Metric, name: str) -> Any:
    """``multioutput`` checked: an allowed string, None for R², or output weights."""
    options = metric.multioutput or ()
    if isinstance(value, str):
        if value in options:
            return value
    elif value is None:
        if name == "r2_score":
            return value
    elif _is_array_like(value):
        return _weights_array(value)
    allowed = "{" + ", ".join(repr(o) for o in options) + "}"
    expected = f"a str among {allowed}, an array-like" + (" or None" if name == "r2_score" else "")
    raise _invalid(function, "multioutput", expected, value)


def _weights_array(value: Any) -> Any:
    """Output weights as a 1-D float64 array (a Dask array stays lazy)."""
    if isinstance(value, da.Array):
        array = value
    else:
        array = np.asarray(value)
        if array.dtype.kind == "c":
            raise SchemaError(f"Complex data not supported\n{array}\n")
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"{exc} (multioutput must hold numbers)") from None
    if array.ndim != 1:
        raise SchemaError(
            f"multioutput weights must be 1-D, one per output; got shape {array.shape}"
        )
    return array


def _is_array_like(value: Any) -> bool:
    """scikit-learn's "array-like": with a length, a shape or ``__array__``, and not a scalar."""
    if isinstance(value, (str, bytes)) or np.isscalar(value):
        return False
    return hasattr(value, "__len__") or hasattr(value, "shape") or hasattr(value, "__array__")


def _real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)


def _invalid(function: str, name: str, expected: str, value: Any) -> InvalidParameterError:
    return InvalidParameterError(
        f"The {name!r} parameter of {function} must be {expected}. Got {value!r} instead."
    )
