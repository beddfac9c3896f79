"""How a workload sees a ConfigMap change (generator/steps/mutable.py), per way of reading it."""

from __future__ import annotations

from typing import Any

import pytest

from generator.steps.mutable import LIVE, NEVER, RESTART, modes
from generator.steps.references import BUILTIN_POD_SPECS


def pod(containers: list[dict[str, Any]], volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": containers, "volumes": volumes or []}}


CM = {"name": "v", "configMap": {"name": "cfg"}}
PROJECTED = {"name": "v", "projected": {"sources": [{"configMap": {"name": "cfg"}}]}}


@pytest.mark.parametrize(("obj", "expected"), [
    (pod([{"name": "c", "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}}]}]), (RESTART,)),
    (pod([{"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}]), (RESTART,)),
    (pod([{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/d"}]}], [CM]), (LIVE,)),
    (pod([{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/d/f", "subPath": "f"}]}], [CM]), (NEVER,)),
    (pod([{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/d/f", "subPathExpr": "$(X)"}]}], [CM]), (NEVER,)),
    (pod([{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/d"}]}], [PROJECTED]), (LIVE,)),
    # Several readers in one pod: every way is listed, in the order live, restart, never.
    (pod([{"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}],
           "volumeMounts": [{"name": "v", "mountPath": "/x", "subPath": "f"}, {"name": "v", "mountPath": "/d"}]}], [CM]),
     (LIVE, RESTART, NEVER)),
    # A volume no container mounts is not read.
    (pod([{"name": "c"}], [CM]), None),
])
def test_modes(obj: dict[str, Any], expected: tuple[str, ...] | None) -> None:
    assert modes(obj, BUILTIN_POD_SPECS).get("cfg") == expected
