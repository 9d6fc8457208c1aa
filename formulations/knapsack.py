"""The pruning step of the ``program`` policy: a multiple-choice knapsack.

Each channel group g may lose k = 1 .. K_g channels, or none. Losing k saves
``saved[g][k-1]`` predicted DRAM bytes and costs ``lost[g][k-1]`` importance
(the importance scores of exactly the k channels that would go). With a binary
pick[g, k] per option:

    max  sum_{g,k} saved[g][k] pick[g, k]
    s.t. sum_k pick[g, k] <= 1                         for every group g
         sum_{g,k} lost[g][k] pick[g, k] <= budget
         sum_{g,k} k pick[g, k] <= channels

that is, the most predicted bytes saved per unit of importance lost, within the
step's budget of importance and of channels. Ties are broken by least importance
lost (``hold_saving``), then by the solver's deterministic choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyomo.core as pyo


def build_knapsack(
    saved: dict[str, Sequence[float]], lost: dict[str, Sequence[float]], budget: float, channels: int
) -> pyo.ConcreteModel:
    """The knapsack above; ``saved[g]`` and ``lost[g]`` list the options k = 1, 2, ... of group g."""
    m = pyo.ConcreteModel(name="pruning step")
    m.groups = pyo.Set(initialize=list(saved), ordered=True, doc="channel groups")
    m.options = pyo.Set(
        dimen=2,
        ordered=True,
        initialize=[(g, k) for g in saved for k in range(1, len(saved[g]) + 1)],
        doc="(group, channels removed)",
    )
    m.pick = pyo.Var(m.options, domain=pyo.Binary, doc="1 if the group loses this many channels")

    @m.Constraint(m.groups, doc="at most one option per group")
    def one_option_per_group(m: pyo.ConcreteModel, group: str) -> pyo.Expression:
        options = [m.pick[group, k] for k in range(1, len(saved[group]) + 1)]
        return pyo.quicksum(options) <= 1 if options else pyo.Constraint.Skip

    m.saving = pyo.Expression(
        expr=pyo.quicksum(float(saved[g][k - 1]) * m.pick[g, k] for g, k in m.options),
        doc="predicted DRAM bytes saved",
    )
    m.loss = pyo.Expression(
        expr=pyo.quicksum(float(lost[g][k - 1]) * m.pick[g, k] for g, k in m.options), doc="importance lost"
    )
    m.importance_budget = pyo.Constraint(expr=m.loss <= budget, doc="the step's importance budget")
    m.channel_budget = pyo.Constraint(
        expr=pyo.quicksum(k * m.pick[g, k] for g, k in m.options) <= channels, doc="the step's channel budget"
    )
    m.most_saving = pyo.Objective(expr=-m.saving, sense=pyo.minimize, doc="most predicted bytes saved")
    m.held = pyo.ConstraintList(doc="the saving held at its optimum while ties are broken")
    return m


def hold_saving(m: pyo.ConcreteModel, optimum: float) -> None:
    """Keep the saving at ``optimum`` (within 1e-9 relative) and minimise the importance lost."""
    m.held.add(m.saving >= optimum - 1e-9 * max(abs(optimum), 1.0))
    m.most_saving.deactivate()
    m.least_loss = pyo.Objective(expr=m.loss, sense=pyo.minimize, doc="least importance lost among the best")


def chosen_counts(m: pyo.ConcreteModel) -> dict[str, int]:
    """The channels each group loses (0 for none), read from a solved knapsack."""
    counts = dict.fromkeys(m.groups, 0)
    for (group, k), var in m.pick.items():
        if var.value is not None and var.value > 0.5:
            counts[group] = k
    return counts
