"""A direct, tile-by-tile simulation of one layer's loop nest.

It shares nothing with the closed forms in ``dse_milp.traffic`` beyond the
definitions of the model: it walks every group and every tile iteration in the
given order, keeps one resident tile per operand, collects the input rows each
tile needs as an explicit set, and counts every transfer. Tests compare it with
the closed forms; it is far too slow for real layers.
"""

from __future__ import annotations

import itertools
from collections import Counter

from dse_milp.traffic import Mapping, Traffic, tile_bounds
from dse_milp.workload import Layer, Operand


def _input_span(start: int, stop: int, stride: int, kernel: int, pad: int, size: int) -> int:
    rows = {o * stride - pad + k for o in range(start, stop) for k in range(kernel) if 0 <= o * stride - pad + k < size}
    return len(rows)


def simulate(layer: Layer, mapping: Mapping, double_buffering: bool = False) -> tuple[Traffic, dict[Operand, int]]:
    """Walk the nest; return its traffic and the largest tile of each operand (bits)."""
    bits = layer.precision
    tiles = {d: tile_bounds(extent, getattr(mapping.tiling, d)) for d, extent in layer.dims.items()}
    reduction_tiles = len(tiles["n"])
    copies = 2 if double_buffering else 1
    out_width = bits.psum if reduction_tiles > 1 else bits.output

    reads = Counter[str]()
    largest = dict.fromkeys(Operand, 0)
    resident: dict[Operand, tuple | None] = dict.fromkeys(Operand)
    done = Counter[tuple]()  # reduction tiles accumulated into each output tile

    def leave_output(key: tuple) -> None:
        size = len(range(*tiles["m"][key[1]])) * len(range(*tiles["r"][key[2]])) * len(range(*tiles["c"][key[3]]))
        if done[key] == reduction_tiles:
            reads["output_write"] += size * bits.output
        else:
            reads["psum_write"] += size * bits.psum

    for g in range(layer.groups):
        for index in itertools.product(*(range(len(tiles[d])) for d in mapping.order)):
            at = dict(zip(mapping.order, index, strict=True))
            (m0, m1), (n0, n1), (r0, r1), (c0, c1) = (tiles[d][at[d]] for d in "mnrc")

            key = (g, at["n"], at["r"], at["c"])
            if resident[Operand.INPUT] != key:
                resident[Operand.INPUT] = key
                rows = _input_span(r0, r1, layer.sh, layer.kh, layer.ph, layer.h)
                cols = _input_span(c0, c1, layer.sw, layer.kw, layer.pw, layer.w)
                size = (n1 - n0) * rows * cols * bits.input * layer.input_tensors
                reads["input_read"] += size
                largest[Operand.INPUT] = max(largest[Operand.INPUT], size)

            key = (g, at["m"], at["n"])
            if layer.has_weights and resident[Operand.WEIGHT] != key:
                resident[Operand.WEIGHT] = key
                size = (m1 - m0) * (n1 - n0) * layer.kh * layer.kw * bits.weight
                reads["weight_read"] += size
                largest[Operand.WEIGHT] = max(largest[Operand.WEIGHT], size)

            key = (g, at["m"], at["r"], at["c"])
            if resident[Operand.OUTPUT] != key:
                if resident[Operand.OUTPUT] is not None:
                    leave_output(resident[Operand.OUTPUT])
                resident[Operand.OUTPUT] = key
                size = (m1 - m0) * (r1 - r0) * (c1 - c0)
                if done[key] > 0:
                    reads["psum_read"] += size * bits.psum
                largest[Operand.OUTPUT] = max(largest[Operand.OUTPUT], size * out_width)
            done[key] += 1
    leave_output(resident[Operand.OUTPUT])

    traffic = Traffic(**reads)
    return traffic, {op: copies * size for op, size in largest.items()}
