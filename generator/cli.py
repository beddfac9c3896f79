"""Command line: parses arguments, calls the library, maps errors to messages and exit codes.

Exit codes: 0 success, 1 invalid input (one clear message), 2 usage error, 3 `diff` found
changes, 70 internal error (a bug: traceback saved to a file), 130 interrupted.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from generator import __version__
from generator.errors import GeneratorError, TargetError, WriteError
from generator.io import index
from generator.start import replay_warnings, unchanged, utf8_mode

if TYPE_CHECKING:
    from generator.pipeline import Repo

# The render itself is imported inside the commands, not here: a `render` or `check` of an
# unchanged repo answers from the render index (generator/io/index.py) without it (and the
# plain forms of both are answered by generator/start.py before this module is even imported).
DEFAULT_DIFF_LINES = 40  # generator.review.check.DEFAULT_DIFF_LINES (tests/test_cli.py keeps them equal)
GRAPH_FORMATS = ("mermaid", "dot")  # generator.review.graph.FORMATS (likewise)
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_CHANGES = 3
EXIT_INTERNAL = 70
F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn the library's errors into one message and an exit code; never a traceback for a user mistake."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        index.forget()  # what one command saw of the repo's files is not the next one's
        try:
            return func(*args, **kwargs)
        except TargetError as exc:  # an unknown or ambiguous target named on the command line
            click.echo(exc.render(), err=True)
            sys.exit(EXIT_USAGE)
        except GeneratorError as exc:
            click.echo(exc.render(), err=True)
            sys.exit(EXIT_INPUT)
        except OSError as exc:  # the machine's state (full disk, permissions, ...), not a bug of ours
            from generator.io.write import os_error

            problem = os_error(exc, exc.filename if isinstance(exc.filename, str) else None,
                               "out/ was not changed by it", doing="the operating system refused")
            click.echo(problem.render(), err=True)
            sys.exit(EXIT_INPUT)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against bugs
            import tempfile

            fd, log = tempfile.mkstemp(prefix="gitops-gen-crash-", suffix=".log")
            with os.fdopen(fd, "w") as handle:
                handle.write(traceback.format_exc())
            click.echo(
                f"internal error: {type(exc).__name__}: {exc}\n"
                f"  this is a bug in gitops-gen, not in your input; the traceback is in {log}",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


repo_option = click.option(
    "--repo",
    "repo_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The repo to render: the folder holding base/ and environments/.",
)
env_option = click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="NAME",
    help="Only this environment (repeatable). Default: every folder of environments/ with an env.yaml.",
)


def warn(problem: GeneratorError) -> None:
    """A render warning on stderr (the render goes on, the exit code stays 0)."""
    click.echo(problem.render("warning"), err=True)


def _unchanged_render(repo_dir: Path, envs: tuple[str, ...]) -> bool:
    """`render` of a repo whose render index says nothing changed: out/ is current. Prints
    what the full render would and returns True; else False (then render)."""
    return unchanged("render", repo_dir, envs, _echo)


def _echo(text: str, err: bool) -> None:
    click.echo(text, err=err)


def _unchanged_stdout(repo_dir: Path, env: str, apps: tuple[str, ...]) -> bool:
    """`render --stdout` of an environment the render index says is unchanged: out/<env>/
    holds exactly its files, so they are printed from there. Else False (then render)."""
    from generator.io import index

    found = index.lookup_all(repo_dir.resolve(), (env,))
    if found is None:
        return False
    replay_warnings(found, _echo)
    folder = repo_dir.resolve() / "out" / env
    texts: dict[str, str] = {}
    for path in found[env].paths:
        if path != "kustomization.yaml" and (not apps or path.split("/", 1)[0] in apps):
            with open(folder / path, encoding="utf-8", newline="") as handle:
                texts[path] = handle.read()
    _print_files({p: "" for p in found[env].paths}, texts, env, apps)
    return True


def _print_files(every: Any, texts: Any, env: str, apps: tuple[str, ...]) -> None:
    """The YAML stream of `render --stdout`: `texts` (path -> text) in order; `every` holds
    every path of the environment (to name the apps it has)."""
    known = {path.split("/", 1)[0] for path in every if path != "kustomization.yaml"}
    for app in apps:
        if app not in known:
            raise click.BadParameter(f"no app {app!r} in environment {env!r}; apps: {', '.join(sorted(known))}", param_hint="--app")
    click.echo("---\n".join(texts.values()), nl=False)


def _unchanged_diff(repo_dir: Path, envs: tuple[str, ...], fmt: str) -> bool:
    """`diff` against out/ when the render index says nothing changed since out/ was written
    from these sources: a report of no changes, printed by the same code. Else False."""
    from generator.io import index

    found = index.lookup_all(repo_dir.resolve(), envs)
    if found is None:
        return False
    from generator.review import diff_report
    from generator.review.diff import DiffReport, EnvDiff

    report = DiffReport("out/", tuple(EnvDiff(env, (), (), ()) for env in sorted(found)))
    if fmt == "markdown":
        click.echo(diff_report.markdown(report), nl=False)
    elif fmt == "json":
        click.echo(diff_report.to_json(report), nl=False)
    else:
        click.echo(diff_report.text(report, _style), nl=False)
    return True


def pick_envs(repo: Repo, wanted: tuple[str, ...]) -> list[str]:
    known = repo.envs
    for name in wanted:
        if name not in known:
            raise click.BadParameter(
                f"unknown environment {name!r}; environments: {', '.join(known) or '(none)'}",
                param_hint="--env",
            )
    if not known:
        raise GeneratorError(
            "no environments found",
            file=repo.root / "environments",
            hint="create environments/<name>/env.yaml (it may be empty)",
        )
    return sorted(set(wanted)) if wanted else known


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gitops-gen")
def main() -> None:
    """Render Kubernetes base manifests and per-environment overlays into out/<env>/, with every
    ConfigMap immutable and named by its content hash and every reference rewritten.

    \b
    Typical use:
      gitops-gen render                 render every environment into out/
      gitops-gen render --env prod --stdout   preview one environment, write nothing
    """


def run() -> None:
    """The CLI without generator/start.py's early answer (the entry points use that one)."""
    utf8_mode()
    main()


@main.command()
@repo_option
@env_option
@click.option("--stdout", "to_stdout", is_flag=True, help="Print one environment as a YAML stream; write nothing.")
@click.option("--app", "apps", multiple=True, metavar="NAME", help="With --stdout: only this app's objects (repeatable).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Processes to use (default: one per core): environments in parallel; one large environment is loaded and written in two halves (N parts for its apps when given). 1: one process.")
@click.option("--no-cache", is_flag=True, help="Do not use or update the parse memo in ~/.cache/gitops-gen (same output, slower).")
@click.option("--prune-env", "prune", multiple=True, metavar="NAME",
              help="Delete out/NAME, the output of an environment whose folder or env.yaml is gone (repeatable). "
              "Without it such a render stops: with pruning on, the GitOps engine would delete the environment.")
@friendly_errors
def render(repo_dir: Path, envs: tuple[str, ...], to_stdout: bool, apps: tuple[str, ...], jobs: int | None,
           no_cache: bool, prune: tuple[str, ...]) -> None:
    """Render environments into out/<env>/ (or print one with --stdout).

    Everything is rendered and checked before anything is written; on any error out/ is left
    exactly as it was. Files the generator did not write are never touched. Changes are
    published through a journal: a render interrupted while writing is completed by the next.
    """
    if not to_stdout and not apps and not no_cache and not prune and _unchanged_render(repo_dir, envs):
        return
    if to_stdout and len(envs) == 1 and not no_cache and _unchanged_stdout(repo_dir, envs[0], apps):
        return
    from generator.io.write import out_folder
    from generator.pipeline import Repo, publish

    repo = Repo.open(repo_dir, cache=not no_cache)
    selected = pick_envs(repo, envs)
    if apps and not to_stdout:
        raise click.UsageError("--app works with --stdout only (out/ always holds whole environments)")
    if to_stdout:
        if len(selected) != 1:
            raise click.UsageError("--stdout prints one environment; choose it with --env NAME")
        print_env(repo, selected[0], apps)
        return
    out = out_folder(repo.root)
    stale = envs_to_prune(repo, out, all_envs=not envs, prune=prune)
    published = publish(repo, selected, jobs, stale, warn)
    if published.completed:
        click.echo(f"out/: completed an interrupted render's publication ({published.completed} files)")
    rendered, todo = published.rendered, published.todo
    for env in stale:
        click.echo(f"pruned environment {env}: out/{env}/ removed")
    for env, files in rendered.items():
        click.echo(f"rendered {env}: {len(files)} files")
    click.echo(f"out/: {len(todo.writes)} written, {len(todo.removes)} removed, {todo.unchanged} unchanged")


def envs_to_prune(repo: Repo, out: Path, all_envs: bool, prune: tuple[str, ...]) -> list[str]:
    """The folders of out/ whose environment is gone and that the user said to delete; a full
    render stops when another such folder exists (deleting an environment is never implicit)."""
    for name in prune:
        if name in repo.envs:
            raise click.BadParameter(
                f"environment {name!r} still exists (environments/{name}/env.yaml): --prune-env deletes "
                f"the output of an environment that is gone", param_hint="--prune-env")
    from generator.io.write import orphaned_envs

    orphans = orphaned_envs(out, repo.envs)
    refused = [env for env in orphans if env not in prune]
    if all_envs and refused:
        raise env_removal_error(repo.root, out, refused)
    return [env for env in orphans if env in prune]


def env_removal_error(root: Path, out: Path, envs: list[str]) -> WriteError:
    from generator.io.write import why_gone

    reasons = "; ".join(f"out/{env}/ ({why_gone(root, env)})" for env in envs)
    flags = " ".join(f"--prune-env {env}" for env in envs)
    return WriteError(
        f"this render would delete the output of {len(envs)} environment(s) whose env.yaml is gone: {reasons}",
        file=out / envs[0],
        hint=f"restore the env.yaml, or, to retire the environment for good (with pruning on, Argo CD or Flux "
        f"then delete everything it deployed), run `gitops-gen render {flags}`",
    )


@main.command("check")
@repo_option
@env_option
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Processes to use (default: one per core): environments in parallel; one large environment is loaded and written in two halves (N parts for its apps when given). 1: one process.")
@click.option("--max-lines", type=click.IntRange(min=1), default=DEFAULT_DIFF_LINES, show_default=True,
              help="Diff lines shown per file; the rest are counted.")
@click.pass_context
@friendly_errors
def check_command(ctx: click.Context, repo_dir: Path, envs: tuple[str, ...], jobs: int | None, max_lines: int) -> None:
    """Exit 0 when out/ is exactly what `render` would write (the CI gate).

    Otherwise list every stale, missing and extra file of out/ with a bounded diff, print the
    command that fixes it, and exit 1. Nothing is written.
    """
    if unchanged("check", repo_dir, envs, _echo):  # nothing changed since out/ was last found current
        return
    from generator.pipeline import Repo
    from generator.review.check import check as run_check, fix_command, program_name

    repo = Repo.open(repo_dir)
    selected = pick_envs(repo, envs)
    result = run_check(repo, selected, not envs, jobs, max_lines, warn)
    if result.ok:
        click.echo(f"out/ is up to date: {len(selected)} environments, {result.unchanged} files")
        return
    for env, why in result.removed_envs:
        click.echo(click.style(f"ENVIRONMENT REMOVED: out/{env}/ would be deleted ({why}); `render` stops unless "
                               f"given --prune-env {env}, and with pruning on the GitOps engine then deletes "
                               f"everything it deployed from it", fg="red", bold=True))
    for entry in result.unused_allowances:
        click.echo(click.style(f"unused allow-list entry: {entry.origin or 'gitops-gen.yaml'}: ", bold=True)
                   + f"{entry.describe()} holds no finding of the credential scanner in any environment; "
                   "remove the entry (it would let a credential written there later through)")
    if not result.problems and not result.removed_envs:
        ctx.exit(EXIT_INPUT)
    for problem in result.problems:
        click.echo(click.style(f"{problem.status}: {problem.path}", bold=True))
        if problem.status == "interrupted":
            click.echo("    a render was interrupted while publishing out/: `render` completes it")
        elif problem.status == "stray":
            click.echo("    a temporary file of an interrupted render: `render` deletes it")
        for line in problem.diff:
            click.echo("    " + _diff_style(line))
        if problem.cut:
            click.echo(f"    ... {problem.cut} more diff lines cut")
    counts = ", ".join(f"{sum(1 for p in result.problems if p.status == s)} {s}" for s in ("stale", "missing", "extra"))
    odd = [f"{n} {s}" for s in ("stray", "interrupted") if (n := sum(1 for p in result.problems if p.status == s))]
    counts = ", ".join([counts, *odd])
    given = None if ctx.get_parameter_source("repo_dir") is click.core.ParameterSource.DEFAULT else str(repo_dir)
    click.echo(f"out/ does not match the sources ({counts}). To fix it, run:")
    click.echo(f"    {fix_command(program_name(ctx.find_root().info_name), given, envs, [e for e, _ in result.removed_envs])}")
    ctx.exit(EXIT_INPUT)


def _diff_style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return click.style(line, bold=True)
    if line.startswith("+"):
        return click.style(line, fg="green")
    if line.startswith("-"):
        return click.style(line, fg="red")
    return click.style(line, fg="cyan") if line.startswith("@@") else line


_ROLE_STYLES: dict[str, dict[str, Any]] = {
    "add": {"fg": "green"}, "remove": {"fg": "red"}, "change": {"fg": "yellow"}, "head": {"bold": True}, "dim": {"dim": True},
}


def _style(text: str, role: str) -> str:
    return click.style(text, **_ROLE_STYLES[role]) if role in _ROLE_STYLES else text


@main.command("diff")
@repo_option
@env_option
@click.option("--against", metavar="DIR|GIT-REF", default=None,
              help="Compare with this out/ folder (or a repo holding one), or with out/ at this git ref. Default: the repo's out/.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
              help="text (colour on a terminal only), markdown (a pull-request comment) or json (schema gitops-gen.diff/v1).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Processes to use (default: one per core): environments in parallel; one large environment is loaded and written in two halves (N parts for its apps when given). 1: one process.")
@friendly_errors
def diff_command(repo_dir: Path, envs: tuple[str, ...], against: str | None, fmt: str, jobs: int | None) -> None:
    """Show what a fresh render changes: ConfigMaps key by key, which workloads roll and why,
    and other objects field by field. Writes nothing.

    Exit 0 when nothing changes, 3 when something does, 1 on an error.
    """
    if against is None and _unchanged_diff(repo_dir, envs, fmt):
        sys.exit(0)
    from generator.pipeline import Repo

    repo = Repo.open(repo_dir)
    # Imported here: the diff machinery (git reads, field diffs) is not needed by `render`,
    # whose start-up time counts in every CI run.
    from generator.review import diff_report
    from generator.review.diff import diff_repo

    report = diff_repo(repo, pick_envs(repo, envs), not envs, against, jobs)
    if fmt == "markdown":
        click.echo(diff_report.markdown(report), nl=False)
    elif fmt == "json":
        click.echo(diff_report.to_json(report), nl=False)
    else:
        click.echo(diff_report.text(report, _style), nl=False)  # click drops the colour off a terminal
    sys.exit(EXIT_CHANGES if report.changed else 0)


@main.command("watch")
@repo_option
@env_option
@click.option("--app", "apps", multiple=True, metavar="NAME", help="Only show this app's changes (repeatable); the whole environment is still rendered and checked.")
@click.option("--write", is_flag=True, help="Also keep out/ current, as `render` writes it (default: preview only).")
@click.option("--poll", is_flag=True, help="Poll the inputs instead of waiting for file-system notifications "
              "(for a file system that sends none, such as some network mounts).")
@friendly_errors
def watch_command(repo_dir: Path, envs: tuple[str, ...], apps: tuple[str, ...], write: bool, poll: bool) -> None:
    """Re-render on every save and print what it changed: which ConfigMaps get new versions and
    which workloads roll (as `diff` shows it), or the error with its file and line.

    The first report compares with out/; later ones with the previous render. Saves are seen
    through file-system notifications (polling when there are none, or with --poll). Ctrl-C stops it.
    """
    from generator.review.watch import watch

    watch(repo_dir, envs, apps, write, click.echo, lambda repo, wanted: pick_envs(repo, tuple(wanted)), _style,
          poll=poll, notice=lambda text: click.echo(text, err=True))


@main.command("graph")
@repo_option
@env_option
@click.option("--format", "fmt", type=click.Choice(GRAPH_FORMATS), default="mermaid", show_default=True,
              help="mermaid (renders in GitHub markdown) or dot (Graphviz).")
@friendly_errors
def graph_command(repo_dir: Path, envs: tuple[str, ...], fmt: str) -> None:
    """Draw which workloads use which ConfigMaps and Secrets, through which keys and mounts."""
    from generator.pipeline import Repo
    from generator.review.graph import dot, graph_repo, mermaid

    repo = Repo.open(repo_dir)
    graphs = graph_repo(repo, pick_envs(repo, envs))
    click.echo(mermaid(graphs) if fmt == "mermaid" else dot(graphs), nl=False)


@main.group("charts")
def charts_group() -> None:
    """Vendor Helm charts from repositories into charts/ (the only commands that use the network)."""


@charts_group.command("pull")
@repo_option
@friendly_errors
def charts_pull(repo_dir: Path) -> None:
    """Fetch every declared repository chart missing from charts/ and record its digest in
    charts/lock.yaml; remove archives nothing declares. Also caches Helm if none is found."""
    from generator.charts.vendor import pull

    from generator.pipeline import Repo

    report = pull(Repo.open(repo_dir).root)
    for verb, files in (("fetched", report.fetched), ("removed", report.removed)):
        for name in files:
            click.echo(f"{verb} {name}")
    click.echo(f"charts/: {len(report.fetched)} fetched, {len(report.kept)} kept, {len(report.removed)} removed")


@charts_group.command("update")
@repo_option
@click.argument("app")
@click.option("--version", "version", metavar="X.Y.Z", default=None,
              help="The version to use (default: the newest release in the repository's index.yaml).")
@friendly_errors
def charts_update(repo_dir: Path, app: str, version: str | None) -> None:
    """Change APP's chart version in its app.yaml and vendor it; then `render` and review with `diff`."""
    from generator.charts.vendor import update

    from generator.pipeline import Repo

    old, new, _ = update(Repo.open(repo_dir).root, app, version)
    click.echo(f"{app}: chart version {old} -> {new}" if old != new else f"{app}: chart version {new} (unchanged)")


def print_env(repo: Repo, env: str, apps: tuple[str, ...]) -> None:
    from generator.io.output import KUSTOMIZATION
    from generator.pipeline import render_env

    rendered = render_env(repo, env)
    for problem in rendered.warnings:
        warn(problem)
    files = rendered.files
    known = {path.split("/", 1)[0] for path in files if path != KUSTOMIZATION}
    for app in apps:
        if app not in known:
            raise click.BadParameter(f"no app {app!r} in environment {env!r}; apps: {', '.join(sorted(known))}", param_hint="--app")
    chunks = {
        path: text for path, text in files.items()
        if path != KUSTOMIZATION and (not apps or path.split("/", 1)[0] in apps)
    }
    _print_files(files, chunks, env, apps)


@main.group("import")
def import_group() -> None:
    """Convert a repo of another tool into this format (see README "Use it in your repo")."""


@import_group.command("kustomize")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the new repo (default: PATH-gitops-gen beside PATH); must be empty or new.")
@click.option("--no-verify", is_flag=True, help="Skip rendering and comparing with `kubectl kustomize`.")
@friendly_errors
def import_kustomize(path: Path, out_dir: Path | None, no_verify: bool) -> None:
    """Convert the Kustomize tree at PATH (bases and overlays) into a repo of ours, one app per
    base and one environment per top-level overlay, then prove it: render it and compare every
    environment with `kubectl kustomize` of the original. What cannot be converted is listed
    (file:line) in IMPORT.md. Exit 0: identical; 3: differences (all printed); 1: error."""
    from generator.adopt import compare, kustomize
    from generator.adopt.kubectl import find_kubectl
    from generator.pipeline import Repo, publish

    kubectl = find_kubectl()
    target = out_dir or path.resolve().parent / f"{path.resolve().name}-gitops-gen"
    imported = kustomize.import_tree(path, kubectl)
    kustomize.write(imported, target)
    click.echo(f"wrote {target}: {len(imported.apps)} apps, {len(imported.envs)} environments")
    for where, what in imported.todo:
        click.echo(f"TODO {where}: {what}")
    for note in imported.notes:
        click.echo(f"note: {note}")
    if no_verify:
        return
    repo = Repo.open(target)
    publish(repo, repo.envs)
    differences: list[compare.Difference] = []
    for env in imported.envs:
        count, found = compare.compare_env(kubectl, env.name, env.root.dir, env.root.shown, target / "out" / env.name)
        click.echo(f"{env.name}: {count} objects from {env.root.shown}, {len(found)} differences")
        differences += found
    for difference in differences:
        click.echo(f"  differs: {difference}")
    if differences:
        click.echo("the render differs from Kustomize's build (above); the TODO items in IMPORT.md explain or fix them")
        sys.exit(EXIT_CHANGES)
    click.echo("every object matches Kustomize's build (ConfigMap names included)")


@main.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--app", default="hello", show_default=True, help="The first app's name (base/APP/).")
@click.option("--env", "env_name", default="dev", show_default=True, help="The first environment's name.")
@click.option("--deploy", type=click.Choice(["argocd", "flux"]), default="argocd", show_default=True,
              help="Which GitOps engine's manifest to write into deploy/.")
@click.option("--ci", type=click.Choice(["github", "gitlab"]), default="github", show_default=True,
              help="Which CI workflow to write (from docs/ci/).")
@click.option("--source", default=None, metavar="GIT-URL",
              help="gitops-gen's git URL for the pre-commit hook and the CI install step.")
@friendly_errors
def init_command(directory: Path, app: str, env_name: str, deploy: str, ci: str, source: str | None) -> None:
    """Start a new repo in DIRECTORY (default: here): gitops-gen.yaml, one app, one environment,
    editor schemas, a pre-commit hook, a CI workflow and an Argo CD or Flux manifest; then
    render out/. `gitops-gen check` passes right after."""
    from generator import SOURCE_URL
    from generator.adopt.init import Options, write
    from generator.pipeline import Repo, publish

    written = write(directory, Options(app=app, env=env_name, deploy=deploy, ci=ci, source=source or SOURCE_URL))
    repo = Repo.open(directory)
    rendered = publish(repo, repo.envs).rendered
    for rel in written:
        click.echo(f"wrote {rel}")
    click.echo(f"rendered {', '.join(f'out/{e}' for e in rendered)}; next: git init && git add -A && "
               "pre-commit install (see README \"Use it in your repo\")")


def _register_edit_commands() -> None:
    # Imported at the end: the module uses the helpers above (friendly_errors, repo_option, pick_envs).
    from generator.edit import clicommands

    main.add_command(clicommands.set_group)
    main.add_command(clicommands.skew_command)
    main.add_command(clicommands.promote_command)


_register_edit_commands()
