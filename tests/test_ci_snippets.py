"""The shipped pre-commit hook and CI snippets call commands and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import yaml

from generator.cli import main
from generator.review.diff_report import MARKER

ROOT = Path(__file__).parent.parent
SNIPPETS = [ROOT / "docs/ci/github-actions.yml", ROOT / "docs/ci/gitlab-ci.yml"]


def invocations(text: str) -> list[list[str]]:
    """Every `gitops-gen ...` command line in a snippet, up to a redirection or `||`."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():  # shell line continuations joined
        if line.strip().startswith("#") or MARKER in line:
            continue
        match = re.search(r"gitops-gen (check|diff|graph|render)(?=\s|$)[^>|]*", line)
        if match:
            found.append(shlex.split(match.group(0).rstrip("\\ "))[1:])
    return found


def test_pre_commit_hook() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "gitops-gen-check"
    assert hook["entry"] == "gitops-gen check" and hook["pass_filenames"] is False
    assert hook["language"] == "python"
    assert re.search(hook["files"], "environments/prod/env.yaml") and not re.search(hook["files"], "README.md")


def test_snippets_use_real_options() -> None:
    for path in SNIPPETS:
        text = path.read_text()
        yaml.safe_load(text)
        calls = invocations(text)
        assert {c[0] for c in calls} == {"check", "diff"}, path
        for args in calls:
            command = main.commands[args[0]]
            ctx = command.make_context(args[0], [a.replace("$", "") for a in args[1:]], resilient_parsing=False)
            assert isinstance(ctx, click.Context)
            if args[0] == "diff":
                assert ctx.params["fmt"] == "markdown" and ctx.params["against"]


def test_snippets_find_their_comment_by_the_report_marker() -> None:
    for path in SNIPPETS:
        assert MARKER in path.read_text(), path
