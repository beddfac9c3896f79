"""Which source decides a value of an environment, and the edit that changes it there.

- An image: the environment's `images:` entry for the image's name (env.yaml), added when there
  is none (an entry applies after patches and templates, so it decides).
- A ConfigMap key: the overlay literal in env.yaml (`configMaps.<name>.literals.<key>`), added
  when the key comes from the base; a key that an overlay file sets is refused (edit that file),
  one that the overlay removes is taken off `remove:`.
- Replicas: the last patch of the environment that sets `spec.replicas` (env.yaml or
  `patches/*.yaml`), else `spec.replicas` added to the env.yaml patch of that object, else a new
  patch appended to env.yaml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.config import ENV_FILE, EnvConfig, load_env_config, rel
from generator.edit.files import APPEND, DELETE, SET, Edit
from generator.errors import EditError, TargetError
from generator.hints import close_matches
from generator.model import Resource
from generator.pipeline import RenderedEnv, Repo, render_env
from generator.steps.images import ImageEntry, ImageUse, join, split
from generator.steps.load import PATCHES_DIR, manifest_files
from generator.io.inputs import read_text
from generator.io.yaml_io import load_documents

REPLICA_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "Rollout", "CloneSet")


@dataclass
class EnvView:
    """One environment as `set` and `promote` see it: its env.yaml and a fresh render."""

    repo: Repo
    config: EnvConfig
    rendered: RenderedEnv

    @classmethod
    def load(cls, repo: Repo, env: str) -> EnvView:
        return cls(repo, load_env_config(repo.root, repo.root / "environments" / env), render_env(repo, env))

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def env_file(self) -> Path:
        return self.config.dir / ENV_FILE

    @property
    def env_shown(self) -> str:
        return rel(self.repo.root, self.env_file)

    def edit(self, op: str, path: tuple[str | int, ...], value: Any = None, why: str = "") -> Edit:
        return Edit(self.env_file, self.env_shown, op, path, value, why)


def _candidates(names: Sequence[str]) -> str:
    return ", ".join(sorted(set(names))) or "(none)"


def _unknown(what: str, name: str, known: Sequence[str], env: str) -> TargetError:
    guess = close_matches(name, sorted(set(known)), n=1)
    hint = (f"did you mean {guess[0]!r}? " if guess else "") + f"{what}s in {env}: {_candidates(known)}"
    return TargetError(f"no {what} {name!r} in environment {env!r}", hint=hint)


# ---------------------------------------------------------------- images


def image_name_of(view: EnvView, target: str) -> str:
    """The image name (as the manifests write it, no tag) that `target` means.

    `target` is an image name, an `images:` entry name, a container name, or the last part of
    an image name (`engine` for ghcr.io/exchange/engine); several meanings are refused."""
    uses = view.rendered.images
    names = {split(u.original)[0] for u in uses}
    if target in names:
        return target
    by_final = {split(u.original)[0] for u in uses if split(u.final)[0] == target}  # the name after `images:`
    by_container = {split(u.original)[0] for u in uses if u.container == target}
    by_tail = {split(u.original)[0] for u in uses
               if split(u.original)[0].rsplit("/", 1)[-1] == target or split(u.final)[0].rsplit("/", 1)[-1] == target}
    for found in (by_final, by_container, by_tail):
        if len(found) == 1:
            return found.pop()
        if len(found) > 1:
            listed = "; ".join(f"{n} ({', '.join(sorted(_users(uses, n)))})" for n in sorted(found))
            raise TargetError(f"{target!r} is ambiguous in environment {view.name!r}: it could be {listed}",
                              hint="name the image in full, e.g. gitops-gen set image --env "
                              f"{view.name} {sorted(found)[0]}=NEW-IMAGE")
    raise _unknown("image", target, sorted(names), view.name)


def _users(uses: Sequence[ImageUse], name: str) -> set[str]:
    return {f"{u.kind}/{u.name} {u.container}" for u in uses if split(u.original)[0] == name}


def plan_image(view: EnvView, target: str, image: str) -> list[Edit]:
    """Edits that make every container of image `target` run `image` in this environment.

    `image` is `[NAME][:TAG][@DIGEST]`; without a name the current one is kept."""
    name = image_name_of(view, target)
    new_name, tag, digest = split(image) if not image.startswith((":", "@")) else ("",) + split("x" + image)[1:]
    if not (new_name or tag or digest):
        raise TargetError(f"{image!r} names no image, tag or digest", hint="e.g. engine=ghcr.io/exchange/engine:1.5.0")
    current = next(u for u in view.rendered.images if split(u.original)[0] == name)
    final_name = new_name or split(current.final)[0]
    entries = {e.name: (i, e) for i, e in enumerate(view.config.images)}
    inherited = current.entry if current.entry is not None and current.entry.scope == "app" else None
    if not (tag or digest) and inherited is not None:  # an env entry replaces the app's: keep its tag
        tag, digest = inherited.new_tag or "", inherited.digest or ""
    fields = {"newName": final_name if final_name != name else None, "newTag": tag or None, "digest": digest or None}
    wanted = join(final_name, tag, digest) if (tag or digest) else None
    if all(u.final == wanted for u in view.rendered.images if split(u.original)[0] == name):
        return []  # every container of that image already runs it
    why = f"{view.name}: image {name} -> {join(final_name, tag, digest) if (tag or digest) else final_name}"
    if name not in entries:
        item = {"name": name, **{k: v for k, v in fields.items() if v is not None}}
        return [view.edit(APPEND, ("images",), item, why)]
    index, entry = entries[name]
    return _entry_edits(view, index, entry, fields, keep_name=not new_name, why=why)


def _entry_edits(view: EnvView, index: int, entry: ImageEntry, fields: dict[str, str | None],
                 keep_name: bool, why: str) -> list[Edit]:
    edits: list[Edit] = []
    have = {"newName": entry.new_name, "newTag": entry.new_tag, "digest": entry.digest}
    for key, value in fields.items():
        if key == "newName" and keep_name:
            continue
        if value is not None and value != have[key]:
            edits.append(view.edit(SET, ("images", index, key), value, why))
        elif value is None and have[key] is not None:
            edits.append(view.edit(DELETE, ("images", index, key), None, why))
    return edits


# ---------------------------------------------------------------- ConfigMap keys


def configmap(view: EnvView, name: str) -> Resource:
    found = [r for r in view.rendered.resources if r.kind == "ConfigMap" and r.declared_name == name]
    if not found:
        known = [r.declared_name for r in view.rendered.resources if r.kind == "ConfigMap"]
        raise _unknown("ConfigMap", name, known, view.name)
    return found[0]


def plan_config(view: EnvView, name: str, key: str, value: str) -> list[Edit]:
    """Edits that give key `key` of ConfigMap `name` the value `value` in this environment."""
    cm = configmap(view, name)
    why = f"{view.name}: ConfigMap {name} key {key}"
    origin = cm.key_origins.get(key)
    env_dir = rel(view.repo.root, view.config.dir) + "/"
    if origin is not None and origin.file.startswith(env_dir) and origin.file != view.env_shown:
        raise EditError(f"key {key!r} of ConfigMap {name!r} comes from {origin.file} in environment {view.name!r}",
                        file=origin.file, hint="edit that file, or drop it from the overlay to set the key as a literal")
    overlay = next((o for o in view.config.overlays if o.name == name), None)
    edits: list[Edit] = []
    if overlay is not None and key in overlay.remove:
        edits.append(view.edit(DELETE, ("configMaps", name, "remove", overlay.remove.index(key)), None,
                               f"{why}: no longer removed"))
    current = cm.obj.get("data", {}).get(key) if isinstance(cm.obj.get("data"), dict) else None
    if current == value and not edits:
        return []
    edits.append(view.edit(SET, ("configMaps", name, "literals", key), value, f"{why} = {value!r}"))
    return edits


# ---------------------------------------------------------------- replicas


def workload(view: EnvView, target: str) -> Resource:
    kind, _, name = target.rpartition("/")
    found = [r for r in view.rendered.resources
             if r.name == name and (r.kind == kind if kind else r.kind in REPLICA_KINDS or _has_replicas(r))]
    if len(found) > 1:
        listed = ", ".join(sorted(f"{r.kind}/{r.name}" for r in found))
        raise TargetError(f"{target!r} is ambiguous in environment {view.name!r}: {listed}",
                          hint=f"name it as KIND/NAME, e.g. {sorted(f'{r.kind}/{r.name}' for r in found)[0]}")
    if not found:
        known = [f"{r.kind}/{r.name}" for r in view.rendered.resources if r.kind in REPLICA_KINDS or _has_replicas(r)]
        raise _unknown("workload", target, known, view.name)
    return found[0]


def _has_replicas(r: Resource) -> bool:
    spec = r.obj.get("spec")
    return isinstance(spec, dict) and "replicas" in spec


@dataclass(frozen=True)
class _PatchSite:
    file: Path
    shown: str
    doc_index: int
    prefix: tuple[str | int, ...]  # path of the patch inside the document
    obj: dict[str, Any]
    templated: bool


def _patch_sites(view: EnvView) -> list[_PatchSite]:
    """Every patch of the environment, in the order the render applies them."""
    sites = [_PatchSite(view.env_file, view.env_shown, 0, ("patches", i), p.obj, False)
             for i, p in enumerate(view.config.patches)]
    folder = view.config.dir / PATCHES_DIR
    if folder.is_dir():
        for path in manifest_files(view.repo.root, folder):
            shown = rel(view.repo.root, path)
            templated = path.name.endswith(".j2")
            docs = [] if templated else load_documents(read_text(view.repo.root, path, shown), shown)
            sites += [_PatchSite(path, shown, i, (), obj, False) for i, (obj, _) in enumerate(docs) if isinstance(obj, dict)]
            if templated:
                sites.append(_PatchSite(path, shown, 0, (), {}, True))
    return sites


def _targets(site: _PatchSite, r: Resource) -> bool:
    meta = site.obj.get("metadata")
    return site.obj.get("kind") == r.kind and isinstance(meta, dict) and meta.get("name") == r.name


def plan_replicas(view: EnvView, target: str, replicas: int) -> list[Edit]:
    r = workload(view, target)
    spec = r.obj.get("spec")
    if isinstance(spec, dict) and spec.get("replicas") == replicas:
        return []
    why = f"{view.name}: {r.kind}/{r.name} replicas {replicas}"
    sites = _patch_sites(view)
    templated = [s for s in sites if s.templated]
    if templated:
        raise EditError(f"patches of environment {view.name!r} include templates ({', '.join(s.shown for s in templated)}), "
                        "which cannot be edited as YAML", file=templated[0].shown,
                        hint="set replicas there by hand, or move the patch to env.yaml")
    setting = [s for s in sites if _targets(s, r) and isinstance(s.obj.get("spec"), dict) and "replicas" in s.obj["spec"]]
    if setting:
        s = setting[-1]
        return [Edit(s.file, s.shown, SET, (*s.prefix, "spec", "replicas"), replicas, why, s.doc_index)]
    in_env = [s for s in sites if _targets(s, r) and s.file == view.env_file and "$patch" not in s.obj]
    if in_env:
        s = in_env[-1]
        return [Edit(s.file, s.shown, SET, (*s.prefix, "spec", "replicas"), replicas, why)]
    patch = {"kind": r.kind, "metadata": {"name": r.name}, "spec": {"replicas": replicas}}
    return [view.edit(APPEND, ("patches",), patch, why)]
