"""Public test helpers: build small repos, run the CLI, snapshot folders."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result

from generator.cli import main


def write_repo(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create files under root; str contents are dedented."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


GOLDEN_DIFF_REPO = Path(__file__).parent / "golden" / "diff" / "repo"


def run(*args: str | Path, color: bool = False) -> Result:
    """The CLI as `gitops-gen ARGS`, in-process."""
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="gitops-gen", color=color, catch_exceptions=False)


def rendered_copy(source: Path, dest: Path) -> Path:
    """A copy of a repo with its out/ freshly rendered."""
    shutil.copytree(source, dest)
    assert run("render", "--repo", dest, "-j", "1").exit_code == 0
    return dest


def snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def load_out(folder: Path) -> dict[str, Any]:
    """Every generated file of out/<env>/ parsed, by relative path."""
    return {
        p.relative_to(folder).as_posix(): yaml.safe_load(p.read_text())
        for p in sorted(folder.rglob("*.yaml"))
    }


def deployment(name: str, pod_spec: str, kind: str = "Deployment", api: str = "apps/v1") -> str:
    """A minimal workload manifest whose pod spec is the given YAML (indented for you)."""
    spec = textwrap.indent(textwrap.dedent(pod_spec).strip("\n"), " " * 6)
    return (
        f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n"
        f"  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n"
        f"    metadata: {{labels: {{app: {name}}}}}\n    spec:\n{spec}\n"
    )


BASIC_APP = {
    "base/web/app.yaml": """
        configMaps:
          - name: web-config
            literals:
              LOG_LEVEL: info
              greeting: hello
    """,
    "base/web/deployment.yaml": deployment(
        "web",
        """
        containers:
          - name: web
            image: nginx:1.27
            envFrom: [{configMapRef: {name: web-config}}]
        """,
    ),
    "environments/dev/env.yaml": "namespace: dev\n",
}
