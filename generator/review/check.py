"""`check`: is the committed out/ exactly what `render` would write? (the CI gate)

It renders in memory with the very functions `render` uses (`render_many`, then `write.plan`
against the current out/), so the two cannot disagree: any file `render` would write is stale
or missing, any file it would remove is extra. Nothing is written. It also reports allow-list
entries of gitops-gen.yaml that no longer let any scanner finding through.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.hints import unified_diff as _unified_diff
from generator.config import Allowance
from generator.pipeline import Repo, Warn, render_many, save_index
from generator.io.heap import long_lived
from generator.io.write import JOURNAL, Plan, orphaned_envs, out_folder, pending, plan, top_strays, why_gone

OUT = "out"
DEFAULT_DIFF_LINES = 40  # per file
TOTAL_DIFF_LINES = 400  # for the whole report: past it, files are listed without their diff


@dataclass(frozen=True)
class FileProblem:
    """One file of out/ that differs from a fresh render."""

    path: str  # relative to the repo, e.g. "out/prod/engine/deployment-exchange-engine.yaml"
    # "stale" (content differs), "missing" (render would create it), "extra" (render would remove
    # it), "stray" (a temporary file of an interrupted render), "interrupted" (its journal)
    status: str
    diff: tuple[str, ...]  # unified diff lines, at most the limit given
    cut: int  # diff lines left out


@dataclass(frozen=True)
class CheckResult:
    envs: tuple[str, ...]
    problems: tuple[FileProblem, ...]
    unchanged: int
    # Allow-list entries that let no scanner finding through in any environment: stale, and a
    # hole for a credential written there later. Known only when every environment was checked.
    unused_allowances: tuple[Allowance, ...] = ()
    removed_envs: tuple[tuple[str, str], ...] = ()  # (environment, why it is gone): render refuses without --prune-env

    @property
    def ok(self) -> bool:
        return not self.problems and not self.removed_envs and not self.unused_allowances


def bounded_diff(old: str, new: str, old_name: str, new_name: str, limit: int) -> tuple[tuple[str, ...], int]:
    """A unified diff cut to `limit` lines, and how many lines were cut."""
    lines = [
        line.rstrip("\n")
        for line in _unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name, n=2
        )
    ]
    return tuple(lines[:limit]), max(0, len(lines) - limit)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def problems_of(root: Path, todo: Plan, limit: int, total: int = TOTAL_DIFF_LINES) -> list[FileProblem]:
    """Each file of the plan with its diff; `limit` lines per file and `total` in all."""
    found: list[FileProblem] = []
    for path, text in todo.writes.items():
        shown = path.relative_to(root).as_posix()
        exists = path.exists()
        old = _read(path) if exists else ""
        diff, cut = bounded_diff(old, text, f"a/{shown}" if exists else "/dev/null", f"b/{shown}", limit)
        found.append(FileProblem(shown, "stale" if exists else "missing", diff, cut))
    for path in todo.removes:
        shown = path.relative_to(root).as_posix()
        diff, cut = bounded_diff(_read(path), "", f"a/{shown}", "/dev/null", limit)
        found.append(FileProblem(shown, "extra", diff, cut))
    for path in todo.strays:
        found.append(FileProblem(path.relative_to(root).as_posix(), "stray", (), 0))
    budget, bounded = total, []
    for p in sorted(found, key=lambda p: p.path):
        shown_lines = p.diff[: max(0, budget)]
        budget -= len(shown_lines)
        bounded.append(FileProblem(p.path, p.status, shown_lines, p.cut + len(p.diff) - len(shown_lines)))
    return bounded


@long_lived()  # see generator/io/heap.py
def check(repo: Repo, envs: Sequence[str], all_envs: bool, jobs: int | None = None,
          limit: int = DEFAULT_DIFF_LINES, warn: Warn | None = None) -> CheckResult:
    """Compare a fresh render of `envs` with out/. `all_envs`: every environment was selected, so
    env folders of out/ that no environment produces are extra (as `render` removes them)."""
    out = out_folder(repo.root)
    interrupted = [FileProblem(f"{OUT}/{JOURNAL}", "interrupted", (), 0)] if pending(out) else []
    rendered = render_many(repo, envs, jobs, warn)
    removed = orphaned_envs(out, repo.envs) if all_envs else []
    todo = plan(out, rendered, removed)
    todo.strays += top_strays(out)
    unused = tuple(a for a in repo.config.allow if a.key not in rendered.allowed) if all_envs else ()
    result = CheckResult(tuple(envs), tuple(interrupted + problems_of(repo.root, todo, limit)), todo.unchanged,
                       removed_envs=tuple((env, why_gone(repo.root, env)) for env in removed), unused_allowances=unused)
    if result.ok:
        save_index(repo, rendered, envs, todo)  # out/ is current: the next check of an unchanged repo is instant
    return result


def fix_command(program: str, repo_arg: str | None, env_args: Sequence[str], prune: Sequence[str] = ()) -> str:
    """The command that makes out/ current again, spelled with the options the user gave
    (`prune`: removed environments, deleted only when named)."""
    words = [*shlex.split(program), "render"]
    if repo_arg is not None:
        words += ["--repo", repo_arg]
    for env in env_args:
        words += ["--env", env]
    for env in prune:
        words += ["--prune-env", env]
    return shlex.join(words)


def program_name(click_name: str | None) -> str:
    """How the user ran us: `gitops-gen`, or `python3 -m generator` with the interpreter's own name."""
    if click_name is None or click_name.startswith("python"):
        return f"{os.path.basename(sys.executable) or 'python3'} -m generator"
    return click_name
