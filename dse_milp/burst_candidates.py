"""Candidates priced in DRAM bursts, for each pair of layouts of the tensors they read and write.

When the accelerator declares a burst of more than a byte, DRAM moves whole bursts
(``dse_milp.bursts``), and what a mapping costs depends on the layouts of the tensors
it reads and writes. For every candidate the byte model keeps (``generate``,
``generate_group``: the mappings not dominated in bytes and footprint) and every
pair of (input, output) layouts, the bits of its whole bursts replace its bits; each
pair keeps the candidates not dominated in (moved bits, or the rank of the costs
under them, footprint), ties broken by fewer tiles, then the byte model's order.
The program then chooses one layout per tensor (``formulations.layouts``).

A fused group's candidates are also tried with their streamed weights read in larger
pieces (``dse_milp.pieces``), which only bursts can make worth their footprint.

The space is the byte model's candidates (and those pieces), priced exactly: a mapping
that moves more bytes than another of no larger footprint but fewer bursts is not among
them. The optimum is proven over this space, not over every tiling (docs/traffic_model.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import astuple, replace

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.bursts import group_bursts, input_bursts, output_bursts, weight_bursts
from dse_milp.candidates import (
    NOTHING,
    OPERANDS,
    TRAFFIC_FIELDS,
    Candidates,
    OnChip,
    Query,
    bank_counts,
    fewest_tiles_of,
    fits_buffers,
    generate,
    shape_of,
    sized_by,
    split_front,
    traffic_front,
)
from dse_milp.cost import Objective, objective_rank, operand_bytes_per_mac, ranked_by_objectives
from dse_milp.fusion import GroupCandidates
from dse_milp.layouts import NCHW, NHWC, Layout, Layouts
from dse_milp.pieces import with_pieces
from dse_milp.traffic import Mapping, Traffic, exposed, footprint, traffic
from dse_milp.workload import Layer

AUTO_LAYOUTS = (NCHW, NHWC, Layout("NCHW", 16))
"""What ``--layout auto`` chooses from: the two plain orders and the channel-blocked one
with 16 channels per block (TVM's NCHW16c; Ethos-U's NHCWB16 bricks are 16 channels)."""


def _front(accelerator: Accelerator, score: np.ndarray, footprint: np.ndarray, *ties: np.ndarray) -> np.ndarray:
    """Positions of the candidates not dominated in (score, footprint), or (score, banks)."""
    size = footprint[:, sized_by(accelerator)].sum(axis=1)
    if accelerator.split is None:
        return traffic_front(score, size, np.ones(len(score), dtype=bool), *ties)
    return split_front(score, bank_counts(footprint, accelerator.split), size, *ties)


def _bits(bursts: Traffic, accelerator: Accelerator) -> np.ndarray:
    return np.array(astuple(bursts), dtype=np.int64) * 8 * accelerator.burst_bytes


def pairs(layouts: Sequence[Layout]) -> tuple[Layouts, ...]:
    """Every (input, output) pair of ``layouts``."""
    return tuple(Layouts(x, y) for x in layouts for y in layouts)


def layer_in_bursts(layer: Layer, accelerator: Accelerator, objectives: Sequence[Objective],
                    choices: Sequence[Layouts], on_chip: OnChip = NOTHING) -> Candidates:  # fmt: skip
    """The candidates of ``layer`` (``generate``), and the coarsest mapping of each one's bytes
    (``with_coarsest``; not with tensors ``on_chip``, whose bytes it does not know), for each
    (input, output) pair of ``choices``, priced in bursts, each pair's front; the tensors
    ``on_chip`` move none. Layers of the same shape share the work."""
    priced = _layer_in_bursts(shape_of(layer), accelerator, tuple(objectives), tuple(choices), on_chip)
    return replace(priced, layer=layer)


@functools.lru_cache(maxsize=1024)
def _layer_in_bursts(layer: Layer, accelerator: Accelerator, objectives: tuple[Objective, ...],
                     choices: tuple[Layouts, ...], on_chip: OnChip = NOTHING) -> Candidates:  # fmt: skip
    cands = generate(layer, accelerator, objectives, on_chip)
    if on_chip == NOTHING:
        cands = with_coarsest(cands, accelerator, ranked_by_objectives(objectives, accelerator))
    cands = with_group_spans(cands, accelerator)
    layer, k = cands.layer, len(cands)
    burst = accelerator.burst_bytes
    mappings = [cands.mapping(i) for i in range(k)]
    weights = np.array([weight_bursts(layer, m, burst) for m in mappings], dtype=np.int64) * (not on_chip.weights)
    ins, outs = dict.fromkeys(p.input for p in choices), dict.fromkeys(p.output for p in choices)
    moved_inputs = layer.input_tensors - on_chip.inputs  # each input tensor moves the same bursts
    reads = {x: np.array([input_bursts(layer, m, x, burst) for m in mappings], dtype=np.int64)
             // layer.input_tensors * moved_inputs for x in ins}  # fmt: skip
    writes = {x: np.array([output_bursts(layer, m, x, burst) for m in mappings], dtype=np.int64).reshape(k, 2)
              for x in outs}  # fmt: skip
    if on_chip.output:  # the final values stay; partial sums still spill
        writes = {x: w * np.array([0, 1]) for x, w in writes.items()}
    dims = np.array([layer.mg, layer.ng, layer.r, layer.c])
    count = np.prod(-(-dims // cands.tiles), axis=1) * -(-layer.groups // cands.spans)
    ranking = tuple(objectives) if ranked_by_objectives(objectives, accelerator) else None
    operand_bytes = layer.macs * operand_bytes_per_mac(layer)
    parts = []
    for pair in choices:
        x, y = pair.input, pair.output
        bursts = np.column_stack([reads[x], weights, writes[y][:, 0], writes[y][:, 1], writes[y][:, 1]])
        moved = bursts * 8 * burst
        score = moved.sum(axis=1)
        if ranking is not None:
            score = objective_rank(ranking, accelerator, score, layer.macs, operand_bytes, cands.exposed)
        keep = _front(accelerator, score, cands.footprint, count, np.arange(k))
        parts.append((keep, moved[keep], pair))
    keep = np.concatenate([p[0] for p in parts])
    return Candidates(
        layer=layer,
        tiles=cands.tiles[keep],
        orders=tuple(cands.orders[i] for i in keep),
        levels=cands.levels[keep],
        traffic=np.concatenate([p[1] for p in parts]).reshape(-1, 5),
        footprint=cands.footprint[keep],
        exposed=cands.exposed[keep],
        smallest_footprint=cands.smallest_footprint,
        layouts=tuple(p[2] for p in parts for _ in p[0]),
        useful=cands.traffic[keep],
        groups=cands.spans[keep],
    )


def with_coarsest(cands: Candidates, accelerator: Accelerator, exposing: bool) -> Candidates:
    """``cands`` and, after them, for each one the mapping with the fewest tiles that fits and
    moves the same bytes (``fewest_tiles``; exposing no more bits when ``exposing``), where
    that is another mapping; under a free split also the one with the fewest tiles of those
    using no more banks of any buffer than the candidate, since the split the program
    chooses may have no room for the coarsest of all.

    The byte model keeps the smallest footprint of each traffic, often tiles of one pixel,
    whose short runs waste most of every burst; the coarsest mapping of the same bytes makes
    the longest runs the buffers allow.
    """
    layer = cands.layer
    known = {cands.mapping(i) for i in range(len(cands))}
    bounds = cands.exposed.tolist() if exposing else [None] * len(cands)
    queries: list[Query] = [(bits, bound, None) for bits, bound in zip(cands.total_bits.tolist(), bounds, strict=True)]
    if accelerator.split is not None:  # and within the banks of each buffer the candidate uses
        bank = 8 * accelerator.split.bank_bytes
        held = (bank_counts(cands.footprint, accelerator.split) * bank).tolist()
        queries += [(q[0], q[1], tuple(h)) for q, h in zip(queries, held, strict=True)]
    extra: list[Mapping] = []
    for coarse in fewest_tiles_of(layer, accelerator, tuple(queries)):
        if coarse is not None and coarse not in known:
            known.add(coarse)
            extra.append(coarse)
    if not extra:
        return cands
    double, wide = accelerator.double_buffering, accelerator.accumulate_in_buffer
    held = [footprint(layer, m, double, wide) for m in extra]
    return replace(
        cands,
        tiles=np.concatenate([cands.tiles, [astuple(m.tiling) for m in extra]]),
        orders=cands.orders + tuple(m.order for m in extra),
        levels=np.concatenate([cands.levels, [tuple(m.levels) for m in extra]]),
        traffic=np.concatenate([cands.traffic, [astuple(traffic(layer, m)) for m in extra]]),
        footprint=np.concatenate([cands.footprint, [[h[op] for op in OPERANDS] for h in held]]),
        exposed=np.concatenate([cands.exposed, [exposed(layer, m) for m in extra]]),
    )


def group_blocks(groups: int) -> tuple[int, ...]:
    """The blocks of more than one group a tile may span: for each number of blocks k, the
    largest that makes k, ``ceil(groups / k)`` (at most ``2 sqrt(groups)`` sizes)."""
    return tuple(sorted({-(-groups // k) for k in range(1, groups)} - {1}))


def with_group_spans(cands: Candidates, accelerator: Accelerator) -> Candidates:
    """``cands`` and, after them, each one whose tiles are whole groups run over blocks of
    every size of ``group_blocks`` that fits (``Mapping.groups``).

    In bits a block of groups moves what one group at a time moves, in a larger
    footprint, so the byte model never keeps one. In bursts a block of whole channel
    planes (NCHW) or of many channels per pixel (NHWC) makes longer runs: a depthwise
    layer's planes of 125 bytes straddle 128-byte bursts one channel at a time.
    """
    layer = cands.layer
    sizes = np.array(group_blocks(layer.groups), dtype=np.int64)
    whole = np.flatnonzero((cands.tiles[:, 0] == layer.mg) & (cands.tiles[:, 1] == layer.ng) & (cands.spans == 1))
    if not len(sizes) or not len(whole):
        return cands
    rows, spans = np.repeat(whole, len(sizes)), np.tile(sizes, len(whole))
    held = cands.footprint[rows] * spans[:, None]
    fits = fits_buffers(held, accelerator)
    rows, spans, held = rows[fits], spans[fits], held[fits]
    return replace(
        cands,
        tiles=np.concatenate([cands.tiles, cands.tiles[rows]]),
        orders=cands.orders + tuple(cands.orders[i] for i in rows),
        levels=np.concatenate([cands.levels, cands.levels[rows]]),
        traffic=np.concatenate([cands.traffic, cands.traffic[rows]]),
        footprint=np.concatenate([cands.footprint, held]),
        exposed=np.concatenate([cands.exposed, cands.exposed[rows] * spans]),
        groups=np.concatenate([cands.spans, spans]),
    )


def group_in_bursts(cands: GroupCandidates, accelerator: Accelerator, objectives: Sequence[Objective],
                    choices: Sequence[Layouts], kept: frozenset[str] = frozenset()) -> GroupCandidates:  # fmt: skip
    """``cands``, each also with its streamed weights in larger pieces where that fits
    (``dse_milp.pieces``), for each pair of ``choices`` (the tensors it reads, its output),
    priced in bursts (the tensors in ``kept`` stay on chip, as ``cands`` were generated),
    each pair's front; the fewest extra MACs, then the byte model's order (one channel per
    piece first), win ties."""
    k, segment = len(cands), cands.segment
    burst = accelerator.burst_bytes
    expanded, base, saved = with_pieces(cands, accelerator)
    macs, operand_bytes = expanded.work()
    extra = expanded.extra_macs.sum(axis=1)
    weight = TRAFFIC_FIELDS.index("weight_read")
    parts = []
    for pair in choices:
        plain = np.zeros((k, 5), dtype=np.int64)
        for i, mapping in enumerate(cands.mappings):
            plain[i] = _bits(sum(group_bursts(segment, mapping, pair, burst, kept).values(), Traffic()), accelerator)
        moved = plain[base]
        moved[:, weight] -= saved * 8 * burst
        score = objective_rank(objectives, accelerator, moved.sum(axis=1), macs, operand_bytes, expanded.exposed)
        keep = _front(accelerator, score, expanded.footprint, extra, np.arange(len(expanded)))
        parts.append((keep, moved[keep], pair))
    keep = np.concatenate([p[0] for p in parts])
    return GroupCandidates(
        segment=segment,
        mappings=tuple(expanded.mappings[i] for i in keep),
        traffic=np.concatenate([p[1] for p in parts]).reshape(-1, 5),
        footprint=expanded.footprint[keep],
        extra_macs=expanded.extra_macs[keep],
        tiles=expanded.tiles[keep],
        exposed=expanded.exposed[keep],
        layouts=tuple(p[2] for p in parts for _ in p[0]),
        useful=expanded.traffic[keep],
    )
