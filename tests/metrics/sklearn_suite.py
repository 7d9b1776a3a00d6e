"""scikit-learn's own metric tests, run against :mod:`daskloss.metrics`.

:func:`load` reads a test module of the *installed* scikit-learn (never a
copy), rewrites its ``from sklearn.metrics import (...)`` so that the names
daskloss implements come from :mod:`tests.metrics.sklearn_suite` instead, and
executes it as a fresh module whose tests the test modules here re-export.
The rewrite happens before execution because ``parametrize`` lists capture
the functions when the module runs.

The functions exported here call daskloss twice: with the inputs wrapped as
Dask collections (Dask arrays of about three row chunks after an empty one,
and Dask Series or DataFrames of up to three partitions, by turns from one
call to the next), and with the inputs as the tests give them (NumPy arrays,
lists...). The two results must have the same bits (or both calls raise the
same error), and the test's own assertions see the Dask result: the
partition invariance is checked on every call the tests make, and the tests
pass for both kinds of input.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import math
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd

import daskloss.metrics

#: The names of :mod:`sklearn.metrics` that daskloss implements.
IMPLEMENTED = frozenset(daskloss.metrics.__all__) - {
    "sum_squared_error",
    "l2_norm",
    "regression_metrics",
}
#: Calls made, and those whose inputs were wrapped as Dask arrays and as Dask DataFrames.
CALLS = {"all": 0, "dask-array": 0, "dask-frame": 0}


def load(module: str) -> types.ModuleType:
    """Execute the installed ``sklearn.metrics.tests.<module>`` with daskloss's functions.

    The executed module's ``REPLACED`` holds the names that were rewritten.
    """
    spec = importlib.util.find_spec(f"sklearn.metrics.tests.{module}")
    assert spec is not None and spec.origin is not None
    with open(spec.origin, encoding="utf-8") as file:
        tree = ast.parse(file.read(), spec.origin)
    rewrite = _Rewrite(__name__)
    tree = ast.fix_missing_locations(rewrite.visit(tree))
    executed = types.ModuleType(f"sklearn_{module}_with_daskloss")
    executed.__file__ = spec.origin
    sys.modules[executed.__name__] = executed
    exec(compile(tree, spec.origin, "exec"), executed.__dict__)  # line numbers stay sklearn's
    executed.REPLACED = frozenset(rewrite.replaced)
    return executed


class _Rewrite(ast.NodeTransformer):
    """Split ``from sklearn.metrics import ...``: implemented names come from ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.replaced: set[str] = set()

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        if node.module != "sklearn.metrics":
            return node
        ours = [alias for alias in node.names if alias.name in IMPLEMENTED]
        theirs = [alias for alias in node.names if alias.name not in IMPLEMENTED]
        self.replaced |= {alias.name for alias in ours}
        statements = []
        if theirs:
            statements.append(ast.ImportFrom(module="sklearn.metrics", names=theirs, level=0))
        if ours:
            statements.append(ast.ImportFrom(module=self.target, names=ours, level=0))
        return [ast.copy_location(statement, node) for statement in statements]


def _exported(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(y_true: Any, y_pred: Any, *args: Any, **kwargs: Any) -> Any:
        CALLS["all"] += 1
        kind = ("dask-array", "dask-frame")[CALLS["all"] % 2]
        wrapped = {"y_true": _as_dask(y_true, kind), "y_pred": _as_dask(y_pred, kind)}
        if kwargs.get("sample_weight") is not None:
            wrapped["sample_weight"] = _as_dask(kwargs["sample_weight"], kind)
        if all(value is None for value in wrapped.values()):
            return function(y_true, y_pred, *args, **kwargs)
        CALLS[kind] += 1
        given = {"y_true": y_true, "y_pred": y_pred, **kwargs}
        given.update((key, value) for key, value in wrapped.items() if value is not None)
        as_given = functools.partial(_quietly, function, y_true, y_pred, *args, **kwargs)
        try:
            result = function(given.pop("y_true"), given.pop("y_pred"), *args, **given)
        except Exception as error:
            try:
                as_given()
            except type(error):
                raise error from None  # the same error either way: the test sees the Dask one
            raise AssertionError(
                f"{kind} inputs raised {error!r}, the inputs as given did not"
            ) from error
        try:
            expected = as_given()
        except Exception as error:
            raise AssertionError(
                f"the inputs as given raised {error!r}, {kind} inputs did not"
            ) from error
        assert same_bits(result, expected), (
            f"{function.__name__}: {kind} inputs gave {result!r}, the inputs as given {expected!r}"
        )
        return result

    return call


def _quietly(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def same_bits(a: Any, b: Any) -> bool:
    """Whether two results are the same floats (NaN equal to NaN), of the same type."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and bool((a.view(np.int64) == b.view(np.int64)).all())
        )
    return (math.isnan(a) and math.isnan(b)) or np.float64(a).view(np.int64) == np.float64(b).view(
        np.int64
    )


def _as_dask(value: Any, kind: str) -> Any:
    """``value`` as a Dask collection of ``kind``, or None when it stays as it is."""
    if not isinstance(value, (list, tuple, np.ndarray)):
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "biuf" or array.ndim not in (1, 2) or len(array) == 0:
        return None
    n = len(array)
    if kind == "dask-array":  # about three row chunks, after an empty one
        step = max(1, -(-n // 3))
        rows = (0, *[min(step, n - start) for start in range(0, n, step)])
        return da.from_array(array, chunks=(rows, *array.shape[1:]))
    partitions = min(3, n)
    if array.ndim == 1:
        return dd.from_pandas(pd.Series(array), npartitions=partitions, sort=False)
    frame = pd.DataFrame(array, columns=[f"c{j}" for j in range(array.shape[1])])
    return dd.from_pandas(frame, npartitions=partitions, sort=False)


#: The functions the rewritten test modules import, by name.
EXPORTED = {name: _exported(getattr(daskloss.metrics, name)) for name in sorted(IMPLEMENTED)}
globals().update(EXPORTED)


def is_exported(metric: object) -> bool:
    """Whether ``metric`` is one of :data:`EXPORTED` (or a ``functools.partial`` of one)."""
    function = metric.func if isinstance(metric, functools.partial) else metric
    return any(function is exported for exported in EXPORTED.values())
