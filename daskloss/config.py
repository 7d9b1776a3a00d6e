"""Job settings: typed frozen dataclasses, loaded and validated from a TOML file.

A job config is a TOML file with five tables (only ``[dataset]`` and
``[columns]`` are required)::

    [dataset]
    path = "sample/"            # file, directory, glob or fsspec URL (required)
    format = "parquet"          # "parquet" or "csv"; omitted = inferred from the names
    storage_options = {}        # fsspec options: endpoint, credentials...

    [columns]
    y_true = "y_true"           # required
    y_pred = "y_pred"           # required
    weight = "weight"           # optional; omitted = every row weighs 1

    [evaluation]
    nan_policy = "error"        # "error" or "skip"
    metrics = ["mse", "rmse"]   # subset of daskloss.METRIC_NAMES; omitted = all
    split_every = 8             # fan-in of the merge tree; omitted = the library default

    [output]
    path = "report.json"        # local path or fsspec URL; omitted = no report file
    format = "json"
    storage_options = {}        # fsspec options for a URL path

    [cluster]
    address = ""                # "" = embedded default; else e.g. "tcp://host:8786"
    n_workers = 2               # embedded only: a LocalCluster of worker processes
    threads_per_worker = 2      # embedded only: threads (per worker process)
    connect_timeout = 30        # seconds to reach the scheduler and find a worker

Every value is checked up front, before any data is read: an unknown key, a
wrong type or a missing required key is a one-line :class:`ConfigError`
naming the key and where the value came from.

Values come in layers; a later layer overrides an earlier one key by key:

1. defaults (the dataclass defaults below);
2. the config file;
3. the environment: ``DASKLOSS_SCHEDULER``, else ``DASK_SCHEDULER_ADDRESS``,
   sets ``cluster.address`` (an empty variable counts as unset);
4. the command line: ``--set key=value`` in order, then ``--scheduler`` and
   ``--output``.

Relative local paths (``dataset.path``, ``output.path``) are resolved against
the current working directory, like the paths of most command-line tools, and
stored absolute, so that workers with another working directory read the
same files. URLs (``s3://...``) are kept as given.

An operator can confine what a config may read: ``DASKLOSS_READ_ROOTS`` lists
directories or URL prefixes (separated by commas); a ``dataset.path``
outside all of them (after resolving ``..`` and symbolic links) is a
:class:`ConfigError`. TOML has no tags or code of any kind, so a config can
only ever hold data.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import reprlib
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from daskloss.errors import ConfigError
from daskloss.metrics import METRIC_NAMES

__all__ = [
    "SCHEDULER_ENV_VARS",
    "SECRET_WORDS",
    "ClusterSettings",
    "ColumnSettings",
    "DatasetSettings",
    "EvaluationSettings",
    "OutputSettings",
    "Settings",
    "load_settings",
    "parse_settings",
    "redact_url",
    "redacted",
    "settings_digest",
]

#: Environment variables that set ``cluster.address``, the first set one wins.
SCHEDULER_ENV_VARS: tuple[str, ...] = ("DASKLOSS_SCHEDULER", "DASK_SCHEDULER_ADDRESS")
#: Words that mark a storage option as a secret (matched in lower-cased key names).
SECRET_WORDS: tuple[str, ...] = ("key", "secret", "token", "password", "passwd", "credential")
REDACTED = "***"
_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
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


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid('expected a string ("" for the embedded default)')
    address = value.strip()
    scheme, _, location = address.rpartition("://")
    if address and scheme in ("", "tcp", "tls") and not re.search(r":\d+$", location):
        raise _Invalid(
            "expected a scheduler address with a port, such as tcp://10.0.0.5:8786 "
            '(8786 is the scheduler\'s default port), or "" for the embedded default'
        )
    return address


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


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid("expected a number of seconds")
    if not (math.isfinite(value) and value > 0):
        raise _Invalid("expected a positive number of seconds")
    return float(value)


def _table(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid("expected a table (e.g. {anon = true})")
    return MappingProxyType(copy.deepcopy(value))


def _metrics(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Invalid(f"expected a non-empty list of metric names from {', '.join(METRIC_NAMES)}")
    for name in value:
        if name not in METRIC_NAMES:
            raise _Invalid(f"expected metric names from {', '.join(METRIC_NAMES)}", found=name)
    if len(set(value)) < len(value):
        raise _Invalid("expected each metric name once")
    return tuple(value)


@dataclass(frozen=True)
class DatasetSettings:
    """``[dataset]``: where the predictions are and how to read them."""

    path: str = _setting(_text)
    format: str | None = _setting(_choice("parquet", "csv"), default=None)
    storage_options: Mapping[str, Any] = _secret_setting(_table, lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ColumnSettings:
    """``[columns]``: the names of the target, prediction and weight columns."""

    y_true: str = _setting(_text)
    y_pred: str = _setting(_text)
    weight: str | None = _setting(_text, default=None)


@dataclass(frozen=True)
class EvaluationSettings:
    """``[evaluation]``: the NaN policy, the metrics to report, the merge fan-in."""

    nan_policy: str = _setting(_choice("error", "skip"), default="error")
    metrics: tuple[str, ...] = _setting(_metrics, default=METRIC_NAMES)
    split_every: int | None = _setting(_integer(2), default=None)


@dataclass(frozen=True)
class OutputSettings:
    """``[output]``: where the JSON report goes (nowhere when ``path`` is None)."""

    path: str | None = _setting(_text, default=None)
    format: str = _setting(_choice("json"), default="json")
    storage_options: Mapping[str, Any] = _secret_setting(_table, lambda: MappingProxyType({}))


#: Upper bound of ``cluster.n_workers`` and ``cluster.threads_per_worker``: a
#: LocalCluster runs on this one machine, so a larger number is a typo.
MAX_LOCAL_WORKERS = 1024


@dataclass(frozen=True)
class ClusterSettings:
    """``[cluster]``: the embedded default (empty address) or a scheduler address."""

    address: str = _setting(_address, default="")
    n_workers: int | None = _setting(_integer(1, MAX_LOCAL_WORKERS), default=None)
    threads_per_worker: int | None = _setting(_integer(1, MAX_LOCAL_WORKERS), default=None)
    connect_timeout: float = _setting(_seconds, default=30.0)


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

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts and lists, ready for JSON (secrets included)."""
        return _plain(self)


_SECTIONS: dict[str, type] = {
    "dataset": DatasetSettings,
    "columns": ColumnSettings,
    "evaluation": EvaluationSettings,
    "output": OutputSettings,
    "cluster": ClusterSettings,
}


def load_settings(
    path: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    scheduler: str | None = None,
    output: str | None = None,
) -> Settings:
    """Read, layer and validate a job config (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The TOML config file.
    overrides : sequence of str
        ``"key=value"`` strings from ``--set``; dotted keys, values parsed as
        TOML (``3``, ``true``, ``["mse"]``) or else taken as strings.
    environ : mapping, optional
        The environment (``os.environ`` when omitted).
    scheduler, output : str, optional
        ``--scheduler`` and ``--output``: ``cluster.address`` and ``output.path``.

    Raises
    ------
    ConfigError
        Unreadable or invalid TOML, or any invalid value.

    Examples
    --------
    >>> settings = load_settings("configs/example.toml", overrides=["cluster.n_workers=2"])
    >>> settings.cluster.n_workers, settings.dataset.path  # doctest: +ELLIPSIS
    (2, '.../sample')
    """
    source = os.fspath(path)
    data = _read_toml(source)
    origins: dict[str, str] = {}
    environ = os.environ if environ is None else environ
    env_var = next((name for name in SCHEDULER_ENV_VARS if environ.get(name)), None)
    if env_var is not None:
        _assign(data, "cluster.address", environ[env_var], origins, f"from ${env_var}")
    for item in overrides:
        key, value = _parse_override(item)
        _assign(data, key, value, origins, f"from --set {key}")
    if scheduler is not None:
        _assign(data, "cluster.address", scheduler, origins, "from --scheduler")
    if output is not None:
        _assign(data, "output.path", output, origins, "from --output")
    settings = parse_settings(data, source=source, origins=origins)
    check_readable(settings.dataset.path, environ.get(READ_ROOTS_ENV_VAR, ""))
    return settings


#: The environment variable that confines the datasets a config may name.
READ_ROOTS_ENV_VAR = "DASKLOSS_READ_ROOTS"


def check_readable(path: str, roots: str) -> None:
    """Refuse a dataset path outside the comma-separated ``roots`` (if any are given).

    Local paths are compared after resolving ``..`` and symbolic links, from
    the part before any glob character; URLs by prefix.

    Examples
    --------
    >>> check_readable("/data/preds/*.parquet", "/data")
    >>> check_readable("/data/../etc/passwd", "/data")
    Traceback (most recent call last):
    ...
    daskloss.errors.ConfigError: config key 'dataset.path': /etc/passwd is outside ...
    """
    allowed = _roots(roots)
    if not allowed:
        return
    fixed = path if "://" in path else re.split(r"[*?\[]", path, maxsplit=1)[0]
    if not _inside(fixed, allowed):
        raise ConfigError(
            f"config key 'dataset.path': {_resolved(fixed)} is outside the directories this "
            f"job may read (${READ_ROOTS_ENV_VAR}); use a dataset under one of them or ask the "
            "operator to widen it"
        )


def check_files_readable(files: Sequence[str], roots: str) -> None:
    """Refuse a listed data file outside the ``roots``: one a symbolic link led to.

    :func:`check_readable` vets ``dataset.path`` before anything is read; this
    vets every file its listing found, before any is opened.
    """
    allowed = _roots(roots)
    outside = next((f for f in files if not _inside(f, allowed)), None) if allowed else None
    if outside is not None:
        raise ConfigError(
            f"config key 'dataset.path': the data file {_resolved(outside)} (reached through a "
            f"symbolic link) is outside the directories this job may read "
            f"(${READ_ROOTS_ENV_VAR}); remove the link or ask the operator to widen it"
        )


def _roots(roots: str) -> list[str]:
    return [root.strip() for root in roots.split(",") if root.strip()]


def _resolved(path: str) -> str:
    """A path as an error shows it: a URL without credentials, a local path resolved."""
    return redact_url(path) if "://" in path else os.path.realpath(path)


def _inside(path: str, allowed: Sequence[str]) -> bool:
    """Whether ``path`` (a local path resolved, or a URL) lies under one of ``allowed``."""
    if "://" in path:
        return any(path.startswith(root.rstrip("/") + "/") for root in allowed if "://" in root)
    target = os.path.realpath(path)
    return any(
        os.path.commonpath([target, os.path.realpath(root)]) == os.path.realpath(root)
        for root in allowed
        if "://" not in root
    )


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
    _reject_unknown(data, _SECTIONS, "", where)
    sections = {}
    for name, cls in _SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"config key '{name}': expected a table ([{name}]), got "
                f"{_short.repr(table)} {where(name)}"
            )
        sections[name] = _build(cls, table, name, where)
    settings = Settings(**sections)
    return _resolve_paths(settings)


class _Where:
    """Says where a key's value came from: a flag, the environment or the file."""

    def __init__(self, source: str, origins: Mapping[str, str]) -> None:
        self.source = source
        self.origins = origins

    def __call__(self, key: str) -> str:
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
        if table.get(name) is not None:
            try:
                values[name] = spec.metadata["check"](table[name])
            except _Invalid as exc:
                found = table[name] if exc.found is MISSING else exc.found
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


def _read_toml(source: str) -> dict[str, Any]:
    try:
        with open(source, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {source}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: it is not UTF-8 text ({exc})") from None


def _parse_override(item: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``: the value as a TOML value, else as a string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise ConfigError(
            f"--set expects KEY=VALUE with a dotted KEY such as columns.y_pred=prediction, "
            f"got {item!r}"
        )
    try:
        return key, tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return key, text


def _assign(
    data: dict[str, Any], key: str, value: Any, origins: dict[str, str], origin: str
) -> None:
    """Set dotted ``key`` in nested ``data``, creating tables on the way."""
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1], start=1):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            parent = ".".join(parts[:depth])
            raise ConfigError(
                f"config key '{key}': cannot set it, '{parent}' is {_short.repr(node)}, "
                f"not a table ({origin})"
            )
    node[parts[-1]] = value
    origins[key] = origin


def _resolve_paths(settings: Settings) -> Settings:
    dataset = replace(settings.dataset, path=_absolute(settings.dataset.path))
    output_path = settings.output.path
    output = replace(settings.output, path=None if output_path is None else _absolute(output_path))
    return replace(settings, dataset=dataset, output=output)


def _absolute(path: str) -> str:
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

    Storage options whose name contains a word of :data:`SECRET_WORDS` and
    passwords inside URLs become ``"***"``.

    Examples
    --------
    >>> s = parse_settings({"dataset": {"path": "s3://b/", "storage_options": {"secret": "x"}},
    ...                     "columns": {"y_true": "y", "y_pred": "p"}})
    >>> redacted(s)["dataset"]["storage_options"]
    {'secret': '***'}
    """
    data = settings.to_dict()
    for section in ("dataset", "output"):
        data[section]["storage_options"] = _hide_secrets(data[section]["storage_options"])
        if data[section]["path"] is not None:
            data[section]["path"] = redact_url(data[section]["path"])
    return data


def _hide_secrets(options: Any) -> Any:
    if isinstance(options, dict):
        return {
            key: REDACTED if _is_secret(key) else _hide_secrets(value)
            for key, value in options.items()
        }
    if isinstance(options, list):
        return [_hide_secrets(value) for value in options]
    return options


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part hidden."""
    if "://" not in url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def settings_digest(settings: Settings) -> str:
    """``"sha256:<hex>"`` of the canonical JSON of the redacted settings.

    Equal settings give equal digests whatever the key order or layering in
    the config file; secrets do not enter the digest.
    """
    canonical = json.dumps(redacted(settings), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
