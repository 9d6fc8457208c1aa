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
its next item in the same box and every axis inside it back to its first. The first sum
comes from each axis's quotients and the distribution of the residues of the runs'
starts and ends modulo the burst (``_floor_sum``); the second broadcasts the pairs over
the axes that tell them apart and counts the rest as residues (``_shared``). Neither
loops over the boxes or the runs.

``dse_milp.simulate`` counts the same bursts from the element addresses of every
transfer, sharing none of this.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dse_milp.layouts import Layout, Span
from dse_milp.workload import Shape


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


def _residues(values: Sequence[np.ndarray], period: int) -> np.ndarray:
    """How many items of the product of ``values`` (one array per axis) have each sum, modulo
    ``period``: the cyclic convolution of the axes' residue counts."""
    counts = np.zeros(period, dtype=np.int64)
    counts[0] = 1
    for v in values:
        both = np.convolve(counts, np.bincount(v % period, minlength=period))
        counts = both[:period] + np.concatenate([both[period:], np.zeros(2 * period - len(both), dtype=np.int64)])
    return counts


def _floor_sum(values: Sequence[np.ndarray], period: int) -> int:
    """Σ over the product of ``values`` of ⌊(sum of one item per axis) / period⌋, from each
    axis's quotients and the distribution of the sum of their residues."""
    sizes = [len(v) for v in values]
    runs = math.prod(sizes)
    total = sum(int((v // period).sum()) * (runs // n) for v, n in zip(values, sizes, strict=True))
    counts = np.ones(1, dtype=np.int64)
    for v in values:
        counts = np.convolve(counts, np.bincount(v % period, minlength=period))
    return total + int((counts * (np.arange(len(counts)) // period)).sum())


def _count(axes: list[_Axis], bits: int, burst_bits: int) -> int:
    """Distinct bursts of every box of the product of ``axes`` (see the module).

    Offsets are counted in units of gcd(bits, burst) bits, so a burst is ``period`` units
    and an element ``unit`` units; a run [s, e) touches bursts ⌊s/period⌋ to
    ⌊(e - 1)/period⌋, and its last unit is e - 1 because every burst boundary is a whole
    number of units. Summed over every run (``_floor_sum``), and for the pairs: ``_shared``.
    """
    if any(not len(a.part) for a in axes):  # a block that reads nothing (all padding)
        return 0
    step = math.gcd(bits, burst_bits)
    unit, period = bits // step, burst_bits // step
    starts = [a.start * unit for a in axes]
    ends = [a.stop * unit for a in axes]
    ends[0] = ends[0] - 1
    runs = math.prod(len(a.part) for a in axes)
    total = runs + _floor_sum(ends, period) - _floor_sum(starts, period)
    return total - sum(_shared(axes, j, unit, period) for j in range(len(axes)))


def _shared(axes: list[_Axis], j: int, unit: int, period: int) -> int:
    """The pairs of runs next to each other in address order where axis ``j`` moves on within
    its part (the axes inside it restart at their part's first item) whose boundary falls in
    one burst.

    An axis outside ``j`` that adds the same offset to a run's start and end (every axis but
    the one the runs extend along) moves both runs of a pair alike: only its residues count,
    and they are summed as a distribution. The rest is broadcast.
    """
    axis = axes[j]
    moves = np.flatnonzero(axis.part[1:] == axis.part[:-1])
    if not len(moves):
        return 0
    depth = len(axes)

    def shaped(values: np.ndarray, at: int) -> np.ndarray:
        return values.reshape([-1 if i == at else 1 for i in range(depth)])

    end = shaped(axis.stop[moves], j)
    begin = shaped(axis.start[moves + 1], j)
    offsets = []
    for i, a in enumerate(axes):
        if i < j and np.array_equal(a.start, a.stop):
            offsets.append(a.start * unit)
        elif i < j:
            end, begin = end + shaped(a.stop, i), begin + shaped(a.start, i)
        elif i > j:
            first = np.flatnonzero(np.concatenate([[True], a.part[1:] != a.part[:-1]]))
            last = np.concatenate([first[1:], [len(a.part)]]) - 1
            end, begin = end + shaped(a.stop[last], i), begin + shaped(a.start[first], i)
    end, begin = end * unit, begin * unit
    # with the outside offsets' residue r, the boundary is in one burst when
    # (r + end - 1) mod period + (begin - end) + 1 < period
    length = period - 1 - (begin - end)  # how many residues of (r + end - 1) qualify, from 0
    counts = _residues(offsets, period)
    cumulative = np.concatenate([[0], np.cumsum(np.concatenate([counts, counts]))])
    first = (-(end - 1)) % period
    hits = cumulative[first + np.clip(length, 0, period)] - cumulative[first]
    return int(np.broadcast_to(hits, np.broadcast_shapes(end.shape, begin.shape)).sum())


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
