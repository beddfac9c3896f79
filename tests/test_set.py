"""`gitops-gen set image|config|replicas` on the example and on a corpus of env.yaml files in many
formatting styles (tests/edit_corpus/, plus a CRLF copy of each): the file changes only on the
intended lines, the rest byte for byte; a second run changes nothing; out/ is rendered."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml

from generator.edit.yamltext import YamlText, is_plain_safe
from generator.errors import EditError
from tests.helpers import deployment, load_out, run, snapshot, write_repo

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "edit_corpus"
STYLES = sorted(p.name for p in CORPUS.glob("*.yaml"))
CASES = [(name, crlf) for name in STYLES for crlf in (False, True)]


def corpus_repo(tmp_path: Path, style: str, crlf: bool) -> Path:
    repo = write_repo(tmp_path / "repo", {
        "base/web/app.yaml": """
            configMaps:
              - name: web-config
                literals: {LOG_LEVEL: info, greeting: hello, stale: x}
              - name: web-extra
                literals: {LOG_LEVEL: info}
        """,
        "base/web/deployment.yaml": deployment("web", """
            containers:
              - name: web
                image: nginx:1.27
                envFrom: [{configMapRef: {name: web-config}}, {configMapRef: {name: web-extra}}]
        """),
    })
    text = (CORPUS / style).read_text()
    env = repo / "environments/dev/env.yaml"
    env.parent.mkdir(parents=True)
    env.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode())
    return repo


def _changed(before: bytes, after: bytes) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts, line endings kept."""
    a, b = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    removed: list[str] = []
    added: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added


def _pod(repo: Path) -> dict:  # type: ignore[type-arg]
    return load_out(repo / "out/dev")["web/deployment-web.yaml"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _data(repo: Path, name: str = "web-config") -> dict:  # type: ignore[type-arg]
    return load_out(repo / "out/dev")[f"web/configmap-{name}.yaml"]["data"]  # type: ignore[no-any-return]


COMMANDS = [
    # (arguments, words of which every removed line holds one: the changed key or, in flow style,
    # the collection that holds it; check of the render)
    (("image", "nginx:1.28"), ("newTag", "images"), lambda repo: _pod(repo)["containers"][0]["image"] == "nginx:1.28"),
    (("config", "web-config", "LOG_LEVEL=error"), ("LOG_LEVEL",), lambda repo: _data(repo)["LOG_LEVEL"] == "error"),
    (("config", "web-config", "NEW_KEY=two words"), ("literals", "web-config"), lambda repo: _data(repo)["NEW_KEY"] == "two words"),
    (("config", "web-config", "stale=back"), ("stale", "literals", "remove"), lambda repo: _data(repo)["stale"] == "back"),
    (("replicas", "web", "5"), ("replicas", "spec", "patches"), lambda repo: load_out(repo / "out/dev")["web/deployment-web.yaml"]["spec"]["replicas"] == 5),
]


@pytest.mark.parametrize(("style", "crlf"), CASES)
@pytest.mark.parametrize("command", range(len(COMMANDS)))
def test_corpus_edit_is_minimal_and_idempotent(tmp_path: Path, style: str, crlf: bool, command: int) -> None:
    args, words, check = COMMANDS[command]
    repo = corpus_repo(tmp_path, style, crlf)
    env = repo / "environments/dev/env.yaml"
    before = env.read_bytes()
    result = run("set", args[0], "--repo", repo, "--env", "dev", *args[1:])
    shared = style == "anchors.yaml" and args[0] == "config"
    if shared:  # the literals are shared with web-extra through an anchor: refused, nothing written
        assert result.exit_code == 1, result.output
        assert "shared through the anchor &quiet" in result.output
        assert env.read_bytes() == before and not (repo / "out").exists()
        return
    assert result.exit_code == 0, result.output
    after = env.read_bytes()
    removed, added = _changed(before, after)
    assert added, "nothing changed"
    assert all(any(w in line for w in words) for line in removed), (removed, added)
    if style != "flow.yaml":  # a one-line file is all one line; elsewhere the rest stays put
        assert len(removed) <= (2 if "stale=back" in args else 1)  # a last `remove:` item: `remove: []`
    if crlf:
        assert after.count(b"\n") == after.count(b"\r\n")
    assert b'# {"$imagepolicy": "flux-system:nginx:tag"}' in after or b"imagepolicy" not in before
    assert check(repo)
    assert run("check", "--repo", repo).exit_code == 0
    again = run("set", args[0], "--repo", repo, "--env", "dev", *args[1:])
    assert again.exit_code == 0 and "nothing to change" in again.output
    assert env.read_bytes() == after


def example(tmp_path: Path) -> Path:
    repo = tmp_path / "example"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", "tests", "bench", "docs", "*.egg-info", "__pycache__"))
    return repo


def test_example_set_image_adds_an_entry_then_edits_it(tmp_path: Path) -> None:
    repo = example(tmp_path)
    env = repo / "environments/prod/env.yaml"
    before = env.read_bytes()
    result = run("set", "image", "--repo", repo, "--env", "prod", "engine=registry.example/exchange-engine:1.5.0")
    assert result.exit_code == 0, result.output
    removed, added = _changed(before, env.read_bytes())
    assert removed == [] and "".join(added) == (
        "images:\n  - name: ghcr.io/exchange/engine\n    newName: registry.example/exchange-engine\n    newTag: 1.5.0\n")
    deploy = load_out(repo / "out/prod")["engine/deployment-exchange-engine.yaml"]
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/exchange-engine:1.5.0"
    middle = env.read_bytes()  # the name after `images:` works as the target too
    assert run("set", "image", "--repo", repo, "--env", "prod", "registry.example/exchange-engine:1.5.1").exit_code == 0
    assert _changed(middle, env.read_bytes()) == (["    newTag: 1.5.0\n"], ["    newTag: 1.5.1\n"])
    assert run("set", "image", "--repo", repo, "--env", "prod", "engine:1.5.0").exit_code == 0
    digest = "sha256:" + "0123456789abcdef" * 4
    middle = env.read_bytes()
    assert run("set", "image", "--repo", repo, "--env", "prod", f"engine@{digest}").exit_code == 0
    removed, added = _changed(middle, env.read_bytes())
    assert removed == ["    newTag: 1.5.0\n"] and added == [f"    digest: {digest}\n"]
    assert run("check", "--repo", repo).exit_code == 0


def test_example_dev_image_entry_keeps_its_comment(tmp_path: Path) -> None:
    repo = example(tmp_path)
    env = repo / "environments/dev/env.yaml"
    before = env.read_bytes()
    assert run("set", "image", "--repo", repo, "--env", "dev", "db-processor=:2.2.0").exit_code == 0
    assert _changed(before, env.read_bytes()) == (["    newTag: 2.2.0-rc.2\n"], ["    newTag: 2.2.0\n"])


def test_example_config_and_replicas(tmp_path: Path) -> None:
    repo = example(tmp_path)
    staging_patch = repo / "environments/staging/patches/engine.yaml"
    before = staging_patch.read_bytes()
    assert run("set", "replicas", "--repo", repo, "--env", "staging", "exchange-engine", "6").exit_code == 0
    assert _changed(before, staging_patch.read_bytes()) == (["  replicas: 3\n"], ["  replicas: 6\n"])
    prod = repo / "environments/prod/env.yaml"
    before = prod.read_bytes()
    assert run("set", "config", "--repo", repo, "--env", "prod", "exchange-engine-config", "LOG_LEVEL=error").exit_code == 0
    assert _changed(before, prod.read_bytes()) == (["      LOG_LEVEL: warn\n"], ["      LOG_LEVEL: error\n"])
    dev = repo / "environments/dev/env.yaml"
    before = dev.read_bytes()  # dev removes otel_exporter_endpoint: setting it takes it off `remove:`
    assert run("set", "config", "--repo", repo, "--env", "dev", "exchange-engine-config", "otel_exporter_endpoint=otel:4317").exit_code == 0
    removed, added = _changed(before, dev.read_bytes())
    assert removed == ["    remove: [otel_exporter_endpoint]\n"]
    assert sorted(added) == ["      otel_exporter_endpoint: otel:4317\n", "    remove: []\n"]
    assert run("check", "--repo", repo).exit_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (("image", "--env", "prod", "nothing=x:1"), "no image 'nothing' in environment 'prod'"),
    (("replicas", "--env", "prod", "exchange-engin", "3"), "did you mean 'Deployment/exchange-engine'?"),
    (("config", "--env", "prod", "exchange-engine-confg", "A=1"), "did you mean 'exchange-engine-config'?"),
    (("config", "--env", "prod", "exchange-engine-config", "no-equals-sign"), "expected KEY=VALUE"),
    (("image", "--env", "nowhere", "engine:1"), "unknown environment 'nowhere'"),
])
def test_unknown_targets_are_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    repo = example(tmp_path)
    before = snapshot(repo)
    result = run("set", args[0], "--repo", repo, *args[1:])
    assert result.exit_code == 2 and message in result.output, result.output
    assert snapshot(repo) == before


def test_ambiguous_targets_list_the_candidates(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", {
        "base/a/deployment.yaml": deployment("web", "containers: [{name: engine, image: a.example/engine:1}]"),
        "base/b/statefulset.yaml": deployment("web", "containers: [{name: engine, image: b.example/engine:1}]",
                                              kind="StatefulSet"),
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    result = run("set", "image", "--repo", repo, "--env", "dev", "engine=x.example/engine:2")
    assert result.exit_code == 2
    assert "'engine' is ambiguous" in result.output
    assert "a.example/engine (Deployment/web engine); b.example/engine (StatefulSet/web engine)" in result.output
    result = run("set", "replicas", "--repo", repo, "--env", "dev", "web", "2")
    assert result.exit_code == 2 and "Deployment/web, StatefulSet/web" in result.output
    assert run("set", "replicas", "--repo", repo, "--env", "dev", "StatefulSet/web", "2").exit_code == 0


def test_a_failing_render_puts_the_source_back(tmp_path: Path) -> None:
    repo = example(tmp_path)
    assert run("render", "--repo", repo).exit_code == 0
    before = snapshot(repo)
    result = run("set", "config", "--repo", repo, "--env", "prod", "exchange-engine-config", "bad key!=1")
    assert result.exit_code == 1 and "error:" in result.output
    assert snapshot(repo) == before


def test_no_render_and_dry_run(tmp_path: Path) -> None:
    repo = example(tmp_path)
    before = snapshot(repo)
    result = run("set", "replicas", "--repo", repo, "--env", "prod", "exchange-engine", "7", "--dry-run")
    assert result.exit_code == 0 and "-      replicas: 4\n+      replicas: 7\n" in result.output
    assert snapshot(repo) == before
    assert run("set", "replicas", "--repo", repo, "--env", "prod", "exchange-engine", "7", "--no-render").exit_code == 0
    assert snapshot(repo / "out") == {k[4:]: v for k, v in before.items() if k.startswith("out/")}
    assert run("check", "--repo", repo).exit_code == 1  # out/ is now stale: render was skipped


@pytest.mark.parametrize("text", ["1.5.0", "v2", "ghcr.io/x/y:1", "a b", "yes", "1e3", "0x1F", "08", "", "-x", "a: b", "n"])
def test_plain_scalars_stay_strings_for_every_reader(text: str) -> None:
    if is_plain_safe(text):
        assert yaml.safe_load(text) == text
        from ruamel.yaml import YAML

        assert YAML(typ="safe", pure=True).load(text) == text
    else:
        assert text in ("a b", "yes", "1e3", "0x1F", "08", "", "-x", "a: b", "n")


def test_refuses_rather_than_breaking_a_file() -> None:
    doc = YamlText("a: &x {b: 1}\nc: *x\n", "f.yaml")
    with pytest.raises(EditError, match="shared through the anchor &x"):
        doc.set(("c", "b"), 2)
    doc = YamlText("a: [1, 2]\n", "f.yaml")
    with pytest.raises(EditError, match="holds a list"):
        doc.set(("a",), 3)


def test_a_plain_equals_sign_in_the_edited_file_is_read_as_the_render_reads_it(tmp_path: Path) -> None:
    """`=` unquoted (a string to kubectl, kustomize and the renderer) does not stop an edit of
    the file that holds it."""
    repo = write_repo(tmp_path / "repo", {
        "base/web/deployment.yaml": deployment("web", "containers: [{name: c, image: 'nginx:1.25', args: [=]}]"),
        "environments/dev/env.yaml": "namespace: dev\npatches:\n  - kind: Deployment\n    metadata: {name: web}\n"
                                     "    spec: {template: {metadata: {annotations: {sep: =}}}}\n",
    })
    assert run("render", "--repo", repo).exit_code == 0
    result = run("set", "image", "--repo", repo, "--env", "dev", "nginx=nginx:1.27")
    assert result.exit_code == 0, result.output
    deploy = load_out(repo / "out/dev")["web/deployment-web.yaml"]
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert deploy["spec"]["template"]["metadata"]["annotations"]["sep"] == "="
