"""The DRAM bursts one layer's mapping moves, for given tensor layouts (scalar reference).

The traffic model (``dse_milp.traffic``) reads every block of an operand once per
pass, and makes ``refetch`` passes; here each block transfer costs the bursts its
elements touch in the tensor's layout (``dse_milp.layouts``), so an operand moves
``passes x (bursts of every block of one pass)`` bursts:

- input: each block is the channels of its n block (within its group), and the
  input rows and columns its output rows and columns read (halo included, rows a
  stride skips left out), in the input's layout; every input tensor of an add;
- output: each block once at output width, and its partial sums (visits - 1
  times) at partial-sum width, in the output's layout;
- weights: stored in the order the mapping reads them (a compiler packs them
  offline), each block from a burst boundary: ``ceil(block bytes / burst)``.

``dse_milp.simulate.simulate`` walks the nest and counts the distinct bursts of
every transfer from its elements, sharing none of this.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from dse_milp.fusion import GroupMapping, Segment, spans, weight_slice
from dse_milp.layouts import Layout, Span, distinct_bursts, input_spans, runs
from dse_milp.traffic import RELEVANT, Mapping, Traffic, block, refetch, tile_bounds, trip_counts
from dse_milp.workload import Layer, Operand, Shape


@dataclass(frozen=True)
class Layouts:
    """The layouts of a layer's input tensors and of its output."""

    input: Layout
    output: Layout


def input_shape(layer: Layer) -> Shape:
    return Shape(layer.groups * layer.ng, layer.h, layer.w)


def output_shape(layer: Layer) -> Shape:
    return Shape(layer.groups * layer.mg, layer.r, layer.c)


def box_bursts(layout: Layout, shape: Shape, bits: int, burst_bytes: int, channels: list[Span],
               rows: list[Span], cols: list[Span]) -> int:  # fmt: skip
    """Bursts of the boxes (one per range of ``channels``, all with ``rows`` and ``cols``)."""
    element_runs, box = runs(layout, shape, channels, rows, cols)
    return distinct_bursts(element_runs, box, bits, burst_bytes)


def layer_bursts(layer: Layer, mapping: Mapping, layouts: Layouts, burst_bytes: int) -> Traffic:
    """Bursts (not bits) of each kind of transfer of ``layer`` under ``mapping``."""
    trips = trip_counts(layer, mapping.tiling)
    bits = layer.precision

    def passes(operand: Operand) -> int:
        return refetch(mapping.order[: mapping.levels.of(operand)], trips, RELEVANT[operand])

    def ranges(operand: Operand, d: str) -> list[Span]:
        """The ranges of loop ``d`` the blocks of ``operand`` cover: tiles, or the whole loop."""
        extent = layer.dims[d]
        return tile_bounds(extent, block(layer, mapping, operand)[d])

    # input: one box per (group, n block) for each (row block, column block)
    channel_boxes = [(g * layer.ng + a, g * layer.ng + b) for g in range(layer.groups)
                     for a, b in ranges(Operand.INPUT, "n")]  # fmt: skip
    rows = [input_spans(a, b, layer.sh, layer.kh, layer.ph, layer.h) for a, b in ranges(Operand.INPUT, "r")]
    cols = [input_spans(a, b, layer.sw, layer.kw, layer.pw, layer.w) for a, b in ranges(Operand.INPUT, "c")]
    shape = input_shape(layer)
    per_pass = sum(
        box_bursts(layouts.input, shape, bits.input, burst_bytes, channel_boxes, r, c)
        for r, c in itertools.product(rows, cols)
    )
    input_read = per_pass * layer.input_tensors * passes(Operand.INPUT)

    # output: one box per (group, m block) for each (row block, column block)
    out = output_shape(layer)
    out_boxes = [(g * layer.mg + a, g * layer.mg + b) for g in range(layer.groups)
                 for a, b in ranges(Operand.OUTPUT, "m")]  # fmt: skip
    pairs = list(itertools.product(ranges(Operand.OUTPUT, "r"), ranges(Operand.OUTPUT, "c")))

    def output_pass(width: int) -> int:
        return sum(box_bursts(layouts.output, out, width, burst_bytes, out_boxes, [r], [c]) for r, c in pairs)

    visits = passes(Operand.OUTPUT)
    psum = output_pass(bits.psum) * (visits - 1) if visits > 1 else 0

    weight_read = 0
    if layer.has_weights:
        size = 8 * burst_bytes
        per_group = sum(
            -(-((b - a) * (d - c) * layer.kh * layer.kw * bits.weight) // size)
            for (a, b), (c, d) in itertools.product(ranges(Operand.WEIGHT, "m"), ranges(Operand.WEIGHT, "n"))
        )
        weight_read = per_group * layer.groups * passes(Operand.WEIGHT)
    return Traffic(input_read, weight_read, output_pass(bits.output), psum, psum)


def group_bursts(segment: Segment, mapping: GroupMapping, layout: Layout, burst_bytes: int) -> dict[str, Traffic]:
    """Bursts of a fused group by layer (as ``GroupCost.by_layer``): each outside tensor's
    region, all channels, for every tile; the weights (resident: once; streamed: for every
    tile, one output channel at a time, each packed from a burst boundary); the output's
    region for every tile. Every tensor is in ``layout``."""
    last = segment.shape(segment.last.name)
    row_tiles = [spans(segment, span, 0) for span in tile_bounds(last.height, mapping.rows)]
    col_tiles = [spans(segment, span, 1) for span in tile_bounds(last.width, mapping.cols)]
    tiles = len(row_tiles) * len(col_tiles)
    size = 8 * burst_bytes

    def regions(tensor: str, bits: int) -> int:
        shape = segment.shape(tensor)
        return sum(
            box_bursts(layout, shape, bits, burst_bytes, [(0, shape.channels)], [r[tensor]], [c[tensor]])
            for r, c in itertools.product(row_tiles, col_tiles)
        )

    counts = {layer.name: Traffic() for layer in segment.layers}
    for tensor in segment.externals:
        reader = segment.first_reader(tensor).name
        counts[reader] += Traffic(input_read=regions(tensor, segment.input_bits(tensor)))
    for layer in segment.layers:
        if not layer.has_weights:
            continue
        if layer.name in mapping.resident:
            weights = -(-(layer.weight_elements * layer.precision.weight) // size)
        else:
            weights = tiles * layer.m * -(-(weight_slice(layer) * layer.precision.weight) // size)
        counts[layer.name] += Traffic(weight_read=weights)
    out = segment.last
    counts[out.name] += Traffic(output_write=regions(out.name, out.precision.output))
    return counts
