"""The editor schemas (generator/schemas/) accept what the tool accepts and reject the same
structural mistakes: every bad_inputs case the tool refuses for an unknown key, a wrong type or
an unknown enum value in gitops-gen.yaml, app.yaml or env.yaml is refused by the schema too."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from generator.schemas import FILES, schema_text

ROOT = Path(__file__).parent.parent
BAD = Path(__file__).parent / "bad_inputs"
# The tool's own shape errors (generator/schema.py type names), not the Kubernetes API check of a patch.
STRUCTURAL = re.compile(r"unknown key|expected (a string|a whole number|true or false|a mapping|a list), got|"
                        r"a ConfigMap value must be|unknown hash style|"
                        r"expected a mapping at the top|release name .* is not valid|belongs to a chart from a repository")


def _validator(file_name: str) -> jsonschema.Draft7Validator:
    schema = json.loads(schema_text(FILES[file_name]))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(path: Path) -> list[str]:
    doc: Any = yaml.safe_load(path.read_text()) or {}
    return [e.message for e in _validator(path.name).iter_errors(doc)]


def _own_files(repo: Path) -> list[Path]:
    return sorted([*repo.glob("gitops-gen.yaml"), *repo.glob("base/*/app.yaml"), *repo.glob("environments/*/env.yaml"),
                   *repo.glob("environments/*/apps/*/app.yaml")])


def test_the_example_and_the_golden_repos_are_valid() -> None:
    files = _own_files(ROOT) + [f for g in (Path(__file__).parent / "golden").rglob("repo") for f in _own_files(g)]
    assert len(files) >= 10
    for path in files:
        assert _errors(path) == [], path


def _cases() -> list[str]:
    found = []
    for case in sorted(BAD.iterdir()):
        expected = case / "expected.txt"
        if expected.is_file():
            first = expected.read_text().splitlines()[0]
            if re.search(r"(gitops-gen|app|env)\.yaml:\d+:", first) and STRUCTURAL.search(expected.read_text()):
                found.append(case.name)
    return found


def test_structural_cases_are_found() -> None:
    assert {"unknown_key_app", "unknown_key_env", "unknown_key_overlay", "unknown_key_repo", "wrong_type_hash_length",
            "wrong_type_literals", "wrong_type_namespace", "hash_style_unknown", "chart_unknown_key"} <= set(_cases())


@pytest.mark.parametrize("case", _cases())
def test_schema_rejects_what_the_tool_rejects(tmp_path: Path, case: str) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(BAD / "_base", repo)
    shutil.copytree(BAD / case / "repo", repo, dirs_exist_ok=True)
    named = repo / (BAD / case / "expected.txt").read_text().split()[1].split(":")[0]  # "error: FILE:LINE: ..."
    assert _errors(named), f"the schema accepts {named.relative_to(repo)} of case {case}"


def test_schema_rejects_more_mistakes() -> None:
    app = _validator("app.yaml")
    assert not app.is_valid({"configMaps": [{"literals": {"a": "1"}}]})  # no name
    assert not app.is_valid({"chart": {"path": "chart", "version": "1.0.0"}})
    assert app.is_valid({"chart": {"repository": "https://x", "name": "redis", "version": "1.2.3"}})
    env = _validator("env.yaml")
    assert not env.is_valid({"apps": {"only": ["a"], "exclude": ["b"]}})
    assert not env.is_valid({"hashLength": 5})
    assert env.is_valid({"configMaps": {"web-config": None}, "hashStyle": "kustomize"})
