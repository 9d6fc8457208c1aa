"""Solver backends, by name. ``highs`` is the default."""

from __future__ import annotations

from dse_milp.errors import DseError
from dse_milp.solvers.base import Backend, SolveResult, SolverOptions, Status
from dse_milp.solvers.highs import HighsBackend
from dse_milp.solvers.ortools_sat import CpSatBackend
from dse_milp.solvers.ortools_scip import ScipBackend

BACKENDS: dict[str, Backend] = {b.name: b for b in (HighsBackend(), CpSatBackend(), ScipBackend())}
DEFAULT = "highs"


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise DseError(f"--solver: unknown solver {name!r} (choose from {', '.join(BACKENDS)})")
    backend = BACKENDS[name]
    if not backend.available():
        raise DseError(f"--solver: {name!r} is not installed")
    return backend


__all__ = ["BACKENDS", "DEFAULT", "Backend", "SolveResult", "SolverOptions", "Status", "get_backend"]
