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
from collections.abc import Iterator
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


def test_a_save_is_reported_and_ctrl_c_exits_130(repo: Path, watcher: list[Watcher]) -> None:
    w = Watcher(repo)
    watcher.append(w)
    w.until("watching")
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
