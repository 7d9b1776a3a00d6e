"""Quality gates: bounds on a run's metrics, against fixed values or a baseline.

Each ``[[gates]]`` entry (:class:`~daskloss.config.GateSettings`) names a
metric of one prediction over every row or over one slice, and bounds it:

* ``min``/``max`` bound the value itself (TFMA's value threshold);
* with a baseline, ``min_change``/``max_change`` bound ``value - baseline`` and
  ``min_relative_change``/``max_relative_change`` bound
  ``(value - baseline) / |baseline|`` (TFMA's change threshold, MLflow's
  ``min_absolute_change``/``min_relative_change``, either direction). The
  baseline is another prediction of the same run (``baseline``: the same
  rows, the same slice) or an earlier run's report or statistics artifact
  (``baseline_file``: the same prediction column and slice there);
* ``excludes_zero`` asks the comparison of the prediction with the run's
  baseline prediction for a 95% interval of the difference that excludes
  zero: the difference is significant.

Every bound is inclusive. Differences are exact: against a prediction of the
run, the comparison's ``difference`` (MSE, MAE, RMSE) or else the exact
difference of the two float64 metrics, rounded once; the relative change is
the exact ratio of that difference to the baseline's magnitude, rounded once.
A gate fails when its value or change is undefined (NaN), when its slice has
no rows, or when its baseline holds no such value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from fractions import Fraction
from typing import Any

from daskloss.artifacts import ARTIFACT_FORMAT, MAX_ARTIFACT_BYTES, StatisticsArtifact
from daskloss.config import GateSettings
from daskloss.errors import DataError, ReadError
from daskloss.exact import round_fraction
from daskloss.formulas import COMPARED_METRICS, compare
from daskloss.policy import ReadRoots, redact_text, redact_url
from daskloss.report import _json_number
from daskloss.roles import EvaluationSpec
from daskloss.stats import EvaluationStats, SliceStats
from daskloss.storage import gunzip, read_bytes

__all__ = ["BaselineFile", "check_gates", "load_baselines"]


@dataclass(frozen=True)
class BaselineFile:
    """An earlier run's report or statistics artifact, read for the gates that name it."""

    path: str
    report: Mapping[str, Any] | None = None
    artifact: StatisticsArtifact | None = None

    @classmethod
    def read(cls, path: str, storage_options: Mapping[str, Any] | None = None) -> BaselineFile:
        """Read a report (JSON) or a statistics artifact (JSON, maybe gzip-compressed).

        Raises
        ------
        ReadError
            It cannot be read.
        DataError
            It is neither a daskloss report nor a statistics artifact.
        """
        shown = redact_url(path)
        try:
            data = gunzip(
                read_bytes(path, storage_options, limit=MAX_ARTIFACT_BYTES), MAX_ARTIFACT_BYTES
            )
        except Exception as exc:  # an object store's own errors too
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ReadError(
                f"cannot read the gates' baseline {shown}: {redact_text(str(reason))}; write it "
                "first (an earlier run's report or output.stats) or fix baseline_file"
            ) from None
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, ValueError):
            document = None
        if isinstance(document, Mapping) and "report_version" in document:
            return cls(shown, report=document)
        if isinstance(document, Mapping) and document.get("format") == ARTIFACT_FORMAT:
            return cls(shown, artifact=StatisticsArtifact.from_json(document, shown))
        raise DataError(
            f"the gates' baseline {shown} is neither a daskloss report nor a statistics "
            "artifact; give baseline_file a report.json or an output.stats file"
        )

    def value(
        self, metric: str, prediction: str, wanted: Mapping[str, Any] | None
    ) -> tuple[float | int, str | None]:
        """The baseline's value of a metric (NaN and why, if it holds none)."""
        if self.artifact is not None:
            evaluation = self.artifact.evaluation
            if prediction not in evaluation.spec.y_pred:
                return math.nan, f"baseline {self.path} has no prediction {prediction!r}"
            stats = _slice_stats(evaluation, wanted)
            if stats is None:
                return math.nan, f"baseline {self.path} has no rows of slice {_shown_key(wanted)}"
            index = evaluation.spec.y_pred.index(prediction)
            return stats.predictions[index].metrics()[metric], None
        return _report_value(self.path, self.report or {}, metric, prediction, wanted)


def load_baselines(
    gates: Sequence[GateSettings],
    storage_options: Mapping[str, Any] | None = None,
    roots: ReadRoots | None = None,
) -> dict[str, BaselineFile]:
    """Read every baseline file the gates name, once each, before any work.

    Raises
    ------
    ConfigError
        A baseline file outside the read roots.
    ReadError, DataError
        See :meth:`BaselineFile.read`.
    """
    found: dict[str, BaselineFile] = {}
    for gate in gates:
        path = gate.baseline_file
        if path is not None and path not in found:
            if roots is not None:
                roots.check_path(path, key="gates.baseline_file")
            found[path] = BaselineFile.read(path, storage_options)
    return found


def check_gates(
    gates: Sequence[GateSettings],
    evaluation: EvaluationStats,
    baselines: Mapping[str, BaselineFile],
) -> dict[str, Any]:
    """Each gate's value, baseline, change, bounds and verdict: the report's ``gates``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskloss.chunks import Chunk
    >>> from daskloss.config import GateSettings
    >>> spec = EvaluationSpec.of("y", "p")
    >>> chunk = Chunk({"y": np.zeros(4), "p": np.array([1.0, -1.0, 2.0, 0.0])}, (("", 4),))
    >>> stats = EvaluationStats.from_chunks([chunk], spec)
    >>> found = check_gates([GateSettings("mse", max=1.0)], stats, {})
    >>> found["passed"], found["results"][0]["value"], found["results"][0]["reasons"]
    (False, 1.5, ['mse 1.5 > max 1.0'])
    """
    results = [_check(gate, evaluation, baselines) for gate in gates]
    failed = [result for result in results if result["verdict"] == "fail"]
    return {"passed": not failed, "failed": len(failed), "results": results}


def _check(
    gate: GateSettings, evaluation: EvaluationStats, baselines: Mapping[str, BaselineFile]
) -> dict[str, Any]:
    spec = evaluation.spec
    prediction = gate.prediction or spec.y_pred[0]
    reasons: list[str] = []
    stats = _slice_stats(evaluation, gate.slice)
    if stats is None:
        reasons.append(f"no rows of slice {_shown_key(gate.slice)} in this run")
        value: float | int = math.nan
    else:
        value = stats.predictions[spec.y_pred.index(prediction)].metrics()[gate.metric]
    found = _Change(math.nan, math.nan, math.nan, None)
    baseline: dict[str, Any] | None = None
    if gate.baseline is not None:
        baseline = {"prediction": gate.baseline}
        if stats is not None:
            found = _against_column(gate, spec, stats, prediction, value)
    elif gate.baseline_file is not None:
        shown = redact_url(gate.baseline_file)
        baseline = {"file": shown}
        before, problem = baselines[gate.baseline_file].value(gate.metric, prediction, gate.slice)
        if problem is not None:
            reasons.append(problem)
        found = _Change(before, *_difference(value, before), None)
    if baseline is not None:
        baseline["value"] = _json_number(found.baseline)
    reasons = reasons or _violations(gate, value, found)  # no value: only say why
    return {
        "name": gate.label,
        "metric": gate.metric,
        "prediction": prediction,
        "slice": None if gate.slice is None else dict(gate.slice),
        "value": _json_number(value),
        "baseline": baseline,
        "change": None if baseline is None else _json_number(found.change),
        "relative_change": None if baseline is None else _json_number(found.relative),
        "interval": found.interval,
        "bounds": _bounds(gate),
        "verdict": "fail" if reasons else "pass",
        "reasons": reasons,
    }


@dataclass(frozen=True)
class _Change:
    baseline: float | int
    change: float
    relative: float
    interval: dict[str, Any] | None


def _against_column(
    gate: GateSettings, spec: EvaluationSpec, stats: SliceStats, prediction: str, value: Any
) -> _Change:
    """The change against another prediction of the run, on the same rows."""
    j, base = spec.y_pred.index(prediction), spec.y_pred.index(gate.baseline)
    before = stats.predictions[base].metrics()[gate.metric]
    if (j, base) in spec.pairs and gate.metric in COMPARED_METRICS:
        pair = stats.pairs[spec.pairs.index((j, base))]
        found = compare(stats.predictions[j], stats.predictions[base], pair)[gate.metric]
        difference = found["difference"]
        interval = {
            "low": _json_number(found["low"]),
            "high": _json_number(found["high"]),
            "excludes_zero": found["excludes_zero"],
        }
        return _Change(before, difference, _relative(_exact(difference), before), interval)
    return _Change(before, *_difference(value, before), None)


def _difference(value: float | int, before: float | int) -> tuple[float, float]:
    """``value - before`` and its ratio to ``|before|``, each exact and rounded once."""
    if not (math.isfinite(value) and math.isfinite(before)):
        change = value - before
        return change, change / abs(before) if before else math.nan
    exact = Fraction(value) - Fraction(before)
    return round_fraction(exact), _relative(exact, before)


def _relative(change: Fraction | None, before: float | int) -> float:
    if change is None or not math.isfinite(before) or before == 0:
        return math.nan
    return round_fraction(change / abs(Fraction(before)))


def _exact(value: float) -> Fraction | None:
    return Fraction(value) if math.isfinite(value) else None


#: Each bound: the quantity it bounds, and whether it is a lower bound.
_BOUNDED = {
    "min": ("value", True),
    "max": ("value", False),
    "min_change": ("change", True),
    "max_change": ("change", False),
    "min_relative_change": ("relative change", True),
    "max_relative_change": ("relative change", False),
}


def _violations(gate: GateSettings, value: float | int, found: _Change) -> list[str]:
    """Why the gate fails (nothing if it passes)."""
    quantities = {"value": value, "change": found.change, "relative change": found.relative}
    reasons = []
    for name, (quantity, lower) in _BOUNDED.items():
        bound = getattr(gate, name)
        if bound is None:
            continue
        found_value = quantities[quantity]
        label = gate.metric if quantity == "value" else f"{gate.metric} {quantity}"
        if isinstance(found_value, float) and math.isnan(found_value):
            reasons.append(f"{label} is undefined, so {name} {bound} cannot hold")
        elif (found_value < bound) if lower else (found_value > bound):
            reasons.append(f"{label} {found_value!r} {'<' if lower else '>'} {name} {bound!r}")
    if gate.excludes_zero and not (found.interval and found.interval["excludes_zero"]):
        if found.interval is None:
            reasons.append("no interval of the difference: the comparison is undefined")
        else:
            low, high = found.interval["low"], found.interval["high"]
            reasons.append(
                f"the 95% interval of the {gate.metric} difference [{low}, {high}] includes zero"
            )
    return reasons


def _bounds(gate: GateSettings) -> dict[str, Any]:
    bounds: dict[str, Any] = {
        name: getattr(gate, name) for name in _BOUNDED if getattr(gate, name) is not None
    }
    if gate.excludes_zero:
        bounds["excludes_zero"] = True
    return bounds


def _slice_stats(
    evaluation: EvaluationStats, wanted: Mapping[str, Any] | None
) -> SliceStats | None:
    """The statistics of every row, or of the slice whose key the report shows as ``wanted``."""
    if wanted is None:
        return evaluation.overall()
    spec = evaluation.spec
    for key, stats in evaluation.slices.items():
        shown = dict(zip(spec.group_by, map(_key_json, key), strict=True))
        if _same_key(shown, wanted):
            return stats
    return None


def _key_json(value: Any) -> Any:
    """A slice key's value as the report shows it (dates and times as ISO-8601 text)."""
    return value.isoformat() if isinstance(value, (date, datetime, time)) else value


def _same_key(shown: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Equal keys, value by value and type by type (``true`` is not ``1``)."""
    return shown.keys() == wanted.keys() and all(
        type(shown[name]) is type(wanted[name]) and shown[name] == wanted[name] for name in wanted
    )


def _shown_key(wanted: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(wanted or {}))


def _report_value(
    path: str,
    report: Mapping[str, Any],
    metric: str,
    prediction: str,
    wanted: Mapping[str, Any] | None,
) -> tuple[float | int, str | None]:
    """A metric's value in a report (NaN and why, if the report holds none)."""
    predictions = report.get("predictions") or {}
    columns = report.get("columns", {}).get("y_pred")
    first = columns[0] if isinstance(columns, list) and columns else columns
    if prediction in predictions:
        entry = predictions[prediction]
    elif prediction == first:
        entry = {"metrics": report.get("metrics", {}), "slices": report.get("slices")}
    else:
        return math.nan, f"baseline {path} has no prediction {prediction!r}"
    metrics = entry.get("metrics", {})
    if wanted is not None:
        found = [s for s in entry.get("slices") or [] if _same_key(s.get("key", {}), wanted)]
        if not found:
            return math.nan, (
                f"baseline {path} shows no slice {_shown_key(wanted)} (none, or folded into "
                "other_slices)"
            )
        metrics = found[0].get("metrics", {})
    if metric not in metrics:
        return math.nan, f"baseline {path} does not report {metric} (see its evaluation.metrics)"
    return _from_json_number(metrics[metric]), None


def _from_json_number(value: Any) -> float | int:
    """A report's metric value: a number, null (undefined) or "Infinity"/"-Infinity"."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        return float(value)
    return value
