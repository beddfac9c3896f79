"""`set image|config|replicas`: plan the edit of the deciding source, write it, render.

The sources are written first and out/ rendered from them; if the render fails (the new value
breaks a rule), every edited file is put back byte for byte and the error is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from generator.edit.files import Edit, changed_lines, planned, unified, written
from generator.edit.targets import EnvView, plan_config, plan_image, plan_replicas
from generator.errors import TargetError
from generator.pipeline import Repo, publish

Changes = dict[Path, tuple[str, str, str]]


@dataclass
class Outcome:
    """What an edit command did: the edits, the source changes, and the render's summary."""

    edits: list[Edit]
    changes: Changes
    rendered: list[str] = field(default_factory=list)  # summary lines of the render

    def describe(self) -> list[str]:
        if not any(before != after for _, before, after in self.changes.values()):
            return ["nothing to change: the sources already say so"]
        lines = list(dict.fromkeys(f"{e.shown}: {e.why}" for e in self.edits))  # one line per change, not per key
        for shown, before, after in self.changes.values():
            if before != after:
                lines.append(f"{shown}: {_lines(changed_lines(before, after))} changed, the rest byte-identical")
        return lines

    @property
    def diff(self) -> str:
        return unified(self.changes)


def write_out(repo: Repo, envs: Sequence[str], jobs: int | None = None) -> list[str]:
    """Render `envs` into out/ as `render --env ...` does; the summary lines."""
    published = publish(repo, envs, jobs)
    rendered, todo = published.rendered, published.todo
    return [f"rendered {env}: {len(files)} files" for env, files in rendered.items()] + [
        f"out/: {len(todo.writes)} written, {len(todo.removes)} removed, {todo.unchanged} unchanged"]


def carry_out(repo: Repo, envs: Sequence[str], edits: list[Edit], render: bool, dry_run: bool = False) -> Outcome:
    """Apply `edits` (in memory for a dry run), then render `envs` unless told not to."""
    changes = planned(edits)
    outcome = Outcome(edits, changes)
    if dry_run or not any(before != after for _, before, after in changes.values()):
        return outcome
    with written(changes):
        if render:
            outcome.rendered = write_out(repo, envs)
    return outcome


def parse_assignment(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise TargetError(f"expected {what}, got {text!r}")
    return name, value


def set_image(repo: Repo, env: str, assignment: str, render: bool, dry_run: bool = False) -> Outcome:
    """`TARGET=IMAGE`, `TARGET:TAG` or `TARGET@DIGEST` (kustomize edit set image's forms)."""
    if "=" in assignment:
        target, image = parse_assignment(assignment, "TARGET=IMAGE")
    else:
        from generator.steps.images import split

        target, tag, digest = split(assignment)
        if not (tag or digest):
            raise TargetError(f"expected TARGET=IMAGE, TARGET:TAG or TARGET@DIGEST, got {assignment!r}")
        image = assignment[len(target):]
    view = EnvView.load(repo, env)
    return carry_out(repo, [env], plan_image(view, target, image), render, dry_run)


def set_config(repo: Repo, env: str, configmap: str, assignments: Sequence[str], render: bool,
               dry_run: bool = False) -> Outcome:
    view = EnvView.load(repo, env)
    edits: list[Edit] = []
    for text in assignments:
        key, value = parse_assignment(text, "KEY=VALUE")
        edits += plan_config(view, configmap, key, value)
    return carry_out(repo, [env], edits, render, dry_run)


def set_replicas(repo: Repo, env: str, target: str, replicas: int, render: bool, dry_run: bool = False) -> Outcome:
    view = EnvView.load(repo, env)
    return carry_out(repo, [env], plan_replicas(view, target, replicas), render, dry_run)


def summary(outcome: Outcome, show_diff: bool) -> str:
    lines = outcome.describe()
    text = "\n".join(lines) + "\n"
    if show_diff:
        text += outcome.diff
    if outcome.rendered:
        text += "\n".join(outcome.rendered) + "\n"
    return text



def _lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"
