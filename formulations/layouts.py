"""Layouts: one layout per tensor in DRAM, shared by its producer and all its readers."""

from __future__ import annotations

import pyomo.core as pyo

from formulations.objective import hold
from formulations.problem import MappingProblem


def add_layouts(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """With layouts to choose (``problem.layouts``), add a binary layout[t, i] for every tensor t
    and layout i, with

        sum_i layout[t, i] = 1
        sum_{k: candidate k of unit u reads t in layout i} x[u, k] <= layout[t, i]
        sum_{k: candidate k of unit u writes t in layout i} x[u, k] <= layout[t, i]

    for every unit u (a layer alone, x = choose; a fused group, x = fuse) that reads or
    writes t. At most one candidate of a unit is chosen, so a chosen candidate fixes the
    layouts of every tensor it touches, and two units that disagree cannot both be chosen.
    A tensor that only lives inside a fused group keeps a free (unused) layout.
    """
    if not problem.layouts:
        return
    # (tensor, layout, unit) -> the unit's candidates that keep the tensor in that layout
    touched: dict[tuple[str, str, str], list[pyo.Var]] = {}

    def need(tensor: str, layout: str, unit: str, var: pyo.Var) -> None:
        touched.setdefault((tensor, layout, unit), []).append(var)

    for layer in problem.network.layers:
        for k, pair in enumerate(problem.candidates[layer.name].layouts):
            for tensor in dict.fromkeys(layer.inputs[: layer.input_tensors]):
                need(tensor, str(pair.input), layer.name, m.choose[layer.name, k])
            need(layer.name, str(pair.output), layer.name, m.choose[layer.name, k])
    for (first, last), cands in problem.groups.items():
        unit = f"{first}..{last}"
        for k, pair in enumerate(cands.layouts):
            for tensor in cands.segment.externals:
                need(tensor, str(pair.input), unit, m.fuse[first, last, k])
            need(cands.segment.last.name, str(pair.output), unit, m.fuse[first, last, k])
    names = [str(x) for x in problem.layouts]
    tensors = list(dict.fromkeys(tensor for tensor, _, _ in touched))
    m.tensors = pyo.Set(initialize=tensors, ordered=True, doc="tensors in DRAM")
    m.layout_names = pyo.Set(initialize=names, ordered=True, doc="layouts to choose from")
    m.layout = pyo.Var(m.tensors, m.layout_names, domain=pyo.Binary, doc="1 if the tensor is stored in this layout")

    @m.Constraint(m.tensors, doc="one layout per tensor")
    def one_layout(m: pyo.ConcreteModel, tensor: str) -> pyo.Expression:
        return pyo.quicksum(m.layout[tensor, x] for x in m.layout_names) == 1

    links = list(touched.items())
    m.layout_links = pyo.Set(initialize=range(len(links)), doc="(tensor, layout, unit) links")

    @m.Constraint(m.layout_links, doc="a chosen candidate's tensors are in its layouts")
    def same_layout(m: pyo.ConcreteModel, i: int) -> pyo.Expression:
        (tensor, x, _), variables = links[i]
        return pyo.quicksum(variables) <= m.layout[tensor, x]


def chosen_layouts(m: pyo.ConcreteModel) -> dict[str, str]:
    """The layout of each tensor, read from a solved model (empty without layouts)."""
    if not hasattr(m, "layout"):
        return {}
    return {tensor: x for (tensor, x), var in m.layout.items() if var.value is not None and var.value > 0.5}


def prefer_layouts(m: pyo.ConcreteModel, measure: str, optimum: float) -> None:
    """Hold ``measure`` (the last one) at its optimum, as ``fix_stage`` does, and minimise

        sum_t sum_i i * layout[t, i]

    over the layouts' positions i in ``problem.layouts``: a tensor whose layouts tie takes
    the earliest (NCHW, then NHWC, then NCHW16c under ``--layout auto``)."""
    hold(m, measure, optimum)
    position = {x: i for i, x in enumerate(m.layout_names)}
    m.total_cost.set_value(pyo.quicksum(position[x] * var for (_, x), var in m.layout.items()))
