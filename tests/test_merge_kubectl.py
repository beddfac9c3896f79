"""The merge laws against the real thing: random Deployments and random patches, applied by
`merge` with the Deployment's schema strategy and by `kubectl kustomize` as strategic-merge
patches (`patches:` in a kustomization). The objects must be equal, list order included.

Generated patches stay inside what both sides accept: every item names its merge key, no key
twice in one list, a list made only of a directive (`- $patch: replace`) only where the base
has that list (kustomize copies it literally otherwise), new containers have an image (ours refuses an incomplete new entry), and
ports either all spell out `protocol` or none do (with a mix, kustomize drops the patch's
port; see the README's merge laws).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.steps.k8s_schema import schemas
from generator.steps.merge import merge
from tests.kubectl import find_kubectl, kustomize_build

NAMES = ["api", "side", "web", "apii"]
ENV_NAMES = ["A", "B", "C", "D"]
PATHS = ["/a", "/b", "/c", "/etc/a"]
PORTS = [80, 81, 8080]
PROTOCOLS = ["TCP", "UDP"]
LABELS = ["x", "y", "z"]
scalars = st.sampled_from(["1", "2", "v", "09"])


def _unique(items: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for item in items:
        k = tuple(item.get(key, "TCP" if key == "protocol" else None) for key in keys)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


@st.composite
def env_list(draw: st.DrawFn, patch: bool, replace: bool = False) -> list[dict[str, Any]]:
    items = []
    for name in draw(st.lists(st.sampled_from(ENV_NAMES), max_size=3, unique=True)):
        choice = draw(st.sampled_from(["value", "null", "delete"] if patch else ["value"]))
        if choice == "value":
            items.append({"name": name, "value": draw(scalars)})
        elif choice == "null":
            items.append({"name": name, "value": None})
        else:
            items.append({"name": name, "$patch": "delete"})
    if replace and draw(st.integers(0, 5)) == 0:
        items.insert(0, {"$patch": "replace"})
    return items


@st.composite
def ports(draw: st.DrawFn, with_protocol: bool) -> list[dict[str, Any]]:
    items = []
    for _ in range(draw(st.integers(0, 3))):
        port: dict[str, Any] = {"containerPort": draw(st.sampled_from(PORTS))}
        if with_protocol:
            port["protocol"] = draw(st.sampled_from(PROTOCOLS))
        if draw(st.booleans()):
            port["name"] = draw(st.sampled_from(["http", "dns", "metrics"]))
        items.append(port)
    return _unique(items, "containerPort", "protocol")


@st.composite
def mounts(draw: st.DrawFn) -> list[dict[str, Any]]:
    items = []
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=3, unique=True)):
        mount: dict[str, Any] = {"mountPath": path, "name": draw(st.sampled_from(["conf", "data"]))}
        if draw(st.booleans()):
            mount["readOnly"] = draw(st.booleans())
        items.append(mount)
    return items


@st.composite
def container(draw: st.DrawFn, name: str, patch: bool, with_protocol: bool, base: dict[str, Any] | None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name}
    new = patch and base is None
    if not patch or new or draw(st.booleans()):
        c["image"] = draw(st.sampled_from(["nginx", "busybox:1"]))
    for key, values in (("env", env_list(patch, replace=base is not None and "env" in base)), ("ports", ports(with_protocol)), ("volumeMounts", mounts())):
        if draw(st.booleans()):
            c[key] = draw(values)
    if draw(st.booleans()):
        c["args"] = draw(st.lists(scalars, max_size=3))
    return c


@st.composite
def case(draw: st.DrawFn, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"d{index}"
    with_protocol = draw(st.booleans())
    base_names = draw(st.lists(st.sampled_from(NAMES[:3]), min_size=1, max_size=3, unique=True))
    spec: dict[str, Any] = {
        "containers": [draw(container(n, False, with_protocol, None)) for n in base_names],
    }
    if draw(st.booleans()):
        spec["volumes"] = [{"name": v, "emptyDir": {}} for v in draw(st.lists(st.sampled_from(["conf", "data"]), unique=True))]
    if draw(st.booleans()):
        spec["tolerations"] = [{"key": k, "operator": "Exists"} for k in draw(st.lists(st.sampled_from(LABELS), max_size=2))]
    labels = {k: draw(scalars) for k in draw(st.lists(st.sampled_from(LABELS), max_size=3, unique=True))}
    base = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "finalizers": draw(st.lists(st.sampled_from(LABELS), max_size=2, unique=True))},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }
    patch_names = draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))
    pspec: dict[str, Any] = {}
    if patch_names:
        by_name = {c["name"]: c for c in spec["containers"]}
        pspec["containers"] = [draw(container(n, True, with_protocol, by_name.get(n))) for n in patch_names]
    if draw(st.booleans()):
        pspec["tolerations"] = [{"key": draw(st.sampled_from(LABELS)), "operator": "Exists"}]
    if "volumes" in spec and draw(st.integers(0, 5)) == 0:
        # (kustomize writes `[{$patch: delete}]` literally where the base has no such list)
        pspec["volumes"] = [{"$patch": "delete"}]
    pmeta: dict[str, Any] = {"name": name}
    if draw(st.booleans()):
        pmeta["labels"] = {k: draw(scalars | st.none()) for k in draw(st.lists(st.sampled_from(LABELS), max_size=2, unique=True))}
    if draw(st.booleans()):
        pmeta["finalizers"] = draw(st.lists(st.sampled_from(LABELS + ["w"]), max_size=2, unique=True))
    patch: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": pmeta,
                             "spec": {"template": {"spec": pspec}}}
    if draw(st.booleans()):
        patch["spec"]["replicas"] = draw(st.integers(0, 5))
    return base, patch


BATCH = 10


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.tuples(*(case(i) for i in range(BATCH))))
def test_merge_equals_kubectl_kustomize(tmp_path_factory: Any, cases: tuple[tuple[dict[str, Any], dict[str, Any]], ...]) -> None:
    folder: Path = tmp_path_factory.mktemp("smp")
    strategy = schemas().strategy("apps/v1", "Deployment")
    ours = {}
    for i, (base, patch) in enumerate(cases):
        (folder / f"base{i}.json").write_text(json.dumps(base))
        (folder / f"patch{i}.json").write_text(json.dumps(patch))
        ours[base["metadata"]["name"]] = merge(copy.deepcopy(base), patch, strategy)
    (folder / "kustomization.yaml").write_text(json.dumps({
        "resources": [f"base{i}.json" for i in range(BATCH)],
        "patches": [{"path": f"patch{i}.json"} for i in range(BATCH)],
    }))
    theirs = {obj["metadata"]["name"]: obj for obj in kustomize_build(find_kubectl(), folder)}
    for name, obj in ours.items():
        assert obj == theirs[name], (name, json.dumps(obj), json.dumps(theirs[name]))
