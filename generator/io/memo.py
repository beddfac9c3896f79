"""A content-keyed memo of the costly pure steps of a render: parsing a file's text into YAML
documents, and scanning an object for credentials (only "found nothing" is kept).
(Emitting is not memoized: the emitter is faster than computing a key would be.)

Keys are digests of the text itself, so an entry can never be stale: a changed file simply
misses; a hit is a fresh copy decoded from the stored result. This is what makes a
one-app change in a large repo fast to re-render. The memo of one environment is one file under
the user's cache folder; a render keeps only the entries it used, so it stays bounded.
Set GITOPS_GEN_CACHE=off (or pass --no-cache) to disable it; GITOPS_GEN_CACHE_DIR moves it.

The cache folder may be shared (CI caches restored across branches), so it holds data only,
never code: parse results are JSON (a document JSON cannot hold exactly, such as one with
non-string keys, dates, binary values or YAML anchors, is simply not memoized), and each file is
`MAGIC`, the format number and a MAC of the rest (keyed BLAKE2b) under a key kept outside the
cache folder (`memo_key`). A file that is truncated, corrupt, of another format or version, or
written by anyone without the key is a miss as a whole; nothing in it is decoded.
"""

from __future__ import annotations

import functools
import json
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator import __version__
from generator.steps.hashing import sha256

if TYPE_CHECKING:
    from generator.secrets.scan import FieldPath, Finding

# CPython's own BLAKE2 and constant-time comparison, not hashlib's and hmac's: those load
# OpenSSL, which costs every render 3.5 MB of memory (BLAKE2 is built in). BLAKE2b keyed with
# the memo key is a MAC by design (RFC 7693), and faster here than SHA-256 without OpenSSL.
try:
    from _blake2 import blake2b as _blake2b
    from _operator import _compare_digest
except ImportError:  # pragma: no cover - another Python implementation
    from hashlib import blake2b as _blake2b
    from hmac import compare_digest as _compare_digest  # type: ignore[no-redef]

# PyYAML and the scanner are imported where used, not here: the render index
# (generator/io/index.py) reads memo files on the start-up path of a no-change render.

# Bump when parsing or emitting changes in a way the key does not capture.
# 6: data-only records with an HMAC; 7: input rules (yaml_io.Rules) part of the parse key;
# 8: keyed BLAKE2b instead of HMAC-SHA256
FORMAT = 8
MAGIC = b"gitops-gen memo\n"
_HEAD = struct.Struct("<I")  # the format number, after MAGIC
_MAC_SIZE = 32
_RECORD = struct.Struct("<BII")  # kind, key length, value length
Docs = list[tuple[Any, int]]
KEY_ENV = "GITOPS_GEN_CACHE_KEY"


def cache_root() -> Path | None:
    if os.environ.get("GITOPS_GEN_CACHE", "").lower() in ("off", "0", "false", "no"):
        return None
    explicit = os.environ.get("GITOPS_GEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitops-gen" / "render"


# Parse results made once in the parent process before environments are rendered in forked
# workers (steps/load.share_base_parses): every worker reads the same base manifests, and the
# fork hands these encoded results to all of them. Same keys and encoding as a memo's entries,
# so a hit is the same fresh copy a warm memo gives. Emptied when the workers are done.
_SHARED: dict[bytes, bytes] = {}


def _parse_key(text: str, rules: str) -> bytes:
    return sha256(rules.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).digest()


def share_parse(text: str, parse: Callable[[str], Docs], rules: str = "") -> None:
    """Parse `text` now and keep the result for every Memo of this process and its forks."""
    key = _parse_key(text, rules)
    if key not in _SHARED and "&" not in text:  # anchors share objects, which JSON cannot
        encoded = _encode_docs(parse(text))
        if encoded is not None:
            _SHARED[key] = encoded


def clear_shared() -> None:
    _SHARED.clear()


class Memo:
    """Parse results of one environment, loaded from and saved to `path`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        import yaml

        self._stamp = (FORMAT, __version__, yaml.__version__, _parser_digest().hex())
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
        return cls(_memo_file(root, f"{env}.memo", enabled))

    def _load(self, path: Path) -> None:
        for kind, key, value in _read_records(path, self._stamp):
            if kind == _PARSED:
                self._old_parse[key] = value
            elif kind == _CLEAN:
                self._old_clean.add(key)

    def parse(self, text: str, parse: Callable[[str], Docs], rules: str = "") -> Docs:
        """`parse(text)`, or a fresh copy of its earlier result for the same text read under the
        same input `rules` (the same text may be a manifest and a settings file)."""
        key = _parse_key(text, rules)
        blob = self.parse_used.get(key) or self._old_parse.get(key)
        if blob is not None:
            docs = _decode_docs(blob)
            if docs is not None:
                self.hits += 1
                self.parse_used[key] = blob
                return docs
        blob = _SHARED.get(key)
        if blob is not None:
            docs = _decode_docs(blob)
            if docs is not None:
                if self.path is not None:
                    self.parse_used[key] = blob
                return docs
        docs = parse(text)
        if self.path is not None and "&" not in text:  # anchors share objects, which JSON cannot
            # Not compressed: zlib cost more time (cold and warm) than the megabytes it saved.
            encoded = _encode_docs(docs)
            if encoded is not None:
                self.parse_used[key] = encoded
        return docs

    def scan(self, obj: Mapping[str, Any]) -> dict[FieldPath, list[Finding]]:
        """`scan.scan_fields(obj)`, skipped for an object that scanned clean before (same object,
        same scanner rules); one with a finding is always scanned again, so its error is reported."""
        from generator.secrets.scan import object_digest, scan_fields

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
        records = [(_PARSED, k, v) for k, v in self.parse_used.items()]
        records += [(_CLEAN, k, b"") for k in self.clean_used]
        _store(self.path, self._stamp, records)


def _memo_file(root: Path, name: str, enabled: bool) -> Path | None:
    """Where a memo of the repo at `root` lives, or None when memos are off."""
    folder = cache_root() if enabled else None
    if folder is None:
        return None
    return folder / sha256(str(root.resolve()).encode()).hexdigest()[:16] / name


_PARSED, _CLEAN, _FILE, _ENTRY = 1, 2, 3, 4  # record kinds
Record = tuple[int, bytes, bytes]
# A record to write: its value may come in pieces, written one after the other (read back joined).
Written = tuple[int, bytes, bytes | Sequence[bytes]]


def _encode_docs(docs: Docs) -> bytes | None:
    """Parse results as JSON text, or None when JSON would not give back exactly the same
    values (non-string keys, dates, binary, sets, NaN): those are parsed afresh each time."""
    try:
        text = json.dumps(docs, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    # The parser tells when the documents hold only JSON's types under string keys
    # (yaml_io.Documents.json_exact); anything else is checked by a round trip at C speed.
    if not getattr(docs, "json_exact", False) and _decoded(json.loads(text)) != docs:
        return None
    return text.encode("utf-8", "surrogatepass")


def _decoded(value: Any) -> Docs:
    return [(doc, line) for doc, line in value]


def _decode_docs(blob: bytes) -> Docs | None:
    try:
        value = json.loads(blob.decode("utf-8", "surrogatepass"))
        docs = _decoded(value)
    except (ValueError, TypeError, RecursionError):
        return None  # unreachable with a verified file; a miss rather than a crash regardless
    if not all(isinstance(line, int) for _, line in docs):
        return None
    return docs


def memo_key() -> bytes | None:
    """The secret that authenticates memo files, or None (then nothing is memoized).

    `GITOPS_GEN_CACHE_KEY` when set; else 32 random bytes made once per user in
    `$XDG_CONFIG_HOME/gitops-gen/cache.key` (default ~/.config), outside the cache folder, so
    whoever can write the cache (a shared CI cache) cannot forge an entry."""
    given = os.environ.get(KEY_ENV)
    if given:
        return sha256(given.encode()).digest()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    path = Path(base) / "gitops-gen" / "cache.key"
    try:
        with open(path, "rb") as handle:
            key = handle.read(64)
        if len(key) >= 32:
            return key
    except OSError:
        pass
    key = os.urandom(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key
    except FileExistsError:  # another render made it first
        try:
            with open(path, "rb") as handle:
                key = handle.read(64)
            return key if len(key) >= 32 else None
        except OSError:
            return None
    except OSError:
        return None


def _mac(key: bytes, body: bytes = b"") -> _blake2b:
    """The MAC of `body` under `key` (`update` it with more, then `digest()`): BLAKE2b keyed
    with the memo key (at most 64 bytes, BLAKE2b's limit: `memo_key` reads no more)."""
    return _blake2b(body, key=key, digest_size=_MAC_SIZE)


# Records are written in runs of about this many bytes, a larger value on its own: a memo file
# is written without a copy of its body in memory (the render index's JSON is megabytes).
_RUN = 1 << 16


def _pack(stamp: tuple[Any, ...], records: Iterable[Written]) -> Iterator[bytes]:
    """The body of a memo file, in pieces to write one after the other."""
    stamp_bytes = json.dumps(stamp).encode()
    run = [_HEAD.pack(len(stamp_bytes)), stamp_bytes]
    size = 0
    for kind, key, value in records:
        pieces = [value] if isinstance(value, bytes) else value
        length = sum(len(p) for p in pieces)
        run += [_RECORD.pack(kind, len(key), length), key]
        if length >= _RUN:
            yield b"".join(run)
            yield from pieces
            run, size = [], 0
            continue
        run += pieces
        size += length
        if size >= _RUN:
            yield b"".join(run)
            run, size = [], 0
    yield b"".join(run)


def _unpack(body: bytes, stamp: tuple[Any, ...]) -> Iterator[Record]:
    (size,) = _HEAD.unpack_from(body, 0)
    if body[_HEAD.size : _HEAD.size + size] != json.dumps(stamp).encode():
        return  # another version of the tool, or of PyYAML: every entry is a miss
    at = _HEAD.size + size
    end = len(body)
    while at < end:
        kind, key_size, value_size = _RECORD.unpack_from(body, at)
        at += _RECORD.size
        key = body[at : at + key_size]
        value = body[at + key_size : at + key_size + value_size]
        at += key_size + value_size
        if at > end:
            return  # cannot happen in a verified file
        yield kind, key, value


def _read_records(path: Path, stamp: tuple[Any, ...]) -> list[Record]:
    """The records of a memo file, or none when it is missing, unreadable or fails any check:
    magic, format number, then the MAC over everything after it (before any decoding)."""
    key = memo_key()
    if key is None:
        return []
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return []
    head = MAGIC + _HEAD.pack(FORMAT)
    if not data.startswith(head) or len(data) < len(head) + _MAC_SIZE:
        return []
    mac, body = data[len(head) : len(head) + _MAC_SIZE], data[len(head) + _MAC_SIZE :]
    if not _compare_digest(mac, _mac(key, body).digest()):
        return []
    try:
        return list(_unpack(body, stamp))
    except struct.error:
        return []


def _store(path: Path, stamp: tuple[Any, ...], records: Iterable[Written]) -> None:
    """Write the records to `path` through a temporary file beside it and a rename. Best
    effort: a cache must never fail a render. (No `tempfile`: its imports cost every render memory.)"""
    key = memo_key()
    if key is None:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            # The MAC comes before the body it covers: a placeholder first, the MAC computed as
            # the body is written, then written in its place. (No copy of the body in memory.)
            head = MAGIC + _HEAD.pack(FORMAT)
            handle.write(head + bytes(_MAC_SIZE))
            mac = _mac(key)
            for piece in _pack(stamp, records):
                mac.update(piece)
                handle.write(piece)
            handle.seek(len(head))
            handle.write(mac.digest())
        # Not renamed over the old file: on ext4 that makes the rename wait for the new file's
        # data to reach the disk (auto_da_alloc), up to a second for a memo of megabytes on a
        # busy disk. A cache file missing for a moment is a miss, nothing worse.
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def store_entry(path: Path, stamp: tuple[Any, ...], key: bytes, value: bytes | Sequence[bytes]) -> None:
    """Keep one value under `key` in its own memo file (authenticated like every memo file;
    best effort). Used by memos kept one file per key, such as Helm's output and the render
    index. `value` may be given in pieces (`load_entry` gives them back joined)."""
    _store(path, stamp, [(_ENTRY, key, value)])


def load_entry(path: Path, stamp: tuple[Any, ...], key: bytes) -> bytes | None:
    """The value `store_entry` kept at `path` under `key`, or None: a file that is missing,
    truncated, corrupt, of another format or stamp, not made with our key, or holding the
    entry of another key (a genuine file copied to this path) is a miss."""
    records = _read_records(path, stamp)
    if len(records) != 1:
        return None
    kind, found, value = records[0]
    return value if kind == _ENTRY and _compare_digest(found, key) else None


Identity = bytes  # inode, size, mtime and ctime (ns) of a file, packed
Stat = bytes  # a path's lstat as STAT packs it: mode, then what `identity` holds
STAT = struct.Struct("<I4Q")  # mode, inode, size, mtime and ctime (ns); the render index's identities too


def stat_of(st: os.stat_result) -> Stat:
    """What identities use of a stat result, packed (a stat result itself weighs ~1 kB)."""
    return STAT.pack(st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def identity(path: Path | str, st: Stat | None = None) -> Identity | None:
    """The file's inode, size, mtime and ctime (from `st`, its lstat, when given)."""
    if st is None:
        try:
            st = stat_of(os.stat(path, follow_symlinks=False))
        except OSError:
            return None
    return st[4:]


@functools.lru_cache(maxsize=None)
def _sources_digest(names: tuple[str, ...]) -> bytes:
    """A digest of these modules' source files (beside this one)."""
    here = Path(__file__).parent
    return sha256(b"".join((here / name).read_bytes() for name in names)).digest()


def _parser_digest() -> bytes:
    """The code that parses inputs and its rules: a change to how a text reads (a plain `1:30` in
    a manifest, say) must make every parse entry a miss, not hand back the old reading."""
    return _sources_digest(("yaml_io.py", "readers.py"))


def _emitter_digest() -> bytes:
    """The code that turns objects into file text: a change to it must make every entry a miss."""
    return _sources_digest(("output.py", "yaml_io.py"))


class OutputMemo:
    """What the last render left in out/<env>/: for each file, a digest of what it was emitted
    from and the file's identity right after it was written or found equal.

    A file whose identity is unchanged has not been touched since (any write, rename or
    `git checkout` changes its ctime, which no program can set back), so when the digest of
    what would be emitted matches too, the file is known to be current without emitting or
    reading it. Anything else is compared the slow way. Saved beside the parse memo.
    """

    def __init__(self, path: Path | None) -> None:
        import yaml

        self.path = path
        # The emitter's code and PyYAML (its libyaml fallback) decide the text as much as the object.
        self._stamp = (FORMAT, __version__, yaml.__version__, _emitter_digest().hex() if path is not None else "")
        # rel path -> digest + identity, one bytes object per file (thousands of them)
        self._old: dict[str, bytes] = {}
        self._new: dict[str, bytes] = {}
        if path is not None:
            for kind, key, value in _read_records(path, self._stamp):
                if kind == _FILE:
                    try:
                        self._old[key.decode("utf-8")] = value
                    except UnicodeDecodeError:
                        pass

    @classmethod
    def for_env(cls, root: Path, env: str, enabled: bool = True) -> OutputMemo:
        return cls(_memo_file(root, f"{env}.out.memo", enabled))

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

    def record(self, rel_path: str, digest: bytes, path: Path | str, st: Stat | None = None) -> None:
        """The file at `path` now holds what `digest` emits (`st`: its lstat, when taken already)."""
        if self.path is None:
            return
        found = identity(path, st)
        if found is not None:
            self._new[rel_path] = digest + found

    def carry(self, paths: Iterable[str]) -> None:
        """These files are as the last render left them: keep what was known of them."""
        for rel_path in paths:
            known = self._old.get(rel_path)
            if known is not None and rel_path not in self._new:
                self._new[rel_path] = known

    def save(self) -> None:
        if self.path is None or self._new == self._old:
            return
        _store(self.path, self._stamp, [(_FILE, k.encode("utf-8"), v) for k, v in self._new.items()])
