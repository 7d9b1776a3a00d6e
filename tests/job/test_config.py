"""Job config: validation up front, one-line errors naming the key, layered overrides."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from daskloss import METRIC_NAMES, ConfigError
from daskloss.config import (
    ClusterSettings,
    load_settings,
    parse_settings,
    redacted,
    settings_digest,
)
from tests.helpers import ROOT, toml_text

MINIMAL = {
    "dataset": {"path": "s3://bucket/preds/"},
    "columns": {"y_true": "y", "y_pred": "p"},
}


def _config_file(tmp_path: Path, **sections: dict) -> Path:
    data = {name: dict(table) for name, table in MINIMAL.items()}
    for name, table in sections.items():
        data[name] = {**data.get(name, {}), **table}
    path = tmp_path / "job.toml"
    path.write_text(toml_text(data))
    return path


def _error(data: dict, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(data, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _with(section: str, **values) -> dict:
    data = {name: dict(table) for name, table in MINIMAL.items()}
    data[section] = {**data.get(section, {}), **values}
    return data


def test_example_configs_load():
    """Both shipped configs are valid."""
    for name in ("example.toml", "cluster.toml"):
        settings = load_settings(ROOT / "configs" / name, environ={})
        assert settings.columns.weight == "weight"


def test_defaults_fill_optional_sections():
    """Only [dataset] and [columns] are required; the rest has defaults."""
    settings = parse_settings(MINIMAL)
    assert settings.evaluation.nan_policy == "error"
    assert settings.evaluation.metrics == METRIC_NAMES
    assert settings.output.path is None
    assert settings.cluster == ClusterSettings()


def test_wrong_type_names_key_and_value():
    """A value of the wrong type is a one-line error naming the key and the value."""
    message = _error(_with("columns", y_pred=3))
    assert message.startswith("config key 'columns.y_pred': expected a string, got 3")


def test_unknown_key_names_key():
    """A misspelt key is rejected, naming it and the accepted keys."""
    message = _error(_with("columns", y_prde="p"))
    assert "config key 'columns.y_prde': unknown key" in message
    assert "y_pred" in message


def test_unknown_section_names_section():
    """An unknown table is rejected, naming it."""
    assert "config key 'colums': unknown section" in _error({**MINIMAL, "colums": {}})


def test_missing_required_key_names_key():
    """A missing required key is named, with where to set it."""
    message = _error({"dataset": {"path": "x"}, "columns": {"y_true": "y"}})
    assert "config key 'columns.y_pred': required but missing" in message


def test_missing_required_section_names_its_first_key():
    """A missing [dataset] table reports its required key."""
    assert "config key 'dataset.path'" in _error({"columns": MINIMAL["columns"]})


def test_section_that_is_not_a_table_names_key():
    """A section given as a scalar is rejected."""
    assert "config key 'output': expected a table" in _error({**MINIMAL, "output": "x.json"})


def test_bad_nan_policy_names_key_and_choices():
    """nan_policy must be 'error' or 'skip'."""
    message = _error(_with("evaluation", nan_policy="ignore"))
    assert "config key 'evaluation.nan_policy': expected one of 'error', 'skip'" in message


def test_bad_metric_name_names_key_and_metric():
    """An unknown metric name is named along with the valid ones."""
    message = _error(_with("evaluation", metrics=["mse", "msee"]))
    assert "config key 'evaluation.metrics'" in message
    assert "got 'msee'" in message


def test_duplicate_metric_is_rejected():
    """Each metric may be listed once."""
    assert "each metric name once" in _error(_with("evaluation", metrics=["mse", "mse"]))


def test_boolean_is_not_an_integer():
    """TOML true is not accepted where a count is expected."""
    assert "config key 'cluster.n_workers'" in _error(_with("cluster", n_workers=True))


def test_bad_format_names_key():
    """dataset.format must be parquet or csv."""
    assert "config key 'dataset.format'" in _error(_with("dataset", format="orc"))


def test_invalid_toml_is_config_error(tmp_path):
    """A TOML syntax error is a ConfigError naming the file."""
    path = tmp_path / "bad.toml"
    path.write_text("[dataset\npath = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML"):
        load_settings(path, environ={})


def test_config_that_is_not_utf8_is_config_error(tmp_path):
    """A config file in another encoding (UTF-16, Latin-1) is a ConfigError naming it."""
    path = tmp_path / "latin1.toml"
    path.write_bytes('[dataset]\npath = "donn\u00e9es/"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml is not valid TOML: it is not UTF-8"):
        load_settings(path, environ={})


def test_worker_counts_are_bounded():
    """A LocalCluster of more than 1024 workers or threads is a typo, refused up front."""
    for key in ("n_workers", "threads_per_worker"):
        message = _error(_with("cluster", **{key: 10**22}))
        assert f"config key 'cluster.{key}'" in message and "from 1 to 1024" in message
    assert parse_settings(_with("cluster", n_workers=1024)).cluster.n_workers == 1024


def test_missing_file_is_config_error(tmp_path):
    """A config file that does not exist is a ConfigError."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_error_says_where_the_value_came_from(tmp_path):
    """A bad value from --set is reported as coming from --set."""
    with pytest.raises(ConfigError, match=r"\(from --set columns.y_pred\)"):
        load_settings(_config_file(tmp_path), overrides=["columns.y_pred=3"], environ={})


def test_secret_values_are_not_echoed_in_errors():
    """A wrongly typed storage_options value is described by its type only."""
    message = _error(_with("dataset", storage_options="AKIA-SECRET"))
    assert "AKIA-SECRET" not in message
    assert "got str" in message


def test_set_reads_toml_values(tmp_path):
    """--set values are parsed as TOML: integers, lists, booleans, inline tables."""
    settings = load_settings(
        _config_file(tmp_path),
        overrides=[
            "cluster.n_workers=3",
            'evaluation.metrics=["mse", "r2"]',
            "dataset.storage_options={anon = true}",
        ],
        environ={},
    )
    assert settings.cluster.n_workers == 3
    assert settings.evaluation.metrics == ("mse", "r2")
    assert dict(settings.dataset.storage_options) == {"anon": True}


def test_set_falls_back_to_strings(tmp_path):
    """A --set value that is not TOML is taken as a plain string."""
    settings = load_settings(
        _config_file(tmp_path), overrides=["evaluation.nan_policy=skip"], environ={}
    )
    assert settings.evaluation.nan_policy == "skip"


def test_set_reaches_nested_storage_options(tmp_path):
    """Dotted --set keys go into nested tables."""
    settings = load_settings(
        _config_file(tmp_path),
        overrides=["dataset.storage_options.client_kwargs.region_name=eu-west-1"],
        environ={},
    )
    assert settings.dataset.storage_options["client_kwargs"] == {"region_name": "eu-west-1"}


def test_set_without_equals_is_config_error(tmp_path):
    """--set needs KEY=VALUE."""
    with pytest.raises(ConfigError, match="--set expects KEY=VALUE"):
        load_settings(_config_file(tmp_path), overrides=["columns.y_pred"], environ={})


def test_set_inside_a_scalar_is_config_error(tmp_path):
    """--set cannot descend into a key that holds a scalar."""
    with pytest.raises(ConfigError, match=r"'dataset\.path' is 's3://bucket/preds/', not a table"):
        load_settings(_config_file(tmp_path), overrides=["dataset.path.x=1"], environ={})


def test_address_without_a_port_is_a_config_error(tmp_path):
    """A scheduler address missing its port is refused up front, naming where it came from."""
    path = _config_file(tmp_path)
    for address in ("10.0.0.5", "tcp://10.0.0.5", "tls://[::1]", "tcp://host:"):
        with pytest.raises(ConfigError, match=r"cluster\.address.*with a port.*DASKLOSS_SCHED"):
            load_settings(path, environ={"DASKLOSS_SCHEDULER": address})
    settings = load_settings(path, environ={"DASKLOSS_SCHEDULER": "tcp://[::1]:8786"})
    assert settings.cluster.address == "tcp://[::1]:8786"


def test_address_defaults_to_embedded(tmp_path):
    """With no address anywhere, the embedded default ("") is used."""
    assert load_settings(_config_file(tmp_path), environ={}).cluster.address == ""


def test_file_overrides_default(tmp_path):
    """The config file's address beats the default."""
    path = _config_file(tmp_path, cluster={"address": "tcp://file:1"})
    assert load_settings(path, environ={}).cluster.address == "tcp://file:1"


def test_environment_overrides_file(tmp_path):
    """DASKLOSS_SCHEDULER beats the config file."""
    path = _config_file(tmp_path, cluster={"address": "tcp://file:1"})
    settings = load_settings(path, environ={"DASKLOSS_SCHEDULER": "tcp://env:1"})
    assert settings.cluster.address == "tcp://env:1"


def test_dask_scheduler_address_is_read(tmp_path):
    """DASK_SCHEDULER_ADDRESS sets the address too."""
    settings = load_settings(
        _config_file(tmp_path), environ={"DASK_SCHEDULER_ADDRESS": "tcp://dask:1"}
    )
    assert settings.cluster.address == "tcp://dask:1"


def test_daskloss_variable_beats_dask_variable(tmp_path):
    """DASKLOSS_SCHEDULER wins over DASK_SCHEDULER_ADDRESS."""
    environ = {"DASK_SCHEDULER_ADDRESS": "tcp://dask:1", "DASKLOSS_SCHEDULER": "tcp://ours:1"}
    assert load_settings(_config_file(tmp_path), environ=environ).cluster.address == "tcp://ours:1"


def test_empty_variable_counts_as_unset(tmp_path):
    """An empty DASKLOSS_SCHEDULER leaves the file's address."""
    path = _config_file(tmp_path, cluster={"address": "tcp://file:1"})
    assert load_settings(path, environ={"DASKLOSS_SCHEDULER": ""}).cluster.address == "tcp://file:1"


def test_set_overrides_environment(tmp_path):
    """--set beats the environment."""
    settings = load_settings(
        _config_file(tmp_path),
        overrides=["cluster.address=tcp://set:1"],
        environ={"DASKLOSS_SCHEDULER": "tcp://env:1"},
    )
    assert settings.cluster.address == "tcp://set:1"


def test_scheduler_flag_overrides_set(tmp_path):
    """--scheduler beats --set cluster.address, and "" selects the embedded default."""
    path = _config_file(tmp_path)
    flagged = load_settings(
        path, overrides=["cluster.address=tcp://set:1"], scheduler="", environ={}
    )
    assert flagged.cluster.address == ""


def test_output_flag_overrides_file(tmp_path):
    """--output beats output.path from the file."""
    path = _config_file(tmp_path, output={"path": "s3://b/file.json"})
    settings = load_settings(path, output="s3://b/flag.json", environ={})
    assert settings.output.path == "s3://b/flag.json"


def test_relative_paths_resolve_against_working_directory(tmp_path, monkeypatch):
    """Relative local paths become absolute against the current directory, not the file's."""
    path = _config_file(tmp_path, dataset={"path": "data/"}, output={"path": "out/r.json"})
    monkeypatch.chdir(tmp_path.parent)
    settings = load_settings(path, environ={})
    assert settings.dataset.path == os.path.join(tmp_path.parent, "data")
    assert settings.output.path == os.path.join(tmp_path.parent, "out", "r.json")


def test_urls_are_kept_as_given():
    """fsspec URLs are not resolved."""
    assert parse_settings(MINIMAL).dataset.path == "s3://bucket/preds/"


def test_redacted_hides_secrets():
    """Secret-looking storage options and URL passwords are hidden; others are kept."""
    options = {"key": "AK", "secret": "S", "client_kwargs": {"endpoint_url": "http://h"}}
    data = _with("dataset", path="ftp://user:pw@host/preds/", storage_options=options)
    shown = redacted(parse_settings(data))["dataset"]
    assert shown["storage_options"] == {
        "key": "***",
        "secret": "***",
        "client_kwargs": {"endpoint_url": "http://h"},
    }
    assert shown["path"] == "ftp://user:***@host/preds/"


def test_repr_hides_storage_options():
    """Settings' repr (as in logs and tracebacks) leaves storage options out."""
    settings = parse_settings(_with("dataset", storage_options={"secret": "S3CR3T"}))
    assert "S3CR3T" not in repr(settings)


def test_digest_ignores_key_order_and_secrets():
    """Equal settings give equal digests; secrets do not enter it."""
    first = parse_settings(_with("dataset", storage_options={"secret": "a", "anon": False}))
    second = parse_settings(_with("dataset", storage_options={"anon": False, "secret": "b"}))
    assert settings_digest(first) == settings_digest(second)
    assert settings_digest(first) != settings_digest(parse_settings(MINIMAL))


def test_a_fifo_as_the_config_file_is_refused_at_once(tmp_path):
    """A FIFO given as the config would block the read forever: refused before it is opened."""
    os.mkfifo(tmp_path / "job.toml")
    with pytest.raises(ConfigError, match=r"job\.toml: it is a FIFO \(named pipe\)"):
        load_settings(tmp_path / "job.toml", environ={})


@pytest.mark.parametrize("section", ["dataset", "output"])
def test_a_nul_character_in_a_path_is_a_config_error(section):
    """A path holding NUL cannot name a file: refused up front, not a ValueError later."""
    message = _error(_with(section, path="/data/a\0b"))
    assert f"config key '{section}.path': expected a path without NUL characters" in message


def test_an_integer_of_thousands_of_digits_is_a_config_error(tmp_path):
    """A 5,000-digit integer (past Python's conversion limit) is a config error: --set or file."""
    digits = "9" * 5000
    with pytest.raises(ConfigError, match=r"'cluster.n_workers': a value cannot be read") as caught:
        load_settings(_config_file(tmp_path), overrides=[f"cluster.n_workers={digits}"], environ={})
    assert digits not in str(caught.value)
    (tmp_path / "big.toml").write_text(f"[cluster]\nn_workers = {digits}\n")
    with pytest.raises(ConfigError, match=r"big\.toml is not valid TOML: a value cannot be read"):
        load_settings(tmp_path / "big.toml", environ={})


def test_toml_nested_hundreds_deep_is_a_config_error(tmp_path):
    """Arrays or tables nested 500 deep (a RecursionError) are a config error."""
    (tmp_path / "deep.toml").write_text("[evaluation]\nmetrics = " + "[" * 500 + "]" * 500 + "\n")
    with pytest.raises(ConfigError, match=r"deep\.toml is not valid TOML: .*nested too deeply"):
        load_settings(tmp_path / "deep.toml", environ={})
    table = "{a = " * 500 + "1" + "}" * 500
    with pytest.raises(ConfigError, match=r"'dataset\.storage_options': values are nested too"):
        load_settings(
            _config_file(tmp_path), overrides=[f"dataset.storage_options={table}"], environ={}
        )
    nested: object = 1
    for _ in range(20):
        nested = {"a": nested}
    message = _error(_with("dataset", storage_options=nested))
    assert "expected tables nested at most 8 deep" in message


@pytest.mark.parametrize("key", ["connect_timeout", "stall_timeout"])
@pytest.mark.parametrize("value", [1e308, 86_401, 0, -1])
def test_waits_are_bounded(key, value):
    """A wait is a deadline of at most a day: 1e308 seconds (forever) is refused."""
    assert f"config key 'cluster.{key}': expected a " in _error(_with("cluster", **{key: value}))


def test_stall_timeout_defaults_to_five_minutes():
    """cluster.stall_timeout is 300 s unless set."""
    assert parse_settings(MINIMAL).cluster.stall_timeout == 300.0
    assert parse_settings(_with("cluster", stall_timeout=86_400)).cluster.stall_timeout == 86_400


def test_a_report_in_memory_is_refused():
    """output.path = memory://... keeps nothing once the job ends: a config error."""
    message = _error(_with("output", path="memory://reports/r.json"))
    assert "config key 'output.path': expected a place that outlives the job" in message


def test_slices_and_several_predictions_are_config_keys():
    """columns.y_pred may list models; group_by, baseline, min_slice_count and the table's keys."""
    settings = parse_settings(
        {
            "dataset": {"path": "s3://bucket/preds/"},
            "columns": {"y_true": "y", "y_pred": ["new", "old"]},
            "evaluation": {
                "group_by": ["segment", "day"],
                "baseline": "old",
                "min_slice_count": 50,
            },
            "output": {"table_slices": 5, "table_metric": "mae"},
        }
    )
    assert settings.columns.y_pred == ("new", "old")
    assert settings.evaluation.group_by == ("segment", "day")
    assert (settings.evaluation.baseline, settings.evaluation.min_slice_count) == ("old", 50)
    assert (settings.output.table_slices, settings.output.table_metric) == (5, "mae")
    assert parse_settings(_with("evaluation", group_by="segment")).evaluation.group_by == "segment"


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("columns", {"y_pred": []}, r"columns\.y_pred': expected a column name or a non-empty"),
        ("columns", {"y_pred": ["a", "a"]}, r"columns\.y_pred': expected each column once"),
        ("columns", {"y_pred": ["a", 3]}, r"columns\.y_pred': expected column names.*got 3"),
        ("evaluation", {"min_slice_count": 0}, r"min_slice_count': expected an integer >= 1"),
        ("output", {"table_metric": "count"}, r"table_metric': expected a metric name"),
    ],
)
def test_bad_slice_settings_name_the_key(section, values, message):
    """A malformed list of predictions, slice count or table metric is one line naming the key."""
    assert re.search(message, _error(_with(section, **values)))
