"""Fan work out over forked processes: the apps of one large environment (`fork_map`),
several environments (`fork_pool`), or half of a job beside this process (`fork_beside`: the
out/ writer stages half of a large publication's files so), on a multi-core machine.

The workers are forked, so they inherit everything the job closes over (repo, environment,
templates, what the parent parsed) and nothing is pickled on the way in; only results come back,
through a pipe per worker. A job is a function of a chunk (or task) number. With one chunk, or
where fork is unavailable, the job runs in-process. Plain `os.fork` rather than
`multiprocessing`: importing that (and the OpenSSL it pulls in) cost more time and memory than
the whole fan-out.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import struct
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerDied(RuntimeError):
    """A worker ended without sending its result (killed, or out of memory)."""


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _child(job: Callable[[int], Any], chunk: int, write_fd: int) -> None:
    """Run in the forked worker: send (True, result) or (False, exception), then exit."""
    code = 0
    try:
        try:
            payload = pickle.dumps((True, job(chunk)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            try:
                payload = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - an exception that cannot be pickled
                payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(payload)
    except BaseException:  # noqa: BLE001 - the parent reports a worker that sent nothing
        code = 70
    finally:
        os._exit(code)


def fork_map(job: Callable[[int], T], chunks: int) -> list[T]:
    """[job(0), ..., job(chunks - 1)], run in `chunks` forked processes when chunks > 1.

    Results (and the first error, in chunk order) come back in order, so the outcome does not
    depend on scheduling.
    """
    if chunks <= 1 or not hasattr(os, "fork"):
        return [job(i) for i in range(chunks)]
    children: list[tuple[int, int]] = []
    outcomes: list[tuple[bool, Any]] = []
    # Objects that exist now are shared with the workers page for page; a garbage collection in
    # a worker would touch (and so copy) every one of them. Frozen, the collector leaves them be.
    gc.freeze()
    try:
        for i in range(chunks):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the worker, which never returns
                os.close(read_fd)
                _child(job, i, write_fd)
            os.close(write_fd)
            children.append((pid, read_fd))
        while children:
            pid, read_fd = children[0]
            children[0] = (pid, -1)  # the file object owns (and closes) the pipe from here
            with os.fdopen(read_fd, "rb") as pipe:
                try:  # unpickled as it streams in: the whole payload is never held as bytes
                    outcome = pickle.load(pipe)
                except (EOFError, pickle.UnpicklingError):
                    outcome = (False, WorkerDied("a worker process died before sending its result"))
            children.pop(0)
            os.waitpid(pid, 0)
            outcomes.append(outcome)
    finally:
        gc.unfreeze()
        for pid, read_fd in children:  # interrupted (Ctrl-C): stop the workers still running
            if read_fd >= 0:  # closed twice, the error would replace the KeyboardInterrupt
                os.close(read_fd)
            _kill(pid)
    results: list[T] = []
    for ok, value in outcomes:
        if not ok:
            raise value
        results.append(value)
    return results


def fork_beside(job: Callable[[int], T]) -> tuple[T, T]:
    """(job(0), job(1)), job(1) run by a forked process while this one runs job(0): for two
    halves of a job that share nothing but what exists before the fork.

    The forked process dies with this one (Linux: PR_SET_PDEATHSIG), so nothing it does
    outlives a killed parent. An error of job(0) (Ctrl-C included) stops the other process
    before it is raised; then an error of job(1), or WorkerDied when it ended without a result.
    """
    if not hasattr(os, "fork"):  # pragma: no cover - every supported system forks
        return job(0), job(1)
    parent = os.getpid()
    read_fd, write_fd = os.pipe()
    gc.freeze()  # as in fork_map: the objects stay shared page for page
    pid = -1
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked process, which never returns
            os.close(read_fd)
            _die_with(parent)
            _child(job, 1, write_fd)
        os.close(write_fd)
        first = job(0)
        with os.fdopen(read_fd, "rb") as pipe:
            read_fd = -1  # the file object owns (and closes) the pipe from here
            try:
                ok, second = pickle.load(pipe)
            except (EOFError, pickle.UnpicklingError):
                ok, second = False, WorkerDied(_DIED)
        os.waitpid(pid, 0)
        pid = -1
    finally:
        gc.unfreeze()
        if read_fd >= 0:
            os.close(read_fd)
        if pid > 0:  # job(0) failed or was interrupted: stop the other half
            _kill(pid)
    if not ok:
        raise second
    return first, second


def _die_with(parent: int) -> None:
    """Have the kernel kill this (forked) process when `parent` ends (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the request took effect
        os._exit(70)


_LENGTH = struct.Struct("<Q")  # a result's size, before its pickle
_TASK = struct.Struct("<I")  # a task number, parent to worker


def _send(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int, size: int) -> bytearray | None:
    """Exactly `size` bytes from `fd`, or None at end of file (the writer is gone)."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            return None
        got += n
    return buf


def _outcome(job: Callable[[int], Any], task: int) -> bytes:
    """(True, result) or (False, exception), pickled."""
    try:
        return pickle.dumps((True, job(task)), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        try:
            return pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an exception that cannot be pickled
            return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _pool_worker(job: Callable[[int], Any], tasks_fd: int, results_fd: int) -> None:
    """Run in a forked pool worker: take task numbers until the parent closes the pipe, send
    each outcome back (its length, then its pickle), then exit."""
    code = 0
    try:
        while True:
            head = _receive(tasks_fd, _TASK.size)
            if head is None:
                break
            payload = _outcome(job, _TASK.unpack(head)[0])
            _send(results_fd, _LENGTH.pack(len(payload)))
            _send(results_fd, payload)
            del payload
    except BaseException:  # noqa: BLE001 - the parent reports a worker that sent nothing
        code = 70
    finally:
        os._exit(code)


_DIED = "a worker process died before sending its result"


class _Pool:
    """The parent's side of `fork_pool`: its workers by the pipe their results come through."""

    def __init__(self, job: Callable[[int], Any], tasks: int) -> None:
        self.job = job
        self.pending = list(range(tasks))[::-1]  # tasks not given out yet, the next one last
        self.running: dict[int, tuple[int, int, int]] = {}  # results fd -> (pid, tasks fd, its task)
        self.outcomes: dict[int, tuple[bool, Any]] = {}

    def start(self) -> None:
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the worker, which never returns
            os.close(task_write)
            os.close(result_read)
            for fd, (_, tasks_fd, _) in self.running.items():  # the other workers' pipes are not this one's
                os.close(fd)
                os.close(tasks_fd)
            _pool_worker(self.job, task_read, result_write)
        os.close(task_read)
        os.close(result_write)
        self.running[result_read] = (pid, task_write, -1)
        self.give(result_read)

    def give(self, fd: int) -> None:
        """Send the worker behind `fd` the next task; with none left (or the worker gone), let it end."""
        pid, tasks_fd, _ = self.running[fd]
        if self.pending:
            try:
                _send(tasks_fd, _TASK.pack(self.pending[-1]))
                self.running[fd] = (pid, tasks_fd, self.pending.pop())
                return
            except OSError:  # it died between tasks: the others take this one
                pass
        self._retire(fd)

    def _retire(self, fd: int) -> None:
        """Close the worker's pipes (end of tasks: it exits) and reap it."""
        pid, tasks_fd, _ = self.running.pop(fd)
        os.close(tasks_fd)
        os.close(fd)
        os.waitpid(pid, 0)

    def receive(self, fd: int) -> None:
        """Read the outcome of the task the worker behind `fd` finished (or learn that it died)."""
        task = self.running[fd][2]
        head = _receive(fd, _LENGTH.size)
        payload = _receive(fd, _LENGTH.unpack(head)[0]) if head is not None else None
        if payload is None:  # the tasks not started yet go to the other workers
            self.outcomes[task] = (False, WorkerDied(_DIED))
            self._retire(fd)
            return
        self.outcomes[task] = pickle.loads(payload)
        del payload
        self.give(fd)

    def stop(self) -> None:
        """Interrupted: stop the workers still running."""
        for fd, (pid, tasks_fd, _) in self.running.items():
            os.close(fd)
            os.close(tasks_fd)
            _kill(pid)
        self.running.clear()

    def results(self, tasks: int) -> list[Any]:
        results: list[Any] = []
        for i in range(tasks):
            ok, value = self.outcomes.get(i, (False, WorkerDied(_DIED)))
            if not ok:
                raise value
            results.append(value)
        return results


def fork_pool(job: Callable[[int], T], tasks: int, workers: int) -> list[T]:
    """[job(0), ..., job(tasks - 1)], run by `workers` forked processes that each take the next
    task when they finish one (so unequal tasks still keep every worker busy), in-process when
    workers <= 1. A worker keeps what it set up for one task (imports, compiled schemas) for
    the next.

    Results (and the first error, in task order) come back in order, so the outcome does not
    depend on scheduling; a worker that dies fails its task with WorkerDied, and the others
    take the tasks not started yet.
    """
    workers = min(workers, tasks)
    if workers <= 1 or not hasattr(os, "fork"):
        return [job(i) for i in range(tasks)]
    pool = _Pool(job, tasks)
    gc.freeze()  # as in fork_map: the workers share the parent's objects page for page
    try:
        for _ in range(workers):
            pool.start()
        while pool.running:
            ready, _, _ = select.select(list(pool.running), [], [])
            pool.receive(ready[0])
    finally:
        gc.unfreeze()
        pool.stop()
    return pool.results(tasks)


def split(items: list[T], chunks: int) -> list[list[T]]:
    """Contiguous, nearly equal slices (so the concatenation keeps the original order)."""
    size, extra = divmod(len(items), chunks)
    out: list[list[T]] = []
    start = 0
    for i in range(chunks):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _kill(pid: int) -> None:
    """Stop a worker and reap it (one that is gone already: nothing to do)."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass
