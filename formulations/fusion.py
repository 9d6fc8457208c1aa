"""Fusion: groups of consecutive layers that may run fused, each with its candidate mappings."""

from __future__ import annotations

import pyomo.core as pyo

from formulations.problem import MappingProblem


def add_fusion(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add a binary fuse[g, k] for candidate k of every group g that may run fused (its
    buffer rows are added with the layers' in ``add_capacity``).

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
