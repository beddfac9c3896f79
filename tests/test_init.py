"""`gitops-gen init`: a new repo that renders, passes check, and whose files the editor schemas,
kubectl, pre-commit's hook list and the CI snippets agree with."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from generator import __version__
from generator.adopt.init import CI_FILES
from tests.helpers import run, snapshot
from tests.kubectl import find_kubectl, kustomize_build

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(("deploy", "ci"), [("argocd", "github"), ("flux", "gitlab")])
def test_init_renders_and_checks_in_an_empty_folder(tmp_path: Path, deploy: str, ci: str) -> None:
    target = tmp_path / "new"
    result = run("init", target, "--deploy", deploy, "--ci", ci, "--source", "https://example.org/gg.git")
    assert result.exit_code == 0, result.output
    assert run("check", "--repo", target).exit_code == 0
    assert run("render", "--repo", target).output.endswith("0 written, 0 removed, 4 unchanged\n")
    objects = kustomize_build(find_kubectl(), target / "out/dev")
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "Deployment", "Service"]
    deployer = yaml.safe_load_all((target / f"deploy/{deploy}-dev.yaml").read_text())
    assert {d["kind"] for d in deployer} == ({"Application"} if deploy == "argocd" else {"GitRepository", "Kustomization"})
    ci_text = (target / CI_FILES[ci][1]).read_text()
    assert f'GITOPS_GEN: "git+https://example.org/gg.git@v{__version__}"' in ci_text
    hook = yaml.safe_load((target / ".pre-commit-config.yaml").read_text())["repos"][0]
    assert hook == {"repo": "https://example.org/gg.git", "rev": f"v{__version__}", "hooks": [{"id": "gitops-gen-check"}]}
    assert hook["hooks"][0]["id"] in {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def test_init_files_carry_working_schema_modelines(tmp_path: Path) -> None:
    assert run("init", tmp_path).exit_code == 0
    for rel in ("gitops-gen.yaml", "base/hello/app.yaml", "environments/dev/env.yaml"):
        path = tmp_path / rel
        first = path.read_text().splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, first
        schema = json.loads((path.parent / match.group(1)).read_text())  # relative to the file, as editors read it
        jsonschema.Draft7Validator(schema).validate(yaml.safe_load(path.read_text()))


def test_init_refuses_an_existing_repo(tmp_path: Path) -> None:
    assert run("init", tmp_path).exit_code == 0
    before = snapshot(tmp_path)
    result = run("init", tmp_path)
    assert result.exit_code == 1 and "already has gitops-gen.yaml, base, environments, out" in result.output
    assert snapshot(tmp_path) == before


def test_ci_templates_are_the_documented_snippets() -> None:
    for template, _ in CI_FILES.values():
        packaged = ROOT / "generator/adopt/templates" / template
        assert packaged.read_bytes() == (ROOT / "docs/ci" / template).read_bytes(), template
