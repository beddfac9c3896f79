"""Which `images:` entry caused an image change that `diff` reports.

`diff` compares rendered files, which do not say where an image came from, so the entries are
read again (env.yaml and the app.yaml files of the apps whose images changed) and an entry is
named when it decides the part of the image that changed: the name (its `newName`), or the tag
or digest (its `newTag` or `digest`).
"""

from __future__ import annotations

import dataclasses

from generator.config import load_app_config, load_env_config
from generator.pipeline import ENV_APPS, Repo
from generator.review.diff import DiffReport, EnvDiff, ImageReason, Rollout
from generator.steps.images import ImageEntry, effective, split


def caused(entry: ImageEntry, old: str, new: str) -> bool:
    """Whether `entry` made `old` become `new` (it produces `new` and decides what changed)."""
    (old_name, old_tag, old_digest), (name, tag, digest) = split(old), split(new)
    if name != (entry.new_name or entry.name):
        return False
    if entry.new_tag and tag != entry.new_tag or entry.digest and digest != entry.digest:
        return False
    renamed = old_name != name and entry.new_name == name
    retagged = (old_tag, old_digest) != (tag, digest) and bool(
        entry.new_tag and entry.new_tag == tag or entry.digest and entry.digest == digest)
    return renamed or retagged


def _entries(repo: Repo, env: str, app: str) -> dict[str, ImageEntry]:
    env_config = load_env_config(repo.root, repo.root / "environments" / env)
    app_entries: list[ImageEntry] = []
    for folder in (repo.root / "base" / app, env_config.dir / ENV_APPS / app):
        if folder.is_dir():
            app_entries += load_app_config(repo.root, folder, app).images
    return effective(app_entries, env_config.images)


def _explain(repo: Repo, env: str, rollout: Rollout) -> Rollout:
    if not any(isinstance(r, ImageReason) for r in rollout.reasons):
        return rollout
    entries = _entries(repo, env, rollout.app)
    reasons = []
    for r in rollout.reasons:
        if isinstance(r, ImageReason):
            found = next((e for e in entries.values() if caused(e, r.old, r.new)), None)
            if found is not None:
                r = dataclasses.replace(r, entry=f"{found.name} at {found.origin}")
        reasons.append(r)
    return dataclasses.replace(rollout, reasons=tuple(reasons))


def with_image_entries(repo: Repo, report: DiffReport) -> DiffReport:
    envs: list[EnvDiff] = []
    for env in report.envs:
        if (repo.root / "environments" / env.name).is_dir():
            env = dataclasses.replace(env, rollouts=tuple(_explain(repo, env.name, r) for r in env.rollouts))
        envs.append(env)
    return dataclasses.replace(report, envs=tuple(envs))
