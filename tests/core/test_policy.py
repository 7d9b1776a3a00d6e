"""Operator policy: read roots on the file actually opened, redaction by structure."""

from __future__ import annotations

import os
import stat

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import daskloss
from daskloss import ConfigError, ReadError
from daskloss.config import parse_settings
from daskloss.policy import (
    REDACTED,
    ReadRoots,
    Scrubber,
    hide_secrets,
    open_regular,
    redact_text,
    redact_url,
    removed_secrets,
)
from daskloss.sources.files import plan_files
from tests.helpers import (
    BEARER_TOKEN,
    CONNECTION_STRING,
    ENDPOINT_PASSWORD,
    URL_PASSWORD,
    leaked_secrets,
    secret_options,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ftp://bob:hunter2@host/data/", "ftp://bob:***@host/data/"),
        (f"ftp://bob:{URL_PASSWORD}@host/data/", "ftp://bob:***@host/data/"),
        ("ftp://bob:p@ss@host/data/", "ftp://bob:***@host/data/"),
        ("https://ghp_t0ken@github.com/o/r", "https://***@github.com/o/r"),
        ("s3://bucket/users/a@b.com/preds/", "s3://bucket/users/a@b.com/preds/"),
        ("http://host:8080/a@b/c", "http://host:8080/a@b/c"),
        ("/local/path@x", "/local/path@x"),
    ],
)
def test_url_user_information_is_always_hidden(url, shown):
    """Passwords (with "/", "#", "?", "@") and lone users are hidden; paths holding "@" are not."""
    assert redact_url(url) == shown


MINIMAL = {"dataset": {"path": "s3://b/p/"}, "columns": {"y_true": "y", "y_pred": "p"}}


def test_urls_in_free_text_are_redacted():
    """A library's message quoting a URL loses the URL's user information."""
    text = f"Could not connect to the endpoint URL: 'http://minio:{ENDPOINT_PASSWORD}@h:9/b'"
    assert redact_text(text) == "Could not connect to the endpoint URL: 'http://minio:***@h:9/b'"


def test_storage_options_are_hidden_unless_known_harmless():
    """Headers, connection strings, keys: hidden; region, anon: shown; endpoints without users."""
    shown = hide_secrets(secret_options("http://127.0.0.1:9"))
    assert shown == {
        "anon": False,
        "headers": REDACTED,
        "connection_string": REDACTED,
        "client_kwargs": {
            "endpoint_url": "http://minio:***@127.0.0.1:9",
            "region_name": "us-east-1",
        },
    }
    assert not leaked_secrets(repr(shown))


def test_removed_secrets_are_what_redaction_took_out():
    """Every value redaction hides is known, so that it can be scrubbed from free text."""
    original = {"path": f"ftp://bob:{URL_PASSWORD}@h/", "options": secret_options()}
    shown = {"path": redact_url(original["path"]), "options": hide_secrets(original["options"])}
    assert removed_secrets(original, shown) == {
        URL_PASSWORD,
        BEARER_TOKEN,
        CONNECTION_STRING,
        ENDPOINT_PASSWORD,
    }


def test_scrubber_takes_known_secrets_out_of_any_text():
    """A message quoting a secret verbatim (a library's error) is scrubbed; short values are not."""
    scrubber = Scrubber()
    scrubber.add({BEARER_TOKEN, "abc"})
    text = scrubber.scrub(
        f"HTTP 403 for header {BEARER_TOKEN!r} at https://u:{URL_PASSWORD}@h/ abc"
    )
    assert text == "HTTP 403 for header '***' at https://u:***@h/ abc"


@pytest.mark.parametrize("value", [",", " ", "", " , ,"])
def test_read_roots_listing_nothing_are_a_config_error(value, monkeypatch):
    """DASKLOSS_READ_ROOTS set but naming nothing refuses to run rather than confine nothing."""
    monkeypatch.setenv("DASKLOSS_READ_ROOTS", value)
    with pytest.raises(ConfigError, match="lists no directory"):
        ReadRoots.from_environ()
    with pytest.raises(ConfigError, match="read_roots must list"):
        daskloss.evaluate("unused", read_roots=[])


def test_relative_read_roots_are_made_absolute(tmp_path, monkeypatch):
    """A relative root means the client's directory, also on workers elsewhere."""
    monkeypatch.chdir(tmp_path)
    assert ReadRoots.parse("data, s3://b/p").roots == (str(tmp_path / "data"), "s3://b/p")


def test_open_regular_refuses_a_fifo_and_a_device_without_blocking(tmp_path):
    """A FIFO (which blocks an open for reading) or a device is refused before it is opened."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), ("/dev/zero", "a character device")):
        with pytest.raises(OSError, match=f"it is {kind}"):
            open_regular(str(path))


def _table(value: float) -> pa.Table:
    return pa.table({"y_true": [value, value], "y_pred": [value + 1, value + 1]})


def _dataset(tmp_path):
    """An allowed directory with one data file, and a secret file outside it."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "data").mkdir(parents=True)
    outside.mkdir()
    pq.write_table(_table(1.0), allowed / "data" / "part-0.parquet")
    pq.write_table(_table(1000.0), outside / "secret.parquet")
    return allowed, outside


def _swap_for_link(path, target) -> None:
    path.unlink()
    path.symlink_to(target)


def test_a_file_swapped_for_a_link_after_the_listing_is_never_read(tmp_path):
    """The listed file becomes a link outside before a unit reads it: refused on the read."""
    allowed, outside = _dataset(tmp_path)
    roots = ReadRoots((str(allowed),))
    plan = plan_files(allowed / "data", ["y_true", "y_pred"], read_roots=roots)
    _swap_for_link(allowed / "data" / "part-0.parquet", outside / "secret.parquet")
    with pytest.raises(ConfigError, match=r"outside the directories this job may read"):
        list(plan.units[0].chunks())


def test_a_directory_swapped_for_a_link_is_caught_on_the_file_opened(tmp_path):
    """A directory on the path swapped for a link: the file opened, not its name, is checked."""
    allowed, outside = _dataset(tmp_path)
    pq.write_table(_table(1000.0), outside / "part-0.parquet")
    roots = ReadRoots((str(allowed),))
    plan = plan_files(allowed / "data", ["y_true", "y_pred"], read_roots=roots)
    (allowed / "data").rename(allowed / "moved")
    (allowed / "data").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"moved or replaced .* outside the directories"):
        list(plan.units[0].chunks())


def test_a_link_inside_the_roots_to_a_file_inside_is_read(tmp_path):
    """Links are followed where they stay inside the roots."""
    allowed, _ = _dataset(tmp_path)
    (allowed / "data" / "link.parquet").symlink_to(allowed / "data" / "part-0.parquet")
    result = daskloss.evaluate(allowed / "data", read_roots=[str(allowed)])
    assert result.metrics["count"] == 4


def test_a_hard_link_inside_the_roots_is_a_file_inside(tmp_path):
    """Roots confine names: a hard link made inside them is read like any file there (README)."""
    allowed, outside = _dataset(tmp_path)
    os.link(outside / "secret.parquet", allowed / "data" / "hard.parquet")
    result = daskloss.evaluate(allowed / "data", read_roots=[str(allowed)])
    assert result.metrics["count"] == 4


def test_a_fifo_swapped_in_after_the_listing_is_refused_at_once(tmp_path):
    """A unit finding a FIFO where the listing saw a file fails at once instead of blocking."""
    allowed, _ = _dataset(tmp_path)
    plan = plan_files(allowed / "data", ["y_true", "y_pred"])
    (allowed / "data" / "part-0.parquet").unlink()
    os.mkfifo(allowed / "data" / "part-0.parquet")
    with pytest.raises(ReadError, match=r"part-0\.parquet: it is a FIFO"):
        list(plan.units[0].chunks())
    assert stat.S_ISFIFO(os.stat(allowed / "data" / "part-0.parquet").st_mode)


@pytest.mark.parametrize("password", ["s3cret", URL_PASSWORD])
def test_a_scheduler_address_with_a_password_is_refused_without_echoing_it(password):
    """Dask addresses have no user information: refused, the password never shown."""
    address = f"tcp://bob:{password}@127.0.0.1:8786"
    with pytest.raises(ConfigError) as caught:
        parse_settings({**MINIMAL, "cluster": {"address": address}})
    assert "holds user information" in str(caught.value) and password not in str(caught.value)
    assert "tcp://bob:***@127.0.0.1:8786" in str(caught.value)
