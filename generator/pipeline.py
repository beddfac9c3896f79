"""The render pipeline for one environment, as a chain of named steps:

load -> namespace -> patch -> configmaps (overlay, template, hash) -> references -> validate -> lay out

Every step works on `Resource` values that remember their source file. Nothing is written
here: `render_env` returns the files of `out/<env>/`, and the CLI writes them only when every
environment rendered.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from generator import configmaps as cms
from generator.config import EnvConfig, RepoConfig, load_app_config, load_env_config, load_repo_config
from generator.errors import ConfigError, ConfigMapError, ValidationError
from generator.load import list_apps, list_envs, load_app_folder, load_patch_files
from generator.model import CLUSTER_SCOPED_KINDS, ConfigMapDecl, Resource
from generator.output import KUSTOMIZATION, file_name, kustomization, render_file
from generator.patch import apply_patches
from generator.references import BUILTIN_POD_SPECS, Target, find_refs, pod_spec_path, resolve
from generator.templating import Templates
from generator.validate import validate

ENV_APPS = "apps"


@dataclass
class RenderedEnv:
    name: str
    resources: list[Resource]
    files: dict[str, str]  # path relative to out/<env>/ -> file text


@dataclass
class Repo:
    """A repo opened for rendering: its settings and a template environment."""

    root: Path
    config: RepoConfig
    templates: Templates

    @classmethod
    def open(cls, root: Path) -> Repo:
        root = root.resolve()
        if not (root / "base").is_dir() and not (root / "environments").is_dir():
            raise ConfigError(
                f"{root} has neither base/ nor environments/",
                hint="run in the repo's top folder or pass --repo DIR",
            )
        return cls(root, load_repo_config(root), Templates(root))

    @property
    def apps(self) -> list[str]:
        return list_apps(self.root / "base")

    @property
    def envs(self) -> list[str]:
        return list_envs(self.root / "environments")


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


def load_step(repo: Repo, env: EnvConfig) -> tuple[list[Resource], list[tuple[ConfigMapDecl, cms.Builder]]]:
    resources: list[Resource] = []
    decls: list[tuple[ConfigMapDecl, cms.Builder]] = []
    env_apps_dir = env.dir / ENV_APPS
    env_only = [a for a in list_apps(env_apps_dir) if a not in repo.apps]
    for app in _selected_apps(repo, env) + env_only:
        folders = [f for f in (repo.root / "base" / app, env_apps_dir / app) if f.is_dir()]
        app_vars: dict[str, Any] = {}
        for folder in folders:
            config = load_app_config(repo.root, folder, app)
            app_vars = {**app_vars, **config.vars}
            ctx = _context(repo, app_vars, env, app)
            builder = cms.Builder(repo.root, repo.templates, ctx)
            loaded = load_app_folder(repo.root, folder, app, repo.templates, ctx)
            resources += loaded.resources
            decls += [(d, builder) for d in (*config.configmaps, *loaded.configmaps)]
    return resources, decls


def namespace_step(resources: list[Resource], namespace: str | None) -> None:
    if namespace is None:
        return
    for r in resources:
        if r.kind not in CLUSTER_SCOPED_KINDS:
            r.metadata["namespace"] = namespace


def configmap_step(
    repo: Repo, env: EnvConfig, decls: list[tuple[ConfigMapDecl, cms.Builder]]
) -> list[Resource]:
    by_name: dict[str, ConfigMapDecl] = {}
    for decl, _ in decls:
        first = by_name.get(decl.name)
        if first is not None:
            raise ConfigMapError(
                f"ConfigMap {decl.name!r} is declared twice: here and at {first.origin}",
                file=decl.origin.file, line=decl.origin.line,
                hint="an environment changes a base ConfigMap through `configMaps:` in env.yaml",
            )
        by_name[decl.name] = decl
    overlays = {o.name: o for o in env.overlays}
    for name in overlays:
        if name not in by_name:
            raise env.doc.error(
                ("configMaps", name), f"overlay targets ConfigMap {name!r}, which this environment does not have",
                hint=f"ConfigMaps here: {', '.join(sorted(by_name)) or '(none)'}; a ConfigMap that exists only "
                f"in this environment is declared in environments/{env.name}/apps/<app>/app.yaml",
            )
    hash_length = env.hash_length or repo.config.hash_length
    out: list[Resource] = []
    for decl, builder in decls:
        found = overlays.get(decl.name)
        if found is not None and found.hashed is not None:
            decl.hashed = found.hashed
        content = cms.final_content(builder, decl, found)
        cms.validate_content(decl, content)
        resource = cms.to_resource(decl, content, hash_length)
        if env.namespace is not None:
            resource.metadata["namespace"] = env.namespace
        out.append(resource)
    return out


def _keys(r: Resource) -> frozenset[str]:
    fields = ("data", "binaryData") + (("stringData",) if r.kind == "Secret" else ())
    return frozenset(k for f in fields if isinstance(r.obj.get(f), dict) for k in r.obj[f])


def reference_step(repo: Repo, env: EnvConfig, resources: list[Resource]) -> None:
    targets = {
        (r.kind, r.namespace, r.declared_name): Target(r.kind, r.declared_name, r.name, _keys(r), r)
        for r in resources
        if r.kind in ("ConfigMap", "Secret")
    }
    external = repo.config.external.union(env.external)
    by_kind = {"ConfigMap": external.configmaps, "Secret": external.secrets}
    specs = BUILTIN_POD_SPECS + repo.config.pod_spec_paths
    for r in resources:
        path = pod_spec_path(r.obj, specs)
        if path is not None:
            resolve(r, find_refs(r.obj, path), targets, by_kind, env.name)


def layout_step(env: EnvConfig, resources: list[Resource]) -> dict[str, str]:
    files: dict[str, str] = {}
    owners: dict[str, Resource] = {}
    for r in sorted(resources, key=lambda r: (r.app, r.kind, r.declared_name, r.namespace or "")):
        path = file_name(r, env.namespace)
        if path in owners:
            raise ValidationError(
                f"{r.describe()} and {owners[path].describe()} (at {owners[path].origin}) would both be written to {path}",
                file=r.origin.file, line=r.origin.first_line,
                hint="rename one of them",
            )
        owners[path] = r
        files[path] = render_file(r)
    files[KUSTOMIZATION] = kustomization(list(files))
    return files


def render_env(repo: Repo, env_name: str) -> RenderedEnv:
    env = load_env_config(repo.root, repo.root / "environments" / env_name)
    resources, decls = load_step(repo, env)
    namespace_step(resources, env.namespace)
    patches = [*env.patches, *load_patch_files(repo.root, env.dir, repo.templates, _context(repo, {}, env, ""))]
    resources = apply_patches(resources, patches, (d.name for d, _ in decls), env.name)
    resources += configmap_step(repo, env, decls)
    reference_step(repo, env, resources)
    validate(resources)
    return RenderedEnv(env.name, resources, layout_step(env, resources))


def _render_files(root: Path, env_name: str) -> tuple[str, dict[str, str]]:
    return env_name, render_env(Repo.open(root), env_name).files


def render_many(repo: Repo, envs: Sequence[str], jobs: int | None = None) -> dict[str, dict[str, str]]:
    """Render environments (in parallel processes when there are several) into files per env.

    Errors are raised for the first failing environment in the order given, so the message
    does not depend on scheduling.
    """
    workers = min(len(envs), jobs or os.cpu_count() or 1)
    if workers <= 1:
        return {e: render_env(repo, e).files for e in envs}
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
        futures = [pool.submit(_render_files, repo.root, e) for e in envs]
        return dict(f.result() for f in futures)
