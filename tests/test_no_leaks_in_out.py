"""The committed output of the repo itself holds no credential: every file of every out/<env>/
goes through the same detector the render uses (generator.secrets.scan)."""

from __future__ import annotations

from pathlib import Path

import yaml

from generator.secrets.scan import scan_object, shape_findings

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out"


def test_every_environment_has_committed_output() -> None:
    envs = sorted(p.parent.name for p in (ROOT / "environments").glob("*/env.yaml"))
    assert envs, "the example has no environments"
    missing = [env for env in envs if not (OUT / env / "kustomization.yaml").is_file()]
    assert not missing, f"out/ is not rendered for {missing}: run `python3 -m generator render`"


def test_no_committed_file_holds_a_credential() -> None:
    files = sorted(p for p in OUT.glob("*/**/*") if p.is_file())
    assert files, "out/ holds no rendered files: run `python3 -m generator render`"
    leaks: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        shown = path.relative_to(ROOT).as_posix()
        # The raw text too, so comments and anything YAML parsing hides are covered.
        leaks += [f"{shown}:{f.line}: {f.reason}" for f in shape_findings(text)]
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict):
                leaks += [f"{shown}: {field}: {f.reason}" for field, f in scan_object(doc)]
    assert not leaks, "\n".join(leaks)
