"""Settings in layers: defaults, the config file, the environment, the command line.

A later layer overrides an earlier one key by key:

1. defaults (the dataclass defaults of :mod:`daskloss.config.schema`);
2. the config file (TOML);
3. the environment: ``DASKLOSS_SCHEDULER``, else ``DASK_SCHEDULER_ADDRESS``,
   sets ``cluster.address`` (an empty variable counts as unset);
4. the command line: ``--set key=value`` in order, then ``--scheduler``,
   ``--output`` and ``--html``.

Every error names the key and where its value came from.
"""

from __future__ import annotations

import os
import re
import reprlib
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from daskloss.config.schema import Settings, parse_settings
from daskloss.errors import ConfigError
from daskloss.policy import open_regular

__all__ = ["SCHEDULER_ENV_VARS", "load_settings"]

#: Environment variables that set ``cluster.address``, the first set one wins.
SCHEDULER_ENV_VARS: tuple[str, ...] = ("DASKLOSS_SCHEDULER", "DASK_SCHEDULER_ADDRESS")
_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60


def load_settings(
    path: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    scheduler: str | None = None,
    output: str | None = None,
    html: str | None = None,
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
    scheduler, output, html : str, optional
        ``--scheduler``, ``--output`` and ``--html``: ``cluster.address``,
        ``output.path`` and ``output.html``.

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
    if html is not None:
        _assign(data, "output.html", html, origins, "from --html")
    return parse_settings(data, source=source, origins=origins)


#: The largest config file read: a job config is a few hundred bytes.
MAX_CONFIG_BYTES = 1 << 20


def _read_toml(source: str) -> dict[str, Any]:
    """The TOML document in the regular file ``source`` (never a FIFO or a device)."""
    try:
        with open(open_regular(source), "rb") as handle:
            text = handle.read(MAX_CONFIG_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"cannot read config file {source}: {reason}") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"cannot read config file {source}: it is larger than {MAX_CONFIG_BYTES} bytes; "
            "a job config holds a few settings"
        )
    try:
        return _toml(text.decode())
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: it is not UTF-8 text ({exc})") from None
    except ValueError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None


def _toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``, with its other failures as ValueError naming them.

    An integer of thousands of digits exceeds Python's limit on integer
    conversion (a ValueError that is not a TOMLDecodeError); arrays or tables
    nested hundreds deep exhaust the recursion limit.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise
    except RecursionError:
        raise ValueError("values are nested too deeply") from None
    except (
        ValueError
    ) as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise ValueError(f"a value cannot be read: {str(exc).partition(':')[0]}") from None


def _parse_override(item: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``: the value as a TOML value, else as a string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise ConfigError(
            f"--set expects KEY=VALUE with a dotted KEY such as columns.y_pred=prediction, "
            f"got {_short.repr(item)}"
        )
    try:
        return key, _toml(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return key, text
    except ValueError as exc:
        raise ConfigError(f"config key '{key}': {exc} (from --set {key})") from None


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
