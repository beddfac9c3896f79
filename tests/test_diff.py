"""`diff`: lineage matching, retained versions, rollout reasons, secrets, --against DIR and a
real git ref, exit codes. (The report formats are pinned by tests/test_diff_golden.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from generator.steps.configmaps import CONFIG_NAME_ANNOTATION
from generator.review.diff import ConfigReason, ImageReason, TemplateReason, diff_files, split_image
from generator.review.diff_report import markdown, text, to_json
from generator.review.immutable import refusals
from generator.io.output import HEADER
from generator.steps.references import BUILTIN_POD_SPECS
from generator.steps.retention import SUPERSEDED, VERSION_ANNOTATION
from generator.secrets.producers import SECRET_NAME_ANNOTATION
from generator.io.yaml_io import dump_document
from tests.helpers import GOLDEN_DIFF_REPO, rendered_copy, run as cli




def as_file(obj: dict[str, Any]) -> str:
    return f"{HEADER} from test.\n" + dump_document(obj)


def cm(declared: str, suffix: str | None, data: dict[str, str], **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"{declared}-{suffix}" if suffix else declared, "namespace": "ns"}
    if suffix:
        meta["annotations"] = {CONFIG_NAME_ANNOTATION: declared, **annotations}
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
    if suffix:
        obj["immutable"] = True
    return obj


def deploy(name: str, config: str, image: str = "app:1.0", **extra: Any) -> dict[str, Any]:
    container = {"name": "app", "image": image, "envFrom": [{"configMapRef": {"name": config}}], **extra}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "ns"},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}},
    }


def env_files(*objs: dict[str, Any], paths: list[str] | None = None) -> dict[str, str]:
    names = paths or [f"app/{o['kind'].lower()}-{o['metadata']['name']}.yaml" for o in objs]
    return {p: as_file(o) for p, o in zip(names, objs)}


def run_diff(old: dict[str, str], new: dict[str, str]) -> Any:
    return diff_files({"e": old}, {"e": new}, BUILTIN_POD_SPECS, "out/").envs[0]


def test_hash_change_is_one_lineage_with_key_changes() -> None:
    old = env_files(cm("cfg", "aaaa", {"a": "1", "b": "x", "gone": "y"}), deploy("web", "cfg-aaaa"),
                    paths=["app/configmap-cfg.yaml", "app/deployment-web.yaml"])
    new = env_files(cm("cfg", "bbbb", {"a": "2", "b": "x", "new": "z"}), deploy("web", "cfg-bbbb"),
                    paths=["app/configmap-cfg.yaml", "app/deployment-web.yaml"])
    env = run_diff(old, new)
    (change,) = env.configmaps
    assert (change.name, change.status, change.suffix(change.old_name), change.suffix(change.new_name)) == ("cfg", "changed", "aaaa", "bbbb")
    assert [(k.key, k.change) for k in change.keys] == [("a", "changed"), ("gone", "removed"), ("new", "added")]
    (rollout,) = env.rollouts
    assert rollout.reasons == (ConfigReason("ConfigMap", "cfg", "cfg-aaaa", "cfg-bbbb"),)
    assert env.objects == ()  # the Deployment's only change is the reference: reported as a rollout


def test_retained_versions_are_reported_not_added() -> None:
    v1, v2 = cm("cfg", "aaaa", {"a": "1"}), cm("cfg", "bbbb", {"a": "2"})
    old = env_files(v1, deploy("web", "cfg-aaaa"), paths=["app/configmap-cfg.yaml", "app/deployment-web.yaml"])
    superseded = cm("cfg", "aaaa", {"a": "1"}, **{VERSION_ANNOTATION: SUPERSEDED})
    new = env_files(v2, superseded, deploy("web", "cfg-bbbb"),
                    paths=["app/configmap-cfg.yaml", "app/configmap-cfg-aaaa.yaml", "app/deployment-web.yaml"])
    env = run_diff(old, new)
    (change,) = env.configmaps
    assert (change.status, change.retained, change.dropped) == ("changed", ("cfg-aaaa",), ())
    assert "retained: cfg-aaaa (superseded, kept for rollbacks)" in text(diff_files({"e": old}, {"e": new}, BUILTIN_POD_SPECS, "out/"))
    # Revert: v1 is current again and v2 retained; v1 is not "dropped", it came back.
    back = run_diff(new, env_files(cm("cfg", "aaaa", {"a": "1"}), cm("cfg", "bbbb", {"a": "2"}, **{VERSION_ANNOTATION: SUPERSEDED}),
                                   deploy("web", "cfg-aaaa"),
                                   paths=["app/configmap-cfg.yaml", "app/configmap-cfg-bbbb.yaml", "app/deployment-web.yaml"]))
    (change,) = back.configmaps
    assert (change.suffix(change.old_name), change.suffix(change.new_name), change.retained, change.dropped) == ("bbbb", "aaaa", ("cfg-bbbb",), ())


def test_dropped_retained_version_alone() -> None:
    v2 = cm("cfg", "bbbb", {"a": "2"})
    old_v1 = cm("cfg", "aaaa", {"a": "1"}, **{VERSION_ANNOTATION: SUPERSEDED})
    paths = ["app/configmap-cfg.yaml", "app/configmap-cfg-aaaa.yaml"]
    env = run_diff(env_files(v2, old_v1, paths=paths), env_files(v2, paths=paths[:1]))
    (change,) = env.configmaps
    assert (change.status, change.dropped, change.keys) == ("retention", ("cfg-aaaa",), ())


def test_image_and_other_template_reasons() -> None:
    old = env_files(cm("cfg", None, {"a": "1"}), deploy("web", "cfg", image="reg:5000/team/app:1.4.2"))
    new_deploy = deploy("web", "cfg", image="reg:5000/team/app:1.5.0", args=["--fast"])
    new_deploy["spec"]["replicas"] = 3
    env = run_diff(old, env_files(cm("cfg", None, {"a": "1"}), new_deploy))
    (rollout,) = env.rollouts
    image, template = rollout.reasons
    assert isinstance(image, ImageReason) and image.tags == ("1.4.2", "1.5.0")
    assert isinstance(template, TemplateReason)
    assert [(f.path, f.change, f.new) for f in template.fields] == [("spec.containers[app].args", "added", ["--fast"])]
    (obj,) = env.objects
    assert [(f.path, f.old, f.new) for f in obj.fields] == [("spec.replicas", 1, 3)]


def test_added_container_shows_its_image_once() -> None:
    old = deploy("web", "cfg")
    new = deploy("web", "cfg")
    new["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "proxy:2"})
    env = run_diff(env_files(cm("cfg", None, {}), old), env_files(cm("cfg", None, {}), new))
    (reason,) = env.rollouts[0].reasons
    assert isinstance(reason, TemplateReason)
    assert [(f.path, f.new) for f in reason.fields] == [("spec.containers[sidecar]", {"name": "sidecar", "image": "proxy:2"})]


def test_unhashed_configmap_change_does_not_roll() -> None:
    old = env_files(cm("routes", None, {"r": "1"}), deploy("web", "routes"))
    env = run_diff(old, env_files(cm("routes", None, {"r": "2"}), deploy("web", "routes")))
    assert env.rollouts == ()
    (change,) = env.configmaps
    assert (change.hashed, change.consumers) == (False, ("Deployment/web",))
    assert "not hashed, nothing rolls: Deployment/web sees it at the next restart (env/envFrom)" in text(
        diff_files({"e": old}, {"e": env_files(cm("routes", None, {"r": "2"}), deploy("web", "routes"))}, BUILTIN_POD_SPECS, "x"))


def _reader(how: str) -> dict[str, Any]:
    """A Deployment that reads ConfigMap `routes` in one way."""
    d = deploy("web", "routes")
    container = d["spec"]["template"]["spec"]["containers"][0]
    del container["envFrom"]
    volume = {"name": "r", "configMap": {"name": "routes"}}
    if how == "env":
        container["env"] = [{"name": "R", "valueFrom": {"configMapKeyRef": {"name": "routes", "key": "r"}}}]
    elif how == "envFrom":
        container["envFrom"] = [{"configMapRef": {"name": "routes"}}]
    elif how == "volume":
        container["volumeMounts"] = [{"name": "r", "mountPath": "/etc/routes"}]
    elif how == "subPath":
        container["volumeMounts"] = [{"name": "r", "mountPath": "/etc/routes.conf", "subPath": "r"}]
    elif how == "volume+subPath":
        container["volumeMounts"] = [{"name": "r", "mountPath": "/etc/routes"},
                                     {"name": "r", "mountPath": "/etc/r.conf", "subPath": "r"}]
    elif how == "unmounted":
        pass
    if how not in ("env", "envFrom"):
        d["spec"]["template"]["spec"]["volumes"] = [volume]
    return d


@pytest.mark.parametrize(("how", "sees", "line"), [
    ("env", ("restart",), "sees it at the next restart (env/envFrom)"),
    ("envFrom", ("restart",), "sees it at the next restart (env/envFrom)"),
    ("volume", ("live",), "sees it live (mounted volume)"),
    ("subPath", ("never",), "never sees it (subPath mount)"),
    ("volume+subPath", ("live", "never"), "sees it live (mounted volume), never sees it (subPath mount)"),
    ("unmounted", (), None),
])
def test_unhashed_configmap_says_how_each_consumer_sees_the_change(how: str, sees: tuple[str, ...], line: str | None) -> None:
    old = env_files(cm("routes", None, {"r": "1"}), _reader(how))
    new = env_files(cm("routes", None, {"r": "2"}), _reader(how))
    report = diff_files({"e": old}, {"e": new}, BUILTIN_POD_SPECS, "x")
    (change,) = report.envs[0].configmaps
    assert change.sees == ((("Deployment/web", sees),) if sees else ())
    shown = text(report)
    if line is None:
        assert "not hashed, nothing rolls" not in shown
    else:
        assert f"not hashed, nothing rolls: Deployment/web {line}" in shown
    doc = json.loads(to_json(report))["environments"][0]["configMaps"][0]
    assert doc["consumerUpdates"] == ([{"consumer": "Deployment/web", "sees": list(sees)}] if sees else [])


def _obj(kind: str, api: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, **fields}


def _sts(**spec: Any) -> dict[str, Any]:
    base = {"serviceName": "x", "selector": {"matchLabels": {"app": "x"}}, "replicas": 1,
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}
    return _obj("StatefulSet", "apps/v1", spec={**base, **spec})


_PVC = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}


@pytest.mark.parametrize(("before", "after", "refused"), [
    # Deployment selector: refused; replicas: fine.
    (_obj("Deployment", "apps/v1", spec={"selector": {"matchLabels": {"a": "1"}}, "replicas": 1}),
     _obj("Deployment", "apps/v1", spec={"selector": {"matchLabels": {"a": "2"}}, "replicas": 1}), ["spec.selector"]),
    (_obj("Deployment", "apps/v1", spec={"selector": {"matchLabels": {"a": "1"}}, "replicas": 1}),
     _obj("Deployment", "apps/v1", spec={"selector": {"matchLabels": {"a": "1"}}, "replicas": 3}), []),
    (_obj("DaemonSet", "apps/v1", spec={"selector": {"matchLabels": {"a": "1"}}}),
     _obj("DaemonSet", "apps/v1", spec={"selector": {"matchLabels": {"a": "1"}, "matchExpressions": []}}), ["spec.selector"]),
    # StatefulSet: serviceName, volumeClaimTemplates, podManagementPolicy refused; replicas/template/updateStrategy fine.
    (_sts(), _sts(serviceName="y"), ["spec.serviceName"]),
    (_sts(), _sts(volumeClaimTemplates=[{"metadata": {"name": "d"}, "spec": _PVC}]), ["spec.volumeClaimTemplates"]),
    (_sts(), _sts(podManagementPolicy="Parallel"), ["spec.podManagementPolicy"]),
    (_sts(), _sts(replicas=3, updateStrategy={"type": "OnDelete"}, minReadySeconds=5), []),
    # Job: template and selector refused; a CronJob's jobTemplate is not.
    (_obj("Job", "batch/v1", spec={"template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}),
     _obj("Job", "batch/v1", spec={"template": {"spec": {"containers": [{"name": "c", "image": "i:2"}]}}}), ["spec.template"]),
    (_obj("CronJob", "batch/v1", spec={"schedule": "@daily", "jobTemplate": {"spec": {"backoffLimit": 1}}}),
     _obj("CronJob", "batch/v1", spec={"schedule": "@daily", "jobTemplate": {"spec": {"backoffLimit": 2}}}), []),
    # Service clusterIP: refused once set; unset -> unset and ExternalName are fine.
    (_obj("Service", "v1", spec={"clusterIP": "10.0.0.1"}), _obj("Service", "v1", spec={"clusterIP": "10.0.0.2"}), ["spec.clusterIP"]),
    (_obj("Service", "v1", spec={"ports": [{"port": 80}]}), _obj("Service", "v1", spec={"ports": [{"port": 81}]}), []),
    (_obj("Service", "v1", spec={"type": "ExternalName", "clusterIP": "10.0.0.1"}),
     _obj("Service", "v1", spec={"type": "ClusterIP", "clusterIP": "10.0.0.2"}), []),
    # PVC: growing storage is fine, shrinking and other spec fields are refused.
    (_obj("PersistentVolumeClaim", "v1", spec=_PVC),
     _obj("PersistentVolumeClaim", "v1", spec={**_PVC, "resources": {"requests": {"storage": "20Gi"}}}), []),
    (_obj("PersistentVolumeClaim", "v1", spec=_PVC),
     _obj("PersistentVolumeClaim", "v1", spec={**_PVC, "resources": {"requests": {"storage": "5Gi"}}}),
     ["spec.resources.requests.storage"]),
    (_obj("PersistentVolumeClaim", "v1", spec=_PVC),
     _obj("PersistentVolumeClaim", "v1", spec={**_PVC, "storageClassName": "fast"}), ["spec.storageClassName"]),
    # Immutable ConfigMap / Secret edited in place; a mutable one may change.
    (_obj("ConfigMap", "v1", immutable=True, data={"a": "1"}), _obj("ConfigMap", "v1", immutable=True, data={"a": "2"}), ["data"]),
    (_obj("ConfigMap", "v1", immutable=True, data={"a": "1"}), _obj("ConfigMap", "v1", data={"a": "1"}), ["immutable"]),
    (_obj("ConfigMap", "v1", data={"a": "1"}), _obj("ConfigMap", "v1", data={"a": "2"}), []),
    (_obj("Secret", "v1", type="Opaque"), _obj("Secret", "v1", type="kubernetes.io/tls"), ["type"]),
    # RoleBinding roleRef.
    (_obj("RoleBinding", "rbac.authorization.k8s.io/v1", roleRef={"kind": "Role", "name": "a"}),
     _obj("RoleBinding", "rbac.authorization.k8s.io/v1", roleRef={"kind": "Role", "name": "b"}), ["roleRef"]),
    # A custom resource has no rule.
    (_obj("Rollout", "argoproj.io/v1alpha1", spec={"selector": 1}), _obj("Rollout", "argoproj.io/v1alpha1", spec={"selector": 2}), []),
])
def test_immutable_field_changes_are_refused(before: dict[str, Any], after: dict[str, Any], refused: list[str]) -> None:
    assert [r.path for r in refusals(before, after)] == refused


def test_refused_change_in_all_three_formats() -> None:
    old = deploy("web", "cfg")
    old["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    new = deploy("web", "cfg")
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "front"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    files_old, files_new = env_files(cm("cfg", None, {}), old), env_files(cm("cfg", None, {}), new)
    report = diff_files({"e": files_old}, {"e": files_new}, BUILTIN_POD_SPECS, "out/")
    (refused,) = report.envs[0].refused
    assert (refused.kind, refused.name, refused.refusal.path) == ("Deployment", "web", "spec.selector")
    shown = text(report)
    assert "Refused by the API server (the sync will fail)" in shown
    assert "! Deployment web: spec.selector: `spec.selector` is immutable in apps/v1" in shown
    assert "1 change the API server will refuse" in shown
    assert "| e | **refused** | Deployment `web` | `spec.selector`: `spec.selector` is immutable" in markdown(report)
    env = json.loads(to_json(report))["environments"][0]
    (obj,) = [o for o in env["objects"] if o["name"] == "web"]
    assert obj["refused"] is True and obj["refusedBecause"][0]["path"] == "spec.selector"
    assert env["rollouts"][0]["refused"] is True  # the same Deployment also rolls (its labels changed)
    assert env["refusals"][0]["reason"].startswith("`spec.selector` is immutable")


def test_hashed_configmap_change_is_a_new_object_not_refused() -> None:
    old = env_files(cm("cfg", "aaaa", {"a": "1"}), paths=["app/configmap-cfg.yaml"])
    new = env_files(cm("cfg", "bbbb", {"a": "2"}), paths=["app/configmap-cfg.yaml"])
    assert run_diff(old, new).refused == ()


def test_secret_values_are_never_shown() -> None:
    def secret(value: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
                "stringData": {"password": value}}

    old, new = env_files(secret("hunter2")), env_files(secret("correct-horse"))
    report = diff_files({"e": old}, {"e": new}, BUILTIN_POD_SPECS, "out/")
    (obj,) = report.envs[0].objects
    assert [(f.path, f.old, f.new) for f in obj.fields] == [("stringData.password", "(hidden)", "(hidden)")]
    for rendered in (text(report), markdown(report)):
        assert "hunter2" not in rendered and "correct-horse" not in rendered


def test_added_removed_and_deleted_env() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "ns"}, "spec": {"ports": []}}
    report = diff_files({"e": {}, "gone": env_files(svc)}, {"e": env_files(svc)}, BUILTIN_POD_SPECS, "out/")
    gone, e = sorted(report.envs, key=lambda x: x.name != "gone")
    assert [(o.kind, o.status) for o in e.objects] == [("Service", "added")]
    assert [(o.kind, o.status) for o in gone.objects] == [("Service", "removed")]


def test_secret_producers_are_lineages() -> None:
    def external_secret(suffix: str, prop: str) -> dict[str, Any]:
        return {
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": f"api-key-{suffix}", "namespace": "ns", "annotations": {SECRET_NAME_ANNOTATION: "api-key"}},
            "spec": {"target": {"name": f"api-key-{suffix}"}, "data": [{"secretKey": "k", "remoteRef": {"key": "x", "property": prop}}]},
        }

    def user(suffix: str) -> dict[str, Any]:
        d = deploy("web", "cfg")
        d["spec"]["template"]["spec"]["containers"][0]["env"] = [
            {"name": "K", "valueFrom": {"secretKeyRef": {"name": f"api-key-{suffix}", "key": "k"}}}]
        return d

    paths = ["app/configmap-cfg.yaml", "app/externalsecret-api-key.yaml", "app/deployment-web.yaml"]
    old = env_files(cm("cfg", None, {}), external_secret("aaaa", "v1"), user("aaaa"), paths=paths)
    new = env_files(cm("cfg", None, {}), external_secret("bbbb", "v2"), user("bbbb"), paths=paths)
    env = run_diff(old, new)
    assert env.rollouts[0].reasons == (ConfigReason("Secret", "api-key", "api-key-aaaa", "api-key-bbbb"),)
    (obj,) = env.objects
    assert (obj.kind, obj.name, obj.old_name, obj.new_name) == ("ExternalSecret", "api-key", "api-key-aaaa", "api-key-bbbb")
    assert [f.path for f in obj.fields] == ["spec.target.name", "spec.data[0].remoteRef.property"]
    report = text(diff_files({"e": old}, {"e": new}, BUILTIN_POD_SPECS, "out/"))
    assert "web (Deployment) rolls: Secret api-key changed" in report
    assert "~ ExternalSecret api-key: aaaa -> bbbb" in report


def test_sealed_secret_ciphertext_is_hidden() -> None:
    def sealed(blob: str) -> dict[str, Any]:
        return {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "s", "namespace": "ns"},
                "spec": {"encryptedData": {"password": blob}, "template": {"type": "Opaque"}}}

    env = run_diff(env_files(sealed("AgBy3i")), env_files(sealed("AgCz9k")))
    assert [(f.path, f.old, f.new) for f in env.objects[0].fields] == [("spec.encryptedData.password", "(hidden)", "(hidden)")]


def test_split_image() -> None:
    assert split_image("nginx") == ("nginx", "latest")
    assert split_image("reg:5000/a/b:1.2") == ("reg:5000/a/b", "1.2")
    assert split_image("a/b@sha256:ff") == ("a/b", "@sha256:ff")


# ---------------------------------------------------------------- the command


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return rendered_copy(GOLDEN_DIFF_REPO, tmp_path / "repo")


def bump(root: Path) -> None:
    path = root / "base/web/app.yaml"
    path.write_text(path.read_text().replace('web_tag: "1.0.0"', 'web_tag: "2.0.0"').replace("greeting: hello", "greeting: hey"))


def test_exit_codes(repo: Path) -> None:
    assert cli("diff", "--repo", repo).exit_code == 0
    bump(repo)
    assert cli("diff", "--repo", repo).exit_code == 3
    (repo / "base/web/app.yaml").write_text("configMaps: [oops\n")
    result = cli("diff", "--repo", repo)
    assert result.exit_code == 1 and "error: base/web/app.yaml" in result.output


def test_colour_only_on_a_terminal(repo: Path) -> None:
    bump(repo)
    assert "\x1b[" not in cli("diff", "--repo", repo).stdout
    assert "\x1b[" in cli("diff", "--repo", repo, color=True).stdout
    assert "\x1b[" not in cli("diff", "--repo", repo, "--format", "markdown", color=True).stdout


def test_against_a_folder(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(repo / "out", tmp_path / "old-out")
    bump(repo)
    assert cli("render", "--repo", repo, "-j", "1").exit_code == 0
    assert cli("diff", "--repo", repo).exit_code == 0  # out/ is current now
    monkeypatch.chdir(tmp_path)
    by_out = cli("diff", "--repo", repo, "--against", "old-out", "--env", "dev")
    assert by_out.exit_code == 3
    assert by_out.stdout.startswith("gitops-gen diff: a fresh render compared with old-out\ndev: 1 ConfigMap changed, 1 workload rolls\n")
    assert "web (Deployment) rolls: web-config changed; image tag 1.0.0 -> 2.0.0 (web)" in by_out.stdout
    shutil.copytree(GOLDEN_DIFF_REPO, tmp_path / "old-repo")
    shutil.copytree(tmp_path / "old-out", tmp_path / "old-repo" / "out")
    by_repo = cli("diff", "--repo", repo, "--against", "old-repo", "--env", "dev")  # a repo: its out/
    assert by_repo.stdout.replace("old-repo", "old-out") == by_out.stdout


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_against_a_git_ref(tmp_path: Path) -> None:
    top = tmp_path / "checkout"
    root = top / "deploy"  # the repo of gitops-gen is a folder inside the git repository
    shutil.copytree(GOLDEN_DIFF_REPO, root)
    git(top, "init", "-q", "-b", "main")
    git(top, "config", "user.name", "Test")
    git(top, "config", "user.email", "test@example.com")
    assert cli("render", "--repo", root, "-j", "1").exit_code == 0
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "v1")
    git(top, "tag", "v1")
    bump(root)
    before = cli("diff", "--repo", root, "--format", "json")  # against the working tree's out/
    assert cli("render", "--repo", root, "-j", "1").exit_code == 0
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "v2")
    head = git(top, "rev-parse", "HEAD")
    (root / "out/dev/web/service-web.yaml").write_text("# hand-edited, uncommitted\n")

    result = cli("diff", "--repo", root, "--against", "HEAD~1", "--format", "json")
    assert result.exit_code == 3, result.output
    report, expected = json.loads(result.stdout), json.loads(before.stdout)
    v1 = git(top, "rev-parse", "v1").strip()
    assert report.pop("against") == f"HEAD~1 ({v1[:10]})"
    expected.pop("against")
    assert report == expected  # same answer as before the render, read from git this time
    assert cli("diff", "--repo", root, "--against", "v1", "--env", "prod").exit_code == 3
    assert cli("diff", "--repo", root, "--against", "main", "--env", "prod").exit_code == 0
    # The user's tree, index and HEAD are untouched.
    assert git(top, "rev-parse", "HEAD") == head
    assert git(top, "status", "--porcelain") == " M deploy/out/dev/web/service-web.yaml\n"


def test_against_a_ref_without_out(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(GOLDEN_DIFF_REPO, root)
    git(root, "init", "-q")
    git(root, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "empty")
    result = cli("diff", "--repo", root, "--against", "HEAD", "--format", "json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert {c["status"] for e in doc["environments"] for c in e["configMaps"]} == {"added"}


def test_against_errors(repo: Path) -> None:
    result = cli("diff", "--repo", repo, "--against", "no-such-thing")
    assert result.exit_code == 1
    assert "is not a folder, and" in result.output and "not in a git repository" in result.output
    git(repo, "init", "-q")
    for ref in ("no-such-thing", "--upload-pack=x"):
        result = cli("diff", "--repo", repo, "--against", ref)
        assert result.exit_code == 1
        assert "is neither a folder nor a git ref" in result.output
        assert "Traceback" not in result.output


def test_a_removed_environment_is_shown_loudly(tmp_path: Path) -> None:
    from tests.helpers import BASIC_APP, run, write_repo

    repo = write_repo(tmp_path, {**BASIC_APP, "environments/qa/env.yaml": "namespace: qa\n"})
    assert run("render", "--repo", repo).exit_code == 0
    (repo / "environments/qa/env.yaml").rename(repo / "environments/qa/env.yml")
    text = run("diff", "--repo", repo)
    assert text.exit_code == 3
    assert "  ENVIRONMENT REMOVED: environments/qa/env.yaml is gone" in text.output
    assert "--prune-env qa" in text.output
    markdown = run("diff", "--repo", repo, "--format", "markdown").output
    assert "| qa | **ENVIRONMENT REMOVED** | `out/qa/` |" in markdown
    import json
    envs = {e["name"]: e for e in json.loads(run("diff", "--repo", repo, "--format", "json").output)["environments"]}
    assert envs["qa"]["removed"] is True and envs["dev"]["removed"] is False


def test_a_text_both_sides_hold_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import generator.review.diff as diff_module

    parsed: list[str] = []
    real = diff_module.load_documents

    def counting(text: str, file: Any, rules: Any = None) -> Any:
        parsed.append(str(file))
        return real(text, file, rules)

    old = env_files(cm("cfg", "aaaa", {"a": "1"}), deploy("web", "cfg-aaaa"), deploy("api", "cfg-aaaa"))
    new = env_files(cm("cfg", "bbbb", {"a": "2"}), deploy("web", "cfg-bbbb"), deploy("api", "cfg-aaaa"))
    plain = run_diff(old, new)
    monkeypatch.setattr(diff_module, "load_documents", counting)
    shared = run_diff(old, new)
    assert shared == plain  # the same report as parsing every file on each side
    assert sorted(parsed) == sorted([*(f"out/e/{p}" for p in old), "(rendered)/e/app/configmap-cfg-bbbb.yaml",
                                     "(rendered)/e/app/deployment-web.yaml"])
    assert [r.name for r in shared.rollouts] == ["web"]


def as_rendered(objs: list[dict[str, Any]]) -> Any:
    """A render's own `Files` of the objects (what a worker of `diff` compares), with the text
    `env_files` gives each."""
    from generator.io.output import Files
    from generator.model import Origin, Resource

    files = Files({f"app/{o['kind'].lower()}-{o['metadata']['name']}.yaml": Resource(o, Origin("test"), "app")
                   for o in objs})
    files.add("kustomization.yaml", "# list\n")
    return files


def test_a_render_s_own_objects_are_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import generator.review.diff as diff_module

    parsed: list[str] = []
    real = diff_module.load_documents

    def counting(text: str, file: Any, rules: Any = None) -> Any:
        parsed.append(str(file))
        return real(text, file, rules)

    new_objs = [cm("cfg", "bbbb", {"a": "2", "t": "x\ny\n"}), deploy("web", "cfg-bbbb"), deploy("api", "cfg-aaaa"),
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "odd", "namespace": "ns"},
                 "spec": {"ports": [{"port": 80}], "x": 1.5}}]  # a float: emitted by libyaml, so parsed
    rendered = as_rendered(new_objs)
    old = dict(as_rendered([cm("cfg", "aaaa", {"a": "1"}), deploy("web", "cfg-aaaa"), deploy("api", "cfg-aaaa")]))
    expected = diff_module.env_diff("e", old, dict(rendered), BUILTIN_POD_SPECS)  # every text parsed
    monkeypatch.setattr(diff_module, "load_documents", counting)
    found = diff_module.env_diff("e", old, rendered, BUILTIN_POD_SPECS)
    assert found == expected
    assert [r.name for r in found.rollouts] == ["web"] and found.objects[0].status == "added"
    # the old side's files that differ, and the one new text emitted by libyaml; not the others
    assert sorted(parsed) == ["(rendered)/e/app/service-odd.yaml", "out/e/app/configmap-cfg-aaaa.yaml",
                              "out/e/app/deployment-web.yaml"]


def two_env_repo(root: Path) -> Path:
    repo = rendered_copy(GOLDEN_DIFF_REPO, root)
    bump(repo)
    return repo


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_environments_compared_in_parallel_or_in_one_process_alike(tmp_path: Path, fmt: str) -> None:
    repo = two_env_repo(tmp_path / "repo")
    one = cli("diff", "--repo", repo, "-j", "1", "--format", fmt)
    two = cli("diff", "--repo", repo, "-j", "2", "--format", fmt)
    assert one.exit_code == two.exit_code == 3
    assert one.stdout == two.stdout and "dev:" in one.stdout or '"dev"' in one.stdout


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_render_error_comes_before_an_unreadable_old_file(tmp_path: Path, jobs: str) -> None:
    repo = two_env_repo(tmp_path / "repo")
    # dev's old side does not parse; prod (later in order) does not render
    (repo / "out/dev/web/service-web.yaml").write_text("# Generated by gitops-gen\nkind: [oops\n")
    env = repo / "environments/prod/env.yaml"
    env.write_text(env.read_text() + "\nunknownField: 1\n")
    result = cli("diff", "--repo", repo, "-j", jobs)
    assert result.exit_code == 1 and "environments/prod/env.yaml" in result.output, result.output
    env.write_text(env.read_text().replace("\nunknownField: 1\n", ""))
    result = cli("diff", "--repo", repo, "-j", jobs)
    assert result.exit_code == 1 and "out/dev/web/service-web.yaml" in result.output, result.output
    assert "Traceback" not in result.output
