"""Candidate mappings of one layer, drawn from the complete integer tiling space.

For each loop only some tile sizes can matter. Every tile size ``t`` gives a trip
count ``T = ceil(D / t)``; the weights, the outputs and every refetch factor
depend on ``T`` alone, and among the tile sizes with the same ``T`` the smallest
has the smallest footprint. For the spatial loops the halo also counts, so
there we keep every tile size that is not dominated in (trip count, input rows
read, largest input tile, tile). That leaves O(sqrt(D)) sizes per loop.

The loop order and the operand levels are reduced exactly to a few *patterns*
(``dse_milp.levels``; 51, or the three stationary orders when every operand
stays innermost). For each pattern the grid of tilings is evaluated at once
with numpy; a loop whose trip count the pattern's traffic ignores only needs
its smallest tile (least footprint) and its whole extent (fewest tiles, and
for the reduction loop, outputs at their own width). The layer keeps the
mappings that fit the buffers and are not dominated in (traffic, footprint), or,
when a double-buffered latency counts, in (rank of the costs, footprint): the
exposed bits grow with every tile, so every reduction above still holds.

Ties are broken in a stated order: fewer tiles, then the pattern order
(``dse_milp.levels.patterns``: the innermost levels first), then the smallest
tiles, compared in the order ``(t_m, t_n, t_r, t_c)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from dse_milp.accelerator import Accelerator, Split
from dse_milp.cost import Objective, objective_rank, operand_bytes_per_mac, ranked_by_objectives
from dse_milp.layouts import Layouts
from dse_milp.levels import OPERANDS, STATIONARY_ORDERS, Pattern, patterns
from dse_milp.traffic import NOTHING, Levels, Mapping, OnChip, Tiling, halo_stats, needed_inputs
from dse_milp.traffic import exposed as exact_exposed
from dse_milp.traffic import footprint as exact_footprint
from dse_milp.traffic import traffic as exact_traffic
from dse_milp.workload import Layer, Operand

__all__ = ["OPERANDS", "STATIONARY_ORDERS", "Candidates", "generate"]

TRAFFIC_FIELDS = ("input_read", "weight_read", "output_write", "psum_read", "psum_write")


@dataclass(frozen=True)
class LoopOptions:
    """The tile sizes kept for one loop, with what each implies."""

    tile: np.ndarray
    trips: np.ndarray
    reads: np.ndarray
    """Input rows (or columns, or channels) read over all tiles of this loop."""
    largest: np.ndarray
    """Input rows (or columns, or channels) of the largest tile."""
    first: np.ndarray
    """Input rows (or columns, or channels) of the first tile: it grows with the tile."""


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
    return LoopOptions(tile, trips, np.full(len(tile), extent), tile, tile)


@functools.lru_cache(maxsize=4096)
def spatial_options(extent: int, kernel: int, stride: int, pad: int, size: int) -> LoopOptions:
    """Every tile size not dominated in (trips, input read, largest input tile, tile)."""
    tile = np.arange(1, extent + 1)
    trips = -(-extent // tile)
    stats = np.array([halo_stats(extent, int(t), kernel, stride, pad, size) for t in tile])
    keep = non_dominated(np.column_stack([trips, stats, tile]))
    first = np.array([needed_inputs(0, int(t), stride, kernel, pad, size) for t in tile[keep]])
    return LoopOptions(tile[keep], trips[keep], stats[keep, 0], stats[keep, 1], first)


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
    levels: np.ndarray
    """(k, 3) each operand's level (``OPERANDS``)."""
    traffic: np.ndarray
    """(k, 5) bits moved off chip, by ``TRAFFIC_FIELDS``."""
    footprint: np.ndarray
    """(k, 3) bits of buffer per operand (``OPERANDS``), doubled when double-buffered."""
    exposed: np.ndarray
    """(k,) bits a double-buffered run cannot overlap with compute (``traffic.exposed``)."""
    smallest_footprint: np.ndarray
    """(3,) per operand: the mapping of least total footprint, fitting or not."""
    layouts: tuple[Layouts, ...] = ()
    """With DRAM bursts (``dse_milp.burst_candidates``): the layouts of the tensors each
    candidate reads and writes; ``traffic`` is then the bits its whole bursts move."""
    useful: np.ndarray | None = None
    """With DRAM bursts: (k, 5) the bits the traffic model counts; else None (``traffic``)."""
    groups: np.ndarray | None = None
    """With DRAM bursts: (k,) the groups each tile spans (``Mapping.groups``); else None (one)."""
    kept: tuple[frozenset[str], ...] = ()
    """With tensors kept on chip between units: the tensors each candidate keeps (it neither
    reads nor writes them); empty when no candidate keeps any."""

    def __len__(self) -> int:
        return len(self.orders)

    @property
    def total_bits(self) -> np.ndarray:
        return self.traffic.sum(axis=1)

    @property
    def useful_bits(self) -> np.ndarray:
        """(k,) the bits the traffic model counts, bursts or not."""
        return (self.traffic if self.useful is None else self.useful).sum(axis=1)

    @property
    def spans(self) -> np.ndarray:
        """(k,) the groups each candidate's tiles span."""
        return np.ones(len(self), dtype=np.int64) if self.groups is None else self.groups

    def mapping(self, i: int) -> Mapping:
        tiling = Tiling(*(int(t) for t in self.tiles[i]))
        return Mapping(tiling, self.orders[i], Levels(*map(int, self.levels[i])), int(self.spans[i]))

    def take(self, index: np.ndarray) -> Candidates:
        """The candidates at positions ``index``, in that order."""
        return replace(self, **rows_of(self, index, per_unit={"layer", "smallest_footprint"}))


def stacked(parts: Sequence[Any], per_unit: set[str]) -> Any:
    """Candidates of one unit (dataclasses of the same type, e.g. generated for different
    tensors kept on chip), one after the other: their per-candidate fields joined, the
    per-unit ones the first's."""
    first = parts[0]
    out: dict[str, object] = {}
    for f in fields(first):
        if f.name in per_unit:
            continue
        values = [getattr(p, f.name) for p in parts]
        if any(v is None for v in values):
            assert all(v is None for v in values), f.name
            continue
        out[f.name] = np.concatenate(values) if isinstance(values[0], np.ndarray) else sum(values, ())
    return replace(first, **out)


def rows_of(cands: object, index: np.ndarray, per_unit: set[str]) -> dict[str, object]:
    """Every per-candidate field of a dataclass of candidates (arrays and tuples, one item per
    candidate; empty tuples and None stay as they are), at positions ``index``."""
    out: dict[str, object] = {}
    for f in fields(cands):  # type: ignore[arg-type]
        value = getattr(cands, f.name)
        if f.name in per_unit or value is None or (isinstance(value, tuple) and not value):
            continue
        out[f.name] = value[index] if isinstance(value, np.ndarray) else tuple(value[i] for i in index)
    return out


def sized_by(accelerator: Accelerator) -> list[int]:
    """The operands (positions in ``OPERANDS``) whose bits a front orders candidates by: all
    of them; with tensors kept on chip and fixed buffers that are not one, those in the
    output's buffer, the only one kept tensors shrink (every candidate fits the others as
    they are, so a candidate no larger there and no worse replaces another anywhere)."""
    if accelerator.keep_tensors and accelerator.split is None and not accelerator.unified:
        return sorted(OPERANDS.index(op) for op in accelerator.buffer_of(Operand.OUTPUT).operands)
    return list(range(len(OPERANDS)))


def fits_buffers(footprint: np.ndarray, accelerator: Accelerator) -> np.ndarray:
    """Which rows of a (k, 3) per-operand ``footprint`` (bits) fit every buffer (and, under a
    free split, the banks)."""
    fits = np.ones(len(footprint), dtype=bool)
    for buffer in accelerator.buffers:
        fits &= footprint[:, [OPERANDS.index(op) for op in buffer.operands]].sum(axis=1) <= 8 * buffer.capacity_bytes
    if accelerator.split is not None:
        fits &= bank_counts(footprint, accelerator.split).sum(axis=1) <= accelerator.split.banks
    return fits


def bank_counts(footprint: np.ndarray, split: Split) -> np.ndarray:
    """Banks of the input, weight and output buffers that (k, 3) per-operand bits occupy."""
    return -(-footprint // (8 * split.bank_bytes))


def split_front(traffic: np.ndarray, banks: np.ndarray, size: np.ndarray, *ties: np.ndarray) -> np.ndarray:
    """Positions of the points not dominated in (traffic, input banks, weight banks, output banks),
    by increasing size: the candidates a free split can need.

    Of the points with the same banks only the least traffic (then least size, then
    ``ties``, then position) can matter. It is kept if every point using no more
    banks of any buffer, and fewer of one, moves more traffic (``contenders``).
    """
    if not len(traffic):
        return np.zeros(0, dtype=np.int64)
    equal = contenders(traffic, size, banks)
    cell = np.ravel_multi_index(tuple(banks[equal].T), tuple(banks.max(axis=0) + 1))
    equal, cell = (x[np.lexsort((equal, *(t[equal] for t in reversed(ties)), cell))] for x in (equal, cell))
    kept = equal[np.concatenate([[True], cell[1:] != cell[:-1]])] if len(equal) else equal
    return kept[np.lexsort((kept, size[kept]))]


def contenders(traffic: np.ndarray, size: np.ndarray, banks: np.ndarray | None = None) -> np.ndarray:
    """Indices of the points that ``traffic_front`` (or, given ``banks``, ``split_front``) keeps
    under some tie-break: equal in (traffic, size), or in (traffic, banks, size), to a kept one.

    With banks: a point has the least traffic of its bank counts (then the least size), and
    every point using no more banks of any buffer, and fewer of one, moves more traffic: a
    prefix minimum over the dense grid of bank counts finds those. Choosing among the
    contenders with the ties costs only these, not every point.
    """
    if not len(traffic):
        return np.flatnonzero(traffic)
    if banks is None:
        index = np.lexsort((traffic, size))
        best_before = np.minimum.accumulate(np.concatenate([[np.iinfo(np.int64).max], traffic[index]]))[:-1]
        front = index[traffic[index] < best_before]
        at = np.minimum(np.searchsorted(size[front], size), len(front) - 1)
        return np.flatnonzero((size[front][at] == size) & (traffic[front][at] == traffic))
    dims = tuple(banks.max(axis=0) + 1)
    cell = np.ravel_multi_index(tuple(banks.T), dims)
    least = np.full(int(np.prod(dims)), np.inf)
    np.minimum.at(least, cell, traffic)
    tied = traffic == least[cell]
    smallest = np.full(len(least), np.inf)
    np.minimum.at(smallest, cell[tied], size[tied])
    prefix = least.reshape(dims)
    for axis in range(3):
        prefix = np.minimum.accumulate(prefix, axis=axis)
    below = np.full(len(traffic), np.inf)
    for axis in range(3):
        at = banks.copy()
        at[:, axis] -= 1
        inside = at[:, axis] >= 0
        below[inside] = np.minimum(below[inside], prefix[tuple(at[inside].T)])
    return np.flatnonzero(tied & (size == smallest[cell]) & (traffic < below))


def traffic_front(traffic: np.ndarray, size: np.ndarray, allowed: np.ndarray, *ties: np.ndarray) -> np.ndarray:
    """Indices of the allowed points not dominated in (traffic, size), by increasing size.

    Of points equal in both, the first by ``ties`` (arrays compared in order), then
    by index, is kept.
    """
    index = np.flatnonzero(allowed)
    equal = index[contenders(traffic[index], size[index])]
    equal = equal[np.lexsort((equal, *(t[equal] for t in reversed(ties)), size[equal]))]
    return equal[np.concatenate([[True], size[equal][1:] != size[equal][:-1]])] if len(equal) else equal


def generate(layer: Layer, accelerator: Accelerator, objectives: Sequence[Objective] = (Objective.DRAM,),
             on_chip: OnChip = NOTHING) -> Candidates:  # fmt: skip
    """Every mapping of ``layer`` that fits the buffers and is not dominated in (traffic, footprint),
    or, where the costs depend on more than the traffic (``ranked_by_objectives``), in
    (costs under ``objectives`` then traffic, footprint); the traffic and exposed bits leave
    out the tensors ``on_chip`` (the front then differs: a mapping that reads its input
    often may be best once the input is on chip).

    Without ``accelerator.operand_levels`` every operand stays innermost (one tile each).
    Layers of the same shape (repeated blocks) share one generation.
    """
    ranking = tuple(objectives) if ranked_by_objectives(objectives, accelerator) else None
    return replace(_generate(shape_of(layer), accelerator, ranking, on_chip), layer=layer)


def _scores(layer: Layer, accelerator: Accelerator, ranking: tuple[Objective, ...] | None,
            total: np.ndarray, exposed: np.ndarray) -> np.ndarray:  # fmt: skip
    """What the fronts minimise: the traffic, or with a ``ranking``, the rank of the costs."""
    if ranking is None:
        return total
    operand_bytes = layer.macs * operand_bytes_per_mac(layer)
    return objective_rank(ranking, accelerator, total, layer.macs, operand_bytes, exposed)


def shape_of(layer: Layer) -> Layer:
    """``layer`` without its names, so that layers of the same shape share cached work."""
    return replace(layer, name="", inputs=("",) * len(layer.inputs), weight_from=None)


def _patterns_for(layer: Layer, accelerator: Accelerator) -> tuple[Pattern, ...]:
    """The patterns ``layer`` needs: its loops of extent 1 are left out of every set."""
    return patterns(accelerator.operand_levels, "".join(d for d, extent in layer.dims.items() if extent == 1))


def _fits_grid(per_operand: tuple, accelerator: Accelerator) -> np.ndarray:
    """Which points of the grid fit every buffer, from footprints per operand that broadcast."""
    fits = np.ones(np.broadcast_shapes(*(np.shape(part) for part in per_operand)), dtype=bool)
    for buffer in accelerator.buffers:
        fits &= sum(per_operand[OPERANDS.index(op)] for op in buffer.operands) <= 8 * buffer.capacity_bytes
    return fits


@dataclass(frozen=True)
class _Points:
    """Mappings of one pattern (or several) as parallel arrays."""

    pattern: np.ndarray
    traffic: np.ndarray
    """(k, 5) by ``TRAFFIC_FIELDS``."""
    footprint: np.ndarray
    """(k, 3) by ``OPERANDS``."""
    tiles: np.ndarray
    """(k, 4) tile sizes."""
    count: np.ndarray
    """Compute tiles of one group: the product of the trip counts."""
    exposed: np.ndarray
    """Bits a double-buffered run cannot overlap with compute."""

    def __getitem__(self, index: np.ndarray) -> _Points:
        return _Points(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.pattern)

    @staticmethod
    def concatenate(parts: list[_Points]) -> _Points:
        return _Points(*(np.concatenate([getattr(p, f) for p in parts]) for f in _Points.__dataclass_fields__))


def _evaluate(layer: Layer, pattern: Pattern, accelerator: Accelerator, v: dict[str, dict[str, np.ndarray]],
              on_chip: OnChip = NOTHING) -> tuple:  # fmt: skip
    """(traffic by ``TRAFFIC_FIELDS``, footprint by ``OPERANDS``, compute tiles, exposed bits)
    under ``pattern`` of the tilings whose per-loop option values ``v[field][loop]`` broadcast
    together; the tensors ``on_chip`` neither move nor expose anything."""
    full_i, full_w, full_o = pattern.full
    refetch_i, refetch_w, refetch_o = pattern.refetch
    tile, trips, bits = v["tile"], v["trips"], layer.precision

    def product(loops: str) -> np.ndarray:
        out = np.int64(1)
        for d in loops:
            out = out * trips[d]
        return out

    def extent(loops: str, d: str) -> np.ndarray:
        return np.int64(layer.dims[d]) if d in loops else tile[d]

    whole = {
        "r": np.int64(halo_stats(layer.r, layer.r, layer.kh, layer.sh, layer.ph, layer.h)[0]),
        "c": np.int64(halo_stats(layer.c, layer.c, layer.kw, layer.sw, layer.pw, layer.w)[0]),
    }
    reads = {d: whole[d] if d in full_i else v["reads"][d] for d in "rc"}
    largest = {d: whole[d] if d in full_i else v["largest"][d] for d in "rc"}
    first = {d: whole[d] if d in full_i else v["first"][d] for d in "rc"}
    visits = product(refetch_o)
    psums = (visits - 1) * (layer.output_elements * bits.psum)
    moved_inputs = layer.input_tensors - on_chip.inputs  # the input tensors read from DRAM
    traffic = (
        (layer.groups * layer.ng * bits.input * moved_inputs) * reads["r"] * reads["c"] * product(refetch_i),
        (layer.weight_elements * bits.weight * (not on_chip.weights)) * product(refetch_w),
        np.int64(layer.output_elements * bits.output * (not on_chip.output)),
        psums,
        psums,
    )
    copies = 2 if accelerator.double_buffering else 1
    out_width = bits.psum if accelerator.accumulate_in_buffer else np.where(trips["n"] > 1, bits.psum, bits.output)
    weight = layer.kh * layer.kw * bits.weight if layer.has_weights else 0
    input_block = (bits.input * layer.input_tensors) * extent(full_i, "n")
    weight_block = weight * extent(full_w, "m") * extent(full_w, "n")
    output_block = extent(full_o, "m") * extent(full_o, "r") * extent(full_o, "c")
    footprint = (
        copies * input_block * largest["r"] * largest["c"],
        copies * weight_block,
        copies * output_block * out_width,
    )
    exposed = (
        (bits.input * moved_inputs) * extent(full_i, "n") * first["r"] * first["c"]
        + weight_block * (not on_chip.weights)
        + output_block * bits.output * (not on_chip.output)
    )
    return traffic, footprint, product("mnrc"), exposed


def _matters(pattern: Pattern) -> set[str]:
    """The loops whose tile the pattern's traffic depends on: its refetch loops, and the spatial
    loops the input does not hold whole."""
    return set("".join(pattern.refetch)) | ({"r", "c"} - set(pattern.full[0]))


_OPTION_FIELDS = ("tile", "trips", "reads", "largest", "first")
"""The fields of ``LoopOptions`` that the patterns' traffic and footprint read."""


def _grid(options: dict[str, LoopOptions], pick: list[np.ndarray]) -> tuple[dict, dict, tuple[int, ...]]:
    """The options at the indices ``pick`` (one array per loop): as columns, shaped to broadcast
    over the (m, n, r, c) grid, and the grid's shape."""
    columns = {f: {d: getattr(options[d], f).astype(np.int64)[p] for d, p in zip("mnrc", pick, strict=True)}
               for f in _OPTION_FIELDS}  # fmt: skip
    grid = {f: {d: c.reshape([-1 if i == a else 1 for i in range(4)]) for a, (d, c) in enumerate(col.items())}
            for f, col in columns.items()}  # fmt: skip
    return columns, grid, tuple(len(p) for p in pick)


def _fits(footprint: tuple, accelerator: Accelerator, shape: tuple[int, ...]) -> np.ndarray:
    """Which points of a grid fit every buffer (and, under a free split, the banks)."""
    fits = np.broadcast_to(_fits_grid(footprint, accelerator), shape)
    split = accelerator.split
    if split is not None:
        fits = fits & (sum(-(-part // (8 * split.bank_bytes)) for part in footprint) <= split.banks)
    return fits


_FEWEST_KEPT = 16
"""Mappings per pattern that ``fewest_tiles`` keeps, best first, to check exactly."""


Query = tuple[int, int | None, tuple[int, int, int] | None]
"""What ``fewest_tiles_of`` looks for: (bits moved, exposed bits at most or None, bits of
the input, weight and output blocks at most or None)."""


def fewest_tiles(
    layer: Layer, accelerator: Accelerator, bits: int, exposed_at_most: int | None = None
) -> Mapping | None:
    """Of the mappings of ``layer`` that fit, move exactly ``bits`` and expose at most
    ``exposed_at_most`` bits (when given), the one with the fewest tiles, then the first
    pattern, then the smallest tiles; None if there is none (``fewest_tiles_of``)."""
    return fewest_tiles_of(layer, accelerator, ((bits, exposed_at_most, None),))[0]


def fewest_tiles_of(layer: Layer, accelerator: Accelerator, queries: Sequence[Query]) -> tuple[Mapping | None, ...]:
    """``fewest_tiles`` of each query, all found in one pass over the patterns: what repeated
    calls would find, in a fraction of the time. A query's third part bounds each operand's
    block as well (under a free split: no more banks of any buffer than a candidate uses)."""
    return _fewest_tiles(shape_of(layer), accelerator, tuple(queries))


@functools.lru_cache(maxsize=1024)
def _fewest_tiles(layer: Layer, accelerator: Accelerator, queries: tuple[Query, ...]) -> tuple[Mapping | None, ...]:
    """The candidates keep the smallest footprint of each traffic (what a program needs), which
    often means tiles of one element; once a solution has fixed each unit's traffic and the
    buffers, this picks the coarsest mapping that costs the same. Per pattern, only the tiles
    whose traffic is one of the queries' are expanded over the loops the traffic ignores.
    """
    options = loop_options(layer)
    shapes = _patterns_for(layer, accelerator)
    wanted = np.unique([query[0] for query in queries]).astype(np.int64)
    # per query, (tiles, pattern, tile m, n, r, c) of its pattern's best few
    found: list[list[tuple[int, ...]]] = [[] for _ in queries]
    for index, pattern in enumerate(shapes):
        # the traffic depends only on the loops that matter: find those tiles that give a wanted traffic
        matters = _matters(pattern)
        pick = [np.arange(len(options[d].tile)) if d in matters else np.array([0]) for d in "mnrc"]
        columns, grid, shape = _grid(options, pick)
        total = np.broadcast_to(sum(_evaluate(layer, pattern, accelerator, grid)[0]), shape).ravel()
        hits = np.flatnonzero(np.isin(total, wanted))
        others = math.prod(len(options[d].tile) for d in "mnrc" if d not in matters)
        step = max(1, _EXPANDED // others)
        for start in range(0, len(hits), step):  # in chunks of at most ``_EXPANDED`` points
            points = _expand(layer, pattern, accelerator, options, matters, columns, shape, hits[start : start + step])
            _keep_best(points, queries, index, found)
    # A pattern's count assumes every trip count above 1; where one is 1 the mapping may move
    # less than the pattern says (the pattern of the mapping is then another one, which has it
    # too). Only a mapping whose exact traffic is the query's is taken.
    return tuple(_first_exact(layer, accelerator, shapes, found[q], *queries[q]) for q in range(len(queries)))


_EXPANDED = 1 << 19
"""Points of a pattern's grid that ``fewest_tiles_of`` evaluates at once."""


def _expand(layer: Layer, pattern: Pattern, accelerator: Accelerator, options: dict[str, LoopOptions],
            matters: set[str], columns: dict, shape: tuple[int, ...],
            hits: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
    """Every tile of the loops the traffic ignores, at each of the ``hits`` (flat indices of
    the grid of the loops that matter): (traffic, exposed bits, input, weight and output
    block bits, tiles, tile m, n, r, c) of those that fit."""
    coords = np.unravel_index(hits, shape)
    values: dict[str, dict[str, np.ndarray]] = {}
    for field in _OPTION_FIELDS:  # axis 0 the hit, axes 1-4 the loops
        values[field] = {}
        for a, d in enumerate("mnrc"):
            at = [1] * 5
            if d in matters:
                at[0] = -1
                values[field][d] = columns[field][d][coords[a]].reshape(at)
            else:
                at[1 + a] = -1
                values[field][d] = getattr(options[d], field).astype(np.int64).reshape(at)
    traffic, footprint, _, exposed = _evaluate(layer, pattern, accelerator, values)
    wide = np.broadcast_shapes(*(np.shape(v) for field in values.values() for v in field.values()))
    ok = np.flatnonzero(_fits(footprint, accelerator, wide))
    where = np.unravel_index(ok, wide)
    axis = {d: 0 if d in matters else 1 + a for a, d in enumerate("mnrc")}
    tiles = [values["tile"][d].ravel()[where[axis[d]]] for d in "mnrc"]
    count = math.prod(values["trips"][d].ravel()[where[axis[d]]] for d in "mnrc")
    flat = (np.broadcast_to(x, wide).ravel()[ok] for x in (sum(traffic), exposed, *footprint))
    return (*flat, count, *tiles)


def _keep_best(points: tuple[np.ndarray, ...], queries: Sequence[Query], index: int,
               found: list[list[tuple[int, ...]]]) -> None:  # fmt: skip
    """Add to each query's ``found`` the pattern's ``_FEWEST_KEPT`` best points that answer it:
    its traffic, no more exposed bits nor block bits than its bounds, fewest tiles, then
    smallest tiles."""
    total, exposed, held_in, held_weight, held_out, count, *tiles = points
    # the tiles as one key where it fits, ordered as (m, n, r, c) lexicographically
    extents = [int(t.max(initial=0)) + 1 for t in tiles]
    keys = [np.ravel_multi_index(tiles, extents)] if math.prod(extents) < 1 << 62 else tiles[::-1]
    order = np.lexsort((*keys, count, total))
    total, exposed, count, tiles = total[order], exposed[order], count[order], [t[order] for t in tiles]
    held = np.column_stack([held_in, held_weight, held_out])[order]
    wanted = np.array([query[0] for query in queries], dtype=np.int64)
    lows, highs = np.searchsorted(total, wanted), np.searchsorted(total, wanted + 1)
    for q in np.flatnonzero(highs > lows).tolist():
        _, bound, most = queries[q]
        at = np.arange(lows[q], highs[q])
        if bound is not None:
            at = at[exposed[at] <= bound]
        if most is not None:
            at = at[np.all(held[at] <= np.array(most), axis=1)]
        at = at[:_FEWEST_KEPT]
        found[q] += zip(count[at].tolist(), [index] * len(at), *(t[at].tolist() for t in tiles), strict=True)


def _first_exact(layer: Layer, accelerator: Accelerator, shapes: tuple[Pattern, ...],
                 found: list[tuple[int, ...]], bits: int, exposed_at_most: int | None,
                 held_at_most: tuple[int, int, int] | None) -> Mapping | None:  # fmt: skip
    """The first of ``found`` (in its order) whose exact traffic is ``bits``, which exposes at
    most ``exposed_at_most`` bits and whose blocks hold at most ``held_at_most`` bits."""
    for key in sorted(found):
        pattern, tiling = shapes[key[1]], Tiling(*key[2:])
        # an operand whose level has only loops of one trip inside it holds one tile: say innermost
        trips = {d: -(-extent // getattr(tiling, d)) for d, extent in layer.dims.items()}
        levels = Levels(
            *(4 if all(trips[d] == 1 for d in pattern.order[level:]) else level for level in pattern.levels)
        )
        mapping = Mapping(tiling, pattern.order, levels)
        if (
            exact_traffic(layer, mapping).total == bits
            and (exposed_at_most is None or exact_exposed(layer, mapping) <= exposed_at_most)
            and (held_at_most is None or _held_within(layer, accelerator, mapping, held_at_most))
        ):
            return mapping
    return None


def _held_within(layer: Layer, accelerator: Accelerator, mapping: Mapping, most: tuple[int, int, int]) -> bool:
    held = exact_footprint(layer, mapping, accelerator.double_buffering, accelerator.accumulate_in_buffer)
    return all(held[op] <= limit for op, limit in zip(OPERANDS, most, strict=True))


def _pattern_front(layer: Layer, options: dict[str, LoopOptions], pattern: Pattern, index: int,
                   accelerator: Accelerator, ranking: tuple[Objective, ...] | None,
                   so_far: _Points | None = None, on_chip: OnChip = NOTHING) -> _Points:  # fmt: skip
    """The tilings that fit and are not dominated under ``pattern`` (see ``_front``).

    A loop the pattern's traffic ignores (not a refetch loop, and for a spatial loop,
    full for the input) keeps only its smallest tile and its whole extent: the traffic
    does not change along it, and every footprint factor is the tile or a constant,
    except the output's width, which drops when the reduction is not split. The exposed bits
    grow with every tile, so the smallest tile has the fewest of those too.
    """
    matters = _matters(pattern)
    pick = [
        np.arange(len(options[d].tile)) if d in matters else np.unique([0, len(options[d].tile) - 1]) for d in "mnrc"
    ]
    columns, grid, shape = _grid(options, pick)
    traffic, footprint, _, exposed = _evaluate(layer, pattern, accelerator, grid, on_chip)
    fits = _fits(footprint, accelerator, shape)
    split = accelerator.split
    at = np.flatnonzero(fits)
    total = np.broadcast_to(sum(traffic), shape).ravel()[at]
    size = np.broadcast_to(sum(footprint[i] for i in sized_by(accelerator)), shape).ravel()[at]
    hidden = np.broadcast_to(exposed, shape).ravel()[at]
    banks = None
    if split is not None:
        banks = bank_counts(np.stack([np.broadcast_to(f, shape).ravel()[at] for f in footprint], 1), split)
    if so_far is not None and len(so_far) and banks is None:  # drop what the front so far beats
        front_size = so_far.footprint[:, sized_by(accelerator)].sum(axis=1)
        front_score, score = so_far.traffic.sum(axis=1), total
        if ranking is not None:  # ranks compare only within one ranking: rank both sets together
            both = _scores(layer, accelerator, ranking, np.concatenate([front_score, total]),
                           np.concatenate([so_far.exposed, hidden]))  # fmt: skip
            front_score, score = both[: len(so_far)], both[len(so_far) :]
        j = np.searchsorted(front_size, size, side="right") - 1
        beaten = (j >= 0) & (
            (front_score[j] < score) | ((front_score[j] == score) & (front_size[np.maximum(j, 0)] < size))
        )
        at, total, size, score = at[~beaten], total[~beaten], size[~beaten], score[~beaten]
    else:
        score = _scores(layer, accelerator, ranking, total, hidden)
    keep = contenders(score, size, banks)
    at, total = at[keep], total[keep]
    coords = np.unravel_index(at, shape)
    point = {f: {d: c[coords[a]] for a, (d, c) in enumerate(col.items())} for f, col in columns.items()}
    traffic, footprint, count, exposed = _evaluate(layer, pattern, accelerator, point, on_chip)
    k = len(at)
    points = _Points(
        pattern=np.full(k, index),
        traffic=np.stack([np.broadcast_to(t, k) for t in traffic], axis=1),
        footprint=np.stack([np.broadcast_to(f, k) for f in footprint], axis=1),
        tiles=np.stack([point["tile"][d] for d in "mnrc"], axis=1),
        count=np.broadcast_to(count, k),
        exposed=np.broadcast_to(exposed, k),
    )
    assert np.array_equal(points.traffic.sum(axis=1), total)
    return _front(layer, points, accelerator, ranking)


def _front(layer: Layer, points: _Points, accelerator: Accelerator, ranking: tuple[Objective, ...] | None) -> _Points:
    """The points (all fitting) not dominated in (traffic, footprint), or, when the split is
    free, in (traffic, banks of each buffer); with a ``ranking``, the rank of the costs takes
    the traffic's place. Ties broken as the module says."""
    if not len(points):
        return points
    score = _scores(layer, accelerator, ranking, points.traffic.sum(axis=1), points.exposed)
    size = points.footprint[:, sized_by(accelerator)].sum(axis=1)
    ties = (points.count, points.pattern, *points.tiles.T)
    if accelerator.split is None:
        return points[traffic_front(score, size, np.ones(len(score), dtype=bool), *ties)]
    return points[split_front(score, bank_counts(points.footprint, accelerator.split), size, *ties)]


@functools.lru_cache(maxsize=1024)
def _generate(layer: Layer, accelerator: Accelerator, ranking: tuple[Objective, ...] | None,
              on_chip: OnChip = NOTHING) -> Candidates:  # fmt: skip
    options = loop_options(layer)
    shapes = _patterns_for(layer, accelerator)
    kept: _Points | None = None
    for i, pattern in enumerate(shapes):
        found = _pattern_front(layer, options, pattern, i, accelerator, ranking, kept, on_chip)
        kept = found if kept is None else _front(layer, _Points.concatenate([kept, found]), accelerator, ranking)
    assert kept is not None
    # the mapping of least footprint, fitting or not: every operand innermost, every tile 1
    ones, _, _ = _grid(options, [np.array([0])] * 4)
    smallest = np.array([np.broadcast_to(f, 1)[0] for f in _evaluate(layer, shapes[0], accelerator, ones)[1]])
    return Candidates(
        layer=layer,
        tiles=kept.tiles,
        orders=tuple(shapes[i].order for i in kept.pattern),
        levels=np.array([tuple(shapes[i].levels) for i in kept.pattern], dtype=np.int64).reshape(-1, 3),
        traffic=kept.traffic,
        footprint=kept.footprint,
        exposed=kept.exposed,
        smallest_footprint=smallest,
    )


def least_traffic_for_order(layer: Layer, accelerator: Accelerator, order: str) -> int | None:
    """The least traffic (bits) of ``layer`` over every tiling that fits, with its loop order
    fixed to ``order``: a fixed-dataflow baseline. None if no tiling fits.

    The tile options are those of ``loop_options`` (their reduction does not depend
    on the order); each operand's refetch factor follows ``dse_milp.traffic.refetch``
    with loops of one trip left out.
    """
    options = loop_options(layer)
    _, grid, shape = _grid(options, [np.arange(len(options[d].tile)) for d in "mnrc"])
    trips = grid["trips"]

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
    reads = grid["reads"]
    inputs = layer.groups * layer.ng * reads["r"] * reads["c"] * bits.input * layer.input_tensors
    visits = refetch("mrc")
    total = (
        inputs * refetch("nrc") + layer.weight_elements * bits.weight * refetch("mn")
        + layer.output_elements * bits.output + 2 * (visits - 1) * layer.output_elements * bits.psum
    )  # fmt: skip
    parts = _evaluate(layer, patterns(per_operand=False)[0], accelerator, grid)[1]  # every operand innermost
    fits = np.broadcast_to(_fits_grid(parts, accelerator), shape)
    if accelerator.split is not None:
        fits = fits & (sum(parts) <= 8 * accelerator.split.total_bytes)
    return int(total[fits].min()) if fits.any() else None
