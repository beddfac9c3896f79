"""`diff`: what a change to the sources does to an environment, in a reviewer's words.

Two sets of rendered files (the old: committed out/, another folder or out/ at a git ref; the
new: a fresh render) are parsed and compared as objects, not as text:

- A hashed ConfigMap is one lineage, matched by its `gitops-gen.io/config-name` annotation, so a
  content change reads `exchange-engine-config: 3f2a9c1b07 -> 9c1b77de10` plus key changes, not
  "one object removed, one added". Retained (superseded) versions of a lineage are reported in one
  line each, never as new ConfigMaps.
- A workload whose pod template changes rolls; the reasons are the ConfigMaps/Secrets whose
  name changed under it, image changes per container, and other pod-template fields.
- Objects that produce Secrets under hashed names (SOPS Secret, SealedSecret, ExternalSecret;
  annotation `gitops-gen.io/secret-name`) are lineages too, and a workload using the Secret
  rolls with "Secret <name> changed".
- Anything else gets a compact field-level diff. Secret values are never shown.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from generator.review.against import baseline
from generator.config import PodSpecPath
from generator.steps.configmaps import CONFIG_NAME_ANNOTATION
from generator.hints import unified_diff as _unified_diff
from generator.errors import LoadError
from generator.review.fielddiff import ADDED, CHANGED, REMOVED, FieldChange, field_diff
from generator.review.immutable import Refusal, refusals
from generator.steps import mutable
from generator.model import Origin, Resource
from generator.io.output import KUSTOMIZATION, Files
from generator.pipeline import Repo, RenderedEnv, each_env
from generator.io.heap import long_lived
from generator.steps.references import BUILTIN_POD_SPECS, CONTAINER_LISTS, FieldPath, find_refs, pod_spec_path
from generator.steps.retention import SUPERSEDED, VERSION_ANNOTATION
from generator.secrets.producers import PRODUCER_KINDS, SECRET_NAME_ANNOTATION, produced_secret
from generator.io.yaml_io import load_documents

SCHEMA = "gitops-gen.diff/v1"
RETENTION = "retention"  # status of a lineage whose only change is which old versions are kept
HIDDEN = "(hidden)"

Key = tuple[str, str | None, str]  # kind, namespace, name (a ConfigMap's declared name)


# ---------------------------------------------------------------- parsed output of one env


@dataclass(frozen=True)
class Obj:
    obj: dict[str, Any]
    app: str
    path: str  # relative to out/<env>/

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.obj.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = self.meta.get("namespace")
        return None if ns is None else str(ns)

    @property
    def annotations(self) -> dict[str, Any]:
        ann = self.meta.get("annotations")
        return ann if isinstance(ann, dict) else {}

    @property
    def lineage(self) -> str:
        """The declared name of a hashed object (the annotation of a ConfigMap, or of an object
        that produces a Secret: SOPS Secret, SealedSecret, ExternalSecret), else its name."""
        declared = self.annotations.get(CONFIG_NAME_ANNOTATION) if self.kind == "ConfigMap" else None
        declared = declared or self.annotations.get(SECRET_NAME_ANNOTATION)
        return str(declared) if declared else self.name

    @property
    def key(self) -> Key:
        return (self.kind, self.namespace, self.lineage)

    @property
    def hashed(self) -> bool:
        if self.kind == "ConfigMap":
            return CONFIG_NAME_ANNOTATION in self.annotations
        return SECRET_NAME_ANNOTATION in self.annotations

    @property
    def produced_secret(self) -> str | None:
        """The Secret this object makes the cluster create (itself, or an operator's target)."""
        return produced_secret(Resource(self.obj, Origin(self.path), self.app))

    @property
    def superseded(self) -> bool:
        """A retained old version of a lineage (see generator/retention.py)."""
        return self.annotations.get(VERSION_ANNOTATION) == SUPERSEDED


@dataclass
class Snapshot:
    """One environment's rendered objects: current ones by key, retained versions by lineage."""

    current: dict[Key, Obj] = field(default_factory=dict)
    retained: dict[Key, list[Obj]] = field(default_factory=dict)
    # (kind, namespace, final name) -> declared name: every version of every ConfigMap, and the
    # Secrets that hashed producers (SOPS Secret, SealedSecret, ExternalSecret) make
    lineage_of: dict[Key, str] = field(default_factory=dict)


Parsed = dict[str, list[tuple[Any, int]]]


def parse(files: Mapping[str, str], shown: str, known: Parsed | None = None) -> list[Obj]:
    """The objects of an env's files (relative path -> text); `shown` prefixes paths in errors.
    `known`: documents by text, filled and reused, so a text both sides hold (most files of a
    diff) is parsed once; the documents are shared, which is safe as nothing here changes them
    (`_without` copies first)."""
    objs: list[Obj] = []
    for path in sorted(files):
        if path == KUSTOMIZATION or "/" not in path:
            continue
        where = f"{shown}/{path}"
        text = files[path]
        docs = known.get(text) if known is not None else None
        if docs is None:
            docs = load_documents(text, where)
            if known is not None:
                known[text] = docs
        for doc, line in docs:
            if not isinstance(doc, dict):
                raise LoadError("a rendered file must hold a Kubernetes object", file=where, line=line,
                                hint="re-render with `gitops-gen render`; files of out/ are not edited by hand")
            objs.append(Obj(doc, path.split("/", 1)[0], path))
    return objs


def _current_of(versions: list[Obj]) -> Obj | None:
    """The live version of a lineage: the unmarked one, preferring the file named after the lineage."""
    live = [v for v in versions if not v.superseded]
    if len(live) <= 1:
        return live[0] if live else None
    stem = f"{versions[0].kind}-{versions[0].lineage}".lower()
    by_file = [v for v in live if v.path.rsplit("/", 1)[-1].split(".", 1)[0] == stem]
    return (by_file or live)[0]


def snapshot(objs: Iterable[Obj]) -> Snapshot:
    snap = Snapshot()
    lineages: dict[Key, list[Obj]] = {}
    for o in objs:
        if o.kind == "ConfigMap":
            lineages.setdefault(o.key, []).append(o)
            snap.lineage_of[(o.kind, o.namespace, o.name)] = o.lineage
        elif o.hashed and o.kind in PRODUCER_KINDS:  # a Secret producer: its versions, like a ConfigMap's
            lineages.setdefault(o.key, []).append(o)
            produced = o.produced_secret
            if produced is not None:
                snap.lineage_of[("Secret", o.namespace, produced)] = o.lineage
        else:
            snap.current.setdefault(o.key, o)
            produced = o.produced_secret if o.hashed else None
            if produced is not None:
                snap.lineage_of[("Secret", o.namespace, produced)] = o.lineage
    for key, versions in lineages.items():
        live = _current_of(versions)
        if live is not None:
            snap.current[key] = live
        old = sorted((v for v in versions if v is not live), key=lambda v: v.name)
        if old:
            snap.retained[key] = old
    return snap


# ---------------------------------------------------------------- the report's values


@dataclass(frozen=True)
class Value:
    """A ConfigMap value: text, or binary shown by size and digest."""

    text: str | None
    size: int
    sha256: str

    @classmethod
    def of_text(cls, text: str) -> Value:
        raw = text.encode()
        return cls(text, len(raw), hashlib.sha256(raw).hexdigest())

    @classmethod
    def of_base64(cls, data: str) -> Value:
        try:
            raw = base64.b64decode(data, validate=False)
        except ValueError:
            raw = data.encode()
        return cls(None, len(raw), hashlib.sha256(raw).hexdigest())

    @property
    def binary(self) -> bool:
        return self.text is None

    @property
    def multiline(self) -> bool:
        return self.text is not None and "\n" in self.text.rstrip("\n")


@dataclass(frozen=True)
class KeyChange:
    key: str
    change: str  # added, removed, changed
    old: Value | None
    new: Value | None

    @property
    def lines(self) -> tuple[str, ...]:
        """A line diff (hunks without file headers) when either side is a multi-line text."""
        if self.change != CHANGED or self.old is None or self.new is None:
            return ()
        if not (self.old.multiline or self.new.multiline) or self.old.text is None or self.new.text is None:
            return ()
        diff = _unified_diff(self.old.text.splitlines(), self.new.text.splitlines(), lineterm="", n=1)
        return tuple(list(diff)[2:])


@dataclass(frozen=True)
class ConfigMapChange:
    name: str  # declared name
    namespace: str | None
    app: str
    status: str  # added, removed, changed, retention
    hashed: bool
    old_name: str | None
    new_name: str | None
    keys: tuple[KeyChange, ...] = ()
    fields: tuple[FieldChange, ...] = ()
    retained: tuple[str, ...] = ()  # versions kept in out/ as superseded by this change
    dropped: tuple[str, ...] = ()  # retained versions that leave out/
    consumers: tuple[str, ...] = ()  # "Kind/name" of the workloads that use it (new render)
    # For each consumer, how it sees a change (generator/steps/mutable.py: live, restart, never):
    # what matters for a ConfigMap that is not hashed, whose change rolls nothing.
    sees: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def suffix(self, name: str | None) -> str | None:
        if name is None or not self.hashed or not name.startswith(self.name + "-"):
            return name
        return name[len(self.name) + 1 :]


@dataclass(frozen=True)
class ConfigReason:
    kind: str  # ConfigMap or Secret
    name: str  # declared name
    old_name: str
    new_name: str


@dataclass(frozen=True)
class ImageReason:
    container: str
    old: str
    new: str
    entry: str | None = None  # the `images:` entry that made the change: "NAME at FILE:LINE"

    @property
    def tags(self) -> tuple[str, str] | None:
        """(old tag, new tag) when only the tag changed."""
        old_repo, old_tag = split_image(self.old)
        new_repo, new_tag = split_image(self.new)
        return (old_tag, new_tag) if old_repo == new_repo else None


@dataclass(frozen=True)
class TemplateReason:
    fields: tuple[FieldChange, ...]  # paths relative to the pod template


Reason = ConfigReason | ImageReason | TemplateReason


@dataclass(frozen=True)
class Rollout:
    kind: str
    name: str
    namespace: str | None
    app: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class ObjectChange:
    kind: str
    name: str  # declared name for a hashed object
    namespace: str | None
    app: str
    status: str  # added, removed, changed, retention
    fields: tuple[FieldChange, ...] = ()
    old_name: str | None = None  # a hashed object's full names, when they differ
    new_name: str | None = None
    retained: tuple[str, ...] = ()  # versions of a Secret producer kept in out/ as superseded by this change
    dropped: tuple[str, ...] = ()  # retained versions that leave out/


@dataclass(frozen=True)
class ChartChange:
    """An app whose Helm chart versions changed, read from the `helm.sh/chart` label
    (`<chart>-<version>`) that charts following Helm's conventions put on their objects."""

    app: str
    old: tuple[str, ...]  # label values only in the old render
    new: tuple[str, ...]  # label values only in the new render


@dataclass(frozen=True)
class RefusedChange:
    """A change of an existing object that the API server will refuse (see review/immutable.py)."""

    kind: str
    name: str  # declared name (the lineage of a hashed object), as in the other change records
    namespace: str | None
    app: str
    refusal: Refusal


@dataclass(frozen=True)
class EnvDiff:
    name: str
    configmaps: tuple[ConfigMapChange, ...]
    rollouts: tuple[Rollout, ...]
    objects: tuple[ObjectChange, ...]
    charts: tuple[ChartChange, ...] = ()
    refused: tuple[RefusedChange, ...] = ()

    def refused_for(self, kind: str, namespace: str | None, name: str) -> tuple[Refusal, ...]:
        return tuple(r.refusal for r in self.refused if (r.kind, r.namespace, r.name) == (kind, namespace, name))
    removed: bool = False  # the environment itself is gone: only the old side has it

    @property
    def changed(self) -> bool:
        return bool(self.configmaps or self.rollouts or self.objects or self.removed)


@dataclass(frozen=True)
class DiffReport:
    against: str
    envs: tuple[EnvDiff, ...]

    @property
    def changed(self) -> bool:
        return any(e.changed for e in self.envs)


def split_image(image: str) -> tuple[str, str]:
    """`registry:5000/repo/name:tag@digest` -> (repository, tag or digest)."""
    if "@" in image:
        repo, _, digest = image.partition("@")
        return repo, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


# ---------------------------------------------------------------- comparing


def _keys_of(o: Obj | None) -> dict[str, Value]:
    if o is None:
        return {}
    values: dict[str, Value] = {}
    data, binary = o.obj.get("data"), o.obj.get("binaryData")
    if isinstance(data, dict):
        values.update({str(k): Value.of_text(str(v)) for k, v in data.items()})
    if isinstance(binary, dict):
        values.update({str(k): Value.of_base64(str(v)) for k, v in binary.items()})
    return values


def key_changes(old: Obj | None, new: Obj | None) -> tuple[KeyChange, ...]:
    a, b = _keys_of(old), _keys_of(new)
    out: list[KeyChange] = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            out.append(KeyChange(key, REMOVED, a[key], None))
        elif key not in a:
            out.append(KeyChange(key, ADDED, None, b[key]))
        elif a[key] != b[key]:
            out.append(KeyChange(key, CHANGED, a[key], b[key]))
    return tuple(out)


def _without(obj: dict[str, Any], paths: Iterable[FieldPath]) -> dict[str, Any]:
    """A deep copy of `obj` with the given paths taken out (missing paths are fine)."""
    out = copy.deepcopy(obj)
    for path in paths:
        node: Any = out
        for step in path[:-1]:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return out


def _configmap_fields(old: Obj, new: Obj) -> tuple[FieldChange, ...]:
    skip: list[FieldPath] = [("data",), ("binaryData",), ("metadata", "name")]
    return tuple(field_diff(_without(old.obj, skip), _without(new.obj, skip)))


def _consumers(snap: Snapshot, specs: Sequence[PodSpecPath]) -> dict[Key, list[str]]:
    """Declared ConfigMap/Secret -> the workloads that refer to it."""
    users: dict[Key, list[str]] = {}
    for o in snap.current.values():
        path = pod_spec_path(o.obj, specs)
        if path is None:
            continue
        for ref in find_refs(o.obj, path):
            declared = snap.lineage_of.get((ref.target_kind, o.namespace, ref.name), ref.name)
            who = f"{o.kind}/{o.name}"
            bucket = users.setdefault((ref.target_kind, o.namespace, declared), [])
            if who not in bucket:
                bucket.append(who)
    return users


def _sees(snap: Snapshot, specs: Sequence[PodSpecPath]) -> dict[Key, list[tuple[str, tuple[str, ...]]]]:
    """Declared ConfigMap -> (workload, how it sees a change) for every workload that reads it."""
    found: dict[Key, list[tuple[str, tuple[str, ...]]]] = {}
    for o in snap.current.values():
        for final, how in mutable.modes(o.obj, specs).items():
            declared = snap.lineage_of.get(("ConfigMap", o.namespace, final), final)
            found.setdefault(("ConfigMap", o.namespace, declared), []).append((f"{o.kind}/{o.name}", how))
    return found


def configmap_changes(old: Snapshot, new: Snapshot, specs: Sequence[PodSpecPath]) -> list[ConfigMapChange]:
    consumers = _consumers(new, specs)
    sees = _sees(new, specs)
    keys = {k for s in (old, new) for k in (*s.current, *s.retained) if k[0] == "ConfigMap"}
    out: list[ConfigMapChange] = []
    for key in sorted(keys, key=lambda k: (k[2], k[1] or "")):
        a, b = old.current.get(key), new.current.get(key)
        retained, dropped = _retention(key, old, new)
        any_version = b or a or [*new.retained.get(key, ()), *old.retained.get(key, ())][0]
        if a is None and b is None:
            if not retained and not dropped:
                continue
            status = RETENTION
        elif a is None:
            status = ADDED
        elif b is None:
            status = REMOVED
        else:
            status = CHANGED
            if a.obj == b.obj:
                if not retained and not dropped:
                    continue
                status = RETENTION
        fields = _configmap_fields(a, b) if a is not None and b is not None else ()
        out.append(ConfigMapChange(
            name=key[2], namespace=key[1], app=any_version.app, status=status,
            hashed=bool((a and a.hashed) or (b and b.hashed) or (a is None and b is None)),
            old_name=a.name if a else None, new_name=b.name if b else None,
            keys=key_changes(a, b) if status in (CHANGED, ADDED) else (),
            fields=fields, retained=retained, dropped=dropped,
            consumers=tuple(consumers.get(key, ())),
            sees=tuple(sees.get(key, ())),
        ))
    return out


def _retention(key: Key, old: Snapshot, new: Snapshot) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The versions of a lineage that this change retains, and those that leave out/."""
    b = new.current.get(key)
    old_kept = {v.name for v in old.retained.get(key, ())}
    new_kept = {v.name for v in new.retained.get(key, ())}
    return tuple(sorted(new_kept - old_kept)), tuple(sorted(old_kept - new_kept - ({b.name} if b else set())))


def _template_path(spec_path: FieldPath) -> FieldPath:
    """The pod template around a pod spec: `spec.template` for `spec.template.spec`."""
    return spec_path[:-1] if len(spec_path) > 1 and spec_path[-1] == "spec" else spec_path


def _get(obj: Any, path: FieldPath) -> Any:
    for step in path:
        obj = obj.get(step) if isinstance(obj, dict) else None
    return obj


@dataclass
class _Normalized:
    template: Any
    refs: dict[tuple[str, str], set[str]]  # (kind, declared) -> final names
    images: dict[tuple[str, str], str]  # (container list, container name) -> image


def _normalize(o: Obj, snap: Snapshot, spec_path: FieldPath) -> _Normalized:
    """The pod template with references spelled by declared name, plus what was taken out."""
    obj = copy.deepcopy(o.obj)
    refs: dict[tuple[str, str], set[str]] = {}
    for ref in find_refs(obj, spec_path):
        declared = snap.lineage_of.get((ref.target_kind, o.namespace, ref.name), ref.name)
        refs.setdefault((ref.target_kind, declared), set()).add(ref.name)
        ref.holder[ref.field] = declared
    images: dict[tuple[str, str], str] = {}
    pod = _get(obj, spec_path)
    for list_name in CONTAINER_LISTS:
        containers = pod.get(list_name) if isinstance(pod, dict) else None
        for c in containers if isinstance(containers, list) else []:
            if isinstance(c, dict) and "image" in c:
                images[(list_name, str(c.get("name", "")))] = str(c["image"])
    return _Normalized(_get(obj, _template_path(spec_path)), refs, images)


def _set_images(template: Any, spec_rel: FieldPath, images: Mapping[tuple[str, str], str]) -> Any:
    out = copy.deepcopy(template)
    pod = _get(out, spec_rel)
    for list_name in CONTAINER_LISTS:
        containers = pod.get(list_name) if isinstance(pod, dict) else None
        for c in containers if isinstance(containers, list) else []:
            if isinstance(c, dict) and (list_name, str(c.get("name", ""))) in images:
                c["image"] = images[(list_name, str(c.get("name", "")))]
    return out


def rollout_of(a: Obj, b: Obj, old: Snapshot, new: Snapshot, specs: Sequence[PodSpecPath]) -> Rollout | None:
    spec_path = pod_spec_path(b.obj, specs)
    if spec_path is None or pod_spec_path(a.obj, specs) != spec_path:
        return None
    tpath = _template_path(spec_path)
    if _get(a.obj, tpath) == _get(b.obj, tpath):
        return None
    na, nb = _normalize(a, old, spec_path), _normalize(b, new, spec_path)
    reasons: list[Reason] = []
    for (kind, declared) in sorted(set(na.refs) & set(nb.refs)):
        if na.refs[(kind, declared)] != nb.refs[(kind, declared)]:
            reasons.append(ConfigReason(kind, declared, ", ".join(sorted(na.refs[(kind, declared)])),
                                        ", ".join(sorted(nb.refs[(kind, declared)]))))
    both = [c for c in na.images if c in nb.images]
    reasons += [ImageReason(c[1], na.images[c], nb.images[c]) for c in both if na.images[c] != nb.images[c]]
    # Other template fields: compare with the old images put into the new template, so an image
    # change is reported once (as an image reason) and an added container still shows its image.
    spec_rel = spec_path[len(tpath):]
    fields = field_diff(na.template, _set_images(nb.template, spec_rel, {c: na.images[c] for c in both}))
    if fields:
        reasons.append(TemplateReason(tuple(fields)))
    if not reasons:  # only reference spellings differ: show the raw change rather than nothing
        reasons.append(TemplateReason(tuple(field_diff(_get(a.obj, tpath), _get(b.obj, tpath)))))
    return Rollout(b.kind, b.name, b.namespace, b.app, tuple(reasons))


def object_changes(old: Snapshot, new: Snapshot, specs: Sequence[PodSpecPath]) -> list[ObjectChange]:
    out: list[ObjectChange] = []
    keys = {k for s in (old, new) for k in (*s.current, *s.retained) if k[0] != "ConfigMap"}
    for key in keys:
        a, b = old.current.get(key), new.current.get(key)
        retained, dropped = _retention(key, old, new)
        if b is None and a is not None:
            out.append(ObjectChange(a.kind, a.lineage, a.namespace, a.app, REMOVED, dropped=dropped))
            continue
        if a is None and b is not None:
            out.append(ObjectChange(b.kind, b.lineage, b.namespace, b.app, ADDED, retained=retained, dropped=dropped))
            continue
        if a is None or b is None:  # only retained versions, no current one
            if dropped or retained:
                v = [*new.retained.get(key, ()), *old.retained.get(key, ())][0]
                out.append(ObjectChange(v.kind, v.lineage, v.namespace, v.app, RETENTION, retained=retained, dropped=dropped))
            continue
        if a.obj == b.obj:
            if retained or dropped:
                out.append(ObjectChange(b.kind, b.lineage, b.namespace, b.app, RETENTION, retained=retained, dropped=dropped))
            continue
        skip: list[FieldPath] = []
        spec_path = pod_spec_path(b.obj, specs)
        if spec_path is not None and pod_spec_path(a.obj, specs) == spec_path:
            skip.append(_template_path(spec_path))  # reported as a rollout
        renamed = a.hashed and b.hashed and a.name != b.name
        if renamed:
            skip.append(("metadata", "name"))  # shown as the hash change
        fields = [_mask(b.kind, f) for f in field_diff(_without(a.obj, skip), _without(b.obj, skip))]
        if fields or renamed or retained or dropped:
            out.append(ObjectChange(b.kind, b.lineage, b.namespace, b.app, CHANGED, tuple(fields),
                                    a.name if renamed else None, b.name if renamed else None, retained, dropped))
    return sorted(out, key=lambda c: (c.app, c.kind, c.name, c.namespace or ""))


_SECRET_VALUES = {"Secret": ("data", "stringData"), "SealedSecret": ("spec.encryptedData",)}


def _mask(kind: str, change: FieldChange) -> FieldChange:
    """Never print a Secret's values (not even encrypted): keep that a key changed, not what it holds."""
    if any(change.path == p or change.path.startswith((p + ".", p + "[")) for p in _SECRET_VALUES.get(kind, ())):
        return FieldChange(change.path, change.change,
                           None if change.old is None else HIDDEN, None if change.new is None else HIDDEN)
    return change


HELM_CHART_LABEL = "helm.sh/chart"


def _chart_labels(snap: Snapshot) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for o in snap.current.values():
        labels = o.obj.get("metadata", {}).get("labels")
        if isinstance(labels, dict) and isinstance(labels.get(HELM_CHART_LABEL), str):
            out.setdefault(o.app, set()).add(labels[HELM_CHART_LABEL])
    return out


def chart_changes(old: Snapshot, new: Snapshot) -> list[ChartChange]:
    before, after = _chart_labels(old), _chart_labels(new)
    changes = []
    for app in sorted(set(before) & set(after)):  # an app added or removed shows as its objects
        gone, came = before[app] - after[app], after[app] - before[app]
        if gone or came:
            changes.append(ChartChange(app, tuple(sorted(gone)), tuple(sorted(came))))
    return changes


def refused_changes(old: Snapshot, new: Snapshot) -> list[RefusedChange]:
    """Updates of objects that keep their name (so the cluster updates them in place) that the
    API server refuses. A hashed object that got a new name is created anew: nothing refused."""
    out: list[RefusedChange] = []
    for key in sorted(set(old.current) & set(new.current), key=lambda k: (new.current[k].app, k[0], k[2], k[1] or "")):
        a, b = old.current[key], new.current[key]
        if a.name != b.name or a.obj == b.obj:
            continue
        out += [RefusedChange(b.kind, b.lineage, b.namespace, b.app, r) for r in refusals(a.obj, b.obj)]
    return out


def diff_env(name: str, old: Snapshot, new: Snapshot, specs: Sequence[PodSpecPath]) -> EnvDiff:
    rollouts: list[Rollout] = []
    for key in sorted(set(old.current) & set(new.current), key=lambda k: (new.current[k].app, k[0], k[2])):
        r = rollout_of(old.current[key], new.current[key], old, new, specs)
        if r is not None:
            rollouts.append(r)
    return EnvDiff(name, tuple(configmap_changes(old, new, specs)), tuple(rollouts),
                   tuple(object_changes(old, new, specs)), tuple(chart_changes(old, new)), tuple(refused_changes(old, new)))


def env_diff(env: str, old: Mapping[str, str], new: Mapping[str, str], specs: Sequence[PodSpecPath],
             old_shown: str = "out") -> EnvDiff:
    """Compare one environment's rendered files (path relative to out/<env>/ -> text). A file
    both sides hold with the same text is parsed once; with `new` a render's own `Files`, its
    texts are not parsed at all where the objects they were emitted from read back exactly
    (`Files.exact`), so only the old side's changed files are."""
    known: Parsed = {}
    if isinstance(new, Files):
        texts: dict[str, str] = {}
        for path in new:
            text, docs = new.exact(path)
            texts[path] = text
            if docs is not None:
                known.setdefault(text, docs)
        new = texts
    a = snapshot(parse(old, f"{old_shown}/{env}", known))
    b = snapshot(parse(new, f"(rendered)/{env}", known))
    del known
    return diff_env(env, a, b, specs)


def diff_files(
    old: Mapping[str, Mapping[str, str]],
    new: Mapping[str, Mapping[str, str]],
    specs: Sequence[PodSpecPath],
    against: str,
    old_shown: str = "out",
) -> DiffReport:
    """Compare rendered files per env (env -> path relative to out/<env>/ -> text)."""
    envs = []
    for env in sorted(set(old) | set(new)):
        found = env_diff(env, old.get(env, {}), new.get(env, {}), specs, old_shown)
        if env not in new and old.get(env):
            found = replace(found, removed=True)
        envs.append(found)
    return DiffReport(against, tuple(envs))


@long_lived()  # see generator/io/heap.py
def diff_repo(repo: Repo, envs: Sequence[str], all_envs: bool, against: str | None,
              jobs: int | None = None) -> DiffReport:
    """A fresh render of `envs` compared with `against` (see `generator.review.against.baseline`).

    `all_envs`: every environment was selected, so env folders that only the old side has are
    compared with nothing (a deleted environment shows every object removed).

    Each environment is compared in the process that rendered it (`pipeline.each_env`: the
    environments' workers share the old side through the fork), so the comparisons run in
    parallel too and only the findings come back. As before, a render error of any environment
    comes first, then the first old or new file that does not parse, in environment order."""
    old = baseline(repo.root, against, None if all_envs else envs)
    specs = BUILTIN_POD_SPECS + repo.config.pod_spec_paths

    def compare(rendered: RenderedEnv) -> EnvDiff | LoadError:
        try:
            return env_diff(rendered.name, old.files.get(rendered.name, {}), rendered.files, specs, old.shown)
        except LoadError as exc:  # raised after every environment's render errors
            return exc

    done: dict[str, EnvDiff | LoadError] = {r.env: r.value for r in each_env(repo, envs, compare, jobs)}
    found: list[EnvDiff] = []
    for env in sorted(set(old.files) | set(done)):
        result = done.get(env)
        if result is None:  # only the old side has it: the environment is gone
            result = env_diff(env, old.files[env], {}, specs, old.shown)
            if old.files[env]:
                result = replace(result, removed=True)
        if isinstance(result, LoadError):
            raise result
        found.append(result)
    report = DiffReport(old.label, tuple(found))
    from generator.review.image_causes import with_image_entries  # only when images changed: reads app.yaml files

    return with_image_entries(repo, report)
