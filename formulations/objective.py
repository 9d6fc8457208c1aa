"""Objective: the total cost of the chosen mappings, lexicographic over several measures."""

from __future__ import annotations

import pyomo.environ as pyo

from dse_milp.cost import Objective
from formulations.problem import MappingProblem


def add_objective(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add, for each measure o of ``problem.objectives`` and layer l,

        layer_cost[o, l] = sum_k cost[o, l, k] * choose[l, k],   total[o] = sum_l layer_cost[o, l]

    and minimise total[o] for the first measure. cost[o, l, k] is candidate k's
    DRAM bytes, energy (pJ) or latency (cycles) (see ``dse_milp.cost``). The later
    measures break ties: see ``fix_stage``.
    """
    m.measures = pyo.Set(initialize=[o.value for o in problem.objectives], ordered=True, doc="objective measures")
    costs = {(o, layer): problem.cost(Objective(o), layer) for o in m.measures for layer in m.layers}

    @m.Expression(m.measures, m.layers, doc="the layer's cost under each measure")
    def layer_cost(m: pyo.ConcreteModel, measure: str, layer: str) -> pyo.Expression:
        return pyo.quicksum(float(c) * m.choose[layer, k] for k, c in enumerate(costs[measure, layer]))

    @m.Expression(m.measures, doc="the network's cost under each measure")
    def total(m: pyo.ConcreteModel, measure: str) -> pyo.Expression:
        return pyo.quicksum(m.layer_cost[measure, layer] for layer in m.layers)

    m.total_cost = pyo.Objective(expr=m.total[m.measures.first()], sense=pyo.minimize, doc="the first measure")
    m.stage_bound = pyo.ConstraintList(doc="earlier measures held at their optimum")


def fix_stage(m: pyo.ConcreteModel, measure: str, optimum: float, next_measure: str) -> None:
    """Hold ``measure`` at its optimum (within 1e-9 relative) and minimise ``next_measure``."""
    m.stage_bound.add(m.total[measure] <= optimum + 1e-9 * max(abs(optimum), 1.0))
    m.total_cost.set_value(m.total[next_measure])
