"""Operator policy: what a job may read, what never reaches output, which addresses are valid.

Three rules, each in one place:

* **Read roots.** ``DASKLOSS_READ_ROOTS`` (comma-separated directories or URL
  prefixes) confines what a job may read: :class:`ReadRoots` refuses a
  dataset path outside all of them (after resolving ``..`` and symbolic
  links) and every listed file a link leads outside.
* **Redaction.** Storage options whose name marks a secret and passwords in
  URLs become ``"***"`` in reports, logs and errors (:func:`redact_url`,
  :func:`hide_secrets`).
* **Scheduler addresses.** :func:`check_scheduler_address` refuses, before any
  connection, an address that cannot be a Dask scheduler's as written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from daskloss.errors import ConfigError

__all__ = [
    "READ_ROOTS_ENV_VAR",
    "REDACTED",
    "SCHEDULER_PORT",
    "SECRET_WORDS",
    "ReadRoots",
    "SchedulerAddressError",
    "check_scheduler_address",
    "hide_secrets",
    "redact_url",
]

#: The environment variable that confines the datasets a job may read.
READ_ROOTS_ENV_VAR = "DASKLOSS_READ_ROOTS"
#: Words that mark a storage option as a secret (matched in lower-cased key names).
SECRET_WORDS: tuple[str, ...] = ("key", "secret", "token", "password", "passwd", "credential")
REDACTED = "***"
#: The port ``dask scheduler`` listens on unless told otherwise.
SCHEDULER_PORT = 8786


@dataclass(frozen=True)
class ReadRoots:
    """The directories and URL prefixes a job may read; none means no confinement.

    Examples
    --------
    >>> roots = ReadRoots.parse("/data")
    >>> roots.check_path("/data/preds/*.parquet")
    >>> roots.check_path("/data/../etc/passwd")
    Traceback (most recent call last):
    ...
    daskloss.errors.ConfigError: config key 'dataset.path': /etc/passwd is outside ...
    """

    roots: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> ReadRoots:
        """Roots from a comma-separated list (the value of ``DASKLOSS_READ_ROOTS``)."""
        return cls(tuple(root.strip() for root in text.split(",") if root.strip()))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ReadRoots:
        """The roots ``DASKLOSS_READ_ROOTS`` sets in ``environ`` (``os.environ`` by default)."""
        return cls.parse((os.environ if environ is None else environ).get(READ_ROOTS_ENV_VAR, ""))

    def check_path(self, path: str) -> None:
        """Refuse a dataset path (a file, directory, glob or URL) outside the roots.

        Local paths are compared after resolving ``..`` and symbolic links, from
        the part before any glob character; URLs by prefix.
        """
        if not self.roots:
            return
        fixed = path if "://" in path else re.split(r"[*?\[]", path, maxsplit=1)[0]
        if not self._inside(fixed):
            raise ConfigError(
                f"config key 'dataset.path': {_resolved(fixed)} is outside the directories this "
                f"job may read (${READ_ROOTS_ENV_VAR}); use a dataset under one of them or ask "
                "the operator to widen it"
            )

    def check_files(self, files: Sequence[str]) -> None:
        """Refuse a listed data file outside the roots: one a symbolic link led to."""
        if not self.roots:
            return
        outside = next((f for f in files if not self._inside(f)), None)
        if outside is not None:
            raise ConfigError(
                f"config key 'dataset.path': the data file {_resolved(outside)} (reached through "
                f"a symbolic link) is outside the directories this job may read "
                f"(${READ_ROOTS_ENV_VAR}); remove the link or ask the operator to widen it"
            )

    def _inside(self, path: str) -> bool:
        """Whether ``path`` (a local path resolved, or a URL) lies under one of the roots."""
        if "://" in path:
            return any(path.startswith(r.rstrip("/") + "/") for r in self.roots if "://" in r)
        target = os.path.realpath(path)
        return any(
            os.path.commonpath([target, os.path.realpath(root)]) == os.path.realpath(root)
            for root in self.roots
            if "://" not in root
        )


def _resolved(path: str) -> str:
    """A path as an error shows it: a URL without credentials, a local path resolved."""
    return redact_url(path) if "://" in path else os.path.realpath(path)


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part hidden.

    Examples
    --------
    >>> redact_url("ftp://bob:hunter2@host/data/")
    'ftp://bob:***@host/data/'
    """
    if "://" not in url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def hide_secrets(options: Any) -> Any:
    """Storage options with every value under a secret-looking name replaced by ``"***"``.

    Examples
    --------
    >>> hide_secrets({"key": "AKIA...", "client_kwargs": {"region_name": "eu"}})
    {'key': '***', 'client_kwargs': {'region_name': 'eu'}}
    """
    if isinstance(options, Mapping):
        return {
            key: REDACTED if _is_secret(str(key)) else hide_secrets(value)
            for key, value in options.items()
        }
    if isinstance(options, (list, tuple)):
        return [hide_secrets(value) for value in options]
    return options


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


class SchedulerAddressError(ConfigError, ConnectionError):
    """A scheduler address that cannot be tried as written (a config error, exit code 2)."""


def check_scheduler_address(address: str) -> str:
    """``address`` stripped, if it can be a Dask scheduler's address as written.

    ``""`` means the embedded default. A TCP or TLS address needs a host and a
    port; the scheme must be one distributed knows.

    Raises
    ------
    SchedulerAddressError
        Saying what is wrong and how to write it.

    Examples
    --------
    >>> check_scheduler_address(" tcp://10.0.0.5:8786 ")
    'tcp://10.0.0.5:8786'
    >>> check_scheduler_address("10.0.0.5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    daskloss.policy.SchedulerAddressError: the Dask scheduler address 10.0.0.5 has no port: ...
    """
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    address = address.strip()
    if not address:
        return address
    scheme, location = parse_address(address)
    try:
        get_backend(scheme)
    except ValueError:
        raise SchedulerAddressError(
            f"the Dask scheduler address {address} has an unknown scheme {scheme!r}; "
            f"write it as tcp://HOST:PORT, e.g. tcp://HOST:{SCHEDULER_PORT}"
        ) from None
    if scheme not in ("tcp", "tls"):
        return address
    host, colon, port = location.rpartition(":")
    if not colon or location.endswith("]"):  # "host" or "[ipv6]": no port
        host, port = location, ""
    example = f"{scheme}://{host or 'HOST'}:{SCHEDULER_PORT}"
    if not port:
        raise SchedulerAddressError(
            f"the Dask scheduler address {address} has no port: expected a scheduler address "
            f"with a port, such as {example} ({SCHEDULER_PORT} is the scheduler's default port)"
        )
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise SchedulerAddressError(
            f"the Dask scheduler address {address} has port {port!r}; expected a number "
            f"from 1 to 65535, e.g. {example}"
        )
    try:
        parse_host_port(location)
    except ValueError as exc:
        raise SchedulerAddressError(
            f"the Dask scheduler address {address} is not {scheme}://HOST:PORT ({exc})"
        ) from None
    return address
