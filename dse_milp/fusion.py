"""Fused groups: consecutive layers whose intermediate feature maps never leave the chip.

A group runs tile by tile over the output of its last layer (Alwani et al.,
MICRO 2016). For each output tile the region every tensor of the group must
hold is found backwards through the group, one dimension at a time: a layer
whose output rows ``[a, b)`` are needed needs input rows
``[a*S - P, (b-1)*S - P + K)`` (clipped to the tensor), and a tensor read by
several layers of the group holds the smallest range covering what each needs.
Every layer computes its whole region for every tile (the overlapping halo is
recomputed, and the extra MACs are reported), unless the group caches the
halo along rows, columns or both (``dse_milp.halo``). The model is written
out in docs/traffic_model.md, section 8; this module is its scalar reference.

A group may span several branches of the DAG (a residual block with its
add), but every layer except the last must be read only inside the group, so
that the group has one output. Tensors the group reads from outside (its
inputs, and a skip connection from before it) are read from DRAM; the last
layer's output is written to DRAM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import bank_counts, fits_buffers, non_dominated, rows_of, sized_by, split_front, traffic_front
from dse_milp.cost import Objective, cost_of, objective_rank, operand_bytes_per_mac, ranked_by_objectives
from dse_milp.halo import Halo, fresh, overlap
from dse_milp.layouts import Layouts
from dse_milp.residency import Residency
from dse_milp.traffic import Traffic, tile_bounds
from dse_milp.workload import NETWORK_INPUT, Layer, LayerKind, Network, Operand, Shape

Span = tuple[int, int]
"""A half-open range of rows (or columns)."""


@dataclass(frozen=True)
class Segment:
    """Layers ``network.layers[start:stop]`` run as one fused group (at least two layers)."""

    network: Network
    start: int
    stop: int

    @classmethod
    def of(cls, network: Network, first: str, last: str) -> Segment:
        """The segment from layer ``first`` to layer ``last``, both included."""
        position = {layer.name: i for i, layer in enumerate(network.layers)}
        return cls(network, position[first], position[last] + 1)

    @cached_property
    def layers(self) -> tuple[Layer, ...]:
        return self.network.layers[self.start : self.stop]

    @property
    def last(self) -> Layer:
        return self.layers[-1]

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(layer.name for layer in self.layers)

    @cached_property
    def externals(self) -> tuple[str, ...]:
        """Tensors read from DRAM as inputs: produced outside the group, in first-read order."""
        seen: dict[str, None] = {}
        for layer in self.layers:
            for name in layer.inputs:
                if name not in self.names:
                    seen.setdefault(name)
        return tuple(seen)

    def shape(self, tensor: str) -> Shape:
        net = self.network
        return net.input_shape if tensor == NETWORK_INPUT else net.output_shapes[tensor]

    def first_reader(self, tensor: str) -> Layer:
        """The first layer of the group that reads an external tensor: it is charged the reads."""
        return next(layer for layer in self.layers if tensor in layer.inputs)

    def input_bits(self, tensor: str) -> int:
        """Bits per element of an external tensor: the input precision of its first reader."""
        return self.first_reader(tensor).precision.input


def fusible(network: Network, start: int, stop: int) -> bool:
    """Whether layers ``start..stop-1`` can form a fused group.

    At least two layers; none takes another layer's output as its weights from
    inside the group; every layer but the last is read only by layers in the
    group.
    """
    if stop - start < 2:
        return False
    layers = network.layers[start:stop]
    names = {layer.name for layer in layers}
    for layer in layers:
        if layer.weight_from in names:
            return False
    for layer in layers[:-1]:
        readers = network.consumers(layer.name)
        if not readers or any(reader.name not in names for reader in readers):
            return False
    return True


def _needs(layer: Layer, producer: Shape, out: Span, axis: int) -> Span:
    """The range of the input tensor (shape ``producer``) that output range ``out`` needs.

    ``axis`` 0 is rows, 1 is columns.
    """
    a, b = out
    size = producer.height if axis == 0 else producer.width
    if layer.kind is LayerKind.MATMUL:
        # token-wise: the same rows and columns; flattened: all of the input
        return out if layer.n == producer.channels else (0, size)
    if layer.kind is LayerKind.ADD:
        return out
    kernel, stride, pad = (layer.kh, layer.sh, layer.ph) if axis == 0 else (layer.kw, layer.sw, layer.pw)
    return max(0, a * stride - pad), min(size, (b - 1) * stride - pad + kernel)


def spans(segment: Segment, out: Span, axis: int) -> dict[str, Span]:
    """The range (along ``axis``) of every tensor of the group for one tile of the last output."""
    need: dict[str, Span] = {segment.last.name: out}
    for layer in reversed(segment.layers):
        for producer in layer.inputs:
            lo, hi = _needs(layer, segment.shape(producer), need[layer.name], axis)
            if producer in need:
                lo, hi = min(lo, need[producer][0]), max(hi, need[producer][1])
            need[producer] = (lo, hi)
    return need


@dataclass(frozen=True)
class GroupMapping:
    """How a fused group runs: its tile of the last layer's output, which layers' weights stay
    on chip for the whole group (the others are read again for every tile, a piece of output
    channels at a time), and how it handles the halo between tiles."""

    rows: int
    cols: int
    resident: frozenset[str]
    halo: Halo = Halo.RECOMPUTE
    pieces: tuple[tuple[str, int], ...] = ()
    """Streamed layers read in pieces of more than one output channel: (layer, channels per
    piece), in the group's order; every other streamed layer reads one channel at a time.
    Only DRAM bursts can make a larger piece worth its footprint (``dse_milp.pieces``)."""

    def piece(self, layer: str) -> int:
        """Output channels per piece of a streamed layer's weights."""
        return dict(self.pieces).get(layer, 1)


@dataclass(frozen=True)
class GroupCost:
    by_layer: dict[str, Traffic]
    """Bits by layer: each external tensor charged to its first reader (halo included), each
    layer's weights to it, the group's output to the last layer."""
    footprint: dict[Operand, int]
    """Bits of buffer: external input tiles (input); weights (weight); every layer's region (output)."""
    tiles: int
    extra_macs: dict[str, int]
    """MACs each layer spends recomputing the overlapping halo (less what it skips: rows and
    columns no reader needs)."""
    exposed: int
    """Bits a double-buffered run cannot overlap with compute: what the first tile holds when it
    starts (its external input regions, the resident weights, one piece of each streamed
    layer's weights) and one region of the group's output (the last store)."""

    @property
    def traffic(self) -> Traffic:
        return sum(self.by_layer.values(), Traffic())


def weight_slice(layer: Layer) -> int:
    """Elements of one output channel's weights: what a streamed (not resident) layer holds."""
    return layer.ng * layer.kh * layer.kw if layer.has_weights else 0


def live_steps(segment: Segment) -> dict[str, tuple[int, int]]:
    """The steps (positions of the group's layers, run in order) over which each tensor's slot
    is live under liveness: an outside tensor from the tile's start to its last reader, a
    layer's region from that layer to its last reader in the group (the last layer's: its
    own step, after which it is written out)."""
    last_read: dict[str, int] = {}
    for i, layer in enumerate(segment.layers):
        for tensor in layer.inputs:
            last_read[tensor] = i
    spans = {tensor: (0, last_read[tensor]) for tensor in segment.externals}
    for i, layer in enumerate(segment.layers):
        spans[layer.name] = (i, last_read.get(layer.name, i))
    return spans


def slot_footprint(
    segment: Segment, slots: np.ndarray, copies: int, liveness: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    """The input and output footprints (bits) of rows of slot sizes (columns: the outside
    tensors, then the layers, in ``segment`` order). Without ``liveness`` (None) every slot is
    held for the whole tile, ``copies`` times. With it, a slot is held over its
    ``live_steps``, and only what crosses DRAM (outside tensors, the last layer's region) is
    doubled; the footprint is the peak over the steps, of each kind on its own, or of both
    together when they share a buffer (``liveness`` True: the two are then read at the step
    where their sum peaks, the first such)."""
    slots = np.asarray(slots, dtype=np.int64)
    outside = len(segment.externals)
    if liveness is None:
        return copies * slots[:, :outside].sum(axis=1), copies * slots[:, outside:].sum(axis=1)
    steps = len(segment.layers)
    spans = live_steps(segment)
    tensors = (*segment.externals, *(layer.name for layer in segment.layers))
    live = np.array([[spans[x][0] <= i <= spans[x][1] for i in range(steps)] for x in tensors], dtype=np.int64)
    crossing = np.array([x in segment.externals or x == segment.last.name for x in tensors])
    held = slots * np.where(crossing, copies, 1)
    inputs, outputs = held[:, :outside] @ live[:outside], held[:, outside:] @ live[outside:]
    if not liveness:
        return inputs.max(axis=1), outputs.max(axis=1)
    peak = np.argmax(inputs + outputs, axis=1)
    rows = np.arange(len(slots))
    return inputs[rows, peak], outputs[rows, peak]


def group_cost(segment: Segment, mapping: GroupMapping, double_buffering: bool,
               liveness: bool | None = None, kept: frozenset[str] = frozenset()) -> GroupCost:  # fmt: skip
    """The exact traffic and footprint of ``segment`` run as ``mapping`` (closed form per tile);
    ``liveness`` as ``Accelerator.liveness`` (``slot_footprint``). A cached halo
    (``mapping.halo``) makes each tile produce only its fresh span along the cached axes,
    and its caches count once, on top of the slots. The outside tensors and the output in
    ``kept`` stay on chip between units: no reads, no write, nothing exposed."""
    last = segment.shape(segment.last.name)
    row_tiles = [spans(segment, span, 0) for span in tile_bounds(last.height, mapping.rows)]
    col_tiles = [spans(segment, span, 1) for span in tile_bounds(last.width, mapping.cols)]
    tiles = len(row_tiles) * len(col_tiles)

    def along(tensor: str, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """The ends of ``tensor``'s span in each tile along ``axis``."""
        ends = np.array([t[tensor] for t in (row_tiles if axis == 0 else col_tiles)], dtype=np.int64)
        return ends[:, 0], ends[:, 1]

    def produced(tensor: str, axis: int) -> int:
        """Rows (or columns) of ``tensor`` produced, summed over the tiles along ``axis``."""
        lo, hi = along(tensor, axis)
        return int((hi - (fresh(lo, hi) if mapping.halo.caches(axis) else lo)).sum())

    def total(tensor: str) -> int:
        """Elements of ``tensor`` computed (or read), summed over all tiles."""
        return segment.shape(tensor).channels * produced(tensor, 0) * produced(tensor, 1)

    def largest(tensor: str) -> int:
        """Elements of ``tensor``'s largest region over all tiles."""
        rows = max(hi - lo for lo, hi in (t[tensor] for t in row_tiles))
        cols = max(hi - lo for lo, hi in (t[tensor] for t in col_tiles))
        return segment.shape(tensor).channels * rows * cols

    def first(tensor: str) -> int:
        """Elements of ``tensor``'s region in the first tile."""
        (r0, r1), (c0, c1) = row_tiles[0][tensor], col_tiles[0][tensor]
        return segment.shape(tensor).channels * (r1 - r0) * (c1 - c0)

    def cache(tensor: str) -> int:
        """Elements of ``tensor`` its halo caches hold: the line buffer (the rows shared with
        the next band, every column the tensor uses) and the column cache (the columns shared
        with the next tile, the region's rows)."""
        (row_lo, row_hi), (col_lo, col_hi) = along(tensor, 0), along(tensor, 1)
        held = 0
        if mapping.halo.caches(0):
            held += int(overlap(row_lo, row_hi)) * int(col_hi.max() - col_lo.min())
        if mapping.halo.caches(1):
            held += int((row_hi - row_lo).max()) * int(overlap(col_lo, col_hi))
        return segment.shape(tensor).channels * held

    copies = 2 if double_buffering else 1
    by_layer = {
        layer.name: Traffic(
            input_read=sum(
                total(x) * segment.input_bits(x)
                for x in segment.externals
                if segment.first_reader(x) is layer and x not in kept
            ),
            weight_read=layer.weight_elements
            * layer.precision.weight
            * (1 if layer.name in mapping.resident else tiles),
            output_write=layer.output_elements * layer.precision.output
            if layer is segment.last and layer.name not in kept
            else 0,
        )
        for layer in segment.layers
    }
    held_weights = sum(
        (layer.weight_elements if layer.name in mapping.resident else mapping.piece(layer.name) * weight_slice(layer))
        * layer.precision.weight
        for layer in segment.layers
    )
    slots = [largest(x) * segment.input_bits(x) for x in segment.externals]
    slots += [largest(layer.name) * layer.precision.output for layer in segment.layers]
    held_inputs, held_outputs = slot_footprint(segment, np.array([slots]), copies, liveness)
    return GroupCost(
        by_layer=by_layer,
        footprint={
            Operand.INPUT: int(held_inputs[0]) + sum(cache(x) * segment.input_bits(x) for x in segment.externals),
            Operand.WEIGHT: copies * held_weights,
            Operand.OUTPUT: int(held_outputs[0])
            + sum(cache(layer.name) * layer.precision.output for layer in segment.layers),
        },
        tiles=tiles,
        extra_macs={layer.name: total(layer.name) * layer.macs_per_output - layer.macs for layer in segment.layers},
        exposed=sum(first(x) * segment.input_bits(x) for x in segment.externals if x not in kept)
        + held_weights
        + largest(segment.last.name) * segment.last.precision.output * (segment.last.name not in kept),
    )


def group_objective(objective: Objective, accelerator: Accelerator, segment: Segment, cost: GroupCost,
                    moved_bits: int | None = None) -> float:  # fmt: skip
    """The cost under ``objective`` of ``segment`` run as ``cost`` says: its traffic (or, with
    DRAM bursts, the ``moved_bits`` of its whole bursts), exposed bits, and MACs (the
    recomputed halo included) with the buffer reads they make."""
    macs = {layer.name: layer.macs + cost.extra_macs[layer.name] for layer in segment.layers}
    operand = sum(macs[layer.name] * operand_bytes_per_mac(layer) for layer in segment.layers)
    moved, hidden = (cost.traffic.total if moved_bits is None else moved_bits) / 8, cost.exposed / 8
    return cost_of(objective, accelerator, moved, sum(macs.values()), operand, hidden).item()


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class _AxisOptions:
    """Tile sizes kept along one axis of the last layer's output, with what each implies."""

    tile: np.ndarray
    trips: np.ndarray
    held: np.ndarray
    """(options, tensors): rows (or columns) of each tensor produced, summed over the tiles
    (only the fresh span of each when the axis is cached)."""
    largest: np.ndarray
    """(options, tensors): rows (or columns) of each tensor's largest region."""
    first: np.ndarray
    """(options, tensors): rows (or columns) of each tensor's region in the first tile; it grows
    with the tile, so the dominance below keeps the fewest of those too."""
    shared: np.ndarray
    """(options, tensors): when the axis is cached, the most rows (or columns) of each tensor a
    tile shares with the next (the cache's extent, ``dse_milp.halo.overlap``); else 0."""


def _axis_options(segment: Segment, tensors: tuple[str, ...], axis: int, cached: bool) -> _AxisOptions:
    """Every tile size along ``axis`` not dominated in (trips, held, largest and shared extents,
    tile); ``cached``: whether the halo along ``axis`` is cached."""
    last = segment.shape(segment.last.name)
    extent = last.height if axis == 0 else last.width
    tile = np.arange(1, extent + 1)
    held, largest, first, shared = (np.zeros((extent, len(tensors)), dtype=np.int64) for _ in range(4))
    for i, t in enumerate(tile):
        needs = (spans(segment, span, axis) for span in tile_bounds(extent, int(t)))
        ends = np.array([[need[x] for x in tensors] for need in needs], dtype=np.int64)
        lo, hi = ends[..., 0], ends[..., 1]
        held[i] = (hi - (fresh(lo, hi) if cached else lo)).sum(axis=0)
        largest[i] = (hi - lo).max(axis=0)
        first[i] = hi[0] - lo[0]
        if cached:
            shared[i] = overlap(lo, hi)
    trips = -(-extent // tile)
    keep = non_dominated(np.column_stack([trips, held, largest, shared, tile]))
    return _AxisOptions(tile[keep], trips[keep], held[keep], largest[keep], first[keep], shared[keep])


@dataclass(frozen=True)
class GroupCandidates:
    """Candidate mappings of one fused group, by increasing footprint."""

    segment: Segment
    mappings: tuple[GroupMapping, ...]
    traffic: np.ndarray
    """(k, 5) bits, by ``TRAFFIC_FIELDS`` (no partial sums in a fused group)."""
    footprint: np.ndarray
    """(k, 3) bits per operand."""
    extra_macs: np.ndarray
    """(k, layers): MACs each layer spends recomputing the halo."""
    tiles: np.ndarray
    exposed: np.ndarray
    """(k,) bits a double-buffered run cannot overlap with compute (``GroupCost.exposed``)."""
    layouts: tuple[Layouts, ...] = ()
    """With DRAM bursts (``dse_milp.burst_candidates``): the layouts of the tensors each
    candidate reads and writes; ``traffic`` is then the bits its whole bursts move."""
    useful: np.ndarray | None = None
    """With DRAM bursts: (k, 5) the bits the traffic model counts; else None (``traffic``)."""
    kept: tuple[frozenset[str], ...] = ()
    """With tensors kept on chip between units: the tensors each candidate keeps (outside
    tensors it does not read, its output if it does not write it); empty when none does."""

    def __len__(self) -> int:
        return len(self.mappings)

    @property
    def total_bits(self) -> np.ndarray:
        return self.traffic.sum(axis=1)

    @property
    def useful_bits(self) -> np.ndarray:
        """(k,) the bits the traffic model counts, bursts or not."""
        return (self.traffic if self.useful is None else self.useful).sum(axis=1)

    def work(self) -> tuple[np.ndarray, np.ndarray]:
        """(k,) MACs of the whole group (the recomputed halo included), and (k,) bytes they read
        from the buffer."""
        return _work(self.segment, self.extra_macs)

    def take(self, index: np.ndarray) -> GroupCandidates:
        """The candidates at positions ``index``, in that order."""
        return replace(self, **rows_of(self, index, per_unit={"segment"}))


def _work(segment: Segment, extra_macs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MACs and the buffer bytes they read, for rows of extra MACs by layer."""
    macs = np.array([layer.macs for layer in segment.layers]) + extra_macs
    per_mac = np.array([operand_bytes_per_mac(layer) for layer in segment.layers])
    return macs.sum(axis=1), macs @ per_mac


def generate_group(segment: Segment, accelerator: Accelerator, objectives: Sequence[Objective] = (Objective.DRAM,),
                   hull: bool = False, by_halo: bool = False,
                   kept: frozenset[str] = frozenset()) -> GroupCandidates:  # fmt: skip
    """Every mapping of a fused group that fits the buffers and is not dominated in
    (costs under ``objectives``, then traffic; footprint), or, when the split is free, in
    (costs then traffic; banks of each buffer); the fewest extra MACs win ties.

    A lexicographic objective only needs, for each footprint, the mapping that ranks first
    (``dse_milp.cost.objective_rank``). Tile sizes along each axis are all integers from 1 to
    the last output's extent, less those dominated along that axis; each is tried with the
    resident weights that can be best for it (``_group_grid``, ``dse_milp.residency``), not
    with every subset. ``hull`` adds the resident sets a convex combination can need (the
    LP step of ``dse_milp.duals``). Tensors in ``kept`` (outside tensors, or the group's
    output) stay on chip between units: they are not read or written, and expose nothing.
    ``by_halo`` keeps each halo mode's own front instead of
    the front of all of them (a superset): what is priced later in DRAM bursts then holds
    every candidate any one mode alone would have, so allowing more modes never costs more.
    """
    grid = _group_grid(segment, accelerator, objectives, hull, kept)
    fits = grid.fits(accelerator)
    modes = [grid.halo == tuple(Halo).index(m) for m in accelerator.halo] if by_halo else [np.ones_like(fits)]
    keep = np.unique(np.concatenate([_front(grid, accelerator, objectives, np.flatnonzero(fits & m)) for m in modes]))
    return grid.candidates(keep[np.lexsort((keep, grid.footprint[keep][:, sized_by(accelerator)].sum(axis=1)))])


def _front(grid: _GroupGrid, accelerator: Accelerator, objectives: Sequence[Objective],
           index: np.ndarray) -> np.ndarray:  # fmt: skip
    """The points of ``index`` not dominated in (costs, footprint) or (costs, banks)."""
    size, extra_total = grid.footprint[index][:, sized_by(accelerator)].sum(axis=1), grid.extra[index].sum(axis=1)
    score = objective_rank(objectives, accelerator, *grid.work(index))
    if accelerator.split is None:
        return index[traffic_front(score, size, np.ones(len(index), dtype=bool), extra_total)]
    banks = bank_counts(grid.footprint[index], accelerator.split)
    return index[split_front(score, banks, size, extra_total)] if len(index) else index


def coarsest_group(
    segment: Segment, accelerator: Accelerator, objectives: Sequence[Objective], chosen: GroupMapping
) -> GroupMapping:
    """Of the mappings of a fused group that fit the buffers, move the same traffic as ``chosen``
    and cost no more under every objective, the one with the fewest tiles, then the smallest
    footprint, then the smallest tile (rows, then columns), then the first halo mode (in
    ``Halo`` order), then the fewest resident bits.

    The candidates keep the smallest footprint of each cost, which for a group whose traffic
    does not depend on its tile (every weight resident) means 1x1 tiles; once a solution has
    fixed the costs and the buffers, this picks the coarsest mapping that costs the same.
    """
    grid = _group_grid(segment, accelerator, objectives)
    index = np.flatnonzero(grid.fits(accelerator))
    mine = group_cost(segment, chosen, accelerator.double_buffering, accelerator.liveness)
    ok = grid.traffic[index].sum(axis=1) == mine.traffic.total
    work = grid.work(index)
    for objective in objectives:
        limit = group_objective(objective, accelerator, segment, mine)
        ok &= cost_of(objective, accelerator, work[0] / 8, work[1], work[2], work[3] / 8) <= limit
    index = index[ok]
    if not len(index):
        return chosen
    size = grid.footprint[index].sum(axis=1)
    order = (grid.step, grid.halo, grid.col, grid.row)
    best = index[np.lexsort((*(a[index] for a in order), size, grid.tiles[index]))[0]]
    return grid.candidates(np.array([best])).mappings[0]


@dataclass(frozen=True)
class _GroupGrid:
    """Mappings of a fused group, flat: its kept tiles under each halo mode, each with the
    resident weights worth a candidate for it (``dse_milp.residency``)."""

    segment: Segment
    residency: Residency
    row: np.ndarray
    """(N,) each point's tile rows; ``col`` its columns."""
    col: np.ndarray
    halo: np.ndarray
    """(N,) each point's halo mode, as its position in ``Halo``."""
    step: np.ndarray
    """(N,) the budget index (``Residency``) of each point's resident weights."""
    traffic: np.ndarray
    footprint: np.ndarray
    extra: np.ndarray
    exposed: np.ndarray
    tiles: np.ndarray

    def fits(self, accelerator: Accelerator) -> np.ndarray:
        return fits_buffers(self.footprint, accelerator)

    def work(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(traffic bits, MACs, operand bytes, exposed bits) of the points ``index``."""
        macs, operand_bytes = _work(self.segment, self.extra[index])
        return self.traffic[index].sum(axis=1), macs, operand_bytes, self.exposed[index]

    def candidates(self, keep: np.ndarray) -> GroupCandidates:
        sets = {int(c): self.residency.subset(int(c)) for c in np.unique(self.step[keep])}
        modes = tuple(Halo)
        picks = zip(*(a[keep].tolist() for a in (self.row, self.col, self.step, self.halo)), strict=True)
        return GroupCandidates(
            segment=self.segment,
            mappings=tuple(GroupMapping(r, c, sets[k], modes[h]) for r, c, k, h in picks),
            traffic=self.traffic[keep],
            footprint=self.footprint[keep],
            extra_macs=self.extra[keep],
            tiles=self.tiles[keep],
            exposed=self.exposed[keep],
        )


def _budgets(accelerator: Accelerator) -> list[int]:
    """Bits the buffer holding the weights may have: its capacity, or under a free split every
    whole number of banks."""
    if accelerator.split is not None:
        bank = 8 * accelerator.split.bank_bytes
        return [bank * count for count in range(1, accelerator.split.banks + 1)]
    return [8 * b.capacity_bytes for b in accelerator.buffers if Operand.WEIGHT in b.operands]


@dataclass(frozen=True)
class _Tiles:
    """The tiles of a group under its halo modes, flat, with what each implies (bits)."""

    row: np.ndarray
    col: np.ndarray
    halo: np.ndarray
    tiles: np.ndarray
    input_read: np.ndarray
    extra: np.ndarray
    """(N, layers) extra MACs by layer."""
    held_inputs: np.ndarray
    held_outputs: np.ndarray
    first_inputs: np.ndarray
    last_output: np.ndarray

    @classmethod
    def of(cls, segment: Segment, accelerator: Accelerator, kept: frozenset[str] = frozenset()) -> _Tiles:
        """Every pair of kept row and column options, under each mode ``accelerator.halo``
        allows, in that order; the outside tensors and the output in ``kept`` stay on chip
        between units (no reads, no writes, nothing exposed)."""
        tensors = (*segment.externals, *(layer.name for layer in segment.layers))
        external = np.array([x in segment.externals for x in tensors])
        moved = np.array([x not in kept for x in tensors])
        channels = np.array([segment.shape(x).channels for x in tensors], dtype=np.int64)
        bits = np.array(
            [segment.input_bits(x) for x in segment.externals] + [layer.precision.output for layer in segment.layers],
            dtype=np.int64,
        )
        last = segment.shape(segment.last.name)
        whole = spans(segment, (0, last.width), 1)
        width = np.array([whole[x][1] - whole[x][0] for x in tensors], dtype=np.int64)  # a line buffer's
        options: dict[tuple[int, bool], _AxisOptions] = {}
        parts = []
        for mode in accelerator.halo:
            for axis in (0, 1):
                if (axis, mode.caches(axis)) not in options:
                    options[axis, mode.caches(axis)] = _axis_options(segment, tensors, axis, mode.caches(axis))
            rows, cols = options[0, mode.caches(0)], options[1, mode.caches(1)]
            parts.append(cls._one_mode(segment, accelerator, mode, rows, cols, external, channels, bits, width, moved))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))

    @classmethod
    def _one_mode(cls, segment: Segment, accelerator: Accelerator, mode: Halo, rows: _AxisOptions,
                  cols: _AxisOptions, external: np.ndarray, channels: np.ndarray, bits: np.ndarray,
                  width: np.ndarray, moved: np.ndarray) -> _Tiles:  # fmt: skip
        """The tiles of one halo mode; ``width``: the columns each tensor uses (a line buffer's);
        ``moved``: which tensors cross DRAM (not kept on chip)."""

        def bilinear(weights: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            """sum_x weights[x] * a[i, x] * b[j, x] for every (i, j), flat."""
            return ((a * weights) @ b.T).reshape(-1)

        inside, unit = ~external, channels * bits  # unit: bits of one row-column position
        input_read = bilinear(np.where(external & moved, unit, 0), rows.held, cols.held)
        macs = np.array([layer.macs for layer in segment.layers], dtype=np.int64)
        per_output = np.array([layer.macs_per_output for layer in segment.layers], dtype=np.int64)
        computed = rows.held[:, None, inside] * cols.held[None, :, inside] * channels[inside]
        extra = (computed * per_output - macs).reshape(-1, len(segment.layers))
        slots = (rows.largest[:, None, :] * cols.largest[None, :, :] * unit).reshape(-1, len(unit))
        copies = 2 if accelerator.double_buffering else 1
        held_inputs, held_outputs = slot_footprint(segment, slots, copies, accelerator.liveness)
        # the halo caches (``shared`` is 0 along an axis not cached): held once, for the whole run
        line, column = rows.shared[:, None, :] * width, rows.largest[:, None, :] * cols.shared[None, :, :]
        caches = ((line + column) * unit).reshape(-1, len(unit))
        row, col = (a.reshape(-1) for a in np.meshgrid(rows.tile, cols.tile, indexing="ij"))
        return cls(
            row=row,
            col=col,
            halo=np.full(len(row), tuple(Halo).index(mode)),
            tiles=np.outer(rows.trips, cols.trips).reshape(-1),
            input_read=input_read,
            extra=extra,
            held_inputs=held_inputs + caches[:, external].sum(axis=1),
            held_outputs=held_outputs + caches[:, inside].sum(axis=1),
            first_inputs=bilinear(np.where(external & moved, unit, 0), rows.first, cols.first),
            last_output=np.outer(rows.largest[:, -1], cols.largest[:, -1]).reshape(-1) * unit[-1] * moved[-1],
        )


def _group_grid(segment: Segment, accelerator: Accelerator, objectives: Sequence[Objective] = (Objective.DRAM,),
                hull: bool = False, kept: frozenset[str] = frozenset()) -> _GroupGrid:  # fmt: skip
    """Every kept tile of ``segment`` under every halo mode allowed, each with, for every budget
    its buffer leaves the weights (``_budgets``), the resident set of the most weight bits
    that fits (the staircase point of that budget); when the double-buffered latency is
    ranked, also the points around the least latency within the budget (see
    ``_latency_points``); with ``hull``, every point of the staircase's concave hull (for the
    LP step)."""
    flat = _Tiles.of(segment, accelerator, kept)
    tiles = flat.tiles
    weighted = [layer for layer in segment.layers if layer.has_weights]
    full = np.array([layer.weight_elements * layer.precision.weight for layer in weighted], dtype=np.int64)
    slices = np.array([weight_slice(layer) * layer.precision.weight for layer in weighted], dtype=np.int64)
    streamed = int(slices.sum())  # what the weights hold with none resident
    holder = next((b for b in accelerator.buffers if Operand.WEIGHT in b.operands), None)
    others = np.zeros(len(tiles), dtype=np.int64)
    if holder is not None and Operand.INPUT in holder.operands and accelerator.split is None:
        others = others + flat.held_inputs
    if holder is not None and Operand.OUTPUT in holder.operands and accelerator.split is None:
        others = others + flat.held_outputs
    caps = _budgets(accelerator)
    copies = 2 if accelerator.double_buffering else 1
    budget = np.array(caps, dtype=np.int64)[:, None] - others  # (caps, tiles): bits the weights may hold
    budget = budget // copies - streamed
    residency = Residency.of([layer.name for layer in weighted], full, full - slices, int(budget.max(initial=0)))

    points = [np.stack([np.broadcast_to(np.arange(len(tiles)), budget.shape), residency.step(budget)], -1)]
    output_write = segment.last.output_elements * segment.last.precision.output * (segment.last.name not in kept)
    if ranked_by_objectives(objectives, accelerator):
        work = _work(segment, flat.extra)[0]
        all_streamed = flat.input_read + tiles * int(full.sum()) + output_write
        points += _latency_points(accelerator, residency, residency.step(budget), work,
                                  all_streamed, tiles, flat.first_inputs + flat.last_output + streamed)  # fmt: skip
    if hull:
        corners = residency.hull()
        points.append(np.stack(np.broadcast_arrays(np.arange(len(tiles))[:, None], corners[None, :]), -1))
    pairs = np.unique(np.concatenate([p.reshape(-1, 2) for p in points]), axis=0)
    pairs = pairs[pairs[:, 1] >= 0]
    t, step = pairs[:, 0], residency.least[pairs[:, 1]] // residency.unit
    pairs = np.unique(np.column_stack([t, step]), axis=0)
    t, step = pairs[:, 0], pairs[:, 1]
    resident, more = residency.best[step], residency.least[step]  # A and B of each point
    held_weights = streamed + more
    weight_read = resident + tiles[t] * (int(full.sum()) - resident)
    zeros = np.zeros(len(t), dtype=np.int64)
    return _GroupGrid(
        segment=segment,
        residency=residency,
        row=flat.row[t],
        col=flat.col[t],
        halo=flat.halo[t],
        step=step,
        traffic=np.column_stack([flat.input_read[t], weight_read, np.full(len(t), output_write), zeros, zeros]),
        footprint=np.column_stack([flat.held_inputs[t], copies * held_weights, flat.held_outputs[t]]),
        extra=flat.extra[t],
        exposed=flat.first_inputs[t] + flat.last_output[t] + held_weights,
        tiles=tiles[t],
    )


def _latency_points(accelerator: Accelerator, residency: Residency, limit: np.ndarray, macs: np.ndarray,
                    all_streamed: np.ndarray, tiles: np.ndarray, exposed: np.ndarray) -> list[np.ndarray]:  # fmt: skip
    """(tile, budget index) points of least double-buffered latency within each budget.

    Along the staircase (points i by increasing B and A) a tile's latency is max(g(i), h(i))
    with g = compute + ceil(exposed bytes / bandwidth), non-decreasing, and h = ceil(traffic
    bytes / bandwidth), non-increasing. With i* the first point where g >= h, the least is at
    i* - 1 (h side) or on the run of points from i* with g = g(i*), whose last point moves the
    least; both are returned, clipped to each budget's last point ``limit`` (the staircase
    point of ``limit`` is a candidate anyway). Found by bisection, for every tile at once."""
    stairs = residency.corners()
    more, saved = residency.least[stairs], residency.best[stairs]
    compute = np.ceil(macs / accelerator.macs)
    bandwidth = accelerator.dram_bandwidth
    last = np.searchsorted(stairs, limit, side="right") - 1  # (caps, tiles); -1: nothing fits

    def g(i: np.ndarray) -> np.ndarray:
        return compute + np.ceil((exposed + more[i]) / 8 / bandwidth)

    def h(i: np.ndarray) -> np.ndarray:
        return np.ceil((all_streamed - (tiles - 1) * saved[i]) / 8 / bandwidth)

    def bisect(lo: np.ndarray, hi: np.ndarray, below: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The first i in [lo, hi) where ``below(i)`` is false (hi if none), for a predicate
        true then false along the staircase."""
        while np.any(lo < hi):
            mid = (lo + hi) // 2
            go = (lo < hi) & below(np.minimum(mid, len(stairs) - 1))
            lo, hi = np.where(go, mid + 1, lo), np.where((lo < hi) & ~go, mid, hi)
        return lo

    out = []
    for cap in range(len(limit)):
        top = last[cap]
        crossing = bisect(np.zeros_like(top), top + 1, lambda i: g(i) < h(i))
        level = g(np.minimum(crossing, len(stairs) - 1))
        run_end = bisect(crossing, top + 1, lambda i, level=level: g(i) <= level) - 1
        for i in (crossing - 1, run_end):
            ok = (i >= 0) & (i <= top) & (top >= 0)
            index = np.flatnonzero(ok)
            out.append(np.column_stack([index, stairs[i[ok]]]))
    return out
