"""Partition: the size of every buffer, fixed by the accelerator or chosen by the program."""

from __future__ import annotations

import pyomo.core as pyo

from formulations.problem import MappingProblem


def add_partition(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add buffer_size[b], the bytes of buffer b.

    With fixed buffers it is the buffer's capacity. With a free split (``banks``
    banks of ``bank`` bytes) a one-hot choice size_is[b, j] gives each buffer j
    banks, j = 0..banks, with

        sum_j size_is[b, j] = 1,    sum_b sum_j j * size_is[b, j] = banks

    so one split serves every layer and group (every bank is assigned: a larger
    buffer never costs anything, so this loses nothing and settles ties); buffer_size[b] = bank * sum_j j *
    size_is[b, j], and at_least[b, j] = sum_{j' >= j} size_is[b, j'] is 1 when b
    has j or more banks (the capacity rows use it).
    """
    split = problem.accelerator.split
    if split is None:
        capacity = {b.name: b.capacity_bytes for b in problem.accelerator.buffers}
        m.buffer_size = pyo.Expression(m.buffers, rule=lambda m, b: capacity[b], doc="bytes of each buffer")
        return
    m.levels = pyo.RangeSet(1, split.banks, doc="bank counts a buffer may reach")
    m.sizes = pyo.RangeSet(0, split.banks, doc="bank counts a buffer may have")
    m.size_is = pyo.Var(m.buffers, m.sizes, domain=pyo.Binary, doc="1 if the buffer has exactly j banks")

    @m.Constraint(m.buffers, doc="every buffer has one size")
    def one_size(m: pyo.ConcreteModel, b: str) -> pyo.Expression:
        return pyo.quicksum(m.size_is[b, j] for j in m.sizes) == 1

    m.banks = pyo.Expression(m.buffers, rule=lambda m, b: pyo.quicksum(j * m.size_is[b, j] for j in m.sizes))
    m.split_total = pyo.Constraint(
        expr=pyo.quicksum(m.banks[b] for b in m.buffers) == split.banks, doc="the buffers share all the banks"
    )
    m.buffer_size = pyo.Expression(m.buffers, rule=lambda m, b: split.bank_bytes * m.banks[b], doc="bytes per buffer")
    m.at_least = pyo.Expression(
        m.buffers, m.levels, rule=lambda m, b, j: pyo.quicksum(m.size_is[b, i] for i in m.sizes if i >= j)
    )


def chosen_sizes(m: pyo.ConcreteModel) -> dict[str, int]:
    """Bytes of every buffer in a solved model."""
    return {b: round(pyo.value(m.buffer_size[b])) for b in m.buffers}


def fix_split(m: pyo.ConcreteModel, banks: dict[str, int]) -> None:
    """Hold every buffer of a free split at ``banks`` banks (by buffer name), through the
    bounds of its one-hot size."""
    for b in m.buffers:
        for j in m.sizes:
            m.size_is[b, j].setlb(1 if j == banks[b] else 0)
            m.size_is[b, j].setub(1 if j == banks[b] else 0)
