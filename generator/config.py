"""The generator's own files: `gitops-gen.yaml`, `base/<app>/app.yaml`, `environments/<env>/env.yaml`.

Each is checked strictly (unknown keys, wrong types) and turned into frozen values; file
sources are resolved and confined to the repo here, so later steps only read checked paths.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.charts.decl import ChartDecl, Values, parse_chart, parse_env_values
from generator.steps import hashing
from generator.errors import ConfigError
from generator.secrets.external import ExternalSecretDecl, parse_declarations
from generator.io.memo import Memo
from generator.model import ConfigMapDecl, ConfigMapOverlay, Origin, Reread, Source
from generator.schema import Doc, Path_, expect, mapping, str_list, str_map
from generator.io.inputs import Refused, inside_repo, probe, read_text
from generator.io.yaml_io import load_documents

if TYPE_CHECKING:
    from generator.steps.images import ImageEntry

REPO_FILE = "gitops-gen.yaml"
APP_FILE = "app.yaml"
ENV_FILE = "env.yaml"
# Superseded versions of each hashed ConfigMap kept in out/<env>/ (see generator/retention.py).
DEFAULT_RETENTION = 2
MAX_RETENTION = 100
# What a `hash: false` ConfigMap read through env, envFrom or a subPath mount gets (those readers
# never see a change without a restart): a render warning, or an error (generator/steps/mutable.py).
MUTABLE_MODES = ("warn", "error")


@dataclass(frozen=True)
class PodSpecPath:
    """Where a kind keeps its pod spec, e.g. ("spec", "template", "spec")."""

    kind: str
    path: tuple[str, ...]
    api_version: str | None = None


@dataclass(frozen=True)
class External:
    configmaps: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()

    def union(self, other: External) -> External:
        return External(self.configmaps | other.configmaps, self.secrets | other.secrets)


@dataclass(frozen=True)
class Allowance:
    """An allow-list entry: this field of this object holds no credential, although the scanner
    says so. `kind` None: an object of any kind with that name."""

    kind: str | None
    name: str  # the declared name (before a hash suffix)
    field_label: str  # as the scanner reports it: `data.auth`, `spec.template.spec.containers[app].env[X].value`
    reason: str
    origin: Origin | None = field(default=None, compare=False)

    @property
    def key(self) -> AllowKey:
        return (self.kind, self.name, self.field_label)

    def describe(self) -> str:
        return f"{self.kind or 'any object'} {self.name!r} field `{self.field_label}`"


AllowKey = tuple[str | None, str, str]  # kind (None: any), declared name, field label


@dataclass(frozen=True)
class RepoConfig:
    root: Path
    hash_length: int = hashing.DEFAULT_LENGTH
    vars: dict[str, Any] = field(default_factory=dict)
    external: External = External()
    pod_spec_paths: tuple[PodSpecPath, ...] = ()
    retention: int = DEFAULT_RETENTION
    allow: tuple[Allowance, ...] = ()  # allowInOutput and (older) allowInConfigMaps
    # Custom-resource kinds that never get a namespace, besides the well-known ones
    # (generator/steps/namespaces.py).
    cluster_scoped: tuple[str, ...] = ()
    mutable_configmaps: str = "warn"
    hash_style: str = hashing.HASH_STYLES[0]  # "gitops-gen" (plain hex) or "kustomize" (see hashing.py)


@dataclass(frozen=True)
class AppConfig:
    name: str
    vars: dict[str, Any]
    configmaps: tuple[ConfigMapDecl, ...]
    external_secrets: tuple[ExternalSecretDecl, ...] = ()
    chart: ChartDecl | None = None  # the app's manifests also come from this Helm chart
    images: tuple[ImageEntry, ...] = ()


@dataclass(frozen=True)
class Patch:
    obj: dict[str, Any]
    origin: Origin


@dataclass(frozen=True)
class EnvConfig:
    name: str
    dir: Path
    namespace: str | None
    vars: dict[str, Any]
    only: tuple[str, ...] | None
    exclude: tuple[str, ...]
    hash_length: int | None
    external: External
    overlays: tuple[ConfigMapOverlay, ...]
    patches: tuple[Patch, ...]
    doc: Doc
    retention: int | None = None  # overrides the repo's when set
    chart_values: dict[str, Values] = field(default_factory=dict)  # `charts:` values by app
    mutable_configmaps: str | None = None  # overrides the repo's when set
    images: tuple[ImageEntry, ...] = ()
    hash_style: str | None = None  # overrides the repo's when set


def rel(root: Path, path: Path) -> str:
    """`path` relative to the repo root, as shown in messages and output headers."""
    whole, top = str(path), str(root)
    if whole.startswith(top) and whole[len(top) : len(top) + 1] == os.sep:
        return whole[len(top) + 1 :].replace(os.sep, "/")
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _read_single(
    root: Path, path: Path, memo: Memo | None = None, optional: bool = False
) -> tuple[Doc, dict[str, Any]] | None:
    """One of the generator's own files as a mapping; None when `optional` and it is absent
    (a dangling symlink, a FIFO or a link leaving the repo is an error, never "absent")."""
    shown = rel(root, path)
    text = read_text(root, path, shown, missing_ok=optional)
    if text is None:
        return None
    docs = load_documents(text, shown, "config") if memo is None else memo.parse(text, lambda t: load_documents(t, shown, "config"), "config")
    if len(docs) > 1:
        raise ConfigError("expected one YAML document, found several", file=shown, line=docs[1][1])
    doc = Doc(shown, text)
    if not docs:
        return doc, {}
    value = docs[0][0]
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping at the top of the file", file=shown, line=docs[0][1])
    return doc, value


def _hash_length(doc: Doc, path: Path_, value: Any) -> int:
    expect(doc, path, value, int)
    if not hashing.MIN_LENGTH <= value <= hashing.MAX_LENGTH:
        raise doc.error(path, f"must be between {hashing.MIN_LENGTH} and {hashing.MAX_LENGTH}")
    return int(value)


def hash_style(doc: Doc, path: Path_, value: Any) -> str:
    expect(doc, path, value, str)
    if value not in hashing.HASH_STYLES:
        raise doc.error(path, f"unknown hash style {value!r}; allowed: {', '.join(hashing.HASH_STYLES)}",
                        hint="`kustomize` names ConfigMaps as kustomize's configMapGenerator does; "
                        "`gitops-gen` (default) uses a plain hex suffix")
    return str(value)


def _optional_style(doc: Doc, path: Path_, m: dict[str, Any]) -> str | None:
    return None if "hashStyle" not in m else hash_style(doc, path + ("hashStyle",), m["hashStyle"])


def _retention(doc: Doc, path: Path_, value: Any) -> int:
    expect(doc, path, value, int)
    if not 0 <= value <= MAX_RETENTION:
        raise doc.error(path, f"must be between 0 and {MAX_RETENTION}",
                        hint="the number of superseded versions kept per ConfigMap; 0 keeps none")
    return int(value)


def _mutable_mode(doc: Doc, path: Path_, value: Any) -> str:
    expect(doc, path, value, str)
    if value not in MUTABLE_MODES:
        raise doc.error(path, f"must be one of: {', '.join(MUTABLE_MODES)}",
                        hint="what a `hash: false` ConfigMap read through env, envFrom or subPath gets")
    return str(value)


def _external(doc: Doc, path: Path_, value: Any) -> External:
    m = mapping(doc, path, value, ("configMaps", "secrets"))
    return External(
        frozenset(str_list(doc, path + ("configMaps",), m.get("configMaps", []))),
        frozenset(str_list(doc, path + ("secrets",), m.get("secrets", []))),
    )


ALLOW_EXAMPLE = '{kind: Deployment, name: NAME, field: FIELD, reason: "why it is not a credential"}'
LEGACY_ALLOW_EXAMPLE = '{configMap: NAME, key: KEY, reason: "why it is not a credential"}'


def _allowance(doc: Doc, p: Path_, item: Any, legacy: bool) -> Allowance:
    """One entry of `allowInOutput` ({kind, name, field, reason}) or of the older
    `allowInConfigMaps` ({configMap, key, reason}: field `data.KEY` of that ConfigMap)."""
    keys = ("configMap", "key", "reason") if legacy else ("kind", "name", "field", "reason")
    entry = mapping(doc, p, item, keys)
    for required in keys:
        if required not in entry and required != "kind":
            raise doc.error(p, f"missing `{required}`",
                            hint=f"each entry is {LEGACY_ALLOW_EXAMPLE if legacy else ALLOW_EXAMPLE}")
    values = {k: expect(doc, p + (k,), entry[k], str) for k in keys if k in entry}
    reason = values["reason"].strip()
    if not reason:
        raise doc.error(p + ("reason",), "`reason` is empty",
                        hint="say why the value is not a credential; reviewers read it")
    origin = Origin(doc.shown, None, doc.doc_index, doc.text, p)
    if legacy:
        return Allowance("ConfigMap", values["configMap"], f"data.{values['key']}", reason, origin)
    return Allowance(values.get("kind"), values["name"], values["field"], reason, origin)


def _allowances(doc: Doc, m: dict[str, Any]) -> tuple[Allowance, ...]:
    out: dict[AllowKey, Allowance] = {}
    for section, legacy in (("allowInOutput", False), ("allowInConfigMaps", True)):
        for i, item in enumerate(expect(doc, (section,), m.get(section, []), list)):
            entry = _allowance(doc, (section, i), item, legacy)
            if entry.key in out:
                raise doc.error((section, i), f"{entry.describe()} is allowed twice", hint="keep one entry")
            out[entry.key] = entry
    return tuple(out.values())


def _vars(doc: Doc, path: Path_, value: Any) -> dict[str, Any]:
    return dict(expect(doc, path, value, dict))


def load_repo_config(root: Path) -> RepoConfig:
    path = root / REPO_FILE
    found = _read_single(root, path, optional=True)
    if found is None:
        return RepoConfig(root=root)
    doc, m = found
    mapping(doc, (), m, ("hashLength", "retention", "vars", "external", "podSpecPaths", "allowInOutput", "allowInConfigMaps",
                         "clusterScoped", "mutableConfigMaps", "hashStyle"))
    specs: list[PodSpecPath] = []
    for i, item in enumerate(expect(doc, ("podSpecPaths",), m.get("podSpecPaths", []), list)):
        p: Path_ = ("podSpecPaths", i)
        entry = mapping(doc, p, item, ("kind", "apiVersion", "path"))
        for required in ("kind", "path"):
            if required not in entry:
                raise doc.error(p, f"missing `{required}`", hint="e.g. {kind: CloneSet, path: spec.template.spec}")
        kind = expect(doc, p + ("kind",), entry["kind"], str)
        dotted = expect(doc, p + ("path",), entry["path"], str)
        api = entry.get("apiVersion")
        if api is not None:
            expect(doc, p + ("apiVersion",), api, str)
        specs.append(PodSpecPath(kind, tuple(dotted.split(".")), api))
    return RepoConfig(
        root=root,
        hash_length=_hash_length(doc, ("hashLength",), m.get("hashLength", hashing.DEFAULT_LENGTH)),
        vars=_vars(doc, ("vars",), m.get("vars", {})),
        external=_external(doc, ("external",), m.get("external", {})),
        pod_spec_paths=tuple(specs),
        retention=_retention(doc, ("retention",), m.get("retention", DEFAULT_RETENTION)),
        allow=_allowances(doc, m),
        cluster_scoped=tuple(str_list(doc, ("clusterScoped",), m.get("clusterScoped", []))),
        mutable_configmaps=_mutable_mode(doc, ("mutableConfigMaps",), m.get("mutableConfigMaps", "warn")),
        hash_style=_optional_style(doc, (), m) or hashing.HASH_STYLES[0],
    )


def resolve_source(
    root: Path, base_dir: Path, doc: Doc, path: Path_, kind: str, entry: Any
) -> Source:
    """A `files`/`dirs`/`envs` entry as a checked path inside the repo."""
    text = expect(doc, path, entry, str)
    key: str | None = None
    if kind == "file" and "=" in text:
        key, _, text = text.partition("=")
        if not key:
            raise doc.error(path, "empty key before '='", hint="write `key=path` or just `path`")
    if not text:
        raise doc.error(path, "empty path")
    if Path(text).is_absolute():
        raise doc.error(path, f"absolute path {text!r} not allowed", hint="use a path relative to the file's folder")
    target = base_dir / text
    shown = rel(root, target)
    if not inside_repo(root, target):
        raise doc.error(
            path,
            f"{text!r} points outside the repo",
            hint="data files must live inside the repo (no '..' past the root, no symlinks leaving it)",
        )
    try:
        found = probe(root, target)
    except Refused as exc:
        raise doc.error(path, f"{shown} {exc.reason}", hint=exc.hint) from None
    if found is None:
        raise doc.error(path, f"{shown} does not exist", hint="check the path; it is relative to the declaring file's folder")
    mode = found.st_mode
    if kind == "dir" and not stat.S_ISDIR(mode):
        raise doc.error(path, f"{shown} is not a directory", hint="use `files:` for a single file")
    if kind not in ("dir", "chart") and not stat.S_ISREG(mode):  # a chart: a folder or a .tgz
        raise doc.error(path, f"{shown} is not a regular file", hint="use `dirs:` to take every file of a folder")
    return Source(kind, target, shown, key)


def _sources(root: Path, base_dir: Path, doc: Doc, path: Path_, m: dict[str, Any]) -> list[Source]:
    out: list[Source] = []
    for key, kind in (("files", "file"), ("dirs", "dir"), ("envs", "env")):
        entries = expect(doc, path + (key,), m.get(key, []), list)
        out += [resolve_source(root, base_dir, doc, path + (key, i), kind, e) for i, e in enumerate(entries)]
    return out


_DECL_KEYS = ("name", "literals", "files", "dirs", "envs", "hash", "labels", "annotations", "hashStyle")


def load_app_config(root: Path, app_dir: Path, app: str, memo: Memo | None = None) -> AppConfig:
    path = app_dir / APP_FILE
    found = _read_single(root, path, memo, optional=True)
    if found is None:
        return AppConfig(app, {}, ())
    doc, m = found
    mapping(doc, (), m, ("vars", "configMaps", "externalSecrets", "chart", "images"))
    source = Reread(str(path))  # declarations outlive this function: read the text again for an error
    decls: list[ConfigMapDecl] = []
    seen: set[str] = set()
    for i, item in enumerate(expect(doc, ("configMaps",), m.get("configMaps", []), list)):
        p: Path_ = ("configMaps", i)
        d = mapping(doc, p, item, _DECL_KEYS)
        if "name" not in d:
            raise doc.error(p, "a ConfigMap declaration needs a `name`")
        name = expect(doc, p + ("name",), d["name"], str)
        if name in seen:
            raise doc.error(p + ("name",), f"ConfigMap {name!r} is declared twice in this file")
        seen.add(name)
        decls.append(
            ConfigMapDecl(
                name=name,
                app=app,
                origin=Origin(doc.shown, 1, 0, source, p),
                literals=str_map(doc, p + ("literals",), d.get("literals", {})),
                sources=_sources(root, app_dir, doc, p, d),
                hashed=expect(doc, p + ("hash",), d.get("hash", True), bool),
                labels=str_map(doc, p + ("labels",), d.get("labels", {})),
                annotations=str_map(doc, p + ("annotations",), d.get("annotations", {})),
                hash_style=_optional_style(doc, p, d),
            )
        )
    return AppConfig(
        app,
        _vars(doc, ("vars",), m.get("vars", {})),
        tuple(decls),
        parse_declarations(doc, ("externalSecrets",), m.get("externalSecrets", []), app),
        parse_chart(root, app_dir, app, doc, m["chart"]) if "chart" in m else None,
        _images(doc, m, Origin(doc.shown, 1, 0, source), "app"),
    )


_ENV_KEYS = ("namespace", "vars", "apps", "hashLength", "retention", "external", "configMaps", "patches", "charts",
             "mutableConfigMaps", "images", "hashStyle")


def _images(doc: Doc, m: dict[str, Any], origin: Origin, scope: str) -> tuple[ImageEntry, ...]:
    if "images" not in m:
        return ()
    # Imported here: the step module imports the reference step, which imports this module.
    from generator.steps.images import parse_entries

    return parse_entries(doc, m["images"], origin, scope)


_OVERLAY_KEYS = ("literals", "files", "dirs", "envs", "remove", "hash", "hashStyle")


def load_env_config(root: Path, env_dir: Path, memo: Memo | None = None) -> EnvConfig:
    found = _read_single(root, env_dir / ENV_FILE, memo)
    assert found is not None  # not optional: a missing env.yaml is an error
    doc, m = found
    mapping(doc, (), m, _ENV_KEYS)
    namespace = m.get("namespace")
    if namespace is not None:
        expect(doc, ("namespace",), namespace, str)
    apps = mapping(doc, ("apps",), m.get("apps", {}), ("only", "exclude"))
    if "only" in apps and "exclude" in apps:
        raise doc.error(("apps",), "use either `only` or `exclude`, not both")
    only = tuple(str_list(doc, ("apps", "only"), apps["only"])) if "only" in apps else None
    overlays: list[ConfigMapOverlay] = []
    for name, item in expect(doc, ("configMaps",), m.get("configMaps", {}), dict).items():
        p: Path_ = ("configMaps", name)
        o = mapping(doc, p, item if item is not None else {}, _OVERLAY_KEYS)
        hashed = o.get("hash")
        if hashed is not None:
            expect(doc, p + ("hash",), hashed, bool)
        overlays.append(
            ConfigMapOverlay(
                name=str(name),
                origin=Origin(doc.shown, 1, 0, doc.text, p),
                literals=str_map(doc, p + ("literals",), o.get("literals", {})),
                sources=_sources(root, env_dir, doc, p, o),
                remove=str_list(doc, p + ("remove",), o.get("remove", [])),
                hashed=hashed,
                hash_style=_optional_style(doc, p, o),
            )
        )
    patches: list[Patch] = []
    for i, item in enumerate(expect(doc, ("patches",), m.get("patches", []), list)):
        expect(doc, ("patches", i), item, dict)
        patches.append(Patch(item, Origin(doc.shown, 1, 0, doc.text, ("patches", i))))
    hash_length = m.get("hashLength")
    retention = m.get("retention")
    mutable = m.get("mutableConfigMaps")
    return EnvConfig(
        name=env_dir.name,
        dir=env_dir,
        namespace=namespace,
        vars=_vars(doc, ("vars",), m.get("vars", {})),
        only=only,
        exclude=tuple(str_list(doc, ("apps", "exclude"), apps.get("exclude", []))),
        hash_length=None if hash_length is None else _hash_length(doc, ("hashLength",), hash_length),
        external=_external(doc, ("external",), m.get("external", {})),
        overlays=tuple(overlays),
        patches=tuple(patches),
        doc=doc,
        retention=None if retention is None else _retention(doc, ("retention",), retention),
        chart_values=parse_env_values(root, env_dir, doc, m["charts"]) if "charts" in m else {},
        mutable_configmaps=None if mutable is None else _mutable_mode(doc, ("mutableConfigMaps",), mutable),
        images=_images(doc, m, Origin(doc.shown, 1, 0, doc.text), "env"),
        hash_style=_optional_style(doc, (), m),
    )
