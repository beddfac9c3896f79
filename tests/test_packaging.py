"""Installable as users install tools: `python -m build` makes a wheel and an sdist; the wheel
installs into a fresh virtual environment and renders the example outside the source tree; the
CI snippets' install step installs from a git URL at the release tag.

Marked `packaging` (about a minute: a fresh venv and dependency installs); deselect with
`-m "not packaging"`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import __version__

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.packaging
PACKAGE_DATA = ("generator/schemas/app.schema.json", "generator/schemas/env.schema.json",
                "generator/schemas/gitops-gen.schema.json", "generator/adopt/templates/github-actions.yml",
                "generator/adopt/templates/gitlab-ci.yml")


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wheel + sdist built from a clean copy of the committed sources (what a tag would hold)."""
    work = tmp_path_factory.mktemp("dist")
    _run("git", "clone", "--quiet", ROOT, work / "src")
    _run(sys.executable, "-m", "build", "--outdir", work / "dist", work / "src")
    return work / "dist"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, dist: Path) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("venv") / "v"
    _run(sys.executable, "-m", "venv", folder)
    (wheel,) = dist.glob("*.whl")
    _run(folder / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel)
    yield folder


def test_build_makes_wheel_and_sdist_with_package_data(dist: Path) -> None:
    (wheel,) = dist.glob(f"gitops_gen-{__version__}-py3-none-any.whl")
    (sdist,) = dist.glob(f"gitops_gen-{__version__}.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGE_DATA) <= names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    members = {m.split("/", 1)[1] for m in tarfile.open(sdist).getnames() if "/" in m}
    assert set(PACKAGE_DATA) <= members and "CHANGELOG.md" in members


def test_wheel_renders_the_example_outside_the_source_tree(venv: Path, tmp_path: Path) -> None:
    repo = tmp_path / "example"
    for part in ("base", "environments", "charts", "out", "gitops-gen.yaml"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, repo / part)
        elif source.exists():
            shutil.copy2(source, repo / part)
    env = {**os.environ, "PYTHONPATH": ""}
    located = _run(venv / "bin/python", "-c", "import generator, sys; print(generator.__file__)", cwd=tmp_path, env=env)
    assert str(venv) in located and str(ROOT) not in located
    assert _run(venv / "bin/gitops-gen", "--version", cwd=tmp_path, env=env).strip() == f"gitops-gen, version {__version__}"
    _run(venv / "bin/gitops-gen", "check", "--repo", repo, cwd=tmp_path, env=env)  # the committed out/ is current
    shutil.rmtree(repo / "out")
    _run(venv / "bin/gitops-gen", "render", "--repo", repo, cwd=tmp_path, env=env)
    assert (repo / "out/prod/kustomization.yaml").read_bytes() == (ROOT / "out/prod/kustomization.yaml").read_bytes()
    _run(venv / "bin/gitops-gen", "init", tmp_path / "new", cwd=tmp_path, env=env)  # package data is found
    _run(venv / "bin/gitops-gen", "check", "--repo", tmp_path / "new", cwd=tmp_path, env=env)


def test_ci_snippets_install_step_installs_from_the_tag(venv: Path, tmp_path: Path) -> None:
    """The snippets' `pip install "$GITOPS_GEN"`, run as written, with GITOPS_GEN a git URL of
    a clone of this repo at the release tag (cut as the README says)."""
    clone = tmp_path / "gitops-gen"
    _run("git", "clone", "--quiet", ROOT, clone)
    _run("git", "-c", "user.name=t", "-c", "user.email=t@t", "tag", "-a", f"v{__version__}", "-m", "release", cwd=clone)
    for snippet in ("docs/ci/github-actions.yml", "docs/ci/gitlab-ci.yml"):
        text = (ROOT / snippet).read_text()
        (default,) = re.findall(r'GITOPS_GEN: "(git\+\S+@v[0-9.]+)"', text)
        assert default.endswith(f"@v{__version__}"), snippet
        (step,) = [line.strip().lstrip("- ").removeprefix("run: ") for line in text.splitlines()
                   if 'pip install "$GITOPS_GEN"' in line]
        env = {**os.environ, "GITOPS_GEN": f"git+file://{clone}@v{__version__}",
               "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        _run("sh", "-c", step + " --quiet --force-reinstall --no-deps", cwd=tmp_path, env=env)
        assert _run(venv / "bin/gitops-gen", "--version", env=env).strip() == f"gitops-gen, version {__version__}"
