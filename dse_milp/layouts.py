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
those runs touch, each once per transfer (``dse_milp.passes`` counts them). With a
burst of one byte and whole-byte elements this is the byte count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Layouts:
    """The layouts of the tensors a layer (or a fused group) reads, and of its output."""

    input: Layout
    output: Layout


AUTO = "auto"
"""Asked for instead of a layout: the program chooses each tensor's
(``dse_milp.burst_candidates.AUTO_LAYOUTS``)."""

NCHW = Layout("NCHW")
NHWC = Layout("NHWC")


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
