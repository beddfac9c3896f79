import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.steps.k8s_schema import schemas
from generator.steps.merge import PatchDirectiveError, merge

# Tests without a strategy exercise the schema-less rules (custom resources); the tests after
# `DEPLOYMENT` use the strategic-merge keys of the pinned Kubernetes schema.


def test_maps_merge_recursively() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    assert merge(base, {"a": {"c": 20, "e": 5}}) == {"a": {"b": 1, "c": 20, "e": 5}, "d": 3}


@pytest.mark.parametrize("field", ["containers", "env", "volumes", "ports", "volumeMounts", "initContainers"])
def test_without_schema_named_lists_merge_by_name(field: str) -> None:
    base = {field: [{"name": "a", "x": 1, "keep": True}, {"name": "b", "x": 2}]}
    patch = {field: [{"name": "b", "x": 20}, {"name": "c", "x": 3}, {"name": "a", "x": 10}]}
    assert merge(base, patch) == {
        field: [{"name": "a", "x": 10, "keep": True}, {"name": "b", "x": 20}, {"name": "c", "x": 3}]
    }


def test_nested_named_lists() -> None:
    base = {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}]}
    patch = {"containers": [{"name": "app", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]}]}
    assert merge(base, patch)["containers"][0]["env"] == [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]


def test_without_schema_other_lists_and_scalars_are_replaced() -> None:
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


def _deployment(containers: list[dict[str, Any]], **pod: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": containers, **pod}}}}


def _pod(obj: dict[str, Any]) -> Any:
    return obj["spec"]["template"]["spec"]


def _deploy_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    strategy = schemas().strategy("apps/v1", "Deployment")
    assert strategy is not None
    result: dict[str, Any] = merge(base, patch, strategy)
    return result


def test_volume_mounts_merge_by_mount_path_not_name() -> None:
    # The case: two mounts of volume `conf`; the patch is meant for the first one.
    base = _deployment([{"name": "nginx", "image": "nginx", "volumeMounts": [
        {"name": "conf", "mountPath": "/etc/nginx/conf.d/default.conf", "subPath": "default.conf"},
        {"name": "conf", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"}]}])
    patch = _deployment([{"name": "nginx", "volumeMounts": [
        {"name": "conf", "mountPath": "/etc/nginx/conf.d/default.conf", "readOnly": True}]}])
    mounts = _pod(_deploy_merge(base, patch))["containers"][0]["volumeMounts"]
    assert mounts == [
        {"name": "conf", "mountPath": "/etc/nginx/conf.d/default.conf", "subPath": "default.conf", "readOnly": True},
        {"name": "conf", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"},
    ]


def test_ports_merge_by_container_port_and_protocol() -> None:
    base = _deployment([{"name": "a", "image": "x", "ports": [
        {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}, {"containerPort": 53, "protocol": "UDP", "name": "dns"}]}])
    patch = _deployment([{"name": "a", "ports": [{"containerPort": 53, "protocol": "UDP", "hostPort": 53}]}])
    ports = _pod(_deploy_merge(base, patch))["containers"][0]["ports"]
    assert ports == [{"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"},
                     {"containerPort": 53, "protocol": "UDP", "name": "dns", "hostPort": 53}]


def test_a_port_without_protocol_is_the_tcp_port() -> None:
    base = _deployment([{"name": "a", "image": "x", "ports": [{"containerPort": 80, "name": "http"}]}])
    patch = _deployment([{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "web"}]}])
    assert _pod(_deploy_merge(base, patch))["containers"][0]["ports"] == [{"containerPort": 80, "name": "web", "protocol": "TCP"}]


def test_env_order_is_the_patch_order_then_the_rest_as_kubectl() -> None:
    base = _deployment([{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
    patch = _deployment([{"name": "a", "env": [{"name": "C", "value": "$(B)"}, {"name": "A", "value": "9"}]}])
    env = _pod(_deploy_merge(base, patch))["containers"][0]["env"]
    assert [e["name"] for e in env] == ["C", "A", "B"]


def test_null_deletes_a_key() -> None:
    base = _deployment([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}])
    base["metadata"]["labels"] = {"team": "x", "tier": "web"}
    patch = _deployment([{"name": "a", "resources": {"limits": {"cpu": None}}}])
    patch["metadata"]["labels"] = {"team": None, "gone": None}
    result = _deploy_merge(base, patch)
    assert result["metadata"]["labels"] == {"tier": "web"}
    assert _pod(result)["containers"][0]["resources"] == {"limits": {"memory": "1Gi"}}


def test_list_items_replace_and_delete() -> None:
    base = _deployment([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}], volumes=[{"name": "v", "emptyDir": {}}])
    replaced = _deploy_merge(base, _deployment([{"$patch": "replace"}, {"name": "c", "image": "z"}]))
    assert _pod(replaced)["containers"] == [{"name": "c", "image": "z"}]
    gone = _deploy_merge(base, {"spec": {"template": {"spec": {"volumes": [{"$patch": "delete"}]}}}})
    assert "volumes" not in _pod(gone)
    one = _deploy_merge(base, _deployment([{"name": "a", "$patch": "delete"}, {"$patch": "merge"}]))
    assert _pod(one)["containers"] == [{"name": "b", "image": "y"}]


def test_lists_without_merge_key_are_replaced() -> None:
    base = _deployment([{"name": "a", "image": "x", "args": ["--a"]}], tolerations=[{"key": "a", "operator": "Exists"}])
    patch = _deployment([{"name": "a", "args": ["--b"]}], tolerations=[{"key": "b", "operator": "Exists"}])
    result = _pod(_deploy_merge(base, patch))
    assert result["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert result["containers"][0]["args"] == ["--b"]


def test_a_directive_item_in_a_replaced_list_is_an_error() -> None:
    base = _deployment([{"name": "a", "image": "x"}], tolerations=[{"key": "a", "operator": "Exists"}])
    with pytest.raises(PatchDirectiveError, match="has no merge key") as info:
        _deploy_merge(base, {"spec": {"template": {"spec": {"tolerations": [{"key": "a", "$patch": "delete"}]}}}})
    assert info.value.path == ("spec", "template", "spec", "tolerations", 0, "$patch")


def test_finalizers_merge_as_a_set() -> None:
    base = {"metadata": {"name": "web", "finalizers": ["x", "y"]}}
    assert _deploy_merge(base, {"metadata": {"finalizers": ["z", "x"]}})["metadata"]["finalizers"] == ["z", "x", "y"]


def test_a_misspelled_container_is_an_error_with_a_suggestion() -> None:
    base = _deployment([{"name": "api", "image": "x"}, {"name": "side", "image": "y"}])
    with pytest.raises(PatchDirectiveError, match="without `image`") as info:
        _deploy_merge(base, _deployment([{"name": "apii", "resources": {}}]))
    assert info.value.path == ("spec", "template", "spec", "containers", 0)
    assert info.value.hint is not None and info.value.hint.startswith("did you mean 'api'?")


def test_a_new_complete_container_is_added() -> None:
    base = _deployment([{"name": "api", "image": "x"}])
    result = _deploy_merge(base, _deployment([{"name": "proxy", "image": "envoy"}]))
    assert [c["name"] for c in _pod(result)["containers"]] == ["proxy", "api"]


def test_an_item_without_its_merge_key_is_an_error() -> None:
    base = _deployment([{"name": "api", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}])
    with pytest.raises(PatchDirectiveError, match="has no `mountPath`"):
        _deploy_merge(base, _deployment([{"name": "api", "volumeMounts": [{"name": "v", "readOnly": True}]}]))


@pytest.mark.parametrize("key", ["$setElementOrder/containers", "$deleteFromPrimitiveList/finalizers", "$retainKeys"])
def test_unsupported_directives_are_errors(key: str) -> None:
    with pytest.raises(PatchDirectiveError, match="is not supported"):
        _deploy_merge(_deployment([]), {"spec": {key: []}})


def test_strategies_are_built_once_per_definition() -> None:
    api = schemas()
    deployment, stateful = api.strategy("apps/v1", "Deployment"), api.strategy("apps/v1", "StatefulSet")
    assert deployment is api.strategy("apps/v1", "Deployment")
    assert deployment is not None and stateful is not None
    pod = deployment.fields["spec"].fields["template"].fields["spec"]
    assert pod is stateful.fields["spec"].fields["template"].fields["spec"]
    assert pod.fields["containers"].keys == ("name",)
    assert pod.fields["containers"].items is not None
    assert pod.fields["containers"].items.fields["ports"].keys == ("containerPort", "protocol")
    assert pod.fields["containers"].items.fields["volumeMounts"].keys == ("mountPath",)
    assert pod.fields["tolerations"].keys == ()


def test_custom_resources_have_no_strategy() -> None:
    assert schemas().strategy("argoproj.io/v1alpha1", "Rollout") is None


@given(json_values, json_values)
def test_schema_merge_never_mutates_inputs(base: Any, patch: Any) -> None:
    strategy = schemas().strategy("apps/v1", "Deployment")
    before_base, before_patch = copy.deepcopy(base), copy.deepcopy(patch)
    try:
        merge(base, patch, strategy)
    except PatchDirectiveError:
        pass
    assert base == before_base and patch == before_patch


def test_finalizers_given_twice_stay_once() -> None:
    base = {"metadata": {"name": "web", "finalizers": ["x", "y", "x"]}}
    assert _deploy_merge(base, {"metadata": {"finalizers": ["z", "z"]}})["metadata"]["finalizers"] == ["z", "x", "y"]


def test_a_whole_list_directive_in_a_replaced_list_is_an_error_too() -> None:
    base = _deployment([{"name": "a", "image": "x", "args": ["--a"]}])
    with pytest.raises(PatchDirectiveError, match="has no merge key"):
        _deploy_merge(base, _deployment([{"name": "a", "args": [{"$patch": "replace"}, "--b"]}]))
