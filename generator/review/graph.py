"""`graph`: which workloads consume which ConfigMaps and Secrets, and through what (env keys,
envFrom, mounts), drawn as Mermaid (renders in GitHub markdown) or Graphviz DOT.

Built from the rendered objects, after references were rewritten to hashed names: nodes are
labelled with the declared name (`Resource.declared_name`), so the graph reads like the sources.
Workloads without any reference are left out; ConfigMaps nobody uses are drawn without edges.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from generator.config import PodSpecPath
from generator.model import Resource
from generator.pipeline import Repo, render_env
from generator.steps.references import BUILTIN_POD_SPECS, CONTAINER_LISTS, FieldPath, Ref, find_refs, pod_spec_path
from generator.secrets.producers import SECRET_NAME_ANNOTATION, produced_secret

FORMATS = ("mermaid", "dot")
_SITE_ORDER = {"env": 0, "envFrom": 1, "volume": 2, "projected volume": 2, "imagePullSecrets": 3}


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    name: str  # declared name
    external: bool = False  # referenced, but not rendered here (managed outside the repo)
    via: str | None = None  # the kind that makes the cluster create it (ExternalSecret, SealedSecret)

    @property
    def label(self) -> str:
        suffix = " (external)" if self.external else f" (from {self.via})" if self.via else ""
        return f"{self.kind} {self.name}{suffix}"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


@dataclass(frozen=True)
class EnvGraph:
    env: str
    workloads: tuple[Node, ...]
    configs: tuple[Node, ...]
    edges: tuple[Edge, ...]


def _get(obj: Any, path: FieldPath) -> Any:
    for step in path:
        if isinstance(obj, dict) and isinstance(step, str):
            obj = obj.get(step)
        elif isinstance(obj, list) and isinstance(step, int) and 0 <= step < len(obj):
            obj = obj[step]
        else:
            return None
    return obj


def _mounts(pod: dict[str, Any], volume: str) -> list[str]:
    paths: list[str] = []
    for list_name in CONTAINER_LISTS:
        for c in pod.get(list_name) or []:
            for m in (c.get("volumeMounts") or []) if isinstance(c, dict) else []:
                if isinstance(m, dict) and m.get("name") == volume and m.get("mountPath") not in paths:
                    paths.append(str(m.get("mountPath")))
    return paths


def _site_label(ref: Ref, obj: dict[str, Any], spec_path: FieldPath) -> tuple[int, str]:
    keys = [k for k, _ in ref.keys]
    if ref.site == "env":
        return 0, "env: " + ", ".join(keys)
    if ref.site in ("volume", "projected volume"):
        pod = _get(obj, spec_path)
        volume = _get(obj, ref.path[: len(spec_path) + 2])
        name = str(volume.get("name", "")) if isinstance(volume, dict) else ""
        mounts = _mounts(pod, name) if isinstance(pod, dict) else []
        text = ("mount " + ", ".join(mounts)) if mounts else f"volume {name} (not mounted)"
        if keys:
            text += f" (keys: {', '.join(keys)})"
        return 2, text
    return _SITE_ORDER.get(ref.site, 4), ref.site


def _edge_label(parts: Iterable[tuple[int, str]]) -> str:
    """One label per workload and target: env keys merged, then envFrom, mounts, pull secrets."""
    env_keys: list[str] = []
    others: list[tuple[int, str]] = []
    for order, text in sorted(set(parts)):
        if text.startswith("env: "):
            env_keys += [k for k in text[len("env: "):].split(", ") if k and k not in env_keys]
        elif (order, text) not in others:
            others.append((order, text))
    labels = (["env: " + ", ".join(sorted(env_keys))] if env_keys else []) + [t for _, t in others]
    return "; ".join(labels)


def env_graph(env: str, resources: Sequence[Resource], specs: Sequence[PodSpecPath]) -> EnvGraph:
    """The graph of one rendered environment (`render_env(...).resources`)."""
    configs: dict[tuple[str, str | None, str], Node] = {}
    for r in sorted(resources, key=lambda r: (r.kind, r.declared_name, r.namespace or "")):
        produced = produced_secret(r) if r.kind != "ConfigMap" else None
        if r.kind == "ConfigMap":
            configs[(r.kind, r.namespace, r.name)] = Node(f"c{len(configs) + 1}", r.kind, r.declared_name)
        elif produced is not None:
            declared = str((r.metadata.get("annotations") or {}).get(SECRET_NAME_ANNOTATION) or produced)
            via = None if r.kind == "Secret" else r.kind
            configs[("Secret", r.namespace, produced)] = Node(f"c{len(configs) + 1}", "Secret", declared, via=via)
    workloads: list[Node] = []
    parts: dict[tuple[str, str], list[tuple[int, str]]] = {}
    external: dict[tuple[str, str | None, str], Node] = {}
    for r in sorted(resources, key=lambda r: (r.app, r.kind, r.name)):
        path = pod_spec_path(r.obj, specs)
        refs = find_refs(r.obj, path) if path is not None else []
        if not refs or path is None:
            continue
        node = Node(f"w{len(workloads) + 1}", r.kind, r.name)
        workloads.append(node)
        for ref in refs:
            key = (ref.target_kind, r.namespace, ref.name)
            target = configs.get(key) or external.get(key)
            if target is None:
                target = external[key] = Node(f"x{len(external) + 1}", ref.target_kind, ref.name, external=True)
            parts.setdefault((node.id, target.id), []).append(_site_label(ref, r.obj, path))
    targets = sorted([*configs.values(), *external.values()], key=lambda n: (n.kind, n.name, n.external))
    order = {n.id: i for i, n in enumerate([*workloads, *targets])}
    edges = tuple(Edge(s, t, _edge_label(p)) for (s, t), p in sorted(parts.items(), key=lambda e: (order[e[0][0]], order[e[0][1]])))
    return EnvGraph(env, tuple(workloads), tuple(targets), edges)


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _prefixes(graphs: Sequence[EnvGraph]) -> list[str]:
    """Node id prefixes, one per env when there are several (ids must be unique in one drawing)."""
    if len(graphs) <= 1:
        return [""] * len(graphs)
    out: list[str] = []
    for i, g in enumerate(graphs):
        p = _ID_UNSAFE.sub("_", g.env) + "_"
        out.append(p if p not in out else f"{p}{i}_")
    return out


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def mermaid(graphs: Sequence[EnvGraph]) -> str:
    many = len(graphs) > 1
    out = ["flowchart LR"]
    for g, p in zip(graphs, _prefixes(graphs)):
        pad = "    " if many else "  "
        if many:
            out.append(f'  subgraph {p}env["{_mermaid_text(g.env)}"]')
        for n in g.workloads:
            out.append(f'{pad}{p}{n.id}["{_mermaid_text(n.label)}"]:::workload')
        for n in g.configs:
            shape = ('[("', '")]') if n.kind == "ConfigMap" else ('{{"', '"}}')
            css = "external" if n.external else n.kind.lower()
            out.append(f"{pad}{p}{n.id}{shape[0]}{_mermaid_text(n.label)}{shape[1]}:::{css}")
        for e in g.edges:
            out.append(f'{pad}{p}{e.source} -->|"{_mermaid_text(e.label)}"| {p}{e.target}')
        if many:
            out.append("  end")
    out += [
        "  classDef workload fill:#e8f0fe,stroke:#4a6fa5",
        "  classDef configmap fill:#eaf5ea,stroke:#4a8a4a",
        "  classDef secret fill:#fdf0e6,stroke:#b0703a",
        "  classDef external fill:#f4f4f4,stroke:#999,stroke-dasharray:4 3",
    ]
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(graphs: Sequence[EnvGraph]) -> str:
    many = len(graphs) > 1
    out = ['digraph "gitops-gen" {', "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];',
           '  edge [fontname="Helvetica", fontsize=9];']
    for g, p in zip(graphs, _prefixes(graphs)):
        pad = "    " if many else "  "
        if many:
            out += [f"  subgraph {_dot_text('cluster_' + g.env)} {{", f"    label={_dot_text(g.env)};"]
        for n in g.workloads:
            out.append(f"{pad}{_dot_text(p + n.id)} [label={_dot_text(n.label)}, shape=box];")
        for n in g.configs:
            shape = "note" if n.kind == "ConfigMap" else "hexagon"
            style = ", style=dashed" if n.external else ""
            out.append(f"{pad}{_dot_text(p + n.id)} [label={_dot_text(n.label)}, shape={shape}{style}];")
        for e in g.edges:
            out.append(f"{pad}{_dot_text(p + e.source)} -> {_dot_text(p + e.target)} [label={_dot_text(e.label)}];")
        if many:
            out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def graph_repo(repo: Repo, envs: Sequence[str]) -> list[EnvGraph]:
    specs = BUILTIN_POD_SPECS + repo.config.pod_spec_paths
    return [env_graph(env, render_env(repo, env).resources, specs) for env in envs]
