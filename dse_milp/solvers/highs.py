"""HiGHS through highspy: the default backend.

It solves the LP relaxation first: when its optimal vertex is integral it is
the proven optimum (its objective is a lower bound attained by an integer
point), and branch and bound is skipped. The mapping programs are interval
partitions with per-group knapsack rows, whose relaxations are often integral.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata

import numpy as np
import pyomo.core as pyo

from dse_milp.errors import DseError
from dse_milp.solvers.base import SolveResult, SolverOptions, Status, importable
from dse_milp.solvers.linear import LinearForm, linear_form
from dse_milp.stopping import run_cancellable


class HighsBackend:
    name = "highs"

    def available(self) -> bool:
        return importable("highspy")

    def version(self) -> str:
        return metadata.version("highspy")

    def solve(self, model: pyo.ConcreteModel, options: SolverOptions) -> SolveResult:
        import highspy

        start = time.perf_counter()
        form = linear_form(model)
        h = highspy.Highs()
        seconds = options.seconds_left()
        for option, value in {
            "output_flag": False,
            "threads": options.threads,
            "random_seed": options.seed,
            "mip_rel_gap": options.mip_gap,
            "time_limit": float(seconds) if seconds is not None else float("inf"),
        }.items():
            h.setOptionValue(option, value)
        h.HandleUserInterrupt = True  # cancelSolve() stops it (Ctrl-C, see _run)

        h.passModel(_lp(form))
        _run(h)
        relaxed = np.asarray(h.getSolution().col_value)
        integral = h.getModelStatus() == highspy.HighsModelStatus.kOptimal and np.all(
            np.abs(relaxed[form.integer] - np.round(relaxed[form.integer])) <= 1e-9
        )
        if form.integer.any() and not integral:
            kinds = highspy.HighsVarType
            h.changeColsIntegrality(
                len(form.variables),
                np.arange(len(form.variables), dtype=np.int32),
                np.array([kinds.kInteger if i else kinds.kContinuous for i in form.integer]),
            )
            if h.getModelStatus() not in (highspy.HighsModelStatus.kInterrupt, highspy.HighsModelStatus.kTimeLimit):
                with _stdout_silenced():
                    _run(h)

        model_status = h.getModelStatus()
        info = h.getInfo()
        feasible = info.primal_solution_status == 2  # kSolutionStatusFeasible
        Model = highspy.HighsModelStatus
        if model_status == Model.kOptimal:
            status = Status.OPTIMAL
        elif model_status == Model.kInfeasible:
            status = Status.INFEASIBLE
        elif model_status in (Model.kTimeLimit, Model.kInterrupt, Model.kIterationLimit, Model.kSolutionLimit):
            status = Status.FEASIBLE if feasible else Status.NO_SOLUTION
        else:
            status = Status.ERROR
        objective = bound = None
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            form.load(np.asarray(h.getSolution().col_value))
            objective = info.objective_function_value
            bound = info.mip_dual_bound if form.integer.any() and not integral else objective
        return SolveResult(status, objective, bound, time.perf_counter() - start, self.name, self.version())


def _lp(form: LinearForm) -> object:
    """``form`` as a HiGHS LP (its integrality set apart)."""
    import highspy

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(form.variables), form.rows
    lp.col_cost_, lp.offset_ = form.cost, form.offset
    lp.col_lower_, lp.col_upper_ = form.col_lower, form.col_upper
    lp.row_lower_, lp.row_upper_ = form.row_lower, form.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = form.row_start, form.column, form.value
    return lp


def _run(h: object) -> None:
    """``h.run()``, cancellable by Ctrl-C (see ``dse_milp.stopping``). HiGHS keeps one global
    thread scheduler per process, sized by the run that made it, and refuses a run that asks for
    another size (its status reads 'Not Set'); each run therefore shuts it down when it ends,
    as highspy's own threaded solve does, so that a solve with ``--threads 2`` and the LP step
    with one thread can follow each other."""
    import highspy

    def work() -> None:
        try:
            h.run()  # type: ignore[attr-defined]
        finally:
            highspy.Highs.resetGlobalScheduler(False)

    run_cancellable(work, h.cancelSolve)  # type: ignore[attr-defined]


@contextmanager
def _stdout_silenced() -> Iterator[None]:
    """Send what C code writes to the process's standard output to /dev/null meanwhile: the MIP
    solver of HiGHS 1.12 prints a debug line with printf whatever ``output_flag`` says
    (ERGO-Code/HiGHS#2783, fixed after 1.12; highspy is pinned to 1.12.0, see pyproject.toml)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no standard output at all: nothing to protect
        yield
        return
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(sink)


def convex_choice_lp(cost: np.ndarray, usage: np.ndarray, capacity: np.ndarray) -> tuple[float, np.ndarray]:
    """min cost·w  s.t.  sum(w) = 1,  usage.T w <= capacity,  w >= 0: the relaxed choice of one
    candidate among k, with one row per buffer (``usage`` is k x buffers).

    Returns the optimum and the dual of each buffer row (d optimum / d capacity, <= 0).
    Raises DseError if no convex combination fits.
    """
    import highspy

    k, rows = usage.shape
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = k, rows + 1
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_, lp.col_upper_ = np.zeros(k), np.full(k, np.inf)
    lp.row_lower_ = np.concatenate([[1.0], np.full(rows, -np.inf)])
    lp.row_upper_ = np.concatenate([[1.0], np.asarray(capacity, dtype=float)])
    matrix = np.vstack([np.ones(k), np.asarray(usage, dtype=float).T])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.arange(0, (rows + 2) * k, k)[: rows + 2]
    lp.a_matrix_.index_ = np.tile(np.arange(k), rows + 1)
    lp.a_matrix_.value_ = matrix.ravel()
    h.passModel(lp)
    _run(h)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise DseError(f"the LP step failed ({h.modelStatusToString(h.getModelStatus())})")
    return h.getInfo().objective_function_value, np.asarray(h.getSolution().row_dual)[1:]


def relaxation(form: LinearForm, seconds: float | None = None) -> tuple[float, np.ndarray, np.ndarray] | None:
    """The LP relaxation of ``form`` (integrality dropped), solved by dual simplex: its optimum,
    its optimal point and the columns' reduced costs; None if it is not solved to optimality
    (an interrupt, ``seconds`` run out, a numerical failure)."""
    import highspy

    h = highspy.Highs()
    for option, value in {
        "output_flag": False,
        "threads": 1,
        "time_limit": float(seconds) if seconds is not None else float("inf"),
    }.items():
        h.setOptionValue(option, value)
    h.HandleUserInterrupt = True
    h.passModel(_lp(form))
    _run(h)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    solution = h.getSolution()
    return h.getInfo().objective_function_value, np.asarray(solution.col_value), np.asarray(solution.col_dual)
