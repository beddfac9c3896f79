"""What `diff` compares a fresh render with: the repo's out/ (default), another out/ folder, or
out/ at a git ref. Always the generator-owned files only, split by environment folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.errors import GitError
from generator.io.gitref import in_git_repo, read_owned_at, resolve_commit
from generator.io.write import read_owned

OUT = "out"


@dataclass(frozen=True)
class Baseline:
    label: str  # how the report names it: "out/", the folder as given, or "main (3f2a9c1)"
    shown: str  # prefix for file names in error messages
    files: dict[str, dict[str, str]]  # env -> path relative to out/<env>/ -> text


def by_env(owned: Mapping[str, str], envs: Sequence[str] | None) -> dict[str, dict[str, str]]:
    """Split out/-relative paths by their env folder; `envs` None keeps every env folder."""
    split: dict[str, dict[str, str]] = {}
    for path, text in owned.items():
        env, sep, rest = path.partition("/")
        if sep and (envs is None or env in envs):
            split.setdefault(env, {})[rest] = text
    for env in envs or ():
        split.setdefault(env, {})
    return split


def out_folder(given: Path) -> Path:
    """A folder named on the command line: an out/ folder, or a repo (then its out/)."""
    if (given / OUT).is_dir() and ((given / "base").is_dir() or (given / "environments").is_dir()):
        return given / OUT
    return given


def baseline(root: Path, against: str | None, envs: Sequence[str] | None) -> Baseline:
    """The old side. `envs` None: every env folder found (a deleted environment shows as removed)."""
    if against is None:
        return Baseline(f"{OUT}/", OUT, by_env(read_owned(root / OUT), envs))
    folder = Path(against)
    if folder.is_dir():
        return Baseline(against, against.rstrip("/"), by_env(read_owned(out_folder(folder)), envs))
    if not in_git_repo(root):
        raise GitError(
            f"--against {against!r} is not a folder, and {root} is not in a git repository",
            hint="pass an out/ folder (or a repo holding one), or run inside a git checkout to use a ref",
        )
    commit = resolve_commit(root, against)
    if commit is None:
        raise GitError(
            f"--against {against!r} is neither a folder nor a git ref of this repository",
            hint="use a branch, tag or commit (e.g. origin/main, HEAD~1) or an out/ folder; "
            "in CI, fetch the base branch first (git fetch origin main)",
        )
    owned = read_owned_at(root, commit, OUT) or {}
    return Baseline(f"{against} ({commit[:10]})", f"{against}:{OUT}", by_env(owned, envs))
