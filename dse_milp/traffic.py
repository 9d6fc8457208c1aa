"""The exact off-chip traffic model of one layer's tile-loop nest (scalar reference).

This module is the contract, written out in ``docs/traffic_model.md``; the
vectorised candidate generator (``dse_milp.candidates``) evaluates the same
closed forms over whole tiling spaces, and ``dse_milp.simulate`` walks the loop
nest tile by tile to check them. All quantities are in **bits**.

In short, for a mapping (tile sizes ``t_m, t_n, t_r, t_c`` and a loop order):

- one tile of each operand is resident; a tile is read when the nest moves to a
  tile of that operand that is not resident, so an operand is read
  ``refetch(order, relevant dims)`` times over: the product of the trip counts of
  the loops it does not depend on that sit outside its innermost active loop;
- the input tile holds only the rows and columns the output tile needs
  (halo included, padding excluded);
- an output tile is written when it leaves; if it is visited again before its
  reduction is complete it is read back, at partial-sum width.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

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


@dataclass(frozen=True)
class Mapping:
    tiling: Tiling
    order: str
    """A permutation of ``mnrc``, outer to inner."""


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


def traffic(layer: Layer, mapping: Mapping) -> Traffic:
    """The exact off-chip traffic of ``layer`` under ``mapping`` (closed form)."""
    t, order, bits = mapping.tiling, mapping.order, layer.precision
    trips = trip_counts(layer, t)
    rows_sum, _ = halo_stats(layer.r, t.r, layer.kh, layer.sh, layer.ph, layer.h)
    cols_sum, _ = halo_stats(layer.c, t.c, layer.kw, layer.sw, layer.pw, layer.w)
    every_input_tile = layer.groups * layer.ng * rows_sum * cols_sum * layer.input_tensors
    visits = refetch(order, trips, RELEVANT[Operand.OUTPUT])
    return Traffic(
        input_read=every_input_tile * bits.input * refetch(order, trips, RELEVANT[Operand.INPUT]),
        weight_read=layer.weight_elements * bits.weight * refetch(order, trips, RELEVANT[Operand.WEIGHT]),
        output_write=layer.output_elements * bits.output,
        psum_read=(visits - 1) * layer.output_elements * bits.psum,
        psum_write=(visits - 1) * layer.output_elements * bits.psum,
    )


def footprint(layer: Layer, tiling: Tiling, double_buffering: bool) -> dict[Operand, int]:
    """Bits of buffer each operand's largest tile occupies (doubled when double-buffered).

    The output tile is held at partial-sum width when the reduction is split
    over several input-channel tiles.
    """
    bits = layer.precision
    _, rows_max = halo_stats(layer.r, tiling.r, layer.kh, layer.sh, layer.ph, layer.h)
    _, cols_max = halo_stats(layer.c, tiling.c, layer.kw, layer.sw, layer.pw, layer.w)
    split = trip_count(layer.ng, tiling.n) > 1
    copies = 2 if double_buffering else 1
    weights = tiling.m * tiling.n * layer.kh * layer.kw * bits.weight if layer.has_weights else 0
    return {
        Operand.INPUT: copies * tiling.n * rows_max * cols_max * bits.input * layer.input_tensors,
        Operand.WEIGHT: copies * weights,
        Operand.OUTPUT: copies * tiling.m * tiling.r * tiling.c * (bits.psum if split else bits.output),
    }
