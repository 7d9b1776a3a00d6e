"""Operator policy: what a job may read, what never reaches output, which addresses are valid.

Three rules, each in one place:

* **Read roots.** ``DASKLOSS_READ_ROOTS`` (comma-separated directories or URL
  prefixes) confines what a job may read: :class:`ReadRoots` refuses a
  dataset path outside all of them (after resolving ``..`` and symbolic
  links) and every listed file a link leads outside, and, on the worker that
  reads it, checks the file actually opened (:meth:`ReadRoots.open_local`).
  Only regular files are ever opened (:func:`open_regular`): never a FIFO or
  a device, which could block a read forever.
* **Redaction.** The user information of URLs and the values of storage
  options, except those known to be harmless (:data:`HARMLESS_OPTIONS`),
  become ``"***"`` in reports, logs and errors (:func:`redact_url`,
  :func:`redact_text`, :func:`hide_secrets`); :class:`Scrubber` also takes
  the known secret values out of any text about to be printed.
* **Scheduler addresses.** :func:`check_scheduler_address` refuses, before any
  connection, an address that cannot be a Dask scheduler's as written.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daskloss.errors import ConfigError

__all__ = [
    "HARMLESS_OPTIONS",
    "READ_ROOTS_ENV_VAR",
    "REDACTED",
    "SCHEDULER_PORT",
    "ReadRoots",
    "SchedulerAddressError",
    "Scrubber",
    "check_scheduler_address",
    "file_kind",
    "hide_secrets",
    "open_regular",
    "redact_text",
    "redact_url",
    "removed_secrets",
]

#: The environment variable that confines the datasets a job may read.
READ_ROOTS_ENV_VAR = "DASKLOSS_READ_ROOTS"
#: Storage options (of fsspec, s3fs, gcsfs, adlfs and botocore's config) whose values
#: are shown in reports and logs. Every other option's value is hidden: a name
#: cannot tell a secret (``headers``, ``connection_string``, ``sas_token``...) from
#: a setting, so only known settings are shown. A table under one of these names
#: (``client_kwargs``, ``config_kwargs``...) is shown by the same rule; a URL value
#: (``endpoint_url``) without its user information.
HARMLESS_OPTIONS = frozenset(
    {
        "access",
        "account_name",
        "addressing_style",
        "anon",
        "auto_mkdir",
        "block_size",
        "cache_regions",
        "cache_type",
        "client_kwargs",
        "config_kwargs",
        "connect_timeout",
        "consistency",
        "default_block_size",
        "default_cache_type",
        "default_fill_cache",
        "endpoint_url",
        "fixed_upload_size",
        "listings_expiry_time",
        "max_attempts",
        "max_paths",
        "max_pool_connections",
        "mode",
        "payload_signing_enabled",
        "profile",
        "project",
        "read_timeout",
        "region",
        "region_name",
        "requester_pays",
        "retries",
        "s3",
        "signature_version",
        "skip_instance_cache",
        "use_accelerate_endpoint",
        "use_dualstack_endpoint",
        "use_listings_cache",
        "use_ssl",
        "verify",
        "version_aware",
    }
)
REDACTED = "***"
#: Known secrets shorter than this are not scrubbed from free text: replacing
#: every "abc" in a message would garble it (they are still redacted structurally).
MIN_SCRUBBED_LENGTH = 4
#: The port ``dask scheduler`` listens on unless told otherwise.
SCHEDULER_PORT = 8786


@dataclass(frozen=True)
class ReadRoots:
    """The directories and URL prefixes a job may read; none means no confinement.

    Local roots are made absolute where the roots are made (the client), so
    that they mean the same on workers with another working directory. A root
    that is empty is refused, so that a list with nothing in it can never
    switch confinement off.

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

    def __post_init__(self) -> None:
        roots = tuple(str(root).strip() for root in self.roots)
        if any(not root for root in roots):
            raise ConfigError(
                f"read roots {list(self.roots)!r} include an empty one; list directories or "
                "URL prefixes"
            )
        absolute = tuple(root if "://" in root else os.path.abspath(root) for root in roots)
        object.__setattr__(self, "roots", absolute)

    @classmethod
    def parse(cls, text: str) -> ReadRoots:
        """Roots from a comma-separated list (the value of ``DASKLOSS_READ_ROOTS``).

        A list naming nothing (``""``, ``","``, ``" "``) is a :class:`ConfigError`:
        whoever set the variable meant to confine the job.
        """
        roots = tuple(root.strip() for root in text.split(",") if root.strip())
        if not roots:
            raise ConfigError(
                f"${READ_ROOTS_ENV_VAR} is set to {text[:40]!r}, which lists no directory; set "
                "it to comma-separated directories or URL prefixes, or unset it"
            )
        return cls(roots)

    @classmethod
    def listing(cls, roots: Sequence[str]) -> ReadRoots:
        """Roots from a sequence that must name at least one (``read_roots=``)."""
        if isinstance(roots, str) or not roots:
            raise ConfigError(
                f"read_roots must list directories or URL prefixes, got {roots!r}; pass None "
                "for no confinement"
            )
        return cls(tuple(roots))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ReadRoots:
        """The roots ``DASKLOSS_READ_ROOTS`` sets in ``environ`` (``os.environ`` by default)."""
        environ = os.environ if environ is None else environ
        if READ_ROOTS_ENV_VAR not in environ:
            return cls()
        return cls.parse(environ[READ_ROOTS_ENV_VAR])

    def check_path(self, path: str, key: str = "dataset.path") -> None:
        """Refuse a dataset path (a file, directory, glob or URL) outside the roots.

        Local paths are compared after resolving ``..`` and symbolic links, from
        the part before any glob character; URLs by prefix. ``key`` names the
        config key that gave the path.
        """
        if not self.roots:
            return
        fixed = path if "://" in path else re.split(r"[*?\[]", path, maxsplit=1)[0]
        if not self._inside(fixed):
            raise ConfigError(
                f"config key '{key}': {_resolved(fixed)} is outside the directories this "
                f"job may read (${READ_ROOTS_ENV_VAR}); use a dataset under one of them or ask "
                "the operator to widen it"
            )

    def check_files(self, files: Sequence[str]) -> None:
        """Refuse a listed data file outside the roots: one a symbolic link led to."""
        if not self.roots:
            return
        outside = next((f for f in files if not self._inside(f)), None)
        if outside is not None:
            raise _outside(outside, "reached through a symbolic link")

    def open_local(self, path: str) -> int:
        """A read-only descriptor of the local regular file ``path``, checked once open.

        Without roots, :func:`open_regular`. With roots, the path is opened
        without following a final symbolic link (a listed link is resolved and
        checked first, then its target opened the same way), and the file
        actually opened (its name in ``/proc/self/fd`` on Linux) is checked
        against the roots: a file swapped for a link between the listing and
        the read is refused, never read. A hard link inside the roots is a name
        inside the roots, so it is read (see the README's Reliability).

        Raises
        ------
        ConfigError
            The file opened lies outside the roots.
        OSError
            The file cannot be opened, or is not a regular file.
        """
        if not self.roots:
            return open_regular(path)
        try:
            descriptor = open_regular(path, follow=False)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            real = os.path.realpath(path)  # a listed symbolic link: to a file inside?
            if not self._inside(real):
                raise _outside(path, "reached through a symbolic link") from None
            descriptor = open_regular(real, follow=False)
        try:
            if not self._contains(_opened_name(descriptor, path)):
                raise _outside(path, "moved or replaced by a link while being opened")
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor

    def _inside(self, path: str) -> bool:
        """Whether ``path`` (a local path, resolved here, or a URL) lies under one of the roots."""
        if "://" in path:
            return any(path.startswith(r.rstrip("/") + "/") for r in self.roots if "://" in r)
        return self._contains(os.path.realpath(path))

    def _contains(self, real: str) -> bool:
        """Whether the resolved local path ``real`` lies under one of the local roots."""
        return any(
            real == root or real.startswith(root.rstrip("/") + "/")
            for root in map(_real_root, self.roots)
            if "://" not in root
        )


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str:
    """A root with its symbolic links resolved, once per process (per file cost ~15 us)."""
    return root if "://" in root else os.path.realpath(root)


def _outside(path: str, how: str) -> ConfigError:
    return ConfigError(
        f"config key 'dataset.path': the data file {_resolved(path)} ({how}) is outside the "
        f"directories this job may read (${READ_ROOTS_ENV_VAR}); remove the link or ask the "
        "operator to widen it"
    )


#: Where Linux names the file behind each open descriptor of this process.
_PROC_FD = "/proc/self/fd"


def _opened_name(descriptor: int, path: str) -> str:
    """The path of the file ``descriptor`` has open, as the kernel knows it.

    Linux: the ``/proc/self/fd`` link. Elsewhere: ``path`` resolved, if it still
    names the very file open (same device and inode), else ``""`` (outside).
    """
    link = f"{_PROC_FD}/{descriptor}"
    if os.path.isdir(_PROC_FD):
        return os.readlink(link)
    real = os.path.realpath(path)
    opened, named = os.fstat(descriptor), os.stat(real)
    same = (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)
    return real if same else ""


#: Read-only, never blocking (a FIFO or a device opened by mistake), not inherited.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_regular(path: str, *, follow: bool = True) -> int:
    """A read-only descriptor of the regular file at ``path``, refusing anything else.

    The path is checked before it is opened, so that no FIFO or device is
    ever opened (opening one can block, or act on the device); it is opened
    non-blocking and checked again once open, in case it changed in between.
    ``follow=False`` refuses a final symbolic link (``ELOOP``).

    Raises
    ------
    OSError
        It cannot be opened, or it is not a regular file (``EINVAL``, with a
        ``strerror`` saying what it is).
    """
    _check_regular(os.stat(path, follow_symlinks=follow).st_mode, path)
    descriptor = os.open(path, _READ_FLAGS if follow else _READ_FLAGS | _NO_FOLLOW)
    try:
        _check_regular(os.fstat(descriptor).st_mode, path)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular(mode: int, path: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISLNK(mode):  # only seen when not following links
        raise OSError(errno.ELOOP, "it is a symbolic link", path)
    raise OSError(errno.EINVAL, f"it is {file_kind(mode)}, not a regular file", path)


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, as a message says it: "a FIFO (named pipe)"...

    Examples
    --------
    >>> file_kind(stat.S_IFIFO), file_kind(stat.S_IFREG)
    ('a FIFO (named pipe)', 'a regular file')
    """
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _resolved(path: str) -> str:
    """A path as an error shows it: a URL without credentials, a local path resolved."""
    return redact_url(path) if "://" in path else os.path.realpath(path)


def redact_url(url: str) -> str:
    """``url`` with its user information hidden: ``user:***@``, or ``***@`` for a user alone.

    A password is hidden even where it holds ``/``, ``?``, ``#`` or ``@``
    (characters a URL should escape): after ``user:``, everything up to the
    last ``@`` is taken for it, unless what follows the colon is a port.
    A user alone (``https://TOKEN@host/``) is hidden too: it is often a token.

    Examples
    --------
    >>> redact_url("ftp://bob:hunter2@host/data/")
    'ftp://bob:***@host/data/'
    >>> redact_url("ftp://bob:p/a#s?s@host/data/")
    'ftp://bob:***@host/data/'
    >>> redact_url("https://ghp_token@github.com/o/r"), redact_url("s3://bucket/a@b/c")
    ('https://***@github.com/o/r', 's3://bucket/a@b/c')
    """
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return url
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, end)
    if at < 0:  # a "/", "?" or "#" before any "@": an "@" in the path, or in a password
        user, colon, after = rest[:end].partition(":")
        if not colon or (after.isdigit() and len(after) <= 5):  # no password, or a port
            return url
        at = rest.rfind("@")
    user, colon, _ = rest[:at].partition(":")
    shown = f"{user}:{REDACTED}" if colon else REDACTED
    return f"{scheme}://{shown}@{rest[at + 1 :]}"


#: A URL's scheme, just before its "://" (at most 32 characters are looked at).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")
#: The rest of a URL in free text: up to a space, a quote or a bracket.
_URL_REST = re.compile(r"[^\s'\"<>`]*")


def redact_text(text: str) -> str:
    """``text`` with the user information of every URL in it hidden (see :func:`redact_url`).

    Linear in the length of ``text``, however long (a 50 MB path in a message).

    Examples
    --------
    >>> redact_text("cannot list ftp://bob:pw@host/x: timed out")
    'cannot list ftp://bob:***@host/x: timed out'
    """
    pieces, done, at = [], 0, text.find("://")
    while at >= 0:
        scheme = _SCHEME.search(text, max(done, at - 32), at)
        end = _URL_REST.match(text, at + 3).end()
        if scheme is not None:
            pieces += [text[done : scheme.start()], redact_url(text[scheme.start() : end])]
            done = end
        at = text.find("://", max(end, at + 3))
    return "".join([*pieces, text[done:]])


def hide_secrets(options: Mapping[str, Any]) -> dict[str, Any]:
    """Storage options with every value not known to be harmless replaced by ``"***"``.

    See :data:`HARMLESS_OPTIONS`; a URL value loses its user information.

    Examples
    --------
    >>> hide_secrets({"key": "AKIA...", "headers": {"Authorization": "Bearer x"},
    ...               "client_kwargs": {"region_name": "eu"}})
    {'key': '***', 'headers': '***', 'client_kwargs': {'region_name': 'eu'}}
    """
    return {str(key): _shown(str(key), value) for key, value in options.items()}


def _shown(name: str, value: Any) -> Any:
    if name not in HARMLESS_OPTIONS:
        return REDACTED
    if isinstance(value, Mapping):
        return hide_secrets(value)
    if isinstance(value, str):
        return redact_url(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return REDACTED


def removed_secrets(original: Any, shown: Any) -> set[str]:
    """The strings redaction took out of ``original`` to give ``shown``.

    Walks both structures together: a value that became ``"***"`` gives every
    string inside it, a URL that lost its user information gives that user
    information. These are what :class:`Scrubber` takes out of free text.

    Examples
    --------
    >>> sorted(removed_secrets({"a": "ftp://u:pw@h/", "b": {"c": "s3cr3t"}},
    ...                        {"a": "ftp://u:***@h/", "b": "***"}))
    ['pw', 's3cr3t']
    """
    if isinstance(original, str) and isinstance(shown, str):
        if original == shown:
            return set()
        if shown == REDACTED:
            return {original}
        start = _common_length(original, shown)
        end = _common_length(original[start:][::-1], shown[start:][::-1])
        return {original[start : len(original) - end]}
    if isinstance(original, Mapping) and isinstance(shown, Mapping):
        return set().union(*(removed_secrets(original[k], shown.get(k)) for k in original))
    if isinstance(original, (list, tuple)) and isinstance(shown, (list, tuple)):
        return set().union(*(removed_secrets(a, b) for a, b in zip(original, shown, strict=False)))
    if shown == REDACTED:
        return _strings(original)
    return set()


def _common_length(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b``."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, Mapping):
        return set().union(*map(_strings, value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*map(_strings, value))
    return set()


class Scrubber:
    """Takes known secret values, and the user information of URLs, out of text.

    The belt to redaction's braces: whatever a message quotes (an exception
    of a storage library, a traceback), the secrets of the settings do not
    get through. Values shorter than :data:`MIN_SCRUBBED_LENGTH` are left,
    since scrubbing them would garble every message.

    Examples
    --------
    >>> scrubber = Scrubber()
    >>> scrubber.add({"hunter22", "ab"})
    >>> scrubber.scrub("login hunter22 failed for https://u:pw@h/ (ab)")
    'login *** failed for https://u:***@h/ (ab)'
    """

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secrets: Iterable[str]) -> None:
        """Scrub these values from now on."""
        found = {s for s in secrets if len(s) >= MIN_SCRUBBED_LENGTH} | set(self._secrets)
        self._secrets = sorted(found, key=len, reverse=True)  # the longest first

    def scrub(self, text: str) -> str:
        """``text`` without the known secrets and without URL user information."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return redact_text(text)


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
    if "@" in location:  # user information, perhaps a password: never echoed
        raise SchedulerAddressError(
            f"the Dask scheduler address {redact_url(address)} holds user information; Dask "
            f"addresses have none: write it as {scheme}://HOST:PORT"
        )
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
