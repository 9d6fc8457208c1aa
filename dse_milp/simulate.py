"""A direct, tile-by-tile simulation of one layer's loop nest.

It shares nothing with the closed forms in ``dse_milp.traffic`` beyond the
definitions of the model: it walks every group and every tile iteration in the
given order, keeps one resident tile per operand, collects the input rows each
tile needs as an explicit set, and counts every transfer. Tests compare it with
the closed forms; it is far too slow for real layers.
"""

from __future__ import annotations

import itertools
from collections import Counter

from dse_milp.fusion import GroupCost, GroupMapping, Segment, weight_slice
from dse_milp.traffic import Mapping, Traffic, tile_bounds
from dse_milp.workload import Layer, LayerKind, Operand, Shape


def _input_span(start: int, stop: int, stride: int, kernel: int, pad: int, size: int) -> int:
    rows = {o * stride - pad + k for o in range(start, stop) for k in range(kernel) if 0 <= o * stride - pad + k < size}
    return len(rows)


def simulate(layer: Layer, mapping: Mapping, double_buffering: bool = False) -> tuple[Traffic, dict[Operand, int]]:
    """Walk the nest; return its traffic and the largest tile of each operand (bits)."""
    bits = layer.precision
    tiles = {d: tile_bounds(extent, getattr(mapping.tiling, d)) for d, extent in layer.dims.items()}
    reduction_tiles = len(tiles["n"])
    copies = 2 if double_buffering else 1
    out_width = bits.psum if reduction_tiles > 1 else bits.output

    reads = Counter[str]()
    largest = dict.fromkeys(Operand, 0)
    resident: dict[Operand, tuple | None] = dict.fromkeys(Operand)
    done = Counter[tuple]()  # reduction tiles accumulated into each output tile

    def leave_output(key: tuple) -> None:
        size = len(range(*tiles["m"][key[1]])) * len(range(*tiles["r"][key[2]])) * len(range(*tiles["c"][key[3]]))
        if done[key] == reduction_tiles:
            reads["output_write"] += size * bits.output
        else:
            reads["psum_write"] += size * bits.psum

    for g in range(layer.groups):
        for index in itertools.product(*(range(len(tiles[d])) for d in mapping.order)):
            at = dict(zip(mapping.order, index, strict=True))
            (m0, m1), (n0, n1), (r0, r1), (c0, c1) = (tiles[d][at[d]] for d in "mnrc")

            key = (g, at["n"], at["r"], at["c"])
            if resident[Operand.INPUT] != key:
                resident[Operand.INPUT] = key
                rows = _input_span(r0, r1, layer.sh, layer.kh, layer.ph, layer.h)
                cols = _input_span(c0, c1, layer.sw, layer.kw, layer.pw, layer.w)
                size = (n1 - n0) * rows * cols * bits.input * layer.input_tensors
                reads["input_read"] += size
                largest[Operand.INPUT] = max(largest[Operand.INPUT], size)

            key = (g, at["m"], at["n"])
            if layer.has_weights and resident[Operand.WEIGHT] != key:
                resident[Operand.WEIGHT] = key
                size = (m1 - m0) * (n1 - n0) * layer.kh * layer.kw * bits.weight
                reads["weight_read"] += size
                largest[Operand.WEIGHT] = max(largest[Operand.WEIGHT], size)

            key = (g, at["m"], at["r"], at["c"])
            if resident[Operand.OUTPUT] != key:
                if resident[Operand.OUTPUT] is not None:
                    leave_output(resident[Operand.OUTPUT])
                resident[Operand.OUTPUT] = key
                size = (m1 - m0) * (r1 - r0) * (c1 - c0)
                if done[key] > 0:
                    reads["psum_read"] += size * bits.psum
                largest[Operand.OUTPUT] = max(largest[Operand.OUTPUT], size * out_width)
            done[key] += 1
    leave_output(resident[Operand.OUTPUT])

    traffic = Traffic(**reads)
    return traffic, {op: copies * size for op, size in largest.items()}


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
        for tensor, (rows, cols) in held.items():
            size = segment.shape(tensor).channels * len(rows) * len(cols)
            largest[tensor] = max(largest[tensor], size)
            if tensor in segment.externals:
                reader = next(layer for layer in segment.layers if tensor in layer.inputs)
                reads[reader.name]["input_read"] += size * segment.input_bits(tensor)
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
