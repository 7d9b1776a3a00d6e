"""The job's settings: the schema (:mod:`~daskloss.config.schema`) and its layers
(:mod:`~daskloss.config.layers`). Policy (read roots, redaction, address checks)
is in :mod:`daskloss.policy`.
"""

from daskloss.config.layers import SCHEDULER_ENV_VARS, load_settings
from daskloss.config.schema import (
    CacheSettings,
    ClusterSettings,
    ColumnSettings,
    DatasetSettings,
    EvaluationSettings,
    GateSettings,
    OutputSettings,
    Settings,
    absolute_path,
    parse_settings,
    redacted,
    secret_values,
    settings_digest,
)

__all__ = [
    "SCHEDULER_ENV_VARS",
    "CacheSettings",
    "ClusterSettings",
    "ColumnSettings",
    "DatasetSettings",
    "EvaluationSettings",
    "GateSettings",
    "OutputSettings",
    "Settings",
    "absolute_path",
    "load_settings",
    "parse_settings",
    "redacted",
    "secret_values",
    "settings_digest",
]
