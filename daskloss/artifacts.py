"""Statistics artifacts: a run's exact statistics in a small, versioned, self-describing file.

An artifact holds everything the metrics of a run are computed from: every
slice's sums for every prediction and every comparison, as exact integers,
with the evaluation's spec (column roles, slices, baseline), the NaN policy,
and the files the statistics cover. Merging the artifacts of runs over
disjoint files gives, exactly, the statistics of one run over all of them
(:meth:`StatisticsArtifact.merge_all`), so their report is the same, byte for
byte in its metrics. When the run gathered the shape of its errors (each
prediction's residual histogram and worst rows, :mod:`daskloss.shape`), the
artifact holds it too, exactly, with the settings it was gathered under; the
shapes of runs gathered alike merge exactly as well, so the report's
quantiles, histogram, share of SE and worst rows are also one run's.

The file is JSON (gzip-compressed when its name ends in ``.gz``; read either
way), never a pickle. Version 2::

    format        "daskloss-statistics"
    version       2 (ARTIFACT_VERSION); a reader also reads version 1 (which has
                  no shape) and refuses any other
    created_by    {"daskloss": "0.1.0"}
    spec          {y_true, y_pred: [...], weight, group_by: [...], baseline, moments}
    nan_policy    "error" or "skip"
    fields        {slice: [...], prediction: [...], pair: [...]}: the order of the
                  values in each slice's row below
    key_types     {column: "string" | "integer" | "boolean" | "date" | "datetime" |
                  "timestamp"} of the slice keys' non-null values
    slices        [[key, [slice values], [[prediction values], ...], [[pair values], ...]],
                  ...] in key order; key is a list of one value per group_by column
                  ([] without slices): a JSON string, number, boolean or null, or
                  {"date": ISO}, {"datetime": ISO}, {"timestamp": ISO} (a pandas
                  Timestamp, nanoseconds included)
    dataset       {paths: [...], format, partitions, files: [[path, size, version], ...]}
    settings      the run's resolved settings, secrets redacted (null from the library)
    shape         null, or {histogram, worst_k, id_columns, predictions}: the shape
                  settings (the histogram gathered or not, the worst rows kept per
                  slice and their id columns) and each prediction's histogram and
                  worst rows (:meth:`ShapeStats.to_data
                  <daskloss.shape.ShapeStats.to_data>`, as the cache keeps them:
                  exact counts and weight sums, the worst rows as an Arrow IPC stream)

Counts are JSON integers; exact sums are text ``"0x<mantissa>p<exponent>"``
standing for ``mantissa * 2**exponent`` (:func:`daskloss.exact.dyadic_text`:
significant bits only, whatever the unit of this daskloss); the largest
absolute error is a JSON number (a float64, written to round-trip exactly);
moments that were not summed are null.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

import daskloss
from daskloss.errors import ConfigError, DataError, ReadError
from daskloss.exact import dyadic_text, dyadic_value
from daskloss.names import NAN_POLICIES
from daskloss.policy import redact_text, redact_url
from daskloss.roles import EvaluationSpec
from daskloss.shape import ShapeSpec, ShapeStats
from daskloss.sources.plan import FileEntry
from daskloss.stats import ErrorStats, EvaluationStats, PairStats, SliceStats
from daskloss.storage import gunzip, gzipped, read_bytes, write_bytes

if TYPE_CHECKING:
    from daskloss.evaluate import EvaluationResult

__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_VERSION",
    "MAX_ARTIFACT_BYTES",
    "READABLE_VERSIONS",
    "StatisticsArtifact",
    "decode_shape",
    "decode_slices",
    "decode_statistics",
    "encode_shape",
    "encode_slices",
    "encode_statistics",
    "read_artifact",
    "spec_data",
    "write_artifact",
]

_LOG = logging.getLogger(__name__)

#: What the ``format`` field of every artifact says.
ARTIFACT_FORMAT = "daskloss-statistics"
#: The artifact format's version: raised whenever what is saved changes meaning.
ARTIFACT_VERSION = 2
#: The versions a reader accepts: version 1 is version 2 without the ``shape``.
READABLE_VERSIONS = (1, 2)
#: The largest artifact read, compressed or not (a run's statistics take kilobytes).
MAX_ARTIFACT_BYTES = 1 << 30

#: The order of a slice's shared values, of each prediction's and of each pair's.
SLICE_FIELDS = (
    "count",
    "skipped_rows",
    "weight_sum",
    "target_sum",
    "target_squared",
    "weight_squared",
)
PREDICTION_FIELDS = ("squared_error", "abs_error", "signed_error", "max_abs_error", "fourth_power")
PAIR_FIELDS = ("squared_product", "abs_product")
_COUNTS = frozenset({"count", "skipped_rows"})
_FLOATS = frozenset({"max_abs_error"})


def encode_statistics(evaluation: EvaluationStats) -> dict[str, Any]:
    """An evaluation's statistics as JSON-ready data: spec, fields, key types, slices.

    Examples
    --------
    >>> import numpy as np
    >>> from daskloss.chunks import Chunk
    >>> spec = EvaluationSpec.of("y", "p")
    >>> chunk = Chunk({"y": np.array([1.0, 2.0]), "p": np.array([1.5, 2.0])}, (("", 2),))
    >>> data = encode_statistics(EvaluationStats.from_chunks([chunk], spec))
    >>> data["slices"]
    [[[], [2, 0, '0x1p1', '0x3p0', '0x5p0', None], [['0x1p-2', '0x1p-1', '0x1p-1', 0.5, None]], []]]
    >>> decode_statistics(data, "example").overall().predictions[0].metrics()["mse"]
    0.125
    """
    spec = evaluation.spec
    return {
        "spec": spec_data(spec),
        "fields": {"slice": SLICE_FIELDS, "prediction": PREDICTION_FIELDS, "pair": PAIR_FIELDS},
        "key_types": _key_types(spec, evaluation.rows),
        "slices": encode_slices(evaluation),
    }


def encode_slices(evaluation: EvaluationStats) -> list[Any]:
    """Each slice's key and values, in key order (the ``slices`` of the module docstring)."""
    slices = evaluation.slices
    return [
        [[_key_value(value) for value in key], *_slice_values(slices[key])]
        for key in evaluation.sorted_keys()
    ]


def decode_slices(spec: EvaluationSpec, data: Iterable[Any]) -> EvaluationStats:
    """The statistics of :func:`encode_slices`'s data, for ``spec``.

    Raises
    ------
    ValueError, TypeError, KeyError, ConfigError
        Data that is not what :func:`encode_slices` writes.
    """
    slices: dict[tuple[Any, ...], SliceStats] = {}
    for entry in data:
        key_data, shared, predictions, pairs = entry
        key = tuple(_key_of(value) for value in key_data)
        if len(key) != len(spec.group_by) or key in slices:
            raise ValueError(f"slice key {key_data!r} is repeated or does not fit group_by")
        slices[key] = _slice_of(shared, predictions, pairs)
    return EvaluationStats.from_slices(spec, slices)


def decode_statistics(data: Mapping[str, Any], where: str) -> EvaluationStats:
    """The statistics :func:`encode_statistics` wrote (``where`` names them in errors).

    Raises
    ------
    DataError
        Data that is not what :func:`encode_statistics` writes.
    """
    try:
        spec = _spec_of(data["spec"])
        fields = data["fields"]
        if (
            tuple(fields["slice"]) != SLICE_FIELDS
            or tuple(fields["prediction"]) != PREDICTION_FIELDS
            or tuple(fields["pair"]) != PAIR_FIELDS
        ):
            raise ValueError(f"unknown fields {fields}")
        return decode_slices(spec, data["slices"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise DataError(
            f"{where} does not hold readable statistics ({type(exc).__name__}: "
            f"{redact_text(str(exc))[:200]}); was it written by daskloss?"
        ) from None


@dataclass(frozen=True)
class StatisticsArtifact:
    """A run's exact statistics and what they cover (see the module docstring).

    Attributes
    ----------
    evaluation : EvaluationStats
        Every slice's statistics, for every prediction and comparison.
    nan_policy : {'error', 'skip'}
        The NaN policy the statistics were computed under.
    files : tuple of FileEntry
        The files the statistics cover (empty for a DataFrame).
    datasets : tuple of str
        The dataset paths evaluated (several after a merge), URLs redacted.
    format : str or None
        The file format read (``"csv+parquet"`` after merging both).
    partitions : int
        Work units evaluated, summed over merged runs.
    settings : mapping or None
        The run's resolved settings, secrets redacted (of the first run, after
        a merge); None when the statistics came from the library.
    created_by : str
        The daskloss version that wrote the artifact.
    shape : ShapeStats or None
        Each prediction's residual histogram and worst rows, when the run
        gathered them (their settings: :meth:`ShapeStats.settings
        <daskloss.shape.ShapeStats.settings>`); None otherwise, after a merge
        of parts gathered otherwise, and in a version 1 artifact.
    """

    evaluation: EvaluationStats
    nan_policy: str
    files: tuple[FileEntry, ...] = ()
    datasets: tuple[str, ...] = ()
    format: str | None = None
    partitions: int = 0
    settings: Mapping[str, Any] | None = None
    created_by: str = field(default_factory=lambda: daskloss.__version__)
    shape: ShapeStats | None = None

    @classmethod
    def of(
        cls, result: EvaluationResult, nan_policy: str, settings: Mapping[str, Any] | None = None
    ) -> StatisticsArtifact:
        """The artifact of an evaluation's result (``settings``: the redacted settings)."""
        assert result.evaluation is not None
        dataset = None if settings is None else settings["dataset"]["path"]
        return cls(
            evaluation=result.evaluation,
            nan_policy=nan_policy,
            files=tuple(result.listing),
            datasets=(dataset,) if dataset else (),
            format=result.format,
            partitions=result.npartitions,
            settings=settings,
            shape=result.shape,
        )

    def to_json(self) -> dict[str, Any]:
        """The artifact as JSON-ready data (see the module docstring)."""
        return {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "created_by": {"daskloss": self.created_by},
            **encode_statistics(self.evaluation),
            "nan_policy": self.nan_policy,
            "dataset": {
                "paths": list(self.datasets),
                "format": self.format,
                "partitions": self.partitions,
                "files": [[e.path, e.size, e.version] for e in self.files],
            },
            "settings": None if self.settings is None else dict(self.settings),
            "shape": None if self.shape is None else encode_shape(self.shape),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> StatisticsArtifact:
        """Read :meth:`to_json`'s data back, checking its format and version.

        Raises
        ------
        DataError
            Not an artifact, another version, or malformed.
        """
        if not isinstance(data, Mapping) or data.get("format") != ARTIFACT_FORMAT:
            raise DataError(
                f'{where} is not a daskloss statistics artifact (no "format": '
                f'"{ARTIFACT_FORMAT}"); give files written by output.stats or daskloss merge'
            )
        version = data.get("version")
        if type(version) is not int or version not in READABLE_VERSIONS:
            raise DataError(
                f"{where} holds statistics of version {version!r}; this daskloss "
                f"({daskloss.__version__}) reads versions "
                f"{' and '.join(map(str, READABLE_VERSIONS))} only: use the daskloss that "
                "wrote it, or compute the statistics again"
            )
        evaluation = decode_statistics(data, where)
        try:
            shape = None if version == 1 else decode_shape(data["shape"], evaluation.spec, where)
            nan_policy = data["nan_policy"]
            if nan_policy not in NAN_POLICIES:
                raise ValueError(f"nan_policy {nan_policy!r}")
            dataset = data["dataset"]
            files = tuple(
                FileEntry(_text(path), _count(size), None if version is None else _text(version))
                for path, size, version in dataset["files"]
            )
            settings = data.get("settings")
            if settings is not None and not isinstance(settings, Mapping):
                raise TypeError("settings are not a table")
            return cls(
                evaluation=evaluation,
                nan_policy=nan_policy,
                files=files,
                datasets=tuple(map(_text, dataset["paths"])),
                format=dataset["format"],
                partitions=_count(dataset["partitions"]),
                settings=settings,
                created_by=str(data.get("created_by", {}).get("daskloss", "")),
                shape=shape,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(
                f"{where} is not a readable statistics artifact ({type(exc).__name__}: "
                f"{redact_text(str(exc))[:200]})"
            ) from None

    def to_bytes(self, *, compress: bool = False) -> bytes:
        """The artifact's file content: compact JSON, gzip-compressed if asked (reproducibly)."""
        text = json.dumps(self.to_json(), separators=(",", ":"), allow_nan=False) + "\n"
        data = text.encode("utf-8")
        return gzipped(data) if compress else data

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> StatisticsArtifact:
        """The artifact in a file's content, compressed or not (see :meth:`to_bytes`)."""
        try:
            data = gunzip(data, MAX_ARTIFACT_BYTES)
        except ValueError as exc:
            raise DataError(f"{where} is not readable: {exc}") from None
        try:
            parsed = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise DataError(
                f"{where} is not a daskloss statistics artifact: it is not JSON ({exc})"
            ) from None
        return cls.from_json(parsed, where)

    @classmethod
    def merge_all(
        cls, parts: Sequence[StatisticsArtifact], names: Sequence[str]
    ) -> StatisticsArtifact:
        """The artifact of all the runs' rows together (``names`` name the parts in errors).

        The shapes of the errors merge exactly when every part has one, gathered
        with the same settings (and worst rows whose id columns are of one type);
        otherwise the merged artifact has none (its statistics are merged all the
        same), and a log line at INFO says why.

        Raises
        ------
        DataError
            Parts whose spec (column roles, slices, baseline), NaN policy or slice
            key types differ, or that share a file (its rows would count twice).
        """
        first, first_name = parts[0], names[0]
        seen: dict[str, str] = {}
        for part, name in zip(parts, names, strict=True):
            _check_compatible(first, first_name, part, name)
            for entry in part.files:
                if entry.path in seen:
                    raise DataError(
                        f"{seen[entry.path]} and {name} both hold the statistics of "
                        f"{redact_url(entry.path)}; merging them would count its rows twice: "
                        "merge the statistics of disjoint files only"
                    )
                seen[entry.path] = name
        formats = sorted({part.format for part in parts if part.format})
        return cls(
            evaluation=EvaluationStats.merge_all([part.evaluation for part in parts]),
            nan_policy=first.nan_policy,
            files=tuple(sorted((e for p in parts for e in p.files), key=lambda e: e.path)),
            datasets=tuple(dict.fromkeys(path for part in parts for path in part.datasets)),
            format="+".join(formats) if formats else None,
            partitions=sum(part.partitions for part in parts),
            settings=first.settings,
            shape=_merged_shape(parts, names),
        )


def encode_shape(shape: ShapeStats) -> dict[str, Any]:
    """The shape of the errors as JSON-ready data (the ``shape`` of the module docstring)."""
    settings = shape.settings()
    return {
        "histogram": settings.histogram,
        "worst_k": settings.worst_k,
        "id_columns": list(settings.id_columns),
        "predictions": shape.to_data(),
    }


def decode_shape(data: Any, spec: EvaluationSpec, where: str) -> ShapeStats | None:
    """The shape :func:`encode_shape` wrote (None for null), checked against its settings.

    Raises
    ------
    DataError
        Data that is not what :func:`encode_shape` writes for ``spec``.
    """
    if data is None:
        return None
    try:
        histogram = data["histogram"]
        if not isinstance(histogram, bool):
            raise TypeError(f"histogram should be true or false, got {histogram!r}")
        settings = ShapeSpec.of(
            spec,
            histogram=histogram,
            worst_k=data["worst_k"],
            id_columns=[_text(name) for name in data["id_columns"]],
        )
        if not settings.active:
            raise ValueError("a shape with neither a histogram nor worst rows")
        return ShapeStats.from_data(data["predictions"], spec, settings)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise DataError(
            f"{where} does not hold a readable shape of the errors ({type(exc).__name__}: "
            f"{redact_text(str(exc))[:200]}); was it written by daskloss?"
        ) from None


def _merged_shape(parts: Sequence[StatisticsArtifact], names: Sequence[str]) -> ShapeStats | None:
    """The parts' shapes merged exactly, or None (logged) when they were not gathered alike."""
    shapes = [part.shape for part in parts if part.shape is not None]
    if not shapes:
        return None
    reason = _unlike_shapes(parts, names)
    if reason is None:
        try:
            return ShapeStats.merge_all(shapes)
        except pa.ArrowException as exc:  # id columns of other types
            reason = f"their worst rows do not merge ({type(exc).__name__}: {exc})"
    _LOG.info(
        "the merged statistics hold no histogram or worst rows: %s; their metrics are "
        "merged exactly all the same (gather the shape with the same evaluation.histogram, "
        "worst_k and id_columns in every run to merge it too)",
        redact_text(" ".join(reason.split()))[:300],
    )
    return None


def _unlike_shapes(parts: Sequence[StatisticsArtifact], names: Sequence[str]) -> str | None:
    """Why the parts' shapes do not merge: some hold none, or of other settings (else None)."""
    missing = [name for part, name in zip(parts, names, strict=True) if part.shape is None]
    if missing:
        return f"{', '.join(missing)} gathered none"
    settings = [part.shape.settings() for part in parts if part.shape is not None]
    for theirs, name in zip(settings[1:], names[1:], strict=True):
        if theirs != settings[0]:
            return (
                f"{names[0]} and {name} were gathered with other settings "
                f"({_shape_shown(settings[0])} against {_shape_shown(theirs)})"
            )
    return None


def _shape_shown(settings: ShapeSpec) -> str:
    return (
        f"histogram {str(settings.histogram).lower()}, worst_k {settings.worst_k}, "
        f"id_columns {list(settings.id_columns)}"
    )


def write_artifact(
    artifact: StatisticsArtifact, path: str, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Write an artifact to a local path or URL, atomically; gzip-compressed if it ends in ``.gz``.

    Raises
    ------
    ConfigError
        It cannot be written there.
    """
    data = artifact.to_bytes(compress=path.lower().endswith(".gz"))
    try:
        write_bytes(path, data, storage_options)
    except Exception as exc:  # an object store's own errors too
        reason = redact_text(" ".join(f"{type(exc).__name__}: {exc}".split()))
        raise ConfigError(
            f"cannot write the statistics to {redact_url(path)}: {reason}; fix output.stats "
            "(or -o) and run again"
        ) from exc


def read_artifact(
    path: str, storage_options: Mapping[str, Any] | None = None
) -> StatisticsArtifact:
    """Read an artifact from a local path or URL.

    Raises
    ------
    ReadError
        It cannot be read.
    DataError
        It is not an artifact this daskloss reads (see :meth:`StatisticsArtifact.from_json`).
    """
    shown = redact_url(path)
    try:
        data = read_bytes(path, storage_options, limit=MAX_ARTIFACT_BYTES)
    except Exception as exc:  # an object store's own errors too
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ReadError(f"cannot read statistics {shown}: {redact_text(str(reason))}") from None
    return StatisticsArtifact.from_bytes(data, shown)


def _check_compatible(
    first: StatisticsArtifact, first_name: str, other: StatisticsArtifact, name: str
) -> None:
    """Refuse to merge statistics of different evaluations."""
    a, b = first.evaluation.spec, other.evaluation.spec
    for what, mine, theirs in [
        ("column roles", (a.y_true, a.y_pred, a.weight), (b.y_true, b.y_pred, b.weight)),
        ("slices (group_by)", a.group_by, b.group_by),
        ("baselines", a.baseline, b.baseline),
        ("moments", a.moments, b.moments),
        ("NaN policies", first.nan_policy, other.nan_policy),
    ]:
        if mine != theirs:
            raise DataError(
                f"cannot merge statistics of different evaluations: {first_name} and {name} "
                f"have different {what} ({_shown(mine)} against {_shown(theirs)}); merge "
                "statistics computed with the same columns, group_by, baseline and nan_policy"
            )
    types_a = _key_types(a, first.evaluation.rows)
    types_b = _key_types(b, other.evaluation.rows)
    for column in a.group_by:
        if column in types_a and column in types_b and types_a[column] != types_b[column]:
            raise DataError(
                f"cannot merge statistics of different slices: slice column {column!r} holds "
                f"{types_a[column]} values in {first_name} but {types_b[column]} values in "
                f"{name}; compute them with one type of slice key"
            )


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return repr(list(value)) if value and not isinstance(value[0], tuple) else repr(value)
    return repr(value)


def spec_data(spec: EvaluationSpec) -> dict[str, Any]:
    """An evaluation spec as JSON-ready data."""
    return {
        "y_true": spec.y_true,
        "y_pred": list(spec.y_pred),
        "weight": spec.weight,
        "group_by": list(spec.group_by),
        "baseline": spec.baseline,
        "moments": spec.moments,
    }


def _spec_of(data: Mapping[str, Any]) -> EvaluationSpec:
    spec = EvaluationSpec.of(
        data["y_true"],
        list(data["y_pred"]),
        data["weight"],
        group_by=list(data["group_by"]),
        baseline=data["baseline"],
        moments=bool(data["moments"]),
    )
    if spec.moments != data["moments"]:
        raise ValueError("moments must be true with several predictions")
    return spec


def _slice_values(stats: SliceStats) -> list[Any]:
    first = stats.predictions[0]
    return [
        [_value(name, getattr(first, name)) for name in SLICE_FIELDS],
        [[_value(name, getattr(p, name)) for name in PREDICTION_FIELDS] for p in stats.predictions],
        [[_value(name, getattr(p, name)) for name in PAIR_FIELDS] for p in stats.pairs],
    ]


def _value(name: str, value: Any) -> Any:
    if value is None or name in _COUNTS:
        return value
    if name in _FLOATS:
        return float(value)
    return dyadic_text(value)


def _slice_of(
    shared: Sequence[Any], predictions: Iterable[Any], pairs: Iterable[Any]
) -> SliceStats:
    common = dict(zip(SLICE_FIELDS, map(_parsed, SLICE_FIELDS, shared), strict=True))
    return SliceStats(
        tuple(
            ErrorStats(
                **common,
                **dict(zip(PREDICTION_FIELDS, map(_parsed, PREDICTION_FIELDS, p), strict=True)),
            )
            for p in predictions
        ),
        tuple(
            PairStats(**dict(zip(PAIR_FIELDS, map(_parsed, PAIR_FIELDS, p), strict=True)))
            for p in pairs
        ),
    )


def _parsed(name: str, value: Any) -> Any:
    if value is None and name in ("weight_squared", "fourth_power"):
        return None
    if name in _COUNTS:
        return _count(value)
    if name in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} should be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} should be exact text such as '0x3p-2', got {value!r}")
    return dyadic_value(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"expected a count (an integer >= 0), got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


#: Tags of the slice key values JSON has no type for, and how each is read back.
_TAGGED = {
    "date": date.fromisoformat,
    "datetime": datetime.fromisoformat,
    "timestamp": pd.Timestamp,
}


def _key_value(value: Any) -> Any:
    """A slice key's value as JSON: tagged when JSON has no such type (dates, times)."""
    if isinstance(value, pd.Timestamp):
        return {"timestamp": value.isoformat()}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise DataError(f"cannot save a slice key of type {type(value).__name__}: {value!r}")


def _key_of(data: Any) -> Any:
    if isinstance(data, Mapping):
        ((tag, text),) = data.items()
        return _TAGGED[tag](text)
    if data is None or isinstance(data, (str, int, float)):
        return data
    raise TypeError(f"unknown slice key value {data!r}")


def _key_type(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return "timestamp"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    return {bool: "boolean", int: "integer", str: "string"}.get(type(value), type(value).__name__)


def _key_types(spec: EvaluationSpec, keys: Iterable[tuple[Any, ...]]) -> dict[str, str]:
    """Each slice column's type of non-null values (several joined by "+")."""
    found: dict[str, set[str]] = {name: set() for name in spec.group_by}
    for key in keys:
        for name, value in zip(spec.group_by, key, strict=True):
            if value is not None:
                found[name].add(_key_type(value))
    return {name: "+".join(sorted(types)) for name, types in found.items() if types}
