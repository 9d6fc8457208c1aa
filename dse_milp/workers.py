"""Independent, pure steps of one run on worker processes: the candidates of distinct layer
shapes and group signatures, and the shadow prices' lifted generations.

``ordered(work, tasks, jobs, deadline)`` yields ``work(task)`` for every task, in the
tasks' order, whatever the number of workers: the answer never depends on ``jobs``. With
one job, or a single task, or inside a daemonic process (a ``bench`` or ``sweep`` worker,
which may not have children), it simply runs here.

The workers are forked from this process, so they start with its caches and modules at no
cost; the steps they run are NumPy only (no solver, whose threads a fork would not copy).
Each worker ignores SIGINT: Ctrl-C, or ``deadline`` passing, is seen here, between results,
and ends the iteration early; the workers are then terminated (a further Ctrl-C held back
until they are), so the caller is never kept waiting for work whose result it no longer
wants, and no worker outlives it. An exception in a task is raised here.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from dse_milp.stopping import stop_reason

T = TypeVar("T")
R = TypeVar("R")

POLL = 0.05
"""Seconds between looks at Ctrl-C and the deadline while a result is awaited."""


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def ordered(work: Callable[[T], R], tasks: Sequence[T], jobs: int, deadline: float | None = None) -> Iterator[R]:
    """``work(task)`` for each of ``tasks`` in order, on up to ``jobs`` forked workers; the
    iteration ends early, without error, at Ctrl-C or ``deadline`` (the caller asks
    ``stop_reason`` why). ``work`` must be a module-level function of picklable arguments
    and results. Use it under ``contextlib.closing``: an exception in the caller's loop then
    ends the workers at once, not when the generator is collected."""
    workers = min(jobs, len(tasks))
    if workers <= 1 or multiprocessing.current_process().daemon:
        for task in tasks:
            if stop_reason(deadline) is not None:
                return
            yield work(task)
        return
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_sigint)
    try:
        results = pool.imap(work, tasks)
        for _ in tasks:
            while True:
                if stop_reason(deadline) is not None:
                    return
                try:
                    result = results.next(timeout=POLL)
                    break
                except multiprocessing.TimeoutError:
                    continue
            yield result
    finally:
        with _sigint_held():  # a second Ctrl-C must not leave workers behind, writing to a closed pipe
            pool.terminate()
            pool.join()


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT held back meanwhile (in the main thread), and delivered after: its handler then runs,
    and a KeyboardInterrupt it raises leaves from here, as it would have."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
