"""Tensors kept on chip between units: one decision per tensor, and its footprint in every
unit it spans."""

from __future__ import annotations

import pyomo.core as pyo

from dse_milp.workload import Operand
from formulations.problem import MappingProblem


def add_kept(m: pyo.ConcreteModel, problem: MappingProblem) -> None:
    """Add, for every tensor X that may stay on chip (``problem.kept_tensors``), a binary
    keep[X], and

        sum of the writer's candidates that keep X            = keep[X]
        sum, for each layer L reading X, of the candidates
        of the units covering L (X from outside) that keep X  = keep[X]

    where the writer's candidates are those of X's layer run alone and of every group it
    ends; so X is kept by all of them or by none (a unit holding X's writer and a reader
    inside it has no such candidate, and then keep[X] = 0). Each kept X holds its whole size
    in the buffer of the output operand in every unit whose layers reach from X's writer to
    its last reader: for such a unit u, held[X, u] >= keep[X] + chosen[u] - 1 (chosen[u] the
    sum of u's candidates) and u's row

        sum_k bytes[u, k] * x[u, k] + sum_X size[X] * held[X, u] <= buffer size

    Under a free split the row counts whole banks, of the unit's tiles and of each kept tensor
    on its own (a kept tensor takes banks of its own), against the output buffer's banks.
    """
    tensors = sorted(problem.kept_tensors)
    m.kept_tensors = pyo.Set(initialize=tensors, ordered=True, doc="tensors that may stay on chip between units")
    m.keep = pyo.Var(m.kept_tensors, domain=pyo.Binary, doc="1 if the tensor stays on chip between units")
    if not tensors:
        return
    network = problem.network
    position = {layer.name: i for i, layer in enumerate(network.layers)}
    units: dict[tuple[str, str], tuple[list, list[frozenset[str]], list[float]]] = {}
    buffer = problem.accelerator.buffer_of(Operand.OUTPUT).name
    for layer in network.layers:
        cands = problem.candidates[layer.name]
        units[layer.name, layer.name] = (
            [m.choose[layer.name, k] for k in range(len(cands))],
            list(cands.kept) or [frozenset()] * len(cands),
            problem.buffer_bytes(cands.footprint)[buffer].tolist(),
        )
    for (first, last), cands in problem.groups.items():
        units[first, last] = (
            [m.fuse[first, last, k] for k in range(len(cands))],
            list(cands.kept) or [frozenset()] * len(cands),
            problem.buffer_bytes(cands.footprint)[buffer].tolist(),
        )

    def keeping(unit: tuple[str, str], tensor: str) -> list:
        choices, kept, _ = units[unit]
        return [x for x, k in zip(choices, kept, strict=True) if tensor in k]

    m.kept_links = pyo.ConstraintList(doc="a tensor is kept by its writer and by every reader, or by none")
    last_reader: dict[str, int] = {}
    for x in tensors:
        writers = [key for key in units if key[1] == x]
        m.kept_links.add(pyo.quicksum(v for key in writers for v in keeping(key, x)) == m.keep[x])
        readers = network.consumers(x)
        last_reader[x] = max(position[r.name] for r in readers)
        for reader in readers:
            covering = [(reader.name, reader.name), *problem.covering(reader.name)]
            outside = [key for key in covering if not position[key[0]] <= position[x] <= position[key[1]]]
            m.kept_links.add(pyo.quicksum(v for key in outside for v in keeping(key, x)) == m.keep[x])

    size = {x: network.by_name[x].output_elements * network.by_name[x].precision.output / 8 for x in tensors}
    live = {
        key: [x for x in tensors if position[key[0]] <= last_reader[x] and position[key[1]] >= position[x]]
        for key in units
    }
    pairs = [(x, *key) for key in units for x in live[key]]
    m.kept_pairs = pyo.Set(dimen=3, ordered=True, initialize=pairs, doc="(tensor, unit) while the tensor is live")
    m.held = pyo.Var(m.kept_pairs, domain=pyo.Binary, doc="1 if the tensor is kept and the unit runs")

    @m.Constraint(m.kept_pairs, doc="a kept tensor is held in every unit that runs while it is live")
    def held_while_live(m: pyo.ConcreteModel, x: str, first: str, last: str) -> pyo.Expression:
        return m.held[x, first, last] >= m.keep[x] + pyo.quicksum(units[first, last][0]) - 1

    split = problem.accelerator.split
    if split is not None:  # whole banks: a unit's tiles, and each kept tensor on its own
        units = {key: (v, k, [float(-(-b // split.bank_bytes)) for b in need]) for key, (v, k, need) in units.items()}
        size = {x: float(-(-size[x] // split.bank_bytes)) for x in size}

    @m.Constraint(list(units), doc="a unit's tiles and the tensors kept while it runs fit the output's buffer")
    def kept_capacity(m: pyo.ConcreteModel, first: str, last: str) -> pyo.Expression:
        if not live[first, last]:
            return pyo.Constraint.Skip
        choices, _, need = units[first, last]
        tiles = pyo.quicksum(float(b) * v for b, v in zip(need, choices, strict=True))
        kept = pyo.quicksum(size[x] * m.held[x, first, last] for x in live[first, last])
        return tiles + kept <= (m.banks[buffer] if split is not None else m.buffer_size[buffer])
