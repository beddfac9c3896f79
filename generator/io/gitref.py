"""Read the generator-owned files of a folder as it is at a git ref, without touching the user's
working tree or index: `git rev-parse` resolves the ref, `git ls-tree` lists the folder at that
commit and `git cat-file --batch` reads its blobs into memory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from generator.errors import GitError
from generator.io.output import is_owned


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed", hint="install git, or pass --against an out/ folder") from None


def resolve_commit(root: Path, ref: str) -> str | None:
    """The commit id `ref` names in the git repo around `root`, or None when it names none."""
    if not ref or ref.startswith("-"):
        return None
    proc = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def in_git_repo(root: Path) -> bool:
    return _git(root, "rev-parse", "--is-inside-work-tree").returncode == 0


def read_owned_at(root: Path, commit: str, folder: str) -> dict[str, str] | None:
    """Owned files below `folder` (relative to `root`) at `commit`, by path relative to `folder`;
    None when the folder does not exist at that commit.

    Blobs are read raw (`ls-tree` + `cat-file --batch`), so no export or EOL attributes apply.
    """
    prefix = _git(root, "rev-parse", "--show-prefix").stdout.decode().strip()
    tree = f"{commit}:{prefix}{folder}"
    listing = _git(root, "ls-tree", "-r", "-z", "--full-tree", tree)
    if listing.returncode != 0:
        return None
    entries: list[tuple[str, str]] = []  # (object id, path)
    for record in listing.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid = meta.decode().split()
        if kind == "blob" and mode != "120000":  # symlinks are never generator output
            entries.append((oid, raw_path.decode("utf-8", errors="surrogateescape")))
    owned: dict[str, str] = {}
    for (oid, path), blob in zip(entries, _cat_blobs(root, [oid for oid, _ in entries])):
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if is_owned(text):
            owned[path] = text
    return dict(sorted(owned.items()))


def _cat_blobs(root: Path, oids: list[str]) -> list[bytes]:
    if not oids:
        return []
    proc = subprocess.run(["git", "-C", str(root), "cat-file", "--batch"], input="\n".join(oids).encode() + b"\n",
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise GitError(f"git cat-file failed: {proc.stderr.decode(errors='replace').strip()}")
    blobs: list[bytes] = []
    data, pos = proc.stdout, 0
    for _ in oids:
        end = data.index(b"\n", pos)
        header = data[pos:end].decode().split()
        if len(header) != 3:
            raise GitError(f"git cat-file: unexpected answer {data[pos:end]!r}")
        size = int(header[2])
        blobs.append(data[end + 1 : end + 1 + size])
        pos = end + 1 + size + 1
    return blobs
