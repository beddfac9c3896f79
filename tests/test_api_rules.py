"""The API server's own validation at render time (generator/steps/api_rules.py): one row per
rule, a valid object and the same object broken, with where the error points."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from generator.steps.api_rules import (
    ANNOTATIONS_LIMIT,
    BROKEN,
    REFUSED,
    env_duplicates,
    label_value_problem,
    qualified_name_problem,
    selector_matches,
    subpath_keys,
    violations,
)
from generator.steps.references import Target, dotted
from tests.helpers import BASIC_APP, deployment, run, write_repo
from tests.kubectl import find_kubectl


def workload(kind: str = "Deployment") -> dict[str, Any]:
    """A valid workload: every rule of this module holds."""
    return {
        "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {
                    "containers": [{
                        "name": "web", "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}],
                        "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx"}],
                        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
                        "readinessProbe": {"httpGet": {"port": "http", "path": "/"}},
                        "livenessProbe": {"tcpSocket": {"port": 80}},
                    }],
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "volumes": [{"name": "conf", "configMap": {"name": "web-config"}}],
                },
            },
        },
    }


Edit = Callable[[dict[str, Any]], None]


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _c(obj: dict[str, Any]) -> dict[str, Any]:
    return _pod(obj)["containers"][0]  # type: ignore[no-any-return]


CASES: list[tuple[str, Edit, str, str, str]] = [
    # (case, edit, path of the error, words of the message, class)
    ("selector does not match labels", lambda o: o["spec"]["selector"]["matchLabels"].update(app="api"),
     "spec.template.metadata.labels", "does not match the pod template's labels", REFUSED),
    ("matchExpressions In not satisfied",
     lambda o: o["spec"]["selector"].update(matchExpressions=[{"key": "tier", "operator": "In", "values": ["back"]}]),
     "spec.template.metadata.labels", "does not match", REFUSED),
    ("matchExpressions In without values",
     lambda o: o["spec"]["selector"].update(matchExpressions=[{"key": "tier", "operator": "In", "values": []}]),
     "spec.selector.matchExpressions[0].values", "must not be empty", REFUSED),
    ("matchExpressions Exists with values",
     lambda o: o["spec"]["selector"].update(matchExpressions=[{"key": "tier", "operator": "Exists", "values": ["x"]}]),
     "spec.selector.matchExpressions[0].values", "must be empty", REFUSED),
    ("unknown operator",
     lambda o: o["spec"]["selector"].update(matchExpressions=[{"key": "tier", "operator": "Equals", "values": ["x"]}]),
     "spec.selector.matchExpressions[0].operator", "unknown operator", REFUSED),
    ("empty selector", lambda o: o["spec"].update(selector={}), "spec.selector", "empty selector", REFUSED),
    ("container without image", lambda o: _c(o).pop("image"), "spec.template.spec.containers[0]", "has no `image`", REFUSED),
    ("init container with empty image", lambda o: _pod(o)["initContainers"][0].update(image=""),
     "spec.template.spec.initContainers[0]", "has no `image`", REFUSED),
    ("container name twice across lists", lambda o: _pod(o)["initContainers"][0].update(name="web"),
     "spec.template.spec.containers[0].name", "used twice", REFUSED),
    ("container name not a DNS label", lambda o: _c(o).update(name="Web_1"),
     "spec.template.spec.containers[0].name", "not a DNS-1123 label", REFUSED),
    ("volume twice", lambda o: _pod(o)["volumes"].append({"name": "conf", "emptyDir": {}}),
     "spec.template.spec.volumes[1].name", "declared twice", REFUSED),
    ("mount of a missing volume", lambda o: _c(o)["volumeMounts"].append({"name": "cache", "mountPath": "/cache"}),
     "spec.template.spec.containers[0].volumeMounts[1].name", "does not have", REFUSED),
    ("mountPath twice", lambda o: _c(o)["volumeMounts"].append({"name": "conf", "mountPath": "/etc/nginx", "subPath": "x"}),
     "spec.template.spec.containers[0].volumeMounts[1].mountPath", "used twice", REFUSED),
    ("subPath climbs out", lambda o: _c(o)["volumeMounts"][0].update(subPath="../x"),
     "spec.template.spec.containers[0].volumeMounts[0].subPath", "without '..'", REFUSED),
    ("port name twice", lambda o: _c(o)["ports"].append({"name": "http", "containerPort": 81}),
     "spec.template.spec.containers[0].ports[2].name", "used twice", REFUSED),
    ("port name too long", lambda o: _c(o)["ports"][0].update(name="http-management-port"),
     "spec.template.spec.containers[0].ports[0].name", "not valid", REFUSED),
    ("containerPort twice", lambda o: _c(o)["ports"].append({"containerPort": 80, "protocol": "TCP"}),
     "spec.template.spec.containers[0].ports[2].containerPort", "declared twice", BROKEN),
    ("request above limit", lambda o: _c(o)["resources"]["requests"].update(memory="2Gi"),
     "spec.template.spec.containers[0].resources.requests.memory", "more than limits.memory", REFUSED),
    ("cpu request above a numeric limit", lambda o: _c(o)["resources"]["requests"].update(cpu="1500m"),
     "spec.template.spec.containers[0].resources.requests.cpu", "more than limits.cpu", REFUSED),
    ("negative quantity", lambda o: _c(o)["resources"]["requests"].update(cpu="-1"),
     "spec.template.spec.containers[0].resources.requests.cpu", "below 0", REFUSED),
    ("extended resource request without limit", lambda o: _c(o)["resources"]["requests"].update({"nvidia.com/gpu": 1}),
     'spec.template.spec.containers[0].resources.requests.nvidia.com/gpu', "needs limits", REFUSED),
    ("fractional extended resource", lambda o: _c(o)["resources"]["limits"].update({"nvidia.com/gpu": "500m"}),
     'spec.template.spec.containers[0].resources.limits.nvidia.com/gpu', "whole units", REFUSED),
    ("probe names an undeclared port", lambda o: _c(o)["readinessProbe"]["httpGet"].update(port="htpp"),
     "spec.template.spec.containers[0].readinessProbe.httpGet.port", "does not declare", BROKEN),
    ("probe port out of range", lambda o: _c(o)["livenessProbe"]["tcpSocket"].update(port=0),
     "spec.template.spec.containers[0].livenessProbe.tcpSocket.port", "between 1 and 65535", REFUSED),
    ("label value too long", lambda o: o["metadata"]["labels"].update(app="x" * 64),
     "metadata.labels.app", "over the limit of 63", REFUSED),
    ("label value with a space", lambda o: o["spec"]["template"]["metadata"]["labels"].update(tier="front end"),
     "spec.template.metadata.labels.tier", "not valid", REFUSED),
    ("label key with two slashes", lambda o: o["metadata"]["labels"].update({"a/b/c": "x"}),
     "metadata.labels.a/b/c", "at most one '/'", REFUSED),
    ("annotation key with an upper-case prefix is fine, a bad name is not",
     lambda o: o["metadata"].update(annotations={"Example.COM/ok": "1", "bad key": "x"}),
     "metadata.annotations.bad key", "annotation key 'bad key'", REFUSED),
    ("annotations over 256 KiB", lambda o: o["metadata"].update(annotations={"a": "x" * ANNOTATIONS_LIMIT}),
     "metadata.annotations", "over the limit of 262,144", REFUSED),
]


def test_the_valid_workload_passes() -> None:
    assert list(violations(workload())) == []


@pytest.mark.parametrize(("case", "edit", "path", "words", "klass"), CASES, ids=[c[0] for c in CASES])
def test_rule(case: str, edit: Edit, path: str, words: str, klass: str) -> None:
    obj = copy.deepcopy(workload())
    edit(obj)
    found = list(violations(obj))
    assert found, case
    assert (dotted(found[0].path), found[0].klass) == (path, klass)
    assert words in found[0].message
    assert found[0].rule  # every message names its rule


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet", "ReplicaSet"])
def test_every_apps_workload_checks_its_selector(kind: str) -> None:
    obj = workload(kind)
    obj["spec"]["selector"]["matchLabels"]["app"] = "api"
    assert f"Validate{kind}Spec" in next(violations(obj)).rule


def test_statefulset_mounts_may_name_a_claim_template() -> None:
    obj = workload("StatefulSet")
    _c(obj)["volumeMounts"].append({"name": "data", "mountPath": "/data"})
    assert [v.message for v in violations(obj)] != []
    obj["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {}}]
    assert list(violations(obj)) == []


def test_job_selector_checked_only_when_manual() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"selector": {"matchLabels": {"x": "y"}},
                    "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    assert list(violations(job)) == []
    job["spec"]["manualSelector"] = True
    assert "does not match" in next(violations(job)).message


def test_custom_resources_get_only_metadata_rules() -> None:
    rollout = workload()
    rollout["apiVersion"], rollout["kind"] = "argoproj.io/v1alpha1", "Rollout"
    _c(rollout).pop("image")
    assert list(violations(rollout)) == []
    rollout["metadata"]["labels"]["app"] = "not valid"
    assert "not valid" in next(violations(rollout)).message


@pytest.mark.parametrize(("key", "ok"), [
    ("app", True), ("app.kubernetes.io/name", True), ("example.com/a_b.c-d", True), ("a" * 63, True),
    ("a" * 64, False), ("/name", False), ("Example.com/name", False), ("-a", False), ("a/", False), ("a/b/c", False),
    ("x" * 250 + ".com/n", False),
])
def test_qualified_names(key: str, ok: bool) -> None:
    assert (qualified_name_problem(key) is None) is ok


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "x"}, False),
])
def test_selector_matching(selector: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


def test_subpath_names_a_key_or_an_item_path() -> None:
    obj = workload()
    _c(obj)["volumeMounts"] = [{"name": "conf", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"}]
    targets = {("ConfigMap", None, "web-config"): Target("ConfigMap", "web-config", "web-config", frozenset({"nginx.conf"}))}
    assert list(subpath_keys(obj, targets)) == []
    _c(obj)["volumeMounts"][0]["subPath"] = "ngnix.conf"
    (problem,) = subpath_keys(obj, targets)
    assert problem.klass == BROKEN and problem.hint is not None and "did you mean 'nginx.conf'" in problem.hint
    # With items, the subPath names an item's path, not a key.
    _pod(obj)["volumes"][0]["configMap"]["items"] = [{"key": "nginx.conf", "path": "ngnix.conf"}]
    assert list(subpath_keys(obj, targets)) == []
    # optional volumes and unknown keys (external objects) are not checked.
    _pod(obj)["volumes"][0]["configMap"] = {"name": "web-config", "optional": True}
    assert list(subpath_keys(obj, targets)) == []


def test_env_names_given_twice_are_found() -> None:
    obj = workload()
    _c(obj)["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)"}, {"name": "A", "value": "2"}]
    assert [(dotted(p), n) for p, n in env_duplicates(_pod(obj), ("spec", "template", "spec"))] == [
        ("spec.template.spec.containers[0].env[2].name", "A")]


# ---------------------------------------------------------------- through the CLI


def _render(tmp_path: Path, files: dict[str, str]) -> Any:
    return run("render", "--repo", write_repo(tmp_path, {**BASIC_APP, **files}), "--env", "dev", "--stdout")


def test_error_names_the_patch_that_broke_the_rule(tmp_path: Path) -> None:
    result = _render(tmp_path, {"environments/dev/env.yaml": """
        namespace: dev
        patches:
          - kind: Deployment
            metadata: {name: web}
            spec:
              template:
                spec:
                  containers:
                    - name: web
                      resources: {requests: {memory: 2Gi}, limits: {memory: 1Gi}}
    """})
    assert result.exit_code == 1
    assert result.output.startswith("error: environments/dev/env.yaml:10: Deployment 'web' would be refused by the API server: ")
    assert "(rule: ValidateResourceRequirements: request <= limit)" in result.output


def test_duplicate_env_is_a_warning_not_an_error(tmp_path: Path) -> None:
    result = _render(tmp_path, {"base/web/deployment.yaml": deployment("web", """
        containers:
          - name: web
            image: nginx:1.27
            env: [{name: A, value: "1"}, {name: A, value: "2"}]
    """)})
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: base/web/deployment.yaml:")
    assert "sets env 'A' twice" in result.stderr


def test_mutable_configmaps_error_setting(tmp_path: Path) -> None:
    files = {"base/web/app.yaml": "configMaps: [{name: web-config, hash: false, literals: {a: b}}]\n"}
    assert _render(tmp_path / "warn", files).exit_code == 0
    strict = {**files, "environments/dev/env.yaml": "namespace: dev\nmutableConfigMaps: error\n"}
    result = _render(tmp_path / "error", strict)
    assert result.exit_code == 1
    assert result.output.startswith("error: base/web/deployment.yaml:")
    assert "not hashed (hash: false), through env/envFrom" in result.output
    # A directory mount sees changes live: no warning.
    live = {**files, "base/web/deployment.yaml": deployment("web", """
        containers:
          - name: web
            image: nginx:1.27
            volumeMounts: [{name: c, mountPath: /etc/web}]
        volumes: [{name: c, configMap: {name: web-config}}]
    """)}
    result = _render(tmp_path / "live", {**live, "environments/dev/env.yaml": "namespace: dev\nmutableConfigMaps: error\n"})
    assert result.exit_code == 0 and result.stderr == ""


def test_statefulset_pod_rules_are_broken_not_refused() -> None:
    # ValidateStatefulSetSpec skips the pod spec: the StatefulSet is stored, its pods are refused.
    obj = workload("StatefulSet")
    _c(obj).pop("image")
    (problem,) = violations(obj)
    assert problem.klass == BROKEN and "pods are refused" in problem.rule
    obj = workload("StatefulSet")
    obj["spec"]["selector"]["matchLabels"]["app"] = "db"  # but its selector is validated
    assert next(violations(obj)).klass == REFUSED


def test_statefulset_name_is_a_dns_label(tmp_path: Path) -> None:
    sts = deployment("web.db", "containers: [{name: c, image: i}]", kind="StatefulSet")
    sts = sts.replace("spec:\n  selector", "spec:\n  serviceName: web\n  selector", 1)
    result = _render(tmp_path, {"base/web/statefulset.yaml": sts})
    assert result.exit_code == 1
    assert "StatefulSet name 'web.db' is not valid" in result.output and "DNS-1123 label" in result.output


LABEL_VALUES = ["ok", "", "a.b_c-d", "x" * 63, "x" * 64, "x y", "-x", "x-", "_x", "09", "ünï", "a/b", "A.B"]


def test_label_values_agree_with_kubectl(tmp_path: Path) -> None:
    # `kubectl label` checks a new label's value with IsValidLabelValue (its keys it does not check).
    kubectl = find_kubectl()
    manifest = tmp_path / "d.yaml"
    manifest.write_text(deployment("web", "containers: [{name: c, image: i}]"))
    for value in LABEL_VALUES:
        result = subprocess.run([str(kubectl), "label", "--local", "-f", str(manifest), f"k={value}", "-o", "name"],
                                capture_output=True, text=True, timeout=30)
        assert (result.returncode == 0) == (label_value_problem(value) is None), value
