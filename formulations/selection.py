"""Selection: every layer runs exactly once, on its own or inside one fused group."""

from __future__ import annotations

import pyomo.core as pyo

from formulations.problem import MappingProblem


def add_selection(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add, for every layer l,

        sum_k choose[l, k] + sum_{groups g containing l} sum_k fuse[g, k] = 1

    so that the chosen groups and the layers run alone partition the network
    (the groups are intervals of the layer order, so this is an interval
    partition).
    """
    covering = {layer: problem.covering(layer) for layer in m.layers}
    counts = {key: len(cands) for key, cands in problem.groups.items()}

    @m.Constraint(m.layers, doc="each layer runs once: alone with one mapping, or in one fused group")
    def one_mapping_per_layer(m: pyo.ConcreteModel, layer: str) -> pyo.Expression:
        alone = [m.choose[layer, k] for k in range(len(problem.candidates[layer]))]
        fused = [m.fuse[first, last, k] for first, last in covering[layer] for k in range(counts[first, last])]
        return pyo.quicksum(alone + fused) == 1
