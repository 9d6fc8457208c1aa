"""The DRAM bursts one layer's mapping (or one fused group's) moves, for given tensor layouts.

The traffic model (``dse_milp.traffic``) reads every block of an operand once per
pass, and makes ``refetch`` passes; here each block transfer costs the bursts its
elements touch in the tensor's layout (``dse_milp.layouts``), so an operand moves
``passes x (bursts of every block of one pass)`` bursts (``dse_milp.passes``):

- input: each block is the channels of its n block (within its group, or of a block
  of whole groups when a tile spans several), and the
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

import numpy as np

from dse_milp.fusion import GroupMapping, Segment, spans, weight_slice
from dse_milp.halo import fresh
from dse_milp.layouts import Layout, Layouts, Span, input_spans
from dse_milp.passes import tiled_pass_bursts
from dse_milp.traffic import RELEVANT, Mapping, Traffic, block, refetch, spans_groups, tile_bounds, trip_counts
from dse_milp.workload import Layer, Operand, Shape


def input_shape(layer: Layer) -> Shape:
    return Shape(layer.groups * layer.ng, layer.h, layer.w)


def output_shape(layer: Layer) -> Shape:
    return Shape(layer.groups * layer.mg, layer.r, layer.c)


def layer_bursts(layer: Layer, mapping: Mapping, layouts: Layouts, burst_bytes: int) -> Traffic:
    """Bursts (not bits) of each kind of transfer of ``layer`` under ``mapping``."""
    write, psum = output_bursts(layer, mapping, layouts.output, burst_bytes)
    return Traffic(
        input_bursts(layer, mapping, layouts.input, burst_bytes), weight_bursts(layer, mapping, burst_bytes),
        write, psum, psum,
    )  # fmt: skip


def _passes(layer: Layer, mapping: Mapping, operand: Operand) -> int:
    trips = trip_counts(layer, mapping.tiling)
    return refetch(mapping.order[: mapping.levels.of(operand)], trips, RELEVANT[operand])


def _ranges(layer: Layer, mapping: Mapping, operand: Operand, d: str) -> list[Span]:
    """The ranges of loop ``d`` the blocks of ``operand`` cover: tiles, or the whole loop."""
    return tile_bounds(layer.dims[d], block(layer, mapping, operand)[d])


def _channel_boxes(layer: Layer, mapping: Mapping, operand: Operand, d: str, per_group: int) -> tuple[Span, ...]:
    """One box per (group, block of loop ``d``); per block of whole groups when a tile spans
    several (``Mapping.groups``)."""
    if mapping.groups > 1:
        if not spans_groups(layer, mapping):
            raise ValueError(f"a tile spans {mapping.groups} groups of {layer.name!r} but not whole groups")
        return tuple((g * per_group, min(g + mapping.groups, layer.groups) * per_group)
                     for g in range(0, layer.groups, mapping.groups))  # fmt: skip
    blocks = _ranges(layer, mapping, operand, d)
    return tuple((g * per_group + a, g * per_group + b) for g in range(layer.groups) for a, b in blocks)


def input_bursts(layer: Layer, mapping: Mapping, layout: Layout, burst_bytes: int) -> int:
    """Input bursts: every (group, n block) with every row and column block, halo included."""
    rows, cols = (
        tuple(spans for a, b in _ranges(layer, mapping, Operand.INPUT, d) if (spans := tuple(input_spans(a, b, *args))))
        for d, args in (("r", (layer.sh, layer.kh, layer.ph, layer.h)), ("c", (layer.sw, layer.kw, layer.pw, layer.w)))
    )  # fmt: skip
    boxes = _channel_boxes(layer, mapping, Operand.INPUT, "n", layer.ng)
    per_pass = tiled_pass_bursts(layout, input_shape(layer), layer.precision.input, burst_bytes, boxes, rows, cols)
    return per_pass * layer.input_tensors * _passes(layer, mapping, Operand.INPUT)


def output_bursts(layer: Layer, mapping: Mapping, layout: Layout, burst_bytes: int) -> tuple[int, int]:
    """(output writes, partial-sum reads, which as many partial-sum writes match) in bursts:
    every (group, m block) with every row and column block, once at output width and
    ``visits - 1`` times at partial-sum width."""
    boxes = _channel_boxes(layer, mapping, Operand.OUTPUT, "m", layer.mg)
    rows, cols = (tuple((span,) for span in _ranges(layer, mapping, Operand.OUTPUT, d)) for d in "rc")

    def one_pass(width: int) -> int:
        return tiled_pass_bursts(layout, output_shape(layer), width, burst_bytes, boxes, rows, cols)

    visits = _passes(layer, mapping, Operand.OUTPUT)
    return one_pass(layer.precision.output), (one_pass(layer.precision.psum) * (visits - 1) if visits > 1 else 0)


def weight_bursts(layer: Layer, mapping: Mapping, burst_bytes: int) -> int:
    """Weight bursts: each block (of one group, or of a block of whole groups) packed from a
    burst boundary, read once per pass."""
    if not layer.has_weights:
        return 0
    size = 8 * burst_bytes
    kernel = layer.kh * layer.kw * layer.precision.weight
    if mapping.groups > 1:  # whole groups: one block per block of groups
        blocks = _tile_sizes(layer.groups, mapping.groups)
        per_pass = sum(count * -(-(g * layer.mg * layer.ng * kernel) // size) for count, g in blocks)
        return per_pass * _passes(layer, mapping, Operand.WEIGHT)
    shape = block(layer, mapping, Operand.WEIGHT)
    per_group = sum(  # blocks come in at most four sizes: whole or edge along m and along n
        count_m * count_n * -(-(m * n * kernel) // size)
        for count_m, m in _tile_sizes(layer.mg, shape["m"])
        for count_n, n in _tile_sizes(layer.ng, shape["n"])
    )
    return per_group * layer.groups * _passes(layer, mapping, Operand.WEIGHT)


def _tile_sizes(extent: int, tile: int) -> list[tuple[int, int]]:
    """(how many, size) of the tiles of a loop: the whole tiles, and the edge tile if any."""
    whole, edge = divmod(extent, tile)
    return [(whole, tile)] + ([(1, edge)] if edge else [])


def piece_bursts(layer: Layer, piece: int, burst_bytes: int) -> int:
    """Bursts one pass over a streamed layer's weights moves, read in pieces of ``piece``
    output channels (the last piece holds the rest), each packed from a burst boundary."""
    whole, rest = divmod(layer.m, piece)
    bits = weight_slice(layer) * layer.precision.weight
    size = 8 * burst_bytes
    return whole * -(-(piece * bits) // size) + -(-(rest * bits) // size)


def group_bursts(segment: Segment, mapping: GroupMapping, layouts: Layouts, burst_bytes: int,
                 kept: frozenset[str] = frozenset()) -> dict[str, Traffic]:  # fmt: skip
    """Bursts of a fused group by layer (as ``GroupCost.by_layer``): each outside tensor's
    region, all channels, for every tile (only its fresh part along an axis whose halo is
    cached); the weights (resident: once; streamed: for every tile, a piece of output channels
    at a time, each packed from a burst boundary: ``piece_bursts``); the output's region for
    every tile. The tensors
    it reads are in ``layouts.input``, its output in ``layouts.output``; the tensors in ``kept``
    stay on chip (none of their bursts move)."""
    last = segment.shape(segment.last.name)
    row_tiles = [spans(segment, span, 0) for span in tile_bounds(last.height, mapping.rows)]
    col_tiles = [spans(segment, span, 1) for span in tile_bounds(last.width, mapping.cols)]
    tiles = len(row_tiles) * len(col_tiles)
    size = 8 * burst_bytes

    def moved(tensor: str, axis: int) -> tuple[tuple[Span, ...], ...]:
        """Each tile's span of ``tensor`` along ``axis`` that crosses DRAM: the fresh part
        when the halo is cached along it (``dse_milp.halo``), none if empty."""
        ends = np.array([t[tensor] for t in (row_tiles if axis == 0 else col_tiles)], dtype=np.int64)
        lo, hi = ends[:, 0], ends[:, 1]
        start = fresh(lo, hi) if mapping.halo.caches(axis) else lo
        return tuple(((a, b),) if b > a else () for a, b in zip(start.tolist(), hi.tolist(), strict=True))

    def regions(tensor: str, bits: int, layout: Layout) -> int:
        shape = segment.shape(tensor)
        channels = ((0, shape.channels),)
        return tiled_pass_bursts(layout, shape, bits, burst_bytes, channels, moved(tensor, 0), moved(tensor, 1))

    counts = {layer.name: Traffic() for layer in segment.layers}
    for tensor in (x for x in segment.externals if x not in kept):
        reader = segment.first_reader(tensor).name
        counts[reader] += Traffic(input_read=regions(tensor, segment.input_bits(tensor), layouts.input))
    for layer in segment.layers:
        if not layer.has_weights:
            continue
        if layer.name in mapping.resident:
            weights = -(-(layer.weight_elements * layer.precision.weight) // size)
        else:
            weights = tiles * piece_bursts(layer, mapping.piece(layer.name), burst_bytes)
        counts[layer.name] += Traffic(weight_read=weights)
    out = segment.last
    if out.name not in kept:
        counts[out.name] += Traffic(output_write=regions(out.name, out.precision.output, layouts.output))
    return counts
