"""A compact, field-level diff of two parsed Kubernetes objects (or parts of them).

Paths read like kubectl's: `spec.template.spec.containers[engine].image`. Lists of named items
(containers, env, volumes, ports ...) are matched by `name`, so inserting a container does not
show every later one as changed; other lists of equal length are compared item by item, and
any other list change is one change of the whole list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
ADDED, REMOVED, CHANGED = "added", "removed", "changed"


@dataclass(frozen=True)
class FieldChange:
    path: str
    change: str  # "added", "removed" or "changed"
    old: Any = None
    new: Any = None


def join(path: str, key: object) -> str:
    text = str(key)
    step = f".{text}" if _PLAIN_KEY.match(text) else f'["{text}"]'
    if not path:
        return step.lstrip(".")
    return path + step


def _named(items: list[Any]) -> dict[str, Any] | None:
    """The items by name, when every item is a mapping with a distinct string `name`."""
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    by_name = {i["name"]: i for i in items}
    return by_name if len(by_name) == len(items) else None


def field_diff(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Every leaf-most difference between `old` and `new`, in document order."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for key in [*old, *(k for k in new if k not in old)]:
            sub = join(path, key)
            if key not in new:
                out.append(FieldChange(sub, REMOVED, old=old[key]))
            elif key not in old:
                out.append(FieldChange(sub, ADDED, new=new[key]))
            else:
                out += field_diff(old[key], new[key], sub)
        return out
    if isinstance(old, list) and isinstance(new, list):
        old_named, new_named = _named(old), _named(new)
        if old_named is not None and new_named is not None:
            # Same items in another order is still a change (env order matters for `$(VAR)`).
            return _named_diff(old_named, new_named, path) or [
                FieldChange(path, CHANGED, old=list(old_named), new=list(new_named))
            ]
        if len(old) == len(new):
            out = []
            for i, (a, b) in enumerate(zip(old, new)):
                out += field_diff(a, b, f"{path}[{i}]")
            return out
    return [FieldChange(path, CHANGED, old=old, new=new)]


def _named_diff(old: dict[str, Any], new: dict[str, Any], path: str) -> list[FieldChange]:
    out: list[FieldChange] = []
    for name in [*old, *(n for n in new if n not in old)]:
        sub = f"{path}[{name}]"
        if name not in new:
            out.append(FieldChange(sub, REMOVED, old=old[name]))
        elif name not in old:
            out.append(FieldChange(sub, ADDED, new=new[name]))
        else:
            out += field_diff(old[name], new[name], sub)
    return out
