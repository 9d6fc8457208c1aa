"""Objective: the total cost of the chosen mappings, lexicographic over several measures."""

from __future__ import annotations

import pyomo.core as pyo

from dse_milp.cost import Objective
from formulations.problem import MappingProblem


def add_objective(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add, for each measure o of ``problem.objectives``, layer l and fused group g,

        layer_cost[o, l] = sum_k cost[o, l, k] * choose[l, k]
        group_cost[o, g] = sum_k cost[o, g, k] * fuse[g, k]
        total[o] = sum_l layer_cost[o, l] + sum_g group_cost[o, g]

    and minimise total[o] for the first measure. A cost is the candidate's DRAM
    bytes, energy (pJ) or latency (cycles) (see ``dse_milp.cost``). The later
    measures break ties: see ``fix_stage``.
    """
    m.measures = pyo.Set(initialize=[o.value for o in problem.objectives], ordered=True, doc="objective measures")
    costs = {(o, layer): problem.cost(Objective(o), layer) for o in m.measures for layer in m.layers}
    group_costs = {(o, key): problem.group_cost(Objective(o), key) for o in m.measures for key in problem.groups}

    @m.Expression(m.measures, m.layers, doc="the layer's cost under each measure")
    def layer_cost(m: pyo.ConcreteModel, measure: str, layer: str) -> pyo.Expression:
        return pyo.quicksum(float(c) * m.choose[layer, k] for k, c in enumerate(costs[measure, layer]))

    @m.Expression(m.measures, m.groups, doc="the fused group's cost under each measure")
    def group_cost(m: pyo.ConcreteModel, measure: str, first: str, last: str) -> pyo.Expression:
        values = group_costs[measure, (first, last)]
        return pyo.quicksum(float(c) * m.fuse[first, last, k] for k, c in enumerate(values))

    @m.Expression(m.measures, doc="the network's cost under each measure")
    def total(m: pyo.ConcreteModel, measure: str) -> pyo.Expression:
        alone = [m.layer_cost[measure, layer] for layer in m.layers]
        fused = [m.group_cost[measure, first, last] for first, last in m.groups]
        return pyo.quicksum(alone + fused)

    m.total_cost = pyo.Objective(expr=m.total[m.measures.first()], sense=pyo.minimize, doc="the first measure")
    m.stage_bound = pyo.ConstraintList(doc="earlier measures held at their optimum")


def hold(m: pyo.ConcreteModel, measure: str, optimum: float) -> None:
    """Hold ``measure`` at its optimum (within 1e-9 relative) while a later stage breaks its ties."""
    m.stage_bound.add(m.total[measure] <= optimum + 1e-9 * max(abs(optimum), 1.0))


def fix_stage(m: pyo.ConcreteModel, measure: str, optimum: float, next_measure: str) -> None:
    """Hold ``measure`` at its optimum (``hold``) and minimise ``next_measure``."""
    hold(m, measure, optimum)
    m.total_cost.set_value(m.total[next_measure])
