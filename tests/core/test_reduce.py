"""The one merge tree: fan-in, and task keys from a token."""

from __future__ import annotations

import dask
import pytest

from daskloss.reduce import tree_reduce


@pytest.mark.parametrize("split_every", [False, None, 2, 3])
def test_every_fan_in_gives_the_same_merge(split_every):
    """The tree's shape does not change what it merges."""
    lazy = tree_reduce(range(10), lambda x: [x], sum_lists, split_every=split_every)
    assert sorted(lazy.compute()) == list(range(10))


def sum_lists(parts):
    return [x for part in parts for x in part]


def test_a_token_gives_equal_calls_equal_keys():
    """With a token, two equal trees share every key, so one compute runs them once."""
    calls = []

    def unit(x):
        calls.append(x)
        return x

    first = tree_reduce(range(4), unit, sum, token="t")
    second = tree_reduce(range(4), unit, sum, token="t")
    assert first.key == second.key
    assert dask.compute(first, second) == (6, 6)
    assert sorted(calls) == [0, 1, 2, 3]


def test_without_a_token_trees_never_share_keys():
    """By default every tree has keys of its own."""
    assert tree_reduce(range(3), int, sum).key != tree_reduce(range(3), int, sum).key


def test_units_handed_over_as_they_are_merge_alike():
    """traverse=False gives each task its unit untouched, Delayed attributes and all."""
    units = [{"value": dask.delayed(x)} for x in range(5)]

    def unit(u):
        value = u["value"]
        return [value if isinstance(value, int) else "unseen"]

    seen = tree_reduce(units, unit, sum_lists, split_every=2).compute()
    unseen = tree_reduce(units, unit, sum_lists, split_every=2, traverse=False).compute()
    assert sorted(seen) == list(range(5))
    assert unseen == ["unseen"] * 5
