"""Golden tests of `diff` in its three formats, over scripted changes to a small example repo.

The repo is tests/golden/diff/repo (two environments, a templated image tag, a multi-line file,
a binary file, an external Secret). Each case copies it, renders it into out/, applies one
scripted change to the sources and runs `diff` against the committed out/. The expected output
is in tests/golden/diff/<case>/{text.txt,markdown.md,json.json}.

Regenerate the goldens after an intended change of the report with:

    GITOPS_GEN_UPDATE_GOLDENS=1 python3 -m pytest tests/test_diff_golden.py

and review the result with `git diff tests/golden/diff`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import run as cli

GOLDEN = Path(__file__).parent / "golden" / "diff"
UPDATE = os.environ.get("GITOPS_GEN_UPDATE_GOLDENS") == "1"
FORMATS = {"text": "text.txt", "markdown": "markdown.md", "json": "json.json"}



def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def value_change(repo: Path) -> None:
    edit(repo / "base/web/app.yaml", "greeting: hello", 'greeting: "hello, world"')


def keys_added_removed(repo: Path) -> None:
    edit(repo / "base/web/app.yaml", '      legacy_mode: "off"\n', '      feature_flags: "search,checkout"\n')


def image_bump(repo: Path) -> None:
    edit(repo / "base/web/app.yaml", 'web_tag: "1.0.0"', 'web_tag: "1.1.0"')


def env_only(repo: Path) -> None:
    edit(repo / "environments/prod/env.yaml", "replicas: 4", "replicas: 6")
    with open(repo / "environments/prod/env.yaml", "a") as handle:
        handle.write('configMaps:\n  worker-config:\n    literals: {CONCURRENCY: "16"}\n')


def file_and_binary(repo: Path) -> None:
    edit(repo / "base/web/nginx.conf", "worker_connections 512;", "worker_connections 1024;\n    multi_accept on;")
    (repo / "base/web/logo.bin").write_bytes(bytes(range(200, 256)) * 5)


def no_op(repo: Path) -> None:
    # Reformatting a source (a comment, flow vs block style) changes no object.
    path = repo / "base/web/service.yaml"
    path.write_text("# The web Service.\n" + path.read_text().replace(
        "    - {name: http, port: 80, targetPort: 8080}", "    - name: http\n      port: 80\n      targetPort: 8080"))


def selector_change(repo: Path) -> None:
    # A new selector label: the API server refuses the update (apps/v1 selectors are immutable).
    path = repo / "base/web/deployment.yaml.j2"
    edit(path, "    matchLabels: {app: web}", "    matchLabels: {app: web, tier: front}")
    edit(path, "      labels: {app: web}\n    spec:", "      labels: {app: web, tier: front}\n    spec:")


def mutable_configmap(repo: Path) -> None:
    # worker-config made mutable (rendered so out/ has it), then a value changes in place: the
    # worker reads it through envFrom, so it sees the change only at its next restart.
    edit(repo / "base/worker/app.yaml", "  - name: worker-config\n", "  - name: worker-config\n    hash: false\n")
    result = cli("render", "--repo", repo, "-j", "1")
    assert result.exit_code == 0 and "warning: base/worker/deployment.yaml:" in result.stderr, result.output
    edit(repo / "base/worker/app.yaml", 'CONCURRENCY: "4"', 'CONCURRENCY: "8"')


CASES: dict[str, Callable[[Path], None]] = {
    "value-change": value_change,
    "keys-added-removed": keys_added_removed,
    "image-bump": image_bump,
    "env-only": env_only,
    "file-and-binary": file_and_binary,
    "no-op": no_op,
    "selector-change": selector_change,
    "mutable-configmap": mutable_configmap,
}


@pytest.fixture
def rendered_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(GOLDEN / "repo", repo)
    result = cli("render", "--repo", repo, "-j", "1")
    assert result.exit_code == 0, result.output
    return repo


def compare(actual: str, golden: Path) -> None:
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
    assert golden.exists(), f"missing golden {golden}; run with GITOPS_GEN_UPDATE_GOLDENS=1"
    assert actual == golden.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_diff_golden(case: str, rendered_repo: Path) -> None:
    CASES[case](rendered_repo)
    for fmt, file_name in FORMATS.items():
        result = cli("diff", "--repo", rendered_repo, "--format", fmt, "-j", "1")
        assert result.exit_code == (0 if case == "no-op" else 3), result.output
        out = result.stdout
        assert str(rendered_repo.parent) not in out  # no temp paths in goldens
        assert "\x1b[" not in out  # no colour off a terminal
        compare(out, GOLDEN / case / file_name)
        if fmt == "json":
            assert json.loads(out)["changed"] is (case != "no-op")


def test_diff_is_deterministic(rendered_repo: Path) -> None:
    value_change(rendered_repo)
    image_bump(rendered_repo)
    runs = {cli("diff", "--repo", rendered_repo, "--format", "json").stdout for _ in range(3)}
    assert len(runs) == 1


def test_goldens_cover_every_case() -> None:
    cases = {p.name for p in GOLDEN.iterdir() if p.is_dir() and p.name != "repo"}
    assert cases == set(CASES)
    for case in cases:
        assert {p.name for p in (GOLDEN / case).iterdir()} == set(FORMATS.values())


def test_markdown_golden_is_a_table_with_details() -> None:
    text = (GOLDEN / "value-change" / "markdown.md").read_text()
    assert text.startswith("<!-- gitops-gen diff -->\n")
    assert "| Environment | Change | Object | Details |" in text
    assert re.search(r"<details><summary>.*</summary>\n\n```diff\n", text)
