"""Kustomize patches and `replicas` as our partial-object patches (env.yaml `patches:`), and
`images` as our `images:` entries.

What our merge laws cannot say is left as a TODO with its file and line, never dropped:
a target chosen by label or annotation selector or by a name pattern, JSON 6902 operations
other than add/replace/remove on mapping keys (list indexes, `move`, `copy`, `test`), and
replacing a list of named items (ours merge those by name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


from generator.adopt.layers import Layer
from generator.io.yaml_io import load_plain_all
from generator.steps.images import matches as image_matches

Todo = list[tuple[str, str]]
_PLAIN_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# Kustomize's `replicas` field specs (api/konfig/builtinpluginconsts/replicas.go).
REPLICA_KINDS = ("Deployment", "ReplicationController", "ReplicaSet", "StatefulSet")
# Where a kind keeps its pod spec, for `images`.
POD_SPECS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOAD_SPEC = ("spec", "template", "spec")


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _target(layer: Layer, where: tuple[str | int, ...], target: dict[str, Any], todo: Todo) -> dict[str, Any] | None:
    """The kind/name head of a patch from a `target:` (None and a TODO when ours cannot say it)."""
    unsupported = [k for k in ("labelSelector", "annotationSelector") if target.get(k)]
    name, kind = target.get("name"), target.get("kind")
    if unsupported or not isinstance(name, str) or not isinstance(kind, str) or not _PLAIN_NAME.match(name):
        why = f"selects by {', '.join(unsupported)}" if unsupported else "does not name one object (kind and exact name)"
        todo.append((layer.where(*where, "target"), f"patch target {why}: write one patch per object in env.yaml"))
        return None
    head: dict[str, Any] = {"kind": kind, "metadata": {"name": name}}
    if target.get("namespace"):
        head["metadata"]["namespace"] = target["namespace"]
    return head


def strategic(layer: Layer, where: tuple[str | int, ...], doc: Any, target: dict[str, Any] | None,
              todo: Todo) -> dict[str, Any] | None:
    """A strategic-merge patch document as ours (kind and name filled in from the target)."""
    if not isinstance(doc, dict):
        todo.append((layer.where(*where), "patch is not a mapping"))
        return None
    patch = dict(doc)
    if target is not None:
        head = _target(layer, where, target, todo)
        if head is None:
            return None
        patch = _deep_merge(head, patch)
    meta = patch.get("metadata")
    if not patch.get("kind") or not isinstance(meta, dict) or not meta.get("name"):
        todo.append((layer.where(*where), "patch has no kind and metadata.name: add them"))
        return None
    if patch["kind"] == "ConfigMap":
        todo.append((layer.where(*where), f"patch of ConfigMap {meta['name']!r}: ours change ConfigMaps only "
                     "through `configMaps:` in env.yaml; move its keys there"))
        return None
    return patch


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def json6902(layer: Layer, where: tuple[str | int, ...], ops: Any, target: dict[str, Any] | None,
             todo: Todo, objects: Iterable[dict[str, Any]] = ()) -> dict[str, Any] | None:
    """JSON 6902 operations as one partial object: mapping keys as they are, and an index into a
    list of named items (`/spec/template/spec/containers/0/image`) as that item's name, read
    from the target object as it is at import."""
    head = _target(layer, where, target or {}, todo)
    if head is None:
        return None
    if not isinstance(ops, list):
        todo.append((layer.where(*where), "JSON 6902 patch is not a list of operations"))
        return None
    found = [o for o in objects if o.get("kind") == head["kind"]
             and (o.get("metadata") or {}).get("name") == head["metadata"]["name"]]
    patch: dict[str, Any] = head
    for op in ops:
        part = _operation(op, found[0] if len(found) == 1 else None)
        if part is None:
            todo.append((layer.where(*where), f"JSON 6902 operation {op!r} has no equivalent in our patches "
                         "(list index, move/copy/test, or a replaced list): write the resulting fields as a patch"))
            return None
        patch = _deep_merge(patch, part)
    return patch


def _named_steps(tokens: list[str], obj: dict[str, Any] | None) -> list[str | dict[str, str]] | None:
    """The path with each list index replaced by the named item it points at (None: cannot)."""
    steps: list[str | dict[str, str]] = []
    node: Any = obj
    for token in tokens:
        if token == "-":
            return None
        if token.isdigit():
            item = node[int(token)] if isinstance(node, list) and int(token) < len(node) else None
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                return None
            steps.append({"name": item["name"]})
            node = item
        else:
            steps.append(token)
            node = node.get(token) if isinstance(node, dict) else None
    return steps


def _operation(op: Any, obj: dict[str, Any] | None = None) -> dict[str, Any] | None:
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove") or not isinstance(op.get("path"), str):
        return None
    steps = _named_steps(_pointer(op["path"]), obj)
    if not steps or isinstance(steps[-1], dict):
        return None
    if op["op"] == "remove":
        value: Any = {"$patch": "delete"}
    else:
        value = op.get("value")
        if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
            return None  # ours would merge these by name, JSON 6902 replaces the list
        if isinstance(value, dict):
            value = {**value, "$patch": "replace"}
    for step in reversed(steps):
        value = [{**step, **value}] if isinstance(step, dict) else {step: value}
    result: dict[str, Any] = value
    return result


def file_patches(layer: Layer, where: tuple[str | int, ...], text: str, target: dict[str, Any] | None,
                 todo: Todo, objects: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """A `patches:` entry's text: strategic-merge documents or one JSON 6902 list."""
    docs = [d for d in load_plain_all(text) if d is not None]
    if len(docs) == 1 and isinstance(docs[0], list):
        found = json6902(layer, where, docs[0], target, todo, objects)
        return [found] if found is not None else []
    out = []
    for doc in docs:
        found = strategic(layer, where, doc, target, todo)
        if found is not None:
            out.append(found)
    return out


def entry_text(layer: Layer, entry: Any) -> str | None:
    if isinstance(entry, str):  # patchesStrategicMerge: a path or an inline document
        path = layer.dir / entry
        return path.read_text(encoding="utf-8") if "\n" not in entry and path.is_file() else entry
    if isinstance(entry, dict):
        if isinstance(entry.get("patch"), str):
            return str(entry["patch"])
        if isinstance(entry.get("path"), str):
            return (layer.dir / str(entry["path"])).read_text(encoding="utf-8")
    return None


def replicas(layer: Layer, objects: Iterable[dict[str, Any]], todo: Todo) -> list[dict[str, Any]]:
    out = []
    known = [o for o in objects if o.get("kind") in REPLICA_KINDS]
    for i, item in enumerate(layer.doc.get("replicas") or []):
        found = [o for o in known if (o.get("metadata") or {}).get("name") == item.get("name")]
        if len(found) != 1:
            todo.append((layer.where("replicas", i), f"replicas for {item.get('name')!r}: no single workload of that name"))
            continue
        out.append({"kind": found[0]["kind"], "metadata": {"name": item["name"]}, "spec": {"replicas": item.get("count")}})
    return out


def images(layer: Layer, objects: Iterable[dict[str, Any]], todo: Todo) -> list[dict[str, str]]:
    """Kustomize `images:` as our `images:` entries (env.yaml; applied after the patches, as
    Kustomize applies them). Kustomize ignores an entry that matches no container; ours refuses
    one, so such an entry is listed as a TODO instead of written."""
    used = list(_images_of(objects))
    out: list[dict[str, str]] = []
    for i, rule in enumerate(layer.doc.get("images") or []):
        if not isinstance(rule, dict) or not isinstance(rule.get("name"), str):
            todo.append((layer.where("images", i), "an `images:` entry without a name"))
            continue
        if not any(image_matches(image, rule["name"]) for image in used):  # our rule: Kustomize's
            todo.append((layer.where("images", i), f"image {rule['name']!r} matches no container of this "
                         "overlay (Kustomize ignores it; ours would refuse it): not imported"))
            continue
        out.append({k: str(rule[k]) for k in ("name", "newName", "newTag", "digest") if rule.get(k) is not None})
    return out


def _images_of(objects: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Every container image of the objects' pod specs."""
    for obj in objects:
        spec: Any = obj
        for step in POD_SPECS.get(str(obj.get("kind")), WORKLOAD_SPEC):
            spec = spec.get(step) if isinstance(spec, dict) else None
        if not isinstance(spec, dict):
            continue
        for field in ("initContainers", "containers", "ephemeralContainers"):
            for c in spec.get(field) or []:
                if isinstance(c, dict) and isinstance(c.get("image"), str):
                    yield c["image"]


def read_objects(paths: Iterable[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        out += [d for d in load_plain_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]
    return out
