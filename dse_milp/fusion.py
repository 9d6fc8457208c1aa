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

import bisect
import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import bank_counts, fits_buffers, non_dominated, split_front, traffic_front
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

    @property
    def traffic(self) -> Traffic:
        return sum(self.by_layer.values(), Traffic())


def weight_slice(layer: Layer) -> int:
    """Elements of one output channel's weights: what a streamed (not resident) layer holds."""
    return layer.ng * layer.kh * layer.kw if layer.has_weights else 0


def group_cost(segment: Segment, mapping: GroupMapping, double_buffering: bool) -> GroupCost:
    """The exact traffic and footprint of ``segment`` run as ``mapping`` (closed form per tile)."""
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
    return GroupCost(
        by_layer=by_layer,
        footprint={
            Operand.INPUT: copies * sum(largest(x) * segment.input_bits(x) for x in segment.externals),
            Operand.WEIGHT: copies * held_weights,
            Operand.OUTPUT: copies * sum(largest(layer.name) * layer.precision.output for layer in segment.layers),
        },
        tiles=tiles,
        extra_macs={layer.name: total(layer.name) * layer.macs_per_output - layer.macs for layer in segment.layers},
    )


def residency_choices(segment: Segment) -> list[frozenset[str]]:
    """Every subset of the group's layers with weights, smallest first."""
    named = [layer.name for layer in segment.layers if layer.has_weights]
    return [frozenset(c) for size in range(len(named) + 1) for c in itertools.combinations(named, size)]


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


def _axis_options(segment: Segment, tensors: tuple[str, ...], axis: int) -> _AxisOptions:
    """Every tile size along ``axis`` not dominated in (trips, held and largest extents, tile)."""
    last = segment.shape(segment.last.name)
    extent = last.height if axis == 0 else last.width
    tile = np.arange(1, extent + 1)
    held = np.zeros((extent, len(tensors)), dtype=np.int64)
    largest = np.zeros((extent, len(tensors)), dtype=np.int64)
    for i, t in enumerate(tile):
        for span in tile_bounds(extent, int(t)):
            need = spans(segment, span, axis)
            sizes = np.array([need[x][1] - need[x][0] for x in tensors])
            held[i] += sizes
            largest[i] = np.maximum(largest[i], sizes)
    trips = -(-extent // tile)
    keep = non_dominated(np.column_stack([trips, held, largest, tile]))
    return _AxisOptions(tile[keep], trips[keep], held[keep], largest[keep])


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

    def __len__(self) -> int:
        return len(self.mappings)

    @property
    def total_bits(self) -> np.ndarray:
        return self.traffic.sum(axis=1)


def generate_group(segment: Segment, accelerator: Accelerator, count_macs: bool = True) -> GroupCandidates:
    """Every mapping of a fused group that fits the buffers and is not dominated in
    (traffic, footprint, extra MACs), or with ``count_macs`` false (for objectives
    blind to compute) in (traffic, footprint), the fewest extra MACs winning ties.

    Tile sizes along each axis are all integers from 1 to the last output's
    extent, less those dominated along that axis; every subset of resident
    weights is tried.
    """
    tensors = (*segment.externals, *(layer.name for layer in segment.layers))
    external = np.array([x in segment.externals for x in tensors])
    channels = np.array([segment.shape(x).channels for x in tensors], dtype=np.int64)
    bits = np.array(
        [segment.input_bits(x) for x in segment.externals] + [layer.precision.output for layer in segment.layers],
        dtype=np.int64,
    )
    rows, cols = _axis_options(segment, tensors, 0), _axis_options(segment, tensors, 1)

    def bilinear(weights: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """sum_x weights[x] * a[i, x] * b[j, x] for every (i, j)."""
        return (a * weights) @ b.T

    input_read = bilinear(np.where(external, channels * bits, 0), rows.held, cols.held)
    first = len(segment.externals)
    extra_by_layer = np.stack(
        [
            np.outer(rows.held[:, first + i], cols.held[:, first + i]) * channels[first + i] * layer.macs_per_output
            - layer.macs
            for i, layer in enumerate(segment.layers)
        ],
        axis=-1,
    )
    held_inputs = bilinear(np.where(external, channels * bits, 0), rows.largest, cols.largest)
    held_outputs = bilinear(np.where(external, 0, channels * bits), rows.largest, cols.largest)
    tiles = np.outer(rows.trips, cols.trips)

    choices = residency_choices(segment)
    weighted = [layer for layer in segment.layers if layer.has_weights]
    full = {layer.name: layer.weight_elements * layer.precision.weight for layer in weighted}
    slices = {layer.name: weight_slice(layer) * layer.precision.weight for layer in weighted}
    resident_bits = np.array([sum(full[n] for n in c) for c in choices], dtype=np.int64)
    streamed_bits = np.array([sum(full[n] for n in full if n not in c) for c in choices], dtype=np.int64)
    held_weights = np.array([sum(full[n] if n in c else slices[n] for n in full) for c in choices], dtype=np.int64)

    copies = 2 if accelerator.double_buffering else 1
    shape = (*tiles.shape, len(choices))
    weight_read = resident_bits + tiles[..., None] * streamed_bits
    footprint = copies * np.stack(
        [np.broadcast_to(held_inputs[..., None], shape), np.broadcast_to(held_weights, shape),
         np.broadcast_to(held_outputs[..., None], shape)],
        axis=-1,
    ).reshape(-1, 3)  # fmt: skip
    output_write = segment.last.output_elements * segment.last.precision.output
    traffic = np.stack(
        [np.broadcast_to(input_read[..., None], shape), weight_read, np.full(shape, output_write),
         np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)],
        axis=-1,
    ).reshape(-1, 5)  # fmt: skip
    count = len(segment.layers)
    extra = np.broadcast_to(extra_by_layer[:, :, None, :], (*shape, count)).reshape(-1, count)

    fits = fits_buffers(footprint, accelerator)
    total, size, extra_total = traffic.sum(axis=1), footprint.sum(axis=1), extra.sum(axis=1)
    if accelerator.split is not None:
        banks = bank_counts(footprint, accelerator.split)
        fits &= banks.sum(axis=1) <= accelerator.split.banks
        index = np.flatnonzero(fits)
        ties = (extra_total[index],)
        keep = index[split_front(total[index], banks[index], size[index], *ties)] if len(index) else index
    elif count_macs:
        keep = _pareto(total, size, extra_total, fits)
    else:
        keep = traffic_front(total, size, fits, extra_total)
    i, j, s = np.unravel_index(keep, shape)
    return GroupCandidates(
        segment=segment,
        mappings=tuple(
            GroupMapping(int(rows.tile[a]), int(cols.tile[b]), choices[c]) for a, b, c in zip(i, j, s, strict=True)
        ),
        traffic=traffic[keep],
        footprint=footprint[keep],
        extra_macs=extra[keep],
        tiles=tiles[i, j],
    )


def _pareto(traffic: np.ndarray, size: np.ndarray, extra: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Indices of the allowed points not dominated in (traffic, size, extra), by increasing size.

    Ties go to the lowest index. A sweep by increasing size keeps a staircase of
    the (traffic, extra) pairs seen so far.
    """
    index = np.flatnonzero(allowed)
    index = index[np.lexsort((index, extra[index], traffic[index], size[index]))]
    stair_traffic: list[int] = []  # increasing
    stair_extra: list[int] = []  # decreasing
    kept = []
    for k in index:
        t, e = int(traffic[k]), int(extra[k])
        at = bisect.bisect_right(stair_traffic, t)
        if at and stair_extra[at - 1] <= e:
            continue  # an earlier point is no larger, no more traffic and no more extra MACs
        kept.append(k)
        end = at
        while end < len(stair_traffic) and stair_extra[end] >= e:
            end += 1
        stair_traffic[at:end] = [t]
        stair_extra[at:end] = [e]
    return np.array(kept, dtype=np.int64)
