"""The incremental-run benchmark: ``python -m jobs.benchmark_incremental --help``.

Thin: the logic lives in :mod:`benchmarks.incremental`, outside the installed package.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks import incremental


def main(argv: Sequence[str] | None = None) -> int:
    """Run the incremental-run benchmark with command-line ``argv``; return the exit code."""
    return incremental.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
