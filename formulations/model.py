"""The whole-network mapping program (no fusion): one candidate per layer, least total cost."""

from __future__ import annotations

import pyomo.environ as pyo

from formulations.capacity import add_capacity
from formulations.objective import add_objective
from formulations.problem import MappingProblem
from formulations.selection import add_selection


def build_model(problem: MappingProblem) -> pyo.ConcreteModel:
    """The MILP of ``problem``: binaries choose[l, k] pick candidate k for layer l."""
    m = pyo.ConcreteModel(name=f"{problem.network.name}@{problem.accelerator.name}")
    m.layers = pyo.Set(initialize=[layer.name for layer in problem.network.layers], ordered=True, doc="layers")
    m.buffers = pyo.Set(initialize=[b.name for b in problem.accelerator.buffers], ordered=True, doc="buffers")
    m.candidates = pyo.Set(
        dimen=2,
        ordered=True,
        initialize=[(layer, k) for layer in m.layers for k in range(len(problem.candidates[layer]))],
        doc="(layer, candidate index)",
    )
    m.choose = pyo.Var(m.candidates, domain=pyo.Binary, doc="1 if the layer runs with this candidate mapping")
    add_selection(m, problem)
    add_capacity(m, problem)
    add_objective(m, problem)
    return m


def chosen_candidates(m: pyo.ConcreteModel) -> dict[str, int]:
    """The candidate index each layer runs with, read from a solved model."""
    chosen: dict[str, int] = {}
    for (layer, k), var in m.choose.items():
        if var.value is not None and var.value > 0.5:
            chosen[layer] = k
    return chosen
