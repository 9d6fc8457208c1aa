"""Streamed weights in pieces of several output channels, where DRAM bursts make that pay.

A streamed (not resident) layer of a fused group reads its weights again for every tile.
One output channel at a time, each channel's slice of ``s`` bits is packed from a burst
boundary and moves ``ceil(s / B)`` bursts of ``B`` bits: a 3x3 depthwise slice of 9 bytes
moves a whole 64-byte burst. In pieces of ``q`` channels (the last piece holding the
rest) a pass moves ``floor(m / q) ceil(q s / B) + ceil((m mod q) s / B)`` bursts
(``dse_milp.bursts.piece_bursts``) and holds ``q s`` bits. In bits every ``q`` moves the
same, so the byte model streams one channel at a time; priced in bursts, each of its
candidates is also tried with every assignment of pieces to its streamed layers that is
not dominated in (bits held, bursts per pass) (``assignments``), where it still fits
(``with_pieces``). An assignment dominated in both can be replaced by the one dominating
it in any design, so no other assignment can be better.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.bursts import piece_bursts
from dse_milp.candidates import OPERANDS, fits_buffers
from dse_milp.fusion import GroupCandidates, weight_slice
from dse_milp.workload import Layer, Operand

Assignment = tuple[tuple[str, int], ...]
"""(layer, channels per piece) for the streamed layers read in pieces of more than one."""


@functools.lru_cache(maxsize=4096)
def layer_front(layer: Layer, burst_bytes: int) -> tuple[tuple[int, int], ...]:
    """(channels per piece, bursts per pass) of every piece size that moves fewer bursts than
    every smaller one: the sizes worth their footprint (it grows with the size)."""
    front: list[tuple[int, int]] = []
    for piece in range(1, layer.m + 1):
        bursts = piece_bursts(layer, piece, burst_bytes)
        if not front or bursts < front[-1][1]:
            front.append((piece, bursts))
    return tuple(front)


def assignments(layers: Sequence[Layer], burst_bytes: int, limit: int) -> list[tuple[int, int, Assignment]]:
    """(extra bits held, bursts saved per pass, assignment) of every assignment of pieces to
    ``layers`` (streamed) not dominated in (extra bits, saved bursts), holding at most
    ``limit`` extra bits, by increasing extra bits; the first is one channel for every layer.

    Built layer by layer, keeping the non-dominated partial sums (a sum of dominated parts
    is dominated)."""
    front: list[tuple[int, int, Assignment]] = [(0, 0, ())]
    for layer in layers:
        options = layer_front(layer, burst_bytes)
        slice_bits = weight_slice(layer) * layer.precision.weight
        one = options[0][1]
        merged = [
            (
                extra + (piece - 1) * slice_bits,
                saved + one - bursts,
                chosen + (((layer.name, piece),) if piece > 1 else ()),
            )
            for extra, saved, chosen in front
            for piece, bursts in options
            if extra + (piece - 1) * slice_bits <= limit
        ]
        merged.sort(key=lambda point: (point[0], -point[1]))
        front = []
        for point in merged:
            if not front or point[1] > front[-1][1]:
                front.append(point)
    return front


def with_pieces(cands: GroupCandidates, accelerator: Accelerator) -> tuple[GroupCandidates, np.ndarray, np.ndarray]:
    """``cands`` and, after each, its mapping with every other assignment of pieces that fits
    (``assignments``); and for every row, the candidate of ``cands`` it comes from and the
    bursts its pieces save over all its tiles. The weights' footprint grows by the extra bits
    (twice when double-buffered) and the exposed bits by them once (the first piece)."""
    copies = 2 if accelerator.double_buffering else 1
    limit = max(8 * b.capacity_bytes for b in accelerator.buffers) // copies
    weighted = [layer for layer in cands.segment.layers if layer.has_weights]
    fronts: dict[frozenset[str], list[tuple[int, int, Assignment]]] = {}
    rows: list[tuple[int, int, int, Assignment]] = []
    for i, mapping in enumerate(cands.mappings):
        if mapping.resident not in fronts:
            streamed = [layer for layer in weighted if layer.name not in mapping.resident]
            fronts[mapping.resident] = assignments(streamed, accelerator.burst_bytes, limit)
        rows += [(i, extra, saved, chosen) for extra, saved, chosen in fronts[mapping.resident]]
    base = np.array([r[0] for r in rows], dtype=np.int64)
    extra = np.array([r[1] for r in rows], dtype=np.int64)
    footprint = cands.footprint[base].copy()
    footprint[:, OPERANDS.index(Operand.WEIGHT)] += copies * extra
    keep = np.flatnonzero(fits_buffers(footprint, accelerator))
    saved = np.array([r[2] for r in rows], dtype=np.int64)[keep] * cands.tiles[base[keep]]
    mappings = tuple(replace(cands.mappings[rows[k][0]], pieces=rows[k][3]) for k in keep)
    expanded = GroupCandidates(
        segment=cands.segment,
        mappings=mappings,
        traffic=cands.traffic[base[keep]],
        footprint=footprint[keep],
        extra_macs=cands.extra_macs[base[keep]],
        tiles=cands.tiles[base[keep]],
        exposed=cands.exposed[base[keep]] + extra[keep],
    )
    return expanded, base[keep], saved
