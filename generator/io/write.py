"""Step: write rendered environments into out/ — only after everything rendered and validated.

Ownership: a file under out/ belongs to the generator when its first line is the generator's
header comment. Owned files that a render no longer produces are removed; files without the
header are never modified or removed (a render that would overwrite one stops with an error
before writing anything). Unchanged files are not rewritten, so their mtimes stay put.

Publication is crash-safe through a journal (`out/.gitops-gen-journal`):

1. stage: every new or changed file is written beside its target under a temporary name
   (`.gitops-gen-tmp.<name>`, created with O_EXCL|O_NOFOLLOW through directory descriptors
   opened with O_NOFOLLOW, so nothing is ever written through a symbolic link);
2. the file system is flushed (syncfs), then the journal, listing every rename (with the
   SHA-256 of the staged text) and every removal, is written and flushed: the commit point;
3. the journal is applied (renames, removals, empty folders pruned), the file system is flushed
   again (syncfs; where it is missing, an fsync of each folder that changed), so the renames are
   on disk before the journal is deleted.

An interruption before the commit point leaves the old out/ plus temporary files, which the
next render deletes (and `check` reports); after it, the next render applies the journal again
before rendering (`recover`), so out/ ends exactly as the interrupted render would have left it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from generator.errors import WriteError
from generator.incremental import Spliced
from generator.io.memo import Stat, stat_of
from generator.io.output import HEADER, Files, is_owned
from generator.io.parallel import WorkerDied, cores, fork_beside
from generator.steps.hashing import sha256  # CPython's own: hashlib would load OpenSSL (3.5 MB)

TMP_PREFIX = ".gitops-gen-tmp."
JOURNAL = ".gitops-gen-journal"
JOURNAL_FORMAT = "gitops-gen-journal/1"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Test hook (tests/test_write_faults.py only): "kill:N" SIGKILLs this process, "raise:N:ENOSPC"
# raises that OSError, just before the N-th file operation of a publication or recovery.
FAULT_ENV = "GITOPS_GEN_TEST_FAULT"


def out_folder(root: Path) -> Path:
    """The repo's out/ folder, checked: a folder (or nothing yet), and when it is a symbolic
    link, one that stays inside the repo."""
    out = root / "out"
    if out.is_symlink():
        real = Path(os.path.realpath(out))
        if not real.is_relative_to(root.resolve()):
            raise WriteError(
                f"out is a symbolic link to {real}, outside the repo", file=out,
                hint="make out/ a plain folder of the repo: gitops-gen writes nothing outside it",
            )
    if out.exists() and not out.is_dir():
        raise WriteError("out is a file, not a folder", file=out,
                         hint="move or delete it: gitops-gen writes the folder out/ there")
    return out


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """One render at a time per out/ folder: an exclusive flock on the folder itself, so no
    lock file is left in the output."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise os_error(exc, out, "out/ is unchanged") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WriteError(
                "another render is writing this out/ folder right now",
                file=out,
                hint="wait for it to finish and run the command again",
            ) from None
        yield
    finally:
        os.close(fd)


_WHAT_TO_DO = {
    errno.ENOSPC: ("the disk is full", "free some space"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space"),
    errno.EROFS: ("the file system is read-only", "render on a writable copy of the repo"),
    errno.EACCES: ("permission denied", "make the files and folders readable and writable for this user"),
    errno.EPERM: ("operation not permitted", "make the files and folders readable and writable for this user"),
    errno.ENOTDIR: ("a file stands where a folder is needed", "move the file away"),
    errno.EISDIR: ("a folder stands where a file is needed", "move the folder away"),
    errno.ELOOP: ("a symbolic link stands in the way", "replace the link by a plain folder or file"),
}


def os_error(exc: OSError, where: Path | str | None, state: str, doing: str = "cannot write out/") -> WriteError:
    """An operating-system error while writing out/, as a user error saying what to do.
    `state`: what out/ looks like now (unchanged, or completed by the next render)."""
    what, todo = _WHAT_TO_DO.get(exc.errno or 0, (exc.strerror or str(exc), "fix the cause"))
    path = exc.filename if isinstance(exc.filename, str) and exc.filename.startswith("/") else where
    return WriteError(f"{doing}: {what}", file=path, hint=f"{todo} and run the command again; {state}")


def read_owned(folder: Path) -> dict[str, str]:
    """Every generator-owned file below `folder`, by path relative to it."""
    owned: dict[str, str] = {}
    for rel_path, path in _files_below(folder, []):
        text = _read(path)
        if text is not None and is_owned(text):
            owned[rel_path] = text
    return owned


def _refuse_link(path: Path, what: str = "a symbolic link") -> WriteError:
    return WriteError(
        f"{what} inside out/: gitops-gen never writes or reads through one there", file=path,
        hint="delete it, or replace it by a plain folder or file (out/ holds only what the render writes "
        "and your own plain files)",
    )


def _files_below(folder: Path, strays: list[Path], folders: list[str] | None = None,
                 only: Collection[str] | None = None) -> Iterator[tuple[str, Path]]:
    """Regular files below `folder` in a stable order, by path relative to it; our temporary
    files go to `strays`, and the folders below it (relative, `folder` itself as "") to
    `folders` when given. A symbolic link, FIFO, socket or device anywhere below is an error.
    `only`: of its subfolders, just these (the others are known unchanged: an incremental render)."""
    try:
        if folder.is_symlink():
            raise _refuse_link(folder)
        if not folder.is_dir():
            if folder.exists():
                raise WriteError("a file stands where an environment's folder of out/ belongs", file=folder,
                                 hint="move or delete it: the render writes a folder there")
            return
        if folders is not None:
            folders.append("")
        yield from _walk(folder, "", strays, folders, only)
    except OSError as exc:
        raise os_error(exc, folder, "out/ is unchanged") from None


def _walk(folder: Path, prefix: str, strays: list[Path], folders: list[str] | None,
          only: Collection[str] | None = None) -> Iterator[tuple[str, Path]]:
    with os.scandir(folder) as listing:  # types from the listing itself: no stat, no link followed
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        path = folder / entry.name
        if entry.is_symlink():
            raise _refuse_link(path)
        if entry.is_dir(follow_symlinks=False):
            if only is not None and entry.name not in only:
                continue
            if folders is not None:
                folders.append(prefix + entry.name)
            yield from _walk(path, f"{prefix}{entry.name}/", strays, folders)
        elif not entry.is_file(follow_symlinks=False):
            raise _refuse_link(path, "a FIFO, socket or device file")
        elif entry.name.startswith(TMP_PREFIX):
            strays.append(path)
        else:
            yield prefix + entry.name, path


def read_regular(path: Path | str) -> str | None:
    """A file's UTF-8 text, never through a symbolic link and never blocking on a FIFO; None
    when it cannot be read so."""
    return _read(path)


def _read(path: Path | str, limit: int = -1) -> str | None:
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        with os.fdopen(fd, encoding="utf-8") as handle:
            return handle.read(limit)
    except (UnicodeDecodeError, OSError):
        return None


class Writes(Mapping[Path, str]):
    """The files a write will create or replace: path -> text, the text taken from the rendered
    files when asked for (rendered texts are emitted on demand and not all held at once)."""

    def __init__(self) -> None:
        self._todo: dict[Path, tuple[Mapping[str, str], str]] = {}

    def add(self, path: Path, files: Mapping[str, str], rel_path: str) -> None:
        self._todo[path] = (files, rel_path)

    def source(self, path: Path) -> tuple[Mapping[str, str], str]:
        return self._todo[path]

    def __getitem__(self, path: Path) -> str:
        files, rel_path = self._todo[path]
        return files[rel_path]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._todo)

    def __len__(self) -> int:
        return len(self._todo)


@dataclass
class Tree:
    """What one out/<env>/ holds: its folders ("" for out/<env>/ itself, absent when it does not
    exist) and regular files, relative to it. Listed by `plan`, kept current by `apply`."""

    folders: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)


@dataclass
class Plan:
    """What a write will do, computed before touching anything."""

    writes: Writes = field(default_factory=Writes)
    removes: list[Path] = field(default_factory=list)
    strays: list[Path] = field(default_factory=list)  # our temporary files left by an interrupted render
    unchanged: int = 0
    rendered: list[Mapping[str, str]] = field(default_factory=list)  # whose output memos to save
    trees: dict[str, Tree] = field(default_factory=dict)  # env -> what out/<env>/ holds
    stats: dict[str, Stat] = field(default_factory=dict)  # written file -> its lstat after `apply`

    def out_paths(self, out: Path, env: str) -> Iterator[tuple[str, Stat | None]] | None:
        """out/, out/<env>/ and every folder and file below it, as `plan` listed them and `apply`
        changed them, each with its lstat when `apply` took it right after writing the file
        (else None); None when this plan did not list out/<env>/. Sound as long as nothing but
        this render writes into out/ between `plan` and `apply` (which the writer assumes too:
        the lock keeps other renders out)."""
        tree = self.trees.get(env)
        return None if tree is None else self._out_paths(str(out), os.path.join(out, env), tree)

    def _out_paths(self, top: str, folder: str, tree: Tree) -> Iterator[tuple[str, Stat | None]]:
        yield top, None
        yield folder, None
        for rel_dir in sorted(tree.folders):
            if rel_dir:
                yield os.path.join(folder, rel_dir), None
        for rel_path in sorted(tree.files):
            path = os.path.join(folder, rel_path)
            yield path, self.stats.get(path)

    def _applied(self, out: Path, done: _Replayed) -> None:
        """Bring the trees up to date with a publication: files written and removed, folders
        created and pruned."""
        self.stats = done.stats
        for path, added in [(p, True) for p in self.writes] + [(p, False) for p in self.removes]:
            env, _, rel_path = _relative(out, path).partition("/")
            tree = self.trees.get(env)
            if tree is None:
                continue  # an environment removed (--prune-env): not indexed
            if not added:
                tree.files.discard(rel_path)
                continue
            tree.files.add(rel_path)
            folder = rel_path
            while folder:
                folder = folder.rpartition("/")[0]
                tree.folders.add(folder)
        for folder in done.pruned:
            env, _, rel_dir = folder.partition("/")
            tree = self.trees.get(env)
            if tree is not None:
                tree.folders.discard(rel_dir)
                if not rel_dir:
                    tree.files.clear()


def orphaned_envs(out: Path, envs: Iterable[str]) -> list[str]:
    """Folders of out/ holding generated files whose environment is gone (not in `envs`):
    a render removes them only when told to (`--prune-env`); `check` reports them."""
    known = set(envs)
    if not out.is_dir():
        return []
    found = []
    for p in sorted(out.iterdir()):
        if p.name in known or p.name.startswith(".") or p.is_symlink() or not p.is_dir():
            continue
        if any(_owned_by_head(path) for _, path in _files_below(p, [])):
            found.append(p.name)
    return found


def why_gone(root: Path, env: str) -> str:
    """Why environment `env` no longer renders, in the user's words."""
    folder = root / "environments" / env
    env_file = folder / "env.yaml"
    if not os.path.lexists(folder):
        return f"environments/{env}/ does not exist"
    if not folder.is_dir():
        return f"environments/{env} is not a folder (or a link to nothing)"
    if env_file.is_symlink() and not env_file.exists():
        return f"environments/{env}/env.yaml is a symbolic link to nothing"
    for other in ("env.yml", "env.yaml.j2", "Env.yaml"):
        if (folder / other).exists():
            return f"environments/{env}/ has {other} but no env.yaml"
    return f"environments/{env}/ has no env.yaml"


def plan(out: Path, rendered: Mapping[str, Mapping[str, str]], stale_envs: Iterable[str] = ()) -> Plan:
    """Compare rendered files (env -> relative path -> text) with out/ and list the changes.

    One file at a time: an existing file is read, compared and dropped, so neither out/ nor the
    rendered texts are ever all in memory."""
    result = Plan()
    for env, files in rendered.items():
        result.rendered.append(files)
        folder = out / env
        owned: set[str] = set()
        tree = result.trees[env] = Tree()
        folders: list[str] = []
        tracked = files if isinstance(files, (Files, Spliced)) else None  # knows what it wrote before
        # An incremental render (generator/incremental.py): the other apps' folders hold what they should.
        only = files.only if isinstance(files, Spliced) else None
        trusted = files.trusted if isinstance(files, Spliced) else frozenset()
        result.unchanged += len(trusted)
        for rel_path, path in _files_below(folder, result.strays, folders, only):
            tree.files.add(rel_path)
            if rel_path in files:
                if tracked is not None and tracked.is_current(rel_path, path):
                    owned.add(rel_path)  # untouched since it was written from the same object
                    result.unchanged += 1
                    continue
                text = _read(path)
                if text is None or not _ours(text):
                    raise _not_ours(path)
                owned.add(rel_path)
                if text == files[rel_path]:
                    result.unchanged += 1
                    if tracked is not None:
                        tracked.remember(rel_path, path)
                else:
                    result.writes.add(path, files, rel_path)
            elif _owned_by_head(path):
                result.removes.append(path)
        tree.folders.update(folders)
        for rel_path in files:
            if rel_path in owned or rel_path in trusted:
                continue
            path = folder / rel_path
            # Listed above: a regular file there is compared already. Something else (an empty
            # folder; a name differing only in case, on a case-insensitive file system) can only
            # be there when out/<env>/ exists.
            if folders and os.path.lexists(path):
                raise _not_ours(path)
            result.writes.add(path, files, rel_path)
    for env in stale_envs:
        result.removes += [path for _, path in _files_below(out / env, result.strays) if _owned_by_head(path)]
    return result


def _ours(text: str) -> bool:
    """Generated: it starts with our header, or it is a generated file in which git marked a
    merge conflict right at the top."""
    return is_owned(text) or (text.startswith(_CONFLICT) and f"\n{HEADER}" in text)


_CONFLICT = "<<<<<<< "


def _owned_by_head(path: Path) -> bool:
    head = _read(path, len(HEADER))
    return head is not None and (is_owned(head) or (head.startswith(_CONFLICT) and _ours(_read(path) or "")))


def _not_ours(path: Path) -> WriteError:
    return WriteError(
        "this file was not written by gitops-gen, and the render wants its path",
        file=path,
        hint="move or rename the file (generated files start with the generator's header line)",
    )


class _Faults:
    """Counts file operations and injects the fault FAULT_ENV asks for (tests only)."""

    def __init__(self) -> None:
        spec = os.environ.get(FAULT_ENV, "")
        kind, _, rest = spec.partition(":")
        at, _, name = rest.partition(":")
        self.kind, self.at, self.errno = kind, int(at) if at.isdigit() else 0, getattr(errno, name, errno.EIO)
        self.count = 0

    def step(self) -> None:
        if not self.at:
            return
        self.count += 1
        if self.count < self.at:
            return
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "raise":
            raise OSError(self.errno, os.strerror(self.errno))
        if self.kind == "int":
            self.at = 0
            raise KeyboardInterrupt


class _Dirs:
    """Directory descriptors below out/, opened one component at a time with O_NOFOLLOW, so a
    symbolic link anywhere on the way fails instead of being followed. The open folder's
    ancestors stay open (a stack as deep as the folder), so moving to a sibling folder opens
    one descriptor, not the whole chain from out/ again; besides out/ itself, never more than
    that one chain is open (there may be thousands of folders)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.root = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._names: list[str] = []  # the open chain below out/: its names and descriptors
        self._fds: list[int] = []
        self._made: set[str] = set()  # folders this writer created: nothing is in them but what it put there

    def open(self, rel_dir: str, create: bool = False) -> int:
        parts = rel_dir.split("/") if rel_dir else []
        keep = 0
        while keep < len(self._names) and keep < len(parts) and self._names[keep] == parts[keep]:
            keep += 1
        self._close_below(keep)
        fd = self._fds[-1] if self._fds else self.root
        for depth in range(keep, len(parts)):
            part = parts[depth]
            try:
                # In a folder it created, the writer knows a subfolder is missing: no failed open first.
                if create and (depth and "/".join(parts[:depth]) in self._made):
                    fd = self._make(parts, depth, fd)
                else:
                    try:
                        fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    except FileNotFoundError:
                        if not create:
                            raise
                        fd = self._make(parts, depth, fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refuse_link(self.out / rel_dir, "a symbolic link or file on the way to a folder") from None
                raise
            self._names.append(part)
            self._fds.append(fd)
        return fd

    def _make(self, parts: list[str], depth: int, parent_fd: int) -> int:
        """Create folder `parts[depth]` in the open `parent_fd` and open it."""
        try:
            os.mkdir(parts[depth], 0o777, dir_fd=parent_fd)
            self._made.add("/".join(parts[: depth + 1]))
        except FileExistsError:
            pass  # made meanwhile: opened (and checked) like any other
        return os.open(parts[depth], _DIR_FLAGS, dir_fd=parent_fd)

    def rmdir(self, rel_dir: str) -> None:
        """Remove the empty folder `rel_dir` (OSError when it is not empty); a descriptor of it
        is closed first, so no later `open` hands out a removed folder."""
        parent, _, name = rel_dir.rpartition("/")
        os.rmdir(name, dir_fd=self.open(parent))  # `open` closed what was open below `parent`
        self._made.discard(rel_dir)

    def _close_below(self, depth: int) -> None:
        while len(self._fds) > depth:
            self._names.pop()
            os.close(self._fds.pop())

    def close(self) -> None:
        self._close_below(0)
        os.close(self.root)


def _relative(out: Path, path: Path) -> str:
    """`path` relative to out/, with `/` (string work: Path.relative_to costs ~30 us, thousands
    of times per render)."""
    top, text = str(out), str(path)
    if text.startswith(top) and text[len(top):len(top) + 1] == os.sep and os.sep == "/":
        return text[len(top) + 1:]
    return path.relative_to(out).as_posix()


def _split(out: Path, path: Path) -> tuple[str, str]:
    folder, _, name = _relative(out, path).rpartition("/")
    return folder, name


def _write_new(name: str, data: bytes, dir_fd: int, faults: _Faults, flush: bool = False) -> None:
    faults.step()
    fd = os.open(name, _NEW_FLAGS, 0o666, dir_fd=dir_fd)
    try:
        faults.step()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if flush:
            os.fsync(fd)
    finally:
        os.close(fd)


# Up to this many staged files are flushed one by one (a small change: one app re-rendered);
# more, by one syncfs of the file system, which also flushes whatever else is pending on it.
FLUSH_EACH = 64


def _unlink(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


# "off": no flush to disk (survives SIGKILL, not power loss): for throwaway machines such as CI
# runners and the test suite, where the flushes cost more than they protect.
FSYNC_ENV = "GITOPS_GEN_FSYNC"


def _durable() -> bool:
    return os.environ.get(FSYNC_ENV, "").lower() not in ("off", "0", "no", "false")


def _fsync(fd: int) -> None:
    if _durable():
        os.fsync(fd)


def _sync(fd: int) -> None:
    """Flush the file system holding `fd` to disk: one syncfs(2) rather than an fsync per staged
    file (3,000 of them); fsync of the folder where syncfs is not available."""
    if not _durable():
        return
    syncfs = _syncfs()
    if syncfs is None or syncfs(fd) != 0:
        os.fsync(fd)


_SYNCFS: list[Callable[[int], int] | None] = []


def _syncfs() -> Callable[[int], int] | None:
    if not _SYNCFS:
        found = None
        if sys.platform.startswith("linux"):
            import ctypes  # only when a publication happens: the import costs a few ms

            found = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
        _SYNCFS.append(found)
    return _SYNCFS[0]


def apply(out: Path, todo: Plan, halves: bool = True) -> None:
    """Publish the plan through the journal (see the module's docstring), then remove stray
    temporary files and save the output memos. `halves`: a large publication may be staged by
    two processes (`_split_stage`; False: in this one only, as `--jobs 1` asks)."""
    dirs = _Dirs(out)
    faults = _Faults()
    try:
        for stray in todo.strays:
            folder, name = _split(out, stray)
            _unlink(name, dirs.open(folder))
        if todo.writes or todo.removes:
            journal = _stage(out, dirs, todo, faults, halves)
            _commit(dirs, journal, faults)
            todo._applied(out, _replay(out, dirs, journal, faults, verify=False))
    finally:
        dirs.close()
    for target in todo.writes:
        files, rel_path = todo.writes.source(target)
        if isinstance(files, (Files, Spliced)):
            files.remember(rel_path, target, keep=False, st=todo.stats.get(str(target)))
    for files in todo.rendered:
        if isinstance(files, Spliced) and files.known is not None:
            files.known.carry(files.trusted)  # the other apps' files are as the last render left them
        if isinstance(files, (Files, Spliced)) and files.known is not None:
            files.known.save()


class Journal(TypedDict):
    """What a publication does, in out/.gitops-gen-journal (JSON; folders relative to out/)."""

    format: str
    renames: list[list[str]]  # [folder, name, sha256 of the staged text]
    removes: list[list[str]]  # [folder, name]


def _stage(out: Path, dirs: _Dirs, todo: Plan, faults: _Faults, halves: bool = True) -> Journal:
    """Write every planned file under its temporary name; on any failure delete what was staged.
    A large publication is staged by two processes, each writing half of the files (`_split_stage`)."""
    targets = sorted(todo.writes, key=str)  # (Path comparisons cost twice as much: 20 ms at 3,000 files)
    staged: list[list[str]] = []
    each = _durable() and len(targets) <= FLUSH_EACH
    try:
        if halves and len(targets) >= SPLIT_MIN and cores() >= 2:
            staged = _split_stage(out, dirs, todo, targets, faults)
        else:
            _stage_files(out, dirs, todo, targets, faults, each, staged)
        if each:  # the staged names too, before the journal names them
            for folder in sorted({f for f, _, _ in staged}):
                os.fsync(dirs.open(folder))
        else:
            _sync(dirs.root)
    except BaseException as exc:  # an OSError, a link found on the way, Ctrl-C: leave nothing behind
        _discard(dirs, staged)
        if isinstance(exc, OSError):
            raise os_error(exc, out, "out/ is unchanged") from None
        raise
    removes = [list(_split(out, p)) for p in sorted(todo.removes)]
    return {"format": JOURNAL_FORMAT, "renames": staged, "removes": removes}


def _stage_files(out: Path, dirs: _Dirs, todo: Plan, targets: list[Path], faults: _Faults, each: bool,
                 staged: list[list[str]]) -> None:
    """Stage `targets` in order, appending [folder, name, digest] to `staged` before each write
    (so a failure discards what was started too)."""
    for target in targets:
        folder, name = _split(out, target)
        fd = dirs.open(folder, create=True)
        data = todo.writes[target].encode("utf-8")
        staged.append([folder, name, sha256(data).hexdigest()])
        try:
            _write_new(TMP_PREFIX + name, data, fd, faults, each)
        except FileExistsError:  # ours, from an interrupted render (a link was refused when planning)
            _unlink(TMP_PREFIX + name, fd)
            _write_new(TMP_PREFIX + name, data, fd, faults, each)


# A publication of at least this many files is staged by two processes, this one and a forked
# one, each emitting and writing half of the files: at 1,000 apps (3,000 files) staging is most
# of a cold render's publication, and the halves share nothing but the folders above them.
# The fork and the other process's first touches of the shared objects cost milliseconds; 400
# files are about 30 ms of staging, so below that it would hardly pay (a conservative bound: the
# gain at 3,000 files, 3-5% of a cold render, is in README, Performance).
SPLIT_MIN = 400


def _split_stage(out: Path, dirs: _Dirs, todo: Plan, targets: list[Path], faults: _Faults) -> list[list[str]]:
    """Stage the first half of `targets` here and the second half in a forked process
    (parallel.fork_beside); their entries in the order of `targets`. The halves meet at a
    folder boundary, and the folders above the second half's first file are made before the
    fork, so no folder is made by both. On failure the second half's staged files are deleted
    here too (the other process may have been killed before it could)."""
    k = _boundary(targets)
    first, second = targets[:k], targets[k:]
    dirs.open(_split(out, second[0])[0], create=True)
    mine: list[list[str]] = []

    def half(i: int) -> list[list[str]]:
        if i == 0:
            _stage_files(out, dirs, todo, first, faults, False, mine)
            return mine
        faults.count = 2 * len(first)  # the file operations of the first half come before these
        theirs: list[list[str]] = []
        try:
            _stage_files(out, dirs, todo, second, faults, False, theirs)
        except BaseException:
            _discard(dirs, theirs)
            raise
        return theirs

    try:
        done = fork_beside(half)
    except BaseException as exc:
        _discard(dirs, mine + [[*_split(out, t), ""] for t in second])
        if isinstance(exc, WorkerDied):
            raise WriteError("the process staging half of the files ended before it finished (killed, or out "
                             "of memory); out/ is unchanged", file=out,
                             hint="run the command again") from None
        raise
    faults.count = 2 * len(targets)
    return done[0] + done[1]


def _boundary(targets: list[Path]) -> int:
    """An index near the middle of `targets` (sorted: a folder's files are together) where the
    folder changes (the middle itself when every file is in one folder)."""
    middle = len(targets) // 2
    for step in range(middle):
        for k in (middle - step, middle + step):
            if 0 < k < len(targets) and targets[k - 1].parent != targets[k].parent:
                return k
    return middle


def _discard(dirs: _Dirs, staged: list[list[str]]) -> None:
    """Delete staged files of a publication that never reached its commit point."""
    for folder, name, _ in staged:
        try:
            _unlink(TMP_PREFIX + name, dirs.open(folder))
        except OSError:
            pass


def _commit(dirs: _Dirs, journal: Journal, faults: _Faults) -> None:
    """Write the journal under a temporary name, flush it, rename it into place: from here on
    the publication is completed by whoever finds the journal."""
    tmp = TMP_PREFIX + "journal"
    try:
        _unlink(tmp, dirs.root)
        _write_new(tmp, json.dumps(journal).encode(), dirs.root, faults)
        fd = os.open(tmp, _READ_FLAGS, dir_fd=dirs.root)
        try:
            _fsync(fd)
        finally:
            os.close(fd)
        faults.step()
        os.rename(tmp, JOURNAL, src_dir_fd=dirs.root, dst_dir_fd=dirs.root)
    except (OSError, KeyboardInterrupt) as exc:
        _unlink(tmp, dirs.root)
        _discard(dirs, journal["renames"])
        if isinstance(exc, OSError):
            raise os_error(exc, dirs.out, "out/ is unchanged") from None
        raise
    try:
        _fsync(dirs.root)
    except OSError as exc:
        raise os_error(exc, dirs.out, f"the next `render` completes it ({JOURNAL} lists what is left to do)") from None


@dataclass
class _Replayed:
    """What applying a journal did that the render's bookkeeping needs afterwards."""

    pruned: set[str] = field(default_factory=set)  # folders removed (relative to out/)
    stats: dict[str, Stat] = field(default_factory=dict)  # renamed file -> its lstat right after


def _replay(out: Path, dirs: _Dirs, journal: Journal, faults: _Faults, verify: bool) -> _Replayed:
    """Apply a committed journal: renames, removals, empty folders pruned, the file system
    flushed, journal deleted. Idempotent: an entry done already is skipped. `verify` (on
    recovery): a staged file must still hold the text whose digest the journal recorded, and a
    file to remove must still be ours; otherwise it is left for the render that follows to fix."""
    done = _Replayed()
    renamed: set[str] = set()  # folders holding a renamed file: never empty, never pruned
    removed: set[str] = set()
    try:
        for folder, name, digest in journal["renames"]:
            fd = dirs.open(folder)
            tmp = TMP_PREFIX + name
            if verify and _digest(tmp, fd) != digest:
                _unlink(tmp, fd)
                continue
            faults.step()
            renamed.add(folder)
            try:
                os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except FileNotFoundError:
                continue  # renamed before the interruption
            if not verify:  # the file's identity for the output memo and the render index
                done.stats[os.path.join(out, folder, name)] = stat_of(os.stat(name, dir_fd=fd, follow_symlinks=False))
        for folder, name in journal["removes"]:
            try:
                fd = dirs.open(folder)
            except FileNotFoundError:
                continue
            if verify and not _owned_at(name, fd):
                continue
            faults.step()
            _unlink(name, fd)
            removed.add(folder)
        for folder in sorted(removed - renamed, reverse=True):
            _prune_empty(dirs, folder, done.pruned)
        _flush_folders(dirs, renamed | removed | {f.rpartition("/")[0] for f in done.pruned})
        faults.step()
        os.unlink(JOURNAL, dir_fd=dirs.root)
        _fsync(dirs.root)
    except OSError as exc:
        raise os_error(exc, out, f"out/ is partly written, and the next `render` completes it ({JOURNAL} lists "
                       "what is left to do)") from None
    return done


def _flush_folders(dirs: _Dirs, folders: set[str]) -> None:
    """Make the renames and removals in `folders` durable before the journal that lists them
    goes: one syncfs(2) of the file system (as for staging), or an fsync of each folder where
    syncfs is not available or there are only a few of them (a small change: syncfs would also
    wait for whatever else is pending on the file system)."""
    if not _durable():
        return
    syncfs = _syncfs() if len(folders) > FLUSH_EACH else None
    if syncfs is not None and syncfs(dirs.root) == 0:
        return
    for folder in sorted(folders):
        try:
            os.fsync(dirs.open(folder))
        except FileNotFoundError:
            pass  # pruned


def _digest(name: str, dir_fd: int) -> str | None:
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return sha256(handle.read()).hexdigest()


def _owned_at(name: str, dir_fd: int) -> bool:
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        return handle.read(len(HEADER)) == HEADER.encode()


def _prune_empty(dirs: _Dirs, folder: str, pruned: set[str]) -> None:
    """Remove `folder` and its parents below out/ while they are empty (added to `pruned`)."""
    while folder:
        try:
            dirs.rmdir(folder)
        except OSError:
            return
        pruned.add(folder)
        folder = folder.rpartition("/")[0]


def top_strays(out: Path) -> list[Path]:
    """Temporary files directly in out/ (an uncommitted journal)."""
    try:
        return sorted(p for p in out.iterdir() if p.name.startswith(TMP_PREFIX))
    except OSError:
        return []


def pending(out: Path) -> bool:
    """Whether an interrupted render left a journal to complete."""
    return os.path.lexists(out / JOURNAL)


def recover(out: Path) -> int:
    """Complete the publication an interrupted render committed (call with the lock held, before
    rendering: retention reads out/). Returns how many entries the journal held; 0 when none."""
    journal_path = out / JOURNAL
    if not out.is_dir():
        return 0
    if journal_path.is_symlink() or (journal_path.exists() and not journal_path.is_file()):
        raise _refuse_link(journal_path, "a symbolic link or special file named like gitops-gen's journal")
    dirs = _Dirs(out)
    try:
        _unlink(TMP_PREFIX + "journal", dirs.root)  # a journal never committed: nothing to do
        if not journal_path.exists():
            return 0
        journal = _load_journal(journal_path)
        if journal is None:  # unreadable: not ours to follow; the render rewrites what it must
            os.unlink(JOURNAL, dir_fd=dirs.root)
            return 0
        _replay(out, dirs, journal, _Faults(), verify=True)
        return len(journal["renames"]) + len(journal["removes"])
    except OSError as exc:
        raise os_error(exc, out, f"out/ is partly written by an interrupted render ({JOURNAL})") from None
    finally:
        dirs.close()


def _load_journal(path: Path) -> Journal | None:
    """The journal's data, checked entry by entry (names without `/`, folders without `..`)."""
    try:
        data = json.loads(path.read_bytes())
        if data.get("format") != JOURNAL_FORMAT:
            return None
        renames = [[str(f), str(n), str(d)] for f, n, d in data["renames"]]
        removes = [[str(f), str(n)] for f, n in data["removes"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    for folder, name, *_ in (*renames, *removes):
        parts = folder.split("/") if folder else []
        if "/" in name or name in ("", ".", "..") or any(p in ("", ".", "..") for p in parts):
            return None
    return {"format": JOURNAL_FORMAT, "renames": renames, "removes": removes}
