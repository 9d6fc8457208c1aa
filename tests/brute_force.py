"""Exhaustive search over every tiling and every loop order: the reference optimum."""

from __future__ import annotations

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
