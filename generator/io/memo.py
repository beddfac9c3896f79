"""A content-keyed memo of the costly pure steps of a render: parsing a file's text into YAML
documents, and scanning an object for credentials (only "found nothing" is kept).
(Emitting is not memoized: the emitter is faster than computing a key would be.)

Keys are digests of the text itself, so an entry can never be stale: a changed file simply
misses; a hit is a fresh copy unpickled from the stored result. This is what makes a
one-app change in a large repo fast to re-render. The memo of one environment is one file under
the user's cache folder; a render keeps only the entries it used, so it stays bounded.
Set GITOPS_GEN_CACHE=off (or pass --no-cache) to disable it; GITOPS_GEN_CACHE_DIR moves it.
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from generator import __version__
from generator.steps.hashing import sha256
from generator.secrets.scan import FieldPath, Finding, object_digest, scan_fields

# Bump when parsing or emitting changes in a way the key does not capture.
FORMAT = 5
Docs = list[tuple[Any, int]]


def cache_root() -> Path | None:
    if os.environ.get("GITOPS_GEN_CACHE", "").lower() in ("off", "0", "false", "no"):
        return None
    explicit = os.environ.get("GITOPS_GEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitops-gen" / "render"


class Memo:
    """Parse results of one environment, loaded from and saved to `path`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp = (FORMAT, __version__, yaml.__version__)
        self._old_parse: dict[bytes, bytes] = {}
        self.parse_used: dict[bytes, bytes] = {}
        # Digests of objects (and of the scanner's rules) that scanned clean.
        self._old_clean: set[bytes] = set()
        self.clean_used: set[bytes] = set()
        self.hits = 0  # memo hits of this render (tests read it)
        if path is not None:
            self._load(path)

    @property
    def warm(self) -> bool:
        """Whether an earlier render left entries: then parsing is mostly hits."""
        return bool(self._old_parse)

    @classmethod
    def for_env(cls, root: Path, env: str, enabled: bool = True) -> Memo:
        return cls(_memo_file(root, f"{env}.pickle", enabled))

    def _load(self, path: Path) -> None:
        try:
            with open(path, "rb") as handle:
                stamp, parse, clean = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError):
            return  # no memo yet, or an unreadable one: start afresh
        if stamp == self._stamp:
            self._old_parse, self._old_clean = parse, clean

    def parse(self, text: str, parse: Callable[[str], Docs]) -> Docs:
        """`parse(text)`, or a fresh copy of its earlier result for the same text."""
        key = sha256(text.encode("utf-8", "surrogatepass")).digest()
        blob = self.parse_used.get(key) or self._old_parse.get(key)
        if blob is not None:
            self.hits += 1
            self.parse_used[key] = blob
            return pickle.loads(zlib.decompress(blob))  # type: ignore[no-any-return]
        docs = parse(text)
        if self.path is not None:
            # Compressed (about 4x, a few ms per thousand files): the entries are held until
            # the memo is saved, at the time the render holds the most.
            self.parse_used[key] = zlib.compress(pickle.dumps(docs, protocol=pickle.HIGHEST_PROTOCOL), 1)
        return docs

    def scan(self, obj: Mapping[str, Any]) -> dict[FieldPath, list[Finding]]:
        """`scan.scan_fields(obj)`, skipped for an object that scanned clean before (same object,
        same scanner rules); one with a finding is always scanned again, so its error is reported."""
        if self.path is None:
            return scan_fields(obj)
        key = object_digest(obj)
        if key in self.clean_used or key in self._old_clean:
            self.clean_used.add(key)
            self.hits += 1
            return {}
        found = scan_fields(obj)
        if not found:
            self.clean_used.add(key)
        return found

    def release(self) -> None:
        """Drop the entries from memory (after `save`): the render parses nothing more."""
        self._old_parse = {}
        self.parse_used = {}
        self._old_clean = set()
        self.clean_used = set()

    def save(self) -> None:
        """Write the entries this render used (best effort: a cache must never fail a render)."""
        if self.path is None:
            return
        if self.parse_used.keys() == self._old_parse.keys() and self.clean_used == self._old_clean:
            return
        _store(self.path, (self._stamp, self.parse_used, self.clean_used))


def _memo_file(root: Path, name: str, enabled: bool) -> Path | None:
    """Where a memo of the repo at `root` lives, or None when memos are off."""
    folder = cache_root() if enabled else None
    if folder is None:
        return None
    return folder / sha256(str(root.resolve()).encode()).hexdigest()[:16] / name


def _store(path: Path, value: Any) -> None:
    """Pickle `value` to `path` through a temporary file beside it and a rename. Best effort:
    a cache must never fail a render. (No `tempfile`: its imports cost every render memory.)"""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


Identity = bytes  # inode, size, mtime and ctime (ns) of a file, packed


def identity(path: Path | str) -> Identity | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return struct.pack("<4Q", st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _emitter_digest() -> bytes:
    """The code that turns objects into file text: a change to it must make every entry a miss."""
    here = Path(__file__).parent
    return sha256(b"".join((here / name).read_bytes() for name in ("output.py", "yaml_io.py"))).digest()


class OutputMemo:
    """What the last render left in out/<env>/: for each file, a digest of what it was emitted
    from and the file's identity right after it was written or found equal.

    A file whose identity is unchanged has not been touched since (any write, rename or
    `git checkout` changes its ctime, which no program can set back), so when the digest of
    what would be emitted matches too, the file is known to be current without emitting or
    reading it. Anything else is compared the slow way. Saved beside the parse memo.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        # The emitter's code and PyYAML (its libyaml fallback) decide the text as much as the object.
        self._stamp = (FORMAT, __version__, yaml.__version__, _emitter_digest() if path is not None else b"")
        # rel path -> digest + identity, one bytes object per file (thousands of them)
        self._old: dict[str, bytes] = {}
        self._new: dict[str, bytes] = {}
        if path is not None:
            try:
                with open(path, "rb") as handle:
                    stamp, old = pickle.load(handle)
                if stamp == self._stamp:
                    self._old = old
            except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError):
                pass

    @classmethod
    def for_env(cls, root: Path, env: str, enabled: bool = True) -> OutputMemo:
        return cls(_memo_file(root, f"{env}.out.pickle", enabled))

    def current(self, rel_path: str, digest: bytes, path: Path | str) -> bool:
        """Whether the file at `path` is known to hold what `digest` emits (then it is kept)."""
        if self.path is None:
            return False
        known = self._old.get(rel_path)
        if known is None or not known.startswith(digest):
            return False
        found = identity(path)
        if found is None or known != digest + found:
            return False
        self._new[rel_path] = known
        return True

    def record(self, rel_path: str, digest: bytes, path: Path | str) -> None:
        """The file at `path` now holds what `digest` emits."""
        if self.path is None:
            return
        found = identity(path)
        if found is not None:
            self._new[rel_path] = digest + found

    def save(self) -> None:
        if self.path is None or self._new == self._old:
            return
        _store(self.path, (self._stamp, self._new))
