"""Capacity: the chosen mapping's tiles fit every on-chip buffer."""

from __future__ import annotations

import numpy as np
import pyomo.core as pyo

from formulations.problem import MappingProblem


def add_capacity(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add, for every layer l run alone (choices choose[l, k]) and every fused group g
    (choices fuse[g, k]), and every buffer b: the chosen candidate fits b.

    With fixed buffers, a knapsack row per unit u and buffer b:

        sum_k footprint[u, k, b] * x[u, k] <= buffer_size[b]

    where footprint[u, k, b] is the bytes candidate k's tiles of the operands held
    in b occupy (doubled under double buffering).

    With a free split, whole banks: for every level j = 1..banks, the candidates
    needing j or more banks of b may be chosen only if b has j or more:

        sum_{k: need[u, k, b] >= j} x[u, k] <= at_least[b, j]

    (see ``add_partition``), a tighter form of the knapsack row. Rows no candidate
    enters are left out.
    """
    units: dict[tuple[str, ...], tuple[np.ndarray, list]] = {}
    for layer in m.layers:
        count = len(problem.candidates[layer])
        units[(layer,)] = (problem.candidates[layer].footprint, [m.choose[layer, k] for k in range(count)])
    for first, last in m.groups:
        cands = problem.groups[first, last]
        units[first, last] = (cands.footprint, [m.fuse[first, last, k] for k in range(len(cands))])
    usage = {unit: problem.buffer_bytes(footprint) for unit, (footprint, _) in units.items()}

    def fits(unit: tuple[str, ...], buffer: str) -> pyo.Expression:
        choices = units[unit][1]
        terms = [(float(need), x) for need, x in zip(usage[unit][buffer], choices, strict=True) if need > 0]
        if not terms:
            return pyo.Constraint.Skip
        return pyo.quicksum(need * x for need, x in terms) <= m.buffer_size[buffer]

    def fits_level(unit: tuple[str, ...], buffer: str, level: int) -> pyo.Expression:
        banks = usage[unit][buffer] / problem.accelerator.split.bank_bytes  # type: ignore[union-attr]
        chosen = [x for need, x in zip(banks, units[unit][1], strict=True) if need >= level]
        if not chosen:
            return pyo.Constraint.Skip
        return pyo.quicksum(chosen) <= m.at_least[buffer, level]

    if problem.accelerator.split is None:
        m.buffer_capacity = pyo.Constraint(
            m.layers,
            m.buffers,
            rule=lambda m, layer, b: fits((layer,), b),
            doc="the chosen mapping's tiles fit each buffer",
        )
        m.group_buffer_capacity = pyo.Constraint(
            m.groups,
            m.buffers,
            rule=lambda m, first, last, b: fits((first, last), b),
            doc="the chosen group mapping's tiles fit each buffer",
        )
    else:
        m.buffer_banks = pyo.Constraint(
            m.layers,
            m.buffers,
            m.levels,
            rule=lambda m, layer, b, j: fits_level((layer,), b, j),
            doc="a mapping needing j banks of a buffer only if it has j",
        )
        m.group_buffer_banks = pyo.Constraint(
            m.groups, m.buffers, m.levels, rule=lambda m, first, last, b, j: fits_level((first, last), b, j),
            doc="a group mapping needing j banks of a buffer only if it has j",
        )  # fmt: skip
