"""A scheduled run: its date and id, the output paths they name, and what it read.

An orchestrator runs the job once per interval and wants each run's outputs
in a place of their own: ``output.path``, ``output.stats``, ``output.html``
and ``output.losses`` may hold ``{date}`` (the run's date, ``YYYY-MM-DD``) and
``{run_id}``, expanded when the job starts (``{{`` and ``}}`` stand for
literal braces). Both come from the
command line (``--run-date``, ``--run-id``: pass the orchestrator's logical
date and run id, so that a retried run writes to the same place); by default
the date is today's in UTC and the id the start time, ``20260131T120000Z``.

The report of a run names the files it evaluated (count, bytes and a digest of
their paths, sizes and versions: two runs with the same digest evaluated the
same bytes) and, likewise, those it actually read (fewer with a cache).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from daskloss.errors import ConfigError
from daskloss.sources.plan import FileEntry, listing_digest

__all__ = ["RunInfo", "inputs_section"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
#: A run id: what orchestrators use (Airflow's "scheduled__2026-01-31T00:00:00+00:00"),
#: never a path separator or a leading dot.
_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+=@-]{0,199}")


@dataclass(frozen=True)
class RunInfo:
    """A run's date (``YYYY-MM-DD``) and id, as output paths name them.

    Examples
    --------
    >>> run = RunInfo.of("2026-01-31", "nightly-7")
    >>> run.expand("s3://bucket/reports/{date}/{run_id}/report.json")
    's3://bucket/reports/2026-01-31/nightly-7/report.json'
    >>> run.expand("/r/{{literal}}/{date}.json")
    '/r/{literal}/2026-01-31.json'
    """

    date: str
    id: str

    @classmethod
    def of(
        cls, run_date: str | None = None, run_id: str | None = None, now: datetime | None = None
    ) -> RunInfo:
        """The run of this date and id; by default today's UTC date and the start time.

        Raises
        ------
        ConfigError
            A date that is not ``YYYY-MM-DD``, or an id with other characters
            than letters, digits and ``_.:+=@-`` (or longer than 200).
        """
        now = now or datetime.now(UTC)
        if run_date is None:
            run_date = now.date().isoformat()
        else:
            try:
                date.fromisoformat(run_date)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"--run-date: expected a date such as 2026-01-31, got {run_date[:40]!r}"
                ) from None
            if len(run_date) != 10:
                raise ConfigError(f"--run-date: expected YYYY-MM-DD, got {run_date[:40]!r}")
        if run_id is None:
            run_id = now.strftime("%Y%m%dT%H%M%SZ")
        elif not _RUN_ID.fullmatch(run_id):
            raise ConfigError(
                f"--run-id: expected up to 200 letters, digits and _.:+=@- (not starting with "
                f"'.' or '-'), got {run_id[:40]!r}"
            )
        return cls(run_date, run_id)

    def expand(self, path: str, key: str = "output.path") -> str:
        """``path`` with ``{date}`` and ``{run_id}`` replaced.

        Raises
        ------
        ConfigError
            Another placeholder (``{day}``), naming ``key``.
        """

        def value(match: re.Match[str]) -> str:
            text = match.group()
            if text in ("{{", "}}"):
                return text[0]
            if match.group(1) == "date":
                return self.date
            if match.group(1) == "run_id":
                return self.id
            raise ConfigError(
                f"config key '{key}': unknown placeholder {text[:40]!r}; use {{date}} or "
                "{run_id} ({{ and }} for literal braces)"
            )

        return _PLACEHOLDER.sub(value, path)

    def to_json(self) -> dict[str, Any]:
        """The report's ``run``."""
        return {"date": self.date, "id": self.id}


def inputs_section(listing: Sequence[FileEntry], read: Sequence[str]) -> dict[str, Any]:
    """The report's ``inputs``: the files evaluated and those of them read.

    Examples
    --------
    >>> files = [FileEntry("/d/a.parquet", 10, "v1"), FileEntry("/d/b.parquet", 20, "v2")]
    >>> section = inputs_section(files, ["/d/b.parquet"])
    >>> section["files"], section["bytes"], section["read"]["files"], section["read"]["bytes"]
    (2, 30, 1, 20)
    """
    chosen = set(read)
    read_entries = [entry for entry in listing if entry.path in chosen]
    return {
        "files": len(listing),
        "bytes": sum(entry.size for entry in listing),
        "digest": listing_digest(listing),
        "read": {
            "files": len(read),
            "bytes": sum(entry.size for entry in read_entries),
            "digest": listing_digest(read_entries),
        },
    }
