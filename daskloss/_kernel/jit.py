"""numba's ``njit`` with its on-disk cache, and a fallback where numba has no cache directory."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from numba import njit

__all__ = ["cached_njit"]

_LOG = logging.getLogger("daskloss.kernel")


def cached_njit(**options: Any) -> Callable[[Callable], Any]:
    """``numba.njit(cache=True, **options)``, or uncached where numba finds no place.

    numba refuses ``cache=True`` when neither the package's ``__pycache__`` nor
    a user cache directory is writable (a container user without a home): the
    kernel is then compiled again by each process, and a warning says how to
    keep it.
    """

    def decorate(function: Callable) -> Any:
        try:
            return njit(cache=True, **options)(function)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            _warn_uncached()
            return njit(**options)(function)

    return decorate


@functools.cache
def _warn_uncached() -> None:
    _LOG.warning(
        "numba has no writable directory to cache the compiled kernel in, so every run "
        "compiles it again (about 10 s); set NUMBA_CACHE_DIR to a writable directory"
    )
