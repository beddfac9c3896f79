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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from generator.charts.hookup import chart_decl, chart_step, check_env_values
from generator.steps import configmaps as cms
from generator.secrets import external as externalsecrets
from generator.steps import retention
from generator.config import AllowKey, EnvConfig, RepoConfig, load_app_config, load_env_config, load_repo_config
from generator.errors import ConfigError, ConfigMapError, GeneratorError, ValidationError
from generator.steps.api_rules import api_step
from generator.steps.k8s_schema import precompile, schema_step
from generator.steps.mutable import mutable_step
from generator.steps.load import list_apps, list_envs, load_app_folder, load_patch_files, share_base_parses
from generator.io import index as render_index
from generator.io.inputs import Refused, forget_real_paths, is_dir
from generator.io import gitref
from generator.io.write import Plan, apply, locked, out_folder, plan, recover
from generator.io.heap import long_lived
from generator.io.memo import Memo, OutputMemo, clear_shared
from generator.io.parallel import cores, fork_map, split
from generator.model import ConfigMapDecl, Resource
from generator.io.output import KUSTOMIZATION, Files, file_name, kustomization
from generator.steps.namespaces import WELL_KNOWN_CLUSTER_SCOPED, Scopes, follow_step, namespace_step
from generator.steps.images import ImageEntry, ImageUse, images_step
from generator.steps.patch import apply_patches
from generator.steps.references import BUILTIN_POD_SPECS, Target, find_object_refs, find_refs, pod_spec_path, resolve
from generator.secrets.producers import scan_step, secret_step, secret_targets
from generator.steps.templating import Templates
from generator.steps.validate import validate

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


Warn = Callable[[GeneratorError], None]


class Rendered(dict[str, Mapping[str, str]]):
    """The files of out/<env>/ by environment, and the allow-list entries that let a scanner
    finding through in those environments (`check` reports the others as no longer needed);
    per environment, its warnings and allowances (kept in the render index)."""

    def __init__(self, files: Mapping[str, Mapping[str, str]], allowed: frozenset[AllowKey] = frozenset(),
                 reports: Mapping[str, tuple[list[GeneratorError], frozenset[AllowKey]]] | None = None) -> None:
        super().__init__(files)
        self.allowed = allowed
        self.reports = dict(reports or {})


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


def load_step(repo: Repo, env: EnvConfig, memo: Memo, workers: int = 1) -> Loaded:
    base_apps = set(repo.apps)
    env_apps = list_apps(repo.root, env.dir / ENV_APPS)
    apps = _selected_apps(repo, env) + [a for a in env_apps if a not in base_apps]
    check_env_values(env, apps)
    chunks = workers if len(apps) >= PARALLEL_MIN_APPS else 1
    if chunks <= 1:
        return _load_apps(repo, env, apps, set(env_apps), memo)
    slices = split(apps, chunks)

    def job(i: int) -> tuple[Loaded, dict[bytes, bytes]]:
        return _load_apps(repo, env, slices[i], set(env_apps), memo), memo.parse_used

    resources: list[Resource] = []
    configmaps: list[tuple[ConfigMapDecl, cms.Content]] = []
    images: dict[str, list[ImageEntry]] = {}
    for (res, cms_, images_), parsed in fork_map(job, chunks):
        resources += res
        configmaps += cms_
        images.update(images_)
        memo.parse_used.update(parsed)
    return resources, configmaps, images


def configmap_step(
    repo: Repo, env: EnvConfig, decls: list[tuple[ConfigMapDecl, cms.Content]]
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
    names = {name for _, name in by_name}
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


def reference_step(repo: Repo, env: EnvConfig, resources: list[Resource]) -> dict[tuple[str, str | None, str], Target]:
    """Check and rewrite every reference; returns the ConfigMaps and Secrets by final name."""
    targets = {
        (r.kind, r.namespace, r.declared_name): Target(r.kind, r.declared_name, r.name, _keys(r), r)
        for r in resources
        if r.kind in ("ConfigMap", "Secret")
    }
    targets.update(secret_targets(resources))  # SealedSecrets and ExternalSecrets produce Secrets
    external = repo.config.external.union(env.external)
    by_kind = {"ConfigMap": external.configmaps, "Secret": external.secrets}
    specs = BUILTIN_POD_SPECS + repo.config.pod_spec_paths
    for r in resources:
        path = pod_spec_path(r.obj, specs)
        if path is not None:
            resolve(r, find_refs(r.obj, path), targets, by_kind, env.name)
        elif r.kind in ("Ingress", "ServiceAccount"):
            resolve(r, find_object_refs(r.obj), targets, by_kind, env.name)
    return {(kind, ns, t.final_name): t for (kind, ns, _), t in targets.items()}


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


def retention_step(repo: Repo, env: EnvConfig, resources: list[Resource], files: Files) -> list[retention.Retained]:
    """Superseded versions of ConfigMaps and Secret producers to keep, from the history in
    out/<env>/ (and git's copy of it).

    Runs inside the render, so `render`, `check` and `diff` all see the same answer."""
    folder = f"{OUT}/{env.name}"
    history = retention.read_history(
        repo.root / folder, folder, unchanged=files, current=files.is_current,
        committed=gitref.committed(repo.root, folder, retention.is_version_file),
    )
    keep = env.retention if env.retention is not None else repo.config.retention
    return retention.supersede(resources, history, keep, env.namespace)


def render_env(repo: Repo, env_name: str, workers: int = 1) -> RenderedEnv:
    """Render one environment; a large one is loaded by `workers` processes (see render_many)."""
    with long_lived():  # everything built here lives until the render ends
        return _render_env(repo, env_name, workers)


def _render_env(repo: Repo, env_name: str, workers: int) -> RenderedEnv:
    memo = Memo.for_env(repo.root, env_name, repo.cache)
    env = load_env_config(repo.root, repo.root / "environments" / env_name, memo)
    if memo.warm:
        workers = 1  # with parsing memoized, forking workers costs more than it saves (measured)
    precompile()  # while the process is small (the schema step runs when it is largest)
    resources, decls, app_images = load_step(repo, env, memo, workers)
    scopes = Scopes.of(resources, (*WELL_KNOWN_CLUSTER_SCOPED, *repo.config.cluster_scoped))
    moved = namespace_step(resources, env.namespace, scopes)
    patches = [*env.patches, *load_patch_files(repo.root, env.dir, repo.templates, _context(repo, {}, env, ""), memo)]
    resources = apply_patches(resources, patches, (d.name for d, _ in decls), env.name)
    follow_step(resources, env.namespace, moved)
    images = images_step(resources, app_images, env.images, BUILTIN_POD_SPECS + repo.config.pod_spec_paths, env.name)
    configmaps = configmap_step(repo, env, decls)
    del decls  # their content now lives in the ConfigMaps: free the copies before emitting
    allowed = scan_step([*resources, *configmaps], repo.config.allow, memo)
    memo.save()  # parsing and scanning are done: store the memo now and free it before emitting
    memo.release()
    resources += configmaps
    secret_step(resources, env.hash_length or repo.config.hash_length)
    targets = reference_step(repo, env, resources)
    schema_step(resources, patches)
    warnings = api_step(resources, patches, targets)
    warnings += mutable_step(resources, BUILTIN_POD_SPECS + repo.config.pod_spec_paths,
                            env.mutable_configmaps or repo.config.mutable_configmaps, patches)
    validate(resources)
    files = layout_step(env, resources)
    files.known = OutputMemo.for_env(repo.root, env_name, repo.cache)
    retained = retention_step(repo, env, resources, files)
    return RenderedEnv(env.name, resources, retention.with_retained(files, retained),
                       [r.resource for r in retained], list(warnings), allowed, images)


def _render_files(root: Path, env_name: str, cache: bool) -> tuple[
        str, dict[str, str], list[GeneratorError], frozenset[AllowKey], render_index.Reads | None]:
    # Sent back to the parent as texts (not the objects they are emitted from), with what it read.
    rendered = render_env(Repo.open(root, cache), env_name)
    return env_name, dict(rendered.files), rendered.warnings, rendered.allowed, render_index.recorded()


def render_many(repo: Repo, envs: Sequence[str], jobs: int | None = None,
                warn: Warn | None = None) -> Rendered:
    """Render environments into files per env: one environment per process when there are
    several (up to `jobs`, default every core). A single environment's apps are split across
    processes only when `jobs` is given: that buys little time (about 6% at 1,000 apps, as
    loading is the only part split) for about 30 MB more memory in the workers.

    Errors are raised for the first failing environment in the order given, so the message
    does not depend on scheduling; warnings go to `warn` in that order too.
    """
    total = jobs or cores()
    workers = min(len(envs), total)
    if workers <= 1:
        results = []
        for e in envs:  # keep only the files (and the allowances), not the objects
            rendered = render_env(repo, e, jobs or 1)
            _tell(rendered.warnings, warn)
            results.append((e, rendered.files, rendered.warnings, rendered.allowed))
            del rendered
        return Rendered({env: files for env, files, _, _ in results}, frozenset().union(*(a for _, _, _, a in results)),
                        {env: (w, a) for env, _, w, a in results})
    import gc
    from concurrent.futures import ProcessPoolExecutor  # only here: the import is costly
    from multiprocessing import get_context

    # Every environment parses the same base manifests: parse them once here, and the fork
    # hands the results to every worker (memo.share_parse).
    share_base_parses(repo.root, repo.apps)
    gc.freeze()  # the forked workers share these objects' pages; a collection would copy them
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            futures = [pool.submit(_render_files, repo.root, e, repo.cache) for e in envs]
            done = [f.result() for f in futures]
    finally:
        gc.unfreeze()
        clear_shared()
    for _, _, warnings, _, reads in done:
        _tell(warnings, warn)
        render_index.merge(reads)
    return Rendered({env: files for env, files, _, _, _ in done}, frozenset().union(*(a for _, _, _, a, _ in done)),
                    {env: (w, a) for env, _, w, a, _ in done})


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
        apply(out, todo)
        save_index(repo, rendered, envs)
    return Published(rendered, todo, completed)


def save_index(repo: Repo, rendered: Rendered, envs: Sequence[str]) -> None:
    """`out/<env>/` now holds exactly what `rendered` has for each of `envs`: save their render
    indexes, so an unchanged repo is not rendered again (generator/io/index.py). Best effort."""
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
        render_index.save(repo.root, env, reads, report)
