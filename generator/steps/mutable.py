"""Step: how each workload sees a change to a ConfigMap, and a warning (or an error, with
`mutableConfigMaps: error`) when a `hash: false` ConfigMap is read in a way that never updates.

A hashed ConfigMap gets a new name when its content changes, so every reader rolls. A mutable
one (`hash: false`) keeps its name and is edited in place; what a pod then sees depends on how it
reads it (Kubernetes docs, "ConfigMaps": "Mounted ConfigMaps are updated automatically";
"ConfigMaps consumed as environment variables are not updated automatically and require a pod
restart"; "A container using a ConfigMap as a subPath volume mount will not receive ConfigMap
updates"):

- LIVE: a volume (or projected volume) mounted without `subPath`: the kubelet rewrites the files
  within its sync period (about a minute);
- RESTART: `env[].valueFrom.configMapKeyRef` and `envFrom`: read when the container starts, so a
  change arrives at the next restart (nothing restarts it);
- NEVER: a `subPath` mount: the file is bound once and never updated for the pod's life.

`diff` uses `modes` to say this per consumer; the render warns on RESTART and NEVER readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from generator.config import Patch, PodSpecPath
from generator.errors import ValidationError
from generator.model import Resource
from generator.steps.configmaps import CONFIG_NAME_ANNOTATION
from generator.steps.k8s_schema import origin_of
from generator.steps.references import CONTAINER_LISTS, FieldPath, dotted, find_refs, pod_spec_path

LIVE, RESTART, NEVER = "live", "restart", "never"
ORDER = (LIVE, RESTART, NEVER)
WORDS = {
    LIVE: "live (mounted volume)",
    RESTART: "at the next restart (env/envFrom)",
    NEVER: "never (subPath mount)",
}


@dataclass(frozen=True)
class Read:
    """One place where a workload reads a ConfigMap: the final name, how, and where."""

    name: str
    mode: str
    path: FieldPath


def _mounts(pod: dict[str, Any], volume: str, spec_path: FieldPath) -> Iterator[tuple[bool, FieldPath]]:
    """(uses subPath, path of the mount) for every mount of `volume` in the pod's containers."""
    for list_name in CONTAINER_LISTS:
        containers = pod.get(list_name)
        for i, c in enumerate(containers if isinstance(containers, list) else []):
            mounts = c.get("volumeMounts") if isinstance(c, dict) else None
            for j, m in enumerate(mounts if isinstance(mounts, list) else []):
                if isinstance(m, dict) and m.get("name") == volume:
                    sub = bool(m.get("subPath") or m.get("subPathExpr"))
                    yield sub, spec_path + (list_name, i, "volumeMounts", j) + (("subPath",) if sub else ())


def reads(obj: dict[str, Any], specs: Sequence[PodSpecPath]) -> list[Read]:
    """Every ConfigMap read of one workload (none for other objects)."""
    spec_path = pod_spec_path(obj, specs)
    pod: Any = obj
    for step in spec_path or ():
        pod = pod.get(step) if isinstance(pod, dict) else None
    if spec_path is None or not isinstance(pod, dict):
        return []
    out: list[Read] = []
    for ref in find_refs(obj, spec_path):
        if ref.target_kind != "ConfigMap":
            continue
        if ref.site in ("env", "envFrom"):
            out.append(Read(ref.name, RESTART, ref.path[:-1]))
            continue
        volumes = pod.get("volumes")
        index = ref.path[len(spec_path) + 1]
        volume = volumes[index] if isinstance(volumes, list) and isinstance(index, int) else None
        if isinstance(volume, dict):
            for sub, path in _mounts(pod, str(volume.get("name")), spec_path):
                out.append(Read(ref.name, NEVER if sub else LIVE, path))
    return out


def modes(obj: dict[str, Any], specs: Sequence[PodSpecPath]) -> dict[str, tuple[str, ...]]:
    """ConfigMap final name -> how this workload sees its changes (in ORDER)."""
    found: dict[str, set[str]] = {}
    for r in reads(obj, specs):
        found.setdefault(r.name, set()).add(r.mode)
    return {name: tuple(m for m in ORDER if m in got) for name, got in found.items()}


def mutable_configmaps(resources: Iterable[Resource]) -> Iterator[Resource]:
    """The ConfigMaps not named by their content (`hash: false`)."""
    return (r for r in resources
            if r.kind == "ConfigMap" and CONFIG_NAME_ANNOTATION not in (r.metadata.get("annotations") or {}))


def mutable_step(resources: list[Resource], specs: Sequence[PodSpecPath], mode: str,
                 patches: Sequence[Patch] = (), others: Iterable[tuple[str | None, str]] = ()) -> list[ValidationError]:
    """Warnings (mode "warn") for workloads that read a `hash: false` ConfigMap of the repo
    through env, envFrom or subPath; with mode "error", the first one is raised instead.
    `others`: (namespace, name) of such ConfigMaps of apps not rendered this time."""
    mutable = {(r.namespace, r.name) for r in mutable_configmaps(resources)} | set(others)
    if not mutable:
        return []
    warnings: list[ValidationError] = []
    for r in resources:
        stale: dict[str, list[Read]] = {}
        for read in reads(r.obj, specs):
            if read.mode != LIVE and (r.namespace, read.name) in mutable:
                stale.setdefault(read.name, []).append(read)
        for name, found in stale.items():
            first = found[0]
            how = ", ".join(f"{'env/envFrom' if x.mode == RESTART else 'subPath'} at {dotted(x.path)}" for x in found)
            never = any(x.mode == NEVER for x in found)
            file, line = origin_of(r, first.path, patches)
            problem = ValidationError(
                f"{r.describe()} reads ConfigMap {name!r}, which is not hashed (hash: false), through {how}: "
                + ("a subPath mount never sees a change" if never else "the pods see a change only when they restart")
                + ", and nothing rolls them when it changes",
                file=file, line=line,
                hint="hash the ConfigMap (drop `hash: false`) so a change rolls the pods, or mount it as a volume "
                "without subPath; " + ("`mutableConfigMaps: warn` in gitops-gen.yaml or env.yaml allows it with a warning"
                                       if mode == "error" else
                                       "`mutableConfigMaps: error` in gitops-gen.yaml or env.yaml makes this an error"),
            )
            if mode == "error":
                raise problem
            warnings.append(problem)
    return warnings
