"""The one boundary between a formulation and a solver: model in, result out.

Every backend reads the linear form of a Pyomo model (``linear_form``), solves
it, writes the solution back into the model's variables and returns a
``SolveResult`` in the one status vocabulary below.
"""

from __future__ import annotations

import importlib
import math
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

import pyomo.core as pyo

from dse_milp.stopping import deadline_after, remaining


class Status(StrEnum):
    OPTIMAL = "optimal"
    """Solved to within the requested gap (0 by default: proven optimal)."""
    FEASIBLE = "feasible"
    """Stopped (time limit) with a solution that is not proven within the gap."""
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"
    """Stopped (time limit) before finding any solution."""
    ERROR = "error"


@dataclass(frozen=True)
class SolverOptions:
    time_limit: float | None = None
    """Seconds for the whole run (every step, every solver call); None for no limit."""
    mip_gap: float = 0.0
    """Relative gap at which to stop; 0 asks for proven optimality."""
    threads: int = 1
    """Threads the solver may use; 1 keeps runs reproducible and cheap."""
    seed: int = 0
    decompose: bool = True
    """Whether the program keeps only each unit's best candidate for each pair of layouts
    (fixed buffers), or is solved with its split chosen first among the complete splits (a
    free split: compared exactly by shortest paths, or, with layouts to choose, by branch and
    bound, ``dse_milp.program``): ``dse_milp.decompose``. All exact. Off with tensors kept
    on chip."""
    jobs: int = 1
    """Worker processes for the candidates and the shadow prices (``dse_milp.workers``); the
    results do not depend on it."""
    deadline: float | None = None
    """The ``time.monotonic()`` reading by which the run ends: set by ``started()`` from
    ``time_limit`` when the run begins, and shared by every step after it."""

    def started(self) -> SolverOptions:
        """These options with the deadline fixed now, unless it already is."""
        if self.deadline is not None or self.time_limit is None:
            return self
        return replace(self, deadline=deadline_after(self.time_limit))

    def seconds_left(self) -> float | None:
        """The time a solver call may take: what is left before the deadline (or the whole
        limit, before the run has started)."""
        return self.time_limit if self.deadline is None else remaining(self.deadline)

    def ends(self) -> float | None:
        """The run's deadline as wall-clock time (``time.time()``), or None: a deadline every
        machine of a cluster reads alike, where ``time.monotonic()`` differs from one to the next."""
        left = self.seconds_left()
        return None if left is None else time.time() + left

    def ending(self, ends: float | None) -> SolverOptions:
        """These options for work that starts now, perhaps on another machine, and must end by
        the wall-clock time ``ends`` (``ends()``; None: no limit)."""
        left = None if ends is None else max(0.0, ends - time.time())
        return replace(self, time_limit=left, deadline=None).started()


@dataclass(frozen=True)
class SolveResult:
    status: Status
    objective: float | None
    bound: float | None
    seconds: float
    solver: str
    version: str

    @property
    def has_solution(self) -> bool:
        return self.status in (Status.OPTIMAL, Status.FEASIBLE)

    @property
    def gap(self) -> float | None:
        """Relative gap between the solution and the proven bound."""
        if self.objective is None or self.bound is None or not math.isfinite(self.bound):
            return None
        if self.objective <= self.bound:  # at the bound, or below it (see ``dse_milp.solution``: coarsened in bursts)
            return 0.0
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-12)


def importable(module: str) -> bool:
    """Whether ``module`` imports here (the backend's library is installed and loads)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


class Backend(Protocol):
    name: str

    def available(self) -> bool: ...

    def version(self) -> str: ...

    def solve(self, model: pyo.ConcreteModel, options: SolverOptions) -> SolveResult: ...
