"""Halo caching in a fused group (DeFiNES, Mei et al., HPCA 2023).

Neighbouring tiles of a fused group need overlapping regions of every tensor
but the last: the halo. A group runs its tiles row band by row band, and
within a band column by column (row-major). For each axis it either
recomputes the overlap (and reads an outside tensor's overlap from DRAM
again) or keeps it on chip for the next tile:

- **columns**: after each tile, the columns its region shares with the next
  tile of the band, over the region's rows (a small cache);
- **rows**: after each band, the rows its region shares with the next band,
  over every column the tensor uses (a line buffer);
- **rows+columns**: both, so that every element is computed (or read) once.

A cached axis makes each tile produce only the part of its span the previous
tile did not cover (``fresh``). The caches hold every tensor of the group,
once (they never cross DRAM, so double buffering does not double them), and
for the whole run (liveness cannot free them). The formulas are in
docs/traffic_model.md, section 8.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from dse_milp.errors import show


class Halo(StrEnum):
    """How a fused group handles the halo overlap, in the order ties are broken."""

    RECOMPUTE = "recompute"
    COLUMNS = "columns"
    ROWS = "rows"
    BOTH = "rows+columns"

    def caches(self, axis: int) -> bool:
        """Whether the overlap along ``axis`` (0 rows, 1 columns) is kept on chip."""
        return self in ((Halo.ROWS, Halo.BOTH) if axis == 0 else (Halo.COLUMNS, Halo.BOTH))


def fresh(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Where each tile's span starts once the previous tile's is cached: ``max(lo, previous
    hi)`` (clipped to the span), for spans ``[lo, hi)`` of consecutive tiles along axis 0.

    Both ends never move backwards from tile to tile, so the fresh spans are what no earlier
    tile covered, and they partition the union of the spans.
    """
    start = np.array(lo, copy=True)
    start[1:] = np.minimum(np.maximum(lo[1:], hi[:-1]), hi[1:])
    return start


def overlap(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The most rows (or columns) a tile's span shares with the next tile's, over the tiles
    along axis 0: what a cache along that axis holds."""
    shared = np.maximum(hi[:-1] - lo[1:], 0)
    return shared.max(axis=0) if len(shared) else np.zeros(np.shape(lo)[1:], dtype=np.int64)


ANY = "any"
"""Every mode: the program chooses freely."""
NAMES = ", ".join([*Halo, ANY])


def halo_modes(names: list[str] | tuple[str, ...]) -> tuple[Halo, ...]:
    """The modes named (``ANY`` for all), without repeats, in ``Halo`` order; ValueError names
    the first name that is not a mode."""
    chosen = set()
    for name in names:
        if name == ANY:
            chosen.update(Halo)
        elif name in Halo._value2member_map_:
            chosen.add(Halo(name))
        else:
            raise ValueError(f"must be one of {NAMES}, got {show(name)}")
    if not chosen:
        raise ValueError(f"must name at least one of {NAMES}, got none")
    return tuple(mode for mode in Halo if mode in chosen)
