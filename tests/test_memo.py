from pathlib import Path

import pytest

from generator.io.memo import Memo
from generator.io.yaml_io import load_documents
from tests.helpers import BASIC_APP, run, snapshot, write_repo


def parse(text: str) -> list[tuple[object, int]]:
    return load_documents(text, "x.yaml")


def test_parse_hit_returns_a_fresh_copy(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "m.pickle")
    first = memo.parse("a: {b: 1}\n", parse)
    first[0][0]["a"]["b"] = 99  # the pipeline mutates what it parsed
    memo.save()
    again = Memo(tmp_path / "m.pickle")
    assert again.parse("a: {b: 1}\n", parse) == [({"a": {"b": 1}}, 1)]
    assert again.hits == 1


def test_stale_or_corrupt_memo_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "m.pickle"
    path.write_bytes(b"not a pickle")
    assert Memo(path).parse("a: 1\n", parse) == [({"a": 1}, 1)]


def test_only_used_entries_are_kept(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "m.pickle")
    memo.parse("a: 1\n", parse)
    memo.parse("b: 1\n", parse)
    memo.save()
    second = Memo(tmp_path / "m.pickle")
    second.parse("a: 1\n", parse)
    second.save()
    third = Memo(tmp_path / "m.pickle")
    third.parse("b: 1\n", parse)
    assert third.hits == 0


@pytest.mark.parametrize("setting", ["on", "off"])
def test_render_output_identical_with_and_without_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    cold = write_repo(tmp_path / "cold", BASIC_APP)
    assert run("render", "--repo", cold, "--no-cache").exit_code == 0
    warm = write_repo(tmp_path / "warm", BASIC_APP)
    if setting == "off":
        monkeypatch.setenv("GITOPS_GEN_CACHE", "off")
    for _ in range(2):  # the second render reads the memo the first one wrote
        assert run("render", "--repo", warm).exit_code == 0
    assert snapshot(warm / "out") == snapshot(cold / "out")
    assert any((tmp_path / "cache").rglob("*.pickle")) == (setting == "on")


def _configmap(data: dict[str, str]) -> "Resource":
    from generator.model import Origin, Resource

    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data}
    return Resource(obj, Origin("base/a/app.yaml", 1), "a", declared="c")


def test_clean_scan_verdicts_are_remembered_findings_never(tmp_path: Path) -> None:
    from generator.errors import SecretError
    from generator.secrets.producers import scan_step

    clean, leaky = {"LOG_LEVEL": "info"}, {"DB_PASSWORD": "hunter2"}
    memo = Memo(tmp_path / "m.pickle")
    scan_step([_configmap(clean)], [], memo)
    with pytest.raises(SecretError):
        scan_step([_configmap(leaky)], [], memo)
    memo.save()
    again = Memo(tmp_path / "m.pickle")
    scan_step([_configmap(clean)], [], again)
    assert again.hits == 1  # not scanned again
    with pytest.raises(SecretError):  # never remembered as clean: always scanned, always refused
        scan_step([_configmap(leaky)], [], again)


def test_scan_digest_depends_on_every_field() -> None:
    from generator.secrets.scan import object_digest

    base = object_digest({"a": "1", "b": {"c": ["2"]}})
    assert base == object_digest({"a": "1", "b": {"c": ["2"]}})  # equal objects (another key order is only a miss)
    shared = "2"
    assert object_digest({"a": shared, "b": shared}) == object_digest({"a": "2", "b": "".join(["2"])})  # sharing is not seen
    variants = [{"a": "1"}, {"a": "1", "b": {"c": ["3"]}}, {"a": "1", "b": {"d": ["2"]}}, {"a": "1", "b": {"c": ["2", "2"]}}]
    assert len({base, *(object_digest(v) for v in variants)}) == 5


def test_secret_in_a_deployment_is_refused_on_a_warm_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = write_repo(tmp_path / "repo", BASIC_APP)
    assert run("render", "--repo", repo).exit_code == 0
    deployment = repo / "base" / "web" / "deployment.yaml"
    text = deployment.read_text()
    indent = text.split("image: nginx:1.27")[0].rsplit("\n", 1)[1]
    deployment.write_text(text.replace("image: nginx:1.27", f"image: nginx:1.27\n{indent}args: [--db-password, hunter2]", 1))
    result = run("render", "--repo", repo)
    assert result.exit_code == 1 and "field `spec.template.spec.containers[web].args[1]`" in result.output
    assert "hunter2" not in result.output


def test_secret_in_a_configmap_is_refused_on_a_warm_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = write_repo(tmp_path / "repo", BASIC_APP)
    assert run("render", "--repo", repo).exit_code == 0
    app_yaml = next((repo / "base").glob("*/app.yaml"))
    app_yaml.write_text(app_yaml.read_text().replace("literals:", "literals:\n      DB_PASSWORD: hunter2", 1))
    result = run("render", "--repo", repo)
    assert result.exit_code == 1 and "DB_PASSWORD" in result.output and "hunter2" not in result.output


def test_output_memo_never_hides_a_hand_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files known from the last render are skipped only while untouched: an edit, even one
    that keeps the size and the modification time, is seen by check and undone by render."""
    import os

    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = write_repo(tmp_path / "repo", BASIC_APP)
    assert run("render", "--repo", repo).exit_code == 0
    assert run("render", "--repo", repo).exit_code == 0  # the memo now knows every file
    assert list((tmp_path / "cache").rglob("*.out.pickle"))
    good = snapshot(repo / "out")
    target = next(p for p in (repo / "out").rglob("deployment-*.yaml"))
    before = target.stat()
    text = target.read_text()
    target.write_text(text.replace("replicas: 1", "replicas: 7") if "replicas: 1" in text else text[:-2] + "x\n")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size class, same mtime
    result = run("check", "--repo", repo)
    assert result.exit_code == 1 and "stale" in result.output
    assert run("render", "--repo", repo).exit_code == 0
    assert snapshot(repo / "out") == good


def test_output_memo_is_keyed_by_what_is_emitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = write_repo(tmp_path / "repo", BASIC_APP)
    assert run("render", "--repo", repo).exit_code == 0
    app_yaml = repo / "base" / "web" / "app.yaml"
    app_yaml.write_text(app_yaml.read_text().replace("greeting: hello", "greeting: bonjour"))
    assert run("render", "--repo", repo).exit_code == 0
    cold = write_repo(tmp_path / "cold", BASIC_APP)
    (cold / "base" / "web" / "app.yaml").write_text(app_yaml.read_text())
    assert run("render", "--repo", cold, "--no-cache").exit_code == 0
    warm, fresh = snapshot(repo / "out"), snapshot(cold / "out")
    changed = [k for k in fresh if "configmap-web-config" in k]
    assert changed and all(warm[k] == fresh[k] for k in fresh if not k.endswith("kustomization.yaml"))
    assert b"bonjour" in warm[changed[0]]
