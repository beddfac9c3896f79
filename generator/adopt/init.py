"""`gitops-gen init [DIR]`: a new repo that renders and passes `check` right away.

Writes gitops-gen.yaml, one app in base/, environments/dev, the editor schemas (.gitops-gen/
schemas/, referenced from each file's yaml-language-server modeline), a .pre-commit-config.yaml
with our hook, the CI workflow of docs/ci/ (GitHub Actions, or GitLab CI), and the Argo CD or
Flux manifest that deploys out/dev; the CLI then renders out/.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from generator import SOURCE_URL, __version__
from generator.errors import AdoptError
from generator.schemas import FILES, schema_text

SCHEMA_DIR = ".gitops-gen/schemas"
CI_FILES = {"github": ("github-actions.yml", ".github/workflows/gitops-gen.yml"),
            "gitlab": ("gitlab-ci.yml", ".gitlab-ci.yml")}
DEPLOYERS = ("argocd", "flux")
# What a new repo must not already have (anything else in DIR is left alone).
OWNED = ("gitops-gen.yaml", "base", "environments", "out")


@dataclass(frozen=True)
class Options:
    app: str = "hello"
    env: str = "dev"
    deploy: str = "argocd"
    ci: str = "github"
    source: str = SOURCE_URL  # gitops-gen's git URL, for the hook and the CI install step
    repo_url: str = "https://git.example.com/you/your-deploy-repo.git"  # this repo, for Argo CD/Flux


def _modeline(rel_from: str, schema_file: str) -> str:
    depth = rel_from.count("/")
    return f"# yaml-language-server: $schema={'../' * depth}{SCHEMA_DIR}/{schema_file}\n"


def files(o: Options) -> dict[str, str]:
    """Every file of the new repo (out/ aside), by path."""
    app_yaml = f"base/{o.app}/app.yaml"
    env_yaml = f"environments/{o.env}/env.yaml"
    out = {
        "gitops-gen.yaml": _modeline("gitops-gen.yaml", FILES["gitops-gen.yaml"])
        + "# Repo settings: README \"Input format\". Everything here is optional.\nhashLength: 10\nretention: 2\n",
        app_yaml: _modeline(app_yaml, FILES["app.yaml"]) + f"""\
# The app's ConfigMaps: each is hashed, immutable, and every workload using it is rewritten.
configMaps:
  - name: {o.app}-config
    literals:
      GREETING: "hello from {{{{ env }}}}"
    files:
      - content/index.html
""",
        f"base/{o.app}/content/index.html": "<!doctype html>\n<title>hello</title>\n<p>It works.</p>\n",
        f"base/{o.app}/deployment.yaml": f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {o.app}
  labels: {{app.kubernetes.io/name: {o.app}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app.kubernetes.io/name: {o.app}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: {o.app}}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{{containerPort: 80, name: http}}]
          envFrom: [{{configMapRef: {{name: {o.app}-config}}}}]
          volumeMounts: [{{name: content, mountPath: /usr/share/nginx/html}}]
      volumes:
        - name: content
          configMap: {{name: {o.app}-config, items: [{{key: index.html, path: index.html}}]}}
""",
        f"base/{o.app}/service.yaml": f"""\
apiVersion: v1
kind: Service
metadata:
  name: {o.app}
spec:
  selector: {{app.kubernetes.io/name: {o.app}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
""",
        env_yaml: _modeline(env_yaml, FILES["env.yaml"]) + f"""\
# What differs in {o.env}: README "Input format".
namespace: {o.app}-{o.env}
configMaps:
  {o.app}-config:
    literals: {{LOG_LEVEL: debug}}
""",
        ".pre-commit-config.yaml": f"""\
# pre-commit (https://pre-commit.com): `pre-commit install`, then every commit checks that out/
# is current. `rev` is a release tag of gitops-gen (README "Use it in your repo").
repos:
  - repo: {o.source}
    rev: v{__version__}
    hooks:
      - id: gitops-gen-check
""",
    }
    out.update({f"{SCHEMA_DIR}/{name}": schema_text(name) for name in FILES.values()})
    template, target = CI_FILES[o.ci]
    ci = resources.files("generator.adopt").joinpath("templates", template).read_text(encoding="utf-8")
    out[target] = _install_line(ci, f"git+{o.source}@v{__version__}")
    out[f"deploy/{o.deploy}-{o.env}.yaml"] = _deployer(o)
    return out


def _install_line(text: str, requirement: str) -> str:
    lines = text.splitlines(keepends=True)
    changed = [i for i, line in enumerate(lines) if line.lstrip().startswith("GITOPS_GEN: ")]
    if len(changed) != 1:
        raise AdoptError("the CI template has no single `GITOPS_GEN:` line")  # pragma: no cover - a packaging bug
    i = changed[0]
    lines[i] = lines[i][: lines[i].index("GITOPS_GEN: ")] + f'GITOPS_GEN: "{requirement}"\n'
    return "".join(lines)


def _deployer(o: Options) -> str:
    name, path, ns = f"{o.app}-{o.env}", f"out/{o.env}", f"{o.app}-{o.env}"
    if o.deploy == "argocd":
        return f"""\
# Argo CD: deploys the committed {path} as it is (apply this once: kubectl apply -f this file).
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: {o.repo_url}
    targetRevision: main
    path: {path}
  destination:
    server: https://kubernetes.default.svc
    namespace: {ns}
  syncPolicy:
    automated: {{prune: true, selfHeal: true}}
    syncOptions: [CreateNamespace=true]
"""
    return f"""\
# Flux: builds the committed {path} (its kustomization.yaml lists every file) and applies it.
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: {o.app}-deploy
  namespace: flux-system
spec:
  interval: 1m
  url: {o.repo_url}
  ref: {{branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
  interval: 5m
  sourceRef: {{kind: GitRepository, name: {o.app}-deploy}}
  path: ./{path}
  prune: true
  wait: true
  targetNamespace: {ns}
"""


def write(target: Path, o: Options) -> list[str]:
    """Write the new repo's files into `target` (created if missing); returns their paths."""
    taken = [name for name in OWNED if (target / name).exists()]
    if taken:
        raise AdoptError(f"{target} already has {', '.join(taken)}", file=str(target),
                         hint="init makes a new repo: choose an empty folder")
    written = files(o)
    for rel, text in written.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(written)
