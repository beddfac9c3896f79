"""The merge laws for environment patches. Pure functions over plain YAML values.

1. Maps merge recursively; the patch's keys win.
2. Lists of named items (every item of both lists a mapping with a `name`) merge by name;
   new names are appended in patch order.
3. Every other list, and every scalar, is replaced.
4. `{$patch: delete}` as a value removes the key; `{name: x, $patch: delete}` removes the named
   item; `$patch: replace` in a mapping replaces instead of merging.
"""

from __future__ import annotations

import copy
from typing import Any

DIRECTIVE = "$patch"
DELETE = "delete"
REPLACE = "replace"


class PatchDirectiveError(ValueError):
    """A `$patch` directive with an unknown value; the caller adds file and line."""


def _directive(value: Any) -> str | None:
    if isinstance(value, dict) and DIRECTIVE in value:
        d = value[DIRECTIVE]
        if d not in (DELETE, REPLACE):
            raise PatchDirectiveError(
                f"unknown {DIRECTIVE} value {d!r}: use {DELETE!r} or {REPLACE!r}"
            )
        return str(d)
    return None


def _strip(value: Any) -> Any:
    """A patch value with its directives removed, ready to be placed in the result."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != DIRECTIVE and _directive(v) != DELETE}
    if isinstance(value, list):
        return [_strip(v) for v in value if _directive(v) != DELETE]
    return copy.copy(value)


def _is_named_list(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and "name" in i for i in items)


def merge(base: Any, patch: Any) -> Any:
    """Return `base` with `patch` applied by the merge laws. Neither argument is changed."""
    if isinstance(base, dict) and isinstance(patch, dict):
        if _directive(patch) == REPLACE:
            return _strip(patch)
        result = dict(base)
        for key, value in patch.items():
            if key == DIRECTIVE:
                continue
            if _directive(value) == DELETE:
                result.pop(key, None)
            elif key in result:
                result[key] = merge(result[key], value)
            else:
                result[key] = _strip(value)
        return result
    if isinstance(base, list) and isinstance(patch, list) and base and patch:
        if _is_named_list(base) and _is_named_list(patch):
            return _merge_named(base, patch)
    return _strip(patch)


def _merge_named(base: list[dict[str, Any]], patch: list[dict[str, Any]]) -> list[Any]:
    result: list[Any] = list(base)
    index = {item["name"]: i for i, item in enumerate(base)}
    deleted: set[int] = set()
    for item in patch:
        i = index.get(item["name"])
        if _directive(item) == DELETE:
            if i is not None:
                deleted.add(i)
        elif i is None:
            index[item["name"]] = len(result)
            result.append(_strip(item))
        else:
            result[i] = merge(result[i], item)
    return [item for i, item in enumerate(result) if i not in deleted]
