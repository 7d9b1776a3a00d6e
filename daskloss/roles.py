"""Which column plays which part: the target, the prediction and the weight."""

from __future__ import annotations

from dataclasses import dataclass

from daskloss.errors import ConfigError

__all__ = ["SAMPLE_WEIGHT", "Roles", "output_roles"]

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
