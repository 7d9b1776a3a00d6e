"""The config keys of scheduled runs: [cache], [[gates]], output.stats, dataset.window."""

from __future__ import annotations

import re

import pytest

from daskloss import ConfigError
from daskloss.config import GateSettings, load_settings, parse_settings, redacted, secret_values
from tests.helpers import ROOT

BASE = {
    "dataset": {"path": "/data/preds"},
    "columns": {"y_true": "y", "y_pred": ["new", "old"]},
    "evaluation": {"group_by": ["segment", "day"], "baseline": "old"},
}


def _with(**sections) -> dict:
    data = {name: dict(table) for name, table in BASE.items()}
    for name, value in sections.items():
        data[name] = value if name == "gates" else {**data.get(name, {}), **value}
    return data


def _error(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_the_scheduled_example_config_loads():
    """configs/scheduled.toml is valid: window, outputs with {date}, cache and four gates."""
    settings = load_settings(ROOT / "configs" / "scheduled.toml", environ={})
    assert settings.dataset.window == {"partition": "day", "last": 7}
    assert settings.output.stats.endswith("{date}/statistics.json.gz")
    assert settings.cache.path == "s3://my-bucket/daskloss-cache/"
    assert [gate.metric for gate in settings.gates] == ["count", "mse", "mae", "mse"]


def test_new_keys_parse_and_local_paths_become_absolute(tmp_path, monkeypatch):
    """output.stats, cache.path and baseline_file are resolved like output.path."""
    monkeypatch.chdir(tmp_path)
    settings = parse_settings(
        _with(
            output={"stats": "out/{date}.json"},
            cache={"path": "cache"},
            gates=[{"metric": "mse", "baseline_file": "base.json", "max_change": 1}],
        )
    )
    assert settings.output.stats == str(tmp_path / "out" / "{date}.json")
    assert settings.cache.path == str(tmp_path / "cache")
    assert settings.gates[0].baseline_file == str(tmp_path / "base.json")
    assert settings.gates == (
        GateSettings("mse", baseline_file=str(tmp_path / "base.json"), max_change=1),
    )


def test_settings_with_gates_parse_back_from_the_report():
    """The report's settings (gates and all) parse back to the same settings."""
    gate = {"metric": "mae", "slice": {"segment": "a", "day": 3}, "max": 2.5}
    settings = parse_settings(_with(gates=[gate], cache={"path": "/c"}))
    assert parse_settings(redacted(settings)) == settings


def test_cache_storage_options_are_secret():
    """cache.storage_options are redacted in reports and scrubbed from output, like the others."""
    settings = parse_settings(
        _with(cache={"path": "s3://b/c/", "storage_options": {"secret": "hush-7", "anon": False}})
    )
    assert redacted(settings)["cache"]["storage_options"] == {"secret": "***", "anon": False}
    assert "hush-7" in secret_values(settings)


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"dataset": {"window": {"partition": "day"}}}, r"'dataset\.window': expected a table"),
        ({"dataset": {"window": {"partition": "day", "last": 0}}}, r"last must be an integer"),
        ({"output": {"stats": "memory://x"}}, r"'output\.stats': expected a place"),
        ({"cache": {"path": 3}}, r"'cache\.path': expected a string"),
        ({"cache": {"bogus": 1}}, r"'cache\.bogus': unknown key"),
        ({"gates": {"metric": "mse"}}, r"'gates': expected an array of tables"),
        ({"gates": [{"max": 1}]}, r"'gates\[0\]\.metric': required"),
        ({"gates": [{"metric": "mse"}]}, r"'gates\[0\]': a gate needs a bound"),
        ({"gates": [{"metric": "msee", "max": 1}]}, r"'gates\[0\]\.metric': expected a metric"),
        ({"gates": [{"metric": "mse", "max": True}]}, r"'gates\[0\]\.max': expected a number"),
        ({"gates": [{"metric": "mse", "max": 1, "bogus": 2}]}, r"'gates\[0\]\.bogus': unknown"),
        ({"gates": [{"metric": "mse", "max_change": 1}]}, r"max_change needs a baseline"),
        ({"gates": [{"metric": "mse", "max": 1, "baseline": "old"}]}, r"bound on the change"),
        (
            {
                "gates": [
                    {"metric": "mse", "baseline": "old", "baseline_file": "b", "max_change": 1}
                ]
            },
            r"set baseline .* or baseline_file, not both",
        ),
        (
            {"gates": [{"metric": "mse", "baseline": "gone", "max_change": 1}]},
            r"'gates\[0\]\.baseline': expected one of the predictions \['new', 'old'\]",
        ),
        (
            {"gates": [{"metric": "mse", "prediction": "old", "baseline": "old", "max_change": 1}]},
            r"the baseline is the gate's prediction itself",
        ),
        (
            {"gates": [{"metric": "r2", "baseline": "old", "excludes_zero": True}]},
            r"'gates\[0\]\.excludes_zero': excludes_zero needs a comparison",
        ),
        (
            {"gates": [{"metric": "mse", "max": 1, "slice": {"segment": "a"}}]},
            r"'gates\[0\]\.slice': expected a value for each group_by column",
        ),
        (
            {"gates": [{"metric": "mse", "max": 1, "slice": {"segment": 1.5, "day": 1}}]},
            r"'gates\[0\]\.slice': expected strings, integers or booleans",
        ),
    ],
)
def test_bad_pipeline_keys_name_the_key(sections, message):
    """Every malformed key of the scheduled task is one line naming it, before any work."""
    assert re.search(message, _error(_with(**sections)))


def test_gate_errors_say_where_the_value_came_from(tmp_path):
    """A gate given with --set is named as coming from --set."""
    path = tmp_path / "job.toml"
    path.write_text('[dataset]\npath = "d"\n[columns]\ny_true = "y"\ny_pred = "p"\n')
    with pytest.raises(ConfigError, match=r"'gates\[0\]\.max': .*\(from --set gates\)"):
        load_settings(path, overrides=['gates=[{metric = "mse", max = "x"}]'], environ={})


def test_a_gate_is_named_by_what_it_checks():
    """Without a name, a gate is called by its prediction, metric and slice."""
    gate = GateSettings("mse", prediction="old", slice={"segment": "a", "day": 3}, max=1.0)
    assert gate.label == "old.mse[segment=a,day=3]"
    assert GateSettings("mae", name="MAE ceiling", max=1.0).label == "MAE ceiling"
