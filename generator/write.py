"""Step: write rendered environments into out/ — only after everything rendered and validated.

Ownership: a file under out/ belongs to the generator when its first line is the generator's
header comment. Owned files that a render no longer produces are removed; files without the
header are never modified or removed (a render that would overwrite one stops with an error
before writing anything). Unchanged files are not rewritten, so their mtimes stay put.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from generator.errors import WriteError
from generator.output import is_owned

@contextmanager
def locked(out: Path) -> Iterator[None]:
    """One render at a time per out/ folder: an exclusive flock on the folder itself, so no
    lock file is left in the output."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_RDONLY)
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


def read_owned(folder: Path) -> dict[str, str]:
    """Every generator-owned file below `folder`, by path relative to it."""
    owned: dict[str, str] = {}
    if not folder.is_dir():
        return owned
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except (UnicodeDecodeError, OSError):
                continue
            if is_owned(text):
                owned[path.relative_to(folder).as_posix()] = text
    return owned


@dataclass
class Plan:
    """What a write will do, computed before touching anything."""

    writes: dict[Path, str] = field(default_factory=dict)
    removes: list[Path] = field(default_factory=list)
    unchanged: int = 0


def orphaned_envs(out: Path, rendered: Mapping[str, object], all_envs: bool) -> list[str]:
    """Env folders in out/ that no environment produces any more (only when every env is rendered),
    for `render` and `check` alike."""
    if not all_envs or not out.is_dir():
        return []
    return [p.name for p in out.iterdir() if p.is_dir() and p.name not in rendered]


def plan(out: Path, rendered: Mapping[str, Mapping[str, str]], stale_envs: Iterable[str] = ()) -> Plan:
    """Compare rendered files (env -> relative path -> text) with out/ and list the changes."""
    result = Plan()
    for env, files in rendered.items():
        folder = out / env
        owned = read_owned(folder)
        for rel_path, text in files.items():
            path = folder / rel_path
            if owned.get(rel_path) == text:
                result.unchanged += 1
                continue
            if rel_path not in owned and (path.exists() or path.is_symlink()):
                raise WriteError(
                    "this file was not written by gitops-gen, and the render wants its path",
                    file=path,
                    hint="move or rename the file (generated files start with the generator's header line)",
                )
            result.writes[path] = text
        result.removes += [folder / p for p in owned if p not in files]
    for env in stale_envs:
        result.removes += [out / env / p for p in read_owned(out / env)]
    return result


TMP_PREFIX = ".gitops-gen-tmp."


def apply(out: Path, todo: Plan) -> None:
    """Write every planned file (temporary file + atomic rename), then remove stale ones.

    A fixed temporary name beside each file is safe: the out/ lock is held. Plain string
    paths and raw os calls: on 3,000 files the pathlib overhead was as large as the syscalls.
    """
    for folder in sorted({str(p.parent) for p in todo.writes}):
        os.makedirs(folder, exist_ok=True)
    writes = sorted((str(p), text) for p, text in todo.writes.items())
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    tmp = ""
    try:
        for path, text in writes:
            folder, _, name = path.rpartition("/")
            tmp = f"{folder}/{TMP_PREFIX}{name}"
            fd = os.open(tmp, flags, 0o644)
            try:
                data = memoryview(text.encode("utf-8"))
                while data:
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
            os.replace(tmp, path)
            tmp = ""
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
    for stale in sorted(todo.removes):
        stale.unlink(missing_ok=True)
        _prune_empty(stale.parent, out)


def _prune_empty(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
