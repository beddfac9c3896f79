"""Step: keep superseded versions of hashed ConfigMaps and of hashed Secret producers (SOPS
Secrets, SealedSecrets, ExternalSecrets) in out/<env>/, so rollbacks keep working.

When a hashed ConfigMap's content changes, its previous version (the object the old ReplicaSet
still mounts) stays in the output as its own immutable file, beside the current one, until
`keep` newer versions have superseded it. A Secret producer is kept the same way: its old
version keeps producing the old Secret (`<name>-<old hash>`) that the old ReplicaSet reads. Older versions leave out/, so the GitOps engine's
prune removes them from the cluster: garbage stays bounded.

History is read from out/<env>/ itself, nothing else: a render is a pure function of the
sources plus the current out/, where git's copy of out/ (HEAD) stands in for version files the
working tree lost. The lineage of a version is its kind, its namespace and
its lineage annotation (LINEAGE_ANNOTATIONS: `gitops-gen.io/config-name`, the declared name of a
ConfigMap; `gitops-gen.io/secret-name`, the declared name of the Secret a producer makes); the order among
superseded versions is a counter written once, when a version is superseded
(`gitops-gen.io/superseded-order`). A retained file never changes while it stays retained, and
the current version carries no history at all, so rendering twice changes nothing and a
`git revert` of a render's commit restores an out/ that the next render leaves as it is.

`read_history` does the reading; everything else here is a pure function.
"""

from __future__ import annotations

import glob

import copy
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.steps import hashing
from generator.steps.configmaps import CONFIG_NAME_ANNOTATION
from generator.secrets.producers import PRODUCER_KINDS, SECRET_NAME_ANNOTATION, hash_payload
from generator.errors import ConfigMapError, LoadError, ValidationError
from generator.model import Origin, Resource
from generator.io.gitref import Committed
from generator.io.output import HEADER, KUSTOMIZATION, Files, file_name, is_owned, kustomization, ordered
from generator.io.write import read_regular
from generator.io.yaml_io import dump_document, load_documents

VERSION_ANNOTATION = "gitops-gen.io/version"
SUPERSEDED = "superseded"
SUPERSEDED_BY_ANNOTATION = "gitops-gen.io/superseded-by"
ORDER_ANNOTATION = "gitops-gen.io/superseded-order"
_POSITION_KEYS = (VERSION_ANNOTATION, SUPERSEDED_BY_ANNOTATION, ORDER_ANNOTATION)
# The kinds that have versions, and the annotation naming the lineage of each.
LINEAGE_ANNOTATIONS = {"ConfigMap": CONFIG_NAME_ANNOTATION, **{k: SECRET_NAME_ANNOTATION for k in PRODUCER_KINDS}}
# Only their files can hold versions; file names start with the lower-cased kind.
_VERSION_GLOBS = tuple(f"*/{kind.lower()}-*.yaml" for kind in LINEAGE_ANNOTATIONS)

Lineage = tuple[str, str | None, str]  # (kind, namespace, declared name)


@dataclass(frozen=True)
class Version:
    """A version of a hashed ConfigMap or Secret producer found in out/<env>/: the current one or
    a superseded one.

    A superseded version read from out/ is kept verbatim while it stays, so only its head
    (apiVersion, kind, metadata) is parsed up front; `whole` parses the rest when needed.
    """

    path: str  # relative to out/<env>/
    shown: str  # as the user should see it, e.g. out/prod/engine/configmap-x.yaml
    obj: dict[str, Any]  # the whole object, or only its head when `source` is set and not `complete`
    source: str | None = None  # the file's text as read; None for a version made by this render
    complete: bool = True

    @functools.cached_property
    def whole(self) -> dict[str, Any]:
        """The whole object, checked: what it hashes still matches the name's hash suffix."""
        if self.complete or self.source is None:
            return self.obj
        obj, line = _load_one(self.source, self.shown)
        if obj is None:
            raise LoadError("not a valid version: expected one object", file=self.shown,
                            hint=_edited(self.shown))
        _check_whole(obj, self.shown, line)
        return obj

    @property
    def annotations(self) -> dict[str, Any]:
        meta = self.obj.get("metadata") or {}
        return dict(meta.get("annotations") or {})

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def lineage(self) -> Lineage:
        ns = self.obj["metadata"].get("namespace")
        return (self.kind, None if ns is None else str(ns), str(self.annotations[LINEAGE_ANNOTATIONS[self.kind]]))

    @property
    def superseded(self) -> bool:
        return self.annotations.get(VERSION_ANNOTATION) == SUPERSEDED

    @property
    def order(self) -> int:
        """Position among superseded versions: higher is newer; 0 for a current version."""
        return int(self.annotations[ORDER_ANNOTATION]) if self.superseded else 0


@dataclass(frozen=True)
class Retained:
    """A superseded version that stays in out/<env>/: its file and the object in it."""

    path: str  # relative to out/<env>/
    text: str
    resource: Resource
    lineage: tuple[str, str, str] = ("", "", "")  # kind, namespace or "", declared name: the order of retained files


def content(obj: Mapping[str, Any]) -> Any:
    """What a version may never change: a ConfigMap's data and binaryData, what decides a Secret
    producer's hash (generator/secrets/producers.py, hash_payload)."""
    if obj.get("kind") == "ConfigMap":
        return dict(obj.get("data") or {}), dict(obj.get("binaryData") or {})
    return hash_payload(obj)


def read_history(
    folder: Path, shown: str, unchanged: Mapping[str, str] | None = None,
    current: Callable[[str, Path], bool] | None = None, committed: Committed | None = None,
    apps: Iterable[str] | None = None,
) -> list[Version]:
    """The versions of hashed ConfigMaps and Secret producers in out/<env>/ (`folder`, shown as
    `shown`), in path order.

    Only files of those kinds are read. A file whose text equals `unchanged[path]` (the file the
    render produces at that path anyway) is skipped without parsing: it is a current version
    that stays current, so it adds nothing to the history. `current(path, file)` may say so
    without reading the file (generator/memo.py, OutputMemo).

    `apps`: only these apps' folders (an incremental render: generator/incremental.py).

    `committed` (git's copy of the folder, generator/io/gitref.py) fills in what the working
    tree lacks: a version file that is missing there, or left unmerged by a conflicted merge,
    revert or cherry-pick, is read from HEAD (then MERGE_HEAD). So `rm -rf out`, a conflict in
    out/ or an interrupted render never lose a version that was committed.
    """
    unchanged = unchanged or {}
    skip = committed.unmerged if committed is not None else frozenset()
    texts: dict[str, str] = {}
    present: set[str] = set()
    if folder.is_dir() and not folder.is_symlink():  # links in out/ are refused when writing (io/write.py)
        globs = _VERSION_GLOBS if apps is None else [f"{glob.escape(a)}/{g[2:]}" for a in apps for g in _VERSION_GLOBS]
        for path in sorted({p for pattern in globs for p in folder.glob(pattern)}):
            rel = path.relative_to(folder).as_posix()
            if rel in skip or path.parent.is_symlink():
                continue
            present.add(rel)
            if current is not None and current(rel, path):
                continue
            text = read_regular(path)
            if text is not None and unchanged.get(rel) != text:
                texts[rel] = text
    versions = parse_history(texts, shown)
    if committed is not None:
        from_git = committed.texts(sorted(set(committed.blobs) - present))
        for label in sorted({commit for commit, _ in from_git.values()}):
            versions += parse_history({rel: text for rel, (commit, text) in from_git.items()
                                       if commit == label and unchanged.get(rel) != text}, f"{label}:{shown}")
    return versions


def is_version_file(rel: str) -> bool:
    """Whether a path of out/<env>/ can hold a version (`<app>/configmap-*.yaml`, or the file of
    a Secret producer kind: `<app>/sealedsecret-*.yaml`, ...), as `_VERSION_GLOBS` finds them."""
    app, _, name = rel.partition("/")
    return bool(app) and "/" not in name and name.endswith(".yaml") and \
        any(name.startswith(f"{kind.lower()}-") for kind in LINEAGE_ANNOTATIONS)


def parse_history(texts: Mapping[str, str], shown: str) -> list[Version]:
    """The versions among files of out/<env>/ (path -> text), in path order.

    A version is a generator-owned file holding one ConfigMap or Secret producer with its lineage
    annotation; every other file is no version and is ignored.
    """
    versions: list[Version] = []
    for rel in sorted(texts):
        text = texts[rel]
        if is_owned(text) and (CONFIG_NAME_ANNOTATION in text or SECRET_NAME_ANNOTATION in text):
            version = _parse_version(text, rel, f"{shown}/{rel}")
            if version is not None:
                versions.append(version)
    return versions


def _edited(shown: str) -> str:
    ref, _, path = shown.rpartition(":")
    if ref:
        return f"this generated file was edited by hand before it was committed at {ref}: delete it from out/ there"
    return (f"this generated file was edited by hand: restore it (`git checkout HEAD -- {path}`), or delete it "
            "and render: a version committed at HEAD is read from git")


def _parse_version(text: str, rel: str, shown: str) -> Version | None:
    # Only a superseded version can be read by its head alone; any other is parsed whole at once.
    head = _head(text) if f"{VERSION_ANNOTATION}: {SUPERSEDED}" in text else None
    obj, line = _load_one(head if head is not None else text, shown)
    if obj is None:
        return None
    meta = obj.get("metadata")
    kind = obj.get("kind")
    if kind not in LINEAGE_ANNOTATIONS or not isinstance(meta, dict):
        return None
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict) or LINEAGE_ANNOTATIONS[kind] not in annotations:
        return None
    if annotations.get(VERSION_ANNOTATION) != SUPERSEDED and not _hashed_name(kind, meta, annotations):
        return None  # an object that kept its plain name (`hash: false`) is no version
    problem = _bad_metadata(kind, meta, annotations)
    if problem is not None:
        raise LoadError(f"not a valid {kind} version: {problem}", file=shown, line=line, hint=_edited(shown))
    if head is not None and annotations.get(VERSION_ANNOTATION) == SUPERSEDED:
        return Version(rel, shown, obj, text, complete=False)
    if head is not None:
        obj, line = _load_one(text, shown)
        if obj is None:
            return None
    _check_whole(obj, shown, line)
    return Version(rel, shown, obj, text)


# The head of a file the generator wrote: everything up to the first top-level key after
# `metadata:` (block style, metadata right after apiVersion and kind, as output.ordered lays out).
_HEAD = re.compile(r"^metadata:\n(?:[ ].*\n|\n)*", re.MULTILINE)


def _head(text: str) -> str | None:
    match = _HEAD.search(text)
    return text[: match.end()] if match else None


def _load_one(text: str, shown: str) -> tuple[dict[str, Any] | None, int | None]:
    """The file's one object and its line, or None when it holds anything else."""
    try:
        docs = load_documents(text, shown)
    except LoadError as exc:
        exc.hint = _edited(shown)
        raise
    if len(docs) != 1 or not isinstance(docs[0][0], dict):
        return None, None
    return docs[0][0], docs[0][1]


def _suffix(kind: str, meta: dict[str, Any], annotations: dict[str, Any]) -> str | None:
    """The hash suffix of a version's name: after `<declared name>-` for a ConfigMap; after the
    last `-` for a Secret producer (its object name may differ from the Secret's)."""
    name, declared = meta.get("name"), annotations[LINEAGE_ANNOTATIONS[kind]]
    if not isinstance(name, str) or not isinstance(declared, str):
        return None
    if kind == "ConfigMap":
        suffix = name[len(declared) + 1:] if name.startswith(declared + "-") else ""
    else:
        suffix = name.rsplit("-", 1)[1] if "-" in name else ""
    return suffix if hashing.MIN_LENGTH <= len(suffix) <= hashing.MAX_LENGTH else None


def _hashed_name(kind: str, meta: dict[str, Any], annotations: dict[str, Any]) -> bool:
    return _suffix(kind, meta, annotations) is not None


def _bad_metadata(kind: str, meta: dict[str, Any], annotations: dict[str, Any]) -> str | None:
    if not isinstance(meta.get("name"), str):
        return "`metadata.name` is not a string"
    if not isinstance(meta.get("namespace", ""), str):
        return "`metadata.namespace` is not a string"
    lineage = LINEAGE_ANNOTATIONS[kind]
    declared = annotations[lineage]
    if not isinstance(declared, str):
        return f"annotation {lineage} is not a string"
    order = annotations.get(ORDER_ANNOTATION)
    if annotations.get(VERSION_ANNOTATION) == SUPERSEDED and not (isinstance(order, str) and order.isdigit()):
        return f"annotation {ORDER_ANNOTATION} must be a whole number in quotes, got {order!r}"
    if not _hashed_name(kind, meta, annotations):
        return f"name {meta['name']!r} is not {declared!r} plus a hash suffix"
    return None


def _check_whole(obj: dict[str, Any], shown: str, line: int | None) -> None:
    """What the version hashes still gives the name's suffix (for a ConfigMap: data and
    binaryData are mappings of strings)."""
    meta, kind = obj["metadata"], obj["kind"]
    name = meta["name"]
    suffix = _suffix(kind, meta, meta["annotations"]) or ""
    problem = None
    if kind == "ConfigMap":
        for field_ in ("data", "binaryData"):
            if not isinstance(obj.get(field_) or {}, dict):
                problem = f"`{field_}` is not a mapping"
        if problem is None:
            data, binary = content(obj)
            if not all(isinstance(v, str) for v in (*data.values(), *binary.values())) or \
                    not hashing.suffix_matches(suffix, data, binary):
                problem = f"its data no longer matches the hash suffix of its name {name!r}"
    elif hashing.object_hash(hash_payload(obj), len(suffix)) != suffix:
        problem = f"its content no longer matches the hash suffix of its name {name!r}"
    if problem is not None:
        raise LoadError(f"not a valid {kind} version: {problem}", file=shown, line=line, hint=_edited(shown))


def check_collisions(current: Iterable[Resource], history: Iterable[Version]) -> None:
    """Stop when an object of this render takes the name of a version in out/ whose content
    differs: a version never changes content, so a hash suffix collided."""
    known: dict[tuple[str, str | None, str], list[Version]] = {}
    for v in history:
        known.setdefault((v.kind, v.obj["metadata"].get("namespace"), v.name), []).append(v)
    for r in current:
        if r.kind not in LINEAGE_ANNOTATIONS:
            continue
        for v in known.get((r.kind, r.namespace, r.name), []):
            if content(v.whole) != content(r.obj):
                raise ConfigMapError(collision_message(r, v), file=r.origin.file, line=r.origin.line,
                                     hint=collision_hint(r))


def collision_message(new: Resource, old: Version) -> str:
    hashed = new.declared is not None and new.name != new.declared
    what = f" (the new content of {new.declared!r})" if hashed else ""
    why = "their hash suffixes collide" if hashed else "it takes that version's name"
    return (
        f"{new.kind} {new.name!r}{what} has the same name as the version in {old.shown}, whose "
        f"content differs: {why}, and a version cannot change content"
    )


def collision_hint(new: Resource) -> str:
    if new.declared is None or new.name == new.declared:
        return "rename this ConfigMap: names ending in a hash suffix belong to versions of hashed ConfigMaps"
    length = len(new.name) - len(new.declared) - 1
    return (
        f"raise `hashLength` (now {length}) in gitops-gen.yaml or in this environment's env.yaml: "
        f"every hashed ConfigMap then gets a new, longer name"
    )


def supersede(
    current: Sequence[Resource], history: Sequence[Version], keep: int, env_namespace: str | None
) -> list[Retained]:
    """The superseded versions that stay in out/, newest first within each lineage.

    `current` is this render's objects, `history` what out/<env>/ holds now. For each lineage
    that still has an object in this render (a hashed ConfigMap or Secret producer), the previous
    current version (when its name differs from the new one) becomes superseded with the next
    order number, and the `keep` newest superseded versions stay. A version whose name is a
    current object's name (the content went back to an earlier version) is current, not
    retained. Lineages with no object left in this render leave out/ with all their versions.
    """
    check_collisions(current, history)
    owners = {lineage: r for r in current if (lineage := lineage_of(r)) is not None}
    taken = {(r.kind, r.namespace, r.name) for r in current if r.kind in LINEAGE_ANNOTATIONS}
    by_lineage: dict[Lineage, list[Version]] = {}
    for v in history:
        by_lineage.setdefault(v.lineage, []).append(v)
    retained: list[Retained] = []
    for lineage in sorted(by_lineage, key=lambda k: (k[0], k[1] or "", k[2])):
        owner = owners.get(lineage)
        if owner is None or keep <= 0:
            continue
        versions = _lineage_versions(by_lineage[lineage], owner.name)
        kept = [v for v in versions if (lineage[0], lineage[1], v.name) not in taken][:keep]
        retained += [_retained(v, owner, env_namespace, (lineage[0], lineage[1] or "", lineage[2])) for v in kept]
    return retained


def lineage_of(r: Resource) -> Lineage | None:
    """The lineage of an object of this render: a ConfigMap with a hashed name, or a Secret
    producer the secrets step hashed (it carries the name of its Secret); else None."""
    if r.declared is None:
        return None
    if r.kind == "ConfigMap":
        return (r.kind, r.namespace, r.declared_name)
    if r.kind in PRODUCER_KINDS:
        secret = (r.metadata.get("annotations") or {}).get(SECRET_NAME_ANNOTATION)
        return (r.kind, r.namespace, str(secret)) if secret is not None else None
    return None


def _lineage_versions(history: Sequence[Version], current_name: str) -> list[Version]:
    """Every superseded version of one lineage after this render, newest first, one per name."""
    superseded = [v for v in history if v.superseded]
    next_order = max((v.order for v in superseded), default=0) + 1
    previous = sorted((v for v in history if not v.superseded and v.name != current_name), key=lambda v: v.name)
    for i, v in enumerate(previous):
        superseded.append(mark_superseded(v, current_name, next_order + i))
    best: dict[str, Version] = {}
    for v in sorted(superseded, key=lambda v: (-v.order, v.path)):
        best.setdefault(v.name, v)
    return list(best.values())


def mark_superseded(v: Version, by: str, order: int) -> Version:
    obj = copy.deepcopy(v.whole)
    annotations = {k: val for k, val in v.annotations.items() if k not in _POSITION_KEYS}
    annotations.update({VERSION_ANNOTATION: SUPERSEDED, SUPERSEDED_BY_ANNOTATION: by, ORDER_ANNOTATION: str(order)})
    obj["metadata"]["annotations"] = annotations
    return Version(v.path, v.shown, obj)


def _retained(v: Version, owner: Resource, env_namespace: str | None, lineage: tuple[str, str, str]) -> Retained:
    """The file of a superseded version: beside its lineage's current version, named by its own
    (hashed) name, with a header saying what it is. Its origin is the file it is read from.
    A version that was superseded already keeps its text as it is (no re-render)."""
    resource = Resource(v.obj, Origin(v.shown), owner.app)
    text = v.source
    if text is None:
        text = (
            f"{HEADER}: a superseded version of {owner.kind} {owner.declared_name!r}, kept for rollbacks. "
            f"Do not edit.\n" + dump_document(ordered(resource.obj))
        )
    return Retained(file_name(resource, env_namespace), text, resource, lineage)


def with_retained(files: Mapping[str, str], retained: Sequence[Retained]) -> Mapping[str, str]:
    """The rendered files of an environment plus its retained versions, and a kustomization
    that lists them all."""
    if not retained:
        return files
    out = files.without(KUSTOMIZATION) if isinstance(files, Files) else Files(
        {p: t for p, t in files.items() if p != KUSTOMIZATION}
    )
    for r in retained:
        if r.path in out:
            raise ValidationError(
                f"the superseded version {r.resource.name!r} would be written to {r.path}, which another "
                f"object of this render already uses",
                file=r.resource.origin.file,
                hint=f"rename the {r.resource.kind} whose name ends like a hash suffix",
            )
        out.add(r.path, r.text)
    out.add(KUSTOMIZATION, kustomization(list(out)))
    return out

