"""`gitops-gen import kustomize PATH`: a Kustomize tree as a repo of ours, one app per base.

- Each *leaf* kustomization (resources are files only) becomes `base/<app>/`: its resource
  files copied as they are (or, when the base itself transforms them with patches, labels,
  images..., the objects as `kubectl kustomize` builds them without the generators), and its
  `configMapGenerator` entries as ConfigMap declarations in `app.yaml`.
- Each *root* kustomization (listed by no other) that lists other kustomizations becomes
  `environments/<name>/`: the layers from the root down to the bases (components included) are
  folded in Kustomize's order into one env.yaml: `namespace`, which apps, ConfigMap overlays
  (`behavior: merge|replace`), patches (strategic merge, JSON 6902 on mapping keys, `replicas`,
  `images`); resources and `behavior: create` ConfigMaps of the overlay itself go to
  `environments/<name>/apps/<name>-only/`.
- `hashStyle: kustomize` in gitops-gen.yaml keeps every ConfigMap name.
- Whatever has no equivalent is listed (file:line, what to do) in IMPORT.md and on stdout.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.adopt import patches as P
from generator.adopt.generators import Copier, Decl, convert, our_env_pairs
from generator.adopt.kubectl import kustomize_build
from generator.adopt.layers import KUSTOMIZATION_FILES, Layer, Tree, read_tree
from generator.errors import AdoptError
from generator.io.yaml_io import dump_document, load_plain, load_plain_all

Todo = list[tuple[str, str]]
# Keys of a kustomization the importer understands (others become TODOs).
LEAF_KEYS = {"apiVersion", "kind", "resources", "configMapGenerator", "generatorOptions"}
OVERLAY_KEYS = {"apiVersion", "kind", "resources", "bases", "components", "namespace", "configMapGenerator",
                "generatorOptions", "patches", "patchesStrategicMerge", "patchesJson6902", "replicas", "images"}
# Base-level transformers applied by baking the base with kubectl kustomize.
BAKED_KEYS = {"patches", "patchesStrategicMerge", "patchesJson6902", "replicas", "images", "commonLabels",
              "labels", "commonAnnotations", "namespace"}
HASH_OFF = "gitops-gen.io/hash"
REF_KEYS = {"configMapKeyRef": ("ConfigMap", "name"), "configMapRef": ("ConfigMap", "name"),
            "configMap": ("ConfigMap", "name"), "secretKeyRef": ("Secret", "name"),
            "secretRef": ("Secret", "name"), "secret": ("Secret", "secretName")}


@dataclass
class App:
    name: str
    folder: str  # relative to the new repo
    files: dict[str, bytes] = field(default_factory=dict)
    decls: list[Decl] = field(default_factory=list)
    copier: Copier = field(default_factory=Copier)
    objects: list[dict[str, Any]] = field(default_factory=list)

    def write(self, out: Path) -> None:
        target = out / self.folder
        for rel, blob in {**self.files, **self.copier.files}.items():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_bytes(blob)
        if self.decls:
            doc = {"configMaps": [d.as_yaml() for d in self.decls]}
            (target / "app.yaml").write_text(dump_document(doc), encoding="utf-8")


@dataclass
class Env:
    name: str
    root: Layer
    namespace: str | None = None
    apps: list[str] = field(default_factory=list)
    overlays: dict[str, Decl] = field(default_factory=dict)
    patches: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)  # env.yaml `images:`
    copier: Copier = field(default_factory=Copier)
    local: App | None = None


@dataclass
class Imported:
    apps: dict[Path, App]
    envs: list[Env]
    todo: Todo
    notes: list[str]
    external: dict[str, set[str]]


def _app_name(tree: Tree, layer: Layer, taken: set[str]) -> str:
    parts = list(Path(layer.shown).parent.parts) or [tree.root.name]
    name = parts[-1]
    if name in ("base", "bases"):
        name = parts[-2] if len(parts) > 1 else tree.root.name
    i, candidate = 1, name
    while candidate in taken:
        i += 1
        candidate = "-".join(parts[-i:]) if i <= len(parts) else f"{name}-{i}"
    return candidate


_SPECIFIC = {
    "namePrefix": "ours cannot rename an environment's objects: rename them in the manifests (and references)",
    "nameSuffix": "ours cannot rename an environment's objects: rename them in the manifests (and references)",
    "commonLabels": "ours cannot label every object of an environment: add the labels to the manifests or as patches",
    "labels": "ours cannot label every object of an environment: add the labels to the manifests or as patches",
    "commonAnnotations": "ours cannot annotate every object of an environment: add them to the manifests or as patches",
}


def _unsupported(layer: Layer, allowed: set[str], todo: Todo, what: str) -> None:
    for key in layer.doc:
        if key in allowed or (what == "a base" and key in BAKED_KEYS):
            continue
        if key == "secretGenerator":
            todo.append((layer.where(key), "secretGenerator: a plaintext Secret may not be committed; use an "
                         "ExternalSecret or SealedSecret (README \"Secrets\"); its names are under "
                         "`external.secrets` meanwhile"))
        elif key in _SPECIFIC and what == "an overlay":
            todo.append((layer.where(key), f"`{key}` of an overlay is not imported: {_SPECIFIC[key]}"))
        elif key not in ("namePrefix", "nameSuffix"):  # a base's: reported by _leaf_app
            todo.append((layer.where(key), f"`{key}` in {what} has no equivalent here: carry it over by hand"))


def _leaf_app(tree: Tree, layer: Layer, kubectl: Path, taken: set[str], imp: Imported) -> App:
    app = App(_app_name(tree, layer, taken), "")
    app.folder = f"base/{app.name}"
    taken.add(app.name)
    _unsupported(layer, LEAF_KEYS, imp.todo, "a base")
    baked = sorted(k for k in layer.doc if k in BAKED_KEYS)
    for key in ("namePrefix", "nameSuffix"):
        if key in layer.doc:
            imp.todo.append((layer.where(key), f"`{key}` renames the base's ConfigMaps too; ours keep the "
                             "generator's name: rename them in app.yaml (and their references)"))
    if baked:
        objects = _bake(layer, kubectl)
        imp.notes.append(f"{layer.shown}: {', '.join(baked)} applied at import (the base's objects as "
                         "`kubectl kustomize` builds them)")
        for obj in objects:
            meta = obj.get("metadata") or {}
            app.files[f"{str(obj.get('kind', 'object')).lower()}-{meta.get('name', 'unnamed')}.yaml"] = \
                _manifest(obj, imp).encode()
            app.objects.append(obj)
    else:
        for _, path in layer.files:
            text = path.read_text(encoding="utf-8")
            objects = [d for d in load_plain_all(text) if isinstance(d, dict)]
            app.objects += objects
            if any(o.get("kind") in ("ConfigMap", "Secret") for o in objects):
                text = "---\n".join(_manifest(o, imp) for o in objects)
            app.files[_file_name(path, app.files)] = text.encode()
    options = layer.doc.get("generatorOptions") or {}
    extra_labels = {**(layer.doc.get("commonLabels") or {}), **_pairs(layer.doc.get("labels"))}
    for i, gen in enumerate(layer.doc.get("configMapGenerator") or []):
        decl = convert(layer, i, gen, options, app.copier, imp.todo)
        decl.labels = {**extra_labels, **decl.labels}
        decl.annotations = {**(layer.doc.get("commonAnnotations") or {}), **decl.annotations}
        app.decls.append(decl)
    _secret_names(layer, imp)
    return app


def _pairs(labels: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in labels or []:
        out.update({str(k): str(v) for k, v in (entry.get("pairs") or {}).items()})
    return out


def _secret_names(layer: Layer, imp: Imported) -> None:
    for gen in layer.doc.get("secretGenerator") or []:
        imp.external["secrets"].add(str(gen.get("name")))


def _manifest(obj: dict[str, Any], imp: Imported) -> str:
    """A resource as we must write it: a plain ConfigMap keeps its name (Kustomize does not hash
    it); a plaintext Secret cannot be committed and is left out (a TODO)."""
    meta = obj.setdefault("metadata", {})
    if obj.get("kind") == "ConfigMap":
        meta["annotations"] = {**(meta.get("annotations") or {}), HASH_OFF: "false"}
    return dump_document(obj)


def _file_name(path: Path, taken: dict[str, bytes]) -> str:
    """A manifest's file name in our app folder: YAML (JSON is YAML), never our `app.yaml`."""
    name = path.name
    if not name.endswith((".yaml", ".yml")):
        name = name.removesuffix(".j2") + ".yaml"
    stem, n = name, 1
    while name in taken or name == "app.yaml":
        n += 1
        name = f"{n}-{stem}"
    return name


def _bake(layer: Layer, kubectl: Path) -> list[dict[str, Any]]:
    """The base's resources with its own transformers applied, without its generators: built
    from a copy (Kustomize reads no file outside a kustomization's folder), never in place."""
    doc = {k: v for k, v in layer.doc.items() if k not in ("configMapGenerator", "secretGenerator", "generatorOptions")}
    with tempfile.TemporaryDirectory(prefix="gitops-gen-import-") as tmp:
        copy = Path(tmp) / "base"
        shutil.copytree(layer.dir, copy, symlinks=False)
        for name in KUSTOMIZATION_FILES:
            (copy / name).unlink(missing_ok=True)
        (copy / "kustomization.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        return kustomize_build(kubectl, copy, layer.shown)


def _walk(tree: Tree, layer: Layer, leaves: list[Layer], layers: list[Layer], seen: set[Path]) -> None:
    """Kustomize's order: resources (depth first), then components, then the layer itself."""
    if layer.dir in seen:
        return
    seen.add(layer.dir)
    if layer.leaf and layer.doc.get("kind") != "Component":
        leaves.append(layer)
        return
    for d in layer.dirs + layer.components:
        _walk(tree, tree.layers[d], leaves, layers, seen)
    layers.append(layer)


def _env_name(root: Layer, taken: set[str]) -> str:
    parts = list(Path(root.shown).parent.parts) or ["default"]
    name, i = parts[-1], 1
    while name in taken:
        i += 1
        name = "-".join(parts[-i:]) if i <= len(parts) else f"{parts[-1]}-{i}"
    taken.add(name)
    return name


def _env(tree: Tree, root: Layer, apps: dict[Path, App], imp: Imported, taken: set[str]) -> Env:
    env = Env(_env_name(root, taken), root)
    leaves: list[Layer] = []
    layers: list[Layer] = []
    _walk(tree, root, leaves, layers, set())
    env.apps = [apps[leaf.dir].name for leaf in leaves]
    base_decls = {d.name: (apps[leaf.dir], d) for leaf in leaves for d in apps[leaf.dir].decls}
    objects = [o for leaf in leaves for o in apps[leaf.dir].objects]
    for layer in layers:
        _unsupported(layer, OVERLAY_KEYS, imp.todo, "an overlay")
        _secret_names(layer, imp)
        if isinstance(layer.doc.get("namespace"), str):
            env.namespace = layer.doc["namespace"]
        local_objects = P.read_objects(p for _, p in layer.files)
        if layer.files:
            env.local = env.local or App(f"{env.name}-only", f"environments/{env.name}/apps/{env.name}-only")
            for _, path in layer.files:
                env.local.files[_file_name(path, env.local.files)] = "---\n".join(
                    _manifest(o, imp) for o in P.read_objects([path])).encode()
            env.local.objects += local_objects
        objects += local_objects
        _generators(layer, env, base_decls, imp)
        _layer_patches(layer, env, objects, imp.todo)
    return env


def _generators(layer: Layer, env: Env, base_decls: dict[str, tuple[App, Decl]], imp: Imported) -> None:
    options = layer.doc.get("generatorOptions") or {}
    for i, gen in enumerate(layer.doc.get("configMapGenerator") or []):
        behavior = gen.get("behavior", "create")
        name = str(gen.get("name"))
        local = {d.name: d for d in env.local.decls} if env.local else {}
        if behavior == "create" or name in local:
            env.local = env.local or App(f"{env.name}-only", f"environments/{env.name}/apps/{env.name}-only")
            decl = convert(layer, i, gen, options, env.local.copier, imp.todo)
            if name in local:  # merging onto a ConfigMap an earlier layer of this environment created
                _combine(local[name], decl, behavior == "replace")
            else:
                env.local.decls.append(decl)
            continue
        if name not in base_decls:
            imp.todo.append((layer.where("configMapGenerator", i), f"behavior {behavior} of ConfigMap {name!r}, "
                             "which no base of this environment generates"))
            continue
        decl = convert(layer, i, gen, {}, env.copier, imp.todo)
        if gen.get("options", {}).get("labels") or gen.get("options", {}).get("annotations") or \
                options.get("labels") or options.get("annotations"):
            imp.todo.append((layer.where("configMapGenerator", i), f"labels/annotations of the {behavior} of "
                             f"{name!r}: an overlay of ours changes data only; set them in the base's app.yaml"))
        previous = env.overlays.get(name)
        if behavior == "replace":
            app, base = base_decls[name]
            decl.remove = sorted(_base_keys(app, base) - _base_keys(env_app(env), decl))
            env.overlays[name] = decl
        elif previous is not None:
            _combine(previous, decl, False)
        else:
            env.overlays[name] = decl
        decl.hashed = base_decls[name][1].hashed if "options" not in gen and not options else decl.hashed


def env_app(env: Env) -> App:
    """The environment's own data files, seen as an app's (for the keys of its overlays)."""
    return App(env.name, "", copier=env.copier)


def _base_keys(app: App, decl: Decl) -> set[str]:
    """Every key a declaration gives (its literals, file keys and env file keys)."""
    keys = set(decl.literals) | {f.split("=", 1)[0] for f in decl.files}
    for env_file in decl.envs:
        keys |= {k for k, _ in our_env_pairs(app.copier.files[env_file].decode("utf-8"))}
    return keys


def _combine(into: Decl, more: Decl, replace: bool) -> None:
    if replace:
        into.literals, into.files, into.envs = {}, [], []
    into.literals.update(more.literals)
    into.files += more.files
    into.envs += more.envs


def _layer_patches(layer: Layer, env: Env, objects: list[dict[str, Any]], todo: Todo) -> None:
    for key in ("patchesStrategicMerge", "patches", "patchesJson6902"):
        for i, entry in enumerate(layer.doc.get(key) or []):
            text = P.entry_text(layer, entry)
            if text is None:
                todo.append((layer.where(key, i), "patch without `path` or `patch`"))
                continue
            target = entry.get("target") if isinstance(entry, dict) else None
            if key == "patchesJson6902":
                ops = load_plain(text)
                found = P.json6902(layer, (key, i), ops, target, todo, objects)
                env.patches += [found] if found is not None else []
            else:
                env.patches += P.file_patches(layer, (key, i), text, target, todo, objects)
    env.patches += P.replicas(layer, objects, todo)
    if layer.doc.get("images"):
        env.images += P.images(layer, objects, todo)


def _references(imp: Imported) -> None:
    """ConfigMaps and Secrets the workloads name that the repo does not produce: Kustomize never
    checks them, ours refuses a dangling reference, so they go on `external:`."""
    produced: dict[str, set[str]] = {"ConfigMap": set(), "Secret": set()}
    apps = list(imp.apps.values()) + [e.local for e in imp.envs if e.local]
    for app in apps:
        produced["ConfigMap"] |= {d.name for d in app.decls}
        for obj in app.objects:
            if obj.get("kind") in produced:
                produced[str(obj["kind"])].add(str((obj.get("metadata") or {}).get("name")))
    wanted: dict[str, set[str]] = {"ConfigMap": set(), "Secret": set()}
    for app in apps:
        for obj in app.objects:
            _collect(obj, wanted)
    for kind, key in (("ConfigMap", "configMaps"), ("Secret", "secrets")):
        missing = wanted[kind] - produced[kind]
        if missing:
            imp.external[key] |= missing
            imp.notes.append(f"{kind}s referenced but not generated here, listed under `external.{key}` "
                             f"in gitops-gen.yaml: {', '.join(sorted(missing))}")


def _collect(node: Any, wanted: dict[str, set[str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in REF_KEYS and isinstance(value, dict) and isinstance(value.get(REF_KEYS[key][1]), str):
                wanted[REF_KEYS[key][0]].add(value[REF_KEYS[key][1]])
            elif key == "imagePullSecrets" and isinstance(value, list):
                wanted["Secret"] |= {v["name"] for v in value if isinstance(v, dict) and isinstance(v.get("name"), str)}
            _collect(value, wanted)
    elif isinstance(node, list):
        for item in node:
            _collect(item, wanted)


def import_tree(path: Path, kubectl: Path) -> Imported:
    tree = read_tree(path)
    imp = Imported({}, [], [], [], {"configMaps": set(), "secrets": set()})
    taken: set[str] = set()
    for folder, layer in sorted(tree.layers.items(), key=lambda kv: kv[1].shown):
        if layer.leaf and layer.doc.get("kind") != "Component":
            imp.apps[folder] = _leaf_app(tree, layer, kubectl, taken, imp)
    env_roots = [r for r in tree.roots if not r.leaf and r.doc.get("kind") != "Component"]
    if not env_roots:  # a tree of bases only: one environment with every app
        env_roots = [r for r in tree.roots if r.doc.get("kind") != "Component"]
    env_names: set[str] = set()
    for root in env_roots:
        imp.envs.append(_env(tree, root, imp.apps, imp, env_names))
    for layer in sorted(tree.layers.values(), key=lambda layer: layer.shown):
        for section, i, url in layer.remote:
            imp.todo.append((layer.where(section, i), f"remote {section} entry {url!r} is not imported: "
                             "vendor it into the tree (or into base/) and import again"))
    for root in tree.roots:
        if root.doc.get("kind") == "Component":
            imp.todo.append((root.where("kind"), "a Component that no kustomization uses: not imported"))
    _references(imp)
    return imp


def write(imp: Imported, out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise AdoptError(f"{out} is not empty", file=str(out), hint="import into a new folder (--out)")
    out.mkdir(parents=True, exist_ok=True)
    repo: dict[str, Any] = {"hashStyle": "kustomize"}
    if imp.external["configMaps"] or imp.external["secrets"]:
        repo["external"] = {k: sorted(v) for k, v in imp.external.items() if v}
    (out / "gitops-gen.yaml").write_text(
        "# Imported from Kustomize by `gitops-gen import kustomize`; see IMPORT.md.\n"
        "# hashStyle: kustomize keeps every ConfigMap name Kustomize gave (README \"The hash algorithm\").\n"
        + dump_document(repo), encoding="utf-8")
    all_apps = sorted(a.name for a in imp.apps.values())
    for app in imp.apps.values():
        app.write(out)
    for env in imp.envs:
        _write_env(env, all_apps, out)
    (out / "IMPORT.md").write_text(report(imp), encoding="utf-8")


def _write_env(env: Env, all_apps: list[str], out: Path) -> None:
    folder = out / "environments" / env.name
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {}
    if env.namespace:
        doc["namespace"] = env.namespace
    if sorted(set(env.apps)) != all_apps:
        doc["apps"] = {"only": sorted(set(env.apps))}
    if env.overlays:
        doc["configMaps"] = {name: d.as_yaml(overlay=True) for name, d in env.overlays.items()}
    if env.images:
        doc["images"] = env.images
    for rel, blob in env.copier.files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(blob)
    if env.patches:
        (folder / "patches").mkdir()
        for i, patch in enumerate(env.patches, start=1):
            name = f"{i:03d}-{str(patch['kind']).lower()}-{patch['metadata']['name']}.yaml"
            (folder / "patches" / name).write_text(dump_document(patch), encoding="utf-8")
    (folder / "env.yaml").write_text(f"# From {env.root.shown}\n" + (dump_document(doc) if doc else "{}\n"),
                                     encoding="utf-8")
    if env.local is not None:
        env.local.write(out)


def report(imp: Imported) -> str:
    lines = ["# Import from Kustomize", "",
             f"{len(imp.apps)} apps, {len(imp.envs)} environments "
             f"({', '.join(e.name + ' <- ' + e.root.shown for e in imp.envs)}).", ""]
    lines += ["## TODO (not imported: do these by hand)", ""]
    lines += [f"- {where}: {what}" for where, what in imp.todo] or ["- nothing"]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in imp.notes or ["nothing"]]
    return "\n".join(lines) + "\n"
