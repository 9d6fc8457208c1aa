"""The whole-network mapping program: every layer runs alone or in one fused group, with
one candidate mapping each, at least total cost."""

from __future__ import annotations

import pyomo.core as pyo

from formulations.capacity import add_capacity
from formulations.fusion import add_fusion
from formulations.kept import add_kept
from formulations.layouts import add_layouts
from formulations.objective import add_objective
from formulations.partition import add_partition
from formulations.problem import MappingProblem
from formulations.selection import add_selection


def build_model(problem: MappingProblem) -> pyo.ConcreteModel:
    """The MILP of ``problem``: binaries choose[l, k] pick candidate k for layer l run alone,
    fuse[g, k] candidate k for fused group g."""
    m = pyo.ConcreteModel(name=f"{problem.network.name}@{problem.accelerator.name}")
    m.layers = pyo.Set(initialize=[layer.name for layer in problem.network.layers], ordered=True, doc="layers")
    m.buffers = pyo.Set(initialize=[b.name for b in problem.accelerator.buffers], ordered=True, doc="buffers")
    m.candidates = pyo.Set(
        dimen=2,
        ordered=True,
        initialize=[(layer, k) for layer in m.layers for k in range(len(problem.candidates[layer]))],
        doc="(layer, candidate index)",
    )
    m.choose = pyo.Var(m.candidates, domain=pyo.Binary, doc="1 if the layer runs alone with this candidate mapping")
    add_partition(m, problem)
    add_fusion(m, problem)
    add_selection(m, problem)
    add_capacity(m, problem)
    add_kept(m, problem)
    add_layouts(m, problem)
    add_objective(m, problem)
    return m


def chosen_candidates(m: pyo.ConcreteModel) -> dict[str, int]:
    """The candidate index of each layer that runs alone, read from a solved model."""
    return {layer: k for (layer, k), var in m.choose.items() if var.value is not None and var.value > 0.5}


def chosen_kept(m: pyo.ConcreteModel) -> frozenset[str]:
    """The tensors a solved model keeps on chip between units."""
    return frozenset(x for x, var in m.keep.items() if var.value is not None and var.value > 0.5)


def chosen_groups(m: pyo.ConcreteModel) -> dict[tuple[str, str], int]:
    """The candidate index of each fused group chosen, read from a solved model."""
    return {(first, last): k for (first, last, k), var in m.fuse.items() if var.value is not None and var.value > 0.5}
