"""Step 1, load: discover apps and environments and read their manifests into Resources.

A plain `kind: ConfigMap` manifest becomes a ConfigMapDecl here, so that declared and written
ConfigMaps go through one path (overlays, hashing, references).
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.config import APP_FILE, ENV_FILE, Patch, rel
from generator.errors import GeneratorError, LoadError
from generator.io.memo import Memo, share_parse
from generator.model import ConfigMapDecl, Origin, Reread, Resource
from generator.schema import Doc, scalar_text, text_map, type_name
from generator.steps.templating import Templates
from generator.io import index as render_index
from generator.io.inputs import Refused, is_dir, probe, read_text
from generator.io.yaml_io import Rules, load_documents

MANIFEST_SUFFIXES = (".yaml", ".yml", ".yaml.j2", ".yml.j2")
HASH_ANNOTATION = "gitops-gen.io/hash"


def _visible(name: str) -> bool:
    return not name.startswith((".", "_"))


def _refused(root: Path, path: Path, exc: Refused) -> LoadError:
    shown = rel(root, path)
    return LoadError(f"{shown} {exc.reason}", file=shown, hint=exc.hint)


def _checked_dir(root: Path, entry: os.DirEntry[str]) -> bool:
    """Whether a folder entry is a folder to descend into. Plain entries are judged by the
    listing's file type (no stat); a symlink is followed and must stay in the repo, and a
    dangling one or a loop is an error, never silently skipped."""
    if not entry.is_symlink():
        return entry.is_dir(follow_symlinks=False)
    try:
        st = probe(root, Path(entry.path))
    except Refused as exc:
        raise _refused(root, Path(entry.path), exc) from None
    return st is not None and stat.S_ISDIR(st.st_mode)


def _sorted(entries: Iterator[os.DirEntry[str]]) -> list[os.DirEntry[str]]:
    """By name: the order files are checked (and so which error comes first) is stable."""
    return sorted(entries, key=lambda e: e.name)


def list_apps(root: Path, base: Path) -> list[str]:
    try:
        if not is_dir(root, base):
            return []
        render_index.note(base)
        with os.scandir(base) as entries:
            return [e.name for e in _sorted(entries) if _visible(e.name) and _checked_dir(root, e)]
    except Refused as exc:
        raise _refused(root, base, exc) from None


def list_envs(root: Path, environments: Path) -> list[str]:
    """Environment folders: the visible folders holding an env.yaml (a dangling, looping or
    outside symlink as env.yaml or as the folder is an error, not a missing environment)."""
    try:
        if not is_dir(root, environments):
            return []
        render_index.note(environments)
        with os.scandir(environments) as entries:
            folders = [e.name for e in _sorted(entries) if _visible(e.name) and _checked_dir(root, e)]
    except Refused as exc:
        raise _refused(root, environments, exc) from None
    envs = []
    for name in folders:
        path = environments / name / ENV_FILE
        try:
            found = probe(root, path)
        except Refused as exc:
            raise _refused(root, path, exc) from None
        if found is not None and stat.S_ISREG(found.st_mode):
            envs.append(name)
    return envs


def manifest_files(root: Path, folder: Path, skip: frozenset[str] = frozenset()) -> Iterator[Path]:
    """The manifests of an app folder, in a stable order; app.yaml, data files and `skip`
    (the chart values files app.yaml names) excluded.
    File types come from the directory listing (no stat each); anything but a regular file
    or a folder with a manifest's name (a symlink, FIFO, socket, device) is checked."""
    names = []
    render_index.note(folder)  # its listing is an input (a new manifest, a removed one)
    with os.scandir(folder) as entries:
        for e in _sorted(entries):
            if not e.name.endswith(MANIFEST_SUFFIXES) or e.name == APP_FILE or not _visible(e.name) or e.name in skip:
                continue
            if e.is_file(follow_symlinks=False):
                names.append(e.name)
            elif not e.is_dir(follow_symlinks=False):
                try:
                    found = probe(root, Path(e.path))
                except Refused as exc:
                    raise _refused(root, Path(e.path), exc) from None
                if found is not None and stat.S_ISREG(found.st_mode):
                    names.append(e.name)
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
    text = read_text(root, path, shown)
    if path.name.endswith(".j2"):
        text = templates.render(text, context, shown)
    if memo is None:
        return shown, text, load_documents(text, shown, "manifest")
    return shown, text, memo.parse(text, lambda t: load_documents(t, shown, "manifest"), "manifest")


def share_base_parses(root: Path, apps: Iterable[str]) -> None:
    """Parse the base apps' plain manifests and app.yaml files once, before environments are
    rendered in forked workers, which then take the results from memory (memo.share_parse)
    instead of each parsing them again. Exactly the worker's parse, keyed by text and rules;
    anything that fails here is left to the worker, which reports it in its own order."""
    for app in apps:
        folder = root / "base" / app
        try:
            paths = [p for p in manifest_files(root, folder) if not p.name.endswith(".j2")]
        except (GeneratorError, OSError):
            continue
        for path in paths:
            _share(root, path, "manifest")
        _share(root, folder / APP_FILE, "config")


def _share(root: Path, path: Path, rules: Rules) -> None:
    shown = rel(root, path)
    try:
        text = read_text(root, path, shown)
        share_parse(text, lambda t: load_documents(t, shown, rules), rules or "")
    except (GeneratorError, OSError):
        pass  # the worker reads and parses it again, and reports the error


def load_app_folder(
    root: Path, folder: Path, app: str, templates: Templates, context: Mapping[str, Any],
    memo: Memo | None = None, skip: frozenset[str] = frozenset(),
) -> Loaded:
    loaded = Loaded([], [])
    for path in manifest_files(root, folder, skip):
        shown, text, docs = read_documents(root, path, templates, context, memo)
        # A rendered template's text exists only here; a plain file can be read again.
        source = text if path.name.endswith(".j2") else Reread(str(path))
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


check_manifest = _check_manifest  # for objects that come from elsewhere (Helm charts)


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
    try:
        if not is_dir(root, folder):
            return []
    except Refused as exc:
        raise _refused(root, folder, exc) from None
    patches: list[Patch] = []
    for path in manifest_files(root, folder):
        shown, text, docs = read_documents(root, path, templates, context, memo)
        for index, (obj, line) in enumerate(docs):
            if not isinstance(obj, dict):
                raise LoadError("a patch must be a mapping (a partial object with kind and metadata.name)",
                                file=shown, line=line)
            patches.append(Patch(obj, Origin(shown, line, index, text)))
    return patches
