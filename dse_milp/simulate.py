"""A direct, tile-by-tile simulation of one layer's loop nest.

It shares nothing with the closed forms in ``dse_milp.traffic`` beyond the
definitions of the model: it walks every group (or block of groups) and every
tile iteration in the given order, keeps one resident block per operand (the tiles inside its level),
collects the input rows each block needs as an explicit set, and counts every
transfer. Tests compare it with the closed forms; it is far too slow for real
layers.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from dse_milp.fusion import GroupCost, GroupMapping, Segment
from dse_milp.layouts import Layout
from dse_milp.traffic import Mapping, Traffic, tile_bounds
from dse_milp.workload import Layer, LayerKind, Operand, Shape


def _inputs(out: range, stride: int, kernel: int, pad: int, size: int) -> list[int]:
    """The input rows (or columns) the output rows ``out`` read, padding left out."""
    return sorted({o * stride - pad + k for o in out for k in range(kernel) if 0 <= o * stride - pad + k < size})


def _input_span(start: int, stop: int, stride: int, kernel: int, pad: int, size: int) -> int:
    return len(_inputs(range(start, stop), stride, kernel, pad, size))


class Walk(NamedTuple):
    traffic: Traffic
    footprint: dict[Operand, int]
    """The largest block of each operand (bits), doubled when double-buffered."""
    exposed: int
    """Bits read before the first step computes, plus the largest output block written."""
    bursts: Traffic | None = None
    """With layouts: the bursts of each kind of transfer (counts, not bits)."""


def _address(layout: Layout, shape: Shape, c: int, h: int, w: int) -> int:
    """The element index of (c, h, w) in ``layout`` (``dse_milp.layouts`` says what they are)."""
    if layout.order == "NHWC":
        return (h * shape.width + w) * shape.channels + c
    if not layout.block:
        return (c * shape.height + h) * shape.width + w
    return ((c // layout.block * shape.height + h) * shape.width + w) * layout.block + c % layout.block


def _bursts(layout: Layout, shape: Shape, bits: int, burst_bytes: int, elements: Iterable[tuple[int, int, int]]) -> int:
    """Distinct bursts the elements touch (an element may straddle two)."""
    size = 8 * burst_bytes
    touched = set()
    for c, h, w in elements:
        address = _address(layout, shape, c, h, w) * bits
        touched.update(range(address // size, (address + bits - 1) // size + 1))
    return len(touched)


def simulate(
    layer: Layer,
    mapping: Mapping,
    double_buffering: bool = False,
    accumulate_in_buffer: bool = False,
    layouts: tuple[Layout, Layout] | None = None,
    burst_bytes: int = 1,
) -> Walk:
    """Walk the nest; return its traffic, the largest block of each operand and the exposed
    bits (all in bits), and with ``layouts`` (input, output), the bursts of ``burst_bytes``
    every transfer touches (weights packed block by block).

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
    bursts = Counter[str]()
    shapes = (Shape(layer.groups * layer.ng, layer.h, layer.w), Shape(layer.groups * layer.mg, layer.r, layer.c))
    output_box: tuple[range, range, range, range] | None = None

    def output_bursts(width: int) -> int:
        assert layouts is not None and output_box is not None
        block, m, r, c = output_box
        box = ((g * layer.mg + i, j, k) for g in block for i in m for j in r for k in c)
        return _bursts(layouts[1], shapes[1], width, burst_bytes, box)

    def leave_output() -> None:
        assert output_box is not None
        size = sum(
            len(range(*tiles["m"][m])) * len(range(*tiles["r"][r])) * len(range(*tiles["c"][c]))
            for (_, m, r, c) in output_block
        ) * len(output_box[0])
        nonlocal last_store
        final = all(done[key] == reduction_tiles for key in output_block)
        if final:
            reads["output_write"] += size * bits.output
            last_store = max(last_store, size * bits.output)
        else:
            reads["psum_write"] += size * bits.psum
        if layouts is not None:
            bursts["output_write" if final else "psum_write"] += output_bursts(bits.output if final else bits.psum)

    for g in range(0, layer.groups, mapping.groups):
        group_block = range(g, min(g + mapping.groups, layer.groups))
        for index in itertools.product(*(range(len(tiles[d])) for d in mapping.order)):
            at = dict(zip(mapping.order, index, strict=True))

            key = name(Operand.INPUT, g, at)
            if resident[Operand.INPUT] != key:
                resident[Operand.INPUT] = key
                r, c = span(Operand.INPUT, at, "r"), span(Operand.INPUT, at, "c")
                rows = _input_span(r.start, r.stop, layer.sh, layer.kh, layer.ph, layer.h)
                cols = _input_span(c.start, c.stop, layer.sw, layer.kw, layer.pw, layer.w)
                size = len(group_block) * len(span(Operand.INPUT, at, "n")) * rows * cols * bits.input
                size *= layer.input_tensors
                reads["input_read"] += size
                if layouts is not None:
                    needed_rows = _inputs(r, layer.sh, layer.kh, layer.ph, layer.h)
                    needed_cols = _inputs(c, layer.sw, layer.kw, layer.pw, layer.w)
                    box = ((k * layer.ng + n, h, w) for k in group_block for n in span(Operand.INPUT, at, "n")
                           for h in needed_rows for w in needed_cols)  # fmt: skip
                    bursts["input_read"] += layer.input_tensors * _bursts(
                        layouts[0], shapes[0], bits.input, burst_bytes, box
                    )
                largest[Operand.INPUT] = max(largest[Operand.INPUT], size)

            key = name(Operand.WEIGHT, g, at)
            if layer.has_weights and resident[Operand.WEIGHT] != key:
                resident[Operand.WEIGHT] = key
                size = len(group_block) * len(span(Operand.WEIGHT, at, "m")) * len(span(Operand.WEIGHT, at, "n"))
                reads["weight_read"] += size * layer.kh * layer.kw * bits.weight
                bursts["weight_read"] += -(-(size * layer.kh * layer.kw * bits.weight) // (8 * burst_bytes))
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
                size = len(group_block) * len(m) * len(r) * len(c)
                output_box = (group_block, m, r, c)
                if any(done[key] > 0 for key in output_block):
                    reads["psum_read"] += size * bits.psum
                    if layouts is not None:
                        bursts["psum_read"] += output_bursts(bits.psum)
                largest[Operand.OUTPUT] = max(largest[Operand.OUTPUT], size * out_width)
            done[g, at["m"], at["r"], at["c"]] += 1
            if first_load is None:
                first_load = reads["input_read"] + reads["weight_read"]
    leave_output()

    traffic = Traffic(**reads)
    held = {op: copies * size for op, size in largest.items()}
    return Walk(traffic, held, (first_load or 0) + last_store, Traffic(**bursts) if layouts is not None else None)


def simulate_group(segment: Segment, mapping: GroupMapping, double_buffering: bool = False,
                   liveness: bool | None = None, kept: frozenset[str] = frozenset()) -> GroupCost:  # fmt: skip
    """Walk a fused group tile by tile, finding every region from explicit sets of elements.

    For each tile of the last layer's output, the (row, column) elements each
    layer must produce are collected backwards by enumerating, for every needed
    output element, the input elements its kernel window touches. Each tensor
    then holds the smallest rectangle covering what it must provide, and computes (or
    reads) the part of it no halo cache holds (``_walk``). With ``liveness`` (see
    ``Accelerator.liveness``), the slots are allocated and freed as the layers run
    (``_allocate``); the caches are held throughout, once. A tensor in ``kept`` is on chip
    already (an outside one) or stays there (the output): no transfer of it is counted.
    """
    copies = 2 if double_buffering else 1
    reads: dict[str, Counter[str]] = {layer.name: Counter() for layer in segment.layers}
    largest = Counter[str]()
    computed = Counter[str]()
    loaded: set[str] = set()
    first_inputs: int | None = None  # bits of the external regions of the first tile
    walk, cached = _walk(segment, mapping)
    for held, new in walk:
        read_now = 0
        for tensor, (rows, cols) in held.items():
            largest[tensor] = max(largest[tensor], segment.shape(tensor).channels * len(rows) * len(cols))
            if tensor in segment.externals and tensor not in kept:
                reader = next(layer for layer in segment.layers if tensor in layer.inputs)
                size = segment.shape(tensor).channels * len(new[tensor]) * segment.input_bits(tensor)
                reads[reader.name]["input_read"] += size
                read_now += size
        if first_inputs is None:
            first_inputs = read_now
        for layer in segment.layers:
            computed[layer.name] += layer.macs_per_output * segment.shape(layer.name).channels * len(new[layer.name])
            if layer.has_weights and (layer.name not in mapping.resident or layer.name not in loaded):
                reads[layer.name]["weight_read"] += layer.weight_elements * layer.precision.weight
                loaded.add(layer.name)
    if segment.last.name not in kept:
        reads[segment.last.name]["output_write"] = segment.last.output_elements * segment.last.precision.output

    held_weights = sum(_held_weights(layer, mapping) for layer in segment.layers if layer.has_weights)
    bits = {x: segment.input_bits(x) for x in segment.externals}
    bits |= {layer.name: layer.precision.output for layer in segment.layers}
    slot = {x: largest[x] * bits[x] for x in bits}
    if liveness is None:
        held_inputs = copies * sum(slot[x] for x in segment.externals)
        held_outputs = copies * sum(slot[layer.name] for layer in segment.layers)
    else:
        held_inputs, held_outputs = _allocate(segment, slot, copies, shared=liveness)
    caches = {x: segment.shape(x).channels * cached[x] * bits[x] for x in bits}
    return GroupCost(
        by_layer={name: Traffic(**counts) for name, counts in reads.items()},
        footprint={
            Operand.INPUT: held_inputs + sum(caches[x] for x in segment.externals),
            Operand.WEIGHT: copies * held_weights,
            Operand.OUTPUT: held_outputs + sum(caches[layer.name] for layer in segment.layers),
        },
        tiles=len(walk),
        extra_macs={layer.name: computed[layer.name] - layer.macs for layer in segment.layers},
        exposed=(first_inputs or 0)
        + held_weights
        + largest[segment.last.name] * segment.last.precision.output * (segment.last.name not in kept),
    )


Region = tuple[range, range]
Positions = set[tuple[int, int]]
Tile = tuple[dict[str, Region], dict[str, Positions]]


def _walk(
    segment: Segment, mapping: GroupMapping
) -> tuple[list[tuple[dict[str, Region], dict[str, Positions]]], Counter[str]]:
    """Every tile of a group in row-major order: the region each tensor holds and the (row,
    column) positions of it the tile must produce, those no halo cache holds; and the most
    positions each tensor's caches hold at once.

    With rows cached (``mapping.halo``), after each band of tiles a line buffer keeps, of what
    the band held, the rows the next band's region shares, allocated over every column any
    tile uses. With columns cached, after each tile a cache keeps the columns the next tile
    of the band shares, over the tile's rows. Both are found by intersecting sets."""
    last = segment.shape(segment.last.name)
    grid = [
        [_regions(segment, range(r0, r1), range(c0, c1)) for c0, c1 in tile_bounds(last.width, mapping.cols)]
        for r0, r1 in tile_bounds(last.height, mapping.rows)
    ]
    tensors = list(grid[0][0])
    used = {x: {c for band in grid for held in band for c in held[x][1]} for x in tensors}
    width = {x: max(used[x]) - min(used[x]) + 1 for x in tensors}
    line: dict[str, Positions] = {x: set() for x in tensors}
    line_peak, column_peak = Counter[str](), Counter[str]()
    walk = []
    for i, band in enumerate(grid):
        column: dict[str, Positions] = {x: set() for x in tensors}
        seen: dict[str, Positions] = {x: set() for x in tensors}
        for j, held in enumerate(band):
            new = {}
            for x, (rows, cols) in held.items():
                region = {(r, c) for r in rows for c in cols}
                new[x] = region - line[x] - column[x]
                seen[x] |= region
                if mapping.halo.caches(1) and j + 1 < len(band):
                    shared = set(cols) & set(band[j + 1][x][1])
                    column[x] = {(r, c) for r, c in region if c in shared}
                    column_peak[x] = max(column_peak[x], len(rows) * len(shared))
            walk.append((held, new))
        for x in tensors:
            line[x] = set()
            if mapping.halo.caches(0) and i + 1 < len(grid):
                shared = set(band[0][x][0]) & set(grid[i + 1][0][x][0])
                line[x] = {(r, c) for r, c in seen[x] if r in shared}
                line_peak[x] = max(line_peak[x], len(shared) * width[x])
    return walk, line_peak + column_peak


def _pieces(layer: Layer, mapping: GroupMapping) -> list[range]:
    """The output channels of each piece a streamed layer's weights are read in."""
    step = dict(mapping.pieces).get(layer.name, 1)
    return [range(start, min(start + step, layer.m)) for start in range(0, layer.m, step)]


def _held_weights(layer: Layer, mapping: GroupMapping) -> int:
    """Bits of a layer's weights a group holds: all of them if resident, else its largest piece."""
    if layer.name in mapping.resident:
        return layer.weight_elements * layer.precision.weight
    per_channel = layer.weight_elements // layer.m
    return max(len(piece) for piece in _pieces(layer, mapping)) * per_channel * layer.precision.weight


def _allocate(segment: Segment, slot: dict[str, int], copies: int, shared: bool) -> tuple[int, int]:
    """Run one tile's layers in order, allocating and freeing slots: the outside tensors when
    the tile starts, each layer's region when it runs; a slot is freed once no later layer of
    the group reads it (the last layer's once it is written out). Double buffering doubles
    the slots that cross DRAM. Returns the input and output bits held at the peak: of each
    kind on its own, or (``shared``) of both together, at the first step their sum peaks."""
    name = {layer.name for layer in segment.layers}
    doubled = {x: copies if x not in name or x == segment.last.name else 1 for x in slot}
    live = {x for x in slot if x not in name}  # the outside tensors, loaded as the tile starts
    peaks = {"input": 0, "output": 0}
    best_sum = -1
    for i, layer in enumerate(segment.layers):
        live.add(layer.name)
        inputs = sum(slot[x] * doubled[x] for x in live if x not in name)
        outputs = sum(slot[x] * doubled[x] for x in live if x in name)
        if shared and inputs + outputs > best_sum:
            best_sum, peaks = inputs + outputs, {"input": inputs, "output": outputs}
        elif not shared:
            peaks = {"input": max(peaks["input"], inputs), "output": max(peaks["output"], outputs)}
        later = segment.layers[i + 1 :]
        live = {x for x in live if any(x in reader.inputs for reader in later)}
    return peaks["input"], peaks["output"]


def _regions(segment: Segment, rows: range, cols: range) -> dict[str, tuple[range, range]]:
    """The rows and columns every tensor of a group holds for the tile ``rows x cols`` of its
    output: the smallest rectangle covering the elements its readers need, found backwards."""
    needed = {segment.last.name: {(r, c) for r in rows for c in cols}}
    held: dict[str, tuple[range, range]] = {}
    for layer in reversed(segment.layers):
        rows = range(min(r for r, _ in needed[layer.name]), max(r for r, _ in needed[layer.name]) + 1)
        cols = range(min(c for _, c in needed[layer.name]), max(c for _, c in needed[layer.name]) + 1)
        held[layer.name] = (rows, cols)
        for producer in layer.inputs:
            needed.setdefault(producer, set()).update(_window(layer, segment.shape(producer), rows, cols))
    for producer in segment.externals:
        points = needed[producer]
        held[producer] = (
            range(min(r for r, _ in points), max(r for r, _ in points) + 1),
            range(min(c for _, c in points), max(c for _, c in points) + 1),
        )
    return held


def simulate_group_bursts(
    segment: Segment,
    mapping: GroupMapping,
    layouts: tuple[Layout, Layout],
    burst_bytes: int,
    kept: frozenset[str] = frozenset(),
) -> dict[str, Traffic]:
    """Walk a fused group tile by tile and count, by layer, the distinct bursts of every transfer
    from its elements: each outside tensor's region (all channels) for every tile, less what a
    halo cache holds (``_walk``), charged to its first reader; resident weights once and
    streamed weights for every tile, a piece of output channels at a time (``_pieces``), each
    packed from a burst boundary; the output's region for every tile. The tensors it reads
    are in ``layouts[0]``, its output in ``layouts[1]``; those in ``kept`` move nothing."""
    counts: dict[str, Counter[str]] = {layer.name: Counter() for layer in segment.layers}
    size = 8 * burst_bytes
    loaded: set[str] = set()
    for _, new in _walk(segment, mapping)[0]:
        for tensor in (x for x in (*segment.externals, segment.last.name) if x not in kept):
            shape = segment.shape(tensor)
            box = ((c, h, w) for c in range(shape.channels) for h, w in new[tensor])
            if tensor == segment.last.name:
                bits = segment.last.precision.output
                counts[tensor]["output_write"] += _bursts(layouts[1], shape, bits, burst_bytes, box)
            else:
                reader = segment.first_reader(tensor)
                counts[reader.name]["input_read"] += _bursts(
                    layouts[0], shape, segment.input_bits(tensor), burst_bytes, box
                )
        for layer in segment.layers:
            if not layer.has_weights or (layer.name in mapping.resident and layer.name in loaded):
                continue
            loaded.add(layer.name)
            if layer.name in mapping.resident:
                counts[layer.name]["weight_read"] += -(-(layer.weight_elements * layer.precision.weight) // size)
                continue
            per_channel = (layer.weight_elements // layer.m) * layer.precision.weight
            for piece in _pieces(layer, mapping):  # each packed from a burst boundary
                addresses = range(0, len(piece) * per_channel, layer.precision.weight)
                touched = {b for a in addresses for b in range(a // size, (a + layer.precision.weight - 1) // size + 1)}
                counts[layer.name]["weight_read"] += len(touched)
    return {name: Traffic(**c) for name, c in counts.items()}


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
