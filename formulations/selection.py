"""Selection: every layer runs with exactly one of its candidate mappings."""

from __future__ import annotations

import pyomo.environ as pyo

from formulations.problem import MappingProblem


def add_selection(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add, for every layer l, the one-hot choice  sum_k choose[l, k] = 1."""

    @m.Constraint(m.layers, doc="each layer runs with exactly one candidate mapping")
    def one_mapping_per_layer(m: pyo.ConcreteModel, layer: str) -> pyo.Expression:
        return pyo.quicksum(m.choose[layer, k] for k in range(len(problem.candidates[layer]))) == 1
