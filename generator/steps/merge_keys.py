"""The strategic-merge facts of every field of a Kubernetes kind, read from the pinned schemas
(`kubernetes-validate`, see k8s_schema.py), as a `merge.Strategy` tree.

A list property merges by keys when its `x-kubernetes-patch-strategy` includes `merge` (the
strategy kubectl, kustomize and the API server's strategic-merge patch follow); its keys are
`x-kubernetes-list-map-keys` when given (ports: `containerPort` + `protocol`), else
`x-kubernetes-patch-merge-key`. A list with `merge` and no key is a set of scalars
(`metadata.finalizers`). `retainKeys` (volumes) only acts on a `$retainKeys` directive, which
patches here may not use. Every other list (`atomic`, or list-map keys without a patch
strategy: the API server's strategic merge replaces those) is replaced.

Each definition is turned into a Strategy once and shared (PodSpec once for every workload
kind); trees are built per kind on first use and kept for the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.steps.merge import Strategy

_REF_PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")
# Fields the API server requires of a new entry although the OpenAPI schema leaves them
# optional: a pod's containers need an `image` (ValidateContainers in
# k8s.io/kubernetes/pkg/apis/core/validation: "image: Required value").
_ALSO_REQUIRED = {
    "io.k8s.api.core.v1.Container": ("image",),
    "io.k8s.api.core.v1.EphemeralContainer": ("image",),
}


def _ref_name(ref: str) -> str:
    for prefix in _REF_PREFIXES:
        ref = ref.removeprefix(prefix)
    return ref


class StrategyBuilder:
    """Builds Strategy trees from schema definitions; each definition at most once."""

    def __init__(self, definitions: Mapping[str, Any], built: dict[str, Strategy]) -> None:
        # `built` outlives the builder (kept per process); the definitions do not (3 MB).
        self.definitions = definitions
        self.built = built

    def definition(self, name: str) -> Strategy:
        found = self.built.get(name)
        if found is not None:
            return found
        schema = self.definitions[name]
        required = tuple(schema.get("required", ())) + _ALSO_REQUIRED.get(name, ())
        node = Strategy(owner=name.rsplit(".", 1)[-1], required=required)
        self.built[name] = node  # before the fields: definitions may be recursive (JSONSchemaProps)
        for key, sub in schema.get("properties", {}).items():
            node.fields[key] = self.node(sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            node.extra = self.node(extra)
        return node

    def node(self, schema: Mapping[str, Any]) -> Strategy:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self.definition(_ref_name(ref))
        node = Strategy()
        types = schema.get("type", ())
        if "array" in ((types,) if isinstance(types, str) else types):
            node.items = self.node(schema.get("items", {}))
            if "merge" in str(schema.get("x-kubernetes-patch-strategy", "")).split(","):
                keys = schema.get("x-kubernetes-list-map-keys") or (
                    [schema["x-kubernetes-patch-merge-key"]] if "x-kubernetes-patch-merge-key" in schema else []
                )
                node.keys = tuple(keys)
                node.merge_scalars = not keys
            return node
        props = schema.get("properties")
        if isinstance(props, dict):
            node.fields = {k: self.node(v) for k, v in props.items()}
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            node.extra = self.node(extra)
        return node
