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
an input that changed less than `RACY_NS` before the render started is saved as `RACY`, which
never matches: the next render takes it as changed (renders its app again, or the whole
environment for an input of the environment) and saves the index anew. The generator's own source files
and the folders of `sys.path` (installed packages: PyYAML, Jinja2, the Kubernetes schemas) are
part of the stamp, so a new version of either is a miss.

Environments with Helm charts are not indexed (Helm and its chart cache are inputs outside the
repo). The index lives beside the parse memo and is authenticated like it (generator/io/memo.py):
a missing, corrupt, foreign or planted index is a miss, and a miss is a full render, never a
wrong one. This module imports nothing of the render: a no-change run stays fast to start.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import __version__
from generator.io import memo
from generator.steps.hashing import sha256

INDEX_FORMAT = 2  # 2: paths relative to the repo, per-app facts (incremental renders)
# An input whose mtime or ctime is this close to the render's start (or later) may have changed
# in the same clock tick as it was read: the index is not saved (git's "racily clean" rule).
# Generous against coarse file-system clocks (FAT, some network file systems: 1-2 s).
RACY_NS = 2_000_000_000
RACY = "racy"  # the stored identity of such an input: never equal to a path's identity
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
    # path -> the one app whose loading looked at it (SHARED: several apps did). A path looked at
    # only outside any app is not here. Decides which paths belong to one app (see `owners`).
    scoped: dict[str, str] = field(default_factory=dict)


SHARED = "\0"
_reads: Reads | None = None
_scope: str | None = None  # the app being loaded, if any


@contextmanager
def app_scope(app: str) -> Iterator[None]:
    """What is looked at inside this block is looked at for `app` (its folders, data files)."""
    global _scope
    before, _scope = _scope, app
    try:
        yield
    finally:
        _scope = before


def start(root: Path) -> None:
    """A repo was opened: record from now on (every earlier record is dropped)."""
    global _reads, _scope
    _reads = Reads(str(root), time.time_ns())
    _scope = None


def note(path: Path | str) -> None:
    """The render looked at `path` (read, probed or listed it): it and the folders between it
    and the repo's top are inputs."""
    reads = _reads
    if reads is None:
        return
    text = str(path)
    paths = reads.paths
    scope = _scope
    if text in paths:
        if scope is not None and reads.scoped.get(text) != scope:
            _claim(reads, text, scope)
        return
    paths.add(text)
    top = reads.root + os.sep
    folder = os.path.dirname(text)
    while folder.startswith(top) and folder not in paths:
        paths.add(folder)
        folder = os.path.dirname(folder)
    if scope is not None:
        _claim(reads, text, scope)


def _claim(reads: Reads, text: str, scope: str) -> None:
    """`text` and the folders above it were looked at for app `scope`."""
    top = reads.root + os.sep
    scoped = reads.scoped
    while text.startswith(top):
        found = scoped.get(text)
        if found == scope or found == SHARED:
            break
        scoped[text] = scope if found is None else SHARED
        text = os.path.dirname(text)


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
    for text, scope in other.scoped.items():
        found = _reads.scoped.get(text)
        if found is None:
            _reads.scoped[text] = scope
        elif found != scope:
            _reads.scoped[text] = SHARED


def owners(reads: Reads, env: str) -> dict[str, str]:
    """The paths that belong to exactly one app of `env`: looked at while loading that app and
    no other, and inside its own folders (base/<app>/, environments/<env>/apps/<app>/). Every
    other input (settings, env.yaml, patches, template includes, a data file shared through a
    symlink, the folders listing the apps) belongs to the whole environment: a change there
    renders all of it again, a change to an app's own paths only that app (generator/incremental.py)."""
    root = reads.root
    return {text: app for text, app in reads.scoped.items()
            if app != SHARED and text.startswith(root + os.sep) and folder_app(_rel(root, text), env) == app}


# --- the stamp: the code and packages that produced an index ---------------------------------

_code: str | None = None


def _code_digest() -> str:
    """The generator's source files and the installed packages' folders, by identity."""
    global _code
    if _code is None:
        digest = sha256()
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


@dataclass
class Apps:
    """What an index keeps per app for incremental renders (generator/incremental.py): each
    app's facts (JSON data), the app each patch of the environment changed, the apps in order;
    for an incremental render, the index it started from and the apps it rendered."""

    facts: dict[str, Any]
    patch_apps: list[str | None]
    order: list[str]
    previous: dict[str, Any] | None = None
    rendered: frozenset[str] = frozenset()


def _rel(root: str, path: str) -> str:
    """`path` as the index stores it: relative to the repo's top (git's folder may be above it)."""
    return path[len(root) + 1:] if path.startswith(root + os.sep) else os.path.relpath(path, root)


def folder_app(rel: str, env: str) -> str | None:
    """The app whose own folder holds `rel` (base/<app>/..., environments/<env>/apps/<app>/...)."""
    parts = rel.split(os.sep, 4)
    if len(parts) >= 2 and parts[0] == "base":
        return parts[1]
    if len(parts) >= 4 and parts[0] == "environments" and parts[1] == env and parts[2] == "apps":
        return parts[3]
    return None


def save(root: Path, env: str, reads: Reads, report: Report,
         outputs: Iterable[tuple[str, memo.Stat | None]] | None = None, apps: Apps | None = None) -> bool:
    """Save the index of `env` (out/<env>/ holds exactly what the render produced). Returns
    whether it was saved: not when indexing is off or the render had charts.

    `outputs`: out/, out/<env>/ and every folder and file below it, as the writer knows them
    (generator/io/write.py `Plan.out_paths`: listed before writing, plus what it wrote, minus
    what it removed), each with the lstat the writer took right after writing it, or None; else
    out/<env>/ is walked. Taking a folder's identity now covers its listing: adding, removing or
    renaming an entry changes the folder's mtime and ctime; and a file's identity taken right
    after it was written covers its text, as the output memo's does. After an incremental
    render, the other apps' out/ entries are kept from the index it started from.

    Paths are stored relative to the repo's top; which app an input belongs to follows from its
    path (`folder_app`), except for the paths in an app's folder that belong to the whole
    environment (read for another app too, or outside any app's loading), listed as `shared`."""
    path = _index_file(root, env)
    top = str(root)
    if path is None or reads.unindexable or reads.root != top:
        return False
    previous = apps.previous if apps is not None else None
    if apps is not None and apps.rendered and previous is None:
        return False  # rendered incrementally from memory (watch): the others' inputs are not known here
    limit = reads.start_ns - RACY_NS
    owned = owners(reads, env)
    inputs: dict[str, str] = {}
    shared: set[str] = set()
    for p in sorted(reads.paths):
        ident = identity(p)
        rel = _rel(top, p)
        # Changed too close to the render, it may have changed unseen: taken as changed next time.
        inputs[rel] = RACY if _newest_ns(ident) >= limit else ident.hex()
        if folder_app(rel, env) is not None and p not in owned:
            shared.add(rel)
    if previous is not None:
        # Everything the last render looked at but this one did not (the other apps' inputs,
        # the environment's inputs only they read) was found unchanged when this render
        # started; out/<env>/ holds the other apps' files as before.
        rendered = apps.rendered  # type: ignore[union-attr]
        before_shared = set(previous["shared"])
        for rel, ident in previous["inputs"].items():
            if rel in inputs:
                continue
            app = None if rel in before_shared else folder_app(rel, env)
            if app is None or app not in rendered:
                inputs[rel] = ident
                if rel in before_shared:
                    shared.add(rel)
        known = _out_after(root, env, previous["outputs"], rendered)
    else:
        # out/ was written by this command: its identities are taken now, as the output memo does.
        if outputs is None:
            outputs = [(p, None) for p in _out_paths(root, env)]
        known = {_rel(top, p): (identity(p) if st is None else st).hex() for p, st in outputs}
    body = {
        "inputs": inputs, "outputs": known, "files": report.files, "warnings": list(report.warnings),
        "allowed": list(report.allowed), "allow_keys": list(report.allow_keys), "envs": list(report.envs),
        "no_orphans": report.no_orphans, "paths": list(report.paths), "shared": sorted(shared),
        "apps": apps.facts if apps is not None else None, "patch_apps": apps.patch_apps if apps is not None else None,
        "order": apps.order if apps is not None else None,
    }
    pieces = _json_pieces(body)
    del body, inputs, known  # (megabytes at 1,000 apps: freed before they are written)
    memo.store_entry(path, _stamp(), env.encode(), pieces)
    return True


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_GROUP = 128  # entries of a large mapping encoded at a time (see `_json_pieces`)


def _json_pieces(body: Mapping[str, Any]) -> list[bytes]:
    """`json.dumps(body, separators=(",", ":")).encode()` in pieces: a large mapping in the body
    is encoded `_GROUP` entries at a time. In one call, Python 3.11's encoder keeps an object
    per token until the text is done, several times the text's size (the index of 1,000 apps
    is 2 MB of JSON); here only a group's are alive at once, and no text of it all is made."""
    pieces = [b"{"]
    for i, (key, value) in enumerate(body.items()):
        head = ("," if i else "") + _ENCODE(key) + ":"
        if isinstance(value, dict) and len(value) > _GROUP:
            items = list(value.items())
            pieces.append((head + "{").encode())
            for at in range(0, len(items), _GROUP):
                pieces.append((("," if at else "") + _ENCODE(dict(items[at : at + _GROUP]))[1:-1]).encode())
            pieces.append(b"}")
        else:
            pieces.append((head + _ENCODE(value)).encode())
    pieces.append(b"}")
    return pieces


def stored_inputs(root: str, env: str, body: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    """The inputs an index holds, as paths, with the app each belongs to (None: the environment)."""
    shared = set(body["shared"])
    for rel in body["inputs"]:
        yield os.path.join(root, rel), None if rel in shared else folder_app(rel, env)


def _out_after(root: Path, env: str, before: Mapping[str, str], rendered: frozenset[str]) -> dict[str, str]:
    """The identities of out/<env>/ after an incremental render of the apps `rendered`: the
    others' files and folders as they were, the rendered apps' folders and the top taken now."""
    top = str(root)
    folder = os.path.join("out", env)
    changed = [os.path.join(folder, a) for a in rendered]
    below = tuple(c + os.sep for c in changed)
    gone = set(changed)
    found = {p: ident for p, ident in before.items()
             if p not in gone and not p.startswith(below)
             and (os.path.dirname(p) != folder or os.path.lexists(os.path.join(top, p)))}
    found["out"] = identity(os.path.join(top, "out")).hex()
    found[folder] = identity(os.path.join(top, folder)).hex()
    with os.scandir(os.path.join(top, folder)) as listing:
        for entry in listing:
            if not entry.is_dir(follow_symlinks=False) or entry.name in rendered:
                found[_rel(top, entry.path)] = identity(entry.path).hex()
    for c in changed:
        for dirpath, _, files in os.walk(os.path.join(top, c)):
            found[_rel(top, dirpath)] = identity(dirpath).hex()
            found.update({_rel(top, os.path.join(dirpath, f)): identity(os.path.join(dirpath, f)).hex() for f in files})
    return found


def has_apps(root: Path, env: str) -> bool:
    """Whether `env` has an index an incremental render can start from (not whether it may)."""
    body = _body(root, env)
    return body is not None and isinstance(body.get("apps"), dict)


def previous(root: Path, env: str) -> tuple[dict[str, Any], set[str]] | None:
    """The stored index of `env` and the apps whose own inputs changed since, when out/<env>/
    is as that render left it and nothing else it looked at changed (then the environment can be
    rendered incrementally); else None."""
    try:
        return _changes(root, env)
    finally:
        _seen.clear()  # the render that follows changes out/ (and watch renders again later)


def _changes(root: Path, env: str) -> tuple[dict[str, Any], set[str]] | None:
    body = _body(root, env)
    if body is None or not isinstance(body.get("apps"), dict):
        return None
    inputs, shared = body.get("inputs"), body.get("shared")
    if not isinstance(inputs, dict) or not isinstance(shared, list) or not _unchanged(root, body.get("outputs")):
        return None
    top = str(root)
    shared_set = set(shared)
    changed: set[str] = set()
    for rel, ident in inputs.items():
        if not isinstance(ident, str) or _now(os.path.join(top, rel)) != ident:
            app = None if rel in shared_set else folder_app(rel, env)
            if app is None:
                return None  # an input of the whole environment changed
            changed.add(app)
    return body, changed


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


# Identities taken by this command (hex), so `previous` does not take them again after `lookup`:
# a path changed in between is no different from one changed while the render runs.
_seen: dict[str, str] = {}
_commands = 0


def forget() -> None:
    """A command starts: identities taken by an earlier command of this process are out of date
    (the first command keeps those its early answer took: generator/start.py)."""
    global _commands
    if _commands:
        _seen.clear()
    _commands += 1


def _now(path: str) -> str:
    found = _seen.get(path)
    if found is None:
        found = _seen[path] = identity(path).hex()
    return found


def _unchanged(root: Path, entries: Any) -> bool:
    """Whether every path (relative to the repo) still has its stored identity (`identity(p).hex()`,
    inlined: this loop is most of a no-change run, about 9,000 paths at 1,000 apps, nearly all
    lstat time)."""
    if not isinstance(entries, dict):
        return False
    top = str(root)
    lstat, pack, is_link, seen, join = os.lstat, _ST.pack, stat.S_ISLNK, _seen, os.path.join
    for rel, ident in entries.items():
        p = join(top, rel)
        found = seen.get(p)
        if found is None:
            try:
                st = lstat(p)
            except OSError:
                found = ""
            else:
                found = identity(p).hex() if is_link(st.st_mode) else \
                    pack(st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns).hex()
            seen[p] = found
        if found != ident:
            return False
    return True


_bodies: dict[str, tuple[bytes, dict[str, Any]]] = {}  # index file -> (its identity, its body)


def _body(root: Path, env: str) -> dict[str, Any] | None:
    """The stored index of `env`, decoded (once per process while the file is unchanged)."""
    path = _index_file(root, env)
    if path is None:
        return None
    ident = identity(str(path))
    known = _bodies.get(str(path))
    if known is not None and known[0] == ident and ident:
        return known[1]
    blob = memo.load_entry(path, _stamp(), env.encode())
    if blob is None:
        return None
    try:
        body = json.loads(blob)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    _bodies[str(path)] = (ident, body)
    return body


def lookup(root: Path, env: str) -> Report | None:
    """The stored report of `env` when nothing its last render looked at has changed and
    out/<env>/ is as that render left it; else None (do the full render)."""
    body = _body(root, env)
    if body is None:
        return None
    warnings, allowed, keys, envs, paths = (
        _strings(body.get(k)) for k in ("warnings", "allowed", "allow_keys", "envs", "paths"))
    files, no_orphans = body.get("files"), body.get("no_orphans")
    if warnings is None or allowed is None or keys is None or envs is None or paths is None:
        return None
    if not isinstance(files, int) or not isinstance(no_orphans, bool) or len(paths) != files:
        return None
    if not _unchanged(root, body.get("inputs")) or not _unchanged(root, body.get("outputs")):
        return None
    return Report(files, warnings, allowed, keys, envs, no_orphans, paths)


def lookup_all(root: Path, wanted: Sequence[str]) -> dict[str, Report] | None:
    """The stored reports of the environments a command selects (`wanted`, or every
    environment when empty), or None unless every one of them is unchanged."""
    known: dict[str, Report] = {}
    if wanted:
        names: Iterable[str] = sorted(set(wanted))
    else:
        try:
            listed = sorted(os.listdir(root / "environments"))
        except OSError:
            return None
        first = next(((n, r) for n, r in ((n, lookup(root, n)) for n in listed if n and not n.startswith("."))
                      if r is not None), None)
        if first is None:
            return None
        names = first[1].envs
        known[first[0]] = first[1]  # not looked up twice (the lookup is most of a no-change run)
    found: dict[str, Report] = {}
    for name in names:
        report = known.pop(name) if name in known else lookup(root, name)
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
