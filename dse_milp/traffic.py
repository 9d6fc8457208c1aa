"""The exact off-chip traffic model of one layer's tile-loop nest (scalar reference).

This module is the contract, written out in ``docs/traffic_model.md``; the
vectorised candidate generator (``dse_milp.candidates``) evaluates the same
closed forms over whole tiling spaces, and ``dse_milp.simulate`` walks the loop
nest tile by tile to check them. All quantities are in **bits**.

In short, for a mapping (tile sizes ``t_m, t_n, t_r, t_c``, a loop order and a
level for each operand):

- each operand sits at its own level of the tile-loop nest (0 = outside every
  tile loop, 4 = inside all of them, one tile); it holds a *block*: everything
  the loops inside its level touch, so a relevant loop inside the level spans
  its whole extent. A block is read when the nest moves to a block that is not
  resident, so an operand is read ``refetch(order[:level], relevant dims)``
  times over: the product of the trip counts of the loops it does not depend on
  that sit outside its innermost active loop outside its level;
- the input block holds only the rows and columns its outputs need (halo
  included, padding excluded);
- an output block is written when it leaves; if it is visited again before its
  reduction is complete it is read back, at partial-sum width.

With every level at 4 this is one resident tile per operand.

A tile may span several whole channel groups (``Mapping.groups``): the group loop
then runs over blocks of groups, outermost. Groups share no data, so the traffic in
bits is the same as one group at a time, and every block is ``groups`` times larger.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

from dse_milp.workload import Layer, Operand

LOOPS = "mnrc"
"""The tile loops: output channels, input channels (reduction), output rows, output columns."""

ORDERS: tuple[str, ...] = tuple("".join(p) for p in itertools.permutations(LOOPS))
"""Every loop order, outer to inner, in the stated tie-breaking order (m < n < r < c)."""

RELEVANT: dict[Operand, str] = {
    Operand.INPUT: "nrc",
    Operand.WEIGHT: "mn",
    Operand.OUTPUT: "mrc",
}
"""The loops whose index selects each operand's tile."""


@dataclass(frozen=True)
class Tiling:
    """Tile sizes, each any integer from 1 to the loop's extent (edge tiles allowed)."""

    m: int
    n: int
    r: int
    c: int

    def as_dict(self) -> dict[str, int]:
        return {"m": self.m, "n": self.n, "r": self.r, "c": self.c}


class Levels(NamedTuple):
    """Each operand's position in the tile-loop nest: the number of tile loops outside it.

    0 holds the whole tensor (of a group), 4 one tile; the loops from the
    position inward run over the operand's resident block.
    """

    input: int = 4
    weight: int = 4
    output: int = 4

    def of(self, operand: Operand) -> int:
        return getattr(self, operand.value)


INNERMOST = Levels()
"""Every operand at the innermost level: one resident tile each."""


@dataclass(frozen=True)
class Mapping:
    tiling: Tiling
    order: str
    """A permutation of ``mnrc``, outer to inner."""
    levels: Levels = INNERMOST
    groups: int = 1
    """Channel groups each tile spans, at most the layer's (``Layer.groups``). More than one
    only when the m and n tiles are whole groups (``spans_groups``): the tile loops then run
    over a block of whole groups at a time, outermost, and the last block may be smaller."""

    def nest(self) -> str:
        """The order with each operand not innermost marked at its level: ``mn[O]r[I]c`` holds the
        output's whole r and c, and the input's whole c."""
        marks = {level: "".join(f"[{op.value[0].upper()}]" for op in Operand if self.levels.of(op) == level)
                 for level in range(len(LOOPS))}  # fmt: skip
        return "".join(marks[i] + d for i, d in enumerate(self.order))

    def inside(self, operand: Operand) -> str:
        """The loops relevant to ``operand`` inside its level: its block spans them whole."""
        return "".join(d for d in self.order[self.levels.of(operand) :] if d in RELEVANT[operand])


@dataclass(frozen=True)
class Traffic:
    """Off-chip traffic of one layer, in bits, by kind of transfer."""

    input_read: int = 0
    weight_read: int = 0
    output_write: int = 0
    psum_read: int = 0
    psum_write: int = 0

    @property
    def total(self) -> int:
        return self.input_read + self.weight_read + self.output_write + self.psum_read + self.psum_write

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.input_read + other.input_read,
            self.weight_read + other.weight_read,
            self.output_write + other.output_write,
            self.psum_read + other.psum_read,
            self.psum_write + other.psum_write,
        )


def trip_count(extent: int, tile: int) -> int:
    return -(-extent // tile)


def tile_bounds(extent: int, tile: int) -> list[tuple[int, int]]:
    """The half-open ranges of the tiles of one loop; the last may be shorter."""
    return [(start, min(start + tile, extent)) for start in range(0, extent, tile)]


def needed_inputs(start: int, stop: int, stride: int, kernel: int, pad: int, size: int) -> int:
    """How many input rows (or columns) the output rows ``[start, stop)`` read.

    Output row ``o`` reads input rows ``[o*stride - pad, o*stride - pad + kernel)``;
    rows in the padding are zeros made on chip and are not counted. With
    ``stride <= kernel`` the rows form one range; with a larger stride they are
    ``kernel`` rows per output row with gaps between.
    """
    if stride <= kernel:
        low = max(0, start * stride - pad)
        high = min(size, (stop - 1) * stride - pad + kernel)
        return max(0, high - low)
    return sum(max(0, min(size, o * stride - pad + kernel) - max(0, o * stride - pad)) for o in range(start, stop))


@lru_cache(maxsize=65536)
def halo_stats(extent: int, tile: int, kernel: int, stride: int, pad: int, size: int) -> tuple[int, int]:
    """(sum over tiles, max over tiles) of the input rows each output-row tile reads."""
    counts = [needed_inputs(a, b, stride, kernel, pad, size) for a, b in tile_bounds(extent, tile)]
    return sum(counts), max(counts)


def trip_counts(layer: Layer, tiling: Tiling) -> dict[str, int]:
    return {d: trip_count(extent, getattr(tiling, d)) for d, extent in layer.dims.items()}


def tile_count(layer: Layer, mapping: Mapping) -> int:
    """The compute tiles of the whole layer: every block of groups times the tiles of one."""
    return trip_count(layer.groups, mapping.groups) * math.prod(trip_counts(layer, mapping.tiling).values())


def refetch(order: str, trips: dict[str, int], relevant: str) -> int:
    """How many times over an operand is read (or an output tile visited).

    The operand's tile changes only when one of its ``relevant`` loops moves. Its
    innermost relevant loop with more than one trip is ``p``; every loop outside
    ``p`` that it does not depend on brings the same tiles back again.
    """
    active = [i for i, d in enumerate(order) if d in relevant and trips[d] > 1]
    if not active:
        return 1
    return math.prod(trips[d] for d in order[: max(active)] if d not in relevant)


def block(layer: Layer, mapping: Mapping, operand: Operand) -> dict[str, int]:
    """The extent of ``operand``'s resident block along each loop: the tile, or the loop's
    whole extent where the loop sits inside the operand's level."""
    inside = mapping.inside(operand)
    return {d: extent if d in inside else getattr(mapping.tiling, d) for d, extent in layer.dims.items()}


@dataclass(frozen=True)
class OnChip:
    """Which of a layer's tensors stay on chip between units (their DRAM transfers, and the
    exposed bits of those, are not counted; their tiles still pass through the layer's own
    blocks): how many of its input tensors, its weights when they are another layer's output,
    and its output (its final values; partial sums still spill)."""

    inputs: int = 0
    weights: bool = False
    output: bool = False

    @classmethod
    def of(cls, layer: Layer, kept: frozenset[str]) -> OnChip:
        """Which of ``layer``'s tensors (run alone) are among the ``kept`` ones."""
        return cls(sum(x in kept for x in layer.inputs), layer.weight_from in kept, layer.name in kept)

    def less(self, layer: Layer, full: Traffic) -> Traffic:
        """``full`` (bits or bursts, by kind) less the transfers of these tensors: each input
        tensor moves an equal share; partial sums still spill."""
        return replace(
            full,
            input_read=full.input_read // layer.input_tensors * (layer.input_tensors - self.inputs),
            weight_read=full.weight_read * (not self.weights),
            output_write=full.output_write * (not self.output),
        )


NOTHING = OnChip()


def traffic(layer: Layer, mapping: Mapping) -> Traffic:
    """The exact off-chip traffic of ``layer`` under ``mapping`` (closed form)."""
    order, levels, bits = mapping.order, mapping.levels, layer.precision
    trips = trip_counts(layer, mapping.tiling)
    rows = block(layer, mapping, Operand.INPUT)
    rows_sum, _ = halo_stats(layer.r, rows["r"], layer.kh, layer.sh, layer.ph, layer.h)
    cols_sum, _ = halo_stats(layer.c, rows["c"], layer.kw, layer.sw, layer.pw, layer.w)
    every_input_block = layer.groups * layer.ng * rows_sum * cols_sum * layer.input_tensors

    def passes(operand: Operand) -> int:
        return refetch(order[: levels.of(operand)], trips, RELEVANT[operand])

    visits = passes(Operand.OUTPUT)
    return Traffic(
        input_read=every_input_block * bits.input * passes(Operand.INPUT),
        weight_read=layer.weight_elements * bits.weight * passes(Operand.WEIGHT),
        output_write=layer.output_elements * bits.output,
        psum_read=(visits - 1) * layer.output_elements * bits.psum,
        psum_write=(visits - 1) * layer.output_elements * bits.psum,
    )


def exposed(layer: Layer, mapping: Mapping, on_chip: OnChip = NOTHING) -> int:
    """Bits a double-buffered run cannot overlap with compute: the first input and weight
    blocks (nothing computes before they arrive) and one output block at output width, the
    last store (nothing computes after it); none of them for the tensors ``on_chip``.

    The last block is charged as a whole block, like every other: an edge block is no
    larger, so this bounds the drain within one block's transfer, and it keeps the exposed
    bits growing with the tile sizes, as the footprint does.
    """
    bits = layer.precision
    i, w, o = (block(layer, mapping, op) for op in (Operand.INPUT, Operand.WEIGHT, Operand.OUTPUT))
    rows = needed_inputs(0, i["r"], layer.sh, layer.kh, layer.ph, layer.h)
    cols = needed_inputs(0, i["c"], layer.sw, layer.kw, layer.pw, layer.w)
    weights = w["m"] * w["n"] * layer.kh * layer.kw * bits.weight if layer.has_weights else 0
    inputs = i["n"] * rows * cols * bits.input * (layer.input_tensors - on_chip.inputs)
    output = o["m"] * o["r"] * o["c"] * bits.output * (not on_chip.output)
    return mapping.groups * (inputs + weights * (not on_chip.weights) + output)


def spans_groups(layer: Layer, mapping: Mapping) -> bool:
    """Whether ``mapping``'s tiles may span several groups of ``layer``: its m and n tiles
    are whole groups, so a block of groups is one range of channels of every tensor."""
    return mapping.tiling.m == layer.mg and mapping.tiling.n == layer.ng


def footprint(
    layer: Layer, mapping: Mapping, double_buffering: bool, accumulate_in_buffer: bool = False
) -> dict[Operand, int]:
    """Bits of buffer each operand's largest block occupies (doubled when double-buffered;
    times the groups each tile spans).

    The output block is held at partial-sum width when the reduction is split
    over several input-channel tiles, or always when the accumulators live in
    the buffer (``accumulate_in_buffer``).
    """
    bits = layer.precision
    i, w, o = (block(layer, mapping, op) for op in (Operand.INPUT, Operand.WEIGHT, Operand.OUTPUT))
    _, rows_max = halo_stats(layer.r, i["r"], layer.kh, layer.sh, layer.ph, layer.h)
    _, cols_max = halo_stats(layer.c, i["c"], layer.kw, layer.sw, layer.pw, layer.w)
    wide = accumulate_in_buffer or trip_count(layer.ng, mapping.tiling.n) > 1
    copies = 2 if double_buffering else 1
    copies *= mapping.groups
    weights = w["m"] * w["n"] * layer.kh * layer.kw * bits.weight if layer.has_weights else 0
    return {
        Operand.INPUT: copies * i["n"] * rows_max * cols_max * bits.input * layer.input_tensors,
        Operand.WEIGHT: copies * weights,
        Operand.OUTPUT: copies * o["m"] * o["r"] * o["c"] * (bits.psum if wide else bits.output),
    }
