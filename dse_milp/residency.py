"""Which weights of a fused group stay on chip: a knapsack, solved by dynamic programming.

A fused group streams a layer's weights a piece of output channels at a time (one, unless
DRAM bursts make more worth it: ``dse_milp.pieces``), read again for every
tile, unless the layer is *resident*: read once and held for the whole group (docs/
traffic_model.md, section 8). Keeping layer j resident saves (T - 1) * a_j bits of DRAM
reads over T tiles (a_j: its weight bits) and holds b_j = a_j - s_j more bits of buffer
(s_j: the one channel's slice it holds when streamed). For a set R of resident layers,
every measure of the group depends on R only through

    A(R) = sum_{j in R} a_j     (less traffic, T - 1 bits per bit)
    B(R) = sum_{j in R} b_j     (more footprint and more exposed bits)

and every objective (``dse_milp.cost``) is non-increasing in A and non-decreasing in B. So
the only sets worth a candidate are those of the *staircase*: for each budget c, the
largest A of a set with B <= c, and of those the least B. The budget a tile leaves for
the weights is its buffer's capacity less what the tile's other blocks and the streamed
slices hold; a free split has one budget per bank count. The staircase comes from the
0/1 knapsack's dynamic program over budgets in steps of the gcd of the b_j (``Residency``),
in time (layers x steps), never from the 2^layers subsets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Residency:
    """The knapsack of one group's weighted layers up to a largest budget (bits).

    ``best[c]`` is the largest A of a set with B <= c * ``unit`` and ``least[c]`` the least B
    of a set with that A; the sets themselves are recovered by ``subset``."""

    names: tuple[str, ...]
    size: np.ndarray
    """b_j: bits a layer's weights hold beyond the slice it holds streamed."""
    unit: int
    best: np.ndarray
    least: np.ndarray
    taken: np.ndarray
    """(layers, steps): whether layer j strictly improves the best A at each budget, given the
    layers before it: the dynamic program's choices, for ``subset``."""

    @staticmethod
    def of(names: Sequence[str], value: Sequence[int], size: Sequence[int], budget: int) -> Residency:
        """The knapsack of layers ``names`` (weights of ``value`` bits, holding ``size`` more bits
        when resident) for budgets up to ``budget`` bits."""
        value = np.asarray(value, dtype=np.int64).reshape(-1)
        size = np.asarray(size, dtype=np.int64).reshape(-1)
        unit = math.gcd(*(int(b) for b in size)) if len(size) else 1
        unit = max(unit, 1)
        steps = int(min(max(budget, 0), int(size.sum()))) // unit
        best = np.zeros(steps + 1, dtype=np.int64)
        taken = np.zeros((len(size), steps + 1), dtype=bool)
        for j, (a, b) in enumerate(zip(value.tolist(), (size // unit).tolist(), strict=True)):
            if b > steps:
                continue
            if b == 0:  # holds nothing more resident (a layer of one output channel): always resident
                taken[j] = True
                best = best + a
                continue
            with_j = best[:-b] + a
            better = with_j > best[b:]
            taken[j, b:] = better
            best[b:] = np.where(better, with_j, best[b:])
        corners = _corners(best)
        corner = np.zeros(steps + 1, dtype=np.int64)
        corner[corners] = corners
        least = np.maximum.accumulate(corner) * unit  # the last corner at or below each budget
        return Residency(tuple(names), size, unit, best, least, taken)

    def step(self, budget: np.ndarray) -> np.ndarray:
        """The budget index of each ``budget`` (bits; -1 where negative: nothing fits)."""
        budget = np.asarray(budget, dtype=np.int64)
        index = np.minimum(np.floor_divide(np.maximum(budget, 0), self.unit), len(self.best) - 1)
        return np.where(budget < 0, -1, index)

    def corners(self) -> np.ndarray:
        """Budget indices of the staircase's points (where the best A grows), increasing."""
        return _corners(self.best)

    def hull(self) -> np.ndarray:
        """Budget indices of the staircase points on its upper concave hull in (B, A): the only
        ones a convex combination (the LP step, ``dse_milp.duals``) can need, since every
        measure of the group is affine in (A, B) for a fixed tile."""
        hull: list[int] = []
        for c in self.corners().tolist():
            while len(hull) >= 2:
                (b0, a0), (b1, a1) = ((int(self.least[h]), int(self.best[h])) for h in hull[-2:])
                b2, a2 = int(self.least[c]), int(self.best[c])
                if (a1 - a0) * (b2 - b0) <= (a2 - a0) * (b1 - b0):  # the middle point is not above the chord
                    hull.pop()
                else:
                    break
            hull.append(c)
        return np.array(hull, dtype=np.int64)

    def subset(self, step: int) -> frozenset[str]:
        """A set with the largest A of budget index ``step`` and the least B of those: the
        dynamic program's, read back from the last layer to the first (a layer is resident
        only where it strictly improved the best A, so of sets equal in A and B the one
        holding earlier layers is chosen)."""
        c = int(self.least[step]) // self.unit
        chosen = []
        for j in range(len(self.size) - 1, -1, -1):
            if self.taken[j, c]:
                chosen.append(self.names[j])
                c -= int(self.size[j]) // self.unit
        return frozenset(chosen)


def _corners(best: np.ndarray) -> np.ndarray:
    """Indices where ``best`` changes (and 0): the staircase's points."""
    return np.flatnonzero(np.concatenate([[True], best[1:] != best[:-1]]))
