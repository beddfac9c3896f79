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
from generator.io.output import HEADER, Files, is_owned

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
    for rel_path, path in _files_below(folder):
        text = _read(path)
        if text is not None and is_owned(text):
            owned[rel_path] = text
    return owned


def _files_below(folder: Path) -> Iterator[tuple[str, Path]]:
    if not folder.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            yield path.relative_to(folder).as_posix(), path


def _read(path: Path, limit: int = -1) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
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
class Plan:
    """What a write will do, computed before touching anything."""

    writes: Writes = field(default_factory=Writes)
    removes: list[Path] = field(default_factory=list)
    unchanged: int = 0
    rendered: list[Mapping[str, str]] = field(default_factory=list)  # whose output memos to save


def orphaned_envs(out: Path, rendered: Mapping[str, object], all_envs: bool) -> list[str]:
    """Env folders in out/ that no environment produces any more (only when every env is rendered),
    for `render` and `check` alike."""
    if not all_envs or not out.is_dir():
        return []
    return [p.name for p in out.iterdir() if p.is_dir() and p.name not in rendered]


def plan(out: Path, rendered: Mapping[str, Mapping[str, str]], stale_envs: Iterable[str] = ()) -> Plan:
    """Compare rendered files (env -> relative path -> text) with out/ and list the changes.

    One file at a time: an existing file is read, compared and dropped, so neither out/ nor the
    rendered texts are ever all in memory."""
    result = Plan()
    for env, files in rendered.items():
        result.rendered.append(files)
        folder = out / env
        owned: set[str] = set()
        tracked = files if isinstance(files, Files) else None  # knows what it wrote before
        for rel_path, path in _files_below(folder):
            if rel_path in files:
                if tracked is not None and tracked.is_current(rel_path, path):
                    owned.add(rel_path)  # untouched since it was written from the same object
                    result.unchanged += 1
                    continue
                text = _read(path)
                if text is None or not is_owned(text):
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
        for rel_path in files:
            if rel_path in owned:
                continue
            path = folder / rel_path
            if path.exists() or path.is_symlink():
                raise _not_ours(path)
            result.writes.add(path, files, rel_path)
    for env in stale_envs:
        result.removes += [path for _, path in _files_below(out / env) if _owned_by_head(path)]
    return result


def _owned_by_head(path: Path) -> bool:
    head = _read(path, len(HEADER))
    return head is not None and is_owned(head)


def _not_ours(path: Path) -> WriteError:
    return WriteError(
        "this file was not written by gitops-gen, and the render wants its path",
        file=path,
        hint="move or rename the file (generated files start with the generator's header line)",
    )


TMP_PREFIX = ".gitops-gen-tmp."


def apply(out: Path, todo: Plan) -> None:
    """Write every planned file (temporary file + atomic rename), then remove stale ones.

    A fixed temporary name beside each file is safe: the out/ lock is held. Plain string
    paths and raw os calls: on 3,000 files the pathlib overhead was as large as the syscalls.
    """
    for folder in sorted({str(p.parent) for p in todo.writes}):
        os.makedirs(folder, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    tmp = ""
    try:
        for target in sorted(todo.writes):
            path, text = str(target), todo.writes[target]
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
            files, rel_path = todo.writes.source(target)
            if isinstance(files, Files):
                files.remember(rel_path, path, keep=False)
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
    for stale in sorted(todo.removes):
        stale.unlink(missing_ok=True)
        _prune_empty(stale.parent, out)
    for files in todo.rendered:
        if isinstance(files, Files) and files.known is not None:
            files.known.save()


def _prune_empty(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
