"""Which column plays which part: targets, predictions, weights, slice keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from daskloss.errors import ConfigError

__all__ = ["SAMPLE_WEIGHT", "EvaluationSpec", "Roles", "output_roles"]

#: The column name of the sample weights of the metric functions' chunks.
SAMPLE_WEIGHT = "sample_weight"


@dataclass(frozen=True)
class Roles:
    """The column names of the target, the prediction and (optionally) the weight.

    A column may serve two roles (the target as the weight); :attr:`columns`
    lists each column once, in role order.

    Examples
    --------
    >>> Roles("y", "p", weight="y").columns
    ('y', 'p')
    >>> Roles(None, "p")
    Traceback (most recent call last):
    ...
    daskloss.errors.ConfigError: y_true must be a column name (a non-empty string); got None
    """

    y_true: str = "y_true"
    y_pred: str = "y_pred"
    weight: str | None = None

    def __post_init__(self) -> None:
        for role in ("y_true", "y_pred", "weight"):
            name = getattr(self, role)
            if name is None and role == "weight":
                continue
            if not isinstance(name, str) or not name:
                optional = " or None" if role == "weight" else ""
                raise ConfigError(
                    f"{role} must be a column name (a non-empty string){optional}; got {name!r}"
                )

    @property
    def weighted(self) -> bool:
        """Whether rows carry a weight."""
        return self.weight is not None

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns to read, each once."""
        return tuple(dict.fromkeys(n for n in (self.y_true, self.y_pred, self.weight) if n))


def output_roles(n_outputs: int, weighted: bool) -> tuple[Roles, ...]:
    """The roles of each output of the metric functions' chunks: ``y_true[j]``, ``y_pred[j]``.

    Examples
    --------
    >>> output_roles(2, weighted=True)[1]
    Roles(y_true='y_true[1]', y_pred='y_pred[1]', weight='sample_weight')
    """
    weight = SAMPLE_WEIGHT if weighted else None
    return tuple(Roles(f"y_true[{j}]", f"y_pred[{j}]", weight) for j in range(n_outputs))


@dataclass(frozen=True)
class EvaluationSpec:
    """What one evaluation computes: the column roles, the slices and the comparisons.

    Several predictions share the target, the weight and the rows (a row is
    left out for all of them, or for none). Each prediction other than the
    baseline is compared with it. ``moments`` asks for the exact moments
    behind standard errors; comparisons need them.

    Examples
    --------
    >>> spec = EvaluationSpec.of("y", ["new", "old"], group_by="segment", baseline="old")
    >>> spec.value_columns, spec.pairs, spec.moments
    (('y', 'new', 'old'), ((0, 1),), True)
    """

    y_true: str = "y_true"
    y_pred: tuple[str, ...] = ("y_pred",)
    weight: str | None = None
    group_by: tuple[str, ...] = ()
    baseline: str | None = None
    moments: bool = False

    @classmethod
    def of(
        cls,
        y_true: str = "y_true",
        y_pred: str | Sequence[str] = "y_pred",
        weight: str | None = None,
        *,
        group_by: str | Sequence[str] | None = None,
        baseline: str | None = None,
        moments: bool = False,
    ) -> EvaluationSpec:
        """The spec of these arguments, checked (single names may stand for lists).

        Raises
        ------
        ConfigError
            A name that is not a non-empty string, a repeated prediction or
            slice column, a baseline that is not a prediction, or a slice
            column that is also a target, prediction or weight.
        """
        predictions = _names("y_pred", y_pred)
        keys = _names("group_by", group_by or ())
        Roles(y_true, predictions[0] if predictions else "", weight)  # checks the names
        if not predictions:
            raise ConfigError("y_pred must name at least one prediction column; got none")
        if baseline is not None and baseline not in predictions:
            raise ConfigError(
                f"baseline must be one of the prediction columns {list(predictions)}; "
                f"got {baseline!r}"
            )
        values = {y_true, *predictions, *([weight] if weight else [])}
        overlap = sorted(values & set(keys))
        if overlap:
            raise ConfigError(
                f"group_by column(s) {overlap} are also a target, prediction or weight; "
                "slice by other columns"
            )
        if len(predictions) > 1 and baseline is None:
            baseline = predictions[0]
        return cls(y_true, predictions, weight, keys, baseline, moments or len(predictions) > 1)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The numeric columns to read, each once."""
        return tuple(dict.fromkeys(n for n in (self.y_true, *self.y_pred, self.weight) if n))

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """``(prediction, baseline)`` indices of each comparison."""
        if self.baseline is None:
            return ()
        base = self.y_pred.index(self.baseline)
        return tuple((j, base) for j in range(len(self.y_pred)) if j != base)

    def roles(self, prediction: int = 0) -> Roles:
        """The roles of one prediction's statistics."""
        return Roles(self.y_true, self.y_pred[prediction], self.weight)


def _names(what: str, value: str | Sequence[str]) -> tuple[str, ...]:
    """One name or a list of names, each a non-empty string, none twice."""
    if isinstance(value, str):
        names: tuple[str, ...] = (value,)
    elif isinstance(value, (list, tuple)):
        names = tuple(value)
    else:
        names = (value,)  # type: ignore[assignment]
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"{what} must be a column name (a non-empty string) or a list of them; got {name!r}"
            )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{what} names {repeated} more than once")
    return names
