"""The click commands `set image|config|replicas`, `skew` and `promote` (registered by
generator/cli.py, which maps their errors to exit codes like every other command's)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from generator.cli import friendly_errors, pick_envs, repo_option

if TYPE_CHECKING:
    from generator.pipeline import Repo

# The render is imported inside the commands: this module is imported with the CLI, and a
# `render` or `check` of an unchanged repo must start without it (generator/io/index.py).

env_required = click.option("--env", "env", required=True, metavar="NAME", help="The environment to change.")
no_render = click.option("--no-render", is_flag=True, help="Edit the sources only; do not render out/.")
dry_run = click.option("--dry-run", is_flag=True, help="Print the edits as a diff; write nothing.")


def _open(repo_dir: Path, env: str) -> Repo:
    from generator.pipeline import Repo

    repo = Repo.open(repo_dir)
    pick_envs(repo, (env,))
    return repo


@click.group("set")
def set_group() -> None:
    """Change one value of an environment by editing the one source line that decides it
    (comments, quoting, order and line endings of the file kept), then render it.

    \b
      gitops-gen set image --env prod engine=registry.example/exchange-engine:1.5.0
      gitops-gen set config --env prod exchange-engine-config LOG_LEVEL=info
      gitops-gen set replicas --env prod exchange-engine 4
    """


@set_group.command("image")
@repo_option
@env_required
@no_render
@dry_run
@click.argument("assignment", metavar="TARGET=IMAGE")
@friendly_errors
def set_image_command(repo_dir: Path, env: str, no_render: bool, dry_run: bool, assignment: str) -> None:
    """Run IMAGE ([NAME][:TAG][@DIGEST]) wherever TARGET runs in the environment, through its
    `images:` entry in env.yaml (edited, or added). TARGET is an image name, a container name
    or the last part of an image name; TARGET:TAG and TARGET@DIGEST work too."""
    from generator.edit.commands import set_image, summary

    click.echo(summary(set_image(_open(repo_dir, env), env, assignment, not no_render, dry_run), dry_run), nl=False)


@set_group.command("config")
@repo_option
@env_required
@no_render
@dry_run
@click.argument("configmap", metavar="CONFIGMAP")
@click.argument("assignments", metavar="KEY=VALUE...", nargs=-1, required=True)
@friendly_errors
def set_config_command(repo_dir: Path, env: str, no_render: bool, dry_run: bool, configmap: str,
                       assignments: tuple[str, ...]) -> None:
    """Set keys of a ConfigMap (its declared name) as overlay literals in env.yaml."""
    from generator.edit.commands import set_config, summary

    outcome = set_config(_open(repo_dir, env), env, configmap, assignments, not no_render, dry_run)
    click.echo(summary(outcome, dry_run), nl=False)


@set_group.command("replicas")
@repo_option
@env_required
@no_render
@dry_run
@click.argument("target", metavar="[KIND/]NAME")
@click.argument("replicas", type=click.IntRange(min=0))
@friendly_errors
def set_replicas_command(repo_dir: Path, env: str, no_render: bool, dry_run: bool, target: str, replicas: int) -> None:
    """Set a workload's replicas in the patch that decides them (or a new env.yaml patch)."""
    from generator.edit.commands import set_replicas, summary

    outcome = set_replicas(_open(repo_dir, env), env, target, replicas, not no_render, dry_run)
    click.echo(summary(outcome, dry_run), nl=False)


@click.command("skew")
@repo_option
@click.option("--env", "envs", multiple=True, metavar="NAME", help="Compare only these environments (repeatable; default: all).")
@click.option("--app", "apps", multiple=True, metavar="NAME", help="Only this app (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
              help="text, markdown (a table for a pull request or wiki) or json (schema gitops-gen.skew/v1).")
@friendly_errors
def skew_command(repo_dir: Path, envs: tuple[str, ...], apps: tuple[str, ...], fmt: str) -> None:
    """Show which images and ConfigMap keys differ between environments, app by app (ConfigMaps by
    declared name), marking values an environment declares itself. Writes nothing."""
    from generator.pipeline import Repo
    from generator.review import skew

    repo = Repo.open(repo_dir)
    result = skew.skew_repo(repo, pick_envs(repo, envs), apps)
    formatter = {"text": skew.text, "markdown": skew.markdown, "json": skew.to_json}[fmt]
    click.echo(formatter(result), nl=False)


@click.command("promote")
@repo_option
@click.option("--from", "source", required=True, metavar="ENV", help="The environment to copy from.")
@click.option("--to", "target", required=True, metavar="ENV", help="The environment whose sources are edited.")
@click.option("--app", "apps", multiple=True, metavar="NAME", help="Only this app (repeatable; default: all).")
@click.option("--images", is_flag=True, help="Copy every image that differs (the default when nothing is chosen).")
@click.option("--config", "keys", multiple=True, metavar="KEY", help="Copy this ConfigMap key's value (repeatable).")
@dry_run
@friendly_errors
def promote_command(repo_dir: Path, source: str, target: str, apps: tuple[str, ...], images: bool,
                    keys: tuple[str, ...], dry_run: bool) -> None:
    """Copy what differs between two environments into the target's sources (minimal edits),
    render the target, and print a pull-request body: the edits and the markdown diff."""
    from generator.edit.promote import promote
    from generator.pipeline import Repo

    repo = Repo.open(repo_dir)
    pick_envs(repo, (source, target))
    result = promote(repo, source, target, apps, images, keys, dry_run)
    if not result.outcome.edits:
        click.echo(f"nothing to promote: {target} already matches {source} in what was chosen")
        return
    if dry_run:
        click.echo("\n".join(result.outcome.describe()) + "\n" + result.outcome.diff, nl=False)
        return
    click.echo(result.body, nl=False)
    click.echo("\n".join(result.outcome.rendered), err=True)
