"""The DRAM bursts of one pass over a tensor: every block of the pass at once.

A pass moves a tensor block by block. The blocks are the boxes of a product: one
range of channels (of a list of channel ranges), one set of rows (of a list of row
blocks) and one set of columns (of a list of column blocks), every combination once.
Each box costs the bursts its elements touch, each burst once
(``dse_milp.layouts.distinct_bursts``). Counted for all boxes together:

    bursts of a box = the bursts each of its runs touches, summed
                      - the pairs of runs, next to each other in address order,
                        whose boundary falls inside one burst

where a run is one line of the layout's innermost contiguous axis (a column range
of one row in NCHW, a channel range of one pixel in NHWC and NCHW<b>c), not merged
with the next even when they touch: a burst touched by k runs in a row is counted
k times and shared by k - 1 pairs, so the difference is the number of distinct
bursts. The runs of a box are the product of one item per axis (axes in address
order, outermost first); the next run of a box in address order moves one axis to
its next item in the same box and every axis inside it back to its first. Both sums
are numpy broadcasts over the items, with no loop over the boxes.

``dse_milp.simulate`` counts the same bursts from the element addresses of every
transfer, sharing none of this.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dse_milp.layouts import Layout, Span
from dse_milp.workload import Shape

_CHUNK = 1 << 22
"""Runs summed at once (bounds the memory of one broadcast)."""


@dataclass(frozen=True)
class _Axis:
    """The items of one axis of the runs: the box part each belongs to (items of a part
    sorted by address), and the element offset each adds to a run's start and to its end
    (equal, except on the axis along which the runs extend)."""

    part: np.ndarray
    start: np.ndarray
    stop: np.ndarray

    @staticmethod
    def of(parts: Sequence[Sequence[Span]], pitch: int, ranges: bool) -> _Axis:
        """An axis whose part ``p`` covers the index ranges ``parts[p]``: one item per range
        (``ranges``: the runs extend along this axis, pitch 1), or one per index."""
        items = [(p, a, b) if ranges else (p, i, i) for p, spans in enumerate(parts) for a, b in spans
                 for i in ([a] if ranges else range(a, b))]  # fmt: skip
        part, start, stop = np.array(items, dtype=np.int64).reshape(-1, 3).T
        if ranges:
            return _Axis(part, start, stop)
        return _Axis(part, start * pitch, stop * pitch)


def _bursts_between(start: np.ndarray, stop: np.ndarray, bits: int, burst_bits: int) -> np.ndarray:
    """Bursts an element range ``[start, stop)`` touches."""
    return (stop * bits - 1) // burst_bits - (start * bits) // burst_bits + 1


def _count(axes: list[_Axis], bits: int, burst_bits: int) -> int:
    """Distinct bursts of every box of the product of ``axes`` (see the module)."""
    if any(not len(a.part) for a in axes):  # a block that reads nothing (all padding)
        return 0
    depth = len(axes)

    def shaped(values: np.ndarray, axis: int) -> np.ndarray:
        return values.reshape([-1 if i == axis else 1 for i in range(depth)])

    total = 0
    # every run: chunks of the outermost axis keep the broadcast small
    inner = int(np.prod([len(a.part) for a in axes[1:]]))
    step = max(1, _CHUNK // max(inner, 1))
    for lo in range(0, len(axes[0].part), step):
        parts = [_Axis(*(x[lo : lo + step] for x in (axes[0].part, axes[0].start, axes[0].stop))), *axes[1:]]
        start = sum(shaped(a.start, i) for i, a in enumerate(parts))
        stop = sum(shaped(a.stop, i) for i, a in enumerate(parts))
        total += int(_bursts_between(start, stop, bits, burst_bits).sum())
    # the pairs of runs next to each other: axis j moves on within its part, inner axes restart
    for j, axis in enumerate(axes):
        moves = np.flatnonzero(axis.part[1:] == axis.part[:-1])
        if not len(moves):
            continue
        end = shaped(axis.stop[moves], j) + sum(shaped(a.stop, i) for i, a in enumerate(axes[:j]))
        begin = shaped(axis.start[moves + 1], j) + sum(shaped(a.start, i) for i, a in enumerate(axes[:j]))
        for i in range(j + 1, depth):
            a = axes[i]
            first = np.flatnonzero(np.concatenate([[True], a.part[1:] != a.part[:-1]]))
            last = np.concatenate([first[1:], [len(a.part)]]) - 1
            end = end + shaped(a.stop[last], i)
            begin = begin + shaped(a.start[first], i)
        total -= int(np.count_nonzero((end * bits - 1) // burst_bits == (begin * bits) // burst_bits))
    return total


def pass_bursts(layout: Layout, shape: Shape, bits: int, burst_bytes: int, channels: Sequence[Span],
                rows: Sequence[Sequence[Span]], cols: Sequence[Sequence[Span]]) -> int:  # fmt: skip
    """Bursts of every box of one pass: each range of ``channels`` with each row block of
    ``rows`` and each column block of ``cols`` (a block: sorted, disjoint index ranges)."""
    channel_parts = [[span] for span in channels]
    height, width = shape.height, shape.width
    if layout.order == "NHWC":
        axes = [
            _Axis.of(rows, width * shape.channels, False),
            _Axis.of(cols, shape.channels, False),
            _Axis.of(channel_parts, 1, True),
        ]
    elif not layout.block:
        axes = [
            _Axis.of(channel_parts, height * width, False),
            _Axis.of(rows, width, False),
            _Axis.of(cols, 1, True),
        ]
    else:
        b = layout.block
        blocks = [(p, k, max(c0, k * b), min(c1, k * b + b)) for p, (c0, c1) in enumerate(channels)
                  for k in range(c0 // b, -(-c1 // b))]  # fmt: skip
        part, k, c0, c1 = (np.array(x, dtype=np.int64) for x in zip(*blocks, strict=True))
        base = k * height * width * b
        axes = [
            _Axis(part, base + c0 - k * b, base + c1 - k * b),
            _Axis.of(rows, width * b, False),
            _Axis.of(cols, b, False),
        ]
    return _count(axes, bits, 8 * burst_bytes)


@functools.lru_cache(maxsize=1 << 14)
def tiled_pass_bursts(layout: Layout, shape: Shape, bits: int, burst_bytes: int, channels: tuple[Span, ...],
                      rows: tuple[tuple[Span, ...], ...], cols: tuple[tuple[Span, ...], ...]) -> int:  # fmt: skip
    """``pass_bursts``, remembered: candidates of a layer share most of their passes."""
    return pass_bursts(layout, shape, bits, burst_bytes, channels, rows, cols)
