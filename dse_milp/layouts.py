"""Tensor layouts in DRAM, and the bursts one transfer touches.

A feature map (channels, height, width) is stored densely from an address aligned
to a burst, in one of three orders (outermost first):

- ``NCHW``: channel, row, column: a row of one channel is contiguous;
- ``NHWC``: row, column, channel: the channels of one pixel are contiguous;
- ``NCHW<b>c`` (channel-blocked, as TVM writes it; Ethos-U's NHCWB16 is close):
  channel block, row, column, then ``b`` channels; the last block is padded to
  ``b`` channels (the padding is never useful, but it is there).

A transfer moves a box of the tensor: a range of channels, a set of row ranges and
a set of column ranges (more than one when a strided layer skips rows or
columns). Its elements form contiguous runs of addresses; DRAM moves every burst
those runs touch, each once per transfer (``distinct_bursts``). With a burst of
one byte and whole-byte elements this is the byte count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dse_milp.workload import Shape

Span = tuple[int, int]
"""A half-open range of indices."""


@dataclass(frozen=True)
class Layout:
    order: str
    """``NCHW`` or ``NHWC``; a channel-blocked layout is ``NCHW`` with a ``block``."""
    block: int = 0
    """Channels per block of a channel-blocked layout (0: none)."""

    def __str__(self) -> str:
        return f"NCHW{self.block}c" if self.block else self.order

    @classmethod
    def parse(cls, text: str) -> Layout:
        """``NCHW``, ``NHWC`` or ``NCHW<b>c`` (any case); ValueError otherwise."""
        if text.upper() in ("NCHW", "NHWC"):
            return cls(text.upper())
        match = re.fullmatch(r"NCHW(\d{1,4})C", text.strip().upper())
        if match and 1 <= int(match.group(1)) <= 1024:
            return cls("NCHW", int(match.group(1)))
        raise ValueError(f"must be NCHW, NHWC or NCHW<b>c with 1 <= b <= 1024 (such as NCHW16c), got {text!r}")


NCHW = Layout("NCHW")
NHWC = Layout("NHWC")


def runs(layout: Layout, shape: Shape, channels: Sequence[Span], rows: Sequence[Span],
         cols: Sequence[Span]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The contiguous element ranges of several boxes that share their rows and columns but
    not their channels (one box per range of ``channels``): ``(k, 2)`` ranges in address
    order within each box, ranges that touch merged, and the box of each range.

    ``rows`` and ``cols`` are sorted, disjoint ranges.
    """
    height, width = shape.height, shape.width
    h = _indices(rows)
    w = _indices(cols)
    col_start = np.array([a for a, _ in cols], dtype=np.int64)
    col_stop = np.array([b for _, b in cols], dtype=np.int64)
    if layout.order == "NHWC":
        c0, c1 = (np.array(x, dtype=np.int64)[:, None] for x in zip(*channels, strict=True))
        pixel = (h[:, None] * width + w[None, :]).ravel()[None, :] * shape.channels
        starts, stops = pixel + c0, pixel + c1
        box = np.broadcast_to(np.arange(len(channels))[:, None], starts.shape)
    elif not layout.block:
        c = np.concatenate([np.arange(a, b) for a, b in channels])
        owner = np.repeat(np.arange(len(channels)), [b - a for a, b in channels])
        line = (c[:, None] * height + h[None, :]) * width
        starts = line[:, :, None] + col_start
        stops = line[:, :, None] + col_stop
        box = np.broadcast_to(owner[:, None, None], starts.shape)
    else:
        b = layout.block
        parts = [(i, k, max(c0, k * b) - k * b, min(c1, k * b + b) - k * b)
                 for i, (c0, c1) in enumerate(channels) for k in range(c0 // b, -(-c1 // b))]  # fmt: skip
        owner, blocks, low, high = (np.array(x, dtype=np.int64).reshape(-1) for x in zip(*parts, strict=True))
        pixel = ((blocks[:, None] * height + h[None, :])[:, :, None] * width + w[None, None, :]) * b
        starts = pixel + low[:, None, None]
        stops = pixel + high[:, None, None]
        box = np.broadcast_to(owner[:, None, None], starts.shape)
    starts, stops, box = starts.ravel(), stops.ravel(), np.ascontiguousarray(box).ravel()
    if not len(starts):
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64)
    # merge ranges that touch within a box: a new run starts where the previous does not end
    new = np.concatenate([[True], (starts[1:] != stops[:-1]) | (box[1:] != box[:-1])])
    first = np.flatnonzero(new)
    last = np.concatenate([first[1:], [len(starts)]]) - 1
    return np.stack([starts[first], stops[last]], axis=1), box[first]


def _indices(spans: Sequence[Span]) -> np.ndarray:
    return np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, dtype=np.int64)


def distinct_bursts(element_runs: np.ndarray, box: np.ndarray, element_bits: int, burst_bytes: int) -> int:
    """Bursts of ``burst_bytes`` that the element ranges of each box touch, each burst counted
    once per box, summed over the boxes (ranges sorted and disjoint within a box)."""
    if not len(element_runs):
        return 0
    size = 8 * burst_bytes
    first = element_runs[:, 0] * element_bits // size
    last = (element_runs[:, 1] * element_bits - 1) // size
    shared = np.count_nonzero((first[1:] == last[:-1]) & (box[1:] == box[:-1]))
    return int((last - first + 1).sum() - shared)


def input_spans(start: int, stop: int, stride: int, kernel: int, pad: int, size: int) -> list[Span]:
    """The input rows (or columns) output rows ``[start, stop)`` read, as sorted disjoint ranges
    (one range unless the stride skips rows); padding excluded."""
    spans: list[Span] = []
    for o in range(start, stop):
        a, b = max(0, o * stride - pad), min(size, o * stride - pad + kernel)
        if a >= b:
            continue
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans
