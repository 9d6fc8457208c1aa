"""The DRAM bursts one layer's mapping (or one fused group's) moves, for given tensor layouts.

The traffic model (``dse_milp.traffic``) reads every block of an operand once per
pass, and makes ``refetch`` passes; here each block transfer costs the bursts its
elements touch in the tensor's layout (``dse_milp.layouts``), so an operand moves
``passes x (bursts of every block of one pass)`` bursts (``dse_milp.passes``):

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

from dataclasses import dataclass

from dse_milp.fusion import GroupMapping, Segment, spans, weight_slice
from dse_milp.layouts import Layout, Span, input_spans
from dse_milp.passes import tiled_pass_bursts
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


def layer_bursts(layer: Layer, mapping: Mapping, layouts: Layouts, burst_bytes: int) -> Traffic:
    """Bursts (not bits) of each kind of transfer of ``layer`` under ``mapping``."""
    trips = trip_counts(layer, mapping.tiling)
    bits = layer.precision

    def passes(operand: Operand) -> int:
        return refetch(mapping.order[: mapping.levels.of(operand)], trips, RELEVANT[operand])

    def ranges(operand: Operand, d: str) -> list[Span]:
        """The ranges of loop ``d`` the blocks of ``operand`` cover: tiles, or the whole loop."""
        return tile_bounds(layer.dims[d], block(layer, mapping, operand)[d])

    def channel_boxes(per_group: int, operand: Operand, d: str) -> tuple[Span, ...]:
        """One box per (group, block of loop ``d``)."""
        return tuple((g * per_group + a, g * per_group + b) for g in range(layer.groups) for a, b in ranges(operand, d))

    # input: every (group, n block) with every row block and column block, halo included
    rows = tuple(tuple(input_spans(a, b, layer.sh, layer.kh, layer.ph, layer.h)) for a, b in ranges(Operand.INPUT, "r"))
    cols = tuple(tuple(input_spans(a, b, layer.sw, layer.kw, layer.pw, layer.w)) for a, b in ranges(Operand.INPUT, "c"))
    per_pass = tiled_pass_bursts(
        layouts.input, input_shape(layer), bits.input, burst_bytes, channel_boxes(layer.ng, Operand.INPUT, "n"),
        tuple(r for r in rows if r), tuple(c for c in cols if c),
    )  # fmt: skip
    input_read = per_pass * layer.input_tensors * passes(Operand.INPUT)

    # output: every (group, m block) with every row block and column block
    out_boxes = channel_boxes(layer.mg, Operand.OUTPUT, "m")
    out_rows = tuple((span,) for span in ranges(Operand.OUTPUT, "r"))
    out_cols = tuple((span,) for span in ranges(Operand.OUTPUT, "c"))

    def output_pass(width: int) -> int:
        return tiled_pass_bursts(layouts.output, output_shape(layer), width, burst_bytes, out_boxes, out_rows, out_cols)

    visits = passes(Operand.OUTPUT)
    psum = output_pass(bits.psum) * (visits - 1) if visits > 1 else 0

    weight_read = 0
    if layer.has_weights:
        size = 8 * burst_bytes
        kernel = layer.kh * layer.kw * bits.weight
        shape = block(layer, mapping, Operand.WEIGHT)
        per_group = sum(  # blocks come in at most four sizes: whole or edge along m and along n
            count_m * count_n * -(-(m * n * kernel) // size)
            for count_m, m in _tile_sizes(layer.mg, shape["m"])
            for count_n, n in _tile_sizes(layer.ng, shape["n"])
        )
        weight_read = per_group * layer.groups * passes(Operand.WEIGHT)
    return Traffic(input_read, weight_read, output_pass(bits.output), psum, psum)


def _tile_sizes(extent: int, tile: int) -> list[tuple[int, int]]:
    """(how many, size) of the tiles of a loop: the whole tiles, and the edge tile if any."""
    whole, edge = divmod(extent, tile)
    return [(whole, tile)] + ([(1, edge)] if edge else [])


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
        rows = tuple((r[tensor],) for r in row_tiles)
        cols = tuple((c[tensor],) for c in col_tiles)
        return tiled_pass_bursts(layout, shape, bits, burst_bytes, ((0, shape.channels),), rows, cols)

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
