"""Exact regression metrics with scikit-learn's signatures, over NumPy, pandas and Dask data.

Each function here is a drop-in for the function of the same name in
:mod:`sklearn.metrics` (and :mod:`dask_ml.metrics`): the same arguments,
defaults, return types and errors, plus ``compute=False`` for a lazy result.
``sum_squared_error`` and ``l2_norm`` are additions.

>>> from daskloss.metrics import mean_squared_error
>>> mean_squared_error([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])
0.375

**Exact.** Every value is the float64 nearest to the exact value of the
metric over the inputs, so it is the same to the last bit whatever the
chunking, partitioning, worker count or order of the data. The residual of
a row is ``y_pred - y_true`` in float64, as NumPy computes it; from there on
every sum, mean, ratio, square root and average over outputs is exact, and
rounded once. Results differ from scikit-learn's (which rounds at every
step) by a few units in the last place at most, and are equal where
scikit-learn's own float sums happen to be exact.

For the functions whose per-row term is a transcendental formula or a
quotient (``mean_squared_log_error``, ``root_mean_squared_log_error``,
``mean_absolute_percentage_error``, ``mean_pinball_loss`` and the deviances
``mean_tweedie_deviance``, ``mean_poisson_deviance``, ``mean_gamma_deviance``)
"exact" means: each row's term is computed in float64 exactly as scikit-learn
computes it (``log1p``, ``|d| / max(|y|, eps)``, the pinball loss, the unit
deviance), then the weighted sums of those terms are exact and the result is
rounded once. ``mean_tweedie_deviance`` with ``power=0`` is the mean squared
error, exact.

**Inputs.** ``y_true``, ``y_pred`` and ``sample_weight`` may be NumPy arrays,
lists, pandas Series or DataFrames, pyarrow arrays, Dask arrays or Dask
Series and DataFrames, mixed freely when they hold the same rows. A 1-D input
and an ``(n, 1)`` one are both one output and are never broadcast against
each other; rows pair by position, never by index. Dask inputs of unknown
lengths (DataFrames) pair partition by partition, so they need as many
partitions, of equal lengths (columns of one DataFrame always do); a
mismatch is raised when the value is computed. Dask inputs are read once,
in one graph, however many metrics :func:`regression_metrics` computes;
``compute=False`` returns Dask arrays instead, and lazy values of the same
inputs share their tasks, so ``dask.compute(a, b)`` reads the data once as
well. Nothing here creates a Dask Client: the active scheduler runs the
graph (inputs all in memory are computed in this process).

**Differences from scikit-learn.**

* Values are exact (see above); inputs of dtype float32 are computed in
  float64 and ``raw_values`` are always float64 arrays.
* Zero tests are exact: R² and explained variance of a constant target are
  0.0 (or -inf with ``force_finite=False``) even where scikit-learn's rounded
  variance is a tiny non-zero number and its score a huge negative one.
* Negative sample weights are accepted, as in scikit-learn; their rows are
  summed apart and subtracted exactly. Weights summing to exactly zero raise
  :class:`~daskloss.errors.ZeroWeightError` (a ``ZeroDivisionError``).
* A residual or per-row term that overflows float64 gives ``inf`` (or NaN),
  as in scikit-learn; sums of finite terms never overflow (the exact mean of
  ``1e300`` and ``1e300`` is ``1e300``), only a final value beyond the float64
  range rounds to ``inf``. A row of weight 0 counts for nothing, even when its
  term overflows (scikit-learn's ``0 * inf`` makes the result NaN).
* Integers that float64 cannot hold exactly (beyond 2**53) are refused
  instead of rounded.
* ``root_mean_squared_error`` checks ``multioutput`` weights as the other
  functions do.
* Errors derive from :class:`~daskloss.errors.DasklossError` and from the
  built-in exception scikit-learn raises (``ValueError``; ``TypeError`` too
  for a bad parameter); an error that depends on the data of a Dask input is
  raised when the value is computed.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from daskloss.errors import InvalidParameterError
from daskloss.scoring import METRICS, Request, check_array_like, request, score

__all__ = [
    "explained_variance_score",
    "l2_norm",
    "max_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_gamma_deviance",
    "mean_pinball_loss",
    "mean_poisson_deviance",
    "mean_squared_error",
    "mean_squared_log_error",
    "mean_tweedie_deviance",
    "r2_score",
    "regression_metrics",
    "root_mean_squared_error",
    "root_mean_squared_log_error",
    "sum_squared_error",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: The metrics :func:`regression_metrics` computes when none are named.
DEFAULT_METRICS = (
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_absolute_error",
    "r2_score",
    "explained_variance_score",
    "sum_squared_error",
    "l2_norm",
)


#: Parameter descriptions shared by the functions' docstrings (``${name}`` there).
_SHARED_DOCS = {
    "y": """y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Ground truth (correct) target values: NumPy, list, pandas, pyarrow or Dask.
    y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Estimated target values.""",
    "y_one_output": """y_true : array-like of shape (n_samples,)
        Ground truth (correct) target values: NumPy, list, pandas, pyarrow or Dask.
    y_pred : array-like of shape (n_samples,)
        Estimated target values.""",
    "sample_weight": """sample_weight : array-like of shape (n_samples,), default=None
        Sample weights; negative ones are allowed, as in scikit-learn.""",
    "multioutput": """multioutput : {'raw_values', 'uniform_average'} or array-like of shape \
(n_outputs,)
        How to aggregate the outputs' values: each apart, their mean, or their
        mean weighted by the given array.""",
    "compute": """compute : bool, default=True
        False returns a Dask array computing to the value.""",
}


def _document(function: _F) -> _F:
    """Fill the shared parameter descriptions into a function's docstring."""
    function.__doc__ = string.Template(function.__doc__ or "").substitute(_SHARED_DOCS)
    return function


@_document
def mean_squared_error(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> Any:
    """Mean squared error regression loss, exact: ``sum(w * d**2) / sum(w)``.

    Parameters
    ----------
    ${y}
    ${sample_weight}
    ${multioutput}
    ${compute}

    Returns
    -------
    loss : float or ndarray of floats
        One float, or one per output for ``'raw_values'``.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from daskloss.metrics import mean_squared_error
    >>> mean_squared_error([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])
    0.375
    >>> y_true = da.from_array(np.array([[0.5, 1], [-1, 1], [7, -6]]), chunks=2)
    >>> mean_squared_error(y_true, [[0, 2], [-1, 2], [8, -5]], multioutput="raw_values")
    array([0.41666667, 1.        ])
    >>> mean_squared_error(y_true, [[0, 2], [-1, 2], [8, -5]], compute=False).compute()
    0.7083333333333334
    """
    return _one(
        "mean_squared_error", y_true, y_pred, sample_weight, compute, multioutput=multioutput
    )


@_document
def root_mean_squared_error(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> Any:
    """Root mean squared error, exact: ``sqrt(sum(w * d**2) / sum(w))`` rounded once.

    With several outputs the average is over the outputs' RMSEs (as in
    scikit-learn), and is itself correctly rounded.

    Parameters
    ----------
    ${y}
    ${sample_weight}
    ${multioutput}
    ${compute}

    Returns
    -------
    loss : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import root_mean_squared_error
    >>> root_mean_squared_error([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])
    0.6123724356957945
    """
    return _one(
        "root_mean_squared_error", y_true, y_pred, sample_weight, compute, multioutput=multioutput
    )


@_document
def mean_absolute_error(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> Any:
    """Mean absolute error regression loss, exact: ``sum(w * |d|) / sum(w)``.

    Parameters
    ----------
    ${y}
    ${sample_weight}
    ${multioutput}
    ${compute}

    Returns
    -------
    loss : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import mean_absolute_error
    >>> mean_absolute_error([[0.5, 1], [-1, 1], [7, -6]], [[0, 2], [-1, 2], [8, -5]])
    0.75
    >>> mean_absolute_error([[0.5, 1], [-1, 1], [7, -6]], [[0, 2], [-1, 2], [8, -5]],
    ...                     multioutput=[0.3, 0.7])
    0.85
    """
    return _one(
        "mean_absolute_error", y_true, y_pred, sample_weight, compute, multioutput=multioutput
    )


@_document
def sum_squared_error(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> Any:
    """The sum of squared errors, exact: ``sum(w * d**2)`` (not in scikit-learn).

    Parameters
    ----------
    ${y}
    ${sample_weight}
    ${multioutput}
    ${compute}

    Returns
    -------
    loss : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import sum_squared_error
    >>> sum_squared_error([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])
    1.5
    """
    return _one(
        "sum_squared_error", y_true, y_pred, sample_weight, compute, multioutput=multioutput
    )


@_document
def l2_norm(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> Any:
    """The L2 norm of the errors, exact: ``sqrt(sum(w * d**2))`` rounded once (not in scikit-learn).

    NaN when negative weights make the sum of squares negative.

    Parameters
    ----------
    ${y}
    ${sample_weight}
    ${multioutput}
    ${compute}

    Returns
    -------
    norm : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import l2_norm
    >>> l2_norm(list(range(10, 20)), list(range(10)))
    31.622776601683793
    """
    return _one("l2_norm", y_true, y_pred, sample_weight, compute, multioutput=multioutput)


@_document
def max_error(y_true: Any, y_pred: Any, *, compute: bool = True) -> Any:
    """The maximum residual error ``max |d|``, for one output.

    Parameters
    ----------
    ${y_one_output}
    ${compute}

    Returns
    -------
    max_error : float

    Examples
    --------
    >>> from daskloss.metrics import max_error
    >>> max_error([3, 2, 7, 1], [4, 2, 7, 1])
    1.0
    """
    return _one("max_error", y_true, y_pred, None, compute)


@_document
def r2_score(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    force_finite: bool = True,
    compute: bool = True,
) -> Any:
    """R² (coefficient of determination), exact: ``1 - SE / SST`` rounded once.

    ``SE = sum(w * d**2)`` and ``SST = sum(w * (y - mean(y))**2)``, both exact,
    so a constant target is recognised exactly: its score is 1.0 for perfect
    predictions, else 0.0 (NaN and -inf with ``force_finite=False``). Fewer than
    two samples give NaN with an :class:`~daskloss.errors.UndefinedMetricWarning`
    (also scikit-learn's, when installed).

    Parameters
    ----------
    ${y}
    ${sample_weight}
    multioutput : {'raw_values', 'uniform_average', 'variance_weighted'}, array-like or None
        How to aggregate the outputs' scores; ``'variance_weighted'`` weighs
        them by their targets' variance, None is ``'uniform_average'``.
    force_finite : bool, default=True
        Replace the NaN and -inf scores of a constant target by 1.0 and 0.0.
    ${compute}

    Returns
    -------
    z : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import r2_score
    >>> r2_score([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])  # 443/467; scikit-learn: ...679
    0.9486081370449678
    >>> r2_score([-2, -2, -2], [-2, -2, -2 + 1e-8], force_finite=False)
    -inf
    """
    return _one(
        "r2_score",
        y_true,
        y_pred,
        sample_weight,
        compute,
        multioutput=multioutput,
        force_finite=force_finite,
    )


@_document
def explained_variance_score(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    force_finite: bool = True,
    compute: bool = True,
) -> Any:
    """Explained variance, exact: ``1 - Var(d) / Var(y)`` rounded once.

    Parameters
    ----------
    ${y}
    ${sample_weight}
    multioutput : {'raw_values', 'uniform_average', 'variance_weighted'} or array-like
        How to aggregate the outputs' scores.
    force_finite : bool, default=True
        Replace the NaN and -inf scores of a constant target by 1.0 and 0.0.
    ${compute}

    Returns
    -------
    score : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import explained_variance_score
    >>> explained_variance_score([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])
    0.9571734475374732
    """
    return _one(
        "explained_variance_score",
        y_true,
        y_pred,
        sample_weight,
        compute,
        multioutput=multioutput,
        force_finite=force_finite,
    )


@_document
def mean_squared_log_error(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> Any:
    """Mean squared logarithmic error: the exact mean of ``(log1p(y_pred) - log1p(y_true))**2``.

    ``log1p`` is NumPy's float64 value; the difference and its exact square
    are then summed exactly. Values must be greater than -1.

    Parameters
    ----------
    ${y}
    ${sample_weight}
    ${multioutput}
    ${compute}

    Returns
    -------
    loss : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import mean_squared_log_error
    >>> round(mean_squared_log_error([3, 5, 2.5, 7], [2.5, 5, 4, 8]), 6)
    0.03973
    """
    return _one(
        "mean_squared_log_error", y_true, y_pred, sample_weight, compute, multioutput=multioutput
    )


@_document
def root_mean_squared_log_error(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> Any:
    """Root mean squared logarithmic error: the square root of :func:`mean_squared_log_error`.

    Parameters
    ----------
    ${y}
    ${sample_weight}
    ${multioutput}
    ${compute}

    Returns
    -------
    loss : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import root_mean_squared_log_error
    >>> round(root_mean_squared_log_error([3, 5, 2.5, 7], [2.5, 5, 4, 8]), 6)
    0.199324
    """
    return _one(
        "root_mean_squared_log_error",
        y_true,
        y_pred,
        sample_weight,
        compute,
        multioutput=multioutput,
    )


@_document
def mean_absolute_percentage_error(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> Any:
    """Mean absolute percentage error: the exact mean of ``|y_pred - y_true| / max(|y_true|, eps)``.

    Each row's quotient is NumPy's float64 value (``eps`` is float64's machine
    epsilon), the mean is exact. As in scikit-learn, the result is a fraction
    (0.2 for 20 %), large rather than infinite where ``y_true`` is 0.

    Parameters
    ----------
    ${y}
    ${sample_weight}
    ${multioutput}
    ${compute}

    Returns
    -------
    loss : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import mean_absolute_percentage_error
    >>> mean_absolute_percentage_error([1, 10, 1e6], [0.9, 15, 1.2e6])
    0.26666666666666666
    """
    return _one(
        "mean_absolute_percentage_error",
        y_true,
        y_pred,
        sample_weight,
        compute,
        multioutput=multioutput,
    )


@_document
def mean_pinball_loss(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    alpha: float = 0.5,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> Any:
    """Pinball (quantile) loss: the exact mean of scikit-learn's per-row loss.

    A row's loss is ``alpha * (y_true - y_pred)`` when ``y_true >= y_pred``,
    else ``(alpha - 1) * (y_true - y_pred)``, in float64 as scikit-learn
    computes it (exact for ``alpha=0.5``, so the loss is then exactly half the
    mean absolute error).

    Parameters
    ----------
    ${y}
    ${sample_weight}
    alpha : float in [0, 1], default=0.5
        The quantile whose estimators the loss rates.
    ${multioutput}
    ${compute}

    Returns
    -------
    loss : float or ndarray of floats

    Examples
    --------
    >>> from daskloss.metrics import mean_pinball_loss
    >>> mean_pinball_loss([1, 2, 3], [0, 2, 3], alpha=0.1)
    0.03333333333333333
    >>> mean_pinball_loss([1, 2, 3], [0, 2, 3], alpha=0.9)
    0.3
    """
    return _one(
        "mean_pinball_loss",
        y_true,
        y_pred,
        sample_weight,
        compute,
        alpha=alpha,
        multioutput=multioutput,
    )


@_document
def mean_tweedie_deviance(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    power: float = 0,
    compute: bool = True,
) -> Any:
    """Mean Tweedie deviance: the exact mean of scikit-learn's per-row unit deviance.

    ``power=0`` is the (exact) mean squared error; other powers compute each
    row's deviance in float64 as scikit-learn does, then its exact mean.

    Parameters
    ----------
    ${y_one_output}
    ${sample_weight}
    power : float, default=0
        The Tweedie power, ``<= 0`` or ``>= 1``: 1 is Poisson (``y_true >= 0``,
        ``y_pred > 0``), 2 Gamma (both ``> 0``); below 0 needs ``y_pred > 0``.
    ${compute}

    Returns
    -------
    loss : float

    Examples
    --------
    >>> from daskloss.metrics import mean_tweedie_deviance
    >>> round(mean_tweedie_deviance([2, 0, 1, 4], [0.5, 0.5, 2.0, 2.0], power=1), 6)
    1.426015
    """
    return _one("mean_tweedie_deviance", y_true, y_pred, sample_weight, compute, power=power)


@_document
def mean_poisson_deviance(
    y_true: Any, y_pred: Any, *, sample_weight: Any = None, compute: bool = True
) -> Any:
    """Mean Poisson deviance: :func:`mean_tweedie_deviance` with ``power=1``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground truth (correct) target values, ``>= 0``.
    y_pred : array-like of shape (n_samples,)
        Estimated target values, ``> 0``.
    ${sample_weight}
    ${compute}

    Returns
    -------
    loss : float

    Examples
    --------
    >>> from daskloss.metrics import mean_poisson_deviance
    >>> round(mean_poisson_deviance([2, 0, 1, 4], [0.5, 0.5, 2.0, 2.0]), 6)
    1.426015
    """
    return _one("mean_poisson_deviance", y_true, y_pred, sample_weight, compute)


@_document
def mean_gamma_deviance(
    y_true: Any, y_pred: Any, *, sample_weight: Any = None, compute: bool = True
) -> Any:
    """Mean Gamma deviance: :func:`mean_tweedie_deviance` with ``power=2``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground truth (correct) target values, ``> 0``.
    y_pred : array-like of shape (n_samples,)
        Estimated target values, ``> 0``.
    ${sample_weight}
    ${compute}

    Returns
    -------
    loss : float

    Examples
    --------
    >>> from daskloss.metrics import mean_gamma_deviance
    >>> round(mean_gamma_deviance([2, 0.5, 1, 4], [0.5, 0.5, 2.0, 2.0]), 6)
    1.056853
    """
    return _one("mean_gamma_deviance", y_true, y_pred, sample_weight, compute)


def regression_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    metrics: Sequence[str] | Mapping[str, str | tuple[str, Mapping[str, Any]]] | None = None,
    sample_weight: Any = None,
    multioutput: Any = "uniform_average",
    compute: bool = True,
) -> dict[str, Any]:
    """Several metrics from one pass over the data.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        As for the metric functions.
    metrics : sequence of str, or mapping, optional
        The names of the metric functions of this module to compute, keyed by
        their names in the result; or a mapping from result keys to a name or
        a ``(name, parameters)`` pair, to pass parameters (``alpha``,
        ``power``, ``force_finite``, ``multioutput``). Default: MSE, RMSE,
        MAE, R², explained variance, the sum of squared errors and the L2 norm.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights, for every metric that takes them. ``max_error``, which
        takes none, is then the largest ``|d|`` over the rows of non-zero weight.
    multioutput : str, array-like or None, default='uniform_average'
        For every metric that has the parameter, unless given in its parameters.
    compute : bool, default=True
        False returns a dict of Dask arrays sharing one graph.

    Returns
    -------
    dict
        The metrics' values, keyed as asked.

    Examples
    --------
    >>> import dask.dataframe as dd, pandas as pd
    >>> from daskloss.metrics import regression_metrics
    >>> frame = dd.from_pandas(pd.DataFrame({"y": [3, -0.5, 2, 7], "p": [2.5, 0, 2, 8]}),
    ...                        npartitions=2)
    >>> regression_metrics(frame.y, frame.p, metrics=["mean_squared_error", "r2_score"])
    {'mean_squared_error': 0.375, 'r2_score': 0.9486081370449678}
    >>> losses = regression_metrics(
    ...     frame.y, frame.p,
    ...     metrics={"q25": ("mean_pinball_loss", {"alpha": 0.25}), "max": "max_error"})
    >>> losses["q25"], losses["max"]
    (0.3125, 1.0)
    """
    _check_inputs("regression_metrics", y_true, y_pred, sample_weight)
    _check_compute("regression_metrics", compute)
    requests = {
        key: _request(name, params, multioutput) for key, (name, params) in _named(metrics).items()
    }
    return score(requests, y_true, y_pred, sample_weight, compute=compute, stacklevel=2)


def _one(
    name: str, y_true: Any, y_pred: Any, sample_weight: Any, compute: bool, **params: Any
) -> Any:
    _check_inputs(name, y_true, y_pred, sample_weight)
    _check_compute(name, compute)
    item = request(name, **params)
    found = score({name: item}, y_true, y_pred, sample_weight, compute=compute, stacklevel=3)
    return found[name]


def _check_inputs(function: str, y_true: Any, y_pred: Any, sample_weight: Any) -> None:
    check_array_like(function, "y_true", y_true)
    check_array_like(function, "y_pred", y_pred)
    check_array_like(function, "sample_weight", sample_weight, optional=True)


def _check_compute(function: str, compute: Any) -> None:
    if not isinstance(compute, bool):
        raise InvalidParameterError(
            f"The 'compute' parameter of {function} must be an instance of 'bool'. "
            f"Got {compute!r} instead."
        )


def _named(
    metrics: Sequence[str] | Mapping[str, Any] | None,
) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """``metrics`` as ``{key: (name, parameters)}``."""
    if metrics is None:
        metrics = DEFAULT_METRICS
    if isinstance(metrics, str):
        raise InvalidParameterError(
            f"metrics must be a sequence of metric names or a mapping; got the string {metrics!r}"
        )
    if not isinstance(metrics, Mapping):
        metrics = {name: name for name in metrics}
    named = {}
    for key, spec in metrics.items():
        name, params = (spec, {}) if isinstance(spec, str) else spec
        named[key] = (name, params)
    return named


def _request(name: str, params: Mapping[str, Any], multioutput: Any) -> Request:
    params = dict(params)
    if name in METRICS and METRICS[name].multioutput is not None:
        params.setdefault("multioutput", multioutput)
    return request(name, "regression_metrics", **params)
