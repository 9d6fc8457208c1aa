"""Fusion: groups of consecutive layers that may run fused, each with its candidate mappings."""

from __future__ import annotations

import pyomo.environ as pyo

from formulations.problem import MappingProblem


def add_fusion(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add a binary fuse[g, k] for candidate k of every group g that may run fused, and,
    for every such group and buffer b,

        sum_k footprint[g, k, b] * fuse[g, k] <= capacity[b].

    A chosen fuse[g, k] places the fusion boundaries just before g's first layer and
    just after its last; which layers each group covers enters in ``add_selection``.
    With fusion off there are no groups and this adds nothing that constrains.
    """
    m.groups = pyo.Set(dimen=2, ordered=True, initialize=list(problem.groups), doc="fused groups (first, last layer)")
    m.group_candidates = pyo.Set(
        dimen=3,
        ordered=True,
        initialize=[(*key, k) for key, cands in problem.groups.items() for k in range(len(cands))],
        doc="(first layer, last layer, candidate index)",
    )
    m.fuse = pyo.Var(m.group_candidates, domain=pyo.Binary, doc="1 if the group runs fused with this candidate")
    capacity = {b.name: b.capacity_bytes for b in problem.accelerator.buffers}
    usage = {key: problem.buffer_bytes(cands.footprint) for key, cands in problem.groups.items()}

    @m.Constraint(m.groups, m.buffers, doc="the chosen group mapping's tiles fit each buffer")
    def group_buffer_capacity(m: pyo.ConcreteModel, first: str, last: str, buffer: str) -> pyo.Expression:
        terms = [(float(b), k) for k, b in enumerate(usage[first, last][buffer]) if b > 0]
        if not terms:
            return pyo.Constraint.Skip
        return pyo.quicksum(b * m.fuse[first, last, k] for b, k in terms) <= capacity[buffer]
