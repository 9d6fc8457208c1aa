"""Exact decompositions of the program, where only the split and the segmentation couple
its units (no tensor layouts to choose).

**Fixed buffers** (``best_of_each_unit``): every candidate fits on its own and changes only
its unit's cost, so only each unit's best candidate can be in an optimal design.

**A free split** (``best_split``): a design is a split, a segmentation of the layer order
into units (layers run alone and fused groups, which are intervals), and one candidate per
unit that fits the split. Once the split is fixed, each unit's best candidate is its own
business and the best segmentation is a shortest path over the layer positions. A split
that leaves banks unassigned is never better than one that gives them to a buffer
(whatever fits fewer banks fits more), so only the complete splits count:
(banks + 1)(banks + 2) / 2 of them, 153 for 16 banks. The best of their shortest paths is
the optimum, found exhaustively; ``dse_milp.solve`` then fixes that split in the program,
which its solver settles quickly, and reports the rest as usual.

Costs are compared lexicographically over the problem's objectives (a lexicographic
order is kept by sums, so the shortest path holds), each within a relative 1e-9, the
tolerance with which the program holds a measure at its optimum; of equal splits the
first in the order (input, weight, output banks) ascending is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dse_milp.candidates import OPERANDS, bank_counts
from dse_milp.cost import lexicographic_rank
from formulations import MappingProblem

TOLERANCE = 1e-9


@dataclass(frozen=True)
class BestSplit:
    banks: dict[str, int]
    """Banks of each buffer, by name."""
    value: tuple[float, ...]
    """The optimum under each objective, lexicographically."""
    splits: int
    """How many complete splits were compared."""


def unit_costs(problem: MappingProblem) -> list[tuple[tuple[int, int], np.ndarray, np.ndarray]]:
    """Every unit with candidates: (its span of layer positions, (k, measures) costs under the
    objectives, (k, 3) footprint bits)."""
    position = {layer.name: i for i, layer in enumerate(problem.network.layers)}
    units = []
    for name, cands in problem.candidates.items():
        costs = np.column_stack([problem.cost(o, name) for o in problem.objectives])
        units.append(((position[name], position[name] + 1), costs, cands.footprint))
    for (first, last), cands in problem.groups.items():
        costs = np.column_stack([problem.group_cost(o, (first, last)) for o in problem.objectives])
        units.append(((position[first], position[last] + 1), costs, cands.footprint))
    return [unit for unit in units if len(unit[1])]


def complete_splits(banks: int) -> np.ndarray:
    """(splits, 3) every (input, weight, output) bank count summing to ``banks``, ascending."""
    return np.array([(i, w, banks - i - w) for i in range(banks + 1) for w in range(banks + 1 - i)], dtype=np.int64)


def better(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where the cost rows ``a`` are lexicographically smaller than ``b`` beyond the tolerance
    (rows of infinities lose to any finite row)."""
    decided = np.zeros(len(a), dtype=bool)
    smaller = np.zeros(len(a), dtype=bool)
    for i in range(a.shape[1]):
        x, y = a[:, i], b[:, i]
        both = np.isfinite(x) & np.isfinite(y)
        slack = TOLERANCE * np.maximum(1.0, np.abs(np.where(both, y, 0.0)))
        less = np.where(both, x < y - slack, np.isfinite(x) & ~np.isfinite(y))
        more = np.where(both, x > y + slack, ~np.isfinite(x) & np.isfinite(y))
        smaller |= ~decided & less
        decided |= less | more
    return smaller


def best_split(problem: MappingProblem) -> BestSplit | None:
    """The complete split whose best design is lexicographically least, and that design's
    costs; None if no split fits every layer (the program then says why)."""
    split = problem.accelerator.split
    assert split is not None and len(problem.layouts) <= 1
    splits = complete_splits(split.banks)
    n = len(problem.network.layers)
    measures = len(problem.objectives)
    # every unit as (start, stop, cost of its best candidate under each split)
    ending: dict[int, list[tuple[int, np.ndarray]]] = {}
    for (start, stop), costs, footprint in unit_costs(problem):
        banks = bank_counts(footprint, split)  # (k, 3) by OPERANDS
        fits = np.all(banks[None, :, :] <= splits[:, None, :], axis=2)  # (splits, k)
        rank = lexicographic_rank(*costs.T)
        pick = np.argmin(np.where(fits, rank, np.iinfo(np.int64).max), axis=1)
        best = costs[pick]
        best[~fits[np.arange(len(splits)), pick]] = np.inf
        ending.setdefault(stop, []).append((start, best))
    total = np.full((n + 1, len(splits), measures), np.inf)
    total[0] = 0.0
    for stop in range(1, n + 1):
        for start, cost in ending.get(stop, []):
            trial = total[start] + cost
            win = better(trial, total[stop])
            total[stop][win] = trial[win]
    final = total[n]
    best = 0
    for i in range(1, len(splits)):
        if better(final[i : i + 1], final[best : best + 1])[0]:
            best = i
    if not np.all(np.isfinite(final[best])):
        return None
    names = {b.name: OPERANDS.index(next(iter(b.operands))) for b in problem.accelerator.buffers}
    banks = {name: int(splits[best][index]) for name, index in names.items()}
    return BestSplit(banks, tuple(float(v) for v in final[best]), len(splits))


def best_of_each_unit(problem: MappingProblem) -> MappingProblem:
    """``problem`` with each unit's candidates cut to its best, where nothing couples the
    units but the segmentation (fixed buffers, no layouts to choose): each candidate then fits
    on its own, and a unit's choice changes only its own cost, so an optimal design takes the
    best candidate of each unit it runs. Best: least under the objectives in order, then
    least traffic, then the first (the smallest footprint)."""
    assert problem.accelerator.split is None and len(problem.layouts) <= 1

    def first_best(costs: list[np.ndarray], bits: np.ndarray) -> np.ndarray:
        return np.array([int(np.argmin(lexicographic_rank(*costs, bits)))]) if len(bits) else np.zeros(0, np.int64)

    candidates = {
        name: cands.take(first_best([problem.cost(o, name) for o in problem.objectives], cands.total_bits))
        for name, cands in problem.candidates.items()
    }
    groups = {
        key: cands.take(first_best([problem.group_cost(o, key) for o in problem.objectives], cands.total_bits))
        for key, cands in problem.groups.items()
    }
    return replace(problem, candidates=candidates, groups=groups)
