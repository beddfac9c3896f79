"""The render pipeline for one environment, as a chain of named steps:

load -> namespace -> patch -> follow namespaces -> images -> configmaps (overlay, template, hash) -> scan
(credentials in any object) -> secrets (refuse plaintext, hash Secret producers) -> references
-> Kubernetes schema -> API-server rules -> mutable ConfigMaps (warnings) -> validate -> lay out
-> retain (superseded versions of ConfigMaps and Secret producers, read from the committed
out/<env>/)

Every step works on `Resource` values that remember their source file. Nothing is written
here: `render_env` returns the files of `out/<env>/`, and the CLI writes them only when every
environment rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

from generator.charts.hookup import chart_decl, chart_step, check_env_values
from generator.steps import configmaps as cms
from generator.secrets import external as externalsecrets
from generator.steps import retention
from generator.config import AllowKey, EnvConfig, RepoConfig, load_app_config, load_env_config, load_repo_config
from generator.errors import ConfigError, ConfigMapError, GeneratorError, ValidationError
from generator.steps.api_rules import api_step
from generator.steps.k8s_schema import precompile, schema_step
from generator.steps.mutable import mutable_configmaps, mutable_step
from generator.steps.load import list_apps, list_envs, load_app_folder, load_patch_files, share_base_parses
from generator.io import index as render_index
from generator.io.inputs import Refused, forget_real_paths, is_dir
from generator.io import gitref
from generator.io.write import Plan, apply, locked, out_folder, plan, recover
from generator.io.heap import long_lived
from generator.io.memo import Memo, OutputMemo, clear_shared
from generator.io.parallel import cores, fork_beside, fork_map, fork_pool, split
from generator.model import ConfigMapDecl, Resource
from generator.io.output import KUSTOMIZATION, Files, file_name, kustomization
from generator.steps.namespaces import WELL_KNOWN_CLUSTER_SCOPED, Scopes, crd_scope, follow_step, namespace_step
from generator.steps.images import ImageEntry, ImageUse, images_step
from generator.steps.images import split as split_image
from generator.steps.patch import apply_patches, targets_any
from generator.steps.references import BUILTIN_POD_SPECS, Target, find_object_refs, find_refs, pod_spec_path, resolve
from generator.secrets.producers import scan_step, secret_step, secret_targets
from generator.steps.templating import Templates
from generator.steps.validate import validate
from generator import incremental
from generator.incremental import Diverged, Facts, Others, Spliced, spliced_order

ENV_APPS = "apps"
OUT = "out"


@dataclass
class RenderedEnv:
    name: str
    resources: list[Resource]
    files: Mapping[str, str]  # path relative to out/<env>/ -> file text (emitted on access)
    retained: list[Resource] = field(default_factory=list)  # superseded versions kept (ConfigMaps, Secret producers)
    warnings: list[GeneratorError] = field(default_factory=list)  # printed by the CLI; the render stands
    allowed: frozenset[AllowKey] = frozenset()  # allow-list entries that let a scanner finding through
    images: list[ImageUse] = field(default_factory=list)  # every container's image and its `images:` entry
    facts: dict[str, Facts] = field(default_factory=dict)  # per app rendered: what other apps see of it
    patch_apps: list[str | None] = field(default_factory=list)  # per patch of the environment: the app it changed
    apps: list[str] = field(default_factory=list)  # the environment's apps, in order
    previous: incremental.Previous | None = None  # an incremental render: the render it started from


Warn = Callable[[GeneratorError], None]


class Rendered(dict[str, Mapping[str, str]]):
    """The files of out/<env>/ by environment, and the allow-list entries that let a scanner
    finding through in those environments (`check` reports the others as no longer needed);
    per environment, its warnings and allowances (kept in the render index)."""

    def __init__(self, files: Mapping[str, Mapping[str, str]], allowed: frozenset[AllowKey] = frozenset(),
                 reports: Mapping[str, tuple[list[GeneratorError], frozenset[AllowKey]]] | None = None,
                 apps: Mapping[str, render_index.Apps] | None = None) -> None:
        super().__init__(files)
        self.allowed = allowed
        self.reports = dict(reports or {})
        self.apps = dict(apps or {})  # per environment, what the render index keeps of its apps

    def settle(self, out: Path) -> None:
        """out/<env>/ now holds each environment's files: let go of the objects they were
        emitted from (their texts are read back from out/ if asked for; `Files.settle`)."""
        for env, files in self.items():
            fresh = files.fresh if isinstance(files, Spliced) else files
            if isinstance(fresh, Files):
                fresh.settle(out / env)


@dataclass
class Repo:
    """A repo opened for rendering: its settings and a template environment."""

    root: Path
    config: RepoConfig
    templates: Templates
    cache: bool = True  # memoize parse results across renders (generator/memo.py)

    @classmethod
    def open(cls, root: Path, cache: bool = True) -> Repo:
        root = root.resolve()
        forget_real_paths()  # symlinks may have changed since an earlier render in this process
        render_index.start(root)  # record what the render reads from here on
        if not _top_folder(root, "base") and not _top_folder(root, "environments"):
            raise ConfigError(
                f"{root} has neither base/ nor environments/",
                hint="run in the repo's top folder or pass --repo DIR",
            )
        return cls(root, load_repo_config(root), Templates(root), cache)

    @cached_property
    def apps(self) -> list[str]:
        return list_apps(self.root, self.root / "base")

    @property
    def envs(self) -> list[str]:
        return list_envs(self.root, self.root / "environments")


def _top_folder(root: Path, name: str) -> bool:
    try:
        return is_dir(root, root / name)
    except Refused as exc:
        raise ConfigError(f"{name}/ {exc.reason}", file=name, hint=exc.hint) from None


def _selected_apps(repo: Repo, env: EnvConfig) -> list[str]:
    apps = repo.apps
    for field_, names in (("only", env.only or ()), ("exclude", env.exclude)):
        for i, name in enumerate(names):
            if name not in apps:
                raise env.doc.error(("apps", field_, i), f"unknown app {name!r}",
                                    hint=f"apps in base/: {', '.join(apps) or '(none)'}")
    if env.only is not None:
        return [a for a in apps if a in env.only]
    return [a for a in apps if a not in env.exclude]


def _context(repo: Repo, app_vars: dict[str, Any], env: EnvConfig, app: str) -> dict[str, Any]:
    ctx: dict[str, Any] = {**repo.config.vars, **app_vars, **env.vars, "env": env.name, "app": app}
    if env.namespace is not None:
        ctx["namespace"] = env.namespace
    return ctx


# Below this many apps an environment is loaded in one process even with --jobs: forking costs more.
PARALLEL_MIN_APPS = 200

# Resources, ConfigMap declarations with their content, and each app's `images:` entries.
Loaded = tuple[list[Resource], list[tuple[ConfigMapDecl, cms.Content]], dict[str, list[ImageEntry]]]


def _load_apps(repo: Repo, env: EnvConfig, apps: list[str], env_apps: set[str], memo: Memo | None) -> Loaded:
    """Read the apps' manifests and build their ConfigMaps' content (overlays included).
    `env_apps`: the apps with a folder under environments/<env>/apps/."""
    resources: list[Resource] = []
    configmaps: list[tuple[ConfigMapDecl, cms.Content]] = []
    images: dict[str, list[ImageEntry]] = {}
    overlays = {o.name: o for o in env.overlays}
    base_apps = set(repo.apps)
    charts = None
    for app in apps:
        folders = [f for f, there in ((repo.root / "base" / app, app in base_apps),
                                      (env.dir / ENV_APPS / app, app in env_apps)) if there]
        app_vars: dict[str, Any] = {}
        chart = None
        with render_index.app_scope(app):  # what is read in here is this app's input
            for folder in folders:
                config = load_app_config(repo.root, folder, app, memo)
                app_vars = {**app_vars, **config.vars}
                if config.images:
                    images.setdefault(app, []).extend(config.images)
                ctx = _context(repo, app_vars, env, app)
                builder = cms.Builder(repo.root, repo.templates, ctx)
                skip = frozenset(f.path.name for f in config.chart.values.files if f.path.parent == folder) if config.chart else frozenset()
                loaded = load_app_folder(repo.root, folder, app, repo.templates, ctx, memo, skip)
                resources += loaded.resources
                resources += [externalsecrets.to_resource(d, repo.templates, ctx) for d in config.external_secrets]
                for decl in (*config.configmaps, *loaded.configmaps):
                    content = cms.final_content(builder, decl, overlays.get(decl.name))
                    cms.validate_content(decl, content)
                    configmaps.append((decl, content))
                chart = chart_decl(chart, config.chart)
        if chart is not None:
            render_index.unindexable("Helm charts")  # Helm and its cache are inputs outside the repo
            charts = charts or chart_step(repo.root, repo.templates, env, repo.cache)
            charts.add(app, chart, ctx)
        elif app in env.chart_values:
            raise env.doc.error(("charts", app), f"app {app!r} has no `chart:` in this environment")
    for objects, decls, chart_ctx in charts.collect() if charts is not None else ():
        resources += objects
        builder = cms.Builder(repo.root, repo.templates, chart_ctx)
        for decl in decls:
            content = cms.final_content(builder, decl, overlays.get(decl.name))
            cms.validate_content(decl, content)
            configmaps.append((decl, content))
    return resources, configmaps, images


def env_apps(repo: Repo, env: EnvConfig) -> tuple[list[str], list[str]]:
    """The apps of an environment in render order, and those with a folder of their own there."""
    base_apps = set(repo.apps)
    own = list_apps(repo.root, env.dir / ENV_APPS)
    return _selected_apps(repo, env) + [a for a in own if a not in base_apps], own


def load_step(repo: Repo, env: EnvConfig, memo: Memo, workers: int = 1, only: frozenset[str] | None = None,
              listed: tuple[list[str], list[str]] | None = None) -> Loaded:
    """Load the environment's apps (`only`: just these, an incremental render; `listed`: what
    `env_apps` gave, when the caller has it)."""
    apps, env_apps_ = listed if listed is not None else env_apps(repo, env)
    check_env_values(env, apps)
    if only is not None:
        apps = [a for a in apps if a in only]
    chunks = workers if len(apps) >= PARALLEL_MIN_APPS else 1
    if chunks <= 1:
        return _load_apps(repo, env, apps, set(env_apps_), memo)
    slices = split(apps, chunks)

    def job(i: int) -> tuple[Loaded, dict[bytes, bytes], render_index.Reads | None]:
        loaded = _load_apps(repo, env, slices[i], set(env_apps_), memo)
        if chunks == 2 and i == 0:  # this process's half (fork_beside): its memo and reads are here already
            return loaded, {}, None
        # what a worker read goes back too: the render index must know every app's inputs
        return loaded, memo.parse_used, render_index.recorded()

    resources: list[Resource] = []
    configmaps: list[tuple[ConfigMapDecl, cms.Content]] = []
    images: dict[str, list[ImageEntry]] = {}
    # Two halves: this process loads the first while a forked one loads the second (only that
    # half's objects come back through the pipe); more: every part in a forked worker.
    parts = list(fork_beside(job)) if chunks == 2 else fork_map(job, chunks)
    for (res, cms_, images_), parsed, reads in parts:
        resources += res
        configmaps += cms_
        images.update(images_)
        memo.parse_used.update(parsed)
        render_index.merge(reads)
    return resources, configmaps, images


def configmap_step(
    repo: Repo, env: EnvConfig, decls: list[tuple[ConfigMapDecl, cms.Content]], others: Others | None = None,
) -> list[Resource]:
    # Names are unique per namespace, as in the API: the same name in two namespaces is two
    # ConfigMaps (only possible without an environment namespace, which would merge them).
    by_name: dict[tuple[str | None, str], ConfigMapDecl] = {}
    for decl, _ in decls:
        key = (env.namespace or _manifest_namespace(decl), decl.name)
        first = by_name.get(key)
        if first is not None:
            where = f" in namespace {key[0]!r}" if key[0] is not None else ""
            raise ConfigMapError(
                f"ConfigMap {decl.name!r} is declared twice{where}: here and at {first.origin}",
                file=decl.origin.file, line=decl.origin.line,
                hint="an environment changes a base ConfigMap through `configMaps:` in env.yaml",
            )
        by_name[key] = decl
    names = {name for _, name in by_name} | (others.configmap_names if others is not None else set())
    overlays = {o.name: o for o in env.overlays}
    for name in overlays:
        if name not in names:
            raise env.doc.error(
                ("configMaps", name), f"overlay targets ConfigMap {name!r}, which this environment does not have",
                hint=f"ConfigMaps here: {', '.join(sorted(names)) or '(none)'}; a ConfigMap that exists only "
                f"in this environment is declared in environments/{env.name}/apps/<app>/app.yaml",
            )
    hash_length = env.hash_length or repo.config.hash_length
    env_style = env.hash_style or repo.config.hash_style
    out: list[Resource] = []
    for decl, content in decls:
        found = overlays.get(decl.name)
        if found is not None and found.hashed is not None:
            decl.hashed = found.hashed
        # The most specific `hashStyle` wins: the overlay's, the declaration's, the environment's, the repo's.
        style = (found.hash_style if found is not None else None) or decl.hash_style or env_style
        resource = cms.to_resource(decl, content, hash_length, style)
        if env.namespace is not None:
            resource.metadata["namespace"] = env.namespace
        out.append(resource)
    return out


def _manifest_namespace(decl: ConfigMapDecl) -> str | None:
    meta = decl.manifest.get("metadata") if decl.manifest is not None else None
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    return str(ns) if ns is not None else None


def _keys(r: Resource) -> frozenset[str]:
    fields = ("data", "binaryData") + (("stringData",) if r.kind == "Secret" else ())
    return frozenset(k for f in fields if isinstance(r.obj.get(f), dict) for k in r.obj[f])


TargetIndex = dict[tuple[str, str | None, str], Target]


def reference_step(repo: Repo, env: EnvConfig, resources: list[Resource], others: Others | None = None,
                   imports: dict[str, set[tuple[str, str | None, str]]] | None = None) -> tuple[TargetIndex, TargetIndex]:
    """Check and rewrite every reference; returns the ConfigMaps and Secrets by final name, and
    those of `resources` by declared name. `imports` gets what each app looked up."""
    own: TargetIndex = {
        (r.kind, r.namespace, r.declared_name): Target(r.kind, r.declared_name, r.name, _keys(r), r)
        for r in resources
        if r.kind in ("ConfigMap", "Secret")
    }
    own.update(secret_targets(resources))  # SealedSecrets and ExternalSecrets produce Secrets
    targets = {**others.targets, **own} if others is not None else own
    if others is not None and len(targets) != len(others.targets) + len(own):
        raise Diverged("a ConfigMap or Secret name of a rendered app is another app's")
    external = repo.config.external.union(env.external)
    by_kind = {"ConfigMap": external.configmaps, "Secret": external.secrets}
    specs = BUILTIN_POD_SPECS + repo.config.pod_spec_paths
    for r in resources:
        path = pod_spec_path(r.obj, specs)
        refs = find_refs(r.obj, path) if path is not None else (
            find_object_refs(r.obj) if r.kind in ("Ingress", "ServiceAccount") else None)
        if refs is None:
            continue
        if imports is not None:
            imports.setdefault(r.app, set()).update((ref.target_kind, r.namespace, ref.name) for ref in refs)
        resolve(r, refs, targets, by_kind, env.name)
    return {(kind, ns, t.final_name): t for (kind, ns, _), t in targets.items()}, own


def layout_step(env: EnvConfig, resources: list[Resource]) -> Files:
    paths: list[str] = []
    owners: dict[str, Resource] = {}
    ordered = sorted(resources, key=lambda r: (r.app, r.kind, r.declared_name, r.namespace or ""))
    for r in ordered:
        path = file_name(r, env.namespace)
        if path in owners:
            raise ValidationError(
                f"{r.describe()} and {owners[path].describe()} (at {owners[path].origin}) would both be written to {path}",
                file=r.origin.file, line=r.origin.first_line,
                hint="rename one of them",
            )
        owners[path] = r
        paths.append(path)
    files = Files(dict(zip(paths, ordered)))
    files.add(KUSTOMIZATION, kustomization(paths))
    return files


def retention_step(repo: Repo, env: EnvConfig, resources: list[Resource], files: Files,
                   only: frozenset[str] | None = None) -> list[retention.Retained]:
    """Superseded versions of ConfigMaps and Secret producers to keep, from the history in
    out/<env>/ (and git's copy of it); `only`: of these apps' folders (an incremental render).

    Runs inside the render, so `render`, `check` and `diff` all see the same answer."""
    folder = f"{OUT}/{env.name}"

    def wanted(rel: str) -> bool:
        return retention.is_version_file(rel) and (only is None or rel.partition("/")[0] in only)

    history = retention.read_history(
        repo.root / folder, folder, unchanged=files, current=files.is_current,
        committed=gitref.committed(repo.root, folder, wanted), apps=sorted(only) if only is not None else None,
    )
    keep = env.retention if env.retention is not None else repo.config.retention
    return retention.supersede(resources, history, keep, env.namespace)


def render_env(repo: Repo, env_name: str, workers: int = 1, others: Others | None = None,
               only: frozenset[str] | None = None) -> RenderedEnv:
    """Render one environment; a large one is loaded by `workers` processes (see render_many).

    `only`, `others`: render just these apps, the rest standing in as their facts (an
    incremental render, generator/incremental.py; `Diverged` when that cannot give what a full
    render gives). The files of the others are then not in the result's `files`: the caller
    splices them in (`splice`)."""
    with long_lived():  # everything built here lives until the render ends
        return _render_env(repo, env_name, workers, others, only)


def _render_env(repo: Repo, env_name: str, workers: int, others: Others | None,
                only: frozenset[str] | None) -> RenderedEnv:
    memo = Memo.for_env(repo.root, env_name, repo.cache)  # (env.yaml's parse: 17 ms from it, 150 without at 1,000 apps)
    env = load_env_config(repo.root, repo.root / "environments" / env_name, memo)
    if memo.warm:
        workers = 1  # with parsing memoized, forking workers costs more than it saves (measured)
    if only is None:
        precompile()  # while the process is small (the schema step runs when it is largest)
    listed = env_apps(repo, env)
    apps = listed[0]
    resources, decls, app_images = load_step(repo, env, memo, workers, only, listed)
    facts: dict[str, Facts] = {a: Facts() for a in apps if only is None or a in only}
    scopes = Scopes.of(resources, (*WELL_KNOWN_CLUSTER_SCOPED, *repo.config.cluster_scoped))
    if others is not None:
        scopes = Scopes({**others.crds, **scopes.crds}, scopes.cluster_kinds)
    moves: dict[str, list[list[Any]]] = {}
    moved = namespace_step(resources, env.namespace, scopes, moves)
    if others is not None:
        moved = {k: frozenset(v) for k, v in _union(others.moved, moved).items()}
    patches = [*env.patches, *load_patch_files(repo.root, env.dir, repo.templates, _context(repo, {}, env, ""), memo)]
    mine = _own_patches(patches, others, resources)
    targeted: list[str] = []
    resources = apply_patches(resources, [patches[i] for i in mine], (d.name for d, _ in decls), env.name, targeted)
    patch_apps: list[str | None] = list(others.patch_apps) if others is not None else [None] * len(patches)
    for i, app in zip(mine, targeted):
        patch_apps[i] = app
    follow_step(resources, env.namespace, moved)
    images = images_step(resources, app_images, env.images, BUILTIN_POD_SPECS + repo.config.pod_spec_paths, env.name,
                         others.images if others is not None else None)
    configmaps = configmap_step(repo, env, decls, others)
    for decl, _ in decls:
        facts[decl.app].configmaps.append([env.namespace or _manifest_namespace(decl), decl.name])
    del decls  # their content now lives in the ConfigMaps: free the copies before emitting
    allowed = scan_step([*resources, *configmaps], repo.config.allow, memo)
    if others is None:  # parsing and scanning are done: store the memo now and free it before emitting
        memo.save()  # (not after an incremental render: rewriting it costs more than the few new entries save)
    memo.release()
    resources += configmaps
    secret_step(resources, env.hash_length or repo.config.hash_length)
    imports: dict[str, set[tuple[str, str | None, str]]] = {}
    targets, own_targets = reference_step(repo, env, resources, others, imports)
    schema_step(resources, patches)
    warnings = api_step(resources, patches, targets)
    warnings += mutable_step(resources, BUILTIN_POD_SPECS + repo.config.pod_spec_paths,
                            env.mutable_configmaps or repo.config.mutable_configmaps, patches,
                            others.mutable if others is not None else ())
    validate(resources)
    files = layout_step(env, resources)
    files.known = OutputMemo.for_env(repo.root, env_name, repo.cache)
    retained = retention_step(repo, env, resources, files, only)
    _collect(facts, resources, moves, patch_apps, images, own_targets, imports, files, retained)
    return RenderedEnv(env.name, resources, retention.with_retained(files, retained),
                       [r.resource for r in retained], list(warnings), allowed, images, facts, patch_apps, apps)


def _union(a: Mapping[tuple[str, str], set[str | None]], b: Mapping[tuple[str, str], frozenset[str | None]]
           ) -> dict[tuple[str, str], set[str | None]]:
    found = {k: set(v) for k, v in a.items()}
    for k, v in b.items():
        found.setdefault(k, set()).update(v)
    return found


def _own_patches(patches: list[Any], others: Others | None, resources: list[Resource]) -> list[int]:
    """The patches to apply: all of them, or (incremental) those that changed a rendered app
    last time; one that changed another app must not match a rendered object now."""
    if others is None:
        return list(range(len(patches)))
    if len(others.patch_apps) != len(patches):
        raise Diverged("the environment's patches changed")
    mine = []
    for i, app in enumerate(others.patch_apps):
        if app is not None and app not in others.apps:
            mine.append(i)
        elif targets_any(patches[i], resources):
            raise Diverged("a patch of another app now matches a rendered object")
    return mine


def _collect(facts: dict[str, Facts], resources: list[Resource], moves: Mapping[str, list[list[Any]]],
             patch_apps: Sequence[str | None], images: Sequence[ImageUse], own_targets: Mapping[Any, Target],
             imports: Mapping[str, set[tuple[str, str | None, str]]], files: Files,
             retained: Sequence[retention.Retained]) -> None:
    """What each rendered app's objects are to the rest of the environment (incremental.Facts)."""
    for r in resources:
        found = crd_scope(r)
        if found is not None:
            facts[r.app].crds.append(list(found))
        facts[r.app].names.append([r.kind, r.namespace, r.name])
    for app, moved in moves.items():
        facts[app].moved = moved
    for use in images:
        found_images = facts[use.app].images.setdefault(split_image(use.original)[0], [])
        if use.original not in found_images:
            found_images.append(use.original)
    for (kind, ns, declared), t in own_targets.items():
        if t.resource is not None:
            keys = sorted(t.keys) if t.keys is not None else None
            facts[t.resource.app].targets.append([kind, ns, declared, t.final_name, keys])
    for app, looked_up in imports.items():
        facts[app].imports = [list(k) for k in sorted(looked_up, key=lambda k: (k[0], k[1] or "", k[2]))]
    for r in mutable_configmaps(resources):
        facts[r.app].mutable.append([r.namespace, r.name])
    for path in files:
        source = files.source(path)
        if isinstance(source, Resource):
            facts[source.app].files.append([path, source.app, source.kind, source.declared_name, source.namespace or ""])
    index: dict[tuple[str, str, str], int] = {}
    for kept in retained:
        n = index[kept.lineage] = index.get(kept.lineage, -1) + 1
        facts[kept.resource.app].retained.append([kept.path, *kept.lineage, n])
        facts[kept.resource.app].names.append([kept.resource.kind, kept.resource.namespace, kept.resource.name])


def splice(rendered: RenderedEnv, others: Others, folder: Path, texts: Mapping[str, str] | None = None) -> Spliced:
    """The files of an incremental render (`rendered`: the changed apps) with every other app's
    files as the last render left them in `folder` (out/<env>/), in a full render's order."""
    fresh = rendered.files
    if not isinstance(fresh, Files):
        fresh = Files(dict(fresh))
    everything = {**others.apps, **rendered.facts}
    order = spliced_order(everything)
    fresh = fresh.without(KUSTOMIZATION)
    fresh.add(KUSTOMIZATION, kustomization(order))
    trusted = frozenset(p for f in others.apps.values() for p in [*(x[0] for x in f.files), *(x[0] for x in f.retained)])
    return Spliced(fresh, order + [KUSTOMIZATION], trusted, folder, frozenset(rendered.facts), texts)


def render_env_incremental(repo: Repo, env_name: str, workers: int = 1) -> RenderedEnv:
    """`render_env`, or when the render index says only some apps' own inputs changed since the
    last render (and out/<env>/ is as it left it), a render of just those apps spliced into the
    others' files (generator/incremental.py). Either way the files a full render gives."""
    found = render_index.previous(repo.root, env_name) if repo.cache else None
    if found is not None:
        body, changed = found
        prev = incremental.load_previous(body, changed)
        if prev is not None and not body.get("warnings") and not body.get("allowed"):
            rendered = _render_changed(repo, env_name, prev)
            if rendered is not None:
                return rendered
    return render_env(repo, env_name, workers)


def _render_changed(repo: Repo, env_name: str, prev: incremental.Previous,
                    texts: Mapping[str, str] | None = None) -> RenderedEnv | None:
    """The changed apps of `prev` rendered and spliced into the others' files (from out/<env>/,
    or `texts`), or None when that cannot give what a full render gives."""
    only = set(prev.changed)
    for _ in range(incremental.MAX_ROUNDS):
        others = prev.others(only)
        try:
            rendered = render_env(repo, env_name, 1, others, frozenset(only))
        except (GeneratorError, Diverged):
            return None  # the full render says what is wrong, or does what this cannot
        if rendered.warnings or rendered.allowed or rendered.apps != prev.order:
            return None
        if any(not incremental.same_shape(prev.apps.get(a), rendered.facts[a]) for a in only):
            return None
        if {tuple(n) for a in only for n in rendered.facts[a].names} & others.names:
            return None
        moved = set().union(*(incremental.changed_targets(prev.apps.get(a), rendered.facts[a]) for a in only))
        more = prev.importers(moved, only)
        if not more:
            rendered.files = splice(rendered, others, repo.root / OUT / env_name, texts)
            rendered.previous = prev
            return rendered
        only |= more
    return None


def index_apps(rendered: RenderedEnv) -> render_index.Apps:
    """What the render index keeps of the apps of a render (all of them after an incremental one)."""
    facts = {a: f.data() for a, f in rendered.facts.items()}
    prev = rendered.previous
    if prev is None:
        return render_index.Apps(facts, list(rendered.patch_apps), list(rendered.apps))
    merged = {a: (facts[a] if a in facts else prev.apps[a].data()) for a in prev.order}
    return render_index.Apps(merged, list(rendered.patch_apps), list(prev.order), prev.body or None, frozenset(facts))


@dataclass
class Recall:
    """What `watch` keeps of its last render of an environment to render the next change of
    some apps incrementally, in memory: each app's facts, which input paths are whose, and the
    files (out/<env>/ may not hold them: watch previews without writing)."""

    facts: dict[str, Facts]
    patch_apps: list[str | None]
    order: list[str]
    owners: dict[str, str]  # input path -> the app it belongs to
    texts: dict[str, str]
    inputs: set[str]  # every input path (the environment's too)


def recall(apps: render_index.Apps, reads: render_index.Reads, env: str, texts: Mapping[str, str],
           before: Recall | None = None) -> Recall | None:
    """The Recall of a render (`before`: the one an incremental render started from); None after
    a render with charts (not indexable, so not incremental either)."""
    if reads.unindexable:
        return None
    owners = render_index.owners(reads, env)
    inputs = set(reads.paths)
    # After an incremental render, what the render it started from looked at and this one did
    # not: the other apps' inputs, and the environment's inputs only they read (a shared data
    # file). From memory (watch's previous render), or from the render index.
    if before is not None and apps.rendered:
        inputs |= {p for p in before.inputs if before.owners.get(p) not in apps.rendered}
        owners = {**{p: a for p, a in before.owners.items() if a not in apps.rendered}, **owners}
    elif apps.previous is not None:
        for path, app in render_index.stored_inputs(reads.root, env, apps.previous):
            if app is None or app not in apps.rendered:
                inputs.add(path)
                if app is not None:
                    owners.setdefault(path, app)
    facts = {a: incremental.Facts.of(f) for a, f in apps.facts.items()}
    return Recall(facts, list(apps.patch_apps), list(apps.order), owners, dict(texts), inputs)


def render_recalled(repo: Repo, env_name: str, last: Recall, changed: Iterable[str]) -> RenderedEnv | None:
    """The render of `env_name` after `changed` input paths changed since `last`, done for just
    the apps they belong to; None when one of them belongs to the whole environment, or the
    apps cannot be rendered alone (then render it all)."""
    apps = set()
    for path in changed:
        app = last.owners.get(path)
        if app is None:
            return None
        apps.add(app)
    prev = incremental.Previous(last.facts, last.patch_apps, last.order, apps, {})
    return _render_changed(repo, env_name, prev, last.texts)


T = TypeVar("T")


@dataclass
class EnvResult(Generic[T]):
    """What a job made of one rendered environment (in the process that rendered it), with the
    render's warnings and allowances, and what the render index keeps of its apps."""

    env: str
    value: T
    warnings: list[GeneratorError]
    allowed: frozenset[AllowKey]
    reads: render_index.Reads | None = None  # what a forked worker read (merged into the parent's)
    apps: render_index.Apps | None = None


def each_env(repo: Repo, envs: Sequence[str], job: Callable[[RenderedEnv], T],
             jobs: int | None = None, warn: Warn | None = None, incremental_: bool = False) -> list[EnvResult[T]]:
    """Render each environment and hand it to `job` in the process that rendered it; the results
    in the order of `envs`. Several environments are rendered in parallel, one at a time per
    forked worker (up to `jobs`, default every core), and only `job`'s result comes back to this
    process: the render's own objects never cross a pipe. A single large environment rendered
    cold (no parse memo) is loaded in two halves, this process and a forked one (`load_step`;
    8% less wall time at 1,000 apps, the largest process no larger), or in `jobs` parts when
    given; `jobs` 1: one process.
    `incremental_`: render only the apps whose inputs changed where the render index allows
    (`render_env_incremental`).

    Errors are raised for the first failing environment in the order given, so the message
    does not depend on scheduling; warnings go to `warn` in that order too (in one process, as
    each environment is rendered). `job` must not raise for a problem of its own that should
    come after every environment's render errors: it returns it instead.
    """
    total = jobs or cores()
    workers = min(len(envs), total)
    render = render_env_incremental if incremental_ else render_env
    if workers <= 1:
        results = []
        for e in envs:  # keep only the job's result (and the allowances), not the objects
            rendered = render(repo, e, jobs or min(2, total))
            _tell(rendered.warnings, warn)
            results.append(EnvResult(e, job(rendered), rendered.warnings, rendered.allowed, None, index_apps(rendered)))
            del rendered
        return results

    def task(i: int) -> EnvResult[T]:
        rendered = render(Repo.open(repo.root, repo.cache), envs[i])
        value: Any = job(rendered)
        if isinstance(value, Spliced):  # the texts of the apps rendered, and where the others' are
            value = _Shipped(dict(value.fresh), value.order, value.trusted, value.folder, value.only)
        elif isinstance(value, Files):  # crosses the pipe as its texts, not as the objects they come from
            value = dict(value)
        return EnvResult(envs[i], value, rendered.warnings, rendered.allowed, render_index.recorded(),
                         index_apps(rendered))

    # Every environment parses the same base manifests: parse them once here, and the fork
    # hands the results to every worker (memo.share_parse). Likewise the compiled schemas. Not
    # when every environment has a render index to render incrementally from: then the workers
    # parse a few apps' files at most (and the decoded indexes go to them with the fork).
    if not (incremental_ and repo.cache and all(render_index.has_apps(repo.root, e) for e in envs)):
        share_base_parses(repo.root, repo.apps)
        precompile()
    try:
        done = fork_pool(task, len(envs), workers)  # the pool freezes the objects the workers share
    finally:
        clear_shared()
    for result in done:
        _tell(result.warnings, warn)
        render_index.merge(result.reads)
        result.reads = None
    return done


@dataclass
class _Shipped:
    """An incremental render's files as they cross the pipe from a worker (see `Spliced`)."""

    fresh: dict[str, str]
    order: list[str]
    trusted: frozenset[str]
    folder: Path
    only: frozenset[str]


def render_many(repo: Repo, envs: Sequence[str], jobs: int | None = None,
                warn: Warn | None = None, incremental_: bool = True) -> Rendered:
    """Render environments into files per env (see `each_env`): from forked workers the texts of
    every file, else the files as rendered, whose texts are emitted when asked for (so the
    objects are kept, not every text at once). `incremental_`: render only the apps whose
    inputs changed where the render index allows."""
    done = each_env(repo, envs, lambda rendered: rendered.files, jobs, warn, incremental_)
    files: dict[str, Mapping[str, str]] = {}
    for r in done:
        value: Any = r.value
        if isinstance(value, _Shipped):
            value = Spliced(Files(value.fresh, OutputMemo.for_env(repo.root, r.env, repo.cache)), value.order,
                            value.trusted, value.folder, value.only)
        files[r.env] = value
    return Rendered(files, frozenset().union(*(r.allowed for r in done)),
                    {r.env: (r.warnings, r.allowed) for r in done},
                    {r.env: r.apps for r in done if r.apps is not None})


def _tell(warnings: list[GeneratorError], warn: Warn | None) -> None:
    if warn is not None:
        for w in warnings:
            warn(w)


@dataclass
class Published:
    rendered: Rendered
    todo: Plan
    completed: int  # files of an interrupted publication completed first (0: none was pending)


@long_lived()  # render, emit and compare: the objects live until the end
def publish(repo: Repo, envs: Sequence[str], jobs: int | None = None, stale: Sequence[str] = (),
            warn: Warn | None = None, rendered: Rendered | None = None) -> Published:
    """Render `envs` and publish them into out/ through the journal (generator/io/write.py), also
    deleting the `stale` environments' folders. Rendered before the lock, which creates out/, so
    an input error leaves no trace; a publication an interrupted render left is completed first,
    and then the render is redone from the completed out/ (retention reads it). `rendered`: the
    caller's render of `envs`, when it has one already (`watch --write`)."""
    out = out_folder(repo.root)
    if rendered is None:
        rendered = render_many(repo, envs, jobs, warn)
    with locked(out):
        completed = recover(out)
        if completed:
            rendered = render_many(repo, envs, jobs)
        todo = plan(out, rendered, stale)
        apply(out, todo, halves=jobs != 1)
        rendered.settle(out)  # (the render index is built next: not while every object is alive)
        save_index(repo, rendered, envs, todo)
    return Published(rendered, todo, completed)


def save_index(repo: Repo, rendered: Rendered, envs: Sequence[str], todo: Plan | None = None) -> None:
    """`out/<env>/` now holds exactly what `rendered` has for each of `envs`: save their render
    indexes, so an unchanged repo is not rendered again (generator/io/index.py). Best effort.
    `todo`: the plan that listed (and wrote) out/, whose view of it spares walking it again."""
    reads = render_index.recorded()
    if reads is None or not repo.cache:
        return
    import json

    known = repo.envs
    out = repo.root / OUT
    try:
        orphans = any(p.is_dir() and p.name not in known for p in out.iterdir()) if out.is_dir() else False
    except OSError:
        return
    keys = tuple(json.dumps(list(a.key)) for a in repo.config.allow)
    for env in envs:
        warnings, allowed = rendered.reports.get(env, ([], frozenset()))
        report = render_index.Report(
            len(rendered[env]), tuple(w.render("warning") for w in warnings),
            tuple(sorted(json.dumps(list(k)) for k in allowed)), keys, tuple(known), not orphans,
            tuple(rendered[env]),
        )
        # (an incremental render's plan listed only the apps it rendered: the index then keeps
        # the other apps' out/ entries from the render it started from)
        partial = isinstance(rendered[env], Spliced)
        outputs = todo.out_paths(repo.root / OUT, env) if todo is not None and not partial else None
        render_index.save(repo.root, env, reads, report, outputs, rendered.apps.get(env))
