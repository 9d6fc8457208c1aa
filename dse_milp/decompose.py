"""Exact decompositions of the program, where only the segmentation, the tensor layouts and
the split couple its units (no tensors kept on chip).

**Fixed buffers** (``best_of_each_unit``): every candidate fits on its own and changes only
its unit's cost and the layouts of the tensors it reads and writes, so only each unit's best
candidate in each pair of layouts can be in an optimal design.

**A free split** (``split_bounds``, ``within_split``): a design is a split, a segmentation
of the layer order into units (layers run alone and fused groups, which are intervals), and
one candidate per unit that fits the split. A split that leaves banks unassigned is never
better than one that gives them to a buffer (whatever fits fewer banks fits more), so only
the complete splits count: (banks + 1)(banks + 2) / 2 of them, 153 for 16 banks. Once the
split is fixed and no layouts are to be chosen, each unit's best candidate is its own
business and the best segmentation is a shortest path over the layer positions: the
split's optimum, exactly. With layouts to choose, the same shortest path with the layouts
of a tensor's writer and readers left free to differ bounds the optimum from below, and
with every tensor in one layout, from above; ``dse_milp.program`` searches the splits by
these bounds, solving the program only of those it cannot rule out, each under its split
(``within_split``).

Costs are compared lexicographically over the problem's objectives (a lexicographic
order is kept by sums, so the shortest path holds), each within a relative 1e-9, the
tolerance with which the program holds a measure at its optimum.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dse_milp.accelerator import sized
from dse_milp.candidates import OPERANDS, bank_counts
from dse_milp.cost import lexicographic_rank
from dse_milp.layouts import Layout
from formulations import MappingProblem

TOLERANCE = 1e-9


def unit_costs(problem: MappingProblem) -> list[tuple[tuple[int, int], np.ndarray, np.ndarray, Any]]:
    """Every unit with candidates: (its span of layer positions, (k, measures) costs under the
    objectives, (k, 3) footprint bits, the candidates)."""
    position = {layer.name: i for i, layer in enumerate(problem.network.layers)}
    units = []
    for name, cands in problem.candidates.items():
        costs = np.column_stack([problem.cost(o, name) for o in problem.objectives])
        units.append(((position[name], position[name] + 1), costs, cands.footprint, cands))
    for (first, last), cands in problem.groups.items():
        costs = np.column_stack([problem.group_cost(o, (first, last)) for o in problem.objectives])
        units.append(((position[first], position[last] + 1), costs, cands.footprint, cands))
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


def _shortest_paths(problem: MappingProblem, splits: np.ndarray,
                    allowed: Callable[[Any], np.ndarray] | None = None) -> np.ndarray:  # fmt: skip
    """(splits, measures) the lexicographically least cost of a design under each of
    ``splits``: a shortest path over the segmentations, each unit taking its best candidate
    that fits the split (and that ``allowed``, given the unit's candidates, keeps)."""
    split = problem.accelerator.split
    assert split is not None
    n = len(problem.network.layers)
    ending: dict[int, list[tuple[int, np.ndarray]]] = {}
    for (start, stop), costs, footprint, cands in unit_costs(problem):
        banks = bank_counts(footprint, split)  # (k, 3) by OPERANDS
        fits = np.all(banks[None, :, :] <= splits[:, None, :], axis=2)  # (splits, k)
        if allowed is not None:
            fits &= allowed(cands)[None, :]
        rank = lexicographic_rank(*costs.T)
        pick = np.argmin(np.where(fits, rank, np.iinfo(np.int64).max), axis=1)
        best = costs[pick]
        best[~fits[np.arange(len(splits)), pick]] = np.inf
        ending.setdefault(stop, []).append((start, best))
    total = np.full((n + 1, len(splits), len(problem.objectives)), np.inf)
    total[0] = 0.0
    for stop in range(1, n + 1):
        for start, cost in ending.get(stop, []):
            trial = total[start] + cost
            win = better(trial, total[stop])
            total[stop][win] = trial[win]
    return total[n]


def first_least(values: np.ndarray) -> int:
    """The position of the lexicographically least row of ``values``, the first of equals."""
    best = 0
    for i in range(1, len(values)):
        if better(values[i : i + 1], values[best : best + 1])[0]:
            best = i
    return best


def _banks(problem: MappingProblem, row: np.ndarray) -> dict[str, int]:
    """A split's (input, weight, output) bank counts by buffer name."""
    names = {b.name: OPERANDS.index(next(iter(b.operands))) for b in problem.accelerator.buffers}
    return {name: int(row[index]) for name, index in names.items()}


@dataclass(frozen=True)
class SplitBounds:
    """Bounds on each complete split's best design, with layouts to choose."""

    splits: np.ndarray
    """(splits, 3) every complete split's (input, weight, output) banks, ascending."""
    lower: np.ndarray
    """(splits, measures) no design under the split costs less: each unit's best candidate
    in any layouts, the layouts of a tensor's writer and readers left free to differ."""
    upper: np.ndarray
    """(splits, measures) a design under the split costs this: every tensor in one layout,
    the best such layout (infinite where none fits); the lower bound itself, exact, with
    at most one layout."""

    def order(self) -> list[int]:
        """The splits by their lower bounds, lexicographically, then in ascending order."""
        return sorted(range(len(self.splits)), key=lambda i: tuple(self.lower[i]))


def split_bounds(problem: MappingProblem) -> SplitBounds:
    """Lower and upper bounds on every complete split's optimum: shortest paths over the
    segmentations, with each unit's candidates in any layouts (lower), or with only those
    that keep every tensor in one layout, the same for all (upper: such a design is
    consistent). Without layouts to choose the two are one, each split's optimum."""
    split = problem.accelerator.split
    assert split is not None
    splits = complete_splits(split.banks)
    lower = _shortest_paths(problem, splits)
    if len(problem.layouts) <= 1:
        return SplitBounds(splits, lower, lower)
    upper = np.full_like(lower, np.inf)
    for x in problem.layouts:
        alone = _shortest_paths(problem, splits, functools.partial(_all_in, x))
        win = better(alone, upper)
        upper[win] = alone[win]
    return SplitBounds(splits, lower, upper)


def _all_in(layout: Layout, cands: Any) -> np.ndarray:
    """Which of ``cands`` keep every tensor they read and write in ``layout``."""
    return np.array([p.input == layout and p.output == layout for p in cands.layouts], dtype=bool)


def within_split(problem: MappingProblem, row: np.ndarray) -> MappingProblem:
    """``problem`` under one complete split (``row``: input, weight and output banks): its
    buffers fixed at that many banks, each unit keeping only the candidates that fit."""
    split = problem.accelerator.split
    assert split is not None
    banks = _banks(problem, row)
    accelerator = sized(problem.accelerator, {name: count * split.bank_bytes for name, count in banks.items()})

    def fitting(cands: Any) -> Any:
        return cands.take(np.flatnonzero(np.all(bank_counts(cands.footprint, split) <= row[None, :], axis=1)))

    candidates = {name: fitting(cands) for name, cands in problem.candidates.items()}
    groups = {key: fit for key, cands in problem.groups.items() if len(fit := fitting(cands))}
    return replace(problem, accelerator=accelerator, candidates=candidates, groups=groups)


def best_of_each_unit(problem: MappingProblem) -> MappingProblem:
    """``problem`` with each unit's candidates cut to its best for each pair of layouts it
    may keep its tensors in (one pair without layouts to choose), where nothing else couples
    the units (fixed buffers, no tensors kept on chip): each candidate then fits on its own,
    and a unit's choice changes only its own cost and the layouts of its tensors, so an
    optimal design takes, for the layouts it gives each unit's tensors, that unit's best
    candidate in them. Best: least under the objectives in order, then least traffic, then
    the first (the smallest footprint); kept in their order."""
    assert problem.accelerator.split is None and not problem.kept_tensors

    def first_best(cands: Any, costs: list[np.ndarray]) -> np.ndarray:
        rank = lexicographic_rank(*costs, cands.total_bits)
        best: dict[object, int] = {}
        for k, key in enumerate(cands.layouts or [None] * len(rank)):
            if key not in best or rank[k] < rank[best[key]]:
                best[key] = k
        return np.array(sorted(best.values()), dtype=np.int64)

    candidates = {
        name: cands.take(first_best(cands, [problem.cost(o, name) for o in problem.objectives]))
        for name, cands in problem.candidates.items()
    }
    groups = {
        key: cands.take(first_best(cands, [problem.group_cost(o, key) for o in problem.objectives]))
        for key, cands in problem.groups.items()
    }
    return replace(problem, candidates=candidates, groups=groups)
