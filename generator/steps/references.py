"""Step: find every reference from a workload's pod spec to a ConfigMap or Secret, check that it
resolves (object and key), and rewrite it to the object's final (hashed) name.

The workload is the referrer; the ConfigMap or Secret is the target. Reference sites, in
`containers`, `initContainers` and `ephemeralContainers` and in the pod's volumes:
`env[].valueFrom.configMapKeyRef|secretKeyRef`, `envFrom[].configMapRef|secretRef`,
`volumes[].configMap|secret`, `volumes[].projected.sources[].configMap|secret`, and
`imagePullSecrets[]`; outside pod specs, Ingress `spec.tls[].secretName` and ServiceAccount
`imagePullSecrets[]`/`secrets[]` (see `find_object_refs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from generator.config import PodSpecPath
from generator.hints import close_matches as _close_matches
from generator.errors import ReferenceError_
from generator.model import Resource

FieldPath = tuple[str | int, ...]

_TEMPLATE = ("spec", "template", "spec")
BUILTIN_POD_SPECS: tuple[PodSpecPath, ...] = (
    PodSpecPath("Pod", ("spec",)),
    PodSpecPath("Deployment", _TEMPLATE),
    PodSpecPath("StatefulSet", _TEMPLATE),
    PodSpecPath("DaemonSet", _TEMPLATE),
    PodSpecPath("ReplicaSet", _TEMPLATE),
    PodSpecPath("ReplicationController", _TEMPLATE),
    PodSpecPath("Job", _TEMPLATE),
    PodSpecPath("CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    PodSpecPath("PodTemplate", ("template", "spec")),
    PodSpecPath("Rollout", _TEMPLATE, "argoproj.io/v1alpha1"),
)
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass
class Ref:
    """One reference: `holder[field]` names the target."""

    target_kind: str  # "ConfigMap" or "Secret"
    holder: dict[str, Any]
    field: str
    path: FieldPath  # from the object's root to holder[field]
    keys: tuple[tuple[str, FieldPath], ...]  # referenced keys and where they are written
    optional: bool
    site: str  # the kind of site, for graphs and messages, e.g. "env", "envFrom", "volume"

    @property
    def name(self) -> str:
        return str(self.holder.get(self.field, ""))


@dataclass(frozen=True)
class Target:
    kind: str
    name: str  # declared name
    final_name: str
    keys: frozenset[str] | None  # None: unknown (external objects)
    resource: Resource | None = None


def pod_spec_path(obj: Mapping[str, Any], specs: Iterable[PodSpecPath]) -> FieldPath | None:
    kind = obj.get("kind")
    api = obj.get("apiVersion")
    for spec in specs:
        if spec.kind == kind and (spec.api_version is None or _same_group(spec.api_version, api)):
            return spec.path
    return None


def _same_group(wanted: str, actual: Any) -> bool:
    return isinstance(actual, str) and wanted.split("/")[0] == actual.split("/")[0]


def _get(obj: Any, path: FieldPath) -> Any:
    for step in path:
        if isinstance(obj, dict) and isinstance(step, str):
            obj = obj.get(step)
        else:
            return None
    return obj


def _dicts(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield i, item


def _items_keys(src: dict[str, Any], path: FieldPath) -> tuple[tuple[str, FieldPath], ...]:
    return tuple(
        (str(item["key"]), path + ("items", i, "key"))
        for i, item in _dicts(src.get("items"))
        if "key" in item
    )


def find_refs(obj: dict[str, Any], spec_path: FieldPath) -> list[Ref]:
    pod = _get(obj, spec_path)
    if not isinstance(pod, dict):
        return []
    refs: list[Ref] = []
    for list_name in CONTAINER_LISTS:
        for ci, container in _dicts(pod.get(list_name)):
            cpath = spec_path + (list_name, ci)
            for ei, env in _dicts(container.get("env")):
                value_from = env.get("valueFrom")
                if not isinstance(value_from, dict):
                    continue
                for ref_field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = value_from.get(ref_field)
                    if isinstance(ref, dict) and "name" in ref:
                        p = cpath + ("env", ei, "valueFrom", ref_field)
                        keys = ((str(ref["key"]), p + ("key",)),) if "key" in ref else ()
                        refs.append(Ref(kind, ref, "name", p + ("name",), keys, ref.get("optional") is True, "env"))
            for ei, env_from in _dicts(container.get("envFrom")):
                for ref_field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = env_from.get(ref_field)
                    if isinstance(ref, dict) and "name" in ref:
                        p = cpath + ("envFrom", ei, ref_field)
                        refs.append(Ref(kind, ref, "name", p + ("name",), (), ref.get("optional") is True, "envFrom"))
    for vi, volume in _dicts(pod.get("volumes")):
        vpath = spec_path + ("volumes", vi)
        for vol_field, kind, name_field in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
            src = volume.get(vol_field)
            if isinstance(src, dict) and name_field in src:
                p = vpath + (vol_field,)
                refs.append(Ref(kind, src, name_field, p + (name_field,), _items_keys(src, p),
                                src.get("optional") is True, "volume"))
        projected = volume.get("projected")
        if isinstance(projected, dict):
            for si, source in _dicts(projected.get("sources")):
                for vol_field, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                    src = source.get(vol_field)
                    if isinstance(src, dict) and "name" in src:
                        p = vpath + ("projected", "sources", si, vol_field)
                        refs.append(Ref(kind, src, "name", p + ("name",), _items_keys(src, p),
                                        src.get("optional") is True, "projected volume"))
    for i, secret in _dicts(pod.get("imagePullSecrets")):
        if "name" in secret:
            refs.append(Ref("Secret", secret, "name", spec_path + ("imagePullSecrets", i, "name"), (), False, "imagePullSecrets"))
    return refs


def find_object_refs(obj: dict[str, Any]) -> list[Ref]:
    """References outside pod specs: Ingress TLS secrets and a ServiceAccount's secrets.

    They are rewritten when the Secret is generated here, but a missing one is not an error:
    such Secrets are commonly made in the cluster (cert-manager writes Ingress TLS secrets).
    """
    refs: list[Ref] = []
    kind = obj.get("kind")
    if kind == "Ingress":
        spec = obj.get("spec")
        tls = spec.get("tls") if isinstance(spec, dict) else None
        for i, entry in _dicts(tls):
            if "secretName" in entry:
                refs.append(Ref("Secret", entry, "secretName", ("spec", "tls", i, "secretName"), (), True, "ingress tls"))
    elif kind == "ServiceAccount":
        for list_name in ("imagePullSecrets", "secrets"):
            for i, entry in _dicts(obj.get(list_name)):
                if "name" in entry:
                    refs.append(Ref("Secret", entry, "name", (list_name, i, "name"), (), True, list_name))
    return refs


def dotted(path: FieldPath) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


TargetIndex = Mapping[tuple[str, str | None, str], Target]


def resolve(
    workload: Resource,
    refs: list[Ref],
    targets: TargetIndex,
    external: Mapping[str, frozenset[str]],
    env: str,
) -> None:
    """Check every reference of one workload and rewrite it to the target's final name."""
    ns = workload.namespace
    for ref in refs:
        name = ref.name
        target = targets.get((ref.target_kind, ns, name))
        if target is None:
            if ref.optional or name in external.get(ref.target_kind, frozenset()):
                continue
            raise _missing_object(workload, ref, name, targets, env)
        if target.keys is not None:
            for key, key_path in ref.keys:
                if key not in target.keys and not ref.optional:
                    raise _missing_key(workload, ref, target, key, key_path)
        ref.holder[ref.field] = target.final_name


def _missing_object(workload: Resource, ref: Ref, name: str, targets: TargetIndex, env: str) -> ReferenceError_:
    candidates = sorted({t.name for (kind, _, _), t in targets.items() if kind == ref.target_kind})
    guess = _close_matches(name, candidates, n=1)
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    registry = "configMaps" if ref.target_kind == "ConfigMap" else "secrets"
    hint += (
        f"Declare the {ref.target_kind}, fix the name, mark the reference `optional: true`, "
        f"or list it under `external.{registry}` in gitops-gen.yaml (or the environment's env.yaml) "
        "if it is managed outside this repo"
    )
    return ReferenceError_(
        f"{workload.describe()} refers to {ref.target_kind} {name!r} at {dotted(ref.path)}, "
        f"but environment {env!r} has no {ref.target_kind} of that name",
        file=workload.origin.file,
        line=workload.origin.at(*ref.path).line,
        hint=hint,
    )


def _missing_key(workload: Resource, ref: Ref, target: Target, key: str, key_path: FieldPath) -> ReferenceError_:
    keys = sorted(target.keys or ())
    guess = _close_matches(key, keys, n=1)
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    hint += f"{target.kind} {target.name!r} has keys: {', '.join(keys) or '(none)'}; or mark the reference `optional: true`"
    return ReferenceError_(
        f"{workload.describe()} uses key {key!r} of {target.kind} {target.name!r} at {dotted(key_path)}, "
        "but that key does not exist",
        file=workload.origin.file,
        line=workload.origin.at(*key_path).line,
        hint=hint,
    )
