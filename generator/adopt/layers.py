"""Reading a Kustomize tree: every kustomization, what it points at, and which are the roots.

A *leaf* kustomization lists only files under `resources` (plus generators): it becomes one app
of ours (base/<app>/). A kustomization that lists other kustomizations is an overlay layer; one
that no other kustomization lists (a *root*) becomes an environment, and the layers between a
root and its leaves are folded into that environment in Kustomize's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import AdoptError
from generator.io.yaml_io import load_documents, locate, read_text

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass
class Layer:
    """One kustomization file."""

    dir: Path
    file: Path
    shown: str  # relative to the imported tree, for messages and the report
    text: str
    doc: dict[str, Any]
    dirs: list[Path] = field(default_factory=list)  # kustomizations under `resources`
    files: list[tuple[int, Path]] = field(default_factory=list)  # resource files (index in `resources`)
    components: list[Path] = field(default_factory=list)
    remote: list[tuple[str, int, str]] = field(default_factory=list)  # (section, index, URL): not imported

    @property
    def leaf(self) -> bool:
        return not self.dirs and not self.components

    def line(self, *path: str | int) -> int:
        return locate(self.text, 0, path) or 1

    def where(self, *path: str | int) -> str:
        return f"{self.shown}:{self.line(*path)}"


def kustomization_file(folder: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def _shown(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return path.as_posix()


def read_layer(root: Path, folder: Path) -> Layer:
    file = kustomization_file(folder)
    if file is None:
        raise AdoptError(f"{_shown(root, folder)} has no kustomization.yaml", file=_shown(root, folder))
    shown = _shown(root, file)
    text = read_text(file, shown)
    docs = load_documents(text, shown)
    doc = docs[0][0] if docs else {}
    if not isinstance(doc, dict):
        raise AdoptError("expected a mapping at the top of the kustomization", file=shown, line=1)
    layer = Layer(folder.resolve(), file, shown, text, doc)
    for section in ("resources", "bases", "components"):
        for i, entry in enumerate(_entries(layer, section)):
            if "://" in entry or entry.startswith(("github.com/", "git@")):
                layer.remote.append((section, i, entry))
                continue
            target = (folder / entry).resolve()
            if section == "components":
                layer.components.append(target)
            elif target.is_dir():
                layer.dirs.append(target)
            elif target.is_file():
                layer.files.append((i, target))
            else:
                raise AdoptError(f"{section} entry {entry!r} does not exist", file=shown, line=layer.line(section, i),
                                 hint="the Kustomize tree must build before it can be imported")
    return layer


def _entries(layer: Layer, key: str) -> list[str]:
    value = layer.doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AdoptError(f"`{key}` must be a list of paths", file=layer.shown, line=layer.line(key))
    return list(value)


@dataclass
class Tree:
    root: Path
    layers: dict[Path, Layer]  # every kustomization reachable from the tree, by folder
    roots: list[Layer]  # not listed by any other kustomization, sorted by path


def read_tree(root: Path) -> Tree:
    """Every kustomization under `root` (and those they list outside it), and the roots."""
    root = root.resolve()
    found = sorted({f.parent for name in KUSTOMIZATION_FILES for f in root.rglob(name)
                    if not any(part.startswith(".") for part in f.relative_to(root).parts)})
    if not found:
        raise AdoptError(f"no kustomization.yaml under {root}", file=str(root),
                         hint="give the folder that holds your Kustomize bases and overlays")
    layers: dict[Path, Layer] = {}
    todo = [f.resolve() for f in found]
    while todo:
        folder = todo.pop()
        if folder in layers:
            continue
        layers[folder] = layer = read_layer(root, folder)
        todo += [d for d in layer.dirs + layer.components if d not in layers]
    listed = {d for layer in layers.values() for d in layer.dirs + layer.components}
    roots = sorted((layer for d, layer in layers.items() if d not in listed), key=lambda layer: layer.shown)
    return Tree(root, layers, roots)
