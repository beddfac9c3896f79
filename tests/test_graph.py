"""`graph`: workloads -> ConfigMaps/Secrets with edge labels, as Mermaid and DOT."""

from __future__ import annotations

import shutil
from pathlib import Path


from generator.review.graph import EnvGraph, dot, env_graph, mermaid
from generator.model import Origin, Resource
from generator.steps.references import BUILTIN_POD_SPECS
from tests.helpers import GOLDEN_DIFF_REPO, deployment, write_repo, run as cli


PROD_MERMAID = '''\
flowchart LR
  w1["Deployment web"]:::workload
  w2["Deployment worker"]:::workload
  c1[("ConfigMap web-assets")]:::configmap
  c2[("ConfigMap web-config")]:::configmap
  c3[("ConfigMap worker-config")]:::configmap
  x1{{"Secret worker-credentials (external)"}}:::external
  w1 -->|"mount /srv/www/img"| c1
  w1 -->|"env: LOG_LEVEL, greeting; mount /etc/nginx (keys: nginx.conf)"| c2
  w2 -->|"envFrom"| c3
  w2 -->|"env: token"| x1
  classDef workload fill:#e8f0fe,stroke:#4a6fa5
  classDef configmap fill:#eaf5ea,stroke:#4a8a4a
  classDef secret fill:#fdf0e6,stroke:#b0703a
  classDef external fill:#f4f4f4,stroke:#999,stroke-dasharray:4 3
'''

DEV_DOT = '''\
digraph "gitops-gen" {
  rankdir=LR;
  node [fontname="Helvetica", fontsize=11];
  edge [fontname="Helvetica", fontsize=9];
  "w1" [label="Deployment web", shape=box];
  "w2" [label="Deployment worker", shape=box];
  "c1" [label="ConfigMap web-assets", shape=note];
  "c2" [label="ConfigMap web-config", shape=note];
  "c3" [label="ConfigMap worker-config", shape=note];
  "x1" [label="Secret worker-credentials (external)", shape=hexagon, style=dashed];
  "w1" -> "c1" [label="mount /srv/www/img"];
  "w1" -> "c2" [label="env: LOG_LEVEL, greeting; mount /etc/nginx (keys: nginx.conf)"];
  "w2" -> "c3" [label="envFrom"];
  "w2" -> "x1" [label="env: token"];
}
'''



def test_mermaid_one_env() -> None:
    result = cli("graph", "--repo", GOLDEN_DIFF_REPO, "--env", "prod")
    assert result.exit_code == 0, result.output
    assert result.stdout == PROD_MERMAID


def test_dot_one_env() -> None:
    result = cli("graph", "--repo", GOLDEN_DIFF_REPO, "--env", "dev", "--format", "dot")
    assert result.exit_code == 0, result.output
    assert result.stdout == DEV_DOT


def test_every_env_is_a_subgraph() -> None:
    out = cli("graph", "--repo", GOLDEN_DIFF_REPO).stdout
    assert '  subgraph dev_env["dev"]' in out and '  subgraph prod_env["prod"]' in out
    assert '    prod_w1 -->|"mount /srv/www/img"| prod_c1' in out
    dot_out = cli("graph", "--repo", GOLDEN_DIFF_REPO, "--format", "dot").stdout
    assert '  subgraph "cluster_dev" {' in dot_out and '    "prod_w2" -> "prod_x1" [label="env: token"];' in dot_out


def test_nodes_use_declared_names_not_hashes(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(GOLDEN_DIFF_REPO, root)
    out = cli("graph", "--repo", root, "--env", "dev").stdout
    rendered = cli("render", "--repo", root, "--env", "dev", "--stdout").stdout
    hashed = [line.split()[-1] for line in rendered.splitlines() if line.startswith("  name: web-config-")]
    assert hashed and hashed[0] not in out and "ConfigMap web-config" in out


def test_sites_and_labels(tmp_path: Path) -> None:
    write_repo(tmp_path, {
        "base/api/app.yaml": """
            configMaps:
              - name: api-config
                literals: {a: "1", b: "2"}
              - name: unused
                literals: {x: "1"}
        """,
        "base/api/deployment.yaml": deployment("api", """
            imagePullSecrets: [{name: registry-creds}]
            containers:
              - name: api
                image: api:1
                env:
                  - {name: B, valueFrom: {configMapKeyRef: {name: api-config, key: b}}}
                  - {name: A, valueFrom: {configMapKeyRef: {name: api-config, key: a}}}
                volumeMounts: [{name: all, mountPath: "/etc/\\"quoted\\""}]
            volumes:
              - name: all
                projected:
                  sources: [{configMap: {name: api-config, items: [{key: a, path: a}]}}]
              - name: spare
                configMap: {name: api-config}
        """),
        "gitops-gen.yaml": "external: {secrets: [registry-creds]}\n",
        "environments/e/env.yaml": "namespace: e\n",
    })
    out = cli("graph", "--repo", tmp_path).stdout
    assert ('w1 -->|"env: a, b; mount /etc/#quot;quoted#quot; (keys: a); volume spare (not mounted)"| c1' in out)
    assert 'w1 -->|"imagePullSecrets"| x1' in out
    assert 'c2[("ConfigMap unused")]:::configmap' in out  # nobody uses it: drawn without edges
    dot_out = cli("graph", "--repo", tmp_path, "--format", "dot").stdout
    assert 'label="env: a, b; mount /etc/\\"quoted\\" (keys: a); volume spare (not mounted)"' in dot_out


def test_secret_made_by_an_external_secret(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(GOLDEN_DIFF_REPO, root)
    (root / "base/worker/externalsecret.yaml").write_text(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: worker-token}\n"
        "spec:\n  secretStoreRef: {kind: ClusterSecretStore, name: vault}\n"
        "  target: {name: worker-token}\n  data: [{secretKey: token, remoteRef: {key: worker}}]\n")
    dep = root / "base/worker/deployment.yaml"
    dep.write_text(dep.read_text().replace("name: worker-credentials", "name: worker-token"))
    result = cli("graph", "--repo", root, "--env", "dev")
    assert result.exit_code == 0, result.output
    assert 'c4{{"Secret worker-token (from ExternalSecret)"}}:::secret' in result.stdout
    assert 'w2 -->|"env: token"| c4' in result.stdout
    assert "worker-token-" not in result.stdout  # the declared name, not the hashed one


def test_env_graph_skips_workloads_without_references() -> None:
    pod = Resource({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely"},
                    "spec": {"containers": [{"name": "c", "image": "x"}]}}, Origin("f"), "app")
    graph = env_graph("e", [pod], BUILTIN_POD_SPECS)
    assert graph == EnvGraph("e", (), (), ())
    assert mermaid([graph]).startswith("flowchart LR\n  classDef")
    assert dot([graph]).endswith("}\n")


def test_unknown_env_is_a_usage_error() -> None:
    result = cli("graph", "--repo", GOLDEN_DIFF_REPO, "--env", "nope")
    assert result.exit_code == 2 and "unknown environment 'nope'" in result.output
