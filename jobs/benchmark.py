"""The benchmark job: ``python -m jobs.benchmark --help`` (from the repository root).

Thin: the logic lives in :mod:`benchmarks.bench`, outside the installed package.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks import bench


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line ``argv``; return the exit code."""
    return bench.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
