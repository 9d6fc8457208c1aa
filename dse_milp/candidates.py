"""Candidate mappings of one layer, drawn from the complete integer tiling space.

For each loop only some tile sizes can matter. Every tile size ``t`` gives a trip
count ``T = ceil(D / t)``; the weights, the outputs and every refetch factor
depend on ``T`` alone, and among the tile sizes with the same ``T`` the smallest
has the smallest footprint. For the spatial loops the halo also counts, so
there we keep every tile size that is not dominated in (trip count, input rows
read, largest input tile, tile). That leaves O(sqrt(D)) sizes per loop.

For a fixed tiling the footprint does not depend on the loop order, so only the
orders of least traffic matter, and there are three (proof in
docs/traffic_model.md): weight-stationary ``mnrc``, output-stationary ``rcmn``
and input-stationary ``rcnm``. The grid of all tilings is evaluated at once
with numpy, and the layer keeps the mappings that fit the buffers and are not
dominated in (traffic, footprint).

Ties are broken in a stated order: between loop orders, the order above; between
tilings of equal traffic and footprint, the smallest tiles, compared in the
order ``(t_m, t_n, t_r, t_c)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from dse_milp.accelerator import Accelerator, Split
from dse_milp.traffic import Mapping, Tiling, halo_stats
from dse_milp.workload import Layer, Operand

STATIONARY_ORDERS = ("mnrc", "rcmn", "rcnm")
"""Weight-, output- and input-stationary: the orders of least traffic, in tie-breaking order."""

TRAFFIC_FIELDS = ("input_read", "weight_read", "output_write", "psum_read", "psum_write")
OPERANDS = (Operand.INPUT, Operand.WEIGHT, Operand.OUTPUT)


@dataclass(frozen=True)
class LoopOptions:
    """The tile sizes kept for one loop, with what each implies."""

    tile: np.ndarray
    trips: np.ndarray
    reads: np.ndarray
    """Input rows (or columns, or channels) read over all tiles of this loop."""
    largest: np.ndarray
    """Input rows (or columns, or channels) of the largest tile."""


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``points`` that no other row beats (all columns minimised).

    Of several identical rows only the first is kept.
    """
    keep = np.ones(len(points), dtype=bool)
    for i, p in enumerate(points):
        no_worse = np.all(points <= p, axis=1)
        better = np.any(points < p, axis=1) | (np.arange(len(points)) < i)
        if np.any(no_worse & better):
            keep[i] = False
    return keep


@functools.lru_cache(maxsize=4096)
def channel_options(extent: int) -> LoopOptions:
    """The smallest tile for each distinct trip count."""
    tile = np.unique(-(-extent // np.arange(1, extent + 1)))
    trips = -(-extent // tile)
    return LoopOptions(tile, trips, np.full(len(tile), extent), tile)


@functools.lru_cache(maxsize=4096)
def spatial_options(extent: int, kernel: int, stride: int, pad: int, size: int) -> LoopOptions:
    """Every tile size not dominated in (trips, input read, largest input tile, tile)."""
    tile = np.arange(1, extent + 1)
    trips = -(-extent // tile)
    stats = np.array([halo_stats(extent, int(t), kernel, stride, pad, size) for t in tile])
    keep = non_dominated(np.column_stack([trips, stats, tile]))
    return LoopOptions(tile[keep], trips[keep], stats[keep, 0], stats[keep, 1])


def loop_options(layer: Layer) -> dict[str, LoopOptions]:
    return {
        "m": channel_options(layer.mg),
        "n": channel_options(layer.ng),
        "r": spatial_options(layer.r, layer.kh, layer.sh, layer.ph, layer.h),
        "c": spatial_options(layer.c, layer.kw, layer.sw, layer.pw, layer.w),
    }


@dataclass(frozen=True)
class Candidates:
    """The candidate mappings of one layer, by increasing footprint (and so decreasing traffic)."""

    layer: Layer
    tiles: np.ndarray
    """(k, 4) tile sizes t_m, t_n, t_r, t_c."""
    orders: tuple[str, ...]
    traffic: np.ndarray
    """(k, 5) bits moved off chip, by ``TRAFFIC_FIELDS``."""
    footprint: np.ndarray
    """(k, 3) bits of buffer per operand (``OPERANDS``), doubled when double-buffered."""
    smallest_footprint: np.ndarray
    """(3,) per operand: the mapping of least total footprint, fitting or not."""

    def __len__(self) -> int:
        return len(self.orders)

    @property
    def total_bits(self) -> np.ndarray:
        return self.traffic.sum(axis=1)

    def mapping(self, i: int) -> Mapping:
        return Mapping(Tiling(*(int(t) for t in self.tiles[i])), self.orders[i])


def fits_buffers(footprint: np.ndarray, accelerator: Accelerator) -> np.ndarray:
    """Which rows of a (k, 3) per-operand ``footprint`` (bits) fit every buffer."""
    fits = np.ones(len(footprint), dtype=bool)
    for buffer in accelerator.buffers:
        fits &= footprint[:, [OPERANDS.index(op) for op in buffer.operands]].sum(axis=1) <= 8 * buffer.capacity_bytes
    return fits


def bank_counts(footprint: np.ndarray, split: Split) -> np.ndarray:
    """Banks of the input, weight and output buffers that (k, 3) per-operand bits occupy."""
    return -(-footprint // (8 * split.bank_bytes))


def split_front(traffic: np.ndarray, banks: np.ndarray, size: np.ndarray, *ties: np.ndarray) -> np.ndarray:
    """Positions of the points not dominated in (traffic, input banks, weight banks, output banks),
    by increasing size: the candidates a free split can need.

    Of the points with the same banks only the least traffic (then least size, then
    ``ties``, then position) can matter. It is kept if every point using no more
    banks of any buffer, and fewer of one, moves more traffic: a prefix minimum over
    the dense grid of bank counts finds those.
    """
    dims = tuple(banks.max(axis=0) + 1)
    cell = np.ravel_multi_index(tuple(banks.T), dims)
    least = np.full(int(np.prod(dims)), np.inf)
    np.minimum.at(least, cell, traffic)
    tied = np.flatnonzero(traffic == least[cell])
    order = tied[np.lexsort((tied, *(t[tied] for t in reversed(ties)), size[tied], cell[tied]))]
    best = order[np.concatenate([[True], cell[order][1:] != cell[order][:-1]])]
    grid = least.reshape(dims)
    prefix = grid
    for axis in range(3):
        prefix = np.minimum.accumulate(prefix, axis=axis)
    below = np.full(len(best), np.inf)  # the least traffic on strictly fewer banks
    for axis in range(3):
        at = banks[best].copy()
        at[:, axis] -= 1
        inside = at[:, axis] >= 0
        below[inside] = np.minimum(below[inside], prefix[tuple(at[inside].T)])
    kept = best[traffic[best] < below]
    return kept[np.lexsort((kept, size[kept]))]


def traffic_front(traffic: np.ndarray, size: np.ndarray, allowed: np.ndarray, *ties: np.ndarray) -> np.ndarray:
    """Indices of the allowed points not dominated in (traffic, size), by increasing size.

    Of points equal in both, the first by ``ties`` (arrays compared in order), then
    by index, is kept.
    """
    index = np.flatnonzero(allowed)
    index = index[np.lexsort((index, *(t[index] for t in reversed(ties)), traffic[index], size[index]))]
    best_before = np.minimum.accumulate(np.concatenate([[np.iinfo(np.int64).max], traffic[index]]))[:-1]
    return index[traffic[index] < best_before]


def _traffic_parts(layer: Layer, trips: dict[str, np.ndarray], reads: dict[str, np.ndarray]) -> list[tuple]:
    """Traffic by ``TRAFFIC_FIELDS`` under each of ``STATIONARY_ORDERS``.

    ``trips`` and ``reads`` hold the options of each loop as arrays that
    broadcast together: the whole grid, or the few tilings picked from it.
    """
    bits = layer.precision
    inputs = layer.groups * layer.ng * reads["r"] * reads["c"] * bits.input * layer.input_tensors
    weights = layer.weight_elements * bits.weight
    outputs = layer.output_elements * bits.output
    psums = layer.output_elements * bits.psum
    spatial = trips["r"] * trips["c"]
    # (input multiplier, weight multiplier, output visits) of each stationary order
    multipliers = ((trips["m"], 1, trips["n"]), (trips["m"], spatial, 1), (1, spatial, trips["n"]))
    return [
        (inputs * mi, weights * mw, outputs, (visits - 1) * psums, (visits - 1) * psums)
        for mi, mw, visits in multipliers
    ]


def _footprint_parts(
    layer: Layer, tile: dict[str, np.ndarray], largest: dict[str, np.ndarray], trips_n: np.ndarray, copies: int
) -> tuple:
    """Bits of buffer per operand (``OPERANDS``), for arrays that broadcast together."""
    bits = layer.precision
    out_width = np.where(trips_n > 1, bits.psum, bits.output)
    weight = layer.kh * layer.kw * bits.weight if layer.has_weights else 0
    return (
        copies * tile["n"] * largest["r"] * largest["c"] * bits.input * layer.input_tensors,
        copies * tile["m"] * tile["n"] * weight,
        copies * (tile["m"] * out_width) * (tile["r"] * tile["c"]),
    )


def generate(layer: Layer, accelerator: Accelerator) -> Candidates:
    """Every mapping of ``layer`` that fits the buffers and is not dominated in (traffic, footprint).

    Layers of the same shape (repeated blocks) share one generation.
    """
    shape = replace(layer, name="", inputs=("",) * len(layer.inputs), weight_from=None)
    return replace(_generate(shape, accelerator), layer=layer)


def _option_values(options: dict[str, LoopOptions], field: str, pick: tuple | None = None) -> dict[str, np.ndarray]:
    """One field of every loop's options: shaped to broadcast over the (m, n, r, c) grid, or,
    with ``pick``, at the grid points it lists."""
    out = {}
    for axis, d in enumerate("mnrc"):
        column = getattr(options[d], field).astype(np.int64)
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        out[d] = column.reshape(shape) if pick is None else column[pick[axis]]
    return out


def _fits_grid(per_operand: tuple, accelerator: Accelerator) -> np.ndarray:
    """Which points of the grid fit every buffer, from footprints per operand that broadcast."""
    fits = np.ones(np.broadcast_shapes(*(np.shape(part) for part in per_operand)), dtype=bool)
    for buffer in accelerator.buffers:
        fits &= sum(per_operand[OPERANDS.index(op)] for op in buffer.operands) <= 8 * buffer.capacity_bytes
    return fits


@functools.lru_cache(maxsize=1024)
def _generate(layer: Layer, accelerator: Accelerator) -> Candidates:
    options = loop_options(layer)
    copies = 2 if accelerator.double_buffering else 1

    def values(field: str, pick: tuple | None = None) -> dict[str, np.ndarray]:
        return _option_values(options, field, pick)

    # The whole grid: least traffic over the orders, and footprint.
    trips = values("trips")
    total = functools.reduce(np.minimum, (sum(parts) for parts in _traffic_parts(layer, trips, values("reads"))))
    per_operand = _footprint_parts(layer, values("tile"), values("largest"), trips["n"], copies)
    size = sum(per_operand)
    total, size = np.broadcast_arrays(total, size)
    fits = np.broadcast_to(_fits_grid(per_operand, accelerator), size.shape)

    # Keep the fitting points not dominated in (traffic, footprint), or, when the split is
    # free, in (traffic, banks of each buffer).
    grid = tuple(len(options[d].tile) for d in "mnrc")
    total, size = total.ravel(), size.ravel()
    if accelerator.split is None:
        index = traffic_front(total, size, fits.ravel())
    else:
        index = np.flatnonzero(fits.ravel())
        pick = np.unravel_index(index, grid)
        parts = _footprint_parts(
            layer, values("tile", pick), values("largest", pick), values("trips", pick)["n"], copies
        )
        banks = bank_counts(np.stack([np.broadcast_to(f, len(index)) for f in parts], axis=1), accelerator.split)
        index = index[banks.sum(axis=1) <= accelerator.split.banks]
        banks = banks[banks.sum(axis=1) <= accelerator.split.banks]
        index = index[split_front(total[index], banks, size[index])] if len(index) else index

    # Their loop orders and traffic by kind, and the mapping of least footprint.
    pick = np.unravel_index(np.append(index, np.argmin(size)), grid)
    trips, tile = values("trips", pick), values("tile", pick)
    parts = _traffic_parts(layer, trips, values("reads", pick))
    order = np.argmin(np.stack([np.broadcast_to(sum(p), len(pick[0])) for p in parts]), axis=0)
    traffic = np.stack([np.choose(order, [p[f] for p in parts]) for f in range(len(TRAFFIC_FIELDS))], axis=1)
    per_operand = _footprint_parts(layer, tile, values("largest", pick), trips["n"], copies)
    footprint = np.stack([np.broadcast_to(f, len(order)) for f in per_operand], axis=1)
    tiles = np.stack([tile[d] for d in "mnrc"], axis=1)
    return Candidates(
        layer=layer,
        tiles=tiles[:-1],
        orders=tuple(STATIONARY_ORDERS[i] for i in order[:-1]),
        traffic=traffic[:-1],
        footprint=footprint[:-1],
        smallest_footprint=footprint[-1],
    )


def least_traffic_for_order(layer: Layer, accelerator: Accelerator, order: str) -> int | None:
    """The least traffic (bits) of ``layer`` over every tiling that fits, with its loop order
    fixed to ``order``: a fixed-dataflow baseline. None if no tiling fits.

    The tile options are those of ``loop_options`` (their reduction does not depend
    on the order); each operand's refetch factor follows ``dse_milp.traffic.refetch``
    with loops of one trip left out.
    """
    options = loop_options(layer)
    shape = [len(options[d].tile) for d in "mnrc"]
    trips = _option_values(options, "trips")

    def refetch(relevant: str) -> np.ndarray:
        inner = -np.ones(shape, dtype=np.int64)  # position of the innermost relevant loop with trips
        for d in relevant:
            inner = np.maximum(inner, np.where(trips[d] > 1, order.index(d), -1))
        factor = np.ones(shape, dtype=np.int64)
        for d in "mnrc":
            if d not in relevant:
                factor = factor * np.where(order.index(d) < inner, trips[d], 1)
        return factor

    bits = layer.precision
    reads = _option_values(options, "reads")
    inputs = layer.groups * layer.ng * reads["r"] * reads["c"] * bits.input * layer.input_tensors
    visits = refetch("mrc")
    total = (
        inputs * refetch("nrc") + layer.weight_elements * bits.weight * refetch("mn")
        + layer.output_elements * bits.output + 2 * (visits - 1) * layer.output_elements * bits.psum
    )  # fmt: skip
    copies = 2 if accelerator.double_buffering else 1
    tile, largest = _option_values(options, "tile"), _option_values(options, "largest")
    parts = _footprint_parts(layer, tile, largest, trips["n"], copies)
    fits = np.broadcast_to(_fits_grid(parts, accelerator), shape)
    if accelerator.split is not None:
        fits = fits & (sum(parts) <= 8 * accelerator.split.total_bytes)
    return int(total[fits].min()) if fits.any() else None
