"""The proof of an import: each environment built by Kustomize from the original tree and by us
(our out/<env>/ read back through the same `kubectl kustomize`), compared object by object.

What is ignored, because the tools differ there on purpose: our annotations (`gitops-gen.io/*`),
`immutable` on ConfigMaps (ours are immutable), line breaks inside base64 `binaryData` (Kustomize
wraps at 70 columns), and the hash suffix of a generated ConfigMap's name (objects are paired by
name without it, so a suffix that differs is reported once, as a name change). Everything else
that differs is printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.adopt.kubectl import kustomize_build
from generator.review.fielddiff import field_diff

OURS_PREFIX = "gitops-gen.io/"
# A hash suffix: Kustomize's 10 characters (2456789bcdfghkmt) or our hex (6..64).
_SUFFIX = re.compile(r"-([2456789bcdfghkmt]{10}|[0-9a-f]{6,64})$")

Key = tuple[str, str, str]  # kind, namespace, name without hash suffix


@dataclass(frozen=True)
class Difference:
    env: str
    obj: str  # Kind/name
    text: str

    def __str__(self) -> str:
        return f"{self.env}: {self.obj}: {self.text}"


def normalize(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    for field in ("annotations", "labels"):
        kept = {k: v for k, v in (meta.get(field) or {}).items() if not str(k).startswith(OURS_PREFIX)}
        if kept:
            meta[field] = kept
        else:
            meta.pop(field, None)
    out["metadata"] = meta
    if out.get("kind") == "ConfigMap":
        out.pop("immutable", None)
        if isinstance(out.get("binaryData"), dict):
            out["binaryData"] = {k: "".join(str(v).split()) for k, v in out["binaryData"].items()}
    return out


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    if obj.get("kind") == "ConfigMap":
        name = _SUFFIX.sub("", name)
    return str(obj.get("kind")), str(meta.get("namespace", "")), name


def _label(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def compare_objects(env: str, theirs: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[Difference]:
    a = {_key(o): normalize(o) for o in theirs}
    b = {_key(o): normalize(o) for o in ours}
    out: list[Difference] = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            out.append(Difference(env, _label(a[key]), "only in Kustomize's build"))
        elif key not in a:
            out.append(Difference(env, _label(b[key]), "only in ours"))
        else:
            for change in field_diff(a[key], b[key]):
                why = ""
                if isinstance(change.old, list) and isinstance(change.new, list) and \
                        sorted(map(repr, change.old)) == sorted(map(repr, change.new)):
                    why = " (the same items in another order)"
                out.append(Difference(env, _label(a[key]),
                                      f"{change.path or '(object)'}: Kustomize {change.old!r}, ours {change.new!r}{why}"))
    return out


def compare_env(kubectl: Path, env: str, kustomize_root: Path, shown: str, out_env: Path) -> tuple[int, list[Difference]]:
    theirs = kustomize_build(kubectl, kustomize_root, shown)
    ours = kustomize_build(kubectl, out_env, f"out/{env}")
    return len(theirs), compare_objects(env, theirs, ours)
