"""The entry point (generator/start.py): the plain forms of `render` and `check` of an unchanged
repo are answered before click is imported, exactly as the CLI answers them; every other form,
and every miss, is the CLI's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.io import index
from generator.start import plain_form
from tests.helpers import run, write_repo

RACY_NS = 30_000_000


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(index, "RACY_NS", RACY_NS)  # an index may be saved right after the edit
    root = write_repo(tmp_path / "repo", {
        "base/web/app.yaml": "configMaps: [{name: web-config, literals: {mode: normal}}]\n",
        "environments/dev/env.yaml": "namespace: dev\n",
        "environments/prod/env.yaml": "namespace: prod\n",
    })
    time.sleep(RACY_NS / 1e9 + 0.01)
    assert run("render", "--repo", root).exit_code == 0  # out/ written and the index saved
    return root


@pytest.mark.parametrize(("args", "form"), [
    (["render"], ("render", Path("."), ())),
    (["check", "--repo", "r"], ("check", Path("r"), ())),
    (["render", "--repo=r", "--env", "dev", "--env=prod"], ("render", Path("r"), ("dev", "prod"))),
    (["render", "--stdout"], None),
    (["render", "--env"], None),  # the value is missing: click says so
    (["render", "--env", "--repo"], None),
    (["render", "--repo", ""], None),
    (["check", "-h"], None),
    (["render", "extra"], None),
    (["diff"], None),
    ([], None),
])
def test_plain_forms(args: list[str], form: tuple[str, Path, tuple[str, ...]] | None) -> None:
    assert plain_form(args) == form


def _start(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`gitops-gen ARGS` through the entry point, then whether click was imported."""
    code = ("import sys; from generator.start import run; sys.argv = ['gitops-gen', *sys.argv[1:]]; run(); "
            "print('click imported' if 'click' in sys.modules else 'click not imported', file=sys.stderr)")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=root, capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)


@pytest.mark.parametrize("command", ["render", "check"])
def test_unchanged_is_answered_without_click_as_the_cli_answers(repo: Path, command: str) -> None:
    cli = run(command, "--repo", repo)
    started = _start(repo, command, "--repo", str(repo))
    assert started.returncode == 0, started.stderr
    assert started.stdout == cli.output
    assert started.stderr.strip().endswith("click not imported")
    env = _start(repo, command, "--env", "dev")  # from the repo's folder, one environment
    assert env.returncode == 0 and "click not imported" in env.stderr
    assert env.stdout == run(command, "--repo", repo, "--env", "dev").output


def test_a_miss_or_another_form_is_the_cli(repo: Path) -> None:
    (repo / "base/web/app.yaml").write_text("configMaps: [{name: web-config, literals: {mode: fast}}]\n",
                                            encoding="utf-8")
    checked = _start(repo, "check")
    assert checked.returncode == 1 and "stale" in checked.stdout  # the CLI's check (it exits itself)
    rendered = _start(repo, "render")
    assert rendered.returncode == 0 and "written" in rendered.stdout and "0 written" not in rendered.stdout
    assert "fast" in (repo / "out/dev/web").joinpath(
        next(p.name for p in (repo / "out/dev/web").iterdir() if p.name.startswith("configmap-web-config"))
    ).read_text(encoding="utf-8")
    usage = _start(repo, "render", "--env", "nope")  # a miss: the CLI's error
    assert usage.returncode == 2 and "unknown environment 'nope'" in usage.stderr
