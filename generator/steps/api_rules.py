"""Step: the API server's own validation, for what the OpenAPI schema cannot say.

The schema step (`k8s_schema`) checks shapes and types; the API server then runs hand-written
validation (k8s.io/kubernetes pkg/apis/core/validation, pkg/apis/apps/validation and
k8s.io/apimachinery pkg/api/validation, pkg/apis/meta/v1/validation, pkg/util/validation) that no
schema expresses. This step repeats the part of it that a GitOps repo trips over, so the render
fails instead of the sync. Each rule is one of two classes, and the message says which:

- REFUSED: the API server rejects the object (the upstream function is named in the rule);
- BROKEN: the API server accepts it, but it provably cannot work (a probe naming a port the
  container does not declare never succeeds; a duplicate `containerPort`+`protocol` makes
  server-side apply, which Flux always uses, fail with "duplicate entries for key").

What the API server only warns about (a duplicate env name, which `$(VAR)` expansion can use on
purpose: kubernetes/kubernetes#113482) is a render warning, not an error.

Quantities are parsed in the schema step (every field the schema types as a Quantity).
Custom resources get the ObjectMeta rules only (labels, annotations): the API server applies
those to every object.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from generator.config import Patch
from generator.errors import ValidationError
from generator.hints import close_matches
from generator.model import Resource
from generator.steps.k8s_schema import origin_of
from generator.steps.quantity import value_of
from generator.steps.references import CONTAINER_LISTS, FieldPath, Target, dotted

REFUSED = "would be refused by the API server"
BROKEN = "is accepted by the API server but cannot work"

# k8s.io/apimachinery pkg/util/validation: IsQualifiedName, IsValidLabelValue, IsDNS1123Label,
# IsDNS1123Subdomain, IsValidPortName.
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_HAS_LETTER = re.compile(r"[a-z]")
# k8s.io/apimachinery pkg/api/validation/objectmeta.go: TotalAnnotationSizeLimitB.
ANNOTATIONS_LIMIT = 256 * 1024
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

# The built-in kinds with a pod template: kind -> (apiVersion, path of the pod template).
# Custom resources (podSpecPaths, Argo Rollouts) are validated by their own operators.
_TEMPLATE = ("spec", "template")
WORKLOADS: Mapping[str, tuple[str, FieldPath]] = {
    "Pod": ("v1", ()),
    "PodTemplate": ("v1", ("template",)),
    "ReplicationController": ("v1", _TEMPLATE),
    "Deployment": ("apps/v1", _TEMPLATE),
    "ReplicaSet": ("apps/v1", _TEMPLATE),
    "StatefulSet": ("apps/v1", _TEMPLATE),
    "DaemonSet": ("apps/v1", _TEMPLATE),
    "Job": ("batch/v1", _TEMPLATE),
    "CronJob": ("batch/v1", ("spec", "jobTemplate", "spec", "template")),
}
# Workloads whose `spec.selector` must be a non-empty LabelSelector matching the template's
# labels (ValidateDeploymentSpec, ValidateReplicaSetSpec, ValidateStatefulSetSpec,
# ValidateDaemonSetSpec in pkg/apis/apps/validation).
_SELECTED = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"})


@dataclass(frozen=True)
class Violation:
    """One rule an object breaks: where (from the object's root), what, and which rule."""

    path: FieldPath
    message: str
    rule: str  # the upstream rule, e.g. "validateContainers: names are unique"
    klass: str = REFUSED
    hint: str | None = None


# ---------------------------------------------------------------- names and metadata


# Label keys and values repeat across a repo ("app", "app.kubernetes.io/name"): check each once.
@functools.lru_cache(maxsize=8192)
def qualified_name_problem(key: str) -> str | None:
    """Why `key` is not a qualified name ([prefix/]name), or None (IsQualifiedName)."""
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return "the prefix before '/' must not be empty"
        if len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix):
            return "the prefix before '/' must be a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)"
    else:
        return "a qualified name has at most one '/'"
    if not name:
        return "the name part must not be empty"
    if len(name) > 63:
        return f"the name part is {len(name)} characters, over the limit of 63"
    if not _NAME_PART.match(name):
        return "the name part must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    return None


@functools.lru_cache(maxsize=8192)
def label_value_problem(value: str) -> str | None:
    """Why `value` is not a label value, or None (IsValidLabelValue)."""
    if len(value) > 63:
        return f"{len(value)} characters, over the limit of 63"
    if not _LABEL_VALUE.match(value):
        return "must be empty or letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    return None


def _labels(labels: Any, path: FieldPath) -> Iterator[Violation]:
    """ValidateLabels (k8s.io/apimachinery pkg/apis/meta/v1/validation)."""
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue  # a wrong type is the schema step's error
        problem = qualified_name_problem(key)
        if problem is not None:
            yield Violation(path + (key,), f"label key {key!r} is not valid: {problem}", "ValidateLabels: IsQualifiedName")
        problem = label_value_problem(value)
        if problem is not None:
            yield Violation(path + (key,), f"label {key!r} has the value {value!r}, which is not valid: {problem}",
                            "ValidateLabels: IsValidLabelValue", hint="label values are short identifiers; put free text in an annotation")


def _annotations(annotations: Any, path: FieldPath) -> Iterator[Violation]:
    """ValidateAnnotations (k8s.io/apimachinery pkg/api/validation/objectmeta.go): keys are
    qualified names (checked lower-cased), keys and values together at most 256 KiB."""
    if not isinstance(annotations, dict):
        return
    total = 0
    for key, value in annotations.items():
        if not isinstance(key, str):
            continue
        problem = qualified_name_problem(key.lower())
        if problem is not None:
            yield Violation(path + (key,), f"annotation key {key!r} is not valid: {problem}", "ValidateAnnotations: IsQualifiedName")
        total += len(key.encode()) + (len(value.encode()) if isinstance(value, str) else 0)
    if total > ANNOTATIONS_LIMIT:
        yield Violation(path, f"the annotations hold {total:,} bytes, over the limit of {ANNOTATIONS_LIMIT:,} (256 KiB)",
                        "ValidateAnnotationsSize", hint="move large values into a ConfigMap")


def _meta(meta: Any, path: FieldPath) -> Iterator[Violation]:
    if isinstance(meta, dict):
        yield from _labels(meta.get("labels"), path + ("labels",))
        yield from _annotations(meta.get("annotations"), path + ("annotations",))


# ---------------------------------------------------------------- label selectors


def _selector(selector: dict[str, Any], path: FieldPath) -> Iterator[Violation]:
    """ValidateLabelSelector (k8s.io/apimachinery pkg/apis/meta/v1/validation)."""
    yield from _labels(selector.get("matchLabels"), path + ("matchLabels",))
    expressions = selector.get("matchExpressions")
    for i, req in enumerate(expressions if isinstance(expressions, list) else []):
        if not isinstance(req, dict):
            continue
        here = path + ("matchExpressions", i)
        op, values = req.get("operator"), req.get("values") or []
        key = req.get("key")
        if isinstance(key, str):
            problem = qualified_name_problem(key)
            if problem is not None:
                yield Violation(here + ("key",), f"selector key {key!r} is not valid: {problem}", "ValidateLabelSelectorRequirement")
        if op in ("In", "NotIn") and not values:
            yield Violation(here + ("values",), f"`values` must not be empty when `operator` is {op!r}",
                            "ValidateLabelSelectorRequirement")
        elif op in ("Exists", "DoesNotExist") and values:
            yield Violation(here + ("values",), f"`values` must be empty when `operator` is {op!r}",
                            "ValidateLabelSelectorRequirement")
        elif op not in _SELECTOR_OPERATORS:
            yield Violation(here + ("operator",), f"unknown operator {op!r}", "ValidateLabelSelectorRequirement",
                            hint=f"operators: {', '.join(_SELECTOR_OPERATORS)}")
        for j, value in enumerate(values if isinstance(values, list) else []):
            problem = label_value_problem(value) if isinstance(value, str) else None
            if problem is not None:
                yield Violation(here + ("values", j), f"selector value {value!r} is not valid: {problem}",
                                "ValidateLabelSelectorRequirement: IsValidLabelValue")


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """LabelSelectorAsSelector(selector).Matches(labels) (k8s.io/apimachinery pkg/labels)."""
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, dict) and any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    expressions = selector.get("matchExpressions")
    for req in expressions if isinstance(expressions, list) else []:
        if not isinstance(req, dict):
            continue
        key, op, values = str(req.get("key")), req.get("operator"), req.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _shown_labels(labels: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in labels.items()) + "}" if labels else "(none)"


def _workload_selector(obj: dict[str, Any], kind: str) -> Iterator[Violation]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    template = spec.get("template")
    tmeta = template.get("metadata") if isinstance(template, dict) else None
    tlabels = tmeta.get("labels") if isinstance(tmeta, dict) else None
    labels: dict[str, Any] = tlabels if isinstance(tlabels, dict) else {}
    selector = spec.get("selector")
    if kind == "ReplicationController":
        # ValidateReplicationControllerSpec: a map selector; when set it must match the labels.
        if isinstance(selector, dict) and selector and any(labels.get(k) != v for k, v in selector.items()):
            yield Violation(("spec", "selector"), f"the selector {_shown_labels(selector)} does not match the pod template's labels "
                            f"{_shown_labels(labels)}", "ValidateReplicationControllerSpec: selector matches template labels")
        return
    if kind == "Job":
        # A Job's selector is generated unless `manualSelector: true`; then it must match.
        if spec.get("manualSelector") is not True or not isinstance(selector, dict):
            return
    elif not isinstance(selector, dict):
        return  # `selector` missing is the schema step's error (required)
    yield from _selector(selector, ("spec", "selector"))
    if kind in _SELECTED and not selector.get("matchLabels") and not selector.get("matchExpressions"):
        yield Violation(("spec", "selector"), f"an empty selector is not valid for a {kind}",
                        f"Validate{kind}Spec: non-empty selector", hint="select the pod template's labels with `matchLabels`")
    elif not selector_matches(selector, labels):
        yield Violation(("spec", "template", "metadata", "labels"),
                        f"`spec.selector` does not match the pod template's labels {_shown_labels(labels)}",
                        f"Validate{kind}Spec: selector matches template labels",
                        hint="the pod template's labels must satisfy every matchLabels entry and matchExpressions "
                        "requirement (a patch that changes one must change the other)")


# ---------------------------------------------------------------- pod specs


def _items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield i, item


def _containers(pod: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for list_name in CONTAINER_LISTS:
        for i, c in _items(pod.get(list_name)):
            yield list_name, i, c


def _container_names(pod: dict[str, Any], path: FieldPath) -> Iterator[Violation]:
    """validateContainers / validateInitContainers / validateEphemeralContainers: every name a
    DNS-1123 label, unique across all three lists; validateContainerCommon: `image` required."""
    seen: dict[str, FieldPath] = {}
    for list_name, i, c in _containers(pod):
        here = path + (list_name, i)
        name = c.get("name")
        if isinstance(name, str):
            if not (len(name) <= 63 and _DNS1123_LABEL.match(name)):
                yield Violation(here + ("name",), f"container name {name!r} is not a DNS-1123 label (lower-case letters, "
                                "digits and '-', at most 63 characters)", "validateContainerCommon: ValidateDNS1123Label")
            elif name in seen:
                yield Violation(here + ("name",), f"container name {name!r} is used twice (also at {dotted(seen[name])})",
                                "validateContainers: names are unique across containers, initContainers and ephemeralContainers")
            seen.setdefault(name, here)
        image = c.get("image")
        if image is None or image == "":
            others = [str(o.get("name")) for _, o in _items(pod.get(list_name)) if o is not c and o.get("image")]
            guess = close_matches(str(name), others, n=1)
            yield Violation(here, f"container {name!r} has no `image`", "validateContainerCommon: image is required",
                            hint=(f"did you mean {guess[0]!r}? a patch item whose name matches no container adds one; "
                                  if guess else "") + "set `image:`")


def _volumes(pod: dict[str, Any], path: FieldPath) -> Iterator[Violation]:
    """validateVolumes: names are DNS-1123 labels, unique in the pod."""
    seen: set[str] = set()
    for i, v in _items(pod.get("volumes")):
        name = v.get("name")
        if not isinstance(name, str):
            continue
        if not (len(name) <= 63 and _DNS1123_LABEL.match(name)):
            yield Violation(path + ("volumes", i, "name"), f"volume name {name!r} is not a DNS-1123 label", "validateVolumes: ValidateDNS1123Label")
        elif name in seen:
            yield Violation(path + ("volumes", i, "name"), f"volume {name!r} is declared twice", "validateVolumes: names are unique")
        seen.add(name)


def _mounts(c: dict[str, Any], here: FieldPath, volumes: Sequence[str]) -> Iterator[Violation]:
    """ValidateVolumeMounts: the volume exists, mountPath is unique in the container, subPath is
    a relative path that does not climb out with '..' (validateLocalDescendingPath)."""
    paths: dict[str, int] = {}
    for i, m in _items(c.get("volumeMounts")):
        at = here + ("volumeMounts", i)
        name = m.get("name")
        if isinstance(name, str) and name not in volumes:
            guess = close_matches(name, list(volumes), n=1)
            yield Violation(at + ("name",), f"volumeMount names volume {name!r}, which the pod does not have",
                            "ValidateVolumeMounts: the volume exists",
                            hint=(f"did you mean {guess[0]!r}? " if guess else "") + f"volumes: {', '.join(volumes) or '(none)'}")
        mount_path = m.get("mountPath")
        if isinstance(mount_path, str):
            if mount_path in paths:
                yield Violation(at + ("mountPath",), f"mountPath {mount_path!r} is used twice in this container "
                                f"(also volumeMounts[{paths[mount_path]}])", "ValidateVolumeMounts: mountPath is unique")
            paths.setdefault(mount_path, i)
        sub = m.get("subPath")
        if isinstance(sub, str) and sub and (sub.startswith("/") or ".." in sub.split("/")):
            yield Violation(at + ("subPath",), f"subPath {sub!r} must be a relative path without '..'",
                            "validateLocalDescendingPath")


def _port_names(c: dict[str, Any]) -> list[str]:
    return [str(p["name"]) for _, p in _items(c.get("ports")) if isinstance(p.get("name"), str)]


def _ports(c: dict[str, Any], here: FieldPath) -> Iterator[Violation]:
    """validateContainerPorts: names are IANA service names (IsValidPortName), unique in the
    container. A repeated containerPort+protocol is only a warning there, but it is the key of
    this list for server-side apply (`+listMapKey=containerPort`, `+listMapKey=protocol`), which
    then fails: kubernetes/kubernetes#113482."""
    names: set[str] = set()
    keys: dict[tuple[Any, Any], int] = {}
    for i, p in _items(c.get("ports")):
        at = here + ("ports", i)
        name = p.get("name")
        if isinstance(name, str):
            if not (len(name) <= 15 and _PORT_NAME.match(name) and _HAS_LETTER.search(name) and "--" not in name):
                yield Violation(at + ("name",), f"port name {name!r} is not valid: at most 15 lower-case letters, digits and "
                                "'-', with at least one letter, no '--' and no '-' at either end", "validateContainerPorts: IsValidPortName")
            elif name in names:
                yield Violation(at + ("name",), f"port name {name!r} is used twice in this container", "validateContainerPorts: names are unique")
            names.add(name)
        key = (p.get("containerPort"), p.get("protocol") or "TCP")
        if key in keys:
            yield Violation(at + ("containerPort",), f"containerPort {key[0]}/{key[1]} is declared twice in this container "
                            f"(also ports[{keys[key]}])", "server-side apply: ports are keyed by containerPort+protocol", BROKEN,
                            hint="declare each port once (the same number is fine with another protocol)")
        keys.setdefault(key, i)


def _native(resource: str) -> bool:
    """helper.IsNativeResource (pkg/apis/core/helper): no domain, or a kubernetes.io/ one."""
    return "/" not in resource or "kubernetes.io/" in resource


def _overcommit_allowed(resource: str) -> bool:
    """helper.IsOvercommitAllowed: native resources except hugepages; not extended resources
    such as `nvidia.com/gpu`."""
    return _native(resource) and not resource.startswith("hugepages-")


def _resources(res: Any, at: FieldPath) -> Iterator[Violation]:
    """ValidateResourceRequirements (pkg/apis/core/validation): quantities not negative, a
    request at most its limit, extended resources whole numbers with request equal to limit."""
    if not isinstance(res, dict):
        return
    limits: dict[str, Any] = res["limits"] if isinstance(res.get("limits"), dict) else {}
    requests: dict[str, Any] = res["requests"] if isinstance(res.get("requests"), dict) else {}
    for part, values in (("limits", limits), ("requests", requests)):
        for name, raw in values.items():
            value = value_of(raw)
            if value is None:
                continue  # not a quantity: the schema step's error
            where = at + (part, name)
            if value < 0:
                yield Violation(where, f"{part}.{name} is {raw}, below 0", "ValidateResourceQuantityValue: non-negative")
            elif not _native(str(name)) and value.denominator != 1:
                yield Violation(where, f"{part}.{name} is {raw}: an extended resource is counted in whole units",
                                "ValidateResourceQuantityValue: integer for extended resources")
    for name, raw in requests.items():
        if name not in limits and not _overcommit_allowed(str(name)):
            yield Violation(at + ("requests", name), f"requests.{name} needs limits.{name} (a resource that cannot be "
                            "overcommitted)", "ValidateResourceRequirements: limit required", hint=f"set limits.{name} to {raw}")
            continue
        request, limit = value_of(raw), value_of(limits.get(name)) if name in limits else None
        if request is None or limit is None:
            continue
        if request > limit:
            yield Violation(at + ("requests", name), f"requests.{name} ({raw}) is more than limits.{name} ({limits[name]})",
                            "ValidateResourceRequirements: request <= limit", hint=f"raise limits.{name} or lower requests.{name}")
        elif request != limit and not _overcommit_allowed(str(name)):
            yield Violation(at + ("requests", name), f"requests.{name} ({raw}) must equal limits.{name} ({limits[name]}) "
                            "for a resource that cannot be overcommitted", "ValidateResourceRequirements: extended resources")


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _probe_ports(c: dict[str, Any], here: FieldPath) -> Iterator[Violation]:
    """A probe's port: a number 1..65535 (ValidatePortNumOrName: refused otherwise) or the name
    of a port the container declares. The API server does not check that the name exists; the
    kubelet then fails every probe ("port not found"), so the pod never turns ready or restarts
    forever: an error here."""
    declared = _port_names(c)
    for probe_name in _PROBES:
        probe = c.get(probe_name)
        if not isinstance(probe, dict):
            continue
        for handler in ("httpGet", "tcpSocket", "grpc"):
            action = probe.get(handler)
            if not isinstance(action, dict) or "port" not in action:
                continue
            port = action["port"]
            at = here + (probe_name, handler, "port")
            if isinstance(port, int) and not isinstance(port, bool) and not 1 <= port <= 65535:
                yield Violation(at, f"{probe_name} port {port} is not between 1 and 65535", "ValidatePortNumOrName")
            elif isinstance(port, str) and handler != "grpc" and port not in declared:
                guess = close_matches(port, declared, n=1)
                yield Violation(at, f"{probe_name} uses port {port!r}, which this container does not declare",
                                "kubelet: a named probe port is looked up in the container's ports", BROKEN,
                                hint=(f"did you mean {guess[0]!r}? " if guess else "")
                                + f"named ports of this container: {', '.join(declared) or '(none)'}")


def env_duplicates(pod: dict[str, Any], path: FieldPath) -> Iterator[tuple[FieldPath, str]]:
    """Env names given twice in one container: the API server only warns ("hides previous
    definition", pkg/api/pod/warnings.go); a later entry can use `$(NAME)` of the earlier one."""
    for list_name, i, c in _containers(pod):
        seen: set[str] = set()
        for j, e in _items(c.get("env")):
            name = e.get("name")
            if isinstance(name, str):
                if name in seen:
                    yield path + (list_name, i, "env", j, "name"), name
                seen.add(name)


def _pod(pod: dict[str, Any], path: FieldPath, claim_templates: Sequence[str]) -> Iterator[Violation]:
    yield from _container_names(pod, path)
    yield from _volumes(pod, path)
    volumes = [str(v.get("name")) for _, v in _items(pod.get("volumes"))] + list(claim_templates)
    yield from _resources(pod.get("resources"), path + ("resources",))
    for list_name, i, c in _containers(pod):
        here = path + (list_name, i)
        yield from _mounts(c, here, volumes)
        yield from _ports(c, here)
        yield from _resources(c.get("resources"), here + ("resources",))
        yield from _probe_ports(c, here)


def _get(obj: Any, path: FieldPath) -> Any:
    for step in path:
        obj = obj.get(step) if isinstance(obj, dict) else None
    return obj


def pod_template(obj: Mapping[str, Any]) -> FieldPath | None:
    """The path of a built-in workload's pod template (`()` for a Pod), or None."""
    found = WORKLOADS.get(str(obj.get("kind", "")))
    return found[1] if found is not None and obj.get("apiVersion") == found[0] else None


def violations(obj: dict[str, Any]) -> Iterator[Violation]:
    """Every rule one object breaks, in the order the API server reports them."""
    yield from _meta(obj.get("metadata"), ("metadata",))
    kind = str(obj.get("kind", ""))
    tpath = pod_template(obj)
    if tpath is None:
        return
    if tpath:
        yield from _meta(_get(obj, tpath + ("metadata",)), tpath + ("metadata",))
        yield from _workload_selector(obj, kind)
    claims: list[str] = []
    if kind == "StatefulSet":
        # Mounts may name a volumeClaimTemplate: the controller adds those volumes to each pod.
        for i, claim in _items(_get(obj, ("spec", "volumeClaimTemplates"))):
            meta = claim.get("metadata")
            if isinstance(meta, dict):
                claims.append(str(meta.get("name")))
                yield from _meta(meta, ("spec", "volumeClaimTemplates", i, "metadata"))
    pod = _get(obj, tpath + ("spec",))
    if not isinstance(pod, dict):
        return
    if kind != "StatefulSet":
        yield from _pod(pod, tpath + ("spec",), claims)
        return
    # ValidateStatefulSetSpec does not validate the pod template's spec (a TODO upstream:
    # ValidatePodTemplateSpecForStatefulSet), so the StatefulSet is accepted and every pod
    # its controller creates is refused (FailedCreate events): the same rules, another class.
    for v in _pod(pod, tpath + ("spec",), claims):
        if v.klass == REFUSED:
            v = replace(v, klass=BROKEN, rule=v.rule + "; a StatefulSet's pods are refused, not the StatefulSet")
        yield v


# ---------------------------------------------------------------- subPath keys


def subpath_keys(obj: dict[str, Any], targets: Mapping[tuple[str, str | None, str], Target]) -> Iterator[Violation]:
    """A `subPath` mount of a ConfigMap or Secret volume names one file of the volume: a key of
    the object (or an `items[].path`). The API server cannot know the object; the kubelet then
    mounts an empty directory in place of the file (kubernetes/kubernetes#54514), so the app
    reads nothing. `targets` are the repo's ConfigMaps and Secrets by their final names."""
    tpath = pod_template(obj)
    pod = _get(obj, tpath + ("spec",)) if tpath is not None else None
    if not isinstance(pod, dict):
        return
    spec_path = tpath + ("spec",) if tpath is not None else ()
    ns = obj.get("metadata", {}).get("namespace") if isinstance(obj.get("metadata"), dict) else None
    sources: dict[str, tuple[str, dict[str, Any]]] = {}
    for _, v in _items(pod.get("volumes")):
        for field_, kind, name_field in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
            src = v.get(field_)
            if isinstance(src, dict) and isinstance(v.get("name"), str) and src.get("optional") is not True:
                sources[v["name"]] = (kind, src)
    for list_name, i, c in _containers(pod):
        for j, m in _items(c.get("volumeMounts")):
            sub, found = m.get("subPath"), sources.get(str(m.get("name")))
            if not isinstance(sub, str) or not sub or found is None:
                continue
            kind, src = found
            first = sub.split("/", 1)[0]
            at = spec_path + (list_name, i, "volumeMounts", j, "subPath")
            items = [str(it.get("path", "")).split("/", 1)[0] for _, it in _items(src.get("items"))]
            if items:
                if first not in items:
                    yield Violation(at, f"subPath {sub!r} is not a path of the volume's `items` ({', '.join(items)})",
                                    "kubelet: subPath names a file of the volume", BROKEN)
                continue
            target = targets.get((kind, ns, str(src.get("secretName" if kind == "Secret" else "name"))))
            if target is None or target.keys is None or first in target.keys:
                continue
            keys = sorted(target.keys)
            guess = close_matches(first, keys, n=1)
            yield Violation(at, f"subPath {sub!r} names no key of {kind} {target.name!r}",
                            "kubelet: subPath names a file of the volume", BROKEN,
                            hint=(f"did you mean {guess[0]!r}? " if guess else "") + f"keys: {', '.join(keys) or '(none)'}")


# ---------------------------------------------------------------- the step


def _error(r: Resource, v: Violation, patches: Sequence[Patch]) -> ValidationError:
    file, line = origin_of(r, v.path, patches)
    return ValidationError(
        f"{r.describe()} {v.klass}: `{dotted(v.path)}`: {v.message} (rule: {v.rule})",
        file=file, line=line, hint=v.hint,
    )


def _env_warning(r: Resource, path: FieldPath, name: str, patches: Sequence[Patch]) -> ValidationError:
    file, line = origin_of(r, path, patches)
    return ValidationError(
        f"{r.describe()} sets env {name!r} twice in one container (`{dotted(path)}`): the later entry wins "
        "(the API server accepts it with a warning: \"hides previous definition\")",
        file=file, line=line,
        hint="remove one, unless the later value uses $(" + name + ") on purpose; "
        "server-side apply (Flux, Argo CD with ServerSideApply=true) cannot apply such a list",
    )


def api_step(resources: list[Resource], patches: Sequence[Patch] = (),
             targets: Mapping[tuple[str, str | None, str], Target] | None = None) -> list[ValidationError]:
    """Raise for the first object (in the given order) that breaks an API-server rule; return
    warnings for what the API server only warns about (a duplicate env name).
    `targets`: the repo's ConfigMaps and Secrets by (kind, namespace, final name)."""
    warnings: list[ValidationError] = []
    for r in resources:
        for v in violations(r.obj):
            raise _error(r, v, patches)
        if targets is not None:
            for v in subpath_keys(r.obj, targets):
                raise _error(r, v, patches)
        tpath = pod_template(r.obj)
        pod = _get(r.obj, tpath + ("spec",)) if tpath is not None else None
        if tpath is not None and isinstance(pod, dict):
            warnings += [_env_warning(r, path, name, patches) for path, name in env_duplicates(pod, tpath + ("spec",))]
    return warnings
