"""Helm charts as input, end to end with the real Helm v4 (tests/helm.py) and the real kubectl.

The charts are written by the tests: an application chart with a library chart and an
application subchart, a values schema, hooks, a CRD, an opt-in plaintext Secret and opt-in
random output. Remote charts come from a chart repository served by the test itself over HTTP
on 127.0.0.1.
"""

from __future__ import annotations

import functools
import json
import http.server
import io
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from generator.charts import determinism, lock, render, source, values
from generator.charts.hooks import to_argocd
from generator.errors import ChartError
from generator.io.memo import load_entry, store_entry
from tests.helm import helm, helm_path
from tests.helpers import load_out, run, snapshot, write_repo
from tests.kubectl import find_kubectl, kustomize_build


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    helm_path()  # fetched (and cached) before the product looks for it


LIB = {
    "Chart.yaml": "apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n",
    "templates/_labels.tpl": (
        '{{- define "lib.labels" -}}\napp.kubernetes.io/part-of: {{ .Release.Name }}\n'
        "helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}\n"
        "team: {{ .Values.team | default \"core\" }}\n{{- end -}}\n"
    ),
}
WORKER = {
    "Chart.yaml": "apiVersion: v2\nname: worker\nversion: 0.1.0\n",
    "values.yaml": "replicas: 1\n",
    "values.schema.json": '{"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 0}}}\n',
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-worker
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
        - name: worker
          image: busybox:1.36
""",
}
SHOP = {
    "Chart.yaml": """\
apiVersion: v2
name: shop
version: 1.0.0
dependencies:
  - {name: lib, version: 0.1.0}
  - {name: worker, version: 0.1.0}
""",
    "values.yaml": """\
replicas: 1
settings: {color: blue, size: m}
existingSecret: ""
createSecret: false
password: ""
migrate: false
rollbackHook: false
randomToken: false
clusterLookup: false
""",
    "values.schema.json": """\
{"type": "object",
 "properties": {"replicas": {"type": "integer", "minimum": 1},
                "settings": {"type": "object", "additionalProperties": {"type": "string"}}}}
""",
    "crds/widgets.yaml": """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.shop.example.com
spec:
  group: shop.example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
""",
    "templates/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
  labels:
    {{- include "lib.labels" . | nindent 4 }}
data:
  {{- toYaml .Values.settings | nindent 2 }}
""",
    "templates/api.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-api
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: api}}
  template:
    metadata:
      labels: {app: api}
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    spec:
      containers:
        - name: api
          image: nginx:1.27
          envFrom:
            - configMapRef: {name: {{ .Release.Name }}-settings}
          {{- if .Values.existingSecret }}
          env:
            - name: PASSWORD
              valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: password}}
          {{- end }}
""",
    "templates/admin.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-admin
spec:
  selector: {matchLabels: {app: admin}}
  template:
    metadata: {labels: {app: admin}}
    spec:
      containers:
        - {name: admin, image: "nginx:1.27"}
""",
    "templates/secret.yaml": """\
{{- if .Values.createSecret }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-password
stringData:
  password: {{ .Values.password | default (randAlphaNum 12) | quote }}
{{- end }}
""",
    "templates/migrate.yaml": """\
{{- if .Values.migrate }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "busybox:1.36"}]
{{- end }}
""",
    "templates/rollback.yaml": """\
{{- if .Values.rollbackHook }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-rollback-note
  annotations: {helm.sh/hook: pre-rollback}
data: {note: rolled back}
{{- end }}
""",
    "templates/token.yaml": """\
{{- if .Values.randomToken }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-token
data:
  token: {{ randAlphaNum 16 | quote }}
{{- end }}
""",
    "templates/tests/test-connection.yaml": """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations: {helm.sh/hook: test}
spec:
  containers: [{name: wget, image: "busybox:1.36"}]
  restartPolicy: Never
""",
}


def chart_files(prefix: str, files: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}/{name}": text for name, text in files.items()}


def shop_chart(prefix: str) -> dict[str, str]:
    return {**chart_files(prefix, SHOP), **chart_files(f"{prefix}/charts/lib", LIB),
            **chart_files(f"{prefix}/charts/worker", WORKER)}


def shop_repo(root: Path, app_extra: str = "", env_extra: str = "") -> Path:
    files: dict[str, str | bytes] = {
        **shop_chart("base/shop/chart"),
        "base/shop/app.yaml": f"""\
vars: {{color: green}}
chart:
  path: chart
  valuesFiles: [values.yaml]
  values:
    settings: {{color: "{{{{ color }}}}-{{{{ env }}}}"}}
{app_extra}""",
        "base/shop/values.yaml": "replicas: 2\nsettings: {size: l, shape: round}\n",
        "environments/dev/env.yaml": f"""\
namespace: shop-dev
charts:
  shop:
    valuesFiles: [shop-values.yaml]
    values: {{settings: {{shape: square}}}}
{env_extra}""",
        "environments/dev/shop-values.yaml": "replicas: 3\n",
    }
    return write_repo(root, files)


def render_ok(repo: Path, *args: str) -> dict[str, Any]:
    result = run("render", "--repo", repo, *args)
    assert result.exit_code == 0, result.output
    return load_out(repo / "out" / "dev")


def render_error(repo: Path) -> str:
    before = snapshot(repo / "out")
    result = run("render", "--repo", repo)
    assert result.exit_code == 1, result.output
    assert snapshot(repo / "out") == before
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    return result.output


def test_chart_objects_go_through_the_pipeline(tmp_path: Path) -> None:
    out = render_ok(shop_repo(tmp_path))
    cm = out["shop/configmap-shop-settings.yaml"]
    assert cm["immutable"] is True and cm["metadata"]["name"].startswith("shop-settings-")
    assert cm["metadata"]["namespace"] == "shop-dev"
    # chart default < app values file < app inline (Jinja2) < env values file < env inline
    assert cm["data"] == {"color": "green-dev", "size": "l", "shape": "square"}
    api = out["shop/deployment-shop-api.yaml"]
    assert api["spec"]["replicas"] == 3
    pod = api["spec"]["template"]
    assert pod["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": cm["metadata"]["name"]}}]
    assert "annotations" not in pod["metadata"]  # checksum/config dropped: the name rolls the pods
    assert cm["metadata"]["labels"] == {  # from the library chart
        "app.kubernetes.io/part-of": "shop", "helm.sh/chart": "shop-1.0.0", "team": "core"}
    assert out["shop/deployment-shop-worker.yaml"]["spec"]["replicas"] == 1  # subchart
    crd = out["shop/customresourcedefinition-widgets.shop.example.com.yaml"]
    assert "namespace" not in crd["metadata"]
    assert not any("test" in path for path in out)  # `helm test` hooks are never rendered
    objects = kustomize_build(find_kubectl(), tmp_path / "out" / "dev")
    assert sorted(o["metadata"]["name"] for o in objects) == sorted(
        o["metadata"]["name"] for path, o in out.items() if path != "kustomization.yaml"
    )
    assert run("check", "--repo", tmp_path).exit_code == 0


def test_values_files_may_be_templates_and_template_errors_name_the_value(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path)
    (repo / "environments/dev/env.yaml").write_text(
        "namespace: shop-dev\ncharts:\n  shop:\n    valuesFiles: [shop-values.yaml.j2]\n")
    (repo / "environments/dev/shop-values.yaml.j2").write_text('settings: {size: "{{ namespace }}"}\n')
    assert render_ok(repo)["shop/configmap-shop-settings.yaml"]["data"]["size"] == "shop-dev"
    app = repo / "base/shop/app.yaml"
    app.write_text(app.read_text().replace("{{ color }}", "{{ colour }}"))
    assert render_error(repo).startswith("error: base/shop/app.yaml:6: undefined template variable 'colour'")


def test_a_chart_in_an_environment_only_app(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, {
        **shop_chart("environments/dev/apps/extra/chart"),
        "environments/dev/apps/extra/app.yaml": "chart: {path: chart, release: extra}\n",
        "environments/dev/env.yaml": "namespace: shop-dev\ncharts: {extra: {values: {replicas: 4}}}\n",
        "base/.keep": "",
    })
    out = render_ok(repo)
    assert out["extra/deployment-extra-api.yaml"]["spec"]["replicas"] == 4


def test_an_app_has_one_chart(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path)
    write_repo(repo, {**shop_chart("environments/dev/apps/shop/chart"),
                      "environments/dev/apps/shop/app.yaml": "chart: {path: chart}\n"})
    assert render_error(repo).startswith(
        "error: environments/dev/apps/shop/app.yaml:1: app 'shop' declares a chart here and in base/shop/app.yaml")


def test_no_helm_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_GEN_HELM", str(tmp_path / "no-helm"))
    message = render_error(shop_repo(tmp_path / "repo"))
    assert "GITOPS_GEN_HELM" in message and "is not an executable file" in message
    assert "gitops-gen charts pull" in message


def test_render_is_byte_identical_with_and_without_the_helm_memo(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path)
    render_ok(repo, "--no-cache")
    first = snapshot(repo / "out")
    render_ok(repo)
    render_ok(repo)  # from the memo
    assert snapshot(repo / "out") == first


PLANTED = """\
---
# Source: shop/templates/planted.yaml
apiVersion: v1
kind: ServiceAccount
metadata: {name: planted}
"""


def test_a_planted_corrupt_or_copied_helm_memo_entry_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = shop_repo(tmp_path / "repo")
    env_yaml = repo / "environments/dev/env.yaml"
    # A second genuine entry, of other values (replicas 9), to copy over the first one.
    env_yaml.write_text(env_yaml.read_text().replace("{settings: {shape: square}}", "{replicas: 9}"))
    render_ok(repo)
    other = next((tmp_path / "cache/helm").glob("*/*"))
    env_yaml.write_text(env_yaml.read_text().replace("{replicas: 9}", "{settings: {shape: square}}"))
    render_ok(repo)
    expected = snapshot(repo / "out")
    [entry] = [p for p in (tmp_path / "cache/helm").glob("*/*") if p != other]
    genuine = entry.read_bytes()
    assert load_entry(entry, render._STAMP, entry.name.encode()) is not None  # authentic, under its own key
    with monkeypatch.context() as forger:  # a well-formed entry made with a key other than ours
        forger.setenv("GITOPS_GEN_CACHE_KEY", "the forger's key")
        forged = tmp_path / "forged"
        store_entry(forged, render._STAMP, entry.name.encode(), (PLANTED + genuine.decode("latin-1")).encode())
    plants = {
        "plain text (what the memo used to trust)": PLANTED.encode(),
        "forged": forged.read_bytes(),
        "copied from another key": other.read_bytes(),
        "truncated": genuine[: len(genuine) // 2],
        "corrupt": genuine[:-1] + bytes([genuine[-1] ^ 0xFF]),
        "empty": b"",
    }
    for what, planted in plants.items():
        entry.write_bytes(planted)
        render_ok(repo)
        assert snapshot(repo / "out") == expected, what  # nothing planted reached out/, no crash
        assert entry.read_bytes() == genuine, what  # the miss rendered afresh and stored a good entry
    assert "planted" not in str(expected)


def test_chart_files_are_checked_before_helm_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_GEN_HELM", str(tmp_path / "no-helm"))  # a Helm run would fail otherwise
    repo = shop_repo(tmp_path / "repo")
    (tmp_path / "secret.yaml").write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: stolen}\n")
    (repo / "base/shop/chart/templates/stolen.yaml").symlink_to(tmp_path / "secret.yaml")
    message = render_error(repo)
    assert message.startswith("error: base/shop/chart/templates/stolen.yaml: base/shop/chart/templates/stolen.yaml "
                              "is a symlink to"), message
    assert "outside the repo" in message and "no-helm" not in message


def test_a_symlink_to_a_chart_folder_inside_the_repo_renders_like_the_folder(tmp_path: Path) -> None:
    plain = render_ok(shop_repo(tmp_path / "a"))
    repo = shop_repo(tmp_path / "b")
    (repo / "base/shop/chart/templates").rename(repo / "templates")
    (repo / "base/shop/chart/templates").symlink_to("../../../templates")
    assert render_ok(repo) == plain


def test_patches_and_overlays_apply_to_chart_objects(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path, env_extra="""\
patches:
  - kind: Deployment
    metadata: {name: shop-admin}
    spec: {replicas: 5}
configMaps:
  shop-settings:
    literals: {size: xl}
""")
    out = render_ok(repo)
    assert out["shop/deployment-shop-admin.yaml"]["spec"]["replicas"] == 5
    assert out["shop/configmap-shop-settings.yaml"]["data"]["size"] == "xl"


def test_a_chart_configmap_change_rolls_exactly_its_users_and_keeps_the_old_version(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path)
    before = render_ok(repo)
    old_name = before["shop/configmap-shop-settings.yaml"]["metadata"]["name"]
    env = repo / "environments/dev/env.yaml"
    env.write_text(env.read_text().replace("shape: square", "shape: circle"))
    diff = run("diff", "--repo", repo)
    assert diff.exit_code == 3 and "shop-api (Deployment) rolls" in diff.output
    after = render_ok(repo)
    changed = sorted(p for p in after if before.get(p) != after[p])
    suffix = old_name.rsplit("-", 1)[1]
    assert changed == sorted([
        "kustomization.yaml",  # lists the retained version
        "shop/configmap-shop-settings.yaml",
        f"shop/configmap-shop-settings-{suffix}.yaml",  # the old version, retained for rollbacks
        "shop/deployment-shop-api.yaml",  # the only workload of the chart that uses it
    ])
    retained = after[f"shop/configmap-shop-settings-{suffix}.yaml"]
    assert retained["metadata"]["name"] == old_name
    assert retained["metadata"]["annotations"]["gitops-gen.io/version"] == "superseded"


def test_unhashed_configmaps_keep_their_name(tmp_path: Path) -> None:
    out = render_ok(shop_repo(tmp_path, app_extra="  unhashedConfigMaps: [shop-settings]\n"))
    cm = out["shop/configmap-shop-settings.yaml"]
    assert cm["metadata"]["name"] == "shop-settings" and "immutable" not in cm
    api = out["shop/deployment-shop-api.yaml"]["spec"]["template"]["spec"]["containers"][0]
    assert api["envFrom"] == [{"configMapRef": {"name": "shop-settings"}}]


def test_unhashed_configmaps_must_exist(tmp_path: Path) -> None:
    message = render_error(shop_repo(tmp_path, app_extra="  unhashedConfigMaps: [shop-setings]\n"))
    assert message.startswith("error: base/shop/app.yaml:7: `unhashedConfigMaps` names 'shop-setings', which chart")
    assert "ConfigMaps it renders: shop-settings" in message


def test_values_schema_errors_point_at_our_values(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path)
    (repo / "environments/dev/shop-values.yaml").write_text("# more replicas\nreplicas: many\n")
    message = render_error(repo)
    assert message.startswith("error: environments/dev/shop-values.yaml:2: value `replicas` does not fit the values schema")
    assert "want integer" in message


def test_subchart_schema_errors_point_at_the_subchart_key(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path, app_extra="    worker: {replicas: -1}\n")
    message = render_error(repo)
    assert message.startswith("error: base/shop/app.yaml:7: value `worker.replicas` does not fit")


def test_hooks_become_argocd_hooks(tmp_path: Path) -> None:
    out = render_ok(shop_repo(tmp_path, app_extra="    migrate: true\n"))
    annotations = out["shop/job-shop-migrate.yaml"]["metadata"]["annotations"]
    assert annotations == {
        "argocd.argoproj.io/hook": "PreSync",
        "argocd.argoproj.io/sync-wave": "-5",
        "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation,HookSucceeded",
    }


def test_hooks_drop_leaves_them_out(tmp_path: Path) -> None:
    out = render_ok(shop_repo(tmp_path, app_extra="    migrate: true\n  hooks: drop\n"))
    assert "shop/job-shop-migrate.yaml" not in out


def test_a_rollback_hook_is_refused(tmp_path: Path) -> None:
    message = render_error(shop_repo(tmp_path, app_extra="    rollbackHook: true\n"))
    assert "Helm `pre-rollback` hook, which has no GitOps equivalent" in message
    assert "error: base/shop/chart/templates/rollback.yaml:" in message or "error: base/shop/chart/templates/rollback.yaml" in message


def test_a_chart_plaintext_secret_is_refused_with_the_existing_secret_hint(tmp_path: Path) -> None:
    message = render_error(shop_repo(tmp_path, app_extra="    createSecret: true\n    password: hunter2\n"))
    assert "error: base/shop/chart/templates/secret.yaml: chart base/shop/chart renders a plaintext Secret 'shop-password'" in message
    assert "`existingSecret`" in message and "externalSecrets:" in message
    assert "hunter2" not in message


def test_existing_secret_from_outside_passes(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path, app_extra="    existingSecret: shop-db\n")
    (repo / "gitops-gen.yaml").write_text("external: {secrets: [shop-db]}\n")
    out = render_ok(repo)
    env = out["shop/deployment-shop-api.yaml"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["valueFrom"]["secretKeyRef"]["name"] == "shop-db"


def test_random_output_is_refused_with_the_template_name(tmp_path: Path) -> None:
    message = render_error(shop_repo(tmp_path, app_extra="    randomToken: true\n"))
    assert message.startswith("error: base/shop/app.yaml:2: chart base/shop/chart renders differently each time "
                              "(base/shop/chart/templates/token.yaml): base/shop/chart/templates/token.yaml:7 calls `randAlphaNum`")


def test_lookup_in_a_template_is_refused(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path)
    (repo / "base/shop/chart/templates/existing.yaml").write_text(
        '{{- if (lookup "v1" "ConfigMap" .Release.Namespace "x") }}\n# found\n{{- end }}\n')
    message = render_error(repo)
    assert "base/shop/chart/templates/existing.yaml:1 calls `lookup`" in message


def test_scan_ignores_comments_strings_and_lookalikes() -> None:
    text = '{{/* randAlphaNum */}}{{ "now" }}{{ .Values.now }}{{ $now := 1 }}{{ nowhere }}\n{{ now | date "2006" }}'
    assert [str(h) for h in determinism.scan([("c/templates/a.yaml", text)])] == [
        "c/templates/a.yaml:2 calls `now`"]


def test_values_merge_like_helm() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    top = {"a": {"c": [3], "e": None}, "d": {"x": 1}}
    assert values.merge(base, top) == {"a": {"b": 1, "c": [3], "e": None}, "d": {"x": 1}}


def test_unmapped_hook_event_names_the_object() -> None:
    obj = {"kind": "Job", "metadata": {"name": "j", "annotations": {"helm.sh/hook": "post-rollback"}}}
    with pytest.raises(ChartError, match="post-rollback"):
        to_argocd(obj, "c/templates/j.yaml")


# --- chart repository over HTTP on the loopback address -------------------------------------------------


@pytest.fixture
def chart_repo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A chart repository with shop 1.0.0 and 1.1.0, served by http.server on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    for version in ("1.0.0", "1.1.0"):
        src = write_repo(tmp_path / f"src-{version}", shop_chart("shop")) / "shop"
        (src / "Chart.yaml").write_text(SHOP["Chart.yaml"].replace("version: 1.0.0", f"version: {version}"))
        if version == "1.1.0":
            (src / "values.yaml").write_text(SHOP["values.yaml"].replace("size: m", "size: s"))
        helm("package", src, "--destination", served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[method-assign, assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    helm("repo", "index", served, "--url", url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def remote_repo(root: Path, url: str) -> Path:
    return write_repo(root, {
        "base/shop/app.yaml": f"""\
chart:
  repository: {url}
  name: shop
  version: "1.0.0"
  values: {{replicas: 2}}
""",
        "environments/dev/env.yaml": "namespace: shop-dev\n",
    })


def test_pull_vendors_and_locks_then_renders_offline(tmp_path: Path, chart_repo: tuple[str, Path]) -> None:
    url, served = chart_repo
    repo = remote_repo(tmp_path / "repo", url)
    assert "is not in charts/lock.yaml" in render_error(repo)
    result = run("charts", "pull", "--repo", repo)
    assert result.exit_code == 0, result.output
    assert "fetched charts/shop-1.0.0.tgz" in result.output
    assert (repo / "charts/shop-1.0.0.tgz").read_bytes() == (served / "shop-1.0.0.tgz").read_bytes()
    lock = yaml.safe_load((repo / "charts/lock.yaml").read_text())
    assert [(e["name"], e["version"], e["file"]) for e in lock["charts"]] == [("shop", "1.0.0", "charts/shop-1.0.0.tgz")]
    assert lock["charts"][0]["digest"].startswith("sha256:")
    shutil.rmtree(served)  # the network is gone: render must not need it
    out = render_ok(repo)
    assert out["shop/configmap-shop-settings.yaml"]["data"]["size"] == "m"
    assert "charts/shop-1.0.0.tgz/shop/templates/api.yaml" in (repo / "out/dev/shop/deployment-shop-api.yaml").read_text()
    again = run("charts", "pull", "--repo", repo)
    assert again.exit_code == 0 and "0 fetched, 1 kept" in again.output


def test_a_vendored_copy_that_does_not_match_the_lock_is_refused(tmp_path: Path, chart_repo: tuple[str, Path]) -> None:
    url, _ = chart_repo
    repo = remote_repo(tmp_path / "repo", url)
    assert run("charts", "pull", "--repo", repo).exit_code == 0
    render_ok(repo)
    archive = repo / "charts/shop-1.0.0.tgz"
    archive.write_bytes(archive.read_bytes() + b"\0")
    message = render_error(repo)
    assert message.startswith("error: charts/lock.yaml: charts/shop-1.0.0.tgz does not match charts/lock.yaml")


def test_update_is_one_command_and_shows_in_diff(tmp_path: Path, chart_repo: tuple[str, Path]) -> None:
    url, _ = chart_repo
    repo = remote_repo(tmp_path / "repo", url)
    assert run("charts", "pull", "--repo", repo).exit_code == 0
    render_ok(repo)
    result = run("charts", "update", "shop", "--repo", repo)
    assert result.exit_code == 0, result.output
    assert "shop: chart version 1.0.0 -> 1.1.0" in result.output
    assert 'version: "1.1.0"' in (repo / "base/shop/app.yaml").read_text()
    assert sorted(p.name for p in (repo / "charts").iterdir()) == ["lock.yaml", "shop-1.1.0.tgz"]
    diff = run("diff", "--repo", repo)
    assert diff.exit_code == 3
    assert "1 chart updated" in diff.output
    assert "  Helm charts\n    shop: shop-1.0.0 -> shop-1.1.0\n" in diff.output
    assert "shop-settings" in diff.output and "size" in diff.output and "shop-api (Deployment) rolls" in diff.output
    report = json.loads(run("diff", "--repo", repo, "--format", "json").output)
    assert report["environments"][0]["charts"] == [{"app": "shop", "old": ["shop-1.0.0"], "new": ["shop-1.1.0"]}]
    assert "| dev | chart updated | `shop` | `shop-1.0.0` → `shop-1.1.0` |" in run(
        "diff", "--repo", repo, "--format", "markdown").output


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)
value_maps = st.dictionaries(st.sampled_from("abcd"), json_values, max_size=4)


def _has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return value is None


def _mixes(x: dict[str, Any], y: dict[str, Any]) -> bool:
    """Whether some key is a map in one and something else in the other (at any depth)."""
    for key in x.keys() & y.keys():
        if isinstance(x[key], dict) != isinstance(y[key], dict):
            return True
        if isinstance(x[key], dict) and _mixes(x[key], y[key]):
            return True
    return False


def _layer(data: dict[str, Any]) -> values.Layer:
    return values.Layer(data, "values.yaml", "")


@given(value_maps, value_maps, value_maps)
def test_values_merge_is_associative_and_the_top_wins(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> None:
    # Layers are folded left in file order, as Helm folds its -f files, so one merged document
    # handed to Helm equals Helm merging every file. When no layer puts a non-map where another
    # has a map the grouping does not matter either; otherwise it does (a null or a list replaces
    # a map, a later map replaces it: hypothesis found {a: {a: false}}, {a: []}, {a: {}}), in
    # Helm's own merge too: hence the left fold, never a pre-merged upper stack.
    if not any(_has_null(m) for m in (a, b, c)) and not (_mixes(a, b) or _mixes(b, c) or _mixes(a, c)):
        assert values.merge(values.merge(a, b), c) == values.merge(a, values.merge(b, c))
    assert values.merged([_layer(a), _layer(b), _layer(c)]) == values.merge(values.merge(a, b), c)
    merged = values.merge(a, b)
    for key, value in b.items():
        if not (isinstance(value, dict) and isinstance(a.get(key), dict)):
            assert merged[key] == value


def _tgz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_chart_sources_open_packaged_subcharts(tmp_path: Path) -> None:
    sub = _tgz({"sub/Chart.yaml": b"name: sub\n", "sub/templates/t.yaml": b"{{ now }}\n"})
    top = tmp_path / "top-1.0.0.tgz"
    top.write_bytes(_tgz({"top/Chart.yaml": b"name: top\n", "top/templates/_h.tpl": b"{{ lookup 1 }}\n",
                          "top/charts/sub-0.1.0.tgz": sub}))
    chart = source.load(tmp_path, top, top.name)
    names = [name for name, _ in chart.templates()]
    assert names == ["top/templates/_h.tpl", "top/charts/sub/templates/t.yaml"]  # as Helm names them
    assert chart.name() == "top"
    hits = determinism.scan(chart.templates())
    assert [str(h) for h in hits] == ["top/templates/_h.tpl:1 calls `lookup`", "top/charts/sub/templates/t.yaml:1 calls `now`"]
    determinism.refuse_lookup(hits, "chart top", str, "app.yaml", 1)  # a helper: not refused
    assert chart.digest == lock.file_digest(top)


def test_pull_never_writes_through_a_vendor_folder_leaving_the_repo(tmp_path: Path) -> None:
    repo = remote_repo(tmp_path / "repo", "https://charts.example.com")
    (tmp_path / "elsewhere").mkdir()
    (repo / "charts").symlink_to(tmp_path / "elsewhere")
    result = run("charts", "pull", "--repo", repo)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: charts: charts is a symlink to"), result.output
    assert "outside the repo" in result.output and "Traceback" not in result.output
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_vendored_archive_symlinked_out_of_the_repo_is_refused(tmp_path: Path) -> None:
    repo = remote_repo(tmp_path / "repo", "https://charts.example.com")
    archive = tmp_path / "shop-1.0.0.tgz"
    archive.write_bytes(_tgz({"shop/Chart.yaml": b"name: shop\n"}))
    (repo / "charts").mkdir()
    (repo / "charts/shop-1.0.0.tgz").symlink_to(archive)
    (repo / "charts/lock.yaml").write_text(lock.lock_text({("https://charts.example.com", "shop", "1.0.0"): lock.Entry(
        "https://charts.example.com", "shop", "1.0.0", lock.file_digest(archive), "charts/shop-1.0.0.tgz")}))
    message = render_error(repo)
    assert message.startswith("error: charts/shop-1.0.0.tgz: charts/shop-1.0.0.tgz is a symlink to"), message
    assert "outside the repo" in message
