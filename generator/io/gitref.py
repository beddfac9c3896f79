"""Read the generator-owned files of a folder as it is at a git ref, without touching the user's
working tree or index: `git rev-parse` resolves the ref, `git ls-tree` lists the folder at that
commit and `git cat-file --batch` reads its blobs into memory. `committed` gives retention the
history that git keeps when the working tree lost it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
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


# Files that git leaves in its folder while a merge, revert or cherry-pick waits for conflicts
# to be resolved.
_IN_PROGRESS = ("MERGE_HEAD", "REVERT_HEAD", "CHERRY_PICK_HEAD")


@dataclass(frozen=True)
class Committed:
    """One folder of out/ as git holds it: for each wanted file, the blob of the first commit
    that has it (HEAD, then MERGE_HEAD while a merge is in progress), and the paths that a
    merge, revert or cherry-pick left unmerged in the working tree."""

    root: Path
    blobs: dict[str, tuple[str, str]]  # path relative to the folder -> (commit label, blob id)
    unmerged: frozenset[str]

    def texts(self, paths: list[str]) -> dict[str, tuple[str, str]]:
        """path -> (commit label, text) for those of `paths` git has (UTF-8 text only)."""
        wanted = [p for p in paths if p in self.blobs]
        found: dict[str, tuple[str, str]] = {}
        for path, blob in zip(wanted, _cat_blobs(self.root, [self.blobs[p][1] for p in wanted])):
            try:
                found[path] = (self.blobs[path][0], blob.decode("utf-8"))
            except UnicodeDecodeError:
                continue
        return found


def _note_git_state(state: Path) -> None:
    """What git's answers depend on are inputs of the render (generator/io/index.py): HEAD and the
    ref it names, packed refs, the index (unmerged paths) and the files of a merge, revert or
    cherry-pick in progress. A commit, a checkout or a conflict then makes the index miss."""
    from generator.io import index

    names = ["HEAD", "packed-refs", "index", *_IN_PROGRESS]
    try:
        head = (state / "HEAD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        head = ""
    if head.startswith("ref: "):
        names.append(head[5:].strip())
    for name in names:
        index.note(state / name)


def committed(root: Path, folder: str, wanted: Callable[[str], bool]) -> Committed | None:
    """The files of `folder` (relative to `root`) that `wanted` accepts, as git has them; None
    outside a git repo or without git."""
    try:
        proc = _git(root, "rev-parse", "--show-prefix", "--git-dir")
    except GitError:
        return None
    if proc.returncode != 0:
        return None
    prefix, git_dir = (proc.stdout.decode().split("\n") + ["", ""])[:2]
    state = root / git_dir
    _note_git_state(state)
    commits = ["HEAD"] + (["MERGE_HEAD"] if (state / "MERGE_HEAD").exists() else [])
    blobs: dict[str, tuple[str, str]] = {}
    for commit in commits:
        listing = _git(root, "ls-tree", "-r", "-z", "--full-tree", f"{commit}:{prefix}{folder}")
        if listing.returncode != 0:
            continue  # no such commit yet, or no such folder in it
        for record in listing.stdout.split(b"\0"):
            meta, _, raw_path = record.partition(b"\t")
            if not record or meta.split()[0] == b"120000":
                continue
            path = raw_path.decode("utf-8", errors="surrogateescape")
            if wanted(path):
                blobs.setdefault(path, (commit, meta.split()[2].decode()))
    unmerged: set[str] = set()
    if any((state / name).exists() for name in _IN_PROGRESS):
        files = _git(root, "ls-files", "-u", "-z", "--", folder)
        for record in files.stdout.split(b"\0"):
            path = record.partition(b"\t")[2].decode("utf-8", errors="surrogateescape")
            if path.startswith(folder + "/"):
                unmerged.add(path[len(folder) + 1:])
    return Committed(root, blobs, frozenset(unmerged))
