"""The evaluation job: ``python -m jobs.evaluate CONFIG [options]``.

The same as ``daskloss evaluate CONFIG [options]``; the logic lives in
:mod:`daskloss.cli` and :mod:`daskloss.job`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from daskloss import cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``daskloss evaluate`` with command-line ``argv``; return the exit code."""
    return cli.main(["evaluate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
