"""A direct, tile-by-tile simulation of one layer's loop nest.

It shares nothing with the closed forms in ``dse_milp.traffic`` beyond the
definitions of the model: it walks every group and every tile iteration in the
given order, keeps one resident block per operand (the tiles inside its level),
collects the input rows each block needs as an explicit set, and counts every
transfer. Tests compare it with the closed forms; it is far too slow for real
layers.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import NamedTuple

from dse_milp.fusion import GroupCost, GroupMapping, Segment, weight_slice
from dse_milp.traffic import Mapping, Traffic, tile_bounds
from dse_milp.workload import Layer, LayerKind, Operand, Shape


def _input_span(start: int, stop: int, stride: int, kernel: int, pad: int, size: int) -> int:
    rows = {o * stride - pad + k for o in range(start, stop) for k in range(kernel) if 0 <= o * stride - pad + k < size}
    return len(rows)


class Walk(NamedTuple):
    traffic: Traffic
    footprint: dict[Operand, int]
    """The largest block of each operand (bits), doubled when double-buffered."""
    exposed: int
    """Bits read before the first step computes, plus the largest output block written."""


def simulate(
    layer: Layer, mapping: Mapping, double_buffering: bool = False, accumulate_in_buffer: bool = False
) -> Walk:
    """Walk the nest; return its traffic, the largest block of each operand and the exposed
    bits (all in bits).

    Each operand keeps one block: the tiles of the loops inside its level, for
    the current tile of every loop outside it. The block is named by the tile
    indices of the loops outside the level that select the operand; it is read
    when that name changes. Its extent is found by taking the union of the tile
    ranges its loops cover.
    """
    bits = layer.precision
    tiles = {d: tile_bounds(extent, getattr(mapping.tiling, d)) for d, extent in layer.dims.items()}
    reduction_tiles = len(tiles["n"])
    copies = 2 if double_buffering else 1
    out_width = bits.psum if reduction_tiles > 1 or accumulate_in_buffer else bits.output
    selects = {Operand.INPUT: "nrc", Operand.WEIGHT: "mn", Operand.OUTPUT: "mrc"}
    outside = {op: mapping.order[: mapping.levels.of(op)] for op in Operand}

    def span(op: Operand, at: dict[str, int], d: str) -> range:
        """The range of loop ``d`` the block of ``op`` covers at the nest position ``at``."""
        if d in outside[op]:
            return range(*tiles[d][at[d]])
        return range(tiles[d][0][0], tiles[d][-1][1])

    def name(op: Operand, g: int, at: dict[str, int]) -> tuple:
        return (g, *((d, at[d]) for d in outside[op] if d in selects[op]))

    reads = Counter[str]()
    largest = dict.fromkeys(Operand, 0)
    resident: dict[Operand, tuple | None] = dict.fromkeys(Operand)
    output_block: set[tuple] = set()
    done = Counter[tuple]()  # reduction tiles accumulated into each output tile
    first_load: int | None = None  # what the first step reads before it computes
    last_store = 0

    def leave_output() -> None:
        size = sum(
            len(range(*tiles["m"][m])) * len(range(*tiles["r"][r])) * len(range(*tiles["c"][c]))
            for (_, m, r, c) in output_block
        )
        nonlocal last_store
        if all(done[key] == reduction_tiles for key in output_block):
            reads["output_write"] += size * bits.output
            last_store = max(last_store, size * bits.output)
        else:
            reads["psum_write"] += size * bits.psum

    for g in range(layer.groups):
        for index in itertools.product(*(range(len(tiles[d])) for d in mapping.order)):
            at = dict(zip(mapping.order, index, strict=True))

            key = name(Operand.INPUT, g, at)
            if resident[Operand.INPUT] != key:
                resident[Operand.INPUT] = key
                r, c = span(Operand.INPUT, at, "r"), span(Operand.INPUT, at, "c")
                rows = _input_span(r.start, r.stop, layer.sh, layer.kh, layer.ph, layer.h)
                cols = _input_span(c.start, c.stop, layer.sw, layer.kw, layer.pw, layer.w)
                size = len(span(Operand.INPUT, at, "n")) * rows * cols * bits.input * layer.input_tensors
                reads["input_read"] += size
                largest[Operand.INPUT] = max(largest[Operand.INPUT], size)

            key = name(Operand.WEIGHT, g, at)
            if layer.has_weights and resident[Operand.WEIGHT] != key:
                resident[Operand.WEIGHT] = key
                size = len(span(Operand.WEIGHT, at, "m")) * len(span(Operand.WEIGHT, at, "n"))
                reads["weight_read"] += size * layer.kh * layer.kw * bits.weight
                largest[Operand.WEIGHT] = max(largest[Operand.WEIGHT], size * layer.kh * layer.kw * bits.weight)

            key = name(Operand.OUTPUT, g, at)
            if resident[Operand.OUTPUT] != key:
                if resident[Operand.OUTPUT] is not None:
                    leave_output()
                resident[Operand.OUTPUT] = key
                m, r, c = (span(Operand.OUTPUT, at, d) for d in "mrc")
                output_block = {
                    (g, i, j, k)
                    for i, (a, _) in enumerate(tiles["m"]) if a in m
                    for j, (b, _) in enumerate(tiles["r"]) if b in r
                    for k, (e, _) in enumerate(tiles["c"]) if e in c
                }  # fmt: skip
                size = len(m) * len(r) * len(c)
                if any(done[key] > 0 for key in output_block):
                    reads["psum_read"] += size * bits.psum
                largest[Operand.OUTPUT] = max(largest[Operand.OUTPUT], size * out_width)
            done[g, at["m"], at["r"], at["c"]] += 1
            if first_load is None:
                first_load = reads["input_read"] + reads["weight_read"]
    leave_output()

    traffic = Traffic(**reads)
    return Walk(traffic, {op: copies * size for op, size in largest.items()}, (first_load or 0) + last_store)


def simulate_group(segment: Segment, mapping: GroupMapping, double_buffering: bool = False) -> GroupCost:
    """Walk a fused group tile by tile, finding every region from explicit sets of elements.

    For each tile of the last layer's output, the (row, column) elements each
    layer must produce are collected backwards by enumerating, for every needed
    output element, the input elements its kernel window touches. Each tensor
    then holds the smallest rectangle covering what it must provide.
    """
    last = segment.shape(segment.last.name)
    copies = 2 if double_buffering else 1
    reads: dict[str, Counter[str]] = {layer.name: Counter() for layer in segment.layers}
    largest = Counter[str]()
    computed = Counter[str]()
    loaded: set[str] = set()
    first_inputs: int | None = None  # bits of the external regions of the first tile
    tiles = 0
    for (r0, r1), (c0, c1) in itertools.product(
        tile_bounds(last.height, mapping.rows), tile_bounds(last.width, mapping.cols)
    ):
        tiles += 1
        needed = {segment.last.name: {(r, c) for r in range(r0, r1) for c in range(c0, c1)}}
        held: dict[str, tuple[range, range]] = {}
        for layer in reversed(segment.layers):
            rows = range(min(r for r, _ in needed[layer.name]), max(r for r, _ in needed[layer.name]) + 1)
            cols = range(min(c for _, c in needed[layer.name]), max(c for _, c in needed[layer.name]) + 1)
            held[layer.name] = (rows, cols)
            for producer in layer.inputs:
                shape = segment.shape(producer)
                needed.setdefault(producer, set()).update(_window(layer, shape, rows, cols))
        for producer in segment.externals:
            points = needed[producer]
            held[producer] = (
                range(min(r for r, _ in points), max(r for r, _ in points) + 1),
                range(min(c for _, c in points), max(c for _, c in points) + 1),
            )
        read_now = 0
        for tensor, (rows, cols) in held.items():
            size = segment.shape(tensor).channels * len(rows) * len(cols)
            largest[tensor] = max(largest[tensor], size)
            if tensor in segment.externals:
                reader = next(layer for layer in segment.layers if tensor in layer.inputs)
                reads[reader.name]["input_read"] += size * segment.input_bits(tensor)
                read_now += size * segment.input_bits(tensor)
        if first_inputs is None:
            first_inputs = read_now
        for layer in segment.layers:
            rows, cols = held[layer.name]
            computed[layer.name] += layer.macs_per_output * segment.shape(layer.name).channels * len(rows) * len(cols)
            if layer.has_weights and (layer.name not in mapping.resident or layer.name not in loaded):
                reads[layer.name]["weight_read"] += layer.weight_elements * layer.precision.weight
                loaded.add(layer.name)
    reads[segment.last.name]["output_write"] = segment.last.output_elements * segment.last.precision.output

    held_weights = sum(
        (layer.weight_elements if layer.name in mapping.resident else weight_slice(layer)) * layer.precision.weight
        for layer in segment.layers
        if layer.has_weights
    )
    return GroupCost(
        by_layer={name: Traffic(**counts) for name, counts in reads.items()},
        footprint={
            Operand.INPUT: copies * sum(largest[x] * segment.input_bits(x) for x in segment.externals),
            Operand.WEIGHT: copies * held_weights,
            Operand.OUTPUT: copies * sum(largest[layer.name] * layer.precision.output for layer in segment.layers),
        },
        tiles=tiles,
        extra_macs={layer.name: computed[layer.name] - layer.macs for layer in segment.layers},
        exposed=(first_inputs or 0) + held_weights + largest[segment.last.name] * segment.last.precision.output,
    )


def _window(layer: Layer, producer: Shape, rows: range, cols: range) -> set[tuple[int, int]]:
    """The input elements (row, column) that output rows x cols of ``layer`` read."""
    if layer.kind is LayerKind.ADD or (layer.kind is LayerKind.MATMUL and layer.n == producer.channels):
        return {(r, c) for r in rows for c in cols}
    if layer.kind is LayerKind.MATMUL:  # flattened: every element
        return {(r, c) for r in range(producer.height) for c in range(producer.width)}
    return {
        (r * layer.sh - layer.ph + i, c * layer.sw - layer.pw + j)
        for r in rows
        for c in cols
        for i in range(layer.kh)
        for j in range(layer.kw)
        if 0 <= r * layer.sh - layer.ph + i < producer.height and 0 <= c * layer.sw - layer.pw + j < producer.width
    }
