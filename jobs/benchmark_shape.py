"""The cost of the shape of the errors: ``python -m jobs.benchmark_shape --help`` (repo root).

Thin: the logic lives in :mod:`benchmarks.shape`, outside the installed package.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks import shape


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line ``argv``; return the exit code."""
    return shape.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
