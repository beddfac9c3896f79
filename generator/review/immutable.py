"""Which changes to an existing object the API server refuses: its update validation (the
`Validate*Update` functions of k8s.io/kubernetes pkg/apis/*/validation and the update strategies
in pkg/registry) keeps some fields immutable. `diff` compares the committed object (what the
cluster has) with the new render and flags these, so a review sees the sync failure coming:
the fix is a new name (the object is then created and the old one pruned) or a manual replace.

The rules, each keyed by apiVersion group and kind:

| kind | refused change | upstream rule |
|---|---|---|
| Deployment, ReplicaSet, DaemonSet (apps/v1) | `spec.selector` | registry strategy ValidateUpdate: ValidateImmutableField(selector) |
| StatefulSet | any `spec` field but replicas, ordinals, template, updateStrategy, persistentVolumeClaimRetentionPolicy, minReadySeconds | ValidateStatefulSetUpdate |
| Job | `spec.selector`, `spec.template`, `spec.completionMode` | ValidateJobSpecUpdate (template: only a suspended Job's scheduling fields may change) |
| Service | `spec.clusterIP`, `spec.clusterIPs` once set (not for type ExternalName) | ValidateServiceUpdate |
| PersistentVolumeClaim | any `spec` field but `resources.requests` and `volumeAttributesClassName`; a smaller storage request | ValidatePersistentVolumeClaimUpdate |
| ConfigMap, Secret with `immutable: true` | `data`, `binaryData` (`stringData`), `immutable` | ValidateConfigMapUpdate, ValidateSecretUpdate |
| Secret | `type` | ValidateSecretUpdate |
| RoleBinding, ClusterRoleBinding | `roleRef` | ValidateRoleBindingUpdate: "cannot change roleRef" |
| StorageClass | `parameters`, `provisioner`, `reclaimPolicy`, `volumeBindingMode` | ValidateStorageClassUpdate |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from generator.steps.quantity import value_of


@dataclass(frozen=True)
class Refusal:
    """One change the API server refuses: the field (dotted) and why."""

    path: str
    reason: str


Rule = Callable[[dict[str, Any], dict[str, Any]], Iterator[Refusal]]
_FIX = "delete and re-create the object (or rename it)"


def _spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], key: str) -> bool:
    return old.get(key) != new.get(key)


def _selector(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Refusal]:
    if _changed(_spec(old), _spec(new), "selector"):
        yield Refusal("spec.selector", f"`spec.selector` is immutable in apps/v1 (ValidateImmutableField); {_FIX}")


_STATEFULSET_MUTABLE = frozenset({"replicas", "ordinals", "template", "updateStrategy",
                                  "persistentVolumeClaimRetentionPolicy", "minReadySeconds"})


def _statefulset(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Refusal]:
    a, b = _spec(old), _spec(new)
    for key in sorted((set(a) | set(b)) - _STATEFULSET_MUTABLE):
        if _changed(a, b, key):
            yield Refusal(f"spec.{key}", "a StatefulSet may change only replicas, ordinals, template, updateStrategy, "
                          f"persistentVolumeClaimRetentionPolicy and minReadySeconds (ValidateStatefulSetUpdate); {_FIX} "
                          "(`kubectl delete statefulset --cascade=orphan` keeps the pods and volumes)")


def _job(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Refusal]:
    a, b = _spec(old), _spec(new)
    for key in ("selector", "template", "completionMode"):
        if _changed(a, b, key):
            yield Refusal(f"spec.{key}", f"a Job's `spec.{key}` is immutable (ValidateJobSpecUpdate); a finished Job "
                          "is usually deleted and re-created: give it a new name, or let the GitOps engine replace it "
                          "(Argo CD `Replace=true`, Flux `kustomize.toolkit.fluxcd.io/force: enabled`)")


def _needs_cluster_ip(obj: Mapping[str, Any]) -> bool:
    return _spec(obj).get("type") != "ExternalName"


def _service(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Refusal]:
    if not (_needs_cluster_ip(old) and _needs_cluster_ip(new)):
        return
    a, b = _spec(old), _spec(new)
    for key in ("clusterIP", "clusterIPs"):
        if b.get(key) and _changed(a, b, key):
            was = "unset, so the cluster allocated one" if not a.get(key) else f"{a.get(key)}"
            yield Refusal(f"spec.{key}", f"`spec.{key}` is immutable once allocated (ValidateServiceUpdate; was {was}); {_FIX}")


def _storage(spec: Mapping[str, Any]) -> Any:
    resources = spec.get("resources")
    requests = resources.get("requests") if isinstance(resources, dict) else None
    return requests.get("storage") if isinstance(requests, dict) else None


def _pvc(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Refusal]:
    a, b = _spec(old), _spec(new)
    for key in sorted((set(a) | set(b)) - {"resources", "volumeAttributesClassName"}):
        if _changed(a, b, key):
            yield Refusal(f"spec.{key}", "a PersistentVolumeClaim's spec is immutable except resources.requests and "
                          f"volumeAttributesClassName (ValidatePersistentVolumeClaimUpdate); {_FIX} (the data goes with it)")
    limits_a = {k: v for k, v in (a.get("resources") or {}).items() if k != "requests"}
    limits_b = {k: v for k, v in (b.get("resources") or {}).items() if k != "requests"}
    if limits_a != limits_b:
        yield Refusal("spec.resources", "only `resources.requests` of a PersistentVolumeClaim may change "
                      f"(ValidatePersistentVolumeClaimUpdate); {_FIX}")
    before, after = value_of(_storage(a)), value_of(_storage(b))
    if before is not None and after is not None and after < before:
        yield Refusal("spec.resources.requests.storage", f"a volume can grow, not shrink ({_storage(a)} -> {_storage(b)}; "
                      "ValidatePersistentVolumeClaimUpdate refuses a request below the volume's capacity)")


def _immutable_data(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Refusal]:
    if old.get("immutable") is not True:
        return
    for key in ("data", "binaryData", "stringData", "immutable"):
        if _changed(old, new, key):
            yield Refusal(key, f"`{key}` cannot change once `immutable: true` is set (Validate{old.get('kind')}Update); "
                          f"{_FIX}, or keep it hashed so every change gets a new name")


def _secret(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Refusal]:
    yield from _immutable_data(old, new)
    if _changed(old, new, "type"):
        yield Refusal("type", f"a Secret's `type` is immutable (ValidateSecretUpdate); {_FIX}")


def _role_binding(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Refusal]:
    if _changed(old, new, "roleRef"):
        yield Refusal("roleRef", f"a binding's `roleRef` cannot change (ValidateRoleBindingUpdate); {_FIX}")


def _storage_class(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Refusal]:
    for key in ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"):
        if _changed(old, new, key):
            yield Refusal(key, f"a StorageClass's `{key}` is immutable (ValidateStorageClassUpdate); {_FIX}")


# (apiVersion group, kind) -> rule; the core group is "".
RULES: Mapping[tuple[str, str], Rule] = {
    ("apps", "Deployment"): _selector,
    ("apps", "ReplicaSet"): _selector,
    ("apps", "DaemonSet"): _selector,
    ("apps", "StatefulSet"): _statefulset,
    ("batch", "Job"): _job,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "ConfigMap"): _immutable_data,
    ("", "Secret"): _secret,
    ("rbac.authorization.k8s.io", "RoleBinding"): _role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _role_binding,
    ("storage.k8s.io", "StorageClass"): _storage_class,
}


def _group(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def refusals(old: dict[str, Any], new: dict[str, Any]) -> tuple[Refusal, ...]:
    """What the API server refuses when the object `old` (same kind, namespace and name) is
    updated to `new`; empty when the update is allowed or the kind has no rule here."""
    rule = RULES.get((_group(new), str(new.get("kind", ""))))
    if rule is None or _group(old) != _group(new) or old.get("kind") != new.get("kind"):
        return ()
    return tuple(rule(old, new))
