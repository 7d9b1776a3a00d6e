"""The benchmark job of issue 4: ``python -m jobs.benchmark --help``.

Thin: the logic lives in :mod:`daskloss.bench`.
"""

from __future__ import annotations

from collections.abc import Sequence

from daskloss import bench


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line ``argv``; return the exit code."""
    return bench.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
