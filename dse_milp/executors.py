"""Where the independent jobs of ``sweep``, ``bench`` and ``compress --policy all`` run: in this
process (or ``jobs`` local processes), or on Dask (``dask.distributed``).

``Executor.run(work, tasks)`` returns ``work(task)`` for each task **in the tasks' order**,
wherever they ran, so a run's output files are the same with either executor. With Dask the
client connects to ``scheduler`` (an existing cluster's address, ``tcp://host:8786``), or
starts a ``LocalCluster`` of ``workers`` single-threaded worker processes and closes it after.
``work`` and the tasks must be picklable (module-level functions, plain data); what a task
writes to files must go to storage every worker sees.

Ctrl-C (``dse_milp.stopping``) ends a run between results: it returns the results of the
tasks before the first unfinished one, cancels the rest and closes what it started.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from dse_milp.errors import InputError
from dse_milp.stopping import interrupted

T = TypeVar("T")
R = TypeVar("R")

LOCAL, DASK = "local", "dask"
KINDS = (LOCAL, DASK)
POLL = 0.1
"""Seconds between looks at Ctrl-C while a result is awaited."""


@dataclass(frozen=True)
class Executor:
    kind: str = LOCAL
    """``local``: this process (``jobs`` 1) or ``jobs`` worker processes; ``dask``: a Dask cluster."""
    jobs: int = 1
    """Local worker processes (1: this process)."""
    workers: int = 2
    """Workers of the LocalCluster Dask starts when there is no ``scheduler``."""
    scheduler: str | None = None
    """The address of an existing Dask scheduler (``tcp://host:8786``); Dask only."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError([f"--executor: {self.kind!r} is not one of {', '.join(KINDS)}"])
        if self.scheduler is not None and self.kind != DASK:
            raise InputError(["--scheduler: needs --executor dask"])

    def run(self, work: Callable[[T], R], tasks: Sequence[T], advance: Callable[[], None] = lambda: None) -> list[R]:
        """``work(task)`` for each task, in order (module docstring); ``advance`` after each result."""
        if self.kind == DASK:
            return _dask(work, tasks, self.workers, self.scheduler, advance)
        if self.jobs <= 1 or len(tasks) <= 1:
            results: list[R] = []
            for task in tasks:
                result = work(task)
                if interrupted():  # cut short by Ctrl-C: not a result
                    break
                results.append(result)
                advance()
            return results
        return _processes(work, tasks, self.jobs, advance)


def _processes(work: Callable[[T], R], tasks: Sequence[T], jobs: int, advance: Callable[[], None]) -> list[R]:
    results: list[R] = []
    with ProcessPoolExecutor(max_workers=jobs, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)) \
            as pool:  # fmt: skip
        futures = [pool.submit(work, task) for task in tasks]
        for future in futures:
            while not future.done() and not interrupted():
                wait([future], timeout=POLL)
            if interrupted():
                pool.shutdown(wait=False, cancel_futures=True)
                break
            results.append(future.result())
            advance()
    return results


@contextlib.contextmanager
def _client(jobs: int, scheduler: str | None) -> Iterator[Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError(["--executor dask: dask.distributed is not installed (pip install 'dask[distributed]')"]) \
            from None  # fmt: skip
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=5)
        except OSError as exc:
            raise InputError([f"--scheduler: cannot reach {scheduler!r} ({exc})"]) from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, Client(cluster) as client:  # fmt: skip
        yield client


def _dask(work: Callable[[T], R], tasks: Sequence[T], jobs: int, scheduler: str | None,
          advance: Callable[[], None]) -> list[R]:  # fmt: skip
    from dask.distributed import wait as dask_wait

    results: list[R] = []
    with _client(jobs, scheduler) as client:
        futures = client.map(work, list(tasks), pure=False)
        for future in futures:
            while not future.done() and not interrupted():
                with contextlib.suppress(TimeoutError):
                    dask_wait([future], timeout=POLL)
            if interrupted():
                client.cancel(futures)
                break
            results.append(future.result())
            advance()
    return results
