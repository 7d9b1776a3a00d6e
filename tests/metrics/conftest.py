"""Fixtures and hooks of the metric tests: scikit-learn's seed fixture and test selection."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "thread_unsafe: used by scikit-learn's test_common.py (no effect here)"
    )
    # test_common.py parametrizes with itertools.chain and generators, which pytest deprecates.
    config.addinivalue_line(
        "filterwarnings", "ignore:Passing a non-Collection iterable to parametrize"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``global_random_seed``, as scikit-learn's conftest gives it.

    42 by default; ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` may be ``all`` (0 to
    99), a range ``a-b`` or one seed.
    """
    if "global_random_seed" not in metafunc.fixturenames:
        return
    value = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED")
    if value is None:
        seeds = [42]
    elif value == "all":
        seeds = list(range(100))
    elif "-" in value:
        low, high = value.split("-")
        seeds = list(range(int(low), int(high) + 1))
    else:
        seeds = [int(value)]
    metafunc.parametrize("global_random_seed", seeds)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Let a test module deselect items (``selected``) or skip them (``not_applicable``)."""
    kept, dropped = [], []
    for item in items:
        module = getattr(item, "module", None)
        selected = getattr(module, "selected", None)
        if selected is not None and not selected(item):
            dropped.append(item)
            continue
        reason = getattr(module, "not_applicable", lambda item: None)(item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many calls scikit-learn's tests made to daskloss, and with which inputs."""
    from tests.metrics import sklearn_suite

    if sklearn_suite.CALLS["all"]:
        counts = ", ".join(f"{kind}: {n}" for kind, n in sklearn_suite.CALLS.items())
        terminalreporter.write_line(f"daskloss.metrics calls from scikit-learn's tests: {counts}")
