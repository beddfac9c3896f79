"""`gitops-gen watch`: a real process sees a real save and reports what it changed, or the error;
Ctrl-C stops it with exit 130. Budgets are loose (a busy machine must not fail them); the
latency figure itself is measured by bench/run.py (row watch-1)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import run, snapshot, write_repo

BUDGET = 60.0  # seconds: loose on purpose (no timed assertion; the benchmark reports the figure)

APP = """
configMaps:
  - name: web-config
    literals: {mode: normal}
"""
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: main
          image: example.com/web:1.0
          envFrom: [{configMapRef: {name: web-config}}]
"""


class Watcher:
    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "generator", "watch", "--repo", str(root), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
            # As from a terminal: Ctrl-C is not ignored. A child inherits an ignored SIGINT (a
            # test runner started in the background has one), and Python then keeps ignoring it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, text: str) -> list[str]:
        """The lines printed until one contains `text` (fails after the budget)."""
        deadline = time.monotonic() + BUDGET
        got: list[str] = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, f"watch exited early: {self.seen}"
                continue
            got.append(line)
            self.seen.append(line)
            if text in line:
                return got
        raise AssertionError(f"{text!r} not printed within {BUDGET} s; printed: {self.seen}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=BUDGET)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_repo(tmp_path / "repo", {
        "base/web/app.yaml": APP, "base/web/deployment.yaml": DEPLOYMENT, "environments/dev/env.yaml": "namespace: dev\n",
        "environments/prod/env.yaml": "namespace: prod\n",  # two environments: rendered in parallel
    })
    assert run("render", "--repo", root).exit_code == 0
    return root


@pytest.fixture
def watcher(repo: Path) -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for w in started:
        w.kill()


@pytest.mark.parametrize("how", ["file-system notifications", "polling"])
def test_a_save_is_reported_and_ctrl_c_exits_130(repo: Path, watcher: list[Watcher], how: str) -> None:
    w = Watcher(repo, *(["--poll"] if how == "polling" else []))
    watcher.append(w)
    assert f"({how};" in w.until("watching")[-1]
    before = snapshot(repo / "out")
    (repo / "base/web/app.yaml").write_text(APP.replace("mode: normal", "mode: fast"), encoding="utf-8")
    w.until("changed: base/web/app.yaml")
    report = w.until("rendered in")
    text = "\n".join(report)
    assert "web-config" in text and '~ mode: "normal" -> "fast"' in text
    assert text.count("web (Deployment) rolls: web-config changed") == 2  # dev and prod
    assert snapshot(repo / "out") == before  # preview only
    # A broken save: the error with file and line, and watching goes on.
    (repo / "base/web/app.yaml").write_text("configMaps: [\n", encoding="utf-8")
    w.until("error: base/web/app.yaml:")
    assert w.interrupt() == 130
    assert "interrupted" in w.until("interrupted")[-1]


def test_write_keeps_out_current(repo: Path, watcher: list[Watcher]) -> None:
    w = Watcher(repo, "--write")
    watcher.append(w)
    w.until("watching")
    (repo / "base/web/app.yaml").write_text(APP.replace("mode: normal", "mode: fast"), encoding="utf-8")
    w.until("out/ written")
    assert w.interrupt() == 130
    assert run("check", "--repo", repo).exit_code == 0
    assert "fast" in (repo / "out/dev/web/configmap-web-config.yaml").read_text(encoding="utf-8")


def _files(root: Path) -> dict[str, dict[str, str]]:
    from generator.pipeline import Repo, render_many

    repo = Repo.open(root)
    return {env: dict(files) for env, files in render_many(repo, repo.envs, jobs=1).items()}


def test_report_of_a_save_equals_the_full_diff(tmp_path: Path) -> None:
    """The watch compares only the app folders a save touched (and consumers of a changed
    ConfigMap elsewhere): the report is the one the whole output gives."""
    from generator.review import diff_report
    from generator.review.diff import diff_files
    from generator.review.watch import report, touched
    from generator.steps.references import BUILTIN_POD_SPECS

    other = DEPLOYMENT.replace("name: web}", "name: other}").replace("app: web", "app: other")
    root = write_repo(tmp_path / "repo", {
        "base/web/app.yaml": APP.replace("literals:", "hash: false\n    literals:"),
        "base/web/deployment.yaml": DEPLOYMENT,
        "base/other/deployment.yaml": other,  # uses web-config from another app
        "base/third/app.yaml": "configMaps: [{name: third-config, literals: {a: b}}]\n",
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    old = _files(root)
    (root / "base/web/app.yaml").write_text(
        APP.replace("literals:", "hash: false\n    literals:").replace("mode: normal", "mode: fast"), encoding="utf-8")
    new = _files(root)
    cut_old, cut_new = touched(old, new)
    assert not any(p.startswith("third/") for p in cut_new["dev"])  # untouched app left out
    assert "other/deployment-other.yaml" in cut_new["dev"]  # a consumer in another app kept
    full = diff_report.text(diff_files(old, new, BUILTIN_POD_SPECS, "x"))
    assert report(old, new, BUILTIN_POD_SPECS, "x", diff_report.plain) == full
    assert "other" in full


# --- in this process: the waiting itself (notifications, polling, the fall-back) --------------


class InProcess:
    """`watch` run in this process until a report is printed; `edit` runs in a thread once it
    watches. Lines go to `lines`, stderr notices to `notices`."""

    def __init__(self, root: Path, edit: Callable[[], None], poll: bool = False, linger: float = 0.0) -> None:
        self.root, self.edit, self.poll, self.linger = root, edit, poll, linger  # linger: watch on after the report
        self.reported = 0.0
        self.lines: list[str] = []
        self.notices: list[str] = []
        self.deadline = time.monotonic() + BUDGET

    def echo(self, text: str) -> None:
        self.lines.append(text)
        if text.startswith("watching"):
            threading.Thread(target=self._edit_soon).start()

    def _edit_soon(self) -> None:
        time.sleep(0.1)  # past the first render's racy window (watch.TICK_NS)
        self.edit()

    def stop(self) -> bool:
        if not self.reported and any(line.startswith("rendered in") for line in self.lines):
            self.reported = time.monotonic()
        return bool(self.reported) and time.monotonic() > self.reported + self.linger or time.monotonic() > self.deadline

    def run(self) -> list[str]:
        from generator.cli import pick_envs
        from generator.review.watch import watch

        watch(self.root, (), (), False, self.echo, lambda repo, wanted: pick_envs(repo, tuple(wanted)),
              stop=self.stop, poll=self.poll, notice=self.notices.append)
        assert time.monotonic() < self.deadline, f"no report within {BUDGET} s: {self.lines}"
        return self.lines


def _save(root: Path) -> Callable[[], None]:
    def edit() -> None:  # as an editor saves: a temporary file renamed over the old one
        tmp = root / "base/web/.app.yaml.tmp"
        tmp.write_text(APP.replace("mode: normal", "mode: fast"), encoding="utf-8")
        os.replace(tmp, root / "base/web/app.yaml")
    return edit


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))  # every thread, the library's native ones too


@pytest.mark.parametrize("poll", [False, True])
def test_the_change_is_seen_and_no_thread_is_left(repo: Path, poll: bool) -> None:
    before = _threads()
    lines = InProcess(repo, _save(repo), poll=poll).run()
    assert any("(polling;" in line for line in lines) == poll
    assert any("changed: base/web/app.yaml" in line for line in lines), lines
    assert '~ mode: "normal" -> "fast"' in "\n".join(lines)
    deadline = time.monotonic() + BUDGET
    while _threads() > before and time.monotonic() < deadline:  # the watcher's thread ends after close
        time.sleep(0.05)
    assert _threads() == before


def test_hidden_files_and_out_render_nothing(repo: Path) -> None:
    """An editor's swap file beside an input, a file in out/, a file at the top: events, but no
    input changed, so no render; the real save after them is the one reported."""
    def edits() -> None:
        (repo / "base/web/.app.yaml.swp").write_text("swap", encoding="utf-8")
        (repo / "out/dev/scratch.txt").write_text("x", encoding="utf-8")
        (repo / "notes.txt").write_text("x", encoding="utf-8")
        time.sleep(0.3)  # several wake-ups of the waiting, each deciding nothing changed
        _save(repo)()
    lines = InProcess(repo, edits, linger=0.5).run()
    changed = [line for line in lines if "changed:" in line]
    assert len(changed) == 1 and changed[0].endswith("changed: base/web/app.yaml"), lines


def test_a_new_visible_file_in_an_input_folder_is_a_change(repo: Path) -> None:
    lines = InProcess(repo, lambda: (repo / "base/web/service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n", encoding="utf-8")).run()
    assert any("changed: base/web" in line for line in lines), lines
    assert "web (Service)" in "\n".join(lines) or "service" in "\n".join(lines).lower()


def test_without_watchfiles_it_polls_and_says_so_once(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # `import watchfiles...` now fails
    monkeypatch.setitem(sys.modules, "watchfiles._rust_notify", None)
    run_ = InProcess(repo, _save(repo))
    lines = run_.run()
    assert len(run_.notices) == 1 and "notifications unavailable" in run_.notices[0], run_.notices
    assert "cannot be imported" in run_.notices[0] and "polling" in run_.notices[0]
    assert any("(polling;" in line for line in lines)
    assert any("changed: base/web/app.yaml" in line for line in lines), lines


def test_when_the_watcher_cannot_start_it_polls(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The inotify limits used up (or a file system without notifications): the library raises
    when the watcher starts; watching goes on by polling, said once."""
    import errno

    import watchfiles._rust_notify

    def refuse(*args: object) -> None:
        raise OSError(errno.ENOSPC, "OS file watch limit reached")
    monkeypatch.setattr(watchfiles._rust_notify, "RustNotify", refuse)
    run_ = InProcess(repo, _save(repo))
    lines = run_.run()
    assert run_.notices == ["watch: file-system notifications unavailable ([Errno 28] OS file watch limit reached); "
                            "polling the inputs instead"]
    assert any("changed: base/web/app.yaml" in line for line in lines), lines


def test_a_save_burst_is_one_render(repo: Path) -> None:
    """Several events within the debounce (write, rename, chmod of one save): one render."""
    def burst() -> None:
        _save(repo)()
        os.chmod(repo / "base/web/app.yaml", 0o644)
        (repo / "base/web/app.yaml").touch()
    lines = InProcess(repo, burst, linger=1.0).run()
    assert sum("changed:" in line for line in lines) == 1, lines


@pytest.mark.parametrize("charts", [False, True])
def test_a_hidden_file_is_a_change_only_where_charts_are_read(tmp_path: Path, charts: bool) -> None:
    """Hidden names are skipped by every listing of a render but a chart's (Helm reads a chart's
    folders whole, .helmignore included): with charts, a hidden file is a change like any other."""
    from generator.io import index
    from generator.review.watch import Inputs

    folder = tmp_path / "base/web"
    folder.mkdir(parents=True)
    (folder / "app.yaml").write_text("{}\n", encoding="utf-8")
    reads = index.Reads(str(tmp_path), time.time_ns(), {str(folder), str(folder / "app.yaml")},
                        unindexable="Helm charts" if charts else "")
    inputs = Inputs.after(reads, reads.start_ns)
    (folder / ".helmignore").write_text("*.bak\n", encoding="utf-8")
    assert inputs.changed() == ([str(folder)] if charts else [])
    (folder / "service.yaml").write_text("{}\n", encoding="utf-8")  # a visible one always is
    assert inputs.changed() == [str(folder)]
