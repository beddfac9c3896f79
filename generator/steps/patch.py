"""Step: apply an environment's patches to the objects they target (merge laws in merge.py,
merge keys per kind from the Kubernetes schemas in merge_keys.py, built once per kind)."""

from __future__ import annotations

from collections.abc import Iterable

from generator.config import Patch
from generator.errors import MergeError
from generator.steps.k8s_schema import schemas
from generator.steps.merge import DELETE, DIRECTIVE, PatchDirectiveError, merge
from generator.model import Resource


def _target_of(patch: Patch) -> tuple[str, str, str | None, str | None]:
    obj = patch.obj
    meta = obj.get("metadata")
    if not isinstance(obj.get("kind"), str) or not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise MergeError(
            "a patch needs `kind` and `metadata.name` to say which object it changes",
            file=patch.origin.file,
            line=patch.origin.line,
            hint="e.g. {kind: Deployment, metadata: {name: exchange-engine}, spec: {replicas: 3}}",
        )
    api = obj.get("apiVersion")
    ns = meta.get("namespace")
    return obj["kind"], meta["name"], str(ns) if ns is not None else None, str(api) if api is not None else None


def targets_any(patch: Patch, resources: Iterable[Resource]) -> bool:
    """Whether `patch` would match one of `resources`."""
    kind, name, ns, api = _target_of(patch)
    return any(r.kind == kind and r.name == name and (ns is None or r.namespace == ns)
               and (api is None or r.obj.get("apiVersion") == api) for r in resources)


def apply_patches(
    resources: list[Resource], patches: Iterable[Patch], configmap_names: Iterable[str], env: str,
    record: list[str] | None = None,
) -> list[Resource]:
    """Return the resources with every patch applied; a patch that targets nothing is an error.
    `record` gets, for each patch, the app of the object it changed."""
    current = list(resources)
    cm_names = set(configmap_names)
    by_name: dict[tuple[str, str], list[Resource]] = {}
    for r in current:
        by_name.setdefault((r.kind, r.name), []).append(r)
    deleted: set[int] = set()
    api_schemas = schemas()
    for patch in patches:
        kind, name, ns, api = _target_of(patch)
        matches = [
            r for r in by_name.get((kind, name), ())
            if id(r) not in deleted
            and (ns is None or r.namespace == ns)
            and (api is None or r.obj.get("apiVersion") == api)
        ]
        if not matches:
            raise _no_target(patch, kind, name, [r for r in current if id(r) not in deleted], cm_names, env)
        if len(matches) > 1:
            places = "; ".join(f"{r.origin} (namespace {r.namespace})" for r in matches)
            raise MergeError(
                f"patch for {kind} {name!r} matches {len(matches)} objects: {places}",
                file=patch.origin.file, line=patch.origin.line,
                hint="add metadata.namespace (or apiVersion) to the patch to pick one",
            )
        target = matches[0]
        if record is not None:
            record.append(target.app)
        if patch.obj.get(DIRECTIVE) == DELETE:
            deleted.add(id(target))
            continue
        strategy = api_schemas.strategy(str(target.obj.get("apiVersion", "")), kind)
        try:
            target.obj = merge(target.obj, patch.obj, strategy)
        except PatchDirectiveError as exc:
            raise MergeError(
                f"patch of {target.describe()}: {exc}", file=patch.origin.file,
                line=patch.origin.at(*exc.path).line, hint=exc.hint,
            ) from None
    return [r for r in current if id(r) not in deleted]


def _no_target(patch: Patch, kind: str, name: str, current: list[Resource], cm_names: set[str], env: str) -> MergeError:
    if kind == "ConfigMap" and name in cm_names:
        hint = f"ConfigMaps change through the `configMaps: {{{name}: ...}}` overlay of env.yaml, not patches"
    else:
        same_kind = sorted({r.name for r in current if r.kind == kind})
        hint = (f"{kind} objects in this environment: {', '.join(same_kind)}" if same_kind
                else f"there is no {kind} in this environment")
    return MergeError(
        f"patch targets {kind} {name!r}, which does not exist in environment {env!r}",
        file=patch.origin.file, line=patch.origin.line, hint=hint,
    )
