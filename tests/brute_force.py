"""Exhaustive search over every tiling and every loop order: the reference optimum."""

from __future__ import annotations

import itertools

from dse_milp.accelerator import Accelerator
from dse_milp.cost import Objective, cost
from dse_milp.traffic import ORDERS, Mapping, footprint, traffic
from dse_milp.workload import Layer, Network
from tests.layers import every_tiling


def fits(layer: Layer, accelerator: Accelerator, tiling) -> bool:
    tiles = footprint(layer, tiling, accelerator.double_buffering)
    return all(sum(tiles[op] for op in b.operands) <= 8 * b.capacity_bytes for b in accelerator.buffers)


def best_layer_cost(layer: Layer, accelerator: Accelerator, objective: Objective = Objective.DRAM) -> float | None:
    """The least cost over every tiling (1..D in each loop) and all 24 orders that fit; None if none fits."""
    best = None
    for tiling in every_tiling(layer):
        if not fits(layer, accelerator, tiling):
            continue
        for order in ORDERS:
            value = cost(objective, layer, accelerator, traffic(layer, Mapping(tiling, order)).total / 8).item()
            best = value if best is None else min(best, value)
    return best


def best_network_cost(network: Network, accelerator: Accelerator, objective: Objective = Objective.DRAM) -> float:
    """Every layer's choice is independent (the program has no coupling constraint without
    fusion), so the network optimum over the product of all choices is the sum of the
    per-layer optima."""
    total = 0.0
    for layer in network.layers:
        value = best_layer_cost(layer, accelerator, objective)
        assert value is not None, layer.name
        total += value
    return total


def best_group_cost(segment, accelerator: Accelerator, objective: Objective = Objective.DRAM) -> float | None:
    """The least cost of a fused group over every tile (all integers along both axes of its
    last output) and every choice of resident weights that fits; None if none fits."""
    from dse_milp.cost import cost_of, operand_bytes_per_mac
    from dse_milp.fusion import GroupMapping, group_cost, residency_choices

    last = segment.shape(segment.last.name)
    best = None
    for rows in range(1, last.height + 1):
        for cols in range(1, last.width + 1):
            for resident in residency_choices(segment):
                c = group_cost(segment, GroupMapping(rows, cols, resident), accelerator.double_buffering)
                if any(sum(c.footprint[op] for op in b.operands) > 8 * b.capacity_bytes for b in accelerator.buffers):
                    continue
                macs = {layer.name: layer.macs + c.extra_macs[layer.name] for layer in segment.layers}
                operand = sum(macs[layer.name] * operand_bytes_per_mac(layer) for layer in segment.layers)
                value = cost_of(objective, accelerator, c.traffic.total / 8, sum(macs.values()), operand).item()
                best = value if best is None else min(best, value)
    return best


def best_fused_network_cost(
    network: Network, accelerator: Accelerator, objective: Objective = Objective.DRAM, longest: int = 6
) -> float:
    """The least cost over every segmentation of the layer order into runs (a run of two or
    more layers must be able to run fused, and hold at most ``longest`` layers), each run
    at its least cost over every mapping."""
    from dse_milp.fusion import Segment, fusible

    n = len(network.layers)
    single = [best_layer_cost(layer, accelerator, objective) for layer in network.layers]
    runs: dict[tuple[int, int], float | None] = {}
    best = None
    for cuts in itertools.product([False, True], repeat=n - 1):  # True: a boundary after layer i
        bounds = [0, *(i + 1 for i, cut in enumerate(cuts) if cut), n]
        total = 0.0
        for start, stop in itertools.pairwise(bounds):
            if stop - start == 1:
                value = single[start]
            elif stop - start > longest or not fusible(network, start, stop):
                value = None
            else:
                if (start, stop) not in runs:
                    runs[start, stop] = best_group_cost(Segment(network, start, stop), accelerator, objective)
                value = runs[start, stop]
            if value is None:
                break
            total += value
        else:
            best = total if best is None else min(best, total)
    assert best is not None
    return best
