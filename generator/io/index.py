"""Incremental renders: the render index of an environment.

A render records every path of the repo it looked at (`note`): each file it read or probed
(`gitops-gen.yaml`, `env.yaml`, `app.yaml`, manifests, patches, data files, template includes,
a symlink and its target), each folder it listed, and every folder between those and the repo's
top; a path that was missing is recorded as missing. `generator/io/inputs.py` is the choke point
every read goes through, and the few folder listings note their folder.

Once `out/<env>/` holds exactly what the render produced (`render` wrote it, or `check` found it
current), the environment's index is saved: each of those paths with its identity (type, inode,
size, mtime and ctime in ns; a symlink's target's too), the same for every file and folder of
`out/<env>/` and for `out/` itself (as the writer listed and changed them: `save`), and what the render reported (its warnings as printed, its file
count, the allow-list entries that let a scanner finding through). A later `render` or `check`
whose every identity is unchanged has nothing to do: `out/<env>/` is already what it would
produce (the render is a fixed point: rendering onto its own output gives that output back,
retained versions included), and it prints the stored report without importing the render.

Why identities are enough: a write, rename, `git checkout` or `touch` changes a file's ctime,
which no program can set back, and adding, removing or renaming an entry changes its folder's
mtime and ctime. The one blind spot is the timestamp's granularity: an edit in the same clock
tick as the render read the file could keep every field equal. So, as git does for its index,
an index is not saved when any input changed less than `RACY_NS` before the render started
(then the next render simply does the full work and saves it). The generator's own source files
and the folders of `sys.path` (installed packages: PyYAML, Jinja2, the Kubernetes schemas) are
part of the stamp, so a new version of either is a miss.

Environments with Helm charts are not indexed (Helm and its chart cache are inputs outside the
repo). The index lives beside the parse memo and is authenticated like it (generator/io/memo.py):
a missing, corrupt, foreign or planted index is a miss, and a miss is a full render, never a
wrong one. This module imports nothing of the render: a no-change run stays fast to start.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import __version__
from generator.io import memo

INDEX_FORMAT = 1
# An input whose mtime or ctime is this close to the render's start (or later) may have changed
# in the same clock tick as it was read: the index is not saved (git's "racily clean" rule).
# Generous against coarse file-system clocks (FAT, some network file systems: 1-2 s).
RACY_NS = 2_000_000_000
_ST = memo.STAT  # mode, inode, size, mtime_ns, ctime_ns


def _pack(st: os.stat_result) -> bytes:
    return memo.stat_of(st)


def identity(path: str) -> bytes:
    """What a path is right now: its lstat, then its target's stat for a symlink ("!" when the
    target cannot be reached); empty when nothing is there."""
    try:
        st = os.lstat(path)
    except OSError:
        return b""
    found = _pack(st)
    if stat.S_ISLNK(st.st_mode):
        try:
            found += _pack(os.stat(path))
        except OSError:
            found += b"!"
    return found


def _newest_ns(ident: bytes) -> int:
    """The latest mtime or ctime in an identity (0 for a missing path)."""
    newest = 0
    for at in range(0, len(ident) - _ST.size + 1, _ST.size):
        _, _, _, mtime, ctime = _ST.unpack_from(ident, at)
        newest = max(newest, mtime, ctime)
    return newest


@dataclass
class Reads:
    """The paths one process's renders looked at since the repo was opened (sent back by
    forked workers, so it is plain data)."""

    root: str
    start_ns: int
    paths: set[str] = field(default_factory=set)
    unindexable: str = ""  # why nothing may be indexed (charts), or ""


_reads: Reads | None = None


def start(root: Path) -> None:
    """A repo was opened: record from now on (every earlier record is dropped)."""
    global _reads
    _reads = Reads(str(root), time.time_ns())


def note(path: Path | str) -> None:
    """The render looked at `path` (read, probed or listed it): it and the folders between it
    and the repo's top are inputs."""
    reads = _reads
    if reads is None:
        return
    text = str(path)
    paths = reads.paths
    if text in paths:
        return
    paths.add(text)
    top = reads.root + os.sep
    folder = os.path.dirname(text)
    while folder.startswith(top) and folder not in paths:
        paths.add(folder)
        folder = os.path.dirname(folder)


def unindexable(reason: str) -> None:
    """Nothing rendered in this process may be indexed (say why, for tests and debugging)."""
    if _reads is not None:
        _reads.unindexable = reason


def recorded() -> Reads | None:
    return _reads


def merge(other: Reads | None) -> None:
    """Add what a forked worker recorded."""
    if _reads is None or other is None:
        return
    _reads.paths |= other.paths
    _reads.unindexable = _reads.unindexable or other.unindexable


# --- the stamp: the code and packages that produced an index ---------------------------------

_code: str | None = None


def _code_digest() -> str:
    """The generator's source files and the installed packages' folders, by identity."""
    global _code
    if _code is None:
        digest = hashlib.sha256()
        package = Path(__file__).resolve().parent.parent
        for folder, dirs, files in os.walk(package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py") or name.endswith(".json"):
                    path = os.path.join(folder, name)
                    digest.update(path.encode() + b"\0" + identity(path))
        # Installed packages (not the current folder, often the repo itself, that `python -m` adds).
        prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
        for entry in sorted({e for e in sys.path if e.startswith(prefixes)}):
            digest.update(entry.encode() + b"\0" + identity(entry))
        _code = digest.hexdigest()
    return _code


def _stamp() -> tuple[Any, ...]:
    return ("index", INDEX_FORMAT, memo.FORMAT, __version__, sys.version, _code_digest())


def _index_file(root: Path, env: str) -> Path | None:
    return memo._memo_file(root, f"{env}.index", True)


# --- out/<env>/ ------------------------------------------------------------------------------


def _out_paths(root: Path, env: str) -> list[str]:
    """out/, out/<env>/ and every folder and file below it."""
    out = os.path.join(str(root), "out")
    folder = os.path.join(out, env)
    found = [out, folder]
    for dirpath, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(dirpath, d) for d in dirs]
        found += [os.path.join(dirpath, f) for f in sorted(files)]
    return found


# --- saving and looking up -------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What a render of one environment reported, as data."""

    files: int  # files of out/<env>/
    warnings: tuple[str, ...]  # as printed
    allowed: tuple[str, ...]  # allow-list keys (JSON) that let a finding through here
    allow_keys: tuple[str, ...]  # every allow-list key of gitops-gen.yaml (JSON)
    envs: tuple[str, ...]  # every environment of the repo at the time
    no_orphans: bool  # out/ held no folder of an environment that no longer exists
    paths: tuple[str, ...] = ()  # the files of out/<env>/ in the order the render gave them (--stdout)


def save(root: Path, env: str, reads: Reads, report: Report,
         outputs: Iterable[tuple[str, memo.Stat | None]] | None = None) -> bool:
    """Save the index of `env` (out/<env>/ holds exactly what the render produced). Returns
    whether it was saved: not when indexing is off, the render had charts, or an input is racy.

    `outputs`: out/, out/<env>/ and every folder and file below it, as the writer knows them
    (generator/io/write.py `Plan.out_paths`: listed before writing, plus what it wrote, minus
    what it removed), each with the lstat the writer took right after writing it, or None; else
    out/<env>/ is walked. Taking a folder's identity now covers its listing: adding, removing or
    renaming an entry changes the folder's mtime and ctime; and a file's identity taken right
    after it was written covers its text, as the output memo's does."""
    path = _index_file(root, env)
    if path is None or reads.unindexable or reads.root != str(root):
        return False
    inputs: dict[str, str] = {}
    limit = reads.start_ns - RACY_NS
    for p in sorted(reads.paths):
        ident = identity(p)
        if _newest_ns(ident) >= limit:
            return False  # changed too close to the render: it may have changed unseen
        inputs[p] = ident.hex()
    # out/ was written by this command: its identities are taken now, as the output memo does.
    if outputs is None:
        outputs = [(p, None) for p in _out_paths(root, env)]
    known = {p: (identity(p) if st is None else st).hex() for p, st in outputs}
    body = {
        "inputs": inputs, "outputs": known, "files": report.files, "warnings": list(report.warnings),
        "allowed": list(report.allowed), "allow_keys": list(report.allow_keys), "envs": list(report.envs),
        "no_orphans": report.no_orphans, "paths": list(report.paths),
    }
    memo.store_entry(path, _stamp(), env.encode(), json.dumps(body, separators=(",", ":")).encode())
    return True


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _unchanged(entries: Any) -> bool:
    if not isinstance(entries, dict):
        return False
    for p, ident in entries.items():
        if not isinstance(ident, str) or identity(p).hex() != ident:
            return False
    return True


def lookup(root: Path, env: str) -> Report | None:
    """The stored report of `env` when nothing its last render looked at has changed and
    out/<env>/ is as that render left it; else None (do the full render)."""
    path = _index_file(root, env)
    if path is None:
        return None
    blob = memo.load_entry(path, _stamp(), env.encode())
    if blob is None:
        return None
    try:
        body = json.loads(blob)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    warnings, allowed, keys, envs, paths = (
        _strings(body.get(k)) for k in ("warnings", "allowed", "allow_keys", "envs", "paths"))
    files, no_orphans = body.get("files"), body.get("no_orphans")
    if warnings is None or allowed is None or keys is None or envs is None or paths is None:
        return None
    if not isinstance(files, int) or not isinstance(no_orphans, bool) or len(paths) != files:
        return None
    if not _unchanged(body.get("inputs")) or not _unchanged(body.get("outputs")):
        return None
    return Report(files, warnings, allowed, keys, envs, no_orphans, paths)


def lookup_all(root: Path, wanted: Sequence[str]) -> dict[str, Report] | None:
    """The stored reports of the environments a command selects (`wanted`, or every
    environment when empty), or None unless every one of them is unchanged."""
    if wanted:
        names: Iterable[str] = sorted(set(wanted))
    else:
        try:
            listed = sorted(os.listdir(root / "environments"))
        except OSError:
            return None
        first = next((r for r in (lookup(root, n) for n in listed if n and not n.startswith(".")) if r is not None), None)
        if first is None:
            return None
        names = first.envs
    found: dict[str, Report] = {}
    for name in names:
        report = lookup(root, name)
        if report is None or name not in report.envs or (not wanted and report.envs != tuple(names)):
            return None
        if not wanted and not report.no_orphans:
            return None  # render would remove a retired environment's folder, check report it
        found[name] = report
    return found or None


def unused_allowances(reports: Mapping[str, Report]) -> bool:
    """Whether some allow-list entry lets no finding through in any of these environments."""
    used = set().union(*(r.allowed for r in reports.values()))
    return any(key not in used for r in reports.values() for key in r.allow_keys)
