from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generator.model import Origin, Resource
from generator.steps.k8s_schema import schemas
from generator.steps.namespaces import (
    BUILTIN_CLUSTER_SCOPED,
    WELL_KNOWN_CLUSTER_SCOPED,
    Scopes,
    follow_step,
    namespace_step,
)
from tests.helpers import load_out, run, write_repo
from tests.kubectl import find_kubectl, kustomize_build

_NOT_OBJECTS = ("Status", "WatchEvent", "DeleteOptions", "APIGroup", "APIGroupList", "APIResourceList", "APIVersions")


def _resource(obj: dict[str, Any]) -> Resource:
    return Resource(obj, Origin("x.yaml", 1), "app")


def _obj(api: str, kind: str, name: str = "x", **rest: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, **rest}


def test_every_builtin_cluster_scoped_kind_is_served_by_the_pinned_api() -> None:
    served = {(api.rpartition("/")[0], kind) for api, kind in schemas().kinds}
    assert BUILTIN_CLUSTER_SCOPED <= served, BUILTIN_CLUSTER_SCOPED - served


def test_kubectl_kustomize_never_finds_a_cluster_scoped_kind_we_would_namespace(tmp_path: Path) -> None:
    # kustomize's own API data (older than Kubernetes 1.35: newer kinds such as
    # ValidatingAdmissionPolicy are namespaced there) must be a subset of ours.
    objects = [_obj(api, kind, f"o{i}") for i, (api, kind) in enumerate(sorted(schemas().kinds))
               if not kind.endswith("List") and kind not in _NOT_OBJECTS]
    (tmp_path / "all.json").write_text("\n---\n".join(json.dumps(o) for o in objects))
    (tmp_path / "kustomization.yaml").write_text("namespace: zz\nresources: [all.json]\n")
    built = kustomize_build(find_kubectl(), tmp_path)
    theirs = {(o["apiVersion"].rpartition("/")[0], o["kind"]) for o in built if "namespace" not in o["metadata"]}
    assert theirs <= BUILTIN_CLUSTER_SCOPED, theirs - BUILTIN_CLUSTER_SCOPED
    assert ("", "Namespace") in theirs and ("rbac.authorization.k8s.io", "ClusterRole") in theirs


def test_scopes_from_the_api_crds_and_settings() -> None:
    crds = [
        _resource(_obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "a",
                       spec={"group": "x.io", "scope": "Cluster", "names": {"kind": "Wide"}})),
        _resource(_obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "b",
                       spec={"group": "x.io", "scope": "Namespaced", "names": {"kind": "ClusterSecretStore"}})),
    ]
    scopes = Scopes.of(crds, (*WELL_KNOWN_CLUSTER_SCOPED, "Mine"))
    assert scopes.cluster_scoped("certificates.k8s.io/v1", "CertificateSigningRequest")
    assert scopes.cluster_scoped("v1", "Namespace")
    assert not scopes.cluster_scoped("v1", "ConfigMap")
    assert scopes.cluster_scoped("x.io/v1", "Wide")
    assert not scopes.cluster_scoped("x.io/v1", "ClusterSecretStore")  # the repo's CRD wins
    assert scopes.cluster_scoped("external-secrets.io/v1", "ClusterSecretStore")
    assert scopes.cluster_scoped("y.io/v1", "Mine")
    assert not scopes.cluster_scoped("y.io/v1", "Widget")
    assert not scopes.cluster_scoped("v1", "ClusterSecretStore")  # the settings never apply to Kubernetes groups


def test_references_follow_the_objects_they_name() -> None:
    sa = _resource(_obj("v1", "ServiceAccount", "runner", metadata={"name": "runner", "namespace": "ci"}))
    svc = _resource(_obj("v1", "Service", "hook"))
    binding = _resource(_obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "b", subjects=[
        {"kind": "ServiceAccount", "name": "runner", "namespace": "ci"},
        {"kind": "ServiceAccount", "name": "runner"},
        {"kind": "ServiceAccount", "name": "elsewhere", "namespace": "default"},
        {"kind": "ServiceAccount", "name": "runner", "namespace": "kube-system"},
        {"kind": "User", "name": "runner"},
    ]))
    webhook = _resource(_obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "w", webhooks=[
        {"name": "a.x.io", "clientConfig": {"service": {"name": "hook", "namespace": "default"}}}]))
    apiservice = _resource(_obj("apiregistration.k8s.io/v1", "APIService", "v1.x.io",
                                spec={"service": {"name": "hook", "namespace": "default"}}))
    crd = _resource(_obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "ws.x.io", spec={
        "group": "x.io", "scope": "Namespaced", "names": {"kind": "W"},
        "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "hook", "namespace": "default"}}}}}))
    resources = [sa, svc, binding, webhook, apiservice, crd]
    moved = namespace_step(resources, "prod", Scopes.of(resources, ()))
    follow_step(resources, "prod", moved)
    assert sa.namespace == "prod" and svc.namespace == "prod"
    assert binding.namespace is None and webhook.namespace is None and crd.namespace is None
    assert [s.get("namespace") for s in binding.obj["subjects"]] == ["prod", "prod", "default", "kube-system", None]
    assert webhook.obj["webhooks"][0]["clientConfig"]["service"]["namespace"] == "prod"
    assert apiservice.obj["spec"]["service"]["namespace"] == "prod"
    assert crd.obj["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["namespace"] == "prod"


def test_without_an_environment_namespace_nothing_moves() -> None:
    binding = _resource(_obj("rbac.authorization.k8s.io/v1", "RoleBinding", "b",
                             subjects=[{"kind": "ServiceAccount", "name": "x", "namespace": "default"}]))
    sa = _resource(_obj("v1", "ServiceAccount", "x"))
    assert namespace_step([binding, sa], None, Scopes.of([], ())) == {}
    follow_step([binding, sa], None, {})
    assert binding.obj["subjects"][0]["namespace"] == "default" and sa.namespace is None


REPO = {
    "gitops-gen.yaml": "clusterScoped: [GlobalThing]\n",
    "base/infra/store.yaml": """
        apiVersion: external-secrets.io/v1
        kind: ClusterSecretStore
        metadata: {name: vault}
        spec: {provider: {vault: {server: "https://vault.example.com", auth: {kubernetes: {role: x, mountPath: kubernetes}}}}}
        ---
        apiVersion: example.com/v1
        kind: GlobalThing
        metadata: {name: g}
        ---
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.com}
        spec:
          group: example.com
          scope: Cluster
          names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
          versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
        ---
        apiVersion: example.com/v1
        kind: Widget
        metadata: {name: w}
        ---
        apiVersion: certificates.k8s.io/v1
        kind: CertificateSigningRequest
        metadata: {name: csr}
        spec: {request: "", signerName: example.com/x, usages: [digital signature]}
        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: runner}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: runner}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
        subjects: [{kind: ServiceAccount, name: runner, namespace: default}]
    """,
    "environments/prod/env.yaml": "namespace: prod\n",
}


def test_render_keeps_cluster_scoped_objects_out_of_namespaces(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, REPO)
    result = run("render", "--repo", repo)
    assert result.exit_code == 0, result.output
    out = load_out(repo / "out" / "prod")
    namespaces = {path: doc["metadata"].get("namespace") for path, doc in out.items() if path != "kustomization.yaml"}
    assert namespaces == {
        "infra/clustersecretstore-vault.yaml": None,
        "infra/globalthing-g.yaml": None,
        "infra/customresourcedefinition-widgets.example.com.yaml": None,
        "infra/widget-w.yaml": None,
        "infra/certificatesigningrequest-csr.yaml": None,
        "infra/serviceaccount-runner.yaml": "prod",
        "infra/clusterrolebinding-runner.yaml": None,
    }
    assert out["infra/clusterrolebinding-runner.yaml"]["subjects"][0]["namespace"] == "prod"


def test_configmap_names_are_unique_per_namespace(tmp_path: Path) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {ns}}}\ndata: {{a: '1'}}\n"
    repo = write_repo(tmp_path, {
        "base/a/cm.yaml": cm.format(ns="team-a"),
        "base/b/cm.yaml": cm.format(ns="team-b"),
        "environments/dev/env.yaml": "vars: {}\n",
    })
    result = run("render", "--repo", repo)
    assert result.exit_code == 0, result.output
    out = load_out(repo / "out" / "dev")
    assert {doc["metadata"]["namespace"] for path, doc in out.items() if path.endswith("configmap-settings.team-a.yaml")
            or path.endswith("configmap-settings.team-b.yaml")} == {"team-a", "team-b"}
    # With an environment namespace both land in one namespace: that is a real conflict.
    write_repo(tmp_path, {"environments/dev/env.yaml": "namespace: dev\n"})
    result = run("render", "--repo", repo)
    assert result.exit_code == 1
    assert "ConfigMap 'settings' is declared twice in namespace 'dev'" in result.output
