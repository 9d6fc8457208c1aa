"""Stopping early, the way Gurobi and HiGHS do: at a deadline for the whole run, or at Ctrl-C,
with the best solution found so far.

Ctrl-C does not raise inside the library. While ``sigint_requests_stop()`` is
active (the command line wraps every command in it), the first SIGINT only
sets a flag; each step polls ``stop_reason()`` between its units of work, and
a solver call running in C is cancelled through its own API (see
``run_cancellable``). A second Ctrl-C raises KeyboardInterrupt, for a user who
does not want to wait for the step in progress to return.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

INTERRUPTED = "interrupted"
TIME_LIMIT = "time limit"

SOLVER_THREAD = "dse_milp solver"
"""The name of the thread ``run_cancellable`` runs a solver call on."""

_requested = threading.Event()
_ever = threading.Event()

T = TypeVar("T")


def ever_interrupted() -> bool:
    """Whether Ctrl-C asked any run of this process to stop (it stays set after the run)."""
    return _ever.is_set()


def interrupted() -> bool:
    """Whether Ctrl-C asked the run to stop."""
    return _requested.is_set()


@contextmanager
def sigint_requests_stop() -> Iterator[None]:
    """Within: the first SIGINT asks the run to stop with what it has; the second raises
    KeyboardInterrupt. Outside the main thread this does nothing (signals go to the main thread),
    and so it does where SIGINT is ignored (a shell's background job)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if _requested.is_set():
            raise KeyboardInterrupt
        _requested.set()
        _ever.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()


def deadline_after(seconds: float | None) -> float | None:
    """The ``time.monotonic()`` reading ``seconds`` from now (None: no deadline)."""
    return None if seconds is None else time.monotonic() + seconds


def remaining(deadline: float | None) -> float | None:
    """Seconds left before ``deadline`` (never negative; None without one)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def stop_reason(deadline: float | None) -> str | None:
    """``INTERRUPTED`` after Ctrl-C, ``TIME_LIMIT`` once ``deadline`` has passed, else None."""
    if _requested.is_set():
        return INTERRUPTED
    if deadline is not None and time.monotonic() >= deadline:
        return TIME_LIMIT
    return None


def run_cancellable(work: Callable[[], T], cancel: Callable[[], None], poll: float = 0.05) -> T:
    """``work()`` (a solver call that holds no Python state the caller reads meanwhile) on a
    worker thread, while this thread waits and stays able to take a signal; ``cancel()`` is
    called once if Ctrl-C asks the run to stop, and ``work``'s result (or exception) is returned
    when it ends. Outside ``sigint_requests_stop()``, ``work`` simply runs here."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) in (
        signal.default_int_handler,
        signal.SIG_DFL,
        signal.SIG_IGN,
    ):
        return work()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=target, name=SOLVER_THREAD, daemon=True)
    worker.start()
    cancelled = False
    while worker.is_alive():
        worker.join(poll)
        if not cancelled and _requested.is_set():
            cancel()
            cancelled = True
    if failure:
        raise failure[0]
    return outcome[0]
