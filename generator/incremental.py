"""Incremental renders: after a change to a few apps, render only those apps and keep the rest
of out/<env>/ as the last render left it.

The render index (generator/io/index.py) records which inputs belong to one app (its own
folders, looked at while loading that app and no other) and, per app, the facts other apps can
depend on (`Facts`): its ConfigMaps and Secrets as reference targets (final name and keys), the
references it resolved, its CRDs' scopes, the Services and ServiceAccounts the namespace step
moved, the images of its containers, its `hash: false` ConfigMaps, its objects' final names and
its files; and, for the environment, the app each of its patches changed. When only some apps'
own inputs changed (`Previous.changed`), those apps are rendered by the very steps of a full
render (generator/pipeline.py `render_env` with an `Others` context standing in for the apps
not rendered), and the result is spliced into the files of the others (`Spliced`).

It is a full render's output or nothing: whenever a fact other apps can see changed in a way
that is not followed here (a CRD's scope, a moved Service, a patch that would now match a
re-rendered object, a ConfigMap or object name, a warning, an allow-list entry, an error of any
kind), `Diverged` is raised and the caller renders everything. A changed reference target
(a ConfigMap's new hashed name) adds the apps that resolved it and renders again.
`tests/test_incremental.py` compares incremental and full renders after random edits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: io/write.py imports this module
    from generator.steps.references import Target

TargetKey = tuple[str, "str | None", str]  # kind, namespace, declared name
MAX_ROUNDS = 4  # apps added because they resolve a changed target, at most this many times


class Diverged(Exception):
    """The changed apps cannot be rendered alone: render the whole environment."""


@dataclass
class Facts:
    """What one app's objects are, as far as the rest of the environment is concerned (JSON data)."""

    files: list[list[str]] = field(default_factory=list)  # [path, app, kind, declared name, namespace or ""]
    retained: list[list[Any]] = field(default_factory=list)  # [path, lineage kind, ns or "", name, index]
    crds: list[list[Any]] = field(default_factory=list)  # [group, kind, cluster-scoped]
    moved: list[list[Any]] = field(default_factory=list)  # [kind, name, namespace before]
    configmaps: list[list[Any]] = field(default_factory=list)  # [namespace or None, name] as declared
    images: dict[str, list[str]] = field(default_factory=dict)  # image name -> its containers' images
    targets: list[list[Any]] = field(default_factory=list)  # [kind, ns, declared, final, keys or None]
    imports: list[list[Any]] = field(default_factory=list)  # [kind, ns, name] each reference looked up
    mutable: list[list[Any]] = field(default_factory=list)  # [ns, name] of `hash: false` ConfigMaps
    names: list[list[Any]] = field(default_factory=list)  # [kind, ns, name] final, retained versions too

    def data(self) -> dict[str, Any]:
        """As JSON data; empty fields left out (most apps have no CRD, no moved object, ...)."""
        return {k: v for k in _FIELDS if (v := getattr(self, k))}

    @classmethod
    def of(cls, value: Any) -> Facts:
        if not isinstance(value, dict) or not set(value) <= set(_FIELDS):
            raise ValueError("not app facts")
        facts = cls(**value)
        if not isinstance(facts.images, dict) or not all(isinstance(getattr(facts, k), list) for k in _FIELDS if k != "images"):
            raise ValueError("not app facts")
        return facts

    def normal(self) -> str:
        """A canonical text of the facts that other apps can see (files and imports aside)."""
        return json.dumps([sorted(map(json.dumps, getattr(self, k))) if k != "images" else
                           sorted((n, sorted(v)) for n, v in self.images.items())
                           for k in ("crds", "moved", "configmaps", "mutable")])


_FIELDS = tuple(Facts.__dataclass_fields__)


def _tkey(kind: str, ns: str | None, name: str) -> str:
    return json.dumps([kind, ns, name])


@dataclass
class Others:
    """The apps of an environment that are not rendered this time, as their facts: what the
    steps of the render need to know of them. Empty for a full render."""

    apps: Mapping[str, Facts] = field(default_factory=dict)
    patch_apps: Sequence[str | None] = ()  # for each patch of the environment, the app it changed

    @property
    def crds(self) -> dict[tuple[str, str], bool]:
        return {(str(g), str(k)): bool(c) for f in self.apps.values() for g, k, c in f.crds}

    @property
    def moved(self) -> dict[tuple[str, str], set[str | None]]:
        found: dict[tuple[str, str], set[str | None]] = {}
        for f in self.apps.values():
            for kind, name, ns in f.moved:
                found.setdefault((kind, name), set()).add(ns)
        return found

    @property
    def configmap_names(self) -> set[str]:
        return {name for f in self.apps.values() for _, name in f.configmaps}

    @property
    def images(self) -> dict[str, dict[str, set[str]]]:
        return {app: {n: set(v) for n, v in f.images.items()} for app, f in self.apps.items()}

    @property
    def targets(self) -> dict[tuple[str, str | None, str], Target]:
        from generator.steps.references import Target

        found: dict[tuple[str, str | None, str], Target] = {}
        for f in self.apps.values():
            for kind, ns, declared, final, keys in f.targets:
                found[(kind, ns, declared)] = Target(kind, declared, final, frozenset(keys) if keys is not None else None)
        return found

    @property
    def mutable(self) -> set[tuple[str | None, str]]:
        return {(ns, name) for f in self.apps.values() for ns, name in f.mutable}

    @property
    def names(self) -> set[tuple[str, str | None, str]]:
        return {(k, ns, n) for f in self.apps.values() for k, ns, n in f.names}


@dataclass
class Previous:
    """The last render of an environment, from its index: the facts of every app, which input
    paths belong to which app, the report, and which apps' inputs changed since."""

    apps: dict[str, Facts]
    patch_apps: list[str | None]
    order: list[str]  # the apps in the render's order
    changed: set[str]
    body: dict[str, Any]  # the stored index (inputs, outputs, report)

    def others(self, rendered: set[str]) -> Others:
        return Others({a: f for a, f in self.apps.items() if a not in rendered}, self.patch_apps)

    def importers(self, changed_targets: set[str], rendered: set[str]) -> set[str]:
        """Apps not rendered that looked up one of these targets (JSON keys)."""
        return {a for a, f in self.apps.items() if a not in rendered
                and any(_tkey(*k) in changed_targets for k in f.imports)}


def changed_targets(before: Facts | None, after: Facts) -> set[str]:
    old = {_tkey(k, ns, d): (fin, keys) for k, ns, d, fin, keys in (before.targets if before else [])}
    new = {_tkey(k, ns, d): (fin, keys) for k, ns, d, fin, keys in after.targets}
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


def same_shape(before: Facts | None, after: Facts) -> bool:
    """Whether what other apps see of an app, besides its reference targets, is unchanged."""
    return before is not None and before.normal() == after.normal()


class Spliced(Mapping[str, str]):
    """The files of out/<env>/ after an incremental render: the rendered apps' files (`fresh`,
    a `generator.io.output.Files`) and, for every other app, the files the last render wrote,
    which out/<env>/ holds unchanged (the index checked its identities). Their texts are read
    from `folder` only if asked for; `plan` trusts them without reading (`trusted`) and lists
    only the rendered apps' folders (`only`)."""

    def __init__(self, fresh: Any, order: list[str], trusted: frozenset[str], folder: Path,
                 only: frozenset[str], texts: Mapping[str, str] | None = None) -> None:
        self.fresh = fresh
        self.order = order
        self.trusted = trusted
        self.folder = folder
        self.only = only  # app folders (and the top of out/<env>/) whose files may change
        self.texts = texts  # the other apps' texts, when held in memory (watch)
        self.known = fresh.known

    def __getitem__(self, path: str) -> str:
        if path in self.fresh:
            return str(self.fresh[path])
        if path not in self.trusted:
            raise KeyError(path)
        if self.texts is not None:
            return self.texts[path]
        from generator.io.write import read_regular

        text = read_regular(self.folder / path)
        if text is None:
            raise KeyError(path)
        return text

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)

    def __contains__(self, path: object) -> bool:
        return path in self.fresh or path in self.trusted

    def is_current(self, path: str, file: Path | str) -> bool:
        return path in self.trusted or bool(self.fresh.is_current(path, file))

    def remember(self, path: str, file: Path | str, keep: bool = True, st: Any = None) -> None:
        if path in self.fresh:
            self.fresh.remember(path, file, keep, st)

    def digest(self, path: str, keep: bool = True) -> bytes:
        return bytes(self.fresh.digest(path, keep))


def spliced_order(apps: Mapping[str, Facts]) -> list[str]:
    """The files in a full render's order: objects by (app, kind, declared name, namespace),
    then retained versions by lineage, then the kustomization."""
    main = sorted((tuple(f[1:]), f[0]) for facts in apps.values() for f in facts.files)
    kept = sorted((tuple(r[1:]), r[0]) for facts in apps.values() for r in facts.retained)
    return [p for _, p in main] + [p for _, p in kept]


def load_previous(body: Mapping[str, Any], changed: set[str]) -> Previous | None:
    """The facts stored in an index body, or None when it holds none (or not ours)."""
    try:
        apps = {str(a): Facts.of(v) for a, v in body["apps"].items()}
        patch_apps = [None if a is None else str(a) for a in body["patch_apps"]]
        order = [str(a) for a in body["order"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if set(order) != set(apps) or not changed <= set(apps):
        return None
    return Previous(apps, patch_apps, order, changed, dict(body))
