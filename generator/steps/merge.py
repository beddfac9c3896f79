"""The merge laws for environment patches: Kubernetes' strategic merge. Pure functions over
plain YAML values.

How a list merges is data, taken from the pinned Kubernetes schemas (`merge_keys.py` turns
them into a `Strategy` tree per kind); `merge` only follows it:

1. Maps merge recursively; the patch's keys win. `key: null` (and `key: {$patch: delete}`)
   removes the key.
2. A list whose schema declares `x-kubernetes-patch-strategy: merge` merges by its keys
   (`x-kubernetes-list-map-keys`, else `x-kubernetes-patch-merge-key`): volumeMounts by
   `mountPath`, ports by `containerPort` + `protocol`, containers/env/volumes by `name`, ...
   An item whose keys match a base item merges onto it (laws 1-3); another is a new entry.
   A list of scalars with that strategy (`finalizers`) is a union.
3. Every other list, and every scalar, is replaced by the patch's value.
4. Directives, as in a strategic-merge patch: `$patch: replace` in a map replaces it instead of
   merging; `$patch: merge` is the default; as list items, `{$patch: replace}` replaces the
   whole list by the other items, `{$patch: delete}` removes the list, and
   `{<keys>, $patch: delete}` removes the matching item.

The result orders a merged list as kubectl's kustomize (kyaml) does, so `$(VAR)` references
between env vars expand the same: the patch's items in patch order, then the base items the
patch did not name, in base order. For lists keyed by two fields (ports, topologySpreadConstraints)
when every item spells out both: new items first, in patch order, then the base items in
base order.

Objects without a schema (custom resources) keep the rules this tool had before it read
schemas: a list whose items (base and patch) all have a `name` merges by name, new names
appended in patch order; every other list is replaced. `Strategy` None means "no schema".

`$setElementOrder/...`, `$deleteFromPrimitiveList/...` and `$retainKeys` are refused with an
error: kustomize passes them through as literal keys and the API server then refuses the
object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DIRECTIVE = "$patch"
DELETE = "delete"
REPLACE = "replace"
MERGE = "merge"
_DIRECTIVES = (DELETE, REPLACE, MERGE)
_UNSUPPORTED = ("$setElementOrder/", "$deleteFromPrimitiveList/", "$retainKeys")
# A secondary list-map key the API server defaults when it is left out (ContainerPort.protocol,
# ServicePort.protocol: "Defaults to TCP"); two ports differing only by an omitted vs. an
# explicit TCP are one port.
KEY_DEFAULTS: Mapping[str, str] = {"protocol": "TCP"}

Path = tuple[str | int, ...]


@dataclass(eq=False, slots=True)
class Strategy:
    """How one value of a kind merges, from its schema. `fields` for a mapping's known keys,
    `extra` for the values of a free-form mapping, `items` for a list's elements."""

    owner: str = ""  # the schema definition, e.g. "Container" (for messages)
    fields: dict[str, Strategy] = field(default_factory=dict)
    extra: Strategy | None = None
    items: Strategy | None = None
    keys: tuple[str, ...] = ()  # merge keys of a list; () with merge_scalars False: replaced
    merge_scalars: bool = False  # a list of scalars merged as a set (finalizers)
    required: tuple[str, ...] = ()  # what a new entry of this type must have

    def child(self, key: str) -> Strategy | None:
        return self.fields.get(key, self.extra)


# Marks "remove this key from the parent" (a list deleted by `- $patch: delete`).
_GONE = object()


class PatchDirectiveError(ValueError):
    """A patch the merge cannot apply; `path` leads from the patch's root to the culprit (the
    caller adds the patch's file and line)."""

    def __init__(self, message: str, path: Path = (), hint: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.hint = hint


def dotted(path: Path) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _directive(value: Any, path: Path) -> str | None:
    if isinstance(value, dict) and DIRECTIVE in value:
        d = value[DIRECTIVE]
        if d not in _DIRECTIVES:
            raise PatchDirectiveError(
                f"unknown {DIRECTIVE} value {d!r}: use {DELETE!r}, {REPLACE!r} or {MERGE!r}", path + (DIRECTIVE,)
            )
        return str(d)
    return None


def _unsupported(key: str, path: Path) -> PatchDirectiveError:
    return PatchDirectiveError(
        f"`{key}` is not supported in patches (kustomize would pass it to the API server, which refuses it)",
        path + (key,),
        hint="write the list as it should end up with a `- $patch: replace` item, "
        "or remove items with `- {<merge key>: ..., $patch: delete}`",
    )


def merge(base: Any, patch: Any, strategy: Strategy | None = None, path: Path = ()) -> Any:
    """Return `base` with `patch` applied by the merge laws. Neither argument is changed."""
    result = _merge(base, patch, strategy, path)
    return None if result is _GONE else result


def _merge(base: Any, patch: Any, strategy: Strategy | None, path: Path) -> Any:
    if isinstance(patch, dict):
        return _merge_map(base if isinstance(base, dict) else {}, patch, strategy, path)
    if isinstance(patch, list):
        return _merge_list(base if isinstance(base, list) else [], patch, strategy, path)
    return patch  # a scalar: immutable


def _merge_map(base: dict[Any, Any], patch: dict[Any, Any], strategy: Strategy | None, path: Path) -> Any:
    directive = None
    for key in patch:
        if key.__class__ is str and key[:1] == "$":  # rare: look closer only then
            if key == DIRECTIVE:
                directive = _directive(patch, path)
            elif key.startswith(_UNSUPPORTED):
                raise _unsupported(key, path)
    if directive == DELETE:
        return _GONE
    if directive == REPLACE:
        base = {}
    result = dict(base)
    for key, value in patch.items():
        if key == DIRECTIVE:
            continue
        if value is None:
            result.pop(key, None)
            continue
        child = strategy.child(key) if strategy is not None and isinstance(key, str) else None
        merged = _merge(result.get(key), value, child, path + (key,))
        if merged is _GONE:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _list_directive(item: Any, path: Path) -> str | None:
    """The directive of an item that is only a directive (`- $patch: replace`), else None."""
    if isinstance(item, dict) and len(item) == 1 and DIRECTIVE in item:
        return _directive(item, path)
    return None


def _merge_list(base: list[Any], patch: list[Any], strategy: Strategy | None, path: Path) -> Any:
    if strategy is not None and not strategy.keys and not strategy.merge_scalars:
        _refuse_directive_items(patch, path)
    items: list[tuple[int, Any]] = []
    for i, item in enumerate(patch):
        d = _list_directive(item, path + (i,))
        if d == DELETE:
            return _GONE
        if d == REPLACE:
            base = []
        elif d is None:
            items.append((i, item))
    if strategy is None:
        return _merge_unknown(base, items, path)
    if strategy.keys:
        return _merge_keyed(base, items, strategy, path)
    if strategy.merge_scalars:
        # A set, as kyaml merges it: the patch's values first, then the base's others, no repeats.
        merged: list[Any] = []
        for v in [*(v for _, v in items), *base]:
            if v not in merged:
                merged.append(v)
        return merged
    return [_merge(None, v, strategy.items, path + (i,)) for i, v in items]


def _refuse_directive_items(patch: list[Any], path: Path) -> None:
    """A list the schema gives no merge key is replaced whole (kubectl would send a `$patch`
    item in it to the API server as data), so no item there can be a directive."""
    for i, item in enumerate(patch):
        if isinstance(item, dict) and DIRECTIVE in item:
            raise PatchDirectiveError(
                f"`{dotted(path)}` has no merge key in the Kubernetes schema: the patch's list replaces it "
                f"whole, so a `{DIRECTIVE}` item cannot pick an entry",
                path + (i, DIRECTIVE),
                hint="write the whole list as it should end up",
            )


def _merge_unknown(base: list[Any], items: list[tuple[int, Any]], path: Path) -> list[Any]:
    """No schema: lists of named items merge by name (new names appended), others are replaced."""
    named = all(isinstance(v, dict) and "name" in v for _, v in items)
    if not (base and items and named and all(isinstance(b, dict) and "name" in b for b in base)):
        return [v for v in (_merge(None, v, None, path + (i,)) for i, v in items) if v is not _GONE]
    result: list[Any] = list(base)
    index = {b["name"]: j for j, b in enumerate(base)}
    for i, item in items:
        j = index.get(item["name"])
        merged = _merge(result[j] if j is not None else None, item, None, path + (i,))
        if j is None:
            if merged is not _GONE:
                index[item["name"]] = len(result)
                result.append(merged)
        else:
            result[j] = merged
    return [v for v in result if v is not _GONE]


def key_of(item: Any, keys: tuple[str, ...]) -> tuple[Any, ...] | None:
    if not isinstance(item, dict) or keys[0] not in item:
        return None
    if len(keys) == 1:
        return (item[keys[0]],)
    return tuple([item.get(k, KEY_DEFAULTS.get(k)) for k in keys])


def _merge_keyed(base: list[Any], items: list[tuple[int, Any]], strategy: Strategy, path: Path) -> list[Any]:
    keys = strategy.keys
    index: dict[tuple[Any, ...], int] = {}
    for j, b in enumerate(base):
        k = key_of(b, keys)
        if k is not None:
            index.setdefault(k, j)  # a duplicate in the base is the validate step's to report
    merged: dict[int, Any] = {}  # base index -> merged item (or _GONE)
    slots: list[tuple[int | None, Any]] = []  # per patch item: (base index, None) or (None, new entry)
    seen: dict[tuple[Any, ...], int] = {}
    for i, item in items:
        at = path + (i,)
        k = key_of(item, keys)
        if k is None:
            raise PatchDirectiveError(
                f"item {i} of `{dotted(path)}` has no `{keys[0]}`: Kubernetes merges this list by "
                f"{' + '.join(f'`{x}`' for x in keys)}, so every patch item needs it",
                at, hint=f"add `{keys[0]}:` naming the entry to change (or a new one)",
            )
        if k in seen:
            raise PatchDirectiveError(
                f"`{dotted(path)}` names the entry {_shown(keys, k)} twice (items {seen[k]} and {i})", at
            )
        seen[k] = i
        found = index.get(k)
        if found is not None:
            merged[found] = _merge(base[found], item, strategy.items, at)
            slots.append((found, None))
            continue
        value = _merge(None, item, strategy.items, at)
        if value is not _GONE:
            _check_complete(value, item, strategy, base, path, at)
            slots.append((None, value))
    kept = [merged.get(j, b) for j, b in enumerate(base)]
    if len(keys) > 1 and _all_keys_given(base, items, keys):
        # kyaml keeps the base order here and puts new entries first.
        ordered = [v for j, v in slots if j is None]
    else:
        # The patch's entries in patch order, then the base entries it did not name.
        ordered = [v if j is None else kept[j] for j, v in slots]
        kept = [b for j, b in enumerate(base) if j not in merged]
    return [v for v in ordered + kept if v is not _GONE]


def _all_keys_given(base: list[Any], items: list[tuple[int, Any]], keys: tuple[str, ...]) -> bool:
    values = [*base, *(v for _, v in items)]
    return all(isinstance(v, dict) and all(k in v for k in keys) for v in values)


def _shown(keys: tuple[str, ...], values: tuple[Any, ...]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in zip(keys, values))


def _check_complete(value: Any, item: Any, strategy: Strategy, base: list[Any], path: Path, at: Path) -> None:
    """A patch item that matches no base entry creates one: it must be a whole entry, or it is
    most likely a typo in its key (`- name: apii` next to a container `api`)."""
    items = strategy.items
    if items is None or not isinstance(value, dict):
        return
    missing = [f for f in items.required if f not in value]
    if not missing:
        return
    keys = strategy.keys
    existing = [str(b[keys[0]]) for b in base if isinstance(b, dict) and keys[0] in b]
    wrote = str(item.get(keys[0]))
    hint = ""
    if existing:
        from generator.hints import close_matches

        guess = close_matches(wrote, existing, n=1)
        hint = (f"did you mean {guess[0]!r}? " if guess else "") + f"entries by `{keys[0]}`: {', '.join(existing)}"
    raise PatchDirectiveError(
        f"`{dotted(path)}`: the patch item {_shown(keys, key_of(item, keys) or ())} matches no entry, so it "
        f"would add a new {items.owner or 'entry'} without {', '.join(f'`{m}`' for m in missing)}",
        at,
        hint=hint or f"a new {items.owner or 'entry'} needs {', '.join(f'`{m}`' for m in items.required)}",
    )
