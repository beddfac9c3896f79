"""`watch`: re-render on every save and say what the save changed.

The inputs are exactly the paths the last render looked at (generator/io/index.py records them:
files read or probed, folders listed, the folders between them and the repo's top, symlinks and
their targets), and whether one of them changed is decided by comparing their identities (inode,
size, mtime, ctime) with those taken after that render: an edit anywhere that can change the
output is seen, and an edit nowhere near it (an editor's swap file, out/) renders nothing.

What wakes that comparison is a file-system notification (the `watchfiles` library: inotify on
Linux, FSEvents on macOS) on each folder holding an input, each folder listed, and the repo's
top: base/, environments/, charts/, a folder a symlink points into, the folder of gitops-gen.yaml.
A save is one burst of events (an editor writes a temporary file, renames it, changes its mode):
they are gathered for at most `DEBOUNCE_MS`, so one save is one render. Without notifications
(the library is missing, the inotify limits are used up, a file system without them, or
`--poll`), the identities are polled: at 1,000 apps one pass stats about 5,000 paths (tens of
milliseconds), and the interval grows with that cost so an idle watch stays cheap. With
notifications the identities are still compared every `SAFETY_S`, in case the kernel dropped
events (a full inotify queue) or a network file system sends none.

The watcher (a native thread of the library's) runs only while waiting: it is closed before each
render (its thread ends within milliseconds, removing its watches; the render's forked workers
never touch it, and it sees none of the render's own reads) and started again after it; the
identity comparison made once it is running covers whatever changed in between. Ctrl-C is answered while
waiting within `STEP_MS` (the library checks for signals at each step) and raises
KeyboardInterrupt (exit 130), and the watcher is closed on the way out.

Each render is a full render in this process (the parse memo and the imports stay warm); what
it changed is compared with the previous render (the first one with out/) and printed as `diff`
prints it: which ConfigMaps get new versions, which workloads roll and why. An error is printed
as the other commands print it (file:line, hint) and watching goes on. With `write`, out/ is
kept current as `render` would write it. Nothing else is ever written.
"""

from __future__ import annotations

import os
import stat
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
    from watchfiles._rust_notify import RustNotify

    from generator.pipeline import Recall

Echo = Callable[[str], None]
Pick = Callable[[Any, Sequence[str]], list[str]]  # the CLI's choice of environments
Files = dict[str, dict[str, str]]
MIN_INTERVAL = 0.1  # seconds between polls at least
COST_FACTOR = 4  # and at least this many times what one poll costs (an idle watch uses < 25% of a core)
TICK_NS = 20_000_000  # a file-system timestamp may lag the clock by one tick (4 ms on Linux; margin)
DEBOUNCE_MS = 50  # events of one save are gathered for at most this long
STEP_MS = 10  # the waiting looks at events (and Ctrl-C) this often; a lone event is seen in 1-2 steps
SAFETY_S = 5.0  # with notifications, the identities are still compared this often


@dataclass
class Inputs:
    """The identities of the paths a render looked at, and whether one changed while it ran.
    For each input folder also its names but hidden ones (starting with '.'): no listing of a
    render sees those (generator/steps/load.py `_visible`, configmaps.py `_dir_files`), so an
    editor's swap or lock file coming or going (`.app.yaml.swp`, `.#app.yaml`) changes nothing.
    Not with Helm charts: a chart's folders are read whole, hidden files too (.helmignore)."""

    seen: dict[str, bytes]
    racy: bool
    listings: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def after(cls, reads: index.Reads | None, start_ns: int, kept: Iterable[str] = ()) -> Inputs:
        """`kept`: inputs of apps an incremental render did not read again."""
        if reads is None:
            return cls({}, True)
        seen = {p: index.identity(p) for p in {*reads.paths, *kept}}
        # An input stamped after the render began may have changed after it was read (a
        # listing taken now of a folder changed since then is also not trusted: racy).
        racy = any(_newest(ident) >= start_ns - TICK_NS for ident in seen.values())
        listings: dict[str, list[str]] = {}
        if not reads.unindexable:  # (set by charts, whose folders are listed whole)
            listings = {p: names for p, ident in seen.items() if _is_folder(ident) and (names := _names(p)) is not None}
        return cls(seen, racy, listings)

    def changed(self) -> list[str]:
        """The inputs whose identity changed, but a folder where only hidden names came or went
        (its new identity is kept as the one to compare with)."""
        found = []
        for p, ident in self.seen.items():
            now = index.identity(p)
            if now != ident and not self._hidden_only(p, ident, now):
                found.append(p)
        return found

    def _hidden_only(self, path: str, old: bytes, now: bytes) -> bool:
        listed = self.listings.get(path)
        if listed is None or _kinds(old) != _kinds(now):
            return False  # not a folder listed, or replaced by another (inode) or its mode changed
        # An entry added in the same clock tick as the folder's last change would leave its
        # stamps as they are: take the identity a tick after that change, then the listing.
        _after_tick(_newest(now))
        now = index.identity(path)
        if _kinds(old) != _kinds(now) or _names(path) != listed:
            return False
        self.seen[path] = now
        return True

    def folders(self, root: Path) -> list[str]:
        """The folders whose events can tell of a change of an input: each input folder, the
        folder of each other input (also of a missing one: it may be created there), the top."""
        found = {str(root)}
        for p, ident in self.seen.items():
            found.add(p if _is_folder(ident) else os.path.dirname(p))
        return sorted(f for f in found if os.path.isdir(f))


def _names(folder: str) -> list[str] | None:
    try:
        return sorted(n for n in os.listdir(folder) if not n.startswith("."))
    except OSError:
        return None


def _chunks(ident: bytes) -> list[tuple[int, ...]]:
    size = index._ST.size
    return [index._ST.unpack_from(ident, at) for at in range(0, len(ident) - size + 1, size)]


def _kinds(ident: bytes) -> list[tuple[int, ...]]:
    """Mode and inode of a path (and of its target for a symlink): what stays when only
    entries of a folder come and go."""
    return [c[:2] for c in _chunks(ident)] + [(len(ident),)]


def _is_folder(ident: bytes) -> bool:
    """A folder, or a symlink to one (its target's stat follows its own in an identity)."""
    chunks = _chunks(ident)
    return bool(chunks) and stat.S_ISDIR(chunks[-1][0])


def _newest(ident: bytes) -> int:
    return index._newest_ns(ident)


def _after_tick(stamp_ns: int) -> None:
    """Sleep until the clock is a tick past `stamp_ns` (at most one tick)."""
    wait_ns = stamp_ns + TICK_NS - time.time_ns()
    if 0 < wait_ns <= TICK_NS:
        time.sleep(wait_ns / 1e9)


@dataclass
class Outcome:
    files: Files | None  # None: the render failed
    reads: index.Reads | None  # what the render looked at
    start_ns: int
    seconds: float
    specs: list[Any] = field(default_factory=list)  # pod-spec paths (built-in and the repo's)
    memory: dict[str, Recall] = field(default_factory=dict)  # per environment, for the next render
    kept: list[str] = field(default_factory=list)  # inputs an incremental render did not read again

    def inputs(self) -> Inputs:
        """The inputs' identities, taken after the report is printed (not to delay it): sound,
        as anything changed since the render started is racy and rendered again."""
        return Inputs.after(self.reads, self.start_ns, self.kept)


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
        return Outcome(None, index.recorded(), start_ns, time.perf_counter() - t0, kept=kept)
    return Outcome(files, index.recorded(), start_ns, time.perf_counter() - t0, specs, remembered, kept)


class NotificationsUnavailable(Exception):
    """File-system notifications cannot be used here (said once; then the inputs are polled)."""


class _Stop:
    """The `stop_event` the library checks at each step: the caller's `stop()`."""

    def __init__(self, stop: Callable[[], bool]) -> None:
        self.is_set = stop


class Notifications:
    """Wakes the loop on file-system events in the folders of the inputs (watchfiles' RustNotify,
    the engine of its documented `watch()`, used directly so that the watcher is known to be
    running before the inputs are compared)."""

    def __init__(self, stop: Callable[[], bool]) -> None:
        try:
            from watchfiles._rust_notify import RustNotify
        except ImportError as exc:
            raise NotificationsUnavailable(f"the watchfiles library cannot be imported ({exc})") from None
        self._make = RustNotify
        self._notify: RustNotify | None = None
        self._stop = _Stop(stop)

    @property
    def running(self) -> bool:
        return self._notify is not None

    def start(self, folders: list[str]) -> bool:
        """Start watching `folders` (not recursively: each holds inputs). False when one of
        them vanished meanwhile (an input changed; the comparison will see it)."""
        self.close()
        try:
            self._notify = self._make(folders, False, False, 0, False, False)
        except FileNotFoundError:
            return False
        except (OSError, RuntimeError) as exc:  # inotify limits used up, a file system without events
            raise NotificationsUnavailable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        return True

    def wait(self, seconds: float) -> None:
        """Until events came (gathered for at most DEBOUNCE_MS), `seconds` passed or stop() holds."""
        if self._notify is None:
            time.sleep(MIN_INTERVAL)  # a folder vanished while starting: compare (and start) again soon
            return
        try:
            got = self._notify.watch(DEBOUNCE_MS, STEP_MS, max(1, int(seconds * 1000)), self._stop)
        except RuntimeError as exc:  # the underlying watcher failed (WatchfilesRustInternalError)
            raise NotificationsUnavailable(str(exc)) from None
        if got == "signal":  # a signal handler raised (Ctrl-C): the library swallowed the exception
            raise KeyboardInterrupt

    def close(self) -> None:
        """Stop the watcher (its thread ends on its own, within milliseconds)."""
        if self._notify is not None:
            self._notify.close()
            self._notify = None


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
          stop: Callable[[], bool] = lambda: False, poll: bool = False, notice: Echo | None = None) -> None:
    """Render, then re-render whenever an input changes, until interrupted (or `stop()`).
    `poll` forces polling; `notice` (stderr) is told once when notifications are unavailable."""
    root = root.resolve()
    first = render_once(root, envs, apps, write, echo, pick)
    previous: Files | None = None
    if first.files is not None:
        old = baseline(root, None, envs or None).files
        echo(report(only_apps(old, apps), only_apps(first.files, apps), first.specs, "out/", style).rstrip("\n"))
        previous = first.files
    inputs = first.inputs()
    memory = first.memory
    events = None if poll else _notifications(stop, notice or echo)
    how = "file-system notifications" if events is not None else "polling"
    echo(style(f"watching {len(inputs.seen)} inputs ({how}; "
               f"{'writing out/' if write else 'preview only; --write keeps out/ current'}); Ctrl-C to stop", "dim"))
    try:
        while not stop():
            if events is not None and not events.running:
                try:
                    events.start(inputs.folders(root))  # before comparing: a change after it wakes the wait
                except NotificationsUnavailable as exc:
                    _fall_back(events, str(exc), notice or echo)
                    events = None
            t0 = time.perf_counter()
            changed = inputs.changed()
            cost = time.perf_counter() - t0
            if not changed and not inputs.racy:
                try:
                    _wait(events, cost)
                except NotificationsUnavailable as exc:
                    _fall_back(events, str(exc), notice or echo)
                    events = None
                continue
            if events is not None:
                events.close()  # not while rendering: started again on the inputs the render finds
            _settle(changed)
            previous, inputs, memory = _rerender(root, envs, apps, write, echo, pick, style, changed, previous, memory)
    finally:
        if events is not None:
            events.close()


def _notifications(stop: Callable[[], bool], notice: Echo) -> Notifications | None:
    try:
        return Notifications(stop)
    except NotificationsUnavailable as exc:
        _fall_back(None, str(exc), notice)
        return None


def _fall_back(events: Notifications | None, why: str, notice: Echo) -> None:
    """Say once why notifications are off; the inputs are polled from now on."""
    if events is not None:
        events.close()
    notice(f"watch: file-system notifications unavailable ({why}); polling the inputs instead")


def _wait(events: Notifications | None, cost: float) -> None:
    """Until the next comparison: an event (or SAFETY_S), else a polling interval."""
    if events is not None:
        events.wait(SAFETY_S)
    else:
        time.sleep(max(MIN_INTERVAL, COST_FACTOR * cost))


def _settle(changed: Sequence[str]) -> None:
    """Start the render a clock tick after the newest change it will read: a render starting
    in the same tick as a save would find that input racy and render once more to be sure."""
    _after_tick(max((_newest(index.identity(p)) for p in changed), default=0))


def _rerender(root: Path, envs: Sequence[str], apps: Sequence[str], write: bool, echo: Echo, pick: Pick,
              style: diff_report.Style, changed: list[str], previous: Files | None,
              memory: Mapping[str, Recall]) -> tuple[Files | None, Inputs, dict[str, Recall]]:
    """Render after `changed` (empty: only an input stamped during the last render, which may
    have changed after it was read: render again to be sure, and say something only if the
    output changed); only the apps they belong to when the last render's `memory` allows.
    Returns the output to compare the next one with, the new inputs and the new memory."""
    quiet = not changed
    if not quiet:
        shown = ", ".join(sorted(_shown(root, p) for p in changed)[:5]) + (" ..." if len(changed) > 5 else "")
        echo(style(f"[{time.strftime('%H:%M:%S')}] changed: {shown}", "head"))
    outcome = render_once(root, envs, apps, write, echo, pick, memory, changed)
    if outcome.files is not None:  # else the error was printed; the next good render is compared with the last good one
        if previous is None:
            previous = baseline(root, None, envs or None).files
        if not quiet or only_apps(previous, apps) != only_apps(outcome.files, apps):
            echo(report(only_apps(previous, apps), only_apps(outcome.files, apps), outcome.specs,
                        "the previous render", style).rstrip("\n"))
        previous = outcome.files
    if not quiet:
        echo(style(f"rendered in {outcome.seconds:.2f} s" + (", out/ written" if write and outcome.files else ""), "dim"))
    return previous, outcome.inputs(), outcome.memory


def _shown(root: Path, path: str) -> str:
    prefix = str(root) + "/"
    return path[len(prefix):] if path.startswith(prefix) else path
