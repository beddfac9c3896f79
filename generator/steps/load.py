"""Step 1, load: discover apps and environments and read their manifests into Resources.

A plain `kind: ConfigMap` manifest becomes a ConfigMapDecl here, so that declared and written
ConfigMaps go through one path (overlays, hashing, references).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.config import APP_FILE, ENV_FILE, Patch, rel
from generator.errors import LoadError
from generator.io.memo import Memo
from generator.model import ConfigMapDecl, Origin, Reread, Resource
from generator.schema import Doc, scalar_text, text_map, type_name
from generator.steps.templating import Templates
from generator.io.yaml_io import load_documents, read_text

MANIFEST_SUFFIXES = (".yaml", ".yml", ".yaml.j2", ".yml.j2")
HASH_ANNOTATION = "gitops-gen.io/hash"


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "_"))


def list_apps(base: Path) -> list[str]:
    try:
        with os.scandir(base) as entries:
            return sorted(e.name for e in entries if not e.name.startswith((".", "_")) and e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def list_envs(environments: Path) -> list[str]:
    if not environments.is_dir():
        return []
    return sorted(
        p.name for p in environments.iterdir() if _visible(p) and (p / ENV_FILE).is_file()
    )


def manifest_files(folder: Path) -> Iterator[Path]:
    """The manifests of an app folder, in a stable order; app.yaml and data files excluded."""
    with os.scandir(folder) as entries:  # file types from the directory listing: no stat each
        names = sorted(
            e.name for e in entries
            if e.name.endswith(MANIFEST_SUFFIXES) and e.name != APP_FILE and not e.name.startswith((".", "_"))
            and e.is_file()
        )
    for name in names:
        yield folder / name


@dataclass
class Loaded:
    resources: list[Resource]
    configmaps: list[ConfigMapDecl]


def read_documents(
    root: Path, path: Path, templates: Templates, context: Mapping[str, Any], memo: Memo | None = None
) -> tuple[str, str, list[tuple[Any, int]]]:
    """(shown path, text as parsed, documents) of a manifest file, rendering `.j2` first."""
    shown = rel(root, path)
    text = read_text(path, shown)
    if path.name.endswith(".j2"):
        text = templates.render(text, context, shown)
    if memo is None:
        return shown, text, load_documents(text, shown, "manifest")
    return shown, text, memo.parse(text, lambda t: load_documents(t, shown, "manifest"), "manifest")


def load_app_folder(
    root: Path, folder: Path, app: str, templates: Templates, context: Mapping[str, Any],
    memo: Memo | None = None,
) -> Loaded:
    loaded = Loaded([], [])
    for path in manifest_files(folder):
        shown, text, docs = read_documents(root, path, templates, context, memo)
        # A rendered template's text exists only here; a plain file can be read again.
        source = text if path.name.endswith(".j2") else Reread(path)
        for index, (obj, line) in enumerate(docs):
            origin = Origin(shown, line, index, source)
            _check_manifest(obj, origin)
            if obj["kind"] == "ConfigMap" and obj.get("apiVersion") == "v1":
                loaded.configmaps.append(configmap_from_manifest(obj, app, origin, text))
            else:
                loaded.resources.append(Resource(obj, origin, app))
    return loaded


def _check_manifest(obj: Any, origin: Origin) -> None:
    if not isinstance(obj, dict):
        raise LoadError(
            f"expected a Kubernetes object (a mapping), got {type_name(type(obj))}",
            file=origin.file, line=origin.first_line,
        )
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise LoadError(
                f"object has no `{key}`",
                file=origin.file, line=origin.first_line,
                hint="every manifest document needs apiVersion, kind and metadata.name",
            )
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise LoadError(
            f"{obj['kind']} has no `metadata.name`",
            file=origin.file, line=origin.at("metadata").line,
            hint="every manifest document needs apiVersion, kind and metadata.name",
        )


def configmap_from_manifest(obj: dict[str, Any], app: str, origin: Origin, text: str) -> ConfigMapDecl:
    doc = Doc(origin.file, text, origin.doc_index)
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    for field_, value in (("data", data), ("binaryData", binary)):
        if not isinstance(value, dict):
            raise doc.error((field_,), f"`{field_}` must be a mapping of keys to strings")
    for key, value in binary.items():
        try:
            base64.b64decode(str(value), validate=True)
        except ValueError:
            raise doc.error(("binaryData", key), f"binaryData {key!r} is not valid base64") from None
    meta = obj["metadata"]
    annotations = dict(meta.get("annotations") or {})
    hashed = str(annotations.get(HASH_ANNOTATION, "true")).lower() != "false"
    return ConfigMapDecl(
        name=meta["name"],
        app=app,
        origin=origin,
        literals=text_map(doc, ("data",), data, scalar_text),
        hashed=hashed,
        manifest=obj,
        binary=text_map(doc, ("binaryData",), binary, lambda _doc, _path, v: str(v)),
        templated=False,
    )


PATCHES_DIR = "patches"


def load_patch_files(
    root: Path, env_dir: Path, templates: Templates, context: Mapping[str, Any], memo: Memo | None = None
) -> list[Patch]:
    """`environments/<env>/patches/*.yaml[.j2]`: one patch per document, in file order."""
    folder = env_dir / PATCHES_DIR
    if not folder.is_dir():
        return []
    patches: list[Patch] = []
    for path in manifest_files(folder):
        shown, text, docs = read_documents(root, path, templates, context, memo)
        for index, (obj, line) in enumerate(docs):
            if not isinstance(obj, dict):
                raise LoadError("a patch must be a mapping (a partial object with kind and metadata.name)",
                                file=shown, line=line)
            patches.append(Patch(obj, Origin(shown, line, index, text)))
    return patches
