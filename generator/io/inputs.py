"""Reading the repo's input files, contained and bounded.

Every file the render reads (manifests, `app.yaml`, `env.yaml`, `gitops-gen.yaml`, patches,
data files, template includes) comes through `read_input`, and every folder it lists is
checked by `probe`, so that:

- nothing is read through a symlink whose target (or whose folder's real path) leaves the repo;
  symlinks inside the repo pointing inside it keep working;
- a FIFO, device or socket is refused before it is opened (and opened with O_NONBLOCK, so one
  swapped in between the check and the open cannot block the render either);
- a dangling symlink or a symlink loop is an error naming the file, never silently skipped;
- a file's size is checked from `fstat` before a byte of it is read, so a huge (or sparse) file
  is an error, not a MemoryError.

Every path probed or read is noted as an input of the render (generator/io/index.py).
Folders' real paths are looked up once per render, each from its parent's (`_real`, cleared by
`forget_real_paths`); a file that is not a symlink costs one `lstat` more than a plain read.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from pathlib import Path
from typing import Literal, overload

from generator.errors import LoadError
from generator.io import index

# YAML files and templates: generous for a bundle of CRDs, far below what would hurt memory.
MAX_INPUT_BYTES = 16 * 1024 * 1024

_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
_PLAIN = (stat.S_IFREG, stat.S_IFDIR)
_FOLLOW = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = _FOLLOW | getattr(os, "O_NOFOLLOW", 0)
_ONLY = "only regular files and folders inside the repo are read; replace it with a regular file"


class Refused(Exception):
    """Why a path of the repo cannot be read; callers turn it into their stage's error."""

    def __init__(self, reason: str, hint: str = _ONLY) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class TooBig(Refused):
    """A file over the size limit (the size is known from fstat, before reading)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"is {size:,} bytes, over the limit of {limit:,} bytes", "")
        self.size = size
        self.limit = limit


@functools.lru_cache(maxsize=4096)
def _real(folder: str) -> str:
    """The folder's real path. A plain folder (no symlink) in a folder whose real path is known
    has that real path plus its name: one lstat, where `realpath` lstats every component from
    `/` down (the repo's folders share their ancestors, so those are looked up once)."""
    parent, _, name = folder.rpartition(os.sep)
    if parent and name not in ("", ".", ".."):
        try:
            plain = stat.S_ISDIR(os.lstat(folder).st_mode)
        except OSError:
            plain = False
        if plain:
            return os.path.join(_real(parent), name)
    return os.path.realpath(folder)


def forget_real_paths() -> None:
    """Drop the folders' real paths remembered by `inside_repo` (at the start of every render)."""
    _real.cache_clear()
    _folder_inside.cache_clear()


def _inside(top: str, real: str) -> bool:
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def inside_repo(root: Path, path: Path) -> bool:
    """Whether `path`, with every symlink followed, stays inside the repo.

    Folders' real paths are looked up once per render; the file itself is checked each time
    (a symlink is followed all the way)."""
    try:
        link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        link = False
    return _inside_repo(root, path, link)


def _inside_repo(root: Path, path: Path, link: bool) -> bool:
    text = str(path)
    folder, _, name = text.rpartition(os.sep)
    if link or not folder or name in ("", ".", ".."):
        return _inside(_real(str(root)), os.path.realpath(text))
    # A plain name in a folder is inside exactly when the folder's real path is.
    return _folder_inside(str(root), folder)


@functools.lru_cache(maxsize=4096)
def _folder_inside(root: str, folder: str) -> bool:
    return _inside(_real(root), _real(folder))


def _special(mode: int) -> str | None:
    for test, what in _SPECIAL:
        if test(mode):
            return what
    return None


def _followed(root: Path, path: Path) -> os.stat_result:
    """The stat of a symlink's target, refusing dangling links, loops and links leaving the repo."""
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise Refused(f"is a symlink to {target!r}, which does not exist (a dangling symlink)",
                      "fix or remove the symlink") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused(f"is a symlink loop (it points at {target!r}, which leads back to itself)",
                          "fix or remove the symlink") from None
        raise Refused(f"cannot be read: {exc.strerror}", "check the file's permissions") from None
    if not _inside_repo(root, path, True):
        raise Refused(f"is a symlink to {target!r}, outside the repo",
                      "files the render reads must live inside the repo (no symlinks leaving it)")
    return st


def probe(root: Path, path: Path) -> os.stat_result | None:
    """The stat of what the render would read at `path` (symlinks followed), or None when
    nothing is there. Refuses (`Refused`) a path leaving the repo, a dangling symlink, a loop,
    and FIFOs, devices and sockets."""
    found = _probe(root, path)
    return None if found is None else found[0]


def _probe(root: Path, path: Path) -> tuple[os.stat_result, bool] | None:
    """`probe`, and whether `path` itself is a symlink."""
    index.note(path)  # an input of the render, whatever is (or is not) there
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise Refused(f"cannot be read: {exc.strerror}", "check the file's permissions") from None
    link = stat.S_ISLNK(st.st_mode)
    if link:
        st = _followed(root, path)
    elif not _inside_repo(root, path, False):
        raise Refused("is outside the repo (a folder on its path is a symlink leaving it)",
                      "files the render reads must live inside the repo (no symlinks leaving it)")
    if stat.S_IFMT(st.st_mode) not in _PLAIN:
        raise Refused(f"is {_special(st.st_mode) or 'not a regular file or folder'}")
    return st, link


def is_dir(root: Path, path: Path) -> bool:
    """Whether `path` is a folder the render may list (False when nothing is there)."""
    st = probe(root, path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def read_input(root: Path, path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file at `path`, checked as `probe` does, at most `limit` bytes
    (checked from its size before reading). Raises `Refused`, FileNotFoundError when the file
    is missing, IsADirectoryError for a folder."""
    found = _probe(root, path)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
    st, link = found
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    if st.st_size > limit:
        raise TooBig(st.st_size, limit)
    # O_NONBLOCK: a FIFO swapped in since the check opens without waiting for a writer (and is
    # then refused by the fstat check below). O_NOFOLLOW unless we just checked a symlink.
    flags = _FOLLOW if link else _NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise Refused(f"cannot be read: {exc.strerror}", "check the file's permissions") from None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(opened.st_mode):
            raise Refused("changed while it was being read", "run the command again")
        if opened.st_size > limit:
            raise TooBig(opened.st_size, limit)
        return _read_all(fd, opened.st_size, limit)
    finally:
        os.close(fd)


def _read_all(fd: int, size: int, limit: int) -> bytes:
    """Read to the end, never more than `limit` bytes (the file may grow while being read)."""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(limit + 1 - total, max(size + 1 - total, 65536)))
        if not chunk:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise TooBig(total, limit)


def decode_text(data: bytes) -> str:
    """UTF-8 text with universal newlines, as `Path.read_text` gives it.

    Raises UnicodeDecodeError."""
    text = data.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


@overload
def read_text(root: Path, path: Path, shown: str, limit: int = ..., missing_ok: Literal[False] = ...) -> str: ...


@overload
def read_text(root: Path, path: Path, shown: str, limit: int = ..., *, missing_ok: bool) -> str | None: ...


def read_text(
    root: Path, path: Path, shown: str, limit: int = MAX_INPUT_BYTES, missing_ok: bool = False
) -> str | None:
    """A YAML file or template of the repo as text (None if `missing_ok` and nothing is
    there); every problem is a LoadError naming it."""
    try:
        data = read_input(root, path, limit)
    except TooBig as exc:
        raise LoadError(
            f"file {exc.reason}", file=shown,
            hint="input files (manifests, templates, gitops-gen.yaml, app.yaml, env.yaml) are "
            f"limited to {limit // (1024 * 1024)} MiB; split it",
        ) from None
    except Refused as exc:
        raise LoadError(f"{shown} {exc.reason}", file=shown, hint=exc.hint) from None
    except IsADirectoryError:
        raise LoadError("expected a file but found a directory", file=shown) from None
    except FileNotFoundError:
        if missing_ok:
            return None
        raise LoadError("file not found", file=shown) from None
    try:
        return decode_text(data)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LoadError(
            f"file is not valid UTF-8 (byte {exc.start})", file=shown, line=line,
            hint="save the file as UTF-8; binary data belongs in a ConfigMap's data files, not in manifests",
        ) from None
