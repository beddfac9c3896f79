"""`watch`: re-render on every save and say what the save changed.

The inputs to watch are exactly the paths the last render looked at (generator/io/index.py
records them: files read or probed, folders listed, the folders between them and the repo's
top, symlinks and their targets), so an edit anywhere that can change the output is seen, and an
edit nowhere near it (an editor's backup file in an unrelated folder, out/) costs nothing. They
are polled by identity (inode, size, mtime, ctime): at 1,000 apps one pass stats about 5,000
paths (tens of milliseconds); the interval grows with that cost so an idle watch stays cheap.

Each render is a full render in this process (the parse memo and the imports stay warm); what
it changed is compared with the previous render (the first one with out/) and printed as `diff`
prints it: which ConfigMaps get new versions, which workloads roll and why. An error is printed
as the other commands print it (file:line, hint) and watching goes on. With `write`, out/ is
kept current as `render` would write it. Nothing else is ever written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import GeneratorError
from generator.io import index
from generator.review import diff_report
from generator.review.against import baseline
from generator.review.diff import diff_files
from generator.steps.references import BUILTIN_POD_SPECS

if TYPE_CHECKING:
    from generator.pipeline import Recall

Echo = Callable[[str], None]
Pick = Callable[[Any, Sequence[str]], list[str]]  # the CLI's choice of environments
Files = dict[str, dict[str, str]]
MIN_INTERVAL = 0.1  # seconds between polls at least
COST_FACTOR = 4  # and at least this many times what one poll costs (an idle watch uses < 25% of a core)
TICK_NS = 20_000_000  # a file-system timestamp may lag the clock by one tick (4 ms on Linux; margin)


@dataclass
class Inputs:
    """The identities of the paths a render looked at, and whether one changed while it ran."""

    seen: dict[str, bytes]
    racy: bool

    @classmethod
    def after(cls, reads: index.Reads | None, start_ns: int, kept: Iterable[str] = ()) -> Inputs:
        """`kept`: inputs of apps an incremental render did not read again."""
        if reads is None:
            return cls({}, True)
        seen = {p: index.identity(p) for p in {*reads.paths, *kept}}
        # An input stamped after the render began may have changed after it was read.
        racy = any(_newest(ident) >= start_ns - TICK_NS for ident in seen.values())
        return cls(seen, racy)

    def changed(self) -> list[str]:
        return [p for p, ident in self.seen.items() if index.identity(p) != ident]


def _newest(ident: bytes) -> int:
    return index._newest_ns(ident)


@dataclass
class Outcome:
    files: Files | None  # None: the render failed
    inputs: Inputs
    seconds: float
    specs: list[Any] = field(default_factory=list)  # pod-spec paths (built-in and the repo's)
    memory: dict[str, Recall] = field(default_factory=dict)  # per environment, for the next render


def render_once(root: Path, envs: Sequence[str], apps: Sequence[str], write: bool, echo: Echo,
                pick: Pick, memory: Mapping[str, Recall] | None = None, changed: Sequence[str] = ()) -> Outcome:
    """One render (in this process), its warnings and error echoed; out/ written if asked.

    With the `memory` of the last render and the `changed` inputs, only the apps those belong to
    are rendered when that gives what a full render gives (generator/incremental.py); with
    `write`, the render index decides as it does for `render`."""
    from generator.pipeline import Repo, publish, recall, render_many

    start_ns = time.time_ns()
    t0 = time.perf_counter()
    specs: list[Any] = list(BUILTIN_POD_SPECS)
    kept: list[str] = []
    try:
        repo = Repo.open(root)
        selected = pick(repo, envs)
        specs += repo.config.pod_spec_paths
        rendered = _from_memory(repo, selected, memory, changed) if memory and changed and not write else None
        if rendered is None:
            memory = None
            # Environments in parallel as `render` does (one process each); the reads come back with them.
            rendered = render_many(repo, selected, warn=lambda w: echo(w.render("warning")))
        files = {env: dict(texts) for env, texts in rendered.items()}
        reads = index.recorded()
        remembered: dict[str, Recall] = {}
        for env in selected:
            known = recall(rendered.apps[env], reads, env, files[env], memory[env] if memory else None) \
                if reads is not None and not rendered.reports[env][0] and not rendered.reports[env][1] else None
            if known is not None:
                remembered[env] = known
                kept += known.inputs
        for app in apps:
            if not any(p.split("/", 1)[0] == app for texts in files.values() for p in texts):
                raise GeneratorError(f"no app {app!r} in the environments watched", hint="check the --app names")
        if write:  # never deletes an environment's folder: that takes `render --prune-env`
            publish(repo, selected, rendered=rendered)
    except GeneratorError as exc:
        echo(exc.render())
        return Outcome(None, Inputs.after(index.recorded(), start_ns, kept), time.perf_counter() - t0)
    return Outcome(files, Inputs.after(index.recorded(), start_ns, kept), time.perf_counter() - t0, specs, remembered)


def _from_memory(repo: Any, selected: Sequence[str], memory: Mapping[str, Recall], changed: Sequence[str]) -> Any:
    """Every selected environment rendered incrementally from memory, or None (render them all)."""
    from generator.pipeline import Rendered, index_apps, render_recalled

    if set(memory) != set(selected):
        return None
    done = {}
    for env in selected:
        rendered = render_recalled(repo, env, memory[env], changed)
        if rendered is None:
            return None
        done[env] = rendered
    return Rendered({e: r.files for e, r in done.items()}, frozenset(),
                    {e: ([], frozenset()) for e in done}, {e: index_apps(r) for e, r in done.items()})


def only_apps(files: Files, apps: Sequence[str]) -> Files:
    if not apps:
        return files
    return {env: {p: t for p, t in texts.items() if p.split("/", 1)[0] in apps} for env, texts in files.items()}


def touched(old: Mapping[str, Mapping[str, str]], new: Files) -> tuple[Files, Files]:
    """Both sides cut to the app folders where some file was added, removed or changed (and
    the environment's kustomization): what a save changed, parsed and compared without the
    thousands of files it left alone. A workload whose ConfigMap got a new name changed too
    (its reference was rewritten), so it is in, wherever its app is."""
    cut_old: Files = {}
    cut_new: Files = {}
    for env in sorted(set(old) | set(new)):
        a, b = old.get(env, {}), new.get(env, {})
        changed = {p for p in set(a) | set(b) if a.get(p) != b.get(p)}
        apps = {p.split("/", 1)[0] for p in changed}
        if env not in old or env not in new:
            apps |= {p.split("/", 1)[0] for p in set(a) | set(b)}
        # Consumers in other apps of a ConfigMap or Secret that changed (a mutable one keeps its
        # name, so their files did not change): any file naming it. Over-inclusion only costs time.
        names = {n for p in changed for n in _declared(p)}
        keep = {p for side in (a, b) for p, t in side.items() if any(n in t for n in names)} if names else set()
        cut_old[env] = {p: t for p, t in a.items() if p.split("/", 1)[0] in apps or p in keep}
        cut_new[env] = {p: t for p, t in b.items() if p.split("/", 1)[0] in apps or p in keep}
    return cut_old, cut_new


def _declared(path: str) -> set[str]:
    """What a ConfigMap's or Secret's declared name may be, from its file's path
    (generator/io/output.py `file_name`: <app>/<kind>-<name>[.<namespace>].yaml; a name may
    hold dots too, so both readings), else nothing."""
    stem = path.rsplit("/", 1)[-1].removesuffix(".yaml")
    for kind in ("configmap-", "secret-"):
        if stem.startswith(kind):
            name = stem[len(kind):]
            return {name, name.split(".", 1)[0]}
    return set()


def report(old: Mapping[str, Mapping[str, str]], new: Files, specs: Sequence[Any], against: str,
           style: diff_report.Style) -> str:
    """What changed from `old` to `new`, as `diff` prints it (or one line when nothing did)."""
    result = diff_files(*touched(old, new), specs, against)
    if not result.changed:
        return style("no change in the output", "dim") + "\n"
    return diff_report.text(result, style)


def watch(root: Path, envs: Sequence[str], apps: Sequence[str], write: bool, echo: Echo,
          pick: Pick, style: diff_report.Style = diff_report.plain,
          stop: Callable[[], bool] = lambda: False) -> None:
    """Render, then re-render whenever an input changes, until interrupted (or `stop()`)."""
    root = root.resolve()
    first = render_once(root, envs, apps, write, echo, pick)
    previous: Files | None = None
    if first.files is not None:
        old = baseline(root, None, envs or None).files
        echo(report(only_apps(old, apps), only_apps(first.files, apps), first.specs, "out/", style).rstrip("\n"))
        previous = first.files
    inputs = first.inputs
    memory = first.memory
    echo(style(f"watching {len(inputs.seen)} inputs ({'writing out/' if write else 'preview only; --write keeps out/ current'}); "
               "Ctrl-C to stop", "dim"))
    while not stop():
        t0 = time.perf_counter()
        changed = inputs.changed()
        cost = time.perf_counter() - t0
        if not changed and not inputs.racy:
            time.sleep(max(MIN_INTERVAL, COST_FACTOR * cost))
            continue
        # Only an input stamped during the last render (it may have changed after it was read):
        # render again to be sure, and say something only if the output changed.
        quiet = not changed
        if not quiet:
            shown = ", ".join(sorted(_shown(root, p) for p in changed)[:5]) + (" ..." if len(changed) > 5 else "")
            echo(style(f"[{time.strftime('%H:%M:%S')}] changed: {shown}", "head"))
        outcome = render_once(root, envs, apps, write, echo, pick, memory, changed)
        inputs = outcome.inputs
        memory = outcome.memory
        if outcome.files is not None:  # else the error was printed; the next good render is compared with the last good one
            if previous is None:
                previous = baseline(root, None, envs or None).files
            if not quiet or only_apps(previous, apps) != only_apps(outcome.files, apps):
                echo(report(only_apps(previous, apps), only_apps(outcome.files, apps), outcome.specs,
                            "the previous render", style).rstrip("\n"))
            previous = outcome.files
        if not quiet:
            echo(style(f"rendered in {outcome.seconds:.2f} s" + (", out/ written" if write and outcome.files else ""), "dim"))


def _shown(root: Path, path: str) -> str:
    prefix = str(root) + "/"
    return path[len(prefix):] if path.startswith(prefix) else path
