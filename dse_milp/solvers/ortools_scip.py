"""SCIP through OR-Tools' linear solver wrapper."""

from __future__ import annotations

import time
from importlib import metadata

import numpy as np
import pyomo.core as pyo

from dse_milp.errors import DseError
from dse_milp.solvers.base import SolveResult, SolverOptions, Status, importable
from dse_milp.solvers.linear import linear_form
from dse_milp.stopping import run_cancellable


class ScipBackend:
    name = "ortools-scip"

    def available(self) -> bool:
        if not importable("ortools.linear_solver.pywraplp"):
            return False
        from ortools.linear_solver import pywraplp

        return pywraplp.Solver.CreateSolver("SCIP") is not None

    def version(self) -> str:
        return metadata.version("ortools")

    def solve(self, model: pyo.ConcreteModel, options: SolverOptions) -> SolveResult:
        from ortools.linear_solver import pywraplp

        start = time.perf_counter()
        form = linear_form(model)
        s = pywraplp.Solver.CreateSolver("SCIP")
        if s is None:
            raise DseError("ortools-scip: SCIP is not available in this OR-Tools build")
        inf = s.infinity()

        def bound(value: float) -> float:
            return value if np.isfinite(value) else (inf if value > 0 else -inf)

        x = [
            (s.IntVar if integer else s.NumVar)(bound(lo), bound(hi), f"x{i}")
            for i, (lo, hi, integer) in enumerate(zip(form.col_lower, form.col_upper, form.integer, strict=True))
        ]
        for i in range(form.rows):
            row = s.RowConstraint(bound(form.row_lower[i]), bound(form.row_upper[i]), f"r{i}")
            for c, v in zip(*form.row(i), strict=True):
                row.SetCoefficient(x[c], float(v))
        objective = s.Objective()
        for j in np.flatnonzero(form.cost):
            objective.SetCoefficient(x[j], float(form.cost[j]))
        objective.SetOffset(form.offset)
        objective.SetMinimization()

        s.SetNumThreads(options.threads)
        # Ctrl-C is ours (it calls InterruptSolve); SCIP would otherwise catch it and hide it
        s.SetSolverSpecificParametersAsString(
            f"randomization/randomseedshift = {options.seed}\nmisc/catchctrlc = FALSE\n"
        )
        seconds = options.seconds_left()
        if seconds is not None:
            s.SetTimeLimit(max(1, int(seconds * 1000)))  # milliseconds; 0 would mean none
        params = pywraplp.MPSolverParameters()
        params.SetDoubleParam(params.RELATIVE_MIP_GAP, options.mip_gap)
        code = run_cancellable(lambda: s.Solve(params), s.InterruptSolve)

        status = {
            pywraplp.Solver.OPTIMAL: Status.OPTIMAL,
            pywraplp.Solver.FEASIBLE: Status.FEASIBLE,
            pywraplp.Solver.INFEASIBLE: Status.INFEASIBLE,
            pywraplp.Solver.NOT_SOLVED: Status.NO_SOLUTION,
        }.get(code, Status.ERROR)
        value = best = None
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            form.load(np.array([v.solution_value() for v in x]))
            value, best = objective.Value(), objective.BestBound()
        return SolveResult(status, value, best, time.perf_counter() - start, self.name, self.version())
