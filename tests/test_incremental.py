"""Incremental renders (generator/incremental.py): after edits to some apps, only those apps (and
the apps that resolve a ConfigMap or Secret they changed) are rendered, and the result is
byte for byte what a full render gives: same exit code, same output, same out/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator import pipeline
from generator.io import index
from tests.helpers import run, write_repo
from tests.test_index import RACY_NS, _append, _remove, _replace, _same_as_cold, _settle


@pytest.fixture(autouse=True)
def _short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "RACY_NS", RACY_NS)


def _workload(app: str, configmap: str, image: str = "example.com/{app}:1.0") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {app}}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      serviceAccountName: {app}
      containers:
        - name: main
          image: {image.format(app=app)}
          env:
            - name: SHARED
              valueFrom: {{configMapKeyRef: {{name: {configmap}, key: level}}}}
          volumeMounts: [{{name: config, mountPath: /etc/{app}}}]
      volumes:
        - name: config
          configMap: {{name: {app}-config}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {app}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {app}}}
spec:
  selector: {{app: {app}}}
  ports: [{{port: 80}}]
"""


APPS = ("alpha", "beta", "gamma")


def _repo(root: Path) -> Path:
    files: dict[str, str | bytes] = {
        "gitops-gen.yaml": "retention: 2\n",
        # A ConfigMap every app reads: changing it renders its readers too.
        "base/common/app.yaml": "configMaps:\n  - name: common\n    literals: {level: info}\n",
        "base/crds/crd.yaml": """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: readers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: alpha}]
""",
        "environments/dev/env.yaml": """
namespace: dev
images:
  - {name: example.com/beta, newTag: "2.0"}
configMaps:
  alpha-config:
    literals: {mode: dev}
patches:
  - kind: Deployment
    metadata: {name: gamma}
    spec: {replicas: 2}
""",
        "environments/prod/env.yaml": "namespace: prod\n",
    }
    for app in APPS:
        files[f"base/{app}/app.yaml"] = f"configMaps:\n  - name: {app}-config\n    literals: {{mode: normal}}\n    files: [app.properties]\n"
        files[f"base/{app}/app.properties"] = f"name = {app}\n"
        files[f"base/{app}/workload.yaml"] = _workload(app, "common")
    files["shared/beta.properties"] = "name = beta, shared\n"
    files["templates/team.j2"] = "team: core"
    files["base/gamma/labels.yaml.j2"] = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gamma-labels\n"
                                          "data:\n  {% include 'templates/team.j2' %}\n")
    write_repo(root, files)
    # Inputs of the environment that one app only reads: a data file through a symlink, a
    # template include. A render of other apps does not read them; a change must still be seen.
    props = root / "base" / "beta" / "app.properties"
    props.unlink()
    props.symlink_to(Path("..", "..", "shared", "beta.properties"))
    return root


EDITS = {
    "data file": lambda r, n, app: _append(r, f"base/{app}/app.properties", f"line{n} = {n}\n"),
    "literal": lambda r, n, app: _replace(r, f"base/{app}/app.yaml", "mode: normal", f"mode: normal{n}"),
    "shared ConfigMap": lambda r, n, app: _replace(r, "base/common/app.yaml", "level: ", f"level: x{n}"),
    "shared ConfigMap loses its key": lambda r, n, app: _replace(r, "base/common/app.yaml", "level:", "other:"),
    "reads another app's ConfigMap": lambda r, n, app: _replace(r, f"base/{app}/workload.yaml", "name: common,", "name: alpha-config,"),
    "reads a missing ConfigMap": lambda r, n, app: _replace(r, f"base/{app}/workload.yaml", "name: common,", "name: nothing,"),
    "unhashed ConfigMap": lambda r, n, app: _replace(r, "base/common/app.yaml", "- name: common\n", "- name: common\n    hash: false\n"),
    "CRD made cluster-scoped": lambda r, n, app: _replace(r, "base/crds/crd.yaml", "scope: Namespaced", "scope: Cluster"),
    "binding subject": lambda r, n, app: _replace(r, "base/crds/crd.yaml", "name: alpha}]", f"name: {app}}}]"),
    "image": lambda r, n, app: _replace(r, f"base/{app}/workload.yaml", ":1.0", f":1.{n + 1}"),
    "image no env entry matches": lambda r, n, app: _replace(r, "base/beta/workload.yaml", "example.com/beta", "example.com/other"),
    "patched object renamed": lambda r, n, app: _replace(r, "base/gamma/workload.yaml", "metadata: {name: gamma}", "metadata: {name: gamma2}"),
    "object named like another app's": lambda r, n, app: _replace(r, f"base/{app}/workload.yaml", "kind: Service\nmetadata: {name: ", "kind: Service\nmetadata: {name: x"),
    "second ConfigMap": lambda r, n, app: _append(r, f"base/{app}/app.yaml", f"  - name: {app}-more\n    literals: {{n: '{n}'}}\n"),
    "ConfigMap named like another app's": lambda r, n, app: _append(r, f"base/{app}/app.yaml", "  - name: common\n    literals: {n: x}\n"),
    "broken YAML": lambda r, n, app: _append(r, f"base/{app}/workload.yaml", "spec: [\n"),
    "manifest deleted": lambda r, n, app: _remove(r, f"base/{app}/workload.yaml"),
    "shared data file": lambda r, n, app: _append(r, "shared/beta.properties", f"s{n} = {n}\n"),
    "template include": lambda r, n, app: (r / "templates/team.j2").write_text(f"team: core{n}"),
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(sorted(EDITS)), st.sampled_from(APPS), st.booleans()),
                      min_size=1, max_size=5))
def test_incremental_render_matches_a_full_one(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, str, bool]]
) -> None:
    scratch = tmp_path_factory.mktemp("apps")
    root = _repo(scratch / "repo")
    assert run("render", "--repo", root).exit_code == 0
    _settle()
    assert run("render", "--repo", root).exit_code == 0
    for n, (name, app, settle) in enumerate(edits):
        EDITS[name](root, n, app)
        if settle:
            _settle()
        _same_as_cold(root, scratch, "check")
        _same_as_cold(root, scratch, "render")
    _settle()
    _same_as_cold(root, scratch, "render")
    _same_as_cold(root, scratch, "check")


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    root = _repo(tmp_path / "repo")
    assert run("render", "--repo", root).exit_code == 0
    _settle()
    assert run("render", "--repo", root).exit_code == 0
    return root


def _rendered_apps(monkeypatch: pytest.MonkeyPatch) -> list[frozenset[str] | None]:
    """Records, for each render of an environment, the apps it rendered (None: all of them)."""
    seen: list[frozenset[str] | None] = []
    real = pipeline.render_env

    def spy(repo: pipeline.Repo, env: str, workers: int = 1, others: object = None,
            only: frozenset[str] | None = None) -> pipeline.RenderedEnv:
        seen.append(only)
        return real(repo, env, workers, others, only)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "render_env", spy)
    return seen


def test_one_app_change_renders_that_app(rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    EDITS["data file"](rendered, 1, "beta")
    seen = _rendered_apps(monkeypatch)
    _same_as_cold(rendered, tmp_path, "render", "--jobs", "1")
    assert seen == [frozenset({"beta"}), frozenset({"beta"}), None, None]  # dev, prod; then the cold render


def test_changed_shared_configmap_renders_its_readers(rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    EDITS["shared ConfigMap"](rendered, 1, "alpha")
    seen = _rendered_apps(monkeypatch)
    _same_as_cold(rendered, tmp_path, "render", "--jobs", "1")
    # dev: tried alone first, then with the apps that read it; prod likewise; then the cold render
    everything = frozenset({"common", "alpha", "beta", "gamma"})
    assert seen == [frozenset({"common"}), everything, frozenset({"common"}), everything, None, None]


def test_what_other_apps_see_changed_is_a_full_render(rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    EDITS["CRD made cluster-scoped"](rendered, 1, "alpha")
    seen = _rendered_apps(monkeypatch)
    _same_as_cold(rendered, tmp_path, "render", "--jobs", "1")
    assert seen[1] is None and seen[-1] is None  # a full render after the attempt


def test_error_in_an_incremental_render_is_the_full_renders(rendered: Path, tmp_path: Path) -> None:
    EDITS["patched object renamed"](rendered, 1, "gamma")
    _same_as_cold(rendered, tmp_path, "render")
    result = run("render", "--repo", rendered)
    assert result.exit_code == 1 and "patch targets Deployment 'gamma'" in result.output


def test_edit_within_the_racy_window_is_rendered_again(rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    time.sleep(1.0)
    monkeypatch.setattr(index, "RACY_NS", 500_000_000)  # the edit is racy, the rest of the repo is not
    EDITS["literal"](rendered, 1, "alpha")
    assert run("render", "--repo", rendered, "--jobs", "1").exit_code == 0  # its inputs are saved as racy
    seen = _rendered_apps(monkeypatch)
    _same_as_cold(rendered, tmp_path, "render", "--jobs", "1")
    assert seen == [frozenset({"alpha"}), frozenset({"alpha"}), None, None]


def test_checked_with_real_kubectl_kustomize(rendered: Path) -> None:
    from tests.kubectl import find_kubectl
    import subprocess

    EDITS["shared ConfigMap"](rendered, 1, "alpha")
    assert run("render", "--repo", rendered).exit_code == 0
    kubectl = find_kubectl()
    built = subprocess.run([str(kubectl), "kustomize", str(rendered / "out" / "dev")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert "name: common-" in built.stdout and built.stdout.count("kind: Deployment") == 3


def test_an_app_that_fails_to_load_leaves_no_scope_behind(rendered: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    EDITS["broken YAML"](rendered, 1, "alpha")
    assert run("render", "--repo", rendered, "--jobs", "1").exit_code == 1
    assert index._scope is None  # else every later read would count as that app's
    (rendered / "base/alpha/workload.yaml").write_text(_workload("alpha", "common"))
    assert run("render", "--repo", rendered, "--jobs", "1").exit_code == 0
    _settle()
    assert run("render", "--repo", rendered, "--jobs", "1").exit_code == 0
    EDITS["literal"](rendered, 2, "gamma")
    seen = _rendered_apps(monkeypatch)
    _same_as_cold(rendered, tmp_path, "render", "--jobs", "1")
    assert seen == [frozenset({"gamma"}), frozenset({"gamma"}), None, None]


def test_what_watch_keeps_of_an_incremental_render_holds_every_input(rendered: Path) -> None:
    """After a render of no app at all (nothing changed since the index), `watch` must still
    watch every app's inputs: the ones the index holds (a regression: only the environment's few
    inputs read by that render were kept, so no app's save was ever seen)."""
    repo = pipeline.Repo.open(rendered)
    done = pipeline.render_many(repo, ["dev"], jobs=1)
    assert done.apps["dev"].rendered == frozenset()  # incremental, of nothing
    reads = index.recorded()
    assert reads is not None
    kept = pipeline.recall(done.apps["dev"], reads, "dev", dict(done["dev"]))
    assert kept is not None
    app_yaml = str(rendered.resolve() / "base/alpha/app.yaml")
    assert app_yaml in kept.inputs and kept.owners[app_yaml] == "alpha"
    assert str(rendered.resolve() / "environments/dev/env.yaml") in kept.inputs
