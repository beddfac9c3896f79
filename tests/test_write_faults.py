"""Fault injection: a render interrupted at any point of publishing out/ (SIGKILL, SIGINT, a
full disk, a read-only file system or folder) leaves each environment's out/ old or new, or the
next render completes it to exactly what a clean render gives, retained versions included; and
`check` reports the interruption until then.

The repo: 2 environments of 30 synthetic apps (bench/synth.py) with `retention: 1`, rendered
twice (so out/ holds retained versions), then changed once more: the publication under test
rewrites about 180 files and removes 60 (the versions that fall out of retention).
Faults are placed by write.FAULT_ENV, which counts the writer's file operations.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench import synth
from generator.io.write import FAULT_ENV, JOURNAL, TMP_PREFIX
from tests.helpers import run, snapshot

ROOT = Path(__file__).resolve().parent.parent
APPS, ENVS = 30, 2
States = tuple[Path, dict[str, bytes], dict[str, bytes], int, int]
CACHE = ""  # set by the fixture: the parse memo of these renders, shared by the subprocesses


def _bump(repo: Path, old: str, new: str) -> None:
    for env_file in (repo / "environments").glob("*/env.yaml"):
        env_file.write_text(env_file.read_text().replace(old, new))


def _render(repo: Path) -> str:
    result = run("render", "--repo", repo, "--no-cache")
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> States:
    """(a repo whose sources changed since its out/ was rendered, out/ now, out/ after a clean
    render, how many files that render writes and removes)."""
    global CACHE
    CACHE = str(tmp_path_factory.mktemp("cache"))
    made = synth.write_repos(tmp_path_factory.mktemp("faults"), APPS, ENVS)
    repo = made.ours
    (repo / "gitops-gen.yaml").write_text("retention: 1\n")
    _render(repo)
    _bump(repo, "-override", "-override-v2")
    _render(repo)
    _bump(repo, "-override-v2", "-override-v3")
    old = snapshot(repo / "out")
    clean = tmp_path_factory.mktemp("clean") / "repo"
    shutil.copytree(repo, clean)
    counts = re.search(r"out/: (\d+) written, (\d+) removed", _render(clean))
    assert counts is not None
    written, removed = int(counts[1]), int(counts[2])
    assert written > 150 and removed >= 60
    new = snapshot(clean / "out")
    assert sum(1 for p in new if "configmap-" in p and p.count("-") > 3) >= 60  # retained versions
    return repo, old, new, written, removed


def _ops(written: int, removed: int) -> int:
    """File operations of the publication: staging (create + write each), the journal (create,
    write, rename), renames, removals, deleting the journal."""
    return 2 * written + 3 + written + removed + 1


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def _env(fault: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env["GITOPS_GEN_CACHE_DIR"] = CACHE
    if fault:
        env[FAULT_ENV] = fault
    return env


# The CLI with every publication staged by two processes (write.SPLIT_MIN), as a large one is.
_SPLIT = ("import sys\nfrom generator.io import write\nwrite.SPLIT_MIN = 1\nsys.argv[0] = 'gitops-gen'\n"
          "from generator.start import run\nrun()\n")


def _cli(repo: Path, fault: str | None = None, split: bool = False) -> subprocess.Popen[str]:
    # (`-j 1` is one process: no forked half)
    head = [sys.executable, "-c", _SPLIT] if split else [sys.executable, "-m", "generator"]
    return subprocess.Popen([*head, "render", "--repo", str(repo), *([] if split else ["-j", "1"])],
                            cwd=ROOT, env=_env(fault), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _leftovers(out: Path) -> tuple[bool, list[str]]:
    return (out / JOURNAL).exists(), [p.name for p in out.rglob(f"{TMP_PREFIX}*")]


def assert_old_new_or_repaired(repo: Path, old: dict[str, bytes], new: dict[str, bytes]) -> str:
    """out/ is the old or the new state; if not, `check` says so, and one render makes it the new
    state byte for byte. Returns which case it was."""
    now = snapshot(repo / "out")
    if now in (old, new):
        return "old" if now == old else "new"
    journal, strays = _leftovers(repo / "out")
    assert journal or strays, "out/ is mixed with nothing left to repair it"
    checked = run("check", "--repo", repo, "-j", "1")
    assert checked.exit_code == 1
    if journal:
        assert f"interrupted: out/{JOURNAL}" in checked.output
    for name in strays:
        assert f"/{name}" in checked.output and "stray: " in checked.output
    _render(repo)
    assert snapshot(repo / "out") == new
    return "repaired"


def test_sigkill_at_many_points_of_the_publication(states: States,
                                                   tmp_path: Path) -> None:
    repo, old, new, written, removed = states
    ops = _ops(written, removed)
    # the first staged file, the last, the journal's three steps, the first rename, the journal's
    # deletion, and points spread over the whole publication
    points = sorted({1, 2 * written, 2 * written + 1, 2 * written + 3, 2 * written + 4, ops,
                     *range(40, ops, ops // 8)})
    seen = set()
    for i, point in enumerate(points):
        copy = _copy(repo, tmp_path / f"kill{i}")
        proc = _cli(copy, f"kill:{point}")
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode)
        seen.add(assert_old_new_or_repaired(copy, old, new))
        shutil.rmtree(copy)
    assert {"old", "repaired"} <= seen


def test_sigkill_at_random_times(states: States, tmp_path: Path) -> None:
    repo, old, new, *_ = states
    start = time.perf_counter()
    proc = _cli(_copy(repo, tmp_path / "timing"))
    proc.communicate()
    whole = time.perf_counter() - start
    rng = random.Random(11)
    for i in range(4):
        copy = _copy(repo, tmp_path / f"random{i}")
        proc = _cli(copy)
        time.sleep(rng.uniform(0.3, 1.0) * whole)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert_old_new_or_repaired(copy, old, new)
        shutil.rmtree(copy)


def test_sigint_leaves_old_or_completable(states: States,
                                          tmp_path: Path) -> None:
    repo, old, new, written, removed = states
    ops = _ops(written, removed)
    for i, point in enumerate((5, ops // 2, ops - 2)):
        copy = _copy(repo, tmp_path / f"int{i}")
        proc = _cli(copy, f"int:{point}")
        _, err = proc.communicate()
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        assert assert_old_new_or_repaired(copy, old, new) in ("old", "repaired")
        shutil.rmtree(copy)


@pytest.mark.parametrize("name,words", [("ENOSPC", "the disk is full"), ("EROFS", "the file system is read-only")])
def test_os_error_at_each_write_step(states: States, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, name: str, words: str) -> None:
    """An OSError at each kind of step: creating and writing a staged file, writing and renaming
    the journal, a rename, a removal, deleting the journal. Before the commit point out/ stays
    old with no temporary file left; after it, the next render completes it."""
    repo, old, new, written, removed = states
    ops = _ops(written, removed)
    points = (1, 2, written, 2 * written + 1, 2 * written + 2, 2 * written + 3, 2 * written + 4,
              2 * written + 100, ops - 5, ops)
    if name != "ENOSPC":  # the same code path with another message: one point per phase is enough
        points = (2, 2 * written + 2, 2 * written + 4, ops)
    for point in points:
        copy = _copy(repo, tmp_path / f"{name}{point}")
        monkeypatch.setenv(FAULT_ENV, f"raise:{point}:{name}")
        result = run("render", "--repo", copy, "-j", "1", "--no-cache")
        monkeypatch.delenv(FAULT_ENV)
        assert result.exit_code == 1, result.output
        assert f"cannot write out/: {words}" in result.output and "Traceback" not in result.output
        if point <= 2 * written + 3:
            assert snapshot(copy / "out") == old, point  # before the commit point: nothing changed
            assert "out/ is unchanged" in result.output
        else:
            assert "the next `render` completes it" in result.output
        assert_old_new_or_repaired(copy, old, new)
        shutil.rmtree(copy)


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make a folder read-only even for root (chattr +i); chmod for other users."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode != 0:
            pytest.skip("chattr +i is not available here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)


def test_read_only_folder(states: States, tmp_path: Path) -> None:
    repo, old, new, *_ = states
    copy = _copy(repo, tmp_path / "ro")
    folder = copy / "out" / synth.env_name(1) / synth.app_name(APPS - 1)
    with read_only(folder):
        result = run("render", "--repo", copy, "-j", "1", "--no-cache")
        assert result.exit_code == 1, result.output
        assert "cannot write out/: " in result.output and "Traceback" not in result.output
        assert "out/ is unchanged" in result.output
        assert snapshot(copy / "out") == old
    _render(copy)
    assert snapshot(copy / "out") == new


def test_stray_temporary_file_is_reported_and_removed(states: States,
                                                      tmp_path: Path) -> None:
    repo, _, new, *_ = states
    copy = _copy(repo, tmp_path / "stray")
    _render(copy)
    stray = copy / "out" / synth.env_name(0) / synth.app_name(3) / f"{TMP_PREFIX}deployment-x.yaml"
    stray.write_text("half a file")
    result = run("check", "--repo", copy)
    assert result.exit_code == 1
    assert f"stray: out/{synth.env_name(0)}/{synth.app_name(3)}/{TMP_PREFIX}deployment-x.yaml" in result.output
    assert "(0 stale, 0 missing, 0 extra, 1 stray)" in result.output
    _render(copy)
    assert snapshot(copy / "out") == new
    assert run("check", "--repo", copy).exit_code == 0


def test_flushes_come_before_the_commit_point_and_before_the_journal_goes(
        states: States, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Power loss: the staged files reach the disk before the journal that names them, and the
    renames before the journal is deleted (the order a crash-consistent file system keeps)."""
    from generator.io import write

    repo, _, new, *_ = states
    copy = _copy(repo, tmp_path / "flush")
    out = copy / "out"
    events: list[tuple[str, bool, int]] = []

    def seen(kind: str) -> None:
        events.append((kind, (out / JOURNAL).exists(), sum(1 for _ in out.rglob(f"{TMP_PREFIX}*"))))

    monkeypatch.setenv(write.FSYNC_ENV, "on")
    monkeypatch.setattr(write, "_syncfs", lambda: lambda fd: seen("syncfs") or 0)
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: seen("fsync") or real_fsync(fd))
    _render(copy)
    assert snapshot(out) == new
    kinds = [kind for kind, _, _ in events]
    first = kinds.index("syncfs")
    assert events[first][1:] == (False, events[first][2]) and events[first][2] > 150  # all staged, no journal yet
    assert "fsync" in kinds[first + 1:]  # the journal file, then out/ after its rename
    after_commit = [e for e in events[first + 1:] if e[1]]
    assert after_commit and all(tmps == 0 for _, _, tmps in after_commit[1:])  # renames done, then flushed
    assert events[-1] == ("fsync", False, 0)  # out/ flushed once the journal is gone


# ------------------------------------------------ a large publication, staged by two processes
# (write._split_stage): the first half of the files here, the second half in a forked process,
# whose file operations count on from the first half's, so the points below fall in one half
# or the other (the halves meet at the folder boundary nearest the middle).


def test_split_staging_sigkill_of_the_render_or_of_its_other_half(states: States, tmp_path: Path) -> None:
    """SIGKILL of the render while it stages its half (the other half dies with it: no file is
    staged after the render died), or after both halves: old or repaired. SIGKILL of the forked
    half: the render reports it and out/ is unchanged, with nothing staged left."""
    repo, old, new, written, removed = states
    ops = _ops(written, removed)
    for point in (1, written // 2, 2 * written + 2, ops - 1):  # the render's own operations
        copy = _copy(repo, tmp_path / f"split-kill{point}")
        proc = _cli(copy, f"kill:{point}", split=True)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL, point
        assert assert_old_new_or_repaired(copy, old, new) in ("old", "new", "repaired")
        shutil.rmtree(copy)
    for point in (written + written // 2, 2 * written - 1):  # the forked half's
        copy = _copy(repo, tmp_path / f"split-half{point}")
        proc = _cli(copy, f"kill:{point}", split=True)
        _, err = proc.communicate()
        assert proc.returncode == 1, err
        assert "the process staging half of the files ended before it finished" in err
        assert "out/ is unchanged" in err and "Traceback" not in err
        assert snapshot(copy / "out") == old
        assert _leftovers(copy / "out") == (False, [])
        shutil.rmtree(copy)


@pytest.mark.parametrize("fault", ["raise:1:ENOSPC", "raise:{late}:ENOSPC", "int:{late}", "int:2"])
def test_split_staging_error_or_ctrl_c_in_either_half_leaves_out_unchanged(
        states: States, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    """A full disk or Ctrl-C in this process's half or in the forked half: one message (exit 1,
    or 130 for Ctrl-C), out/ as it was, no staged file left by either half."""
    from generator.io import write

    repo, old, _, written, _ = states
    fault = fault.format(late=written + written // 2)
    copy = _copy(repo, tmp_path / "split")
    monkeypatch.setattr(write, "SPLIT_MIN", 1)
    monkeypatch.setenv(FAULT_ENV, fault)
    result = run("render", "--repo", copy, "--no-cache")
    monkeypatch.delenv(FAULT_ENV)
    if fault.startswith("int"):
        assert result.exit_code == 130, result.output
    else:
        assert result.exit_code == 1, result.output
        assert "cannot write out/: the disk is full" in result.output and "out/ is unchanged" in result.output
    assert "Traceback" not in result.output
    assert snapshot(copy / "out") == old
    assert _leftovers(copy / "out") == (False, [])


def test_jobs_1_stages_in_one_process(states: States, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.io import write

    repo, _, new, *_ = states
    copy = _copy(repo, tmp_path / "one")
    forks: list[object] = []
    monkeypatch.setattr(write, "SPLIT_MIN", 1)
    monkeypatch.setattr(write, "fork_beside", lambda job: forks.append(job) or (job(0), job(1)))
    assert run("render", "--repo", copy, "-j", "1", "--no-cache").exit_code == 0
    assert forks == [] and snapshot(copy / "out") == new
    shutil.rmtree(copy / "out")
    shutil.copytree(repo / "out", copy / "out")
    assert run("render", "--repo", copy, "--no-cache").exit_code == 0
    assert len(forks) == 1 and snapshot(copy / "out") == new
