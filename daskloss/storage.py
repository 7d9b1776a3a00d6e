"""Whole files on local disk or an object store: written atomically, read with a size limit.

Reports, statistics artifacts and the cache of an incremental run are each
one small document, written whole and read whole:

* :func:`write_bytes` replaces a local file atomically (a temporary file in
  the same directory, flushed to disk, renamed over the target; only ever
  over a regular file) and sends a URL's document in one
  :meth:`~fsspec.AbstractFileSystem.pipe_file` call, which object stores
  (S3, GCS, Azure) apply whole.
* :func:`read_bytes` reads a local regular file (never a FIFO or a device)
  or a URL, refusing one larger than a limit.
"""

from __future__ import annotations

import gzip
import os
import secrets
import stat
import zlib
from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from daskloss.policy import file_kind, open_regular

__all__ = ["gunzip", "gzipped", "read_bytes", "replace_local", "write_bytes"]


def write_bytes(path: str, data: bytes, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ``data`` to a local path or fsspec URL, atomically (see the module docstring).

    Raises
    ------
    Exception
        Whatever the filesystem raises (``OSError``, an object store's own errors).

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "new", "stats.json")
    >>> write_bytes(target, b"{}")
    >>> open(target, "rb").read()
    b'{}'
    """
    fs, target = fsspec.core.url_to_fs(path, **dict(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        replace_local(target, data)
    else:
        fs.pipe_file(target, data)


def read_bytes(path: str, storage_options: Mapping[str, Any] | None = None, *, limit: int) -> bytes:
    """The content of a local regular file or a URL, at most ``limit`` bytes.

    Raises
    ------
    OSError
        It cannot be read, is not a regular file, or is larger than ``limit``
        (``EFBIG``); a missing file is a ``FileNotFoundError``.
    """
    fs, target = fsspec.core.url_to_fs(path, **dict(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        handle: Any = open(open_regular(target), "rb")
    else:
        handle = fs.open(target, "rb")
    with handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(27, f"it is larger than {limit} bytes", path)  # EFBIG
    return data


def gunzip(data: bytes, limit: int) -> bytes:
    """``data`` decompressed if it is gzip data (else as it is), at most ``limit`` bytes of it.

    Raises
    ------
    ValueError
        Corrupt or truncated gzip data, or more than ``limit`` bytes once decompressed.

    Examples
    --------
    >>> gunzip(gzip.compress(b"{}"), 10), gunzip(b"{}", 10)
    (b'{}', b'{}')
    """
    if data[:2] != b"\x1f\x8b":
        return data
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"its gzip data are corrupt ({exc})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ValueError(f"it is larger than {limit} bytes once decompressed")
    if not inflater.eof:
        raise ValueError("its gzip data are truncated")
    return out


def gzipped(data: bytes, level: int = 9) -> bytes:
    """``data`` gzip-compressed at ``level`` (1 fastest, 9 smallest), the same bytes every time.

    No time stamp is written.
    """
    return gzip.compress(data, compresslevel=level, mtime=0)


def replace_local(target: str, data: bytes) -> None:
    """Temporary file in the same directory, fsync, then rename over ``target``.

    The directory is created if need be; the temporary file is created with
    mode 0o666, so that the umask (and a default ACL) decide the file's mode.
    A ``target`` that is not a regular file is refused, never replaced.
    """
    directory = os.path.dirname(target) or "."
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(target)}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    handle = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        _check_replaceable(target)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    _sync_directory(directory)


def _check_replaceable(target: str) -> None:
    """Refuse to rename over anything but a regular file (it may have appeared since the check)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise IsADirectoryError(0, f"{target} is {file_kind(mode)}, not a regular file")


def _sync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
