"""Benchmark our renderer against `kubectl kustomize` and the libyaml floor (see bench/README.md).

    python bench/run.py --apps 1000 --envs 1 --repeat 3
    python bench/run.py --charts 50 --envs 3 --repeat 3     (the Helm chart row: bench/charts.py)
    python bench/run.py --shape realistic --apps 500 ...    (9 objects per app, large config files)

Generates the synthetic repos (bench/synth.py) for N and 2N apps, then times, interleaved
(every command once per round, rounds repeated R times):

    render      python -m generator render --repo DIR        cold: out/ and the memo removed first
    render-0    python -m generator render --repo DIR        right after it, nothing changed (render index)
    check-0     python -m generator check --repo DIR         likewise (expects exit 0)
    kustomize   kubectl kustomize OVERLAY > FILE              once per environment, summed
    floor       python bench/floor.py run ...                 libyaml read+parse / emit+write
    check       python -m generator check --repo DIR          cold, on the fresh out/ (expects exit 0)
    diff        python -m generator diff --repo DIR           cold, after one app's literal changed (expects 3)
    render-1    python -m generator render --repo DIR        renders that one-app change onto out/ with
                                                              the memo the cold render left (the developer loop)
    watch-1     python -m generator watch --repo DIR         started untimed; the time from a one-app save
                                                              to the end of its printed report

"Cold" means the renderer's parse memo (generator/memo.py, pointed by GITOPS_GEN_CACHE_DIR
at a folder of the benchmark) is emptied first, as on CI or a fresh clone.

For each: wall time, CPU time (user+sys of the child and its reaped descendants, from os.wait4),
peak RSS of the largest single process (ru_maxrss from os.wait4) and the sampled peak PSS summed
over the whole process tree (every 20 ms from /proc/<pid>/smaps_rollup; PSS shares pages that
forked workers hold in common instead of counting them once per process). It prints a table, the ratios, the scaling
t(2N)/t(N), and ends with exactly one line:

    ratio_vs_kustomize=<x> ratio_vs_floor=<y> scaling=<z>

(medians of wall time at N apps; ours divided by theirs, so smaller is better; scaling is our
render at 2N divided by our render at N; `nan` for a ratio that was not measured.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import synth  # noqa: E402
from tests.kubectl import KubectlNotFound, find_kubectl, kubectl_version  # noqa: E402

SAMPLE_INTERVAL = 0.02
CHANGED_APP = "app-0000"
WORK_MARKER = ".gitops-gen-bench"
COMMANDS = ("render", "render-0", "check-0", "kustomize", "floor", "check", "diff", "render-1", "watch-1")
WATCH_BUDGET = 300.0  # seconds a watch may take to start or to report a save before the bench fails
RACY_S = 2.1  # generator/io/index.py RACY_NS (and a tick): inputs edited more recently are not indexed


class BenchError(RuntimeError):
    """A timed or preparatory command failed."""


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # seconds, user + sys of the child and its reaped descendants
    maxrss_kb: int  # largest single process of the tree (ru_maxrss)
    tree_kb: int  # sampled peak of the summed PSS of the whole tree


@dataclass
class Command:
    name: str
    argvs: list[list[str]]  # several for kustomize (one per overlay), else one
    expect: int = 0
    before: Callable[[], None] | None = None  # untimed preparation
    after: Callable[[], None] | None = None  # untimed, once the command has run
    stdout_files: list[Path] | None = None  # where each argv's stdout goes (else a log file)
    watch: bool = False  # argvs[0] is a `watch`: time from a one-app save to its report (not its run)


@dataclass
class SizeSetup:
    apps: int
    repo: synth.SynthRepo
    commands: list[Command] = field(default_factory=list)
    floor_dest: Path = Path()
    out_files: int = 0
    out_bytes: int = 0


# --- measuring one child ------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _pss_kb(pid: int) -> int:
    """Proportional set size: private pages plus a fair share of pages shared with other
    processes (forked workers share most of their parent's pages, which RSS would count again
    for every worker)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0


def _tree_pss_kb(root: int) -> int:
    children = _children_map()
    total = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        total += _pss_kb(pid)
        stack.extend(children.get(pid, ()))
    return total


class _TreeSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak_kb = max(self.peak_kb, _tree_pss_kb(self.pid))
            self._halt.wait(SAMPLE_INTERVAL)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_measured(argv: Sequence[str], *, cwd: Path, env: dict[str, str], stdout: Path, stderr: Path) -> tuple[int, Sample]:
    """Run one command; return its exit code and what it cost."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: leave no child running
            proc.kill()
            proc.wait()
            raise
        finally:
            sampler.stop()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    sample = Sample(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        maxrss_kb=usage.ru_maxrss,
        tree_kb=max(sampler.peak_kb, usage.ru_maxrss),
    )
    return proc.returncode, sample


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- the benchmark ------------------------------------------------------------------------


def _child_env(work: Path) -> dict[str, str]:
    """The children's environment: the generator importable, bytecode cached (in the scratch folder).

    Some machines set PYTHONDONTWRITEBYTECODE=1, which would make every timed Python child compile
    the generator from source, a cost an installed tool does not pay; the warm-up run fills the
    cache, for ours and the floor alike.
    """
    env = dict(os.environ)
    # The generator is imported from a snapshot taken at the start (see snapshot_generator).
    env["PYTHONPATH"] = str(work / "snapshot") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    # The renderer's parse memo (generator/memo.py) goes to a folder the benchmark owns, so
    # it can be emptied before every cold run and never touches the user's cache.
    env.pop("GITOPS_GEN_CACHE", None)
    env["GITOPS_GEN_CACHE_DIR"] = str(work / "memo")
    return env


def snapshot_generator(work: Path) -> str:
    """Copy generator/ into the scratch folder, so every timed run uses the same code even if the
    working tree changes meanwhile; returns a digest of the copied sources."""
    target = work / "snapshot" / "generator"
    shutil.copytree(ROOT / "generator", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted(target.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(target).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _rmtree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _folder_size(folder: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            files += 1
            size += os.path.getsize(os.path.join(dirpath, name))
    return files, size


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Path = args.work.resolve()
        self.env = _child_env(self.work)
        self.logs = self.work / "logs"
        self.kubectl: Path | None = None
        self.kubectl_version = ""
        self.results: dict[tuple[int, str], list[Sample]] = {}
        self.edits = 0
        self.last_edit = 0.0  # time.time() of the last one-app edit
        self.trashed = 0
        self.source_digest = ""
        self.wanted: set[str] = set(args.commands)
        if args.no_kustomize:
            self.wanted.discard("kustomize")

    def reset_work(self) -> None:
        """Empty the scratch folder; refuse a non-empty folder this script did not make."""
        if self.work.exists():
            if any(self.work.iterdir()) and not (self.work / WORK_MARKER).exists():
                raise BenchError(f"--work {self.work} is not empty and was not made by bench/run.py; pick another folder")
            _rmtree(self.work)
        self.work.mkdir(parents=True)
        (self.work / WORK_MARKER).write_text("scratch folder of bench/run.py; deleted by it\n", encoding="utf-8")

    def discard(self, path: Path) -> None:
        """Move earlier output out of the way; it is deleted after the last round. Deleting
        thousands of files right before a timed run makes that run's file creations slow on
        some file systems (here: 3,000 files in 0.04 s on a fresh disk area, 0.4-0.7 s right
        after a delete), which would time the benchmark's cleanup, not the command."""
        if path.exists() or path.is_symlink():
            self.trashed += 1
            trash = self.work / "trash"
            trash.mkdir(exist_ok=True)
            path.rename(trash / f"{self.trashed}-{path.name}")

    # one command, checked
    def run(self, label: str, argv: Sequence[str], expect: int, stdout: Path | None = None) -> Sample:
        self.logs.mkdir(parents=True, exist_ok=True)
        safe = label.replace(" ", "_").replace("/", "_")
        out = stdout if stdout is not None else self.logs / f"{safe}.out"
        err = self.logs / f"{safe}.err"
        try:
            code, sample = run_measured(argv, cwd=self.work, env=self.env, stdout=out, stderr=err)
        except OSError as exc:
            raise BenchError(f"{label}: cannot run {argv[0]}: {exc}") from None
        if code != expect:
            detail = _tail(err) or _tail(out)
            raise BenchError(
                f"{label}: `{' '.join(map(str, argv))}` exited {code}, expected {expect}\n"
                f"--- last lines of its output ({err}) ---\n{detail}"
            )
        return sample

    def edit_one_app(self, repo: synth.SynthRepo) -> None:
        """Change one literal of one app: a one-app change for `diff` and `render-1`."""
        self.edits += 1
        app_yaml = repo.ours / "base" / CHANGED_APP / "app.yaml"
        original = synth.app_yaml(CHANGED_APP, repo.shape)
        text = original.replace(
            f'key09: "{CHANGED_APP}-value-09"', f'key09: "{CHANGED_APP}-value-09-edit-{self.edits}"'
        )
        if text == original:
            raise BenchError("could not apply the one-app edit (synth output changed?)")
        app_yaml.write_text(text, encoding="utf-8")
        self.last_edit = time.time()

    def setup_size(self, apps: int) -> SizeSetup:
        args = self.args
        root = self.work / f"n{apps}"
        t0 = time.perf_counter()
        repo = synth.write_repos(root, apps, args.envs, args.shape)
        print(f"  generated {apps} apps x {args.envs} envs ({args.shape} shape) in {time.perf_counter() - t0:.1f} s: {root}", flush=True)
        floor_dest = root / "floor-out"
        setup = SizeSetup(apps=apps, repo=repo, floor_dest=floor_dest)
        ours = repo.ours
        py = sys.executable
        render = [py, "-m", "generator", "render", "--repo", str(ours)]
        plan = root / "floor.plan"
        kout = root / "kustomize-out"

        memo = self.work / "memo"

        def cold() -> None:
            # No memo from earlier runs: what CI, a fresh clone or a first render pays.
            _rmtree(memo)

        def clean_render() -> None:
            # A full render: no memo, and nothing the renderer left in the repo (out/, anything else).
            # Its inputs older than the render index's racy window, so the rows after it (render-0,
            # check-0) time an index that could be saved, as in a developer's loop.
            time.sleep(max(0.0, self.last_edit + RACY_S - time.time()))
            cold()
            for entry in ours.iterdir():
                if entry.name not in ("base", "environments", "gitops-gen.yaml"):
                    self.discard(entry)

        def edit_cold() -> None:
            cold()
            self.edit_one_app(repo)

        # Untimed warm-up and preparation: a render to validate the repo and plan the floor.
        clean_render()
        self.run(f"prepare n{apps} render", render, 0)
        if not (ours / "out").is_dir():
            raise BenchError(f"render wrote no {ours / 'out'}")
        setup.out_files, setup.out_bytes = _folder_size(ours / "out")
        self.run(f"prepare n{apps} floor plan",
                 [py, str(ROOT / "bench" / "floor.py"), "plan", "--rendered", str(ours / "out"), "--plan", str(plan)], 0)
        if "check" in self.wanted:
            self.run(f"prepare n{apps} check", [py, "-m", "generator", "check", "--repo", str(ours)], 0)

        cmds = setup.commands
        after_render = root / "memo-after-render"

        def keep_memo() -> None:
            # What the developer's last render left in their cache, for render-1.
            self.discard(after_render)
            if memo.is_dir():
                shutil.copytree(memo, after_render)

        def edited_since_render() -> None:
            if "diff" not in self.wanted:
                self.edit_one_app(repo)
            if after_render.is_dir():
                self.discard(memo)
                shutil.copytree(after_render, memo)

        cmds.append(Command("render", [render], 0, before=clean_render, after=keep_memo))
        # Nothing changed since that render: answered from the render index (generator/io/index.py).
        cmds.append(Command("render-0", [render], 0))
        cmds.append(Command("check-0", [[py, "-m", "generator", "check", "--repo", str(ours)]], 0))
        if self.kubectl is not None:
            kout.mkdir(parents=True, exist_ok=True)
            cmds.append(Command(
                "kustomize",
                [[str(self.kubectl), "kustomize", str(repo.overlay(env))] for env in repo.envs],
                0,
                stdout_files=[kout / f"{env}.yaml" for env in repo.envs],
            ))
        cmds.append(Command(
            "floor",
            [[py, str(ROOT / "bench" / "floor.py"), "run", "--repo", str(ours), "--plan", str(plan), "--dest", str(floor_dest)]],
            0,
            before=lambda: self.discard(floor_dest),
        ))
        cmds.append(Command("check", [[py, "-m", "generator", "check", "--repo", str(ours)]], 0, before=cold))
        cmds.append(Command("diff", [[py, "-m", "generator", "diff", "--repo", str(ours)]], 3, before=edit_cold))
        # render-1 renders the one-app edit that diff saw (or makes its own when diff is left out)
        # onto the out/ of the cold render, with the memo that render left: the developer loop
        # (render, change one app, render again); check and diff ran cold in between.
        cmds.append(Command("render-1", [render], 0, before=edited_since_render))
        # watch-1: a running `watch` (started untimed) sees a one-app save and prints its report.
        cmds.append(Command("watch-1", [[py, "-m", "generator", "watch", "--repo", str(ours)]], 0, watch=True))
        setup.commands = [c for c in cmds if c.name in self.wanted]
        return setup

    def time_watch(self, setup: SizeSetup, argv: list[str]) -> Sample:
        """Start `watch` (untimed), save a one-app edit, and time until the report is printed.
        Wall time only: CPU and memory are those of a long-running process, not of the save."""
        proc = subprocess.Popen(argv, cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        lines: list[str] = []
        got = threading.Event()
        wanted = ["watching"]

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if wanted[0] in line:
                    got.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            if not got.wait(WATCH_BUDGET):
                raise BenchError(f"n{setup.apps} watch-1: no 'watching' line in {WATCH_BUDGET:.0f} s:\n{''.join(lines[-20:])}")
            time.sleep(0.5)  # past the first render's racy window (generator/review/watch.py TICK_NS)
            got.clear()
            wanted[0] = "rendered in"
            start = time.perf_counter()
            self.edit_one_app(setup.repo)
            if not got.wait(WATCH_BUDGET):
                raise BenchError(f"n{setup.apps} watch-1: the save was not reported in {WATCH_BUDGET:.0f} s:\n{''.join(lines[-20:])}")
            wall = time.perf_counter() - start
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return Sample(wall=wall, cpu=float("nan"), maxrss_kb=0, tree_kb=0)

    def time_command(self, setup: SizeSetup, cmd: Command, round_no: int) -> Sample:
        if cmd.watch:
            return self.time_watch(setup, cmd.argvs[0])
        if cmd.before is not None:
            cmd.before()
        parts: list[Sample] = []
        for i, argv in enumerate(cmd.argvs):
            stdout = cmd.stdout_files[i] if cmd.stdout_files else None
            label = f"n{setup.apps} {cmd.name}" + (f" {i}" if len(cmd.argvs) > 1 else "") + f" round {round_no}"
            parts.append(self.run(label, argv, cmd.expect, stdout))
        if cmd.after is not None:
            cmd.after()
        return Sample(
            wall=sum(p.wall for p in parts),
            cpu=sum(p.cpu for p in parts),
            maxrss_kb=max(p.maxrss_kb for p in parts),
            tree_kb=max(p.tree_kb for p in parts),
        )

    def main(self) -> int:
        args = self.args
        if "kustomize" in self.wanted:
            try:
                self.kubectl = args.kubectl.resolve() if args.kubectl else find_kubectl()
                self.kubectl_version = kubectl_version(self.kubectl)
            except (KubectlNotFound, RuntimeError, OSError) as exc:
                raise BenchError(f"no usable kubectl ({exc}); pass --kubectl PATH or --no-kustomize") from None
        sizes = [args.apps, 2 * args.apps]
        self.reset_work()
        self.source_digest = snapshot_generator(self.work)
        print(f"gitops-gen benchmark: {args.shape} shape, N={args.apps} and 2N={2 * args.apps} apps, M={args.envs} envs, "
              f"{args.repeat} rounds; python {platform.python_version()}, {os.cpu_count()} cores"
              + (f", kubectl {self.kubectl_version} ({self.kubectl})" if self.kubectl else ", kustomize skipped"),
              flush=True)
        print(f"generator sources: {ROOT / 'generator'} (snapshot sha256 {self.source_digest})", flush=True)
        load = os.getloadavg()[0]
        print(f"load average before: {load:.2f}" + (
            "  (WARNING: the machine is busy; wall times will be inflated, CPU times less so)"
            if load > 0.5 * (os.cpu_count() or 1) else ""), flush=True)
        print("preparing (untimed): synthetic repos, a warm-up render, the floor plan, a check", flush=True)
        setups = [self.setup_size(n) for n in sizes]
        for s in setups:
            for cmd in s.commands:
                self.results[(s.apps, cmd.name)] = []
        for round_no in range(1, args.repeat + 1):
            for s in setups:
                for cmd in s.commands:
                    sample = self.time_command(s, cmd, round_no)
                    self.results[(s.apps, cmd.name)].append(sample)
                    print(f"  round {round_no} n={s.apps:<5} {cmd.name:<10} wall {sample.wall:8.3f} s  "
                          f"cpu {sample.cpu:8.3f} s  rss {sample.maxrss_kb / 1024:7.1f} MB", flush=True)
        self.report(setups)
        if not args.keep:
            _rmtree(self.work)
        return 0

    # --- reporting -------------------------------------------------------------------------

    def median(self, apps: int, name: str, what: str = "wall") -> float:
        samples = self.results.get((apps, name))
        if not samples:
            return float("nan")
        return float(statistics.median(float(getattr(x, what)) for x in samples))

    def report(self, setups: list[SizeSetup]) -> None:
        n, n2 = setups[0].apps, setups[1].apps
        print()
        print("| apps | command | wall median (s) | wall min (s) | CPU median (s) | peak RSS, largest process (MB) | peak PSS, process tree (MB) |")
        print("|---:|---|---:|---:|---:|---:|---:|")
        for s in setups:
            for cmd in s.commands:
                samples = self.results[(s.apps, cmd.name)]
                print(f"| {s.apps} | {cmd.name} | {self.median(s.apps, cmd.name):.3f} | "
                      f"{min(x.wall for x in samples):.3f} | {self.median(s.apps, cmd.name, 'cpu'):.3f} | "
                      f"{max(x.maxrss_kb for x in samples) / 1024:.1f} | {max(x.tree_kb for x in samples) / 1024:.1f} |")
        print()
        for s in setups:
            renders = self.results.get((s.apps, "render"), [])
            largest = max((x.maxrss_kb for x in renders), default=0) * 1024
            tree_peak = max((x.tree_kb for x in renders), default=0) * 1024
            floor_files, floor_bytes = _folder_size(s.floor_dest)
            print(f"output at {s.apps} apps: ours {s.out_files} files, {s.out_bytes / 1e6:.2f} MB; "
                  f"floor {floor_files} files, {floor_bytes / 1e6:.2f} MB; render peak memory / output size: "
                  f"largest process {largest / max(s.out_bytes, 1):.1f}, "
                  f"process tree (PSS) {tree_peak / max(s.out_bytes, 1):.1f}")
        print()
        ratio_k = self.median(n, "render") / self.median(n, "kustomize")
        ratio_f = self.median(n, "render") / self.median(n, "floor")
        for a in (n, n2):
            print(f"ours/kustomize at {a} apps: wall {self.median(a, 'render') / self.median(a, 'kustomize'):.4f}  "
                  f"cpu {self.median(a, 'render', 'cpu') / self.median(a, 'kustomize', 'cpu'):.4f}")
            print(f"ours/floor     at {a} apps: wall {self.median(a, 'render') / self.median(a, 'floor'):.3f}  "
                  f"cpu {self.median(a, 'render', 'cpu') / self.median(a, 'floor', 'cpu'):.3f}")
        names = [c.name for c in setups[0].commands]
        print("scaling t(2N)/t(N), wall: " + "  ".join(
            f"{name} {self.median(n2, name) / self.median(n, name):.3f}" for name in names))
        print(f"one-app change: render-1 / render = {self.median(n, 'render-1') / self.median(n, 'render'):.3f} at {n} apps")
        print(f"watch: a one-app save reported {self.median(n, 'watch-1'):.3f} s after it at {n} apps "
              f"({self.median(n, 'watch-1') / self.median(n, 'render'):.3f} of a cold render)")
        print(f"nothing changed: render-0 / render = {self.median(n, 'render-0') / self.median(n, 'render'):.3f}, "
              f"check-0 / render = {self.median(n, 'check-0') / self.median(n, 'render'):.3f} at {n} apps")
        if self.args.json:
            data = {
                "apps": [n, n2],
                "envs": self.args.envs,
                "shape": self.args.shape,
                "repeat": self.args.repeat,
                "kubectl": self.kubectl_version or None,
                "generator_sha256": self.source_digest,
                "samples": {f"{a}/{c}": [asdict(x) for x in v] for (a, c), v in self.results.items()},
                "output": {s.apps: {"files": s.out_files, "bytes": s.out_bytes} for s in setups},
            }
            self.args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        scaling = self.median(n2, "render") / self.median(n, "render")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print(f"ratio_vs_kustomize={ratio_k:.4f} ratio_vs_floor={ratio_f:.3f} scaling={scaling:.3f}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time our render/check/diff against kubectl kustomize and the libyaml floor at N and 2N apps.",
        epilog="Ends with one line: ratio_vs_kustomize=<x> ratio_vs_floor=<y> scaling=<z>.",
    )
    parser.add_argument("--apps", type=int, required=True, help="N: apps in the smaller repo (the other has 2N)")
    parser.add_argument("--envs", type=int, default=1, help="M: environments (default 1)")
    parser.add_argument("--shape", choices=synth.SHAPES, default="basic",
                        help="the synthetic repo: basic (3 small objects per app) or realistic "
                             "(9 objects per app, large config files; bench/synth_realistic.py)")
    parser.add_argument("--repeat", type=int, default=3, help="R: timed rounds (default 3)")
    parser.add_argument("--no-kustomize", action="store_true", help="skip kubectl kustomize (quick runs)")
    parser.add_argument("--commands", type=lambda v: [c.strip() for c in v.split(",") if c.strip()],
                        default=list(COMMANDS),
                        help=f"comma-separated subset of {','.join(COMMANDS)} to time (default: all); "
                             "ratios of commands left out print as nan")
    parser.add_argument("--kubectl", type=Path, help="kubectl to use (default: tests/kubectl.py's find_kubectl)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work",
                        help="scratch folder, replaced at the start (default bench/work, gitignored)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder afterwards")
    parser.add_argument("--json", type=Path, help="also write every sample to this JSON file")
    args = parser.parse_args(argv)
    unknown = set(args.commands) - set(COMMANDS)
    if unknown or "render" not in args.commands:
        parser.error(f"--commands: unknown {sorted(unknown)}" if unknown else "--commands must include render")
    if args.apps < 1 or args.envs < 1 or args.repeat < 1:
        parser.error("--apps, --envs and --repeat must be at least 1")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if any(a == "--charts" or a.startswith("--charts=") for a in given):
        from bench import charts  # the chart row: its own repo, commands and ratio line

        return charts.main(given)
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return Bench(args).main()
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
