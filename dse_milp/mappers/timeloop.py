"""A Timeloop-style random-pruned mapper for one layer.

As Timeloop's ``random-pruned`` search (NVlabs/timeloop, src/search/random-pruned.cpp) runs
it, with its defaults:

- each step draws an index factorisation uniformly at random, with replacement: here one
  tile size per loop from the space (``divisors`` in Timeloop's own space, where a level's
  factors multiply to the loop bound), and with it each operand's level (Timeloop's
  two-level mapspace has no such choice; the program's space does);
- "pruned": loops of one trip (factor 1) are a fixed prefix, in the canonical order, and
  only the others are permuted; the step visits min(16, permutations) random permutations
  of them (``max-permutations-per-if-visit``, default 16);
- it stops after ``victory`` consecutive valid mappings that do not strictly improve its
  best (``victory-condition``, default 500), or ``timeout`` consecutive invalid ones
  (``timeout``, default 1000), or when its budget is spent. A tie does not improve.

Timeloop runs one search thread per hardware thread by default; here one thread runs, for
reproducible runs on equal CPU.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from dse_milp.mappers.space import Tracker, levels_of, tile_options
from dse_milp.traffic import LOOPS, Mapping, Tiling, trip_counts

VICTORY = 500
TIMEOUT = 1000
PERMUTATIONS_PER_VISIT = 16


def random_pruned(tracker: Tracker, space: str, rng: np.random.Generator, victory: int = VICTORY,
                  timeout: int = TIMEOUT) -> None:  # fmt: skip
    """Search ``tracker``'s layer until a termination rule holds (0 turns a rule off) or the
    tracker's budget stops it."""
    layer = tracker.layer
    options = {d: tile_options(layer.dims[d], space) for d in LOOPS}
    levels = levels_of(tracker.accelerator)
    no_better = invalid = 0
    while True:
        tiles = {d: options[d][int(rng.integers(len(options[d])))] for d in LOOPS}
        held = levels[int(rng.integers(len(levels)))]
        count = trip_counts(layer, Tiling(**tiles))
        fixed = "".join(d for d in LOOPS if count[d] == 1)
        free = [d for d in LOOPS if count[d] > 1]
        permutations = list(itertools.permutations(free))
        for _ in range(min(PERMUTATIONS_PER_VISIT, len(permutations))):
            order = fixed + "".join(permutations[int(rng.integers(len(permutations)))])
            best = tracker.best_cost
            value = tracker.score(Mapping(Tiling(**tiles), order, held))
            if value is None:
                invalid += 1
                if timeout and invalid >= timeout:
                    return
                continue
            invalid = 0
            no_better = 0 if value < best else no_better + 1
            if victory and no_better >= victory:
                return


def space_size(tracker: Tracker, space: str) -> int:
    """Mappings in the space (tile sizes x orders x levels), revisits aside."""
    tiles = math.prod(len(tile_options(tracker.layer.dims[d], space)) for d in LOOPS)
    return tiles * math.factorial(len(LOOPS)) * len(levels_of(tracker.accelerator))
