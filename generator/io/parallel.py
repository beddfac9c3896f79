"""Fan work out over forked processes, for one large environment on a multi-core machine.

The workers are forked, so they inherit everything the job closes over (repo, environment,
templates) and nothing is pickled on the way in; only results come back, through a pipe per
worker. A job is a function of a chunk number. With one chunk, or where fork is unavailable,
the job runs in-process. Plain `os.fork` rather than `multiprocessing`: importing that (and the
OpenSSL it pulls in) cost more time and memory than the whole fan-out.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
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
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
    results: list[T] = []
    for ok, value in outcomes:
        if not ok:
            raise value
        results.append(value)
    return results


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
