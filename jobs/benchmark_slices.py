"""The slicing benchmark: ``python -m jobs.benchmark_slices --help`` (from the repository root).

Thin: the logic lives in :mod:`benchmarks.slices`, outside the installed package.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks import slices


def main(argv: Sequence[str] | None = None) -> int:
    """Run the slicing benchmark with command-line ``argv``; return the exit code."""
    return slices.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
