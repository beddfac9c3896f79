"""Fan work out over forked processes, for one large environment on a multi-core machine.

The workers are forked, so they inherit everything the job closes over (repo, environment,
templates) and nothing is pickled on the way in; only results come back. A job is a function
of a chunk number. With one worker, or where fork is unavailable, the job runs in-process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# The job of the current fork_map call. Set only while a pool is being forked and read only
# by the forked workers; this is how the job reaches them without being pickled.
_job: Callable[[int], Any] | None = None


def _run(chunk: int) -> Any:
    assert _job is not None
    return _job(chunk)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def fork_map(job: Callable[[int], T], chunks: int) -> list[T]:
    """[job(0), ..., job(chunks - 1)], run in `chunks` forked processes when chunks > 1.

    Results (and the first error, in chunk order) come back in order, so the outcome does not
    depend on scheduling.
    """
    global _job
    if chunks <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [job(i) for i in range(chunks)]
    _job = job
    try:
        with ProcessPoolExecutor(max_workers=chunks, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run, range(chunks)))
    finally:
        _job = None


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
