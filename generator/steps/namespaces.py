"""Step: put an environment's objects into its namespace, as the API server scopes them.

Which objects are cluster-scoped (never given a namespace), first match wins:

1. A kind of a Kubernetes API group (one the pinned schemas serve): the built-in cluster-scoped
   resources of Kubernetes 1.35 below. The schemas of `kubernetes-validate` carry no scope,
   so the list is Kubernetes' own: the resources its API discovery serves with
   `"namespaced": false` (`kubectl api-resources --namespaced=false` against a 1.35 API
   server; kustomize's kyaml keeps the same facts for the kinds it knows).
   tests/test_namespaces.py checks every entry against the pinned schemas and against
   `kubectl kustomize`.
2. A custom resource whose CustomResourceDefinition is rendered in the same environment:
   its `spec.scope`.
3. A custom resource whose kind is listed under `clusterScoped:` in gitops-gen.yaml, or in
   WELL_KNOWN_CLUSTER_SCOPED (operators' cluster-wide kinds a repo references without
   shipping their CRD).
4. Anything else is namespaced.

Namespaced objects get the environment's namespace. References that name a namespace follow
the objects they name (kustomize does the same): a ServiceAccount subject of a RoleBinding or
ClusterRoleBinding, and the Service of a webhook configuration, an APIService or a CRD
conversion webhook, when they name a ServiceAccount/Service rendered in this environment and
the namespace they give is unset, `default`, or the one that object had before it moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from generator.model import Resource
from generator.steps.k8s_schema import schemas

# (API group, kind) of every cluster-scoped resource Kubernetes 1.35 serves ("" is the core group).
BUILTIN_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset({
    ("", "ComponentStatus"), ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("authentication.k8s.io", "SelfSubjectReview"), ("authentication.k8s.io", "TokenReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"), ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("certificates.k8s.io", "CertificateSigningRequest"), ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"), ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("internal.apiserver.k8s.io", "StorageVersion"),
    ("networking.k8s.io", "IPAddress"), ("networking.k8s.io", "IngressClass"), ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("resource.k8s.io", "DeviceClass"), ("resource.k8s.io", "DeviceTaintRule"), ("resource.k8s.io", "ResourceSlice"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"), ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"), ("storage.k8s.io", "VolumeAttributesClass"),
    ("storagemigration.k8s.io", "StorageVersionMigration"),
})

# Cluster-scoped kinds of widely used operators (custom resources): the default of the
# `clusterScoped:` setting, which adds to it. Each is cluster-scoped in its project's CRD.
WELL_KNOWN_CLUSTER_SCOPED: tuple[str, ...] = (
    "ClusterSecretStore", "ClusterExternalSecret", "ClusterPushSecret", "ClusterGenerator",  # External Secrets
    "ClusterIssuer",  # cert-manager
    "ClusterPolicy", "ClusterCleanupPolicy",  # Kyverno
    "ConstraintTemplate",  # OPA Gatekeeper
    "GatewayClass",  # Gateway API
    "ClusterWorkflowTemplate",  # Argo Workflows
    "VolumeSnapshotClass", "VolumeSnapshotContent",  # CSI external-snapshotter
    "GlobalNetworkPolicy", "GlobalNetworkSet",  # Calico
    "CiliumClusterwideNetworkPolicy",  # Cilium
    "ClusterTriggerAuthentication",  # KEDA
    "NodePool", "EC2NodeClass",  # Karpenter
    "CompositeResourceDefinition", "Composition",  # Crossplane
)

CRD_KIND = "CustomResourceDefinition"
_BINDINGS = ("RoleBinding", "ClusterRoleBinding")
_WEBHOOK_CONFIGS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


@dataclass(frozen=True)
class Scopes:
    """Which kinds are cluster-scoped in one environment."""

    crds: Mapping[tuple[str, str], bool]  # (group, kind) -> cluster-scoped, from the CRDs rendered here
    cluster_kinds: frozenset[str]  # `clusterScoped:` plus the well-known ones

    @classmethod
    def of(cls, resources: Iterable[Resource], cluster_kinds: Iterable[str]) -> Scopes:
        crds: dict[tuple[str, str], bool] = {}
        for r in resources:
            found = crd_scope(r)
            if found is not None:
                crds[(found[0], found[1])] = found[2]
        return cls(crds, frozenset(cluster_kinds))

    def cluster_scoped(self, api_version: str, kind: str) -> bool:
        group = _group(api_version)
        if group in schemas().groups:
            return (group, kind) in BUILTIN_CLUSTER_SCOPED
        found = self.crds.get((group, kind))
        return found if found is not None else kind in self.cluster_kinds


def crd_scope(r: Resource) -> tuple[str, str, bool] | None:
    """(group, kind, cluster-scoped) of the kind a CustomResourceDefinition defines."""
    spec = r.obj.get("spec")
    if r.kind != CRD_KIND or not isinstance(spec, dict) or not isinstance(spec.get("names"), dict):
        return None
    group, kind = spec.get("group"), spec["names"].get("kind")
    if isinstance(group, str) and isinstance(kind, str):
        return group, kind, spec.get("scope") == "Cluster"
    return None


Moved = Mapping[tuple[str, str], frozenset[str | None]]  # (kind, name) -> namespaces it had before


def namespace_step(resources: list[Resource], namespace: str | None, scopes: Scopes,
                   per_app: dict[str, list[list[Any]]] | None = None) -> Moved:
    """Give every namespaced object the environment's namespace; return where the Services and
    ServiceAccounts were before, for `follow_step` (and, in `per_app`, each app's moves)."""
    if namespace is None:
        return {}
    moved: dict[tuple[str, str], set[str | None]] = {}
    for r in resources:
        if scopes.cluster_scoped(str(r.obj.get("apiVersion", "")), r.kind):
            continue
        if r.kind in ("Service", "ServiceAccount"):
            moved.setdefault((r.kind, r.name), set()).add(r.namespace)
            if per_app is not None:
                per_app.setdefault(r.app, []).append([r.kind, r.name, r.namespace])
        r.metadata["namespace"] = namespace
    return {k: frozenset(v) for k, v in moved.items()}


def follow_step(resources: list[Resource], namespace: str | None, moved: Moved) -> None:
    """Point namespace references at the namespace their objects moved to (after patches, so a
    patch's own subjects and webhook services follow too)."""
    if namespace is None:
        return
    for r in resources:
        for kind, ref in _namespace_refs(r):
            name, old = ref.get("name"), ref.get("namespace")
            before = moved.get((kind, name)) if isinstance(name, str) else None
            if before is not None and (old in (None, "", "default") or old in before):
                ref["namespace"] = namespace


def _namespace_refs(r: Resource) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind named, the mapping holding `name` and `namespace`) for each reference of `r`."""
    obj = r.obj
    if r.kind in _BINDINGS:
        for subject in _dicts(obj.get("subjects")):
            if subject.get("kind") == "ServiceAccount":
                yield "ServiceAccount", subject
    elif r.kind in _WEBHOOK_CONFIGS:
        for hook in _dicts(obj.get("webhooks")):
            yield from _service(hook, "clientConfig", "service")
    elif r.kind == "APIService":
        yield from _service(obj, "spec", "service")
    elif r.kind == CRD_KIND:
        yield from _service(obj, "spec", "conversion", "webhook", "clientConfig", "service")


def _service(value: Any, *path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    if isinstance(value, dict):
        yield "Service", value


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
