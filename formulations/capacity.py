"""Capacity: the chosen mapping's tiles fit every on-chip buffer."""

from __future__ import annotations

import pyomo.environ as pyo

from formulations.problem import MappingProblem


def add_capacity(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add, for every layer l and buffer b,

        sum_k footprint[l, k, b] * choose[l, k] <= capacity[b]

    where footprint[l, k, b] is the bytes that candidate k's tiles of the operands
    held in b occupy (doubled under double buffering). Rows where no candidate
    uses the buffer are left out.
    """
    capacity = {b.name: b.capacity_bytes for b in problem.accelerator.buffers}
    usage = {layer: problem.buffer_bytes(problem.candidates[layer].footprint) for layer in m.layers}

    @m.Constraint(m.layers, m.buffers, doc="the chosen mapping's tiles fit each buffer")
    def buffer_capacity(m: pyo.ConcreteModel, layer: str, buffer: str) -> pyo.Expression:
        terms = [(float(b), k) for k, b in enumerate(usage[layer][buffer]) if b > 0]
        if not terms:
            return pyo.Constraint.Skip
        return pyo.quicksum(b * m.choose[layer, k] for b, k in terms) <= capacity[buffer]
