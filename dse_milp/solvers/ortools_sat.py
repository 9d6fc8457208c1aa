"""OR-Tools CP-SAT: an exact integer solver; rows are scaled to integer coefficients."""

from __future__ import annotations

import math
import time
from importlib import metadata

import numpy as np
import pyomo.core as pyo

from dse_milp.errors import DseError
from dse_milp.solvers.base import SolveResult, SolverOptions, Status, importable
from dse_milp.solvers.linear import linear_form
from dse_milp.stopping import run_cancellable

_MAX_SCALE_BITS = 20


def integral_scale(values: np.ndarray) -> int | None:
    """The least power of two (up to 2**20) that makes every value an integer, if any does."""
    for bits in range(_MAX_SCALE_BITS + 1):
        scaled = values * (1 << bits)
        if np.all(scaled == np.round(scaled)):
            return 1 << bits
    return None


class CpSatBackend:
    name = "ortools-sat"

    def available(self) -> bool:
        return importable("ortools.sat.python.cp_model")

    def version(self) -> str:
        return metadata.version("ortools")

    def solve(self, model: pyo.ConcreteModel, options: SolverOptions) -> SolveResult:
        from ortools.sat.python import cp_model

        start = time.perf_counter()
        form = linear_form(model)
        if not form.integer.all():
            raise DseError("ortools-sat solves pure integer programs only")
        cp = cp_model.CpModel()
        x = [
            cp.new_int_var(math.ceil(lo), math.floor(hi), f"x{i}")
            for i, (lo, hi) in enumerate(zip(form.col_lower, form.col_upper, strict=True))
        ]
        for i in range(form.rows):
            cols, vals = form.row(i)
            scale = integral_scale(vals)
            if scale is None:
                raise DseError(f"ortools-sat: row {i} has coefficients that no power of two makes integral")
            expr = sum(int(v * scale) * x[c] for c, v in zip(cols, vals, strict=True))
            # the scaled left side is an integer, so its bounds may be rounded inwards
            if np.isfinite(form.row_lower[i]):
                cp.add(expr >= math.ceil(form.row_lower[i] * scale - 1e-9))
            if np.isfinite(form.row_upper[i]):
                cp.add(expr <= math.floor(form.row_upper[i] * scale + 1e-9))
        scale = integral_scale(form.cost)
        nonzero = np.flatnonzero(form.cost)
        if scale is not None:
            cp.minimize(sum(int(form.cost[j] * scale) * x[j] for j in nonzero))
        else:  # costs that are not dyadic fractions (energy in pJ): CP-SAT's floating-point objective
            scale = 1
            cp.minimize(sum(float(form.cost[j]) * x[j] for j in nonzero))

        solver = cp_model.CpSolver()
        solver.parameters.num_workers = options.threads
        solver.parameters.random_seed = options.seed
        solver.parameters.relative_gap_limit = options.mip_gap
        solver.parameters.absolute_gap_limit = 0.0
        seconds = options.seconds_left()
        if seconds is not None:
            solver.parameters.max_time_in_seconds = float(seconds)
        solver.parameters.catch_sigint_signal = False  # Ctrl-C is ours: it calls stop_search()
        code = run_cancellable(lambda: solver.solve(cp), solver.stop_search)

        status = {
            cp_model.OPTIMAL: Status.OPTIMAL,
            cp_model.FEASIBLE: Status.FEASIBLE,
            cp_model.INFEASIBLE: Status.INFEASIBLE,
            cp_model.UNKNOWN: Status.NO_SOLUTION,
        }.get(code, Status.ERROR)
        objective = bound = None
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            form.load(np.array([solver.value(v) for v in x], dtype=float))
            objective = float(form.cost @ np.array([solver.value(v) for v in x])) + form.offset
            bound = solver.best_objective_bound / scale + form.offset
            if status is Status.OPTIMAL and options.mip_gap == 0:
                bound = objective
        return SolveResult(status, objective, bound, time.perf_counter() - start, self.name, self.version())
