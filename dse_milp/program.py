"""Solving a built program: its first objective, each stage that breaks ties, and, under a
free split, a search over the complete splits.

``solve_program`` builds the program of a ``MappingProblem``, solves it under the first
objective, then holds each measure at its optimum while the next breaks its ties (and, with
layouts to choose, last, prefers the earliest layouts: ``prefer_layouts``).

``search_splits`` is exact branch and bound over the complete splits of a free split
(``dse_milp.decompose``). Every split has a lower bound (each unit's best candidate in any
layouts) and an upper bound (every tensor in one layout, the best such); without layouts to
choose the two meet, at the split's optimum. In ascending order of lower bound, each split
whose bound beats the best design so far is solved on its own, its buffers fixed and each
unit cut to its best candidate per pair of layouts (``within_split``,
``best_of_each_unit``), a program a fraction of the whole one's size; the search stops at
the first split that cannot beat it. A split whose bounds meet needs no program until it
wins, and its program must then reach that value (an internal check). Of splits that tie,
the one met first wins: the first in ascending (input, weight, output) banks where the
bounds are exact. The bound reported is the least of each split's proven bound: its
solved program's, or its lower bound.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace

import numpy as np
import pyomo.core as pyo

from dse_milp.cost import Objective
from dse_milp.decompose import SplitBounds, best_of_each_unit, better, first_least, within_split
from dse_milp.errors import DseError
from dse_milp.layouts import Layout
from dse_milp.solvers import Backend, SolveResult, SolverOptions, Status
from dse_milp.solvers.fixing import fix_by_reduced_cost, one_layout_bound
from dse_milp.stopping import stop_reason
from formulations import (
    MappingProblem,
    build_model,
    chosen_candidates,
    chosen_groups,
    chosen_kept,
    chosen_layouts,
    chosen_sizes,
    fix_stage,
    prefer_layouts,
)


@dataclass
class Solved:
    """A solved program, and the design read from it."""

    problem: MappingProblem
    """What the program was built from (under a split search, the winning split's problem)."""
    model: pyo.ConcreteModel
    result: SolveResult
    """The first objective's solve."""
    chosen: dict[str, int]
    fused: dict[tuple[str, str], int]
    sizes: dict[str, int]
    stored: dict[str, str]
    kept: frozenset[str]
    notes: list[str]
    build_seconds: float

    def read(self) -> None:
        """Take the design from the model's variables as they now stand."""
        m = self.model
        self.chosen, self.fused, self.sizes = chosen_candidates(m), chosen_groups(m), chosen_sizes(m)
        self.stored, self.kept = chosen_layouts(m), chosen_kept(m)

    def measures(self, objectives: tuple[Objective, ...]) -> np.ndarray:
        """(1, measures) the design's value under each objective."""
        return np.array([[float(self.model.total[o.value]()) for o in objectives]])


def solve_program(problem: MappingProblem, backend: Backend, options: SolverOptions,
                  layouts: tuple[Layout, ...]) -> Solved:  # fmt: skip
    """Build and solve the program of ``problem``, then break its ties stage by stage. Its
    first solve may have no solution (see ``result.status``); the caller says why."""
    start = time.perf_counter()
    model = build_model(problem)
    build = time.perf_counter() - start
    if (bound := one_layout_bound(problem)) is not None:
        fix_by_reduced_cost(model, bound, options.deadline)
    result = backend.solve(model, options)
    solved = Solved(problem, model, result, {}, {}, {}, {}, frozenset(), [], build)
    if result.has_solution:
        solved.read()
        _break_ties(solved, backend, options, layouts)
    return solved


def _break_ties(solved: Solved, backend: Backend, options: SolverOptions, layouts: tuple[Layout, ...]) -> None:
    """Each stage holds a measure at its optimum and minimises the next; last, with layouts to
    choose, tensors whose layouts tie take the earliest (``prefer_layouts``: next is None)."""
    model, objectives = solved.model, solved.problem.objectives
    stages: list[tuple[Objective, Objective | None]] = list(itertools.pairwise(objectives))
    if len(layouts) > 1:
        stages.append((objectives[-1], None))
    for held, after in stages:
        ties = "layout ties" if after is None else f"{after.value} ties"
        if (reason := stop_reason(options.deadline)) is not None:
            solved.notes.append(f"{ties} not broken ({reason})")
            break
        optimum = float(model.total[held.value]())
        fix_by_reduced_cost(model, optimum, options.deadline)  # the objective is still ``held``
        if after is None:
            prefer_layouts(model, held.value, optimum)
        else:
            fix_stage(model, held.value, optimum, after.value)
        try:
            stage = backend.solve(model, options)
        except DseError as exc:  # ortools-sat cannot hold a non-integral row: keep the first stage's answer
            solved.notes.append(f"{ties} not broken ({exc})")
            break
        if stage.has_solution:
            solved.read()


def search_splits(problem: MappingProblem, bounds: SplitBounds, backend: Backend, options: SolverOptions,
                  layouts: tuple[Layout, ...]) -> Solved | None:  # fmt: skip
    """The best design over every complete split (module docstring), None if no split has
    one; its result's bound is the search's, its status optimal only if the search finished
    and every program it solved was."""
    proven = bounds.lower[:, 0].copy()  # each split's proven bound under the first objective
    best = first_least(bounds.upper)  # the split of the best design known so far
    value = bounds.upper[best : best + 1]  # that design's costs
    winner: Solved | None = None  # its program, once solved
    build, programs, finished, complete = 0.0, 0, True, True
    for i in bounds.order():
        lower = bounds.lower[i : i + 1]
        if not np.all(np.isfinite(lower)) or (np.all(np.isfinite(value)) and not better(lower, value)[0]):
            break  # every split from here on has a bound at least as high
        if stop_reason(options.deadline) is not None:
            finished = False
            break
        if not better(bounds.upper[i : i + 1], lower)[0] and not better(lower, bounds.upper[i : i + 1])[0]:
            best, value, winner = i, lower, None  # its bounds meet: no program until it wins
            continue
        solved = _solve_split(problem, bounds.splits[i], backend, options, layouts)
        build, programs = build + solved.build_seconds, programs + 1
        if solved.result.status is Status.INFEASIBLE:
            proven[i] = np.inf
            continue
        if not solved.result.has_solution:
            finished = False
            break
        complete &= solved.result.status is Status.OPTIMAL
        if solved.result.bound is not None:
            proven[i] = solved.result.bound
        measures = solved.measures(problem.objectives)
        if i == best or better(measures, value)[0]:
            best, value, winner = i, measures, solved
    if not np.all(np.isfinite(value)):
        return None
    if winner is None:  # its bounds met, or the search stopped before any program: the best known design's
        winner = _solve_split(problem, bounds.splits[best], backend, options, layouts)
        build, programs = build + winner.build_seconds, programs + 1
        if not winner.result.has_solution:
            return winner
        complete &= winner.result.status is Status.OPTIMAL
        found, expected = float(winner.result.objective), float(bounds.lower[best, 0])
        met = not better(bounds.lower[best : best + 1], bounds.upper[best : best + 1])[0]
        exact = met and winner.result.status is Status.OPTIMAL and not options.mip_gap
        if exact and abs(found - expected) > 1e-6 * max(1.0, abs(expected)):
            raise DseError(f"internal error: the program of split {bounds.splits[best].tolist()} found {found}, "
                           f"its bounds {expected}")  # fmt: skip
    bound = min(float(proven.min()), float(winner.result.objective))
    status = Status.OPTIMAL if finished and complete else Status.FEASIBLE
    winner.result = replace(winner.result, status=status, bound=bound)
    winner.build_seconds = build
    banks = "/".join(str(int(b)) for b in bounds.splits[best])
    winner.notes.insert(0, f"split {banks} (input/weight/output banks) found by branch and bound over all "
                           f"{len(bounds.splits)} complete splits: {programs} solved with "
                           f"{'its' if programs == 1 else 'their'} split fixed, the "
                           f"rest ruled out by their bounds{'' if finished else ' (cut short)'}")  # fmt: skip
    return winner


def _solve_split(problem: MappingProblem, row: np.ndarray, backend: Backend, options: SolverOptions,
                 layouts: tuple[Layout, ...]) -> Solved:  # fmt: skip
    return solve_program(best_of_each_unit(within_split(problem, row)), backend, options, layouts)
