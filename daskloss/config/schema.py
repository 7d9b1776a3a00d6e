"""The job config's schema: typed frozen dataclasses, each value checked.

A job config is a TOML file with these tables (only ``[dataset]`` and
``[columns]`` are required)::

    [dataset]
    path = "sample/"            # file, directory, glob or fsspec URL (required)
    format = "parquet"          # "parquet" or "csv"; omitted = inferred from the names
    storage_options = {}        # fsspec options: endpoint, credentials...

    [columns]
    y_true = "y_true"           # required
    y_pred = "y_pred"           # required; or a list: several models on the same rows
    weight = "weight"           # optional; omitted = every row weighs 1

    [evaluation]
    nan_policy = "error"        # "error" or "skip"
    metrics = ["mse", "rmse"]   # subset of daskloss.METRIC_NAMES; omitted = all
    split_every = 8             # fan-in of the merge tree; omitted = the default (8)
    group_by = ["segment"]      # slice key columns (or hive directories); omitted = none
    min_slice_count = 100       # smaller slices are folded into one "other" entry
    baseline = "y_pred_old"     # the prediction the others are compared with (default: first)
    intervals = true            # standard errors and 95% intervals of mse, rmse, mae, bias
    histogram = true            # residual histogram: quantiles of |d|, share of SE of the top 1%
    worst_k = 10                # the rows of largest |d| listed, overall and per slice (0: none)
    id_columns = ["id"]         # columns shown with each worst row (and in the per-row losses)

    [output]
    path = "report.json"        # local path or fsspec URL; omitted = no report file
    format = "json"
    storage_options = {}        # fsspec options for a URL path
    table_slices = 20           # slices the terminal table shows: the worst by table_metric
    table_metric = "mse"
    html = "report.html"        # a self-contained HTML page of the report; omitted = none
    losses = "losses/"          # a directory for the per-row losses (Parquet); omitted = none

    [cluster]
    address = ""                # "" = embedded default; else e.g. "tcp://host:8786"
    n_workers = 2               # embedded only: a LocalCluster of worker processes
    threads_per_worker = 2      # embedded only: threads (per worker process)
    connect_timeout = 30        # seconds to reach the scheduler and find a worker
    stall_timeout = 300         # seconds without a finished task before giving up

    [cache]
    path = "cache/"             # keep each file's statistics here; read only new files
    storage_options = {}        # fsspec options for a URL path

    [[gates]]                   # quality gates, any number: a failed one exits 5
    metric = "mse"              # required: a metric name
    prediction = "y_pred"       # default: the first prediction
    slice = {segment = "online"}  # default: every row
    max = 6000.0                # bounds on the value, inclusive
    min = 0.0
    baseline = "y_pred_old"     # a prediction of this run, or...
    baseline_file = "reports/baseline.json"  # ...a report or statistics artifact
    max_change = 0.0            # bounds on value - baseline
    min_change = -1.0
    max_relative_change = 0.05  # bounds on (value - baseline) / |baseline|
    min_relative_change = -0.5
    excludes_zero = true        # the comparison's 95% interval must exclude zero

Also ``dataset.window = {partition = "day", last = 7}`` (the files of the last
7 ``day=`` directories) and ``output.stats`` (where to write the statistics
artifact). ``output.path``, ``output.stats``, ``output.html`` and
``output.losses`` may hold ``{date}`` and ``{run_id}``, expanded when the job
runs (see :mod:`daskloss.runs`).

Every value is checked up front, before any data is read: an unknown key, a
wrong type or a missing required key is a one-line :class:`ConfigError`
naming the key and where the value came from. A key whose default is none,
set to ``""``, counts as unset, so ``--set columns.weight=`` removes a weight column. TOML
has no tags or code of any kind, so a config can only ever hold data.

Relative local paths (``dataset.path``, ``output.path``, ``output.stats``,
``output.html``, ``output.losses``, ``cache.path``, a gate's
``baseline_file``) are resolved against the current working directory and
stored absolute, so that workers with another working directory read the same
files. URLs are kept as given.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from types import MappingProxyType
from typing import Any

from daskloss.errors import ConfigError
from daskloss.formulas import COMPARED_METRICS
from daskloss.names import FILE_FORMATS, MAX_WORST_K, METRIC_NAMES, NAN_POLICIES
from daskloss.policy import (
    SchedulerAddressError,
    check_scheduler_address,
    hide_secrets,
    redact_text,
    redact_url,
    removed_secrets,
)

__all__ = [
    "CacheSettings",
    "ClusterSettings",
    "ColumnSettings",
    "DatasetSettings",
    "EvaluationSettings",
    "GateSettings",
    "OutputSettings",
    "Settings",
    "parse_settings",
    "redacted",
    "secret_values",
    "settings_digest",
]

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60


class _Invalid(Exception):
    """A value failed a check: what was expected and, optionally, the culprit found."""

    def __init__(self, expected: str, *, found: Any = MISSING) -> None:
        super().__init__(expected)
        self.found = found


Check = Callable[[Any], Any]


def _setting(check: Check, default: Any = MISSING, factory: Any = MISSING) -> Any:
    return field(default=default, default_factory=factory, metadata={"check": check})


def _secret_setting(check: Check, factory: Any) -> Any:
    """A setting that may hold credentials: left out of ``repr``."""
    return field(default_factory=factory, repr=False, metadata={"check": check, "secret": True})


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid("expected a string")
    if not value.strip():
        raise _Invalid("expected a non-empty string")
    return value


def _path(value: Any) -> str:
    if "\0" in _text(value):
        raise _Invalid("expected a path without NUL characters")
    return value


def _output_path(value: Any) -> str:
    if _path(value).lower().startswith("memory://"):
        raise _Invalid(
            "expected a place that outlives the job: memory:// keeps nothing once the job ends; "
            "give a local path or an object-store URL"
        )
    return value


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid('expected a string ("" for the embedded default)')
    try:
        return check_scheduler_address(value)
    except SchedulerAddressError as exc:
        raise _Invalid(f'{exc}; or "" for the embedded default', found=redact_url(value)) from None


def _choice(*options: str) -> Check:
    def check(value: Any) -> str:
        if value not in options:
            raise _Invalid(f"expected one of {', '.join(map(repr, options))}")
        return value

    return check


def _integer(minimum: int, maximum: int | None = None) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _Invalid(f"expected an integer >= {minimum}")
        if maximum is not None and value > maximum:
            raise _Invalid(f"expected an integer from {minimum} to {maximum}")
        return value

    return check


#: The longest wait a setting may ask for: a day. A wait is a deadline, never "forever".
MAX_SECONDS = 86_400.0


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid("expected a number of seconds")
    if not (math.isfinite(value) and value > 0):
        raise _Invalid("expected a positive number of seconds")
    if value > MAX_SECONDS:
        raise _Invalid(f"expected a number of seconds up to {MAX_SECONDS:,.0f} (a day)")
    return float(value)


#: Tables nested deeper than this in a config are refused (no fsspec option nests so deep).
MAX_TABLE_DEPTH = 8


def _table(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid("expected a table (e.g. {anon = true})")
    if _too_deep(value, MAX_TABLE_DEPTH):
        raise _Invalid(f"expected tables nested at most {MAX_TABLE_DEPTH} deep")
    return MappingProxyType(copy.deepcopy(value))


def _too_deep(value: Any, limit: int) -> bool:
    """Whether tables and lists nest more than ``limit`` deep in ``value`` (no recursion)."""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("expected true or false")
    return value


def _column_list(value: Any) -> tuple[str, ...]:
    """A column name or a list of distinct ones, as a tuple."""
    found = _columns(value)
    return (found,) if isinstance(found, str) else found


def _split_every(value: Any) -> int | bool:
    if value is not False and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
        raise _Invalid("expected an integer >= 2 (the merge tree's fan-in), or false for one merge")
    return value


def _metrics(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Invalid(f"expected a non-empty list of metric names from {', '.join(METRIC_NAMES)}")
    for name in value:
        if name not in METRIC_NAMES:
            raise _Invalid(f"expected metric names from {', '.join(METRIC_NAMES)}", found=name)
    if len(set(value)) < len(value):
        raise _Invalid("expected each metric name once")
    return tuple(value)


def _columns(value: Any) -> str | tuple[str, ...]:
    """A column name, or a non-empty list of distinct ones."""
    if not isinstance(value, list):
        return _text(value)
    if not value:
        raise _Invalid("expected a column name or a non-empty list of column names")
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise _Invalid("expected column names (non-empty strings)", found=name)
    if len(set(value)) < len(value):
        raise _Invalid("expected each column once")
    return tuple(value)


def _table_metric(value: Any) -> str:
    if value not in METRIC_NAMES or value == "count":
        raise _Invalid(f"expected a metric name from {', '.join(METRIC_NAMES[1:])}")
    return value


def _metric(value: Any) -> str:
    if value not in METRIC_NAMES:
        raise _Invalid(f"expected a metric name from {', '.join(METRIC_NAMES)}")
    return value


def _window(value: Any) -> Mapping[str, Any]:
    expected = 'expected a table {partition = "day", last = 7}'
    if not isinstance(value, dict) or set(value) != {"partition", "last"}:
        raise _Invalid(f"{expected} (a hive partition name and how many of its last values)")
    if not isinstance(value["partition"], str) or not value["partition"].strip():
        raise _Invalid(f"{expected}: partition must be a non-empty string")
    last = value["last"]
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise _Invalid(f"{expected}: last must be an integer >= 1")
    return MappingProxyType(dict(value))


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise _Invalid("expected a number")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("expected true or false")
    return value


def _slice(value: Any) -> Mapping[str, Any]:
    """A slice key as the report shows it: {column = value}, a string, integer or boolean each."""
    if not isinstance(value, dict) or not value:
        raise _Invalid('expected a table of one value per group_by column, e.g. {segment = "a"}')
    for name, item in value.items():
        if not isinstance(item, (str, int)):  # bool is an int
            raise _Invalid(
                f"expected strings, integers or booleans as the report shows slice keys (dates "
                f'as ISO text, such as day = "2026-01-31"); {name} is not one',
                found=item,
            )
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class DatasetSettings:
    """``[dataset]``: where the predictions are and how to read them."""

    path: str = _setting(_path)
    format: str | None = _setting(_choice(*FILE_FORMATS), default=None)
    storage_options: Mapping[str, Any] = _secret_setting(_table, lambda: MappingProxyType({}))
    window: Mapping[str, Any] | None = _setting(_window, default=None)


@dataclass(frozen=True)
class ColumnSettings:
    """``[columns]``: the target, the prediction (or several) and the weight columns."""

    y_true: str = _setting(_text)
    y_pred: str | tuple[str, ...] = _setting(_columns)
    weight: str | None = _setting(_text, default=None)


@dataclass(frozen=True)
class EvaluationSettings:
    """``[evaluation]``: the NaN policy, the metrics, slices, comparisons, the merge fan-in."""

    nan_policy: str = _setting(_choice(*NAN_POLICIES), default="error")
    metrics: tuple[str, ...] = _setting(_metrics, default=METRIC_NAMES)
    split_every: int | bool | None = _setting(_split_every, default=None)
    group_by: str | tuple[str, ...] | None = _setting(_columns, default=None)
    min_slice_count: int | None = _setting(_integer(1), default=None)
    baseline: str | None = _setting(_text, default=None)
    intervals: bool = _setting(_boolean, default=True)
    histogram: bool | None = _setting(_boolean, default=None)
    worst_k: int | None = _setting(_integer(0, MAX_WORST_K), default=None)
    id_columns: tuple[str, ...] | None = _setting(_column_list, default=None)


@dataclass(frozen=True)
class OutputSettings:
    """``[output]``: where the JSON report goes (nowhere when ``path`` is None)."""

    path: str | None = _setting(_output_path, default=None)
    format: str = _setting(_choice("json"), default="json")
    storage_options: Mapping[str, Any] = _secret_setting(_table, lambda: MappingProxyType({}))
    table_slices: int = _setting(_integer(0), default=20)
    table_metric: str = _setting(_table_metric, default="mse")
    stats: str | None = _setting(_output_path, default=None)
    html: str | None = _setting(_output_path, default=None)
    losses: str | None = _setting(_output_path, default=None)


#: Upper bound of ``cluster.n_workers`` and ``cluster.threads_per_worker``: a
#: LocalCluster runs on this one machine, so a larger number is a typo.
MAX_LOCAL_WORKERS = 1024


@dataclass(frozen=True)
class ClusterSettings:
    """``[cluster]``: the embedded default (empty address) or a scheduler address.

    ``connect_timeout`` bounds the wait for the scheduler and a first worker;
    ``stall_timeout`` the wait for the next task to finish on a cluster.
    """

    address: str = _setting(_address, default="")
    n_workers: int | None = _setting(_integer(1, MAX_LOCAL_WORKERS), default=None)
    threads_per_worker: int | None = _setting(_integer(1, MAX_LOCAL_WORKERS), default=None)
    connect_timeout: float = _setting(_seconds, default=30.0)
    stall_timeout: float = _setting(_seconds, default=300.0)


@dataclass(frozen=True)
class CacheSettings:
    """``[cache]``: where incremental runs keep each file's statistics (none when unset)."""

    path: str | None = _setting(_path, default=None)
    storage_options: Mapping[str, Any] = _secret_setting(_table, lambda: MappingProxyType({}))


#: A gate's bounds: on its value, and on its change against its baseline.
GATE_BOUNDS = (
    "min",
    "max",
    "min_change",
    "max_change",
    "min_relative_change",
    "max_relative_change",
)


@dataclass(frozen=True)
class GateSettings:
    """One ``[[gates]]`` entry: a metric's value (of a prediction, over a slice), bounded.

    ``min``/``max`` bound the value; with a ``baseline`` (a prediction of the
    run) or a ``baseline_file`` (a report or statistics artifact), the
    ``*_change`` keys bound ``value - baseline`` and the ``*_relative_change``
    keys ``(value - baseline) / |baseline|``; ``excludes_zero`` requires the
    comparison's 95% interval (a prediction against the run's baseline) to
    exclude zero. Every bound is inclusive.
    """

    metric: str = _setting(_metric)
    name: str | None = _setting(_text, default=None)
    prediction: str | None = _setting(_text, default=None)
    slice: Mapping[str, Any] | None = _setting(_slice, default=None)
    min: float | None = _setting(_number, default=None)
    max: float | None = _setting(_number, default=None)
    baseline: str | None = _setting(_text, default=None)
    baseline_file: str | None = _setting(_path, default=None)
    min_change: float | None = _setting(_number, default=None)
    max_change: float | None = _setting(_number, default=None)
    min_relative_change: float | None = _setting(_number, default=None)
    max_relative_change: float | None = _setting(_number, default=None)
    excludes_zero: bool = _setting(_flag, default=False)

    @property
    def label(self) -> str:
        """The gate's name, or one made of what it checks: ``mse[segment=online]``."""
        if self.name is not None:
            return self.name
        where = (
            ""
            if self.slice is None
            else "[" + ",".join(f"{key}={value}" for key, value in self.slice.items()) + "]"
        )
        return f"{self.prediction + '.' if self.prediction else ''}{self.metric}{where}"


@dataclass(frozen=True)
class Settings:
    """The whole validated job configuration.

    Examples
    --------
    >>> settings = parse_settings({"dataset": {"path": "s3://bucket/preds/"},
    ...                            "columns": {"y_true": "y", "y_pred": "p"}})
    >>> settings.evaluation.nan_policy, settings.cluster.address
    ('error', '')
    """

    dataset: DatasetSettings
    columns: ColumnSettings
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    gates: tuple[GateSettings, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts and lists, ready for JSON (secrets included)."""
        return _plain(self)


_SECTIONS: dict[str, type] = {
    "dataset": DatasetSettings,
    "columns": ColumnSettings,
    "evaluation": EvaluationSettings,
    "output": OutputSettings,
    "cluster": ClusterSettings,
    "cache": CacheSettings,
}


def parse_settings(
    data: Mapping[str, Any], *, source: str = "the config", origins: Mapping[str, str] | None = None
) -> Settings:
    """Validate a config already parsed into nested dicts and resolve its local paths.

    ``source`` names the file in messages; ``origins`` maps dotted keys to
    where their value came from when not from the file (``"from --set ..."``).
    A None value counts as absent, so the ``settings`` of a report parse back.
    """
    where = _Where(source, origins or {})
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a table of sections, got {_short.repr(data)}")
    _reject_unknown(data, {**_SECTIONS, "gates": GateSettings}, "", where)
    sections = {}
    for name, cls in _SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"config key '{name}': expected a table ([{name}]), got "
                f"{_short.repr(table)} {where(name)}"
            )
        sections[name] = _build(cls, table, name, where)
    settings = Settings(**sections, gates=_gates(data.get("gates"), where))
    _check_gates(settings, where)
    return _resolve_paths(settings)


def _gates(data: Any, where: _Where) -> tuple[GateSettings, ...]:
    """The ``[[gates]]`` tables, each checked."""
    if data is None:
        return ()
    if not isinstance(data, list) or not all(isinstance(gate, Mapping) for gate in data):
        raise ConfigError(
            "config key 'gates': expected an array of tables ([[gates]] entries), got "
            f"{_short.repr(data)} {where('gates')}"
        )
    return tuple(_build(GateSettings, gate, f"gates[{i}]", where) for i, gate in enumerate(data))


def _check_gates(settings: Settings, where: _Where) -> None:
    """Each gate's keys together, and against the columns and slices of the evaluation."""
    predictions = _names(settings.columns.y_pred)
    group_by = _names(settings.evaluation.group_by or ())
    compared = settings.evaluation.baseline or (predictions[0] if len(predictions) > 1 else None)
    for index, gate in enumerate(settings.gates):
        key = f"gates[{index}]"
        try:
            _check_bounds(gate)
            _check_columns(gate, predictions, compared)
        except _GateInvalid as exc:
            at = f"{key}.{exc.key}" if exc.key else key
            raise ConfigError(f"config key '{at}': {exc} {where(at)}") from None
        if gate.slice is not None and set(gate.slice) != set(group_by):
            raise ConfigError(
                f"config key '{key}.slice': expected a value for each group_by column "
                f"{list(group_by)}, got {sorted(gate.slice)} {where(key)}"
            )


class _GateInvalid(Exception):
    """A gate's keys do not go together: the problem, and the key it is about (if one)."""

    def __init__(self, problem: str, key: str = "") -> None:
        super().__init__(problem)
        self.key = key


def _names(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _check_bounds(gate: GateSettings) -> None:
    """A gate has a bound; a baseline comes with bounds on the change, and they with it."""
    bounds = [name for name in GATE_BOUNDS if getattr(gate, name) is not None]
    changes = [name for name in bounds if "change" in name] + (
        ["excludes_zero"] if gate.excludes_zero else []
    )
    has_baseline = gate.baseline is not None or gate.baseline_file is not None
    if not bounds and not gate.excludes_zero:
        raise _GateInvalid(
            f"a gate needs a bound: one of {', '.join(GATE_BOUNDS)}, or excludes_zero"
        )
    if gate.baseline is not None and gate.baseline_file is not None:
        raise _GateInvalid("set baseline (a prediction of this run) or baseline_file, not both")
    if changes and not has_baseline:
        raise _GateInvalid(f"{changes[0]} needs a baseline or a baseline_file")
    if has_baseline and not changes:
        raise _GateInvalid(
            "a baseline needs a bound on the change (max_change, ...) or excludes_zero"
        )


def _check_columns(gate: GateSettings, predictions: tuple[str, ...], compared: str | None) -> None:
    """The gate's prediction and baseline are predictions of the run; a comparison is one."""
    for name in ("prediction", "baseline"):
        column = getattr(gate, name)
        if column is not None and column not in predictions:
            raise _GateInvalid(f"expected one of the predictions {list(predictions)}", name)
    if gate.baseline is not None and gate.baseline == (gate.prediction or predictions[0]):
        raise _GateInvalid("the baseline is the gate's prediction itself", "baseline")
    if gate.excludes_zero and (gate.baseline != compared or gate.metric not in COMPARED_METRICS):
        raise _GateInvalid(
            f"excludes_zero needs a comparison: metric one of {', '.join(COMPARED_METRICS)} "
            f"and baseline the run's baseline ({compared!r}, evaluation.baseline)",
            "excludes_zero",
        )


class _Where:
    """Says where a key's value came from: a flag, the environment or the file."""

    def __init__(self, source: str, origins: Mapping[str, str]) -> None:
        self.source = source
        self.origins = origins

    def __call__(self, key: str) -> str:
        key = re.sub(r"\[[0-9]+\]", "", key)  # gates[2].max: its value came with gates
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            origin = self.origins.get(".".join(parts[:end]))
            if origin is not None:
                return f"({origin})"
        inside = [origin for name, origin in self.origins.items() if name.startswith(key + ".")]
        return f"({inside[-1]})" if inside else f"(in {self.source})"


def _build(cls: type, table: Mapping[str, Any], section: str, where: _Where) -> Any:
    known = {f.name: f for f in fields(cls)}
    _reject_unknown(table, known, f"{section}.", where)
    values = {}
    for name, spec in known.items():
        key = f"{section}.{name}"
        value = table.get(name)
        if value == "" and spec.default is None:  # an optional key set to "": unset
            value = None
        if value is not None:
            try:
                values[name] = spec.metadata["check"](value)
            except _Invalid as exc:
                found = value if exc.found is MISSING else exc.found
                if isinstance(found, str):
                    found = redact_text(found)
                shown = type(found).__name__ if "secret" in spec.metadata else _short.repr(found)
                raise ConfigError(f"config key '{key}': {exc}, got {shown} {where(key)}") from None
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise ConfigError(
                f"config key '{key}': required but missing; set it under [{section}] in "
                f"{where.source} or with --set {key}=..."
            )
    return cls(**values)


def _reject_unknown(
    table: Mapping[str, Any], known: Mapping[str, Any], prefix: str, where: _Where
) -> None:
    for name in table:
        if name not in known:
            kind = "key" if prefix else "section"
            scope = f"[{prefix.rstrip('.')}]" if prefix else "the config"
            raise ConfigError(
                f"config key '{prefix}{name}': unknown {kind}; {scope} accepts "
                f"{', '.join(known)} {where(prefix + name)}"
            )


def _resolve_paths(settings: Settings) -> Settings:
    dataset = replace(settings.dataset, path=absolute_path(settings.dataset.path))
    output = replace(
        settings.output,
        path=_maybe_absolute(settings.output.path),
        stats=_maybe_absolute(settings.output.stats),
        html=_maybe_absolute(settings.output.html),
        losses=_maybe_absolute(settings.output.losses),
    )
    cache = replace(settings.cache, path=_maybe_absolute(settings.cache.path))
    gates = tuple(
        replace(gate, baseline_file=_maybe_absolute(gate.baseline_file)) for gate in settings.gates
    )
    return replace(settings, dataset=dataset, output=output, cache=cache, gates=gates)


def _maybe_absolute(path: str | None) -> str | None:
    return None if path is None else absolute_path(path)


def absolute_path(path: str) -> str:
    """A local path made absolute against the working directory; a URL unchanged."""
    if "://" in path or "::" in path:
        return path
    return os.path.abspath(os.path.expanduser(path))


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def redacted(settings: Settings) -> dict[str, Any]:
    """:meth:`Settings.to_dict` with secrets hidden, safe for reports and logs.

    Storage options whose name marks a secret and passwords inside URLs
    become ``"***"`` (see :mod:`daskloss.policy`).

    Examples
    --------
    >>> s = parse_settings({"dataset": {"path": "s3://b/", "storage_options": {"secret": "x"}},
    ...                     "columns": {"y_true": "y", "y_pred": "p"}})
    >>> redacted(s)["dataset"]["storage_options"]
    {'secret': '***'}
    """
    data = settings.to_dict()
    for section in ("dataset", "output", "cache"):
        data[section]["storage_options"] = hide_secrets(data[section]["storage_options"])
        if data[section]["path"] is not None:
            data[section]["path"] = redact_url(data[section]["path"])
    for key in ("stats", "html", "losses"):
        if data["output"][key] is not None:
            data["output"][key] = redact_url(data["output"][key])
    for gate in data["gates"]:
        if gate["baseline_file"] is not None:
            gate["baseline_file"] = redact_url(gate["baseline_file"])
    return data


def secret_values(settings: Settings) -> set[str]:
    """The values :func:`redacted` hides: what must never be printed.

    Examples
    --------
    >>> options = {"headers": {"Authorization": "Bearer t0k3n"}}
    >>> s = parse_settings({"dataset": {"path": "ftp://u:pw12@h/", "storage_options": options},
    ...                     "columns": {"y_true": "y", "y_pred": "p"}})
    >>> sorted(secret_values(s))
    ['Bearer t0k3n', 'pw12']
    """
    return removed_secrets(settings.to_dict(), redacted(settings))


def settings_digest(settings: Settings) -> str:
    """``"sha256:<hex>"`` of the canonical JSON of the redacted settings.

    Equal settings give equal digests whatever the key order or layering in
    the config file; secrets do not enter the digest.
    """
    canonical = json.dumps(redacted(settings), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
