"""Every reference site in every workload kind is rewritten; every dangling reference is an error."""

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.steps.hashing import content_hash
from tests.helpers import run, write_repo

DATA = {"LOG_LEVEL": "info", "app.conf": "x=1\n"}
HASHED = f"cfg-{content_hash(DATA, {})}"

CONFIG = {
    "base/app/app.yaml": """
        configMaps:
          - name: cfg
            literals: {LOG_LEVEL: info, app.conf: "x=1\\n"}
    """,
    "environments/dev/env.yaml": "namespace: dev\n",
}

# Every reference site, all pointing at `cfg`, in one pod spec.
POD_SPEC = """
initContainers:
  - name: init
    image: busybox
    env:
      - name: LOG_LEVEL
        valueFrom: {configMapKeyRef: {name: cfg, key: LOG_LEVEL}}
containers:
  - name: main
    image: nginx
    env:
      - name: LOG_LEVEL
        valueFrom: {configMapKeyRef: {name: cfg, key: LOG_LEVEL}}
    envFrom:
      - configMapRef: {name: cfg}
ephemeralContainers:
  - name: debug
    image: busybox
    envFrom:
      - configMapRef: {name: cfg}
volumes:
  - name: conf
    configMap:
      name: cfg
      items: [{key: app.conf, path: app.conf}]
  - name: proj
    projected:
      sources:
        - configMap: {name: cfg, items: [{key: LOG_LEVEL, path: level}]}
"""

SITES = [
    ("initContainers", 0, "env", 0, "valueFrom", "configMapKeyRef", "name"),
    ("containers", 0, "env", 0, "valueFrom", "configMapKeyRef", "name"),
    ("containers", 0, "envFrom", 0, "configMapRef", "name"),
    ("ephemeralContainers", 0, "envFrom", 0, "configMapRef", "name"),
    ("volumes", 0, "configMap", "name"),
    ("volumes", 1, "projected", "sources", 0, "configMap", "name"),
]


def _template(pod_spec: str, depth: int) -> str:
    return textwrap.indent(pod_spec.strip("\n"), "  " * depth)


def workload(kind: str) -> tuple[str, tuple[str, ...]]:
    """A manifest of `kind` holding POD_SPEC, and the path to its pod spec."""
    sel = "  selector: {matchLabels: {app: w}}\n"
    tmpl_meta = "    metadata: {labels: {app: w}}\n"
    if kind == "Pod":
        return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: w}}\nspec:\n{_template(POD_SPEC, 1)}\n", ("spec",)
    if kind == "PodTemplate":
        return f"apiVersion: v1\nkind: PodTemplate\nmetadata: {{name: w}}\ntemplate:\n{tmpl_meta[2:]}  spec:\n{_template(POD_SPEC, 2)}\n", ("template", "spec")
    if kind == "CronJob":
        return (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: w}\nspec:\n  schedule: '*/5 * * * *'\n"
            f"  jobTemplate:\n    spec:\n      template:\n        spec:\n{_template(POD_SPEC, 5)}\n",
            ("spec", "jobTemplate", "spec", "template", "spec"),
        )
    api = {"Job": "batch/v1", "ReplicationController": "v1", "Rollout": "argoproj.io/v1alpha1"}.get(kind, "apps/v1")
    if kind == "ReplicationController":
        sel = "  selector: {app: w}\n"  # a plain map, unlike the apps/v1 kinds
    if kind == "Job":
        sel = ""
    return (
        f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: w}}\nspec:\n{sel}  template:\n{tmpl_meta}    spec:\n{_template(POD_SPEC, 3)}\n",
        ("spec", "template", "spec"),
    )


def dig(obj: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def render_objects(repo: Path) -> list[dict[str, Any]]:
    result = run("render", "--repo", repo, "--env", "dev", "--stdout")
    assert result.exit_code == 0, result.output
    return list(yaml.safe_load_all(result.stdout))


@pytest.mark.parametrize(
    "kind",
    ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob", "PodTemplate", "Rollout"],
)
def test_every_site_rewritten_in_every_kind(tmp_path: Path, kind: str) -> None:
    manifest, pod_path = workload(kind)
    repo = write_repo(tmp_path, {**CONFIG, "base/app/workload.yaml": manifest})
    objs = render_objects(repo)
    [obj] = [o for o in objs if o["kind"] == kind]
    pod = dig(obj, pod_path)
    for site in SITES:
        assert dig(pod, site) == HASHED, site


def test_custom_resource_by_config_entry(tmp_path: Path) -> None:
    manifest = (
        "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata: {name: w}\nspec:\n"
        f"  template:\n    spec:\n{_template(POD_SPEC, 3)}\n"
    )
    config = "podSpecPaths:\n  - {kind: CloneSet, apiVersion: apps.kruise.io/v1alpha1, path: spec.template.spec}\n"
    repo = write_repo(tmp_path, {**CONFIG, "base/app/cloneset.yaml": manifest, "gitops-gen.yaml": config})
    [obj] = [o for o in render_objects(repo) if o["kind"] == "CloneSet"]
    for site in SITES:
        assert dig(obj["spec"]["template"]["spec"], site) == HASHED


def test_unknown_custom_resource_is_left_alone(tmp_path: Path) -> None:
    manifest = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec:\n  template:\n    spec:\n      volumes: [{name: v, configMap: {name: nope}}]\n"
    repo = write_repo(tmp_path, {**CONFIG, "base/app/widget.yaml": manifest})
    [obj] = [o for o in render_objects(repo) if o["kind"] == "Widget"]
    assert obj["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "nope"


def pod_with(spec: str) -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: w}}\nspec:\n{_template(textwrap.dedent(spec), 1)}\n"


@pytest.mark.parametrize(
    ("spec", "message", "path"),
    [
        ("containers: [{name: c, image: x, envFrom: [{configMapRef: {name: missing}}]}]",
         "refers to ConfigMap 'missing'", "spec.containers[0].envFrom[0].configMapRef.name"),
        ("containers: [{name: c, image: x, env: [{name: A, valueFrom: {configMapKeyRef: {name: cgf, key: LOG_LEVEL}}}]}]",
         "did you mean 'cfg'?", "spec.containers[0].env[0].valueFrom.configMapKeyRef.name"),
        ("containers: [{name: c, image: x, env: [{name: A, valueFrom: {configMapKeyRef: {name: cfg, key: LOG_LEVL}}}]}]",
         "uses key 'LOG_LEVL' of ConfigMap 'cfg'", "spec.containers[0].env[0].valueFrom.configMapKeyRef.key"),
        ("containers: [{name: c, image: x}]\nvolumes: [{name: v, configMap: {name: cfg, items: [{key: nope, path: p}]}}]",
         "uses key 'nope'", "spec.volumes[0].configMap.items[0].key"),
        ("containers: [{name: c, image: x}]\nvolumes: [{name: v, projected: {sources: [{configMap: {name: gone}}]}}]",
         "refers to ConfigMap 'gone'", "spec.volumes[0].projected.sources[0].configMap.name"),
        ("containers: [{name: c, image: x, env: [{name: P, valueFrom: {secretKeyRef: {name: db-creds, key: password}}}]}]",
         "refers to Secret 'db-creds'", "spec.containers[0].env[0].valueFrom.secretKeyRef.name"),
    ],
)
def test_dangling_references_are_errors(tmp_path: Path, spec: str, message: str, path: str) -> None:
    repo = write_repo(tmp_path, {**CONFIG, "base/app/pod.yaml": pod_with(spec)})
    result = run("render", "--repo", repo)
    assert result.exit_code == 1
    assert message in result.output and path in result.output
    assert "base/app/pod.yaml:" in result.output and "Pod 'w'" in result.output
    assert not (repo / "out").exists()


def test_error_names_the_line(tmp_path: Path) -> None:
    spec = "containers:\n- name: c\n  image: x\n  envFrom:\n  - configMapRef:\n      name: missing\n"
    repo = write_repo(tmp_path, {**CONFIG, "base/app/pod.yaml": pod_with(spec)})
    result = run("render", "--repo", repo)
    assert "base/app/pod.yaml:10:" in result.output


@pytest.mark.parametrize(
    "spec",
    [
        "containers: [{name: c, image: x, envFrom: [{configMapRef: {name: missing, optional: true}}]}]",
        "containers: [{name: c, image: x, env: [{name: A, valueFrom: {configMapKeyRef: {name: cfg, key: nope, optional: true}}}]}]",
        "containers: [{name: c, image: x}]\nvolumes: [{name: v, configMap: {name: missing, optional: true}}]",
        "containers: [{name: c, image: x, envFrom: [{configMapRef: {name: kube-root-ca.crt}}, {secretRef: {name: db-creds}}]}]",
    ],
)
def test_optional_and_external_references_are_fine(tmp_path: Path, spec: str) -> None:
    config = "external:\n  configMaps: [kube-root-ca.crt]\n  secrets: [db-creds]\n"
    repo = write_repo(tmp_path, {**CONFIG, "base/app/pod.yaml": pod_with(spec), "gitops-gen.yaml": config})
    assert run("render", "--repo", repo).exit_code == 0


def test_external_declared_per_environment(tmp_path: Path) -> None:
    spec = "containers: [{name: c, image: x, envFrom: [{secretRef: {name: db-creds}}]}]"
    repo = write_repo(tmp_path, {**CONFIG, "base/app/pod.yaml": pod_with(spec),
                                 "environments/dev/env.yaml": "namespace: dev\nexternal: {secrets: [db-creds]}\n"})
    assert run("render", "--repo", repo).exit_code == 0


def test_reference_in_other_namespace_is_dangling(tmp_path: Path) -> None:
    spec = "containers: [{name: c, image: x, envFrom: [{configMapRef: {name: cfg}}]}]"
    pod = pod_with(spec).replace("metadata: {name: w}", "metadata: {name: w, namespace: other}")
    repo = write_repo(tmp_path, {**CONFIG, "base/app/pod.yaml": pod, "environments/dev/env.yaml": "{}\n"})
    result = run("render", "--repo", repo)
    assert result.exit_code == 1 and "refers to ConfigMap 'cfg'" in result.output


def test_unhashed_configmap_reference_keeps_name_but_checks_keys(tmp_path: Path) -> None:
    files = {**CONFIG, "base/app/app.yaml": "configMaps: [{name: cfg, hash: false, literals: {a: b}}]\n"}
    ok = pod_with("containers: [{name: c, image: x, env: [{name: A, valueFrom: {configMapKeyRef: {name: cfg, key: a}}}]}]")
    repo = write_repo(tmp_path / "ok", {**files, "base/app/pod.yaml": ok})
    [pod] = [o for o in render_objects(repo) if o["kind"] == "Pod"]
    assert pod["spec"]["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == "cfg"
    bad = write_repo(tmp_path / "bad", {**files, "base/app/pod.yaml": ok.replace("key: a", "key: z")})
    assert run("render", "--repo", bad).exit_code == 1
