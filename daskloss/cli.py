"""The ``daskloss`` command line: argument parsing and exit codes, nothing else.

The work is done by :func:`daskloss.job.run_job` and
:func:`daskloss.sample.write_sample`; this module turns arguments into their
inputs, their outcome into output streams, and exceptions into exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version

import daskloss
from daskloss.config import SCHEDULER_ENV_VARS, load_settings
from daskloss.errors import ConfigError, DasklossError
from daskloss.job import run_job
from daskloss.policy import redact_url
from daskloss.report import format_table, render_json
from daskloss.sample import write_sample

__all__ = ["EXIT_CODES", "main"]

#: Exit status of each outcome.
EXIT_CODES: dict[str, int] = {
    "success": 0,
    "usage": 2,  # bad command line or config: ConfigError, argparse errors
    "data": 3,  # bad input data: DataError and subclasses, ReadError
    "runtime": 4,  # scheduler unreachable, worker died, any unexpected error
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

run "daskloss COMMAND --help" for the options of a command.
"""

_EVALUATE_EPILOG = f"""\
settings precedence (highest first):
  --scheduler / --output, then --set (in order)
  environment: {" then ".join(SCHEDULER_ENV_VARS)} (cluster.address)
  the config file
  defaults
relative local paths are resolved against the current directory.

output: the JSON report (--format json, the default) or the summary table
(--format table) on stdout; the table on stderr with --format json.

exit codes:
  0    success
  2    bad config or command line
  3    bad data: missing or non-numeric column, NaN (nan_policy = "error"),
       unreadable or corrupt file, no files
  4    runtime failure: scheduler unreachable, worker lost, unexpected error
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
    with _logging(args.verbose):
        try:
            return args.run(args)
        except ConfigError as exc:
            return _fail(str(exc), "usage", args.verbose)
        except DasklossError as exc:
            return _fail(str(exc), "data", args.verbose)
        except ConnectionError as exc:
            return _fail(str(exc), "runtime", args.verbose)
        except KeyboardInterrupt:
            return _fail("interrupted", "interrupted", args.verbose)
        except Exception as exc:
            hint = "" if args.verbose else " (run with -v for the traceback)"
            return _fail(f"{type(exc).__name__}: {exc}{hint}", "runtime", args.verbose)


def _evaluate(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config, overrides=args.set, scheduler=args.scheduler, output=args.output
    )
    report = run_job(settings, interactive=sys.stderr.isatty())
    table = format_table(report)
    if args.stdout_format == "json":
        sys.stdout.write(render_json(report))
        sys.stdout.flush()
        print(table, file=sys.stderr)
    else:
        print(table)
    if settings.output.path is not None:
        print(f"report written to {redact_url(settings.output.path)}", file=sys.stderr)
    return EXIT_CODES["success"]


def _make_sample(args: argparse.Namespace) -> int:
    paths = write_sample(args.directory, rows=args.rows, files=args.files, seed=args.seed)
    print(
        f"wrote {args.rows} rows in {len(paths)} Parquet files to {args.directory}", file=sys.stderr
    )
    return EXIT_CODES["success"]


def _fail(message: str, outcome: str, verbose: int) -> int:
    """Print a one-line error (the traceback too for a runtime error with -v)."""
    print(f"daskloss: error: {' '.join(message.split())}", file=sys.stderr)
    if outcome == "runtime" and verbose:
        traceback.print_exc(file=sys.stderr)
    return EXIT_CODES[outcome]


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
    _add_make_sample(commands, common)
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
        "--scheduler",
        metavar="ADDRESS",
        help='run on the Dask scheduler at ADDRESS, e.g. tcp://host:8786; "" for the '
        "embedded default (cluster.address)",
    )
    evaluate.add_argument(
        "--format",
        dest="stdout_format",
        choices=("json", "table"),
        default="json",
        help="what goes to stdout: the JSON report (default) or the summary table",
    )
    evaluate.set_defaults(run=_evaluate)


def _add_make_sample(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sample = commands.add_parser(
        "make-sample",
        parents=[common],
        help="write a sample partitioned Parquet dataset of predictions",
        description="Write a deterministic sample dataset of regression predictions to DIR: "
        "Parquet files of unequal sizes with columns id, segment, y_true, y_pred (with noise "
        "and outliers) and weight. DIR is created; it may only hold earlier sample files.",
    )
    sample.add_argument("directory", metavar="DIR", help="where to write the files")
    sample.add_argument(
        "--rows", type=_positive, default=1_000_000, help="total rows (default 1000000)"
    )
    sample.add_argument("--files", type=_positive, default=8, help="number of files (default 8)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.set_defaults(run=_make_sample)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


@contextmanager
def _logging(verbosity: int) -> Iterator[None]:
    """Log to stderr: WARNING by default, INFO with -v, DEBUG with -vv."""
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours, theirs = logging.getLogger("daskloss"), logging.getLogger("distributed")
    saved = ours.level, theirs.level
    ours.setLevel(level)
    ours.addHandler(handler)
    theirs.setLevel(logging.WARNING if verbosity < 2 else logging.DEBUG)
    try:
        yield
    finally:
        ours.removeHandler(handler)
        ours.setLevel(saved[0])
        theirs.setLevel(saved[1])
