"""A Kustomize `configMapGenerator` entry as one of our ConfigMap declarations.

Kustomize's rules, from sigs.k8s.io/kustomize/api/kv (kv.go), checked against `kubectl
kustomize` in tests/test_adopt_kustomize.py:
- a literal `k=v` splits at the first `=`; a value wrapped in matching single or double quotes
  loses them (`removeQuotes`);
- a file entry is `[key=]path`, the key defaulting to the file's base name;
- an env file: leading whitespace dropped, blank lines and lines starting with `#` skipped,
  `KEY=VALUE` split at the first `=` with the value kept as written (trailing spaces too); a
  line without `=` takes the value of that variable in the environment of the build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.adopt.layers import Layer

HASHED_OPTION = "disableNameSuffixHash"


@dataclass
class Decl:
    """A ConfigMap declaration being built for app.yaml (or an overlay for env.yaml)."""

    name: str
    literals: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # `key=data/...`, relative to the app or env folder
    envs: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    hashed: bool = True
    remove: list[str] = field(default_factory=list)  # overlays only

    def as_yaml(self, overlay: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {} if overlay else {"name": self.name}
        for key, value in (("literals", self.literals), ("files", self.files), ("envs", self.envs),
                           ("remove", self.remove)):
            if value:
                out[key] = value
        if not overlay:
            for key, value in (("labels", self.labels), ("annotations", self.annotations)):
                if value:
                    out[key] = value
        if not self.hashed:
            out["hash"] = False
        return out


def remove_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def literal_value(value: str) -> str:
    """A literal value as our app.yaml must spell it: our literals are Jinja2 templates when they
    contain `{{` or `{%`, Kustomize's never are."""
    if "{{" in value or "{%" in value or "{#" in value:
        return "{% raw %}" + value + "{% endraw %}"
    return value


def kustomize_env_pairs(text: str) -> list[tuple[str, str | None]]:
    """KEY=VALUE pairs as Kustomize reads an env file (None: a bare KEY, read from os.environ)."""
    out: list[tuple[str, str | None]] = []
    for raw in text.removeprefix("\ufeff").splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        out.append((key, value if eq else None))
    return out


def our_env_pairs(text: str) -> list[tuple[str, str]]:
    """KEY=VALUE pairs as our render reads an env file (generator/steps/configmaps.py)."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key, _, value = stripped.partition("=")
            out.append((key.strip(), value))
    return out


@dataclass
class Copier:
    """Collects data files for one folder of ours (an app's or an environment's) under `data/`."""

    files: dict[str, bytes] = field(default_factory=dict)

    def add(self, source: Path) -> str:
        blob = source.read_bytes()
        name = source.name[: -len(".j2")] + ".txt" if source.name.endswith(".j2") else source.name
        rel, n = f"data/{name}", 1
        while rel in self.files and self.files[rel] != blob:
            n += 1
            rel = f"data/{n}/{name}"
        self.files[rel] = blob
        return rel


def convert(layer: Layer, index: int, gen: dict[str, Any], options: dict[str, Any], copier: Copier,
            todo: list[tuple[str, str]], section: str = "configMapGenerator") -> Decl:
    """One generator entry (with the kustomization's generatorOptions) as a declaration."""
    where = (section, index)
    decl = Decl(str(gen.get("name", "")))
    for i, item in enumerate(gen.get("literals") or []):
        key, _, value = str(item).partition("=")
        decl.literals[key.strip()] = literal_value(remove_quotes(value))
    for i, item in enumerate(gen.get("files") or []):
        text = str(item)
        key, eq, path = text.partition("=")
        if not eq:
            key, path = Path(text).name, text
        rel = copier.add(layer.dir / path)
        decl.files.append(rel if Path(rel).name == key else f"{key}={rel}")
    envs = list(gen.get("envs") or []) + ([gen["env"]] if gen.get("env") else [])
    for i, item in enumerate(envs):
        _env(layer, where, Path(layer.dir / str(item)), decl, copier, todo)
    merged = {**options, **(gen.get("options") or {})}
    decl.labels = {str(k): str(v) for k, v in (merged.get("labels") or {}).items()}
    decl.annotations = {str(k): str(v) for k, v in (merged.get("annotations") or {}).items()}
    decl.hashed = not merged.get(HASHED_OPTION, False)
    if gen.get("namespace"):
        todo.append((layer.where(*where, "namespace"), f"generator {decl.name!r} sets its own namespace "
                     f"{gen['namespace']!r}: ours are in the environment's namespace"))
    return decl


def _env(layer: Layer, where: tuple[str | int, ...], path: Path, decl: Decl, copier: Copier,
         todo: list[tuple[str, str]]) -> None:
    text = path.read_text(encoding="utf-8")
    theirs = kustomize_env_pairs(text)
    if [(k, v) for k, v in theirs] == our_env_pairs(text):
        decl.envs.append(copier.add(path))
        return
    # Read differently by the two tools (trailing spaces, bare KEY lines): keep Kustomize's reading
    # as literals, so the content stays exactly what Kustomize made.
    for key, value in theirs:
        if value is None:
            value = os.environ.get(key, "")
            todo.append((layer.where(*where), f"env file {path.name}: `{key}` takes its value from the "
                         "environment of the build; imported as the value it has now"))
        decl.literals[key] = literal_value(value)
