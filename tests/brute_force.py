"""Exhaustive search over every tiling, loop order and operand levels: the reference optimum."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import NOTHING, OnChip
from dse_milp.cost import Objective, cost
from dse_milp.traffic import LOOPS, ORDERS, RELEVANT, Tiling, halo_stats, needed_inputs
from dse_milp.workload import Layer, Network, Operand
from tests.layers import every_tiling


class EveryMapping(NamedTuple):
    tilings: list[Tiling]
    traffic: np.ndarray
    """Bits, shaped (tilings, orders, input level, weight level, output level)."""
    fits: np.ndarray
    held: dict[Operand, np.ndarray]
    """Bits of each operand's block, broadcasting to the same shape."""
    exposed: np.ndarray
    """Bits a double-buffered run cannot overlap (``dse_milp.traffic.exposed``), same shape."""


def every_mapping(layer: Layer, accelerator: Accelerator, on_chip: OnChip = NOTHING) -> EveryMapping:
    """Every tiling (1..D in each loop) x all 24 orders x every level of each operand (5 x 5 x 5,
    or innermost only when the accelerator keeps operands innermost); the tensors ``on_chip``
    move nothing and expose nothing (their blocks are still held).

    Each traffic field depends only on its own operand's level (``test_levels`` checks this
    against ``dse_milp.traffic``), so every combination is the sum of one evaluation per
    operand and level; each is the scalar closed form, applied to arrays of tilings.
    """
    tilings = every_tiling(layer)
    t = {d: np.array([getattr(x, d) for x in tilings]) for d in LOOPS}
    trips = {d: -(-layer.dims[d] // t[d]) for d in LOOPS}
    bits = layer.precision
    spans = {
        "r": (layer.r, layer.kh, layer.sh, layer.ph, layer.h),
        "c": (layer.c, layer.kw, layer.sw, layer.pw, layer.w),
    }

    def halo(d: str, tiles: np.ndarray, which: int) -> np.ndarray:
        extent, kernel, stride, pad, size = spans[d]
        return np.array([halo_stats(extent, int(x), kernel, stride, pad, size)[which] for x in tiles])

    def passes(order: str, relevant: str) -> np.ndarray:
        """refetch(order, trips, relevant) for every tiling."""
        inner = np.full(len(tilings), -1)
        for i, d in enumerate(order):
            if d in relevant:
                inner = np.where(trips[d] > 1, i, inner)
        factor = np.ones(len(tilings), dtype=np.int64)
        for i, d in enumerate(order):
            if d not in relevant:
                factor = factor * np.where(i < inner, trips[d], 1)
        return factor

    levels = range(len(LOOPS) + 1) if accelerator.operand_levels else [len(LOOPS)]
    copies = 2 if accelerator.double_buffering else 1
    wide = accelerator.accumulate_in_buffer | (trips["n"] > 1)
    shape = (len(tilings), len(ORDERS), len(levels))
    traffic_of = {op: np.zeros(shape, dtype=np.int64) for op in Operand}
    held = {op: np.zeros(shape, dtype=np.int64) for op in Operand}
    first = {op: np.zeros(shape, dtype=np.int64) for op in Operand}
    for o, order in enumerate(ORDERS):
        for j, level in enumerate(levels):
            inside = order[level:]
            e = {d: np.full(len(tilings), layer.dims[d]) if d in inside else t[d] for d in LOOPS}
            ei = {d: e[d] if d in RELEVANT[Operand.INPUT] else t[d] for d in LOOPS}
            ew = {d: e[d] if d in RELEVANT[Operand.WEIGHT] else t[d] for d in LOOPS}
            eo = {d: e[d] if d in RELEVANT[Operand.OUTPUT] else t[d] for d in LOOPS}
            visits = passes(order[:level], RELEVANT[Operand.OUTPUT])
            moved = layer.input_tensors - on_chip.inputs
            traffic_of[Operand.INPUT][:, o, j] = (
                layer.groups * layer.ng * halo("r", ei["r"], 0) * halo("c", ei["c"], 0) * bits.input
                * moved * passes(order[:level], RELEVANT[Operand.INPUT])
            )  # fmt: skip
            traffic_of[Operand.WEIGHT][:, o, j] = (
                layer.weight_elements * bits.weight * passes(order[:level], RELEVANT[Operand.WEIGHT])
            ) * (not on_chip.weights)
            final = 0 if on_chip.output else bits.output
            traffic_of[Operand.OUTPUT][:, o, j] = layer.output_elements * (final + 2 * (visits - 1) * bits.psum)
            held[Operand.INPUT][:, o, j] = (
                copies * ei["n"] * halo("r", ei["r"], 1) * halo("c", ei["c"], 1) * (bits.input * layer.input_tensors)
            )
            weight = layer.kh * layer.kw * bits.weight if layer.has_weights else 0
            held[Operand.WEIGHT][:, o, j] = copies * ew["m"] * ew["n"] * weight
            held[Operand.OUTPUT][:, o, j] = (
                copies * eo["m"] * eo["r"] * eo["c"] * np.where(wide, bits.psum, bits.output)
            )
            rows = np.array([needed_inputs(0, int(x), layer.sh, layer.kh, layer.ph, layer.h) for x in ei["r"]])
            cols = np.array([needed_inputs(0, int(x), layer.sw, layer.kw, layer.pw, layer.w) for x in ei["c"]])
            first[Operand.INPUT][:, o, j] = ei["n"] * rows * cols * (bits.input * moved)
            first[Operand.WEIGHT][:, o, j] = ew["m"] * ew["n"] * weight * (not on_chip.weights)
            first[Operand.OUTPUT][:, o, j] = eo["m"] * eo["r"] * eo["c"] * final

    spread = {
        Operand.INPUT: (slice(None), slice(None), slice(None), None, None),
        Operand.WEIGHT: (slice(None), slice(None), None, slice(None), None),
        Operand.OUTPUT: (slice(None), slice(None), None, None, slice(None)),
    }
    total = sum(traffic_of[op][spread[op]] for op in Operand)
    blocks = {op: held[op][spread[op]] for op in Operand}
    fit = np.ones(total.shape, dtype=bool)
    for b in accelerator.buffers:
        fit &= sum(blocks[op] for op in b.operands) <= 8 * b.capacity_bytes
    exposed = sum(first[op][spread[op]] for op in Operand)
    return EveryMapping(tilings, total, fit, blocks, exposed)


def best_layer_cost(layer: Layer, accelerator: Accelerator, objective: Objective = Objective.DRAM) -> float | None:
    """The least cost over every tiling, order and operand levels that fit; None if none fits."""
    every = every_mapping(layer, accelerator)
    if not every.fits.any():
        return None
    fit = every.fits
    return float(cost(objective, layer, accelerator, every.traffic[fit] / 8, every.exposed[fit] / 8).min())


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


def residency_choices(segment) -> list[frozenset[str]]:
    """Every subset of a fused group's layers with weights, smallest first: the resident
    weights a brute force tries (the candidates use ``dse_milp.residency`` instead)."""
    named = [layer.name for layer in segment.layers if layer.has_weights]
    return [frozenset(c) for size in range(len(named) + 1) for c in itertools.combinations(named, size)]


def best_group_cost(segment, accelerator: Accelerator, objective: Objective = Objective.DRAM) -> float | None:
    """The least cost of a fused group over every tile (all integers along both axes of its
    last output), every choice of resident weights and every halo mode the accelerator
    allows that fits; None if none fits."""
    from dse_milp.fusion import GroupMapping, group_cost, group_objective

    last = segment.shape(segment.last.name)
    best = None
    for rows, cols, halo in itertools.product(range(1, last.height + 1), range(1, last.width + 1), accelerator.halo):
        for resident in residency_choices(segment):
            c = group_cost(segment, GroupMapping(rows, cols, resident, halo), accelerator.double_buffering,
                           accelerator.liveness)  # fmt: skip
            if any(sum(c.footprint[op] for op in b.operands) > 8 * b.capacity_bytes for b in accelerator.buffers):
                continue
            value = group_objective(objective, accelerator, segment, c)
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


def best_kept_network_cost(
    network: Network, accelerator: Accelerator, objective: Objective = Objective.DRAM, longest: int = 4,
    bank: int | None = None,
) -> float:  # fmt: skip
    """The least cost over every segmentation (as ``best_fused_network_cost``) and every set
    of the tensors crossing its boundaries kept on chip: each unit at its least cost over the
    candidates generated for the tensors it finds or leaves on chip, in the buffers less the
    kept tensors live while it runs (their whole size, in the output's buffer; with ``bank``,
    each in whole banks of that many bytes, as under a free split). Fixed buffers; infinity
    when nothing fits."""
    from dataclasses import replace

    from dse_milp.candidates import generate
    from dse_milp.cost import cost_of
    from dse_milp.fusion import Segment, fusible, generate_group
    from dse_milp.traffic import OnChip

    assert accelerator.split is None
    n = len(network.layers)
    position = {layer.name: i for i, layer in enumerate(network.layers)}
    readers = {layer.name: [position[r.name] for r in network.consumers(layer.name)] for layer in network.layers}
    size = {layer.name: layer.output_elements * layer.precision.output for layer in network.layers}
    if bank is not None:
        size = {x: -(-bits // (8 * bank)) * 8 * bank for x, bits in size.items()}
    holder = accelerator.buffer_of(Operand.OUTPUT).name

    def unit_cost(start: int, stop: int, kept: frozenset[str], reserved: int) -> float | None:
        assert reserved % 8 == 0
        buffers = tuple(replace(b, capacity_bytes=b.capacity_bytes - reserved // 8) if b.name == holder else b
                        for b in accelerator.buffers)  # fmt: skip
        if any(b.capacity_bytes < 0 for b in buffers):
            return None
        acc = replace(accelerator, buffers=buffers)
        if stop - start == 1:
            layer = network.layers[start]
            on_chip = OnChip.of(layer, kept)
            cands = generate(layer, acc, (objective,), on_chip)
            values = cost(objective, layer, acc, cands.total_bits / 8, cands.exposed / 8)
        else:
            cands = generate_group(Segment(network, start, stop), acc, (objective,), kept=kept)
            macs, operand_bytes = cands.work()
            values = cost_of(objective, acc, cands.total_bits / 8, macs, operand_bytes, cands.exposed / 8)
        return float(np.min(values)) if len(cands) else None

    best = None
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0, *(i + 1 for i, cut in enumerate(cuts) if cut), n]
        units = list(itertools.pairwise(bounds))
        if any(b - a > longest or (b - a > 1 and not fusible(network, a, b)) for a, b in units):
            continue
        unit_of = {i: u for u in units for i in range(*u)}
        crossing = [x for x in size if readers[x] and any(unit_of[r] != unit_of[position[x]] for r in readers[x])]
        for count in range(len(crossing) + 1):
            for chosen in itertools.combinations(crossing, count):
                kept = frozenset(chosen)
                total = 0.0
                for a, b in units:
                    touched = frozenset(x for x in kept if a <= position[x] < b or any(a <= r < b for r in readers[x]))
                    live = sum(size[x] for x in kept if a <= max(readers[x]) and b - 1 >= position[x])
                    value = unit_cost(a, b, touched, live)
                    if value is None:
                        break
                    total += value
                else:
                    best = total if best is None else min(best, total)
    return np.inf if best is None else best
