"""The content hash that names a ConfigMap. Pure functions; the algorithm is documented in the
README ("The hash algorithm") and must never change silently: every name in every repo depends
on it.

    canonical = JSON of {"binaryData": {...}, "data": {...}} with keys sorted at every level,
                separators "," and ":", non-ASCII characters written as UTF-8 (not escaped)
    suffix    = first `length` hex characters of SHA-256(canonical as UTF-8)
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Protocol



class Digest(Protocol):
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def _sha256_function() -> Callable[[bytes], Digest]:
    """CPython's built-in SHA-256 (`_sha256` in 3.11, `_sha2` from 3.12): the same digests as
    hashlib's, without loading OpenSSL, which costs 3.5 MB of memory in every render."""
    for module in ("_sha256", "_sha2"):
        try:
            found: Callable[[bytes], Digest] = getattr(importlib.import_module(module), "sha256")
            return found
        except (ImportError, AttributeError):
            continue
    from hashlib import sha256 as fallback  # pragma: no cover - another Python implementation

    return fallback  # pragma: no cover


sha256 = _sha256_function()

DEFAULT_LENGTH = 10
MIN_LENGTH = 6
MAX_LENGTH = 64


def canonical(data: Mapping[str, str], binary_data: Mapping[str, str]) -> bytes:
    """The exact bytes that are hashed."""
    doc = {"binaryData": dict(binary_data), "data": dict(data)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_hash(
    data: Mapping[str, str], binary_data: Mapping[str, str], length: int = DEFAULT_LENGTH
) -> str:
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"hash length must be {MIN_LENGTH}..{MAX_LENGTH}, got {length}")
    return sha256(canonical(data, binary_data)).hexdigest()[:length]


def hashed_name(name: str, suffix: str) -> str:
    return f"{name}-{suffix}"


def object_hash(value: object, length: int = DEFAULT_LENGTH) -> str:
    """The suffix of a secret-producing object (SealedSecret, SOPS Secret, ExternalSecret):
    SHA-256 over `value` as JSON with the same rules as `canonical` (keys sorted, compact,
    UTF-8), first `length` hex characters. `value` is the part of the object that decides the
    Secret's content, as committed (encrypted or declarative)."""
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"hash length must be {MIN_LENGTH}..{MAX_LENGTH}, got {length}")
    # default=str: YAML scalars JSON lacks (timestamps) hash as their text, never crash.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return sha256(text.encode("utf-8")).hexdigest()[:length]
