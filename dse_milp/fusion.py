"""Fused groups: consecutive layers whose intermediate feature maps never leave the chip.

A group runs tile by tile over the output of its last layer (Alwani et al.,
MICRO 2016). For each output tile the region every tensor of the group must
hold is found backwards through the group, one dimension at a time: a layer
whose output rows ``[a, b)`` are needed needs input rows
``[a*S - P, (b-1)*S - P + K)`` (clipped to the tensor), and a tensor read by
several layers of the group holds the smallest range covering what each needs.
Every layer computes its whole region for every tile (the overlapping halo is
recomputed, and the extra MACs are reported). The model is written out in
docs/traffic_model.md, section 8; this module is its scalar reference.

A group may span several branches of the DAG (a residual block with its
add), but every layer except the last must be read only inside the group, so
that the group has one output. Tensors the group reads from outside (its
inputs, and a skip connection from before it) are read from DRAM; the last
layer's output is written to DRAM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import bank_counts, fits_buffers, non_dominated, split_front, traffic_front
from dse_milp.cost import Objective, cost_of, objective_rank, operand_bytes_per_mac, ranked_by_objectives
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
    """How a fused group runs: its tile of the last layer's output, and which layers' weights
    stay on chip for the whole group (the others are read again for every tile, one output
    channel's weights at a time)."""

    rows: int
    cols: int
    resident: frozenset[str]


@dataclass(frozen=True)
class GroupCost:
    by_layer: dict[str, Traffic]
    """Bits by layer: each external tensor charged to its first reader (halo included), each
    layer's weights to it, the group's output to the last layer."""
    footprint: dict[Operand, int]
    """Bits of buffer: external input tiles (input); weights (weight); every layer's region (output)."""
    tiles: int
    extra_macs: dict[str, int]
    """MACs each layer spends recomputing the overlapping halo."""
    exposed: int
    """Bits a double-buffered run cannot overlap with compute: what the first tile holds when it
    starts (its external input regions, the resident weights, one slice of each streamed
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
               liveness: bool | None = None) -> GroupCost:  # fmt: skip
    """The exact traffic and footprint of ``segment`` run as ``mapping`` (closed form per tile);
    ``liveness`` as ``Accelerator.liveness`` (``slot_footprint``)."""
    last = segment.shape(segment.last.name)
    row_tiles = [spans(segment, span, 0) for span in tile_bounds(last.height, mapping.rows)]
    col_tiles = [spans(segment, span, 1) for span in tile_bounds(last.width, mapping.cols)]
    tiles = len(row_tiles) * len(col_tiles)

    def total(tensor: str) -> int:
        """Elements of ``tensor`` held, summed over all tiles."""
        rows = sum(hi - lo for lo, hi in (t[tensor] for t in row_tiles))
        cols = sum(hi - lo for lo, hi in (t[tensor] for t in col_tiles))
        return segment.shape(tensor).channels * rows * cols

    def largest(tensor: str) -> int:
        """Elements of ``tensor``'s largest region over all tiles."""
        rows = max(hi - lo for lo, hi in (t[tensor] for t in row_tiles))
        cols = max(hi - lo for lo, hi in (t[tensor] for t in col_tiles))
        return segment.shape(tensor).channels * rows * cols

    def first(tensor: str) -> int:
        """Elements of ``tensor``'s region in the first tile."""
        (r0, r1), (c0, c1) = row_tiles[0][tensor], col_tiles[0][tensor]
        return segment.shape(tensor).channels * (r1 - r0) * (c1 - c0)

    copies = 2 if double_buffering else 1
    by_layer = {
        layer.name: Traffic(
            input_read=sum(
                total(x) * segment.input_bits(x) for x in segment.externals if segment.first_reader(x) is layer
            ),
            weight_read=layer.weight_elements
            * layer.precision.weight
            * (1 if layer.name in mapping.resident else tiles),
            output_write=layer.output_elements * layer.precision.output if layer is segment.last else 0,
        )
        for layer in segment.layers
    }
    held_weights = sum(
        (layer.weight_elements if layer.name in mapping.resident else weight_slice(layer)) * layer.precision.weight
        for layer in segment.layers
    )
    slots = [largest(x) * segment.input_bits(x) for x in segment.externals]
    slots += [largest(layer.name) * layer.precision.output for layer in segment.layers]
    held_inputs, held_outputs = slot_footprint(segment, np.array([slots]), copies, liveness)
    return GroupCost(
        by_layer=by_layer,
        footprint={
            Operand.INPUT: int(held_inputs[0]),
            Operand.WEIGHT: copies * held_weights,
            Operand.OUTPUT: int(held_outputs[0]),
        },
        tiles=tiles,
        extra_macs={layer.name: total(layer.name) * layer.macs_per_output - layer.macs for layer in segment.layers},
        exposed=sum(first(x) * segment.input_bits(x) for x in segment.externals)
        + held_weights
        + largest(segment.last.name) * segment.last.precision.output,
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
    """(options, tensors): rows (or columns) of each tensor summed over the tiles."""
    largest: np.ndarray
    """(options, tensors): rows (or columns) of each tensor's largest region."""
    first: np.ndarray
    """(options, tensors): rows (or columns) of each tensor's region in the first tile; it grows
    with the tile, so the dominance below keeps the fewest of those too."""


def _axis_options(segment: Segment, tensors: tuple[str, ...], axis: int) -> _AxisOptions:
    """Every tile size along ``axis`` not dominated in (trips, held and largest extents, tile)."""
    last = segment.shape(segment.last.name)
    extent = last.height if axis == 0 else last.width
    tile = np.arange(1, extent + 1)
    held = np.zeros((extent, len(tensors)), dtype=np.int64)
    largest = np.zeros((extent, len(tensors)), dtype=np.int64)
    first = np.zeros((extent, len(tensors)), dtype=np.int64)
    for i, t in enumerate(tile):
        for j, span in enumerate(tile_bounds(extent, int(t))):
            need = spans(segment, span, axis)
            sizes = np.array([need[x][1] - need[x][0] for x in tensors])
            held[i] += sizes
            largest[i] = np.maximum(largest[i], sizes)
            if j == 0:
                first[i] = sizes
    trips = -(-extent // tile)
    keep = non_dominated(np.column_stack([trips, held, largest, tile]))
    return _AxisOptions(tile[keep], trips[keep], held[keep], largest[keep], first[keep])


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


def _work(segment: Segment, extra_macs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MACs and the buffer bytes they read, for rows of extra MACs by layer."""
    macs = np.array([layer.macs for layer in segment.layers]) + extra_macs
    per_mac = np.array([operand_bytes_per_mac(layer) for layer in segment.layers])
    return macs.sum(axis=1), macs @ per_mac


def generate_group(segment: Segment, accelerator: Accelerator, objectives: Sequence[Objective] = (Objective.DRAM,),
                   hull: bool = False) -> GroupCandidates:  # fmt: skip
    """Every mapping of a fused group that fits the buffers and is not dominated in
    (costs under ``objectives``, then traffic; footprint), or, when the split is free, in
    (costs then traffic; banks of each buffer); the fewest extra MACs win ties.

    A lexicographic objective only needs, for each footprint, the mapping that ranks first
    (``dse_milp.cost.objective_rank``). Tile sizes along each axis are all integers from 1 to
    the last output's extent, less those dominated along that axis; each is tried with the
    resident weights that can be best for it (``_group_grid``, ``dse_milp.residency``), not
    with every subset. ``hull`` adds the resident sets a convex combination can need (the
    LP step of ``dse_milp.duals``).
    """
    grid = _group_grid(segment, accelerator, objectives, hull)
    index = np.flatnonzero(grid.fits(accelerator))
    size, extra_total = grid.footprint[index].sum(axis=1), grid.extra[index].sum(axis=1)
    score = objective_rank(objectives, accelerator, *grid.work(index))
    if accelerator.split is None:
        keep = index[traffic_front(score, size, np.ones(len(index), dtype=bool), extra_total)]
    else:
        banks = bank_counts(grid.footprint[index], accelerator.split)
        keep = index[split_front(score, banks, size, extra_total)] if len(index) else index
    return grid.candidates(keep)


def coarsest_group(
    segment: Segment, accelerator: Accelerator, objectives: Sequence[Objective], chosen: GroupMapping
) -> GroupMapping:
    """Of the mappings of a fused group that fit the buffers, move the same traffic as ``chosen``
    and cost no more under every objective, the one with the fewest tiles, then the smallest
    footprint, then the smallest tile (rows, then columns), then the fewest resident bits.

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
    best = index[np.lexsort((grid.step[index], grid.col[index], grid.row[index], size, grid.tiles[index]))[0]]
    return grid.candidates(np.array([best])).mappings[0]


@dataclass(frozen=True)
class _GroupGrid:
    """Mappings of a fused group, flat: its kept tile options, each with the resident weights
    worth a candidate for it (``dse_milp.residency``)."""

    segment: Segment
    rows: _AxisOptions
    cols: _AxisOptions
    residency: Residency
    row: np.ndarray
    """(N,) index of each point's row option; ``col`` likewise."""
    col: np.ndarray
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
        row_tiles, col_tiles = self.rows.tile[self.row[keep]], self.cols.tile[self.col[keep]]
        sets = {int(c): self.residency.subset(int(c)) for c in np.unique(self.step[keep])}
        picks = zip(row_tiles.tolist(), col_tiles.tolist(), self.step[keep].tolist(), strict=True)
        return GroupCandidates(
            segment=self.segment,
            mappings=tuple(GroupMapping(r, c, sets[k]) for r, c, k in picks),
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


def _group_grid(segment: Segment, accelerator: Accelerator, objectives: Sequence[Objective] = (Objective.DRAM,),
                hull: bool = False) -> _GroupGrid:  # fmt: skip
    """Every kept tile of ``segment``, each with, for every budget its buffer leaves the weights
    (``_budgets``), the resident set of the most weight bits that fits (the staircase point
    of that budget); when the double-buffered latency is ranked, also the points around the
    least latency within the budget (see ``_latency_points``); with ``hull``, every point of
    the staircase's concave hull (for the LP step)."""
    tensors = (*segment.externals, *(layer.name for layer in segment.layers))
    external = np.array([x in segment.externals for x in tensors])
    channels = np.array([segment.shape(x).channels for x in tensors], dtype=np.int64)
    bits = np.array(
        [segment.input_bits(x) for x in segment.externals] + [layer.precision.output for layer in segment.layers],
        dtype=np.int64,
    )
    rows, cols = _axis_options(segment, tensors, 0), _axis_options(segment, tensors, 1)

    def bilinear(weights: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """sum_x weights[x] * a[i, x] * b[j, x] for every (i, j), flat."""
        return ((a * weights) @ b.T).reshape(-1)

    input_read = bilinear(np.where(external, channels * bits, 0), rows.held, cols.held)
    first = len(segment.externals)
    extra_by_layer = np.stack(
        [
            np.outer(rows.held[:, first + i], cols.held[:, first + i]).reshape(-1)
            * channels[first + i]
            * layer.macs_per_output
            - layer.macs
            for i, layer in enumerate(segment.layers)
        ],
        axis=-1,
    )
    slots = (rows.largest[:, None, :] * cols.largest[None, :, :] * channels * bits).reshape(-1, len(tensors))
    copies = 2 if accelerator.double_buffering else 1
    held_inputs, held_outputs = slot_footprint(segment, slots, copies, accelerator.liveness)
    first_inputs = bilinear(np.where(external, channels * bits, 0), rows.first, cols.first)
    last_output = np.outer(rows.largest[:, -1], cols.largest[:, -1]).reshape(-1) * channels[-1] * bits[-1]
    tiles = np.outer(rows.trips, cols.trips).reshape(-1)
    row, col = (a.reshape(-1) for a in np.indices((len(rows.tile), len(cols.tile))))

    weighted = [layer for layer in segment.layers if layer.has_weights]
    full = np.array([layer.weight_elements * layer.precision.weight for layer in weighted], dtype=np.int64)
    slices = np.array([weight_slice(layer) * layer.precision.weight for layer in weighted], dtype=np.int64)
    streamed = int(slices.sum())  # what the weights hold with none resident
    holder = next((b for b in accelerator.buffers if Operand.WEIGHT in b.operands), None)
    others = np.zeros(len(tiles), dtype=np.int64)
    if holder is not None and Operand.INPUT in holder.operands and accelerator.split is None:
        others = others + held_inputs
    if holder is not None and Operand.OUTPUT in holder.operands and accelerator.split is None:
        others = others + held_outputs
    caps = _budgets(accelerator)
    budget = np.array(caps, dtype=np.int64)[:, None] - others  # (caps, tiles): bits the weights may hold
    budget = budget // copies - streamed
    residency = Residency.of([layer.name for layer in weighted], full, full - slices, int(budget.max(initial=0)))

    points = [np.stack([np.broadcast_to(np.arange(len(tiles)), budget.shape), residency.step(budget)], -1)]
    output_write = segment.last.output_elements * segment.last.precision.output
    if ranked_by_objectives(objectives, accelerator):
        work = _work(segment, extra_by_layer)[0]
        all_streamed = input_read + tiles * int(full.sum()) + output_write
        points += _latency_points(accelerator, residency, residency.step(budget), work,
                                  all_streamed, tiles, first_inputs + last_output + streamed)  # fmt: skip
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
        rows=rows,
        cols=cols,
        residency=residency,
        row=row[t],
        col=col[t],
        step=step,
        traffic=np.column_stack([input_read[t], weight_read, np.full(len(t), output_write), zeros, zeros]),
        footprint=np.column_stack([held_inputs[t], copies * held_weights, held_outputs[t]]),
        extra=extra_by_layer[t],
        exposed=first_inputs[t] + last_output[t] + held_weights,
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
