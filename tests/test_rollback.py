"""Rollback is a `git revert`: proven end to end on a copy of the shipped example in a temporary
git repo, with a real `kubectl kustomize` at every step.

At every commit: out/ is current (`check` agrees with `render`), every ConfigMap reference of
every workload resolves, `kubectl kustomize out/<env>` builds, and every ConfigMap the previous
commit's workloads used is still in out/ (the old ReplicaSet can restart and `kubectl rollout
undo` finds its config). Reverting a render's commit gives an out/ byte-identical to the one
before it, which the next render leaves untouched (so the reverted version's ConfigMap leaves
out/ with the revert; rolling forward to old content instead keeps it, see the last test).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import run, snapshot
from tests.kubectl import find_kubectl, kustomize_build

ROOT = Path(__file__).resolve().parent.parent
ENVS = ("dev", "prod", "staging")
ENGINE = "exchange-engine-config"
DB = "exchange-db-processor-config"


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=gitops-gen tests", "-c", "user.email=tests@gitops-gen.invalid",
         "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false", *args],
        cwd=repo, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the example's sources in a fresh git repo (no out/ yet)."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("base", "environments", "gitops-gen.yaml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name)
        else:
            shutil.copy(src, root / name)
    git(root, "init", "-q", "-b", "main")
    return root


def edit_env(repo: Path, env: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = repo / "environments" / env / "env.yaml"
    doc = yaml.safe_load(path.read_text()) or {}
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def set_literal(configmap: str, key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        overlay = doc.setdefault("configMaps", {}).setdefault(configmap, {}) or {}
        overlay.setdefault("literals", {})[key] = value
        doc["configMaps"][configmap] = overlay
    return change


def render_and_commit(repo: Path, message: str) -> str:
    result = run("render", "--repo", repo)
    assert result.exit_code == 0, result.output
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def out_objects(repo: Path, env: str) -> list[dict[str, Any]]:
    folder = repo / "out" / env
    return [yaml.safe_load(p.read_text()) for p in sorted(folder.rglob("*.yaml")) if p.name != "kustomization.yaml"]


def current_name(repo: Path, env: str, declared: str) -> str:
    obj = yaml.safe_load((repo / "out" / env).glob(f"*/configmap-{declared}.yaml").__next__().read_text())
    return str(obj["metadata"]["name"])


def retained(repo: Path, env: str, declared: str) -> list[str]:
    """Names of the superseded versions of one ConfigMap in out/<env>/, newest first."""
    found = [
        o for o in out_objects(repo, env)
        if o["kind"] == "ConfigMap"
        and o["metadata"].get("annotations", {}).get("gitops-gen.io/config-name") == declared
        and o["metadata"]["annotations"].get("gitops-gen.io/version") == "superseded"
    ]
    found.sort(key=lambda o: -int(o["metadata"]["annotations"]["gitops-gen.io/superseded-order"]))
    return [o["metadata"]["name"] for o in found]


def configmap_refs(obj: Any) -> Iterator[tuple[str, str | None, bool]]:
    """(ConfigMap name, key or None, optional) for every ConfigMap reference inside obj."""
    if isinstance(obj, dict):
        for field_ in ("configMapRef", "configMapKeyRef", "configMap"):
            ref = obj.get(field_)
            if isinstance(ref, dict) and "name" in ref:
                yield ref["name"], ref.get("key"), bool(ref.get("optional"))
                for item in ref.get("items") or []:
                    yield ref["name"], item["key"], bool(ref.get("optional"))
        for value in obj.values():
            yield from configmap_refs(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from configmap_refs(value)


def used_configmaps(objects: list[dict[str, Any]]) -> set[str]:
    return {name for o in objects if o["kind"] != "ConfigMap" for name, _, _ in configmap_refs(o)}


def canonical(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)


def assert_sound(repo: Path) -> dict[str, list[dict[str, Any]]]:
    """out/ is current, kustomize builds every environment, and every reference resolves."""
    result = run("check", "--repo", repo)
    assert result.exit_code == 0, result.output
    assert "0 written, 0 removed" in run("render", "--repo", repo).output
    built: dict[str, list[dict[str, Any]]] = {}
    for env in ENVS:
        objects = kustomize_build(find_kubectl(), repo / "out" / env)
        assert sorted(map(canonical, objects)) == sorted(map(canonical, out_objects(repo, env)))
        data = {o["metadata"]["name"]: {**(o.get("data") or {}), **(o.get("binaryData") or {})}
                for o in objects if o["kind"] == "ConfigMap"}
        for o in objects:
            if o["kind"] == "ConfigMap":
                continue
            for name, key, optional in configmap_refs(o):
                assert optional or name in data, f"{env}: {o['kind']} {o['metadata']['name']} -> missing {name}"
                assert optional or key is None or key in data[name], f"{env}: {name} has no key {key}"
        built[env] = objects
    return built


def assert_still_there(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> None:
    """Every ConfigMap the previous commit's workloads used is still deployed: the old
    ReplicaSet's pods can restart, and a rollout undo finds its config."""
    for env in ENVS:
        names = {o["metadata"]["name"] for o in after[env] if o["kind"] == "ConfigMap"}
        assert used_configmaps(before[env]) <= names, env


def test_config_changes_retain_old_versions_and_reverts_restore_out_exactly(repo: Path) -> None:
    commits = {1: render_and_commit(repo, "v1")}
    states = {1: snapshot(repo / "out")}
    built = {1: assert_sound(repo)}
    names = [current_name(repo, "prod", ENGINE)]
    for version in range(2, 6):
        edit_env(repo, "prod", set_literal(ENGINE, "LOG_LEVEL", f"level-{version}"))
        commits[version] = render_and_commit(repo, f"v{version}")
        names.append(current_name(repo, "prod", ENGINE))
        states[version] = snapshot(repo / "out")
        built[version] = assert_sound(repo)
        assert_still_there(built[version - 1], built[version])
        # the workload points at the new version; the two before it are kept, newest first
        assert names[-1] in used_configmaps(built[version]["prod"])
        assert retained(repo, "prod", ENGINE) == names[-2:-4:-1]
        # the version three changes back leaves out/ exactly now (default retention 2)
        if version >= 4:
            assert names[-4] not in {o["metadata"]["name"] for o in built[version]["prod"]}
            assert names[-4] in {o["metadata"]["name"] for o in built[version - 1]["prod"]}
        # other environments and other ConfigMaps did not move
        for env in ("dev", "staging"):
            assert {k: v for k, v in states[version].items() if k.startswith(f"{env}/")} == \
                {k: v for k, v in states[1].items() if k.startswith(f"{env}/")}
        assert retained(repo, "prod", DB) == []
    assert len(names) == len(set(names))
    # revert the newest change, one commit at a time, down to v1
    for version in range(5, 1, -1):
        git(repo, "revert", "--no-edit", commits[version])
        assert snapshot(repo / "out") == states[version - 1], f"revert of v{version}"
        after = assert_sound(repo)
        assert git(repo, "status", "--porcelain") == ""
        # the reverted version leaves with its commit (pruned once the engine syncs the revert);
        # the version the workload goes back to is current again
        assert names[version - 1] not in {o["metadata"]["name"] for o in after["prod"]}
        assert current_name(repo, "prod", ENGINE) == names[version - 2]
    assert retained(repo, "prod", ENGINE) == []


def test_revert_of_a_commit_changing_two_configmaps_and_an_image_tag(repo: Path) -> None:
    render_and_commit(repo, "v1")
    before = snapshot(repo / "out")
    built_v1 = assert_sound(repo)
    old_engine, old_db = current_name(repo, "prod", ENGINE), current_name(repo, "prod", DB)

    def change(doc: dict[str, Any]) -> None:
        set_literal(ENGINE, "risk_limits_mode", "paranoid")(doc)
        set_literal(DB, "batch_size", "4000")(doc)
        doc.setdefault("vars", {})["engine_image_tag"] = "1.5.0"

    edit_env(repo, "prod", change)
    v2 = render_and_commit(repo, "engine and db-processor config, engine 1.5.0")
    built_v2 = assert_sound(repo)
    assert_still_there(built_v1, built_v2)
    assert retained(repo, "prod", ENGINE) == [old_engine]
    assert retained(repo, "prod", DB) == [old_db]
    engine = yaml.safe_load((repo / "out/prod/engine/deployment-exchange-engine.yaml").read_text())
    assert engine["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/engine:1.5.0")
    assert current_name(repo, "prod", ENGINE) in used_configmaps(built_v2["prod"])

    git(repo, "revert", "--no-edit", v2)
    assert snapshot(repo / "out") == before
    assert_sound(repo)
    engine = yaml.safe_load((repo / "out/prod/engine/deployment-exchange-engine.yaml").read_text())
    assert engine["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/engine:1.4.2")
    assert git(repo, "status", "--porcelain") == ""


def test_rolling_forward_to_old_content_is_not_a_revert(repo: Path) -> None:
    """Editing the source back (instead of reverting) supersedes the newer version in turn:
    both stay deployable, and the old content is current, not also retained."""
    render_and_commit(repo, "v1")
    first = current_name(repo, "prod", ENGINE)
    edit_env(repo, "prod", set_literal(ENGINE, "LOG_LEVEL", "debug"))
    render_and_commit(repo, "v2")
    second = current_name(repo, "prod", ENGINE)
    built_v2 = assert_sound(repo)
    edit_env(repo, "prod", set_literal(ENGINE, "LOG_LEVEL", "warn"))
    render_and_commit(repo, "back to v1's content")
    assert current_name(repo, "prod", ENGINE) == first
    assert retained(repo, "prod", ENGINE) == [second]
    assert_still_there(built_v2, assert_sound(repo))


# --- Secret producers: a rotation keeps the old Secret's producer, a revert restores out/ ---------

SEALED = """\
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: exchange-engine-signing
  annotations:
    sealedsecrets.bitnami.com/namespace-wide: "true"
spec:
  encryptedData:
    signing-key: {cipher}
  template:
    type: Opaque
"""


def secret_refs(obj: Any) -> Iterator[str]:
    """Names of the Secrets referenced through secretKeyRef inside obj."""
    if isinstance(obj, dict):
        ref = obj.get("secretKeyRef")
        if isinstance(ref, dict) and "name" in ref:
            yield ref["name"]
        for value in obj.values():
            yield from secret_refs(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from secret_refs(value)


def produced_secrets(objects: list[dict[str, Any]]) -> set[str]:
    """The Secrets the producers in out/ make the cluster create (every version, retained ones too)."""
    out = set()
    for o in objects:
        if o["kind"] == "ExternalSecret":
            out.add(o["spec"]["target"]["name"])
        elif o["kind"] == "SealedSecret":
            out.add(o["metadata"]["name"])
    return out


def producer_versions(repo: Path, env: str, kind: str) -> list[tuple[str, str | None]]:
    """(name, version annotation) of every object of `kind` in out/<env>/, sorted."""
    return sorted((o["metadata"]["name"], o["metadata"]["annotations"].get("gitops-gen.io/version"))
                  for o in out_objects(repo, env) if o["kind"] == kind)


def rotate(repo: Path, cipher: str, version: str) -> None:
    """A rotation as committed: new ciphertext for the SealedSecret, a new vault version for the ExternalSecret."""
    (repo / "base/engine/sealedsecret.yaml").write_text(SEALED.format(cipher=cipher))
    app = repo / "base/engine/app.yaml"
    text = app.read_text()
    if "version:" not in text:
        text = text.replace("property: api_key}", 'property: api_key, version: "1"}')
    app.write_text(text.replace(text[text.index('version: "'):text.index('"}', text.index('version: "')) + 1],
                                f'version: "{version}"'))


def test_secret_rotation_retains_old_producers_and_a_revert_restores_out_exactly(repo: Path) -> None:
    deployment = repo / "base/engine/deployment.yaml.j2"
    deployment.write_text(deployment.read_text().replace(
        "            - name: EXCHANGE_API_KEY\n",
        "            - name: SIGNING_KEY\n              valueFrom:\n                secretKeyRef:\n"
        "                  name: exchange-engine-signing\n                  key: signing-key\n"
        "            - name: EXCHANGE_API_KEY\n", 1))
    rotate(repo, "AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq1", "1")
    render_and_commit(repo, "v1")
    before = snapshot(repo / "out")
    built_v1 = assert_sound(repo)
    rotate(repo, "AgCz7k2PLQWX+RjUyTZAB0sP54dHEFr2", "2")
    v2 = render_and_commit(repo, "rotate the engine's secrets")
    built_v2 = assert_sound(repo)
    for env in ENVS:
        used = {name for o in built_v1[env] for name in secret_refs(o)} - {"exchange-postgres-credentials"}
        assert len(used) == 2
        # the old ReplicaSet's Secrets are still produced: their producers stay, marked superseded
        assert used <= produced_secrets(built_v2[env]), env
        assert not used & {name for o in built_v2[env] if o["kind"] != "SealedSecret" and o["kind"] != "ExternalSecret"
                           for name in secret_refs(o)}
        for kind in ("SealedSecret", "ExternalSecret"):
            versions = producer_versions(repo, env, kind)
            assert [v for _, v in versions].count("superseded") == 1 and len(versions) == 2, (env, kind)
    assert "retained: " in run("diff", "--repo", repo, "--against", "HEAD~1").output
    git(repo, "revert", "--no-edit", v2)
    assert snapshot(repo / "out") == before
    assert_sound(repo)
    assert git(repo, "status", "--porcelain") == ""
    for env in ENVS:
        assert [v for _, v in producer_versions(repo, env, "SealedSecret")] == [None]


# --- history that survives the working tree ------------------------------------------------


def _three_engine_versions(repo: Path) -> dict[int, str]:
    """Commits v1..v3, each changing the engine's config in prod; returns their commit ids."""
    commits = {1: render_and_commit(repo, "v1")}
    for version in (2, 3):
        edit_env(repo, "prod", set_literal(ENGINE, "LOG_LEVEL", f"level-{version}"))
        commits[version] = render_and_commit(repo, f"v{version}")
    return commits


def test_retained_versions_come_back_from_git_after_rm_rf_out(repo: Path) -> None:
    _three_engine_versions(repo)
    committed = snapshot(repo / "out")
    assert len(retained(repo, "prod", ENGINE)) == 2
    shutil.rmtree(repo / "out")
    result = run("render", "--repo", repo)
    assert result.exit_code == 0, result.output
    assert snapshot(repo / "out") == committed
    assert git(repo, "status", "--porcelain") == ""


def test_check_names_a_retained_version_missing_from_the_working_tree(repo: Path) -> None:
    _three_engine_versions(repo)
    kept = retained(repo, "prod", ENGINE)[-1]
    (repo / "out/prod/engine" / f"configmap-{kept}.yaml").unlink()
    result = run("check", "--repo", repo)
    assert result.exit_code == 1
    assert f"missing: out/prod/engine/configmap-{kept}.yaml" in result.output
    assert run("render", "--repo", repo).exit_code == 0
    assert git(repo, "status", "--porcelain") == ""


def test_an_interrupted_render_keeps_the_committed_history(repo: Path) -> None:
    """Even a render killed without its journal (files lost by hand here) gets the versions back."""
    _three_engine_versions(repo)
    committed = snapshot(repo / "out")
    for path in (repo / "out/prod/engine").glob("configmap-*.yaml"):
        path.unlink()
    assert run("render", "--repo", repo).exit_code == 0
    assert snapshot(repo / "out") == committed


def test_a_conflicted_revert_is_resolved_by_rendering(repo: Path, tmp_path: Path) -> None:
    """`git revert` of an older config change conflicts in out/ (the later change touched the
    same lines). Resolving the sources and running `render` resolves out/: the conflicted files
    are ignored and their history comes from HEAD, so out/ is exactly what a clean render of
    the resolved sources on HEAD's out/ gives; `git add` and `revert --continue` finish it."""
    commits = _three_engine_versions(repo)
    v1_env = git(repo, "show", f"{commits[1]}:environments/prod/env.yaml") + "\n"
    names = {v: git(repo, "show", f"{commits[v]}:out/prod/engine/configmap-{ENGINE}.yaml") for v in (1, 2, 3)}
    proc = subprocess.run(["git", "revert", "--no-edit", commits[2]], cwd=repo, capture_output=True, text=True,
                          check=False)
    assert proc.returncode != 0 and "conflict" in (proc.stdout + proc.stderr).lower()
    unmerged = git(repo, "diff", "--name-only", "--diff-filter=U")
    assert f"out/prod/engine/configmap-{ENGINE}.yaml" in unmerged
    # the hint this used to print, `git checkout -- <path>`, fails on an unmerged path
    stuck = subprocess.run(["git", "checkout", "--", f"out/prod/engine/configmap-{ENGINE}.yaml"], cwd=repo,
                           capture_output=True, text=True, check=False)
    assert stuck.returncode != 0 and "unmerged" in stuck.stderr
    (repo / "environments/prod/env.yaml").write_text(v1_env)  # resolve the source: v1's value
    result = run("render", "--repo", repo)
    assert result.exit_code == 0, result.output
    assert "<<<<<<<" not in "".join(p.read_text() for p in (repo / "out").rglob("*.yaml"))
    # what a clean render of the resolved sources on HEAD's out/ gives
    clean = tmp_path / "clean"
    git(tmp_path, "clone", "-q", str(repo), str(clean))
    (clean / "environments/prod/env.yaml").write_text(v1_env)
    assert run("render", "--repo", clean).exit_code == 0
    assert snapshot(repo / "out") == snapshot(clean / "out")
    v1_name = yaml.safe_load(names[1])["metadata"]["name"]
    assert current_name(repo, "prod", ENGINE) == v1_name
    assert retained(repo, "prod", ENGINE) == [yaml.safe_load(names[v])["metadata"]["name"] for v in (3, 2)]
    git(repo, "add", "-A")
    git(repo, "-c", "core.editor=true", "revert", "--continue")
    assert_sound(repo)
