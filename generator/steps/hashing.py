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
from collections.abc import Mapping
from typing import Protocol



class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


class Hasher(Protocol):
    def __call__(self, data: bytes = ..., /) -> Digest: ...


def _sha256_function() -> Hasher:
    """CPython's built-in SHA-256 (`_sha256` in 3.11, `_sha2` from 3.12): the same digests as
    hashlib's, without loading OpenSSL, which costs 3.5 MB of memory in every render."""
    for module in ("_sha256", "_sha2"):
        try:
            found: Hasher = getattr(importlib.import_module(module), "sha256")
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


# --- Kustomize's suffix (`hashStyle: kustomize`) ---------------------------------------------
# So that a repo moved over from Kustomize keeps every ConfigMap name (and no pod rolls), a
# ConfigMap may be named exactly as kustomize's configMapGenerator names it. The rule, from
# sigs.k8s.io/kustomize/api/hasher/hasher.go (`Hasher.Hash`, `encodeConfigMap`, `encode`),
# checked against kubectl v1.32 (kustomize v5.5.0) and v1.35 (kustomize v5.7.1) in
# tests/test_hashing.py:
#   - the JSON object {"kind": "ConfigMap", "name": N, "data": D} plus "binaryData": B when the
#     object has binaryData. `name` is looked up with `yaml.Lookup("metadata/name")`, one field
#     literally named "metadata/name", which never exists: N is always "" (so two ConfigMaps with
#     the same data get the same suffix). D is "" (a string) when there is no `data` field.
#   - binaryData values are base64 as kyaml writes them (`encodeBase64` in kyaml/yaml/datamap.go):
#     broken into lines of 70 characters, each ended by "\n", when the text is 70 or longer.
#   - Go's json.Marshal: keys sorted, compact, UTF-8 kept, but `<`, `>`, `&`, U+2028 and U+2029
#     escaped as \u003c, \u003e, \u0026, \u2028, \u2029 (its HTML-safe default).
#   - SHA-256, lower-case hex, first 10 characters, then 0->g 1->h 3->k a->m e->t, so the
#     suffix uses only 2456789bcdfghkmt. Labels, annotations, namespace and `immutable` are not
#     part of it.
KUSTOMIZE_LENGTH = 10
_KUSTOMIZE_LETTERS = str.maketrans("013ae", "ghkmt")
_GO_HTML_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                  "\u2028": "\\u2028", "\u2029": "\\u2029"})
_BASE64_LINE = 70


def kustomize_base64_lines(text: str) -> str:
    """Base64 text broken as kyaml's encodeBase64 breaks it (only the line breaks change)."""
    flat = "".join(text.split())
    if len(flat) < _BASE64_LINE:
        return flat
    return "".join(flat[i : i + _BASE64_LINE] + "\n" for i in range(0, len(flat), _BASE64_LINE))


def kustomize_canonical(data: Mapping[str, str], binary_data: Mapping[str, str]) -> bytes:
    """The exact bytes kustomize hashes for a ConfigMap with this content."""
    doc: dict[str, object] = {"kind": "ConfigMap", "name": "", "data": dict(data) if data else ""}
    if binary_data:
        doc["binaryData"] = {k: kustomize_base64_lines(v) for k, v in binary_data.items()}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.translate(_GO_HTML_ESCAPES).encode("utf-8")


def kustomize_hash(data: Mapping[str, str], binary_data: Mapping[str, str]) -> str:
    """The 10-character suffix kustomize's configMapGenerator gives a ConfigMap of this content."""
    hexdigest = sha256(kustomize_canonical(data, binary_data)).hexdigest()
    return hexdigest[:KUSTOMIZE_LENGTH].translate(_KUSTOMIZE_LETTERS)


HASH_STYLES = ("gitops-gen", "kustomize")


def suffix_for(style: str, data: Mapping[str, str], binary_data: Mapping[str, str], length: int) -> str:
    """The suffix of a hashed ConfigMap in the given `hashStyle` (length applies to ours only)."""
    if style == "kustomize":
        return kustomize_hash(data, binary_data)
    return content_hash(data, binary_data, length)


def suffix_matches(suffix: str, data: Mapping[str, str], binary_data: Mapping[str, str]) -> bool:
    """Whether `suffix` is the hash of this content in either style (a retained version in out/
    may have been named in either)."""
    if len(suffix) == KUSTOMIZE_LENGTH and suffix == kustomize_hash(data, binary_data):
        return True
    return MIN_LENGTH <= len(suffix) <= MAX_LENGTH and content_hash(data, binary_data, len(suffix)) == suffix
