"""The Kubernetes schema step: compiled checks agree with a general JSON-schema validator, report the
field path and a line, and leave custom resources alone."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource as SchemaResource

from generator.steps import k8s_schema
from generator.config import Patch
from generator.errors import ValidationError
from generator.io.yaml_io import iter_paths
from generator.steps.k8s_schema import Problem, Schemas, _Compiler, schema_step, schemas
from generator.model import Origin, Resource
from generator.steps.patch import apply_patches

DEPLOYMENT = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{name: http, containerPort: 8080}]
          resources: {limits: {cpu: 500m, memory: 128Mi}, requests: {cpu: 0.25}}
          env: [{name: A, valueFrom: {configMapKeyRef: {name: c, key: k}}}]
      volumes: [{name: conf, configMap: {name: c, items: [{key: k, path: k}]}}]
""")
SERVICE = yaml.safe_load("""
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
""")
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}, "immutable": True}
VALID = [DEPLOYMENT, SERVICE, CONFIGMAP]


def with_change(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    holder: Any = out
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return out


def test_valid_objects_pass() -> None:
    for obj in VALID:
        assert schemas().check(obj) is None


@pytest.mark.parametrize(
    ("path", "value", "problem_path", "message"),
    [
        (("spec", "replica"), 3, ("spec", "replica"), "unknown field 'replica' (DeploymentSpec has no such field)"),
        (("spec", "replicas"), "3", ("spec", "replicas"), "expected an integer, got a string ('3')"),
        (("spec", "replicas"), True, ("spec", "replicas"), "expected an integer, got a boolean (true)"),
        (("spec", "replicas"), 2**31, ("spec", "replicas"), "2147483648 is out of range for int32"),
        (("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "http",
         ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "expected an integer"),
        (("spec", "strategy", "rollingUpdate", "maxSurge"), [1],
         ("spec", "strategy", "rollingUpdate", "maxSurge"), "expected a string or an integer, got a list"),
        (("metadata", "labels", "app"), 1, ("metadata", "labels", "app"), "expected a string, got an integer (1)"),
        (("spec", "template", "spec", "containers"), {"name": "web"},
         ("spec", "template", "spec", "containers"), "expected a list, got a mapping"),
    ],
)
def test_problems_name_the_field(path: tuple[Any, ...], value: Any, problem_path: tuple[Any, ...], message: str) -> None:
    problem = schemas().check(with_change(DEPLOYMENT, path, value))
    assert problem is not None
    assert problem.path == problem_path
    assert message in problem.message


def test_unknown_field_suggests_the_right_one() -> None:
    problem = schemas().check(with_change(DEPLOYMENT, ("spec", "replica"), 3))
    assert problem is not None and problem.hint is not None
    assert problem.hint.startswith("did you mean 'replicas'? fields of DeploymentSpec: minReadySeconds")


def test_missing_required_field() -> None:
    spec = copy.deepcopy(DEPLOYMENT)
    del spec["spec"]["template"]["spec"]["containers"][0]["name"]
    problem = schemas().check(spec)
    assert problem == Problem(("spec", "template", "spec", "containers", 0, "name"),
                              "required field missing (Container needs `name`)")


def test_null_means_unset_even_for_int_or_string() -> None:
    # JSON schema's oneOf would refuse null here (both branches allow it); the API server does not.
    assert schemas().check(with_change(DEPLOYMENT, ("spec", "strategy", "rollingUpdate", "maxSurge"), None)) is None
    assert schemas().check(with_change(DEPLOYMENT, ("spec", "replicas"), None)) is None


def test_custom_resources_pass_through() -> None:
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"},
               "spec": {"anything": {"goes": [1, "two"]}}}
    assert schemas().check(rollout) is None


def test_kubernetes_groups_must_serve_the_kind() -> None:
    old = schemas().check({**DEPLOYMENT, "apiVersion": "extensions/v1beta1"})
    assert old == Problem(("apiVersion",), "Kubernetes 1.35 does not serve Deployment as 'extensions/v1beta1'",
                          "use apiVersion apps/v1")
    typo = schemas().check({**SERVICE, "kind": "Sevrice"})
    assert typo is not None and typo.path == ("kind",) and typo.hint == "did you mean 'Service'?"


def test_each_definition_is_compiled_once() -> None:
    api = Schemas.load(k8s_schema.KUBERNETES_VERSION)
    api.check(DEPLOYMENT)
    compiled = dict(api.compiler.compiled)
    for _ in range(50):
        api.check(DEPLOYMENT)
    assert api.compiler.compiled == compiled
    # Only what the Deployment uses is compiled, not the whole API.
    assert 0 < len(compiled) < len(api.kinds)


def test_compiler_keywords() -> None:
    definitions = {
        "Node": {"type": "object", "required": ["kind"], "additionalProperties": False,
                 "properties": {"kind": {"type": "string", "enum": ["A", "B"]},
                                "size": {"type": ["integer", "null"], "format": "int32"},
                                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                                "tags": {"type": "object", "additionalProperties": {"type": "string"}}}},
    }
    check = _Compiler(definitions).ref("Node")
    assert check({"kind": "A", "size": 3.0, "children": [{"kind": "B", "tags": {"x": "y"}}]}) is None
    assert check({"kind": "C"}) == Problem(("kind",), "'C' is not one of: A, B")
    assert check({"kind": "A", "children": [{"kind": "B", "tags": {"x": 1}}]}) == Problem(
        ("children", 0, "tags", "x"), "expected a string, got an integer (1)",
        'quote the value, e.g. "true" or "8080" (YAML reads it as a number or boolean otherwise)')
    assert check({"children": []}) == Problem(("kind",), "required field missing (Node needs `kind`)")
    assert check({"kind": "A", "size": 1.5}) == Problem(("size",), "expected an integer, got a number (1.5)")


def _resource(obj: dict[str, Any], text: str, file: str = "base/web/deployment.yaml") -> Resource:
    return Resource(obj, Origin(file, 1, 0, text), "web")


def test_schema_step_reports_file_and_line() -> None:
    text = yaml.safe_dump(DEPLOYMENT, sort_keys=False).replace("  replicas: 2", "  replica: 2")
    obj = yaml.safe_load(text)
    with pytest.raises(ValidationError) as raised:
        schema_step([_resource(obj, text)])
    error = raised.value
    assert error.file == "base/web/deployment.yaml"
    assert error.line == text.splitlines().index("  replica: 2") + 1
    assert "Deployment 'web' does not fit the Kubernetes 1.35 API: `spec.replica`: unknown field" in error.message


def test_schema_step_points_at_the_patch_that_wrote_the_field() -> None:
    base_text = yaml.safe_dump(DEPLOYMENT, sort_keys=False)
    env_text = ("namespace: dev\npatches:\n  - kind: Deployment\n    metadata: {name: web}\n    spec:\n"
                "      template:\n        spec:\n          containers:\n            - name: web\n"
                "              ports: [{name: http, containerPort: eighty}]\n")
    patch_obj = yaml.safe_load(env_text)["patches"][0]
    patch = Patch(patch_obj, Origin("environments/dev/env.yaml", 1, 0, env_text, ("patches", 0)))
    merged = with_change(DEPLOYMENT, ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "eighty")
    with pytest.raises(ValidationError) as raised:
        schema_step([_resource(merged, base_text)], [patch])
    assert (raised.value.file, raised.value.line) == ("environments/dev/env.yaml", 10)


# -- agreement with jsonschema ---------------------------------------------------------------

@cache
def reference_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    """kubernetes-validate's own way: jsonschema over the per-kind strict schema file."""
    import kubernetes_validate

    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{k8s_schema.KUBERNETES_VERSION}.0-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = json.loads((folder / f"{kind.lower()}-{group}.json").read_text())
    definitions = json.loads((folder / "_definitions.json").read_text())
    registry = SchemaResource.from_contents(definitions) @ (SchemaResource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


# Values inside the deliberate differences (null, out-of-range integers) are left out.
SWAPS = st.sampled_from(["x", "80", 3, -1, 0, True, 1.5, 2.0, [], ["a"], [{"name": "a"}], {}, {"zz": 1}, {"name": "a"}])


@settings(derandomize=True, database=None, deadline=None, max_examples=200)
@given(data=st.data())
def test_agrees_with_jsonschema(data: st.DataObject) -> None:
    obj = data.draw(st.sampled_from(VALID))
    paths = [p for p in iter_paths(obj) if p and p[0] not in ("apiVersion", "kind")]
    path = data.draw(st.sampled_from(paths))
    if data.draw(st.booleans()) and isinstance(path[-1], str):
        changed = copy.deepcopy(obj)
        holder: Any = changed
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1] + "x"] = holder.pop(path[-1])  # a misspelled field
    else:
        changed = with_change(obj, path, data.draw(SWAPS))
    ours = schemas().check(changed)
    theirs = reference_validator(obj["apiVersion"], obj["kind"]).is_valid(changed)
    assert (ours is None) == theirs, (path, ours)


def test_precompiled_kinds_check_without_the_definitions_in_memory() -> None:
    from generator.steps.k8s_schema import precompile, schemas

    precompile()
    api = schemas()
    assert api.compiler._definitions is None  # freed after compiling the common kinds
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "three"}}
    assert api.check(bad) is not None
    assert api.compiler._definitions is None  # a compiled kind needs no definitions
    # a kind not compiled yet reads them again
    assert api.check({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "x"}, "spec": {"limits": 3}}) is not None


def test_schema_step_follows_merge_keys_back_to_the_patch() -> None:
    # The patch names the second mount by its mountPath (the merge key), listed first in the patch.
    base = with_change(DEPLOYMENT, ("spec", "template", "spec", "containers", 0, "volumeMounts"),
                       [{"name": "conf", "mountPath": "/a"}, {"name": "conf", "mountPath": "/b"}])
    base_text = yaml.safe_dump(base, sort_keys=False)
    env_text = ("namespace: dev\npatches:\n  - kind: Deployment\n    metadata: {name: web}\n    spec:\n"
                "      template:\n        spec:\n          containers:\n            - name: web\n"
                "              volumeMounts:\n                - {mountPath: /b, readOnly: 'yes'}\n")
    patch = Patch(yaml.safe_load(env_text)["patches"][0], Origin("environments/dev/env.yaml", 1, 0, env_text, ("patches", 0)))
    resource = _resource(yaml.safe_load(base_text), base_text)
    [merged] = apply_patches([resource], [patch], [], "dev")
    assert merged.obj["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0] == {
        "name": "conf", "mountPath": "/b", "readOnly": "yes"}
    with pytest.raises(ValidationError) as raised:
        schema_step([merged], [patch])
    assert (raised.value.file, raised.value.line) == ("environments/dev/env.yaml", 11)
