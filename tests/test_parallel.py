"""A large environment is split across processes; the output must not depend on it."""

from pathlib import Path

import pytest

from generator.io.parallel import fork_beside, fork_map, fork_pool, split
from generator.pipeline import PARALLEL_MIN_APPS
from tests.helpers import deployment, run, snapshot, write_repo

APPS = PARALLEL_MIN_APPS + 7  # enough to take the forked path


def big_repo(root: Path, broken_app: int | None = None) -> Path:
    files: dict[str, str | bytes] = {"environments/dev/env.yaml": "namespace: dev\n"}
    for i in range(APPS):
        app = f"app-{i:03d}"
        ref = "missing-config" if i == broken_app else f"{app}-config"
        files[f"base/{app}/app.yaml"] = f"configMaps: [{{name: {app}-config, literals: {{'n': '{i}'}}}}]\n"
        files[f"base/{app}/deployment.yaml"] = deployment(
            app, f"containers: [{{name: c, image: 'img:{i}', envFrom: [{{configMapRef: {{name: {ref}}}}}]}}]")
    return write_repo(root, files)


def test_split_keeps_order_and_covers_everything() -> None:
    items = list(range(11))
    parts = split(items, 3)
    assert [len(p) for p in parts] == [4, 4, 3]
    assert [x for p in parts for x in p] == items


def test_fork_map_returns_in_order() -> None:
    assert fork_map(lambda i: i * i, 3) == [0, 1, 4]


def test_output_identical_in_one_or_two_processes(tmp_path: Path) -> None:
    one = big_repo(tmp_path / "one")
    two = big_repo(tmp_path / "two")
    assert run("render", "--repo", one, "-j", "1", "--no-cache").exit_code == 0
    result = run("render", "--repo", two, "-j", "2")
    assert result.exit_code == 0, result.output
    assert snapshot(one / "out") == snapshot(two / "out")
    assert len(snapshot(two / "out")) == 2 * APPS + 1
    # the memo written by the forked workers reaches the next render
    assert run("render", "--repo", two, "-j", "2").exit_code == 0
    assert snapshot(one / "out") == snapshot(two / "out")


def test_a_large_environment_is_loaded_in_two_halves_by_default_when_cold(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --jobs: a cold render loads a large environment in this process and a forked one (the
    same output as one process); a warm one (parse memo) and --jobs 1 load in one process."""
    from generator import pipeline
    from generator.io import parallel

    if parallel.cores() < 2:
        pytest.skip("one core: nothing is split")
    halves: list[int] = []
    real = pipeline.fork_beside
    monkeypatch.setattr(pipeline, "fork_beside", lambda job: halves.append(1) or real(job))
    one = big_repo(tmp_path / "one")
    two = big_repo(tmp_path / "two")
    assert run("render", "--repo", one, "-j", "1").exit_code == 0
    assert halves == []
    assert run("render", "--repo", two).exit_code == 0
    assert halves == [1]
    assert snapshot(one / "out") == snapshot(two / "out")
    env_file = two / "environments" / "dev" / "env.yaml"
    env_file.write_text(env_file.read_text() + "# every app renders again\n")
    result = run("render", "--repo", two)  # a full render, warm: the memo has every app's parses
    assert result.exit_code == 0 and f"{2 * APPS + 1} unchanged" in result.output, result.output
    assert halves == [1]


@pytest.mark.parametrize("command", ["render", "check"])
def test_an_app_loaded_by_a_worker_is_in_the_render_index(tmp_path: Path, command: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The files the workers read reach the render index: a later change to one of them is
    rendered (or reported stale by `check`), not answered "unchanged" from an index that never
    heard of the file (a bug until 2026-11-28)."""
    import time

    from generator.io import index

    monkeypatch.setattr(index, "RACY_NS", 30_000_000)  # inputs older than 30 ms are indexed
    repo = big_repo(tmp_path)
    time.sleep(0.05)
    assert run("render", "--repo", repo, "-j", "2").exit_code == 0
    time.sleep(0.05)
    app = repo / "base" / "app-005" / "app.yaml"
    app.write_text(app.read_text().replace("'n': '5'", "'n': 'five'"))
    result = run(command, "--repo", repo)
    if command == "check":
        assert result.exit_code == 1 and "app-005" in result.output, result.output
    else:
        assert result.exit_code == 0 and "0 written" not in result.output, result.output
        assert any(b"five" in text for text in snapshot(repo / "out").values())


@pytest.mark.parametrize("broken", [3, APPS - 2])
def test_error_in_a_worker_is_one_clean_message(tmp_path: Path, broken: int) -> None:
    repo = big_repo(tmp_path, broken_app=broken)
    result = run("render", "--repo", repo, "-j", "2")
    assert result.exit_code == 1
    assert f"base/app-{broken:03d}/deployment.yaml" in result.output and "missing-config" in result.output
    assert "Traceback" not in result.output
    assert not (repo / "out").exists()


def test_error_raised_inside_a_worker_keeps_file_and_line(tmp_path: Path) -> None:
    repo = big_repo(tmp_path)
    (repo / f"base/app-{APPS - 1:03d}/deployment.yaml").write_text("kind: Deployment\nmetadata: [oops\n")
    result = run("render", "--repo", repo, "-j", "2")
    assert result.exit_code == 1
    assert f"error: base/app-{APPS - 1:03d}/deployment.yaml:3: invalid YAML" in result.output
    assert not (repo / "out").exists()


def test_a_worker_that_dies_is_reported_not_hung() -> None:
    import os

    from generator.io.parallel import WorkerDied

    def job(i: int) -> int:
        if i == 1:
            os._exit(9)  # killed, out of memory, ...: no result is sent
        return i

    with pytest.raises(WorkerDied):
        fork_map(job, 2)


def test_the_first_error_in_chunk_order_is_raised() -> None:
    def job(i: int) -> int:
        raise ValueError(f"chunk {i}")

    with pytest.raises(ValueError, match="chunk 0"):
        fork_map(job, 3)


def test_large_results_stream_back_whole() -> None:
    parts = fork_map(lambda i: [str(i) * 100] * 20_000, 2)  # megabytes through each pipe
    assert [len(p) for p in parts] == [20_000, 20_000] and parts[1][0] == "1" * 100


def test_ctrl_c_while_waiting_for_workers_stops_them_and_stays_ctrl_c() -> None:
    """Interrupted while reading a worker's result: KeyboardInterrupt comes out (exit 130 in the
    CLI), not an error from closing that pipe twice, and no worker is left running."""
    import os
    import signal
    import time

    interrupted: list[bool] = []

    def job(chunk: int) -> int:
        time.sleep(60)
        return chunk

    def interrupt(signum: int, frame: object) -> None:
        interrupted.append(True)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)  # not inherited by the forked workers
    try:
        with pytest.raises(KeyboardInterrupt):
            fork_map(job, 2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert interrupted  # while the workers ran (they sleep for a minute)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every worker was reaped


# ---------------------------------------------------------------- fork_pool: environments


def test_fork_pool_returns_in_task_order_with_fewer_workers_than_tasks() -> None:
    import os

    results = fork_pool(lambda i: (i * i, os.getpid()), 5, 2)
    assert [r for r, _ in results] == [0, 1, 4, 9, 16]
    pids = {pid for _, pid in results}
    assert len(pids) <= 2 and os.getpid() not in pids  # two workers took every task


def test_fork_pool_in_process_with_one_worker() -> None:
    import os

    assert fork_pool(lambda i: os.getpid(), 3, 1) == [os.getpid()] * 3


def test_fork_pool_keeps_every_worker_busy_with_unequal_tasks(tmp_path: Path) -> None:
    import os
    import time

    # Task 0 runs until task 3 is done: with a fixed split (0 and 2 on one worker) that would
    # never happen; the pool hands 1, 2 and 3 to the other worker while 0 runs.
    done = tmp_path / "task-3-done"

    def job(i: int) -> int:
        if i == 0:
            deadline = time.monotonic() + 60
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert done.exists()
        if i == 3:
            done.touch()
        return os.getpid()

    pids = fork_pool(job, 4, 2)
    assert pids[1] == pids[2] == pids[3] != pids[0]


def test_fork_pool_raises_the_first_error_in_task_order() -> None:
    import time

    def job(i: int) -> int:
        if i == 1:
            time.sleep(0.3)  # finishes after task 2's error
            raise ValueError("task 1")
        if i == 2:
            raise KeyError("task 2")
        return i

    with pytest.raises(ValueError, match="task 1"):
        fork_pool(job, 4, 2)


def test_fork_pool_worker_that_dies_fails_its_task_only(tmp_path: Path) -> None:
    import os

    from generator.io.parallel import WorkerDied

    def job(i: int) -> int:
        if i == 2:
            os._exit(9)
        (tmp_path / f"done-{i}").touch()
        return i

    with pytest.raises(WorkerDied):
        fork_pool(job, 5, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done-0", "done-1", "done-3", "done-4"]  # the other worker took them

    def late(i: int) -> int:  # the error of an earlier task still comes first
        if i == 0:
            raise ValueError("task 0")
        if i == 3:
            os._exit(9)
        return i

    with pytest.raises(ValueError, match="task 0"):
        fork_pool(late, 5, 2)


def test_fork_pool_large_results_stream_back_whole() -> None:
    parts = fork_pool(lambda i: [str(i) * 100] * 30_000, 3, 2)  # megabytes through each pipe
    assert [len(p) for p in parts] == [30_000] * 3 and parts[2][0] == "2" * 100


# ---------------------------------------------------------------- fork_beside: two halves


def test_fork_beside_runs_the_second_half_in_another_process() -> None:
    import os

    first, second = fork_beside(lambda i: (i, os.getpid()))
    assert first == (0, os.getpid()) and second[0] == 1 and second[1] != os.getpid()


def test_fork_beside_raises_the_second_halfs_error_after_the_first_half_ran() -> None:
    ran: list[int] = []

    def job(i: int) -> int:
        ran.append(i)  # only this process's list: the forked half appends to its own copy
        if i == 1:
            raise ValueError("second half")
        return i

    with pytest.raises(ValueError, match="second half"):
        fork_beside(job)
    assert ran == [0]


def test_fork_beside_an_error_of_the_first_half_stops_the_second() -> None:
    """The first half fails at once while the second would run for a minute: the error comes
    out right away and the other process is reaped, not left running."""
    import os
    import time

    def job(i: int) -> int:
        if i == 1:
            time.sleep(60)
            return i
        raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        fork_beside(job)
    assert time.monotonic() - start < 30
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_fork_beside_a_second_half_that_dies_is_reported() -> None:
    import os

    from generator.io.parallel import WorkerDied

    def job(i: int) -> int:
        if i == 1:
            os._exit(9)
        return i

    with pytest.raises(WorkerDied):
        fork_beside(job)


def test_fork_beside_the_second_half_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """SIGKILL of the process running the first half: the kernel stops the second half too
    (nothing of it outlives the render, such as files written after the render died)."""
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "pid"
    script = f"""
import os, signal, time
from pathlib import Path
from generator.io.parallel import fork_beside
def job(i):
    if i == 1:
        Path({str(pid_file)!r}).write_text(str(os.getpid()))
        time.sleep(60)
        return i
    while not Path({str(pid_file)!r}).exists():
        time.sleep(0.01)
    time.sleep(0.1)
    os.kill(os.getpid(), signal.SIGKILL)
fork_beside(job)
"""
    # (no pipes: waiting for their end would wait for the second half too)
    with open(tmp_path / "err", "wb") as err:
        proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent,
                              stdout=subprocess.DEVNULL, stderr=err, timeout=120)
    assert proc.returncode == -9, (tmp_path / "err").read_text()
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its new parent to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
