"""The compact field-level diff used by `diff` for objects and pod templates."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from generator.review.fielddiff import FieldChange, field_diff, join


def test_maps_and_scalars() -> None:
    old = {"spec": {"replicas": 2, "paused": True}, "metadata": {"labels": {"a": "1"}}}
    new = {"spec": {"replicas": 4}, "metadata": {"labels": {"a": "1", "app.kubernetes.io/v": "2"}}}
    assert field_diff(old, new) == [
        FieldChange("spec.replicas", "changed", 2, 4),
        FieldChange("spec.paused", "removed", old=True),
        FieldChange('metadata.labels["app.kubernetes.io/v"]', "added", new="2"),
    ]


def test_named_lists_match_by_name() -> None:
    old = {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}
    new = {"containers": [{"name": "x", "image": "x:1"}, {"name": "a", "image": "a:2"}, {"name": "b", "image": "b:1"}]}
    assert field_diff(old, new) == [
        FieldChange("containers[a].image", "changed", "a:1", "a:2"),
        FieldChange("containers[x]", "added", new={"name": "x", "image": "x:1"}),
    ]


def test_reordered_named_list_is_a_change() -> None:
    old = {"env": [{"name": "A"}, {"name": "B"}]}
    assert field_diff(old, {"env": [{"name": "B"}, {"name": "A"}]}) == [FieldChange("env", "changed", ["A", "B"], ["B", "A"])]


def test_other_lists() -> None:
    assert field_diff({"args": ["-a", "-b"]}, {"args": ["-a", "-c"]}) == [FieldChange("args[1]", "changed", "-b", "-c")]
    assert field_diff({"args": ["-a"]}, {"args": ["-a", "-c"]}) == [FieldChange("args", "changed", ["-a"], ["-a", "-c"])]
    assert field_diff([1], {"a": 1}) == [FieldChange("", "changed", [1], {"a": 1})]


def test_join() -> None:
    assert join("", "spec") == "spec"
    assert join("a", "b_c-d") == "a.b_c-d"
    assert join("a", "x/y.z") == 'a["x/y.z"]'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    | st.lists(st.fixed_dictionaries({"name": st.sampled_from("abc"), "v": inner}), max_size=3),
    max_leaves=20,
)


@given(json_values, json_values)
def test_empty_exactly_when_equal(a: Any, b: Any) -> None:
    assert (field_diff(a, b) == []) == (a == b)
    assert field_diff(a, a) == []
