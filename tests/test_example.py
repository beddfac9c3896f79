"""The shipped example: Argo CD and Flux can consume every out/<env> as it is.

Flux runs `kustomize build` on the folder and Argo CD reads the kustomization, so a real
`kubectl kustomize` (kustomize v5.x) must yield exactly the objects the generator rendered.
"""

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import run
from tests.kubectl import find_kubectl, kustomize_build

ROOT = Path(__file__).resolve().parent.parent
ENVS = sorted(p.parent.name for p in (ROOT / "environments").glob("*/env.yaml"))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("example")
    for name in ("base", "environments", "gitops-gen.yaml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name)
        elif src.exists():
            shutil.copy(src, repo / name)
    result = run("render", "--repo", repo)
    assert result.exit_code == 0, result.output
    return repo


def identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def test_example_has_three_environments() -> None:
    assert ENVS == ["dev", "prod", "staging"]


@pytest.mark.parametrize("env", ENVS)
def test_kustomize_yields_exactly_the_rendered_objects(rendered: Path, env: str) -> None:
    folder = rendered / "out" / env
    ours = {
        identity(doc): doc
        for path in sorted(folder.rglob("*.yaml")) if path.name != "kustomization.yaml"
        for doc in [yaml.safe_load(path.read_text())]
    }
    theirs = {identity(doc): doc for doc in kustomize_build(find_kubectl(), folder)}
    assert sorted(theirs) == sorted(ours)
    for key, doc in ours.items():
        assert theirs[key] == doc, key


@pytest.mark.parametrize("env", ENVS)
def test_every_configmap_is_hashed_immutable_and_used(rendered: Path, env: str) -> None:
    docs = [yaml.safe_load(p.read_text()) for p in sorted((rendered / "out" / env).rglob("*.yaml"))]
    configmaps = [d for d in docs if d["kind"] == "ConfigMap"]
    assert configmaps
    text = "\n".join(p.read_text() for p in (rendered / "out" / env).rglob("*.yaml"))
    for cm in configmaps:
        declared = cm["metadata"].get("annotations", {}).get("gitops-gen.io/config-name")
        if declared is None:  # the documented opt-out: plain name, mutable
            continue
        assert cm["immutable"] is True
        assert cm["metadata"]["name"].startswith(declared + "-")
        assert text.count(f"name: {cm['metadata']['name']}") >= 2, f"{cm['metadata']['name']} is not referenced"


def test_environments_differ(rendered: Path) -> None:
    def cm(env: str, name: str) -> dict[str, Any]:
        path = rendered / "out" / env / "engine" / f"configmap-{name}.yaml"
        return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]

    names = {env: cm(env, "exchange-engine-config")["metadata"]["name"] for env in ENVS}
    assert len(set(names.values())) == 3
