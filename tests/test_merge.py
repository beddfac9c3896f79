import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.steps.merge import PatchDirectiveError, merge


def test_maps_merge_recursively() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    assert merge(base, {"a": {"c": 20, "e": 5}}) == {"a": {"b": 1, "c": 20, "e": 5}, "d": 3}


@pytest.mark.parametrize("field", ["containers", "env", "volumes", "ports", "volumeMounts", "initContainers"])
def test_named_lists_merge_by_name(field: str) -> None:
    base = {field: [{"name": "a", "x": 1, "keep": True}, {"name": "b", "x": 2}]}
    patch = {field: [{"name": "b", "x": 20}, {"name": "c", "x": 3}, {"name": "a", "x": 10}]}
    assert merge(base, patch) == {
        field: [{"name": "a", "x": 10, "keep": True}, {"name": "b", "x": 20}, {"name": "c", "x": 3}]
    }


def test_nested_named_lists() -> None:
    base = {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}]}
    patch = {"containers": [{"name": "app", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]}]}
    assert merge(base, patch)["containers"][0]["env"] == [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]


def test_other_lists_and_scalars_are_replaced() -> None:
    base = {"args": ["--a", "--b"], "ports": [{"containerPort": 80}], "replicas": 1}
    patch = {"args": ["--c"], "ports": [{"containerPort": 8080}], "replicas": 3}
    assert merge(base, patch) == patch


def test_list_of_named_replaced_when_patch_items_unnamed() -> None:
    assert merge({"x": [{"name": "a"}]}, {"x": [{"value": 1}]}) == {"x": [{"value": 1}]}


def test_delete_key() -> None:
    base = {"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "0.5"}}}
    assert merge(base, {"resources": {"limits": {"$patch": "delete"}}}) == {"resources": {"requests": {"cpu": "0.5"}}}


def test_delete_missing_key_is_harmless() -> None:
    assert merge({"a": 1}, {"b": {"$patch": "delete"}}) == {"a": 1}


def test_delete_named_item() -> None:
    base = {"containers": [{"name": "app"}, {"name": "debug-sidecar"}]}
    assert merge(base, {"containers": [{"name": "debug-sidecar", "$patch": "delete"}]}) == {"containers": [{"name": "app"}]}


def test_replace_directive() -> None:
    base = {"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "0.5"}}}
    patch = {"resources": {"$patch": "replace", "requests": {"cpu": "2"}}}
    assert merge(base, patch) == {"resources": {"requests": {"cpu": "2"}}}


def test_directives_never_reach_output() -> None:
    patch = {"new": {"inner": {"$patch": "delete"}, "keep": 1}, "items": [{"name": "x", "$patch": "delete"}, {"name": "y"}]}
    assert merge({}, patch) == {"new": {"keep": 1}, "items": [{"name": "y"}]}


def test_unknown_directive() -> None:
    with pytest.raises(PatchDirectiveError, match="unknown \\$patch value 'remove'"):
        merge({"a": {"b": 1}}, {"a": {"$patch": "remove"}})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=15,
)


@given(json_values, json_values)
def test_inputs_are_never_mutated(base: Any, patch: Any) -> None:
    before_base, before_patch = copy.deepcopy(base), copy.deepcopy(patch)
    merge(base, patch)
    assert base == before_base and patch == before_patch


@given(st.dictionaries(st.text(max_size=3), json_values, max_size=4))
def test_empty_patch_is_identity(base: dict[str, Any]) -> None:
    assert merge(base, {}) == base


@given(json_values)
def test_patching_with_itself_is_idempotent(value: Any) -> None:
    once = merge(value, value)
    assert merge(once, value) == once
