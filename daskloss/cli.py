"""The ``daskloss`` command line: argument parsing and exit codes, nothing else.

The work is done by :func:`daskloss.job.run_job` (``evaluate``),
:func:`daskloss.job.merge_statistics` (``merge``),
:func:`daskloss.job.report_statistics` (``report``) and
:func:`daskloss.sample.write_sample`; this module turns arguments into their
inputs, their outcome into output streams, and exceptions into exit codes. A
report whose gates failed is printed and written like any other, then the
command exits with its own code (5).

Everything it prints on stderr (the one-line error, log lines, a traceback
with ``-v``) goes through a :class:`~daskloss.policy.Scrubber` that knows the
job's secrets, and every line is capped: a 50 MB column name or path in a
message is shown by its ends. Distributed's own log lines (and those of
tornado and asyncio) are silenced unless ``-v``: the one-line error says what
happened.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version

import daskloss
from daskloss.config import SCHEDULER_ENV_VARS, load_settings, secret_values
from daskloss.errors import ConfigError, DasklossError
from daskloss.job import merge_statistics, report_statistics, run_job
from daskloss.policy import Scrubber, redact_url
from daskloss.report import render_json
from daskloss.runs import RunInfo
from daskloss.sample import write_sample
from daskloss.table import format_table
from daskloss.warmup import warm_kernel

__all__ = ["EXIT_CODES", "main"]

#: Exit status of each outcome.
EXIT_CODES: dict[str, int] = {
    "success": 0,
    "usage": 2,  # bad command line or config: ConfigError, argparse errors
    "data": 3,  # bad input data: DataError and subclasses, ReadError
    "runtime": 4,  # scheduler unreachable, worker died, any unexpected error
    "gate": 5,  # a quality gate failed; the report was written
    "interrupted": 130,  # Ctrl-C
}

_DESCRIPTION = """\
Exact regression metrics (MSE, RMSE, L2, MAE, R², ...) over partitioned
prediction datasets (Parquet or CSV, local or on object stores), computed
with Dask. Every number is the correctly rounded float64 of the exact value,
identical whatever the partitioning or the cluster.

quick start:
  daskloss make-sample sample/
  daskloss evaluate configs/example.toml

scheduled runs:
  daskloss evaluate job.toml --run-date 2026-01-31 --format path
  daskloss merge day1.stats.json day2.stats.json -o week.stats.json
  daskloss report week.stats.json
in a container image, after installing daskloss:
  daskloss warmup            # compile the exact kernel once, for every later process

run "daskloss COMMAND --help" for the options of a command.
"""

_EVALUATE_EPILOG = f"""\
settings precedence (highest first):
  --scheduler / --output / --html, then --set (in order)
  environment: {" then ".join(SCHEDULER_ENV_VARS)} (cluster.address)
  the config file
  defaults
relative local paths are resolved against the current directory.

output: the JSON report (--format json, the default), the summary table
(--format table) or the report's path (--format path, one line, for the next
task of a pipeline) on stdout; the table on stderr otherwise.
output.path, output.stats, output.html and output.losses may hold {{date}} and
{{run_id}}: --run-date
(YYYY-MM-DD, default today in UTC) and --run-id (default the start time).

exit codes:
  0    success
  2    bad config or command line, a path outside $DASKLOSS_READ_ROOTS, a
       report path that must not or cannot be written
  3    bad data: missing or non-numeric column, NaN (nan_policy = "error"),
       unreadable, corrupt or irregular (FIFO, device) file, no files
  4    runtime failure: scheduler unreachable, worker lost or stalled
       (cluster.stall_timeout), unexpected error (retry these)
  5    a quality gate ([[gates]]) failed; the report was written
  130  interrupted

examples:
  daskloss evaluate configs/example.toml --format table
  daskloss evaluate configs/example.toml --set evaluation.nan_policy=skip \\
      --set 'evaluation.metrics=["mse", "rmse"]' --output out/report.json
  daskloss evaluate configs/cluster.toml --scheduler tcp://10.0.0.5:8786
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``daskloss`` command with ``argv`` (``sys.argv[1:]`` when None).

    Returns
    -------
    int
        The exit status (see :data:`EXIT_CODES`).
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_CODES["usage"]
    args.scrubber = Scrubber()
    with _logging(args.verbose, args.scrubber):
        try:
            return args.run(args)
        except ConfigError as exc:
            return _fail(str(exc), "usage", args)
        except DasklossError as exc:
            return _fail(str(exc), "data", args)
        except ConnectionError as exc:
            return _fail(str(exc), "runtime", args)
        except KeyboardInterrupt:
            return _fail("interrupted", "interrupted", args)
        except Exception as exc:
            hint = "" if args.verbose else " (run with -v for the traceback)"
            return _fail(f"{type(exc).__name__}: {exc}{hint}", "runtime", args)


def _evaluate(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config,
        overrides=args.set,
        scheduler=args.scheduler,
        output=args.output,
        html=args.html,
    )
    args.scrubber.add(secret_values(settings))
    if args.stdout_format == "path" and settings.output.path is None:
        raise ConfigError("--format path prints where the report is written: set output.path")
    run = RunInfo.of(args.run_date, args.run_id)
    report = run_job(settings, interactive=sys.stderr.isatty(), run=run)
    return _emit(report, args)


def _merge(args: argparse.Namespace) -> int:
    run = RunInfo.of(args.run_date, args.run_id)
    merged = merge_statistics(args.artifacts, args.output, run=run)
    target = redact_url(run.expand(args.output, "--output"))
    count = merged.evaluation.overall().count
    print(
        f"merged {len(args.artifacts)} statistics ({count} rows, {len(merged.files)} files) "
        f"into {target}",
        file=sys.stderr,
    )
    print(target, flush=True)
    return EXIT_CODES["success"]


def _report(args: argparse.Namespace) -> int:
    run = RunInfo.of(args.run_date, args.run_id)
    if args.stdout_format == "path" and args.output is None:
        raise ConfigError("--format path prints where the report is written: give --output")
    report = report_statistics(args.artifact, output=args.output, run=run)
    return _emit(report, args)


def _emit(report: dict, args: argparse.Namespace) -> int:
    """Print the report as asked; the exit code: success, or a failed gate's."""
    table = format_table(report)
    path = report.get("outputs", {}).get("report")
    if args.stdout_format == "json":
        sys.stdout.write(render_json(report))
        sys.stdout.flush()
        print(table, file=sys.stderr)
    elif args.stdout_format == "table":
        print(table, flush=True)
    else:
        print(table, file=sys.stderr)
    if path is not None:
        print(f"report written to {path}", file=sys.stderr)
    html = report.get("outputs", {}).get("html")
    if html is not None:
        print(f"HTML report written to {html}", file=sys.stderr)
    if args.stdout_format == "path":
        print(path, flush=True)
    gates = report.get("gates")
    if gates is not None and not gates["passed"]:
        failed = [r["name"] for r in gates["results"] if r["verdict"] == "fail"]
        written = f"; the report was written to {path}" if path else ""
        message = f"{len(failed)} of {len(gates['results'])} gates failed: {', '.join(failed)}"
        return _fail(message + written, "gate", args)
    return EXIT_CODES["success"]


def _make_sample(args: argparse.Namespace) -> int:
    paths = write_sample(args.directory, rows=args.rows, files=args.files, seed=args.seed)
    print(
        f"wrote {args.rows} rows in {len(paths)} Parquet files to {args.directory}", file=sys.stderr
    )
    return EXIT_CODES["success"]


def _warmup(args: argparse.Namespace) -> int:
    weighted = {"both": None, "unweighted": False, "weighted": True}[args.kind]
    for kind, seconds in warm_kernel(weighted).items():
        print(f"{kind} kernel ready in {seconds:.2f} s", file=sys.stderr)
    where = os.environ.get("NUMBA_CACHE_DIR")
    place = where or "next to the installed package (else the user's cache directory)"
    print(f"numba's cache is {place}: later processes load the kernel from it", file=sys.stderr)
    return EXIT_CODES["success"]


def _fail(message: str, outcome: str, args: argparse.Namespace) -> int:
    """Print a one-line error (the traceback too for a runtime error with -v)."""
    line = _shown(" ".join(args.scrubber.scrub(message).split()))
    print(f"daskloss: error: {line[:MAX_LINE]}", file=sys.stderr)
    if outcome == "runtime" and args.verbose:
        print(_shown(args.scrubber.scrub(traceback.format_exc())), end="", file=sys.stderr)
    return EXIT_CODES[outcome]


#: The longest error line printed; longer ones are cut (words are cut first, see _shown).
MAX_LINE = 4000
#: A run of this many characters without a space is shown by its ends.
_LONG_WORD = re.compile(r"(?<!\S)\S{201,}")  # from word starts only: linear
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _shown(text: str) -> str:
    """``text`` safe to print: control characters escaped, very long words cut in the middle.

    Error messages echo paths, column names and values as given; a terminal
    escape sequence or a 50 MB name must not reach the terminal whole.

    Examples
    --------
    >>> print(_shown("name a" + chr(27) + "[2J"))
    name a\\x1b[2J
    >>> shown = _shown("/d/" + "x" * 10_000)
    >>> len(shown), shown[95:135]
    (167, 'xxxxx...[9863 characters cut]...xxxxxxxx')
    """
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    return _LONG_WORD.sub(_cut, text)


def _cut(match: re.Match[str]) -> str:
    word = match.group()
    return f"{word[:100]}...[{len(word) - 140} characters cut]...{word[-40:]}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daskloss",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"daskloss {daskloss.__version__} (dask {version('dask')}, "
        f"distributed {version('distributed')})",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log progress and steps (-v: INFO, -vv: DEBUG); show tracebacks",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_evaluate(commands, common)
    _add_merge(commands, common)
    _add_report(commands, common)
    _add_make_sample(commands, common)
    _add_warmup(commands, common)
    return parser


def _add_evaluate(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        parents=[common],
        help="evaluate the predictions a config file names; write the JSON report",
        description="Evaluate the predictions that CONFIG (a TOML job config) names, print\n"
        "the report and write it to output.path. See configs/example.toml and the\n"
        "config reference in README.md.",
        epilog=_EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("config", metavar="CONFIG", help="the job config, a TOML file")
    evaluate.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config key, e.g. --set columns.weight=w or --set cluster.n_workers=2; "
        'VALUE is read as TOML (3, true, ["mse"]), else as a string; repeatable',
    )
    evaluate.add_argument("--output", metavar="PATH", help="write the report here (output.path)")
    evaluate.add_argument(
        "--html", metavar="PATH", help="write a self-contained HTML report here (output.html)"
    )
    evaluate.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help='run on the Dask scheduler at ADDRESS, e.g. tcp://host:8786; "" for the '
        "embedded default (cluster.address)",
    )
    _add_output_flags(evaluate)
    evaluate.set_defaults(run=_evaluate)


def _add_output_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--format",
        dest="stdout_format",
        choices=("json", "table", "path"),
        default="json",
        help="what goes to stdout: the JSON report (default), the summary table, or the "
        "report's path (one line, for the next task)",
    )
    _add_run_flags(command)


def _add_run_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--run-date",
        metavar="YYYY-MM-DD",
        help="the run's date, {date} in output paths (default: today, UTC)",
    )
    command.add_argument(
        "--run-id",
        metavar="ID",
        help="the run's id, {run_id} in output paths (default: the start time, UTC)",
    )


def _add_merge(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    merge = commands.add_parser(
        "merge",
        parents=[common],
        help="merge statistics artifacts (output.stats) into one",
        description="Merge the statistics artifacts of runs over disjoint files into one: its "
        "report is that of one run over all their rows. Artifacts of different column roles, "
        "slices, baselines or NaN policies, or sharing a file, are refused (exit code 3). "
        "Their histograms and worst rows merge too when every run gathered them with the "
        "same settings (else the merged artifact holds none: -v says why). "
        "Prints the output path on stdout.",
    )
    merge.add_argument("artifacts", metavar="ARTIFACT", nargs="+", help="statistics to merge")
    merge.add_argument(
        "-o", "--output", metavar="PATH", required=True, help="where to write the merged artifact"
    )
    _add_run_flags(merge)
    merge.set_defaults(run=_merge)


def _add_report(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    report = commands.add_parser(
        "report",
        parents=[common],
        help="the report of a statistics artifact, printed as evaluate prints it",
        description="Build the report of a statistics artifact (output.stats, or daskloss "
        "merge's output) with the settings of the run that wrote it (metrics, slices, "
        "gates) and print it as evaluate does. Exit code 5 if a gate fails.",
    )
    report.add_argument("artifact", metavar="ARTIFACT", help="a statistics artifact")
    report.add_argument("--output", metavar="PATH", help="also write the report here")
    _add_output_flags(report)
    report.set_defaults(run=_report)


def _add_make_sample(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sample = commands.add_parser(
        "make-sample",
        parents=[common],
        help="write a sample partitioned Parquet dataset of predictions",
        description="Write a deterministic sample dataset of regression predictions to DIR: "
        "Parquet files of unequal sizes with columns id, segment, y_true, y_pred (with noise "
        "and outliers), y_pred_baseline (an older model) and weight. DIR is created; it may "
        "only hold earlier sample files.",
    )
    sample.add_argument("directory", metavar="DIR", help="where to write the files")
    sample.add_argument(
        "--rows", type=_positive, default=1_000_000, help="total rows (default 1000000)"
    )
    sample.add_argument("--files", type=_positive, default=8, help="number of files (default 8)")
    sample.add_argument(
        "--seed", type=_natural, default=0, help="random seed, an integer >= 0 (default 0)"
    )
    sample.set_defaults(run=_make_sample)


def _add_warmup(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    warmup = commands.add_parser(
        "warmup",
        parents=[common],
        help="compile the exact kernel into numba's cache, so no later run waits for it",
        description="Compile the exact kernel (or load it, if cached) and leave it in numba's "
        "on-disk cache: NUMBA_CACHE_DIR when set, else next to the installed package (or the "
        "user's cache directory when that is read-only). A process that finds the cache loads "
        "the kernel in a fraction of a second instead of compiling it (about 20 s). Run "
        "it where daskloss is installed, such as in a container image or the image of a "
        "cluster's workers, with the NUMBA_CACHE_DIR the runs will have.",
    )
    warmup.add_argument(
        "--kind",
        choices=("both", "unweighted", "weighted"),
        default="both",
        help="which kernel: without a weight column, with one, or both (default)",
    )
    warmup.set_defaults(run=_warmup)


def _positive(text: str) -> int:
    return _integer_at_least(text, 1, "a positive integer")


def _natural(text: str) -> int:
    return _integer_at_least(text, 0, "an integer >= 0")


def _integer_at_least(text: str, least: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


#: Loggers of the libraries under the job. Silent by default: a lost scheduler makes
#: distributed log ERROR lines and tracebacks before the job's one-line error.
_THEIRS = ("distributed", "tornado", "asyncio", "bokeh")


class _ScrubbingFormatter(logging.Formatter):
    """Log lines through the scrubber, control characters escaped, long words cut."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        return _shown(self.scrubber.scrub(super().format(record)))


@contextmanager
def _logging(verbosity: int, scrubber: Scrubber) -> Iterator[None]:
    """Log to stderr: WARNING by default, INFO with -v, DEBUG with -vv.

    The libraries' loggers: silent by default, WARNING with -v, DEBUG with
    -vv, their lines scrubbed like ours.
    """
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    theirs_level = (
        logging.CRITICAL + 1 if verbosity == 0 else logging.WARNING if verbosity == 1 else level
    )
    formatter = _ScrubbingFormatter(scrubber)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    ours = logging.getLogger("daskloss")
    saved = [(ours, ours.level, [])]
    ours.setLevel(level)
    ours.addHandler(handler)
    for logger in _their_loggers():
        saved.append((logger, logger.level, [(h, h.formatter) for h in logger.handlers]))
        logger.setLevel(theirs_level)
        for their_handler in logger.handlers:
            their_handler.setFormatter(formatter)
    try:
        yield
    finally:
        ours.removeHandler(handler)
        for logger, old_level, formatters in saved:
            logger.setLevel(old_level)
            for their_handler, old_formatter in formatters:
                their_handler.setFormatter(old_formatter)


def _their_loggers() -> list[logging.Logger]:
    """The libraries' loggers that decide for themselves: each root, and any with a level."""
    named = logging.root.manager.loggerDict
    return [logging.getLogger(name) for name in _THEIRS] + [
        logger
        for name, logger in named.items()
        if isinstance(logger, logging.Logger)
        and name.split(".")[0] in _THEIRS
        and "." in name
        and (logger.level or logger.handlers)
    ]
