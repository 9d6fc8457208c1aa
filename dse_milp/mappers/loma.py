"""A LOMA-style mapper for one layer (ZigZag's loop-order-based memory allocation, Symons et
al., AICAS 2021; KULeuven-MICAS/zigzag, zigzag/opt/loma/engine.py).

As ZigZag runs LOMA, with its defaults:

- each tile loop is split into its prime factors (loop prime factors, LPFs); while there are
  more than ``lpf_limit`` (6, the API's default; never fewer than the loops that have
  factors), the loop with the most LPFs (the first in m, n, r, c order on a tie) has its
  two smallest merged into one;
- every distinct ordering of the LPFs (multiset permutations, innermost first) is
  enumerated, exhaustively;
- each ordering is allocated to the memories bottom-up, every allocation tried and the best
  kept (ZigZag's allocator tries each operand's every prefix that fits).

In the program's mapping space one buffer holds one tile of every loop, so an allocation is
a split of the ordering: the LPFs inside it make the tile, those outside are the DRAM loops;
each loop's DRAM loop sits where its outermost LPF does (loops without one, of a single
trip, outermost, in m, n, r, c order; their place changes nothing), and every level of each
operand is tried. Orderings that give the same tile and order are scored once. The space it
covers is every tile built from the (merged) LPFs, x every order x every level: with enough
budget it finds that space's optimum (a test checks it against brute force).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from sympy.utilities.iterables import multiset_permutations

from dse_milp.mappers.space import Tracker, levels_of, prime_factors
from dse_milp.traffic import LOOPS, Mapping, Tiling
from dse_milp.workload import Layer

LPF_LIMIT = 6
"""ZigZag's ``lpf_limit`` default (``get_hardware_performance_zigzag``)."""

Factor = tuple[str, int]
"""A loop prime factor: its loop and its size."""


def loop_prime_factors(layer: Layer, limit: int = LPF_LIMIT) -> list[Factor]:
    """Each tile loop's prime factors, merged as ZigZag merges them down to ``limit``."""
    factors = {d: sorted(prime_factors(layer.dims[d])) for d in LOOPS}
    limit = max(limit, sum(1 for d in LOOPS if factors[d]))
    while sum(len(f) for f in factors.values()) > limit:
        most = max(LOOPS, key=lambda d: len(factors[d]))  # the first of equals
        smallest, second, *rest = factors[most]
        factors[most] = sorted([smallest * second, *rest])
    return [(d, f) for d in LOOPS for f in factors[d]]


def allocations(layer: Layer, lpfs: list[Factor]) -> Iterator[tuple[Tiling, str]]:
    """Every distinct (tile, DRAM loop order) of every ordering of ``lpfs`` split at every
    point, in the order of the enumeration."""
    seen: set[tuple[Tiling, str]] = set()
    for ordering in multiset_permutations(lpfs):
        for split in range(len(ordering) + 1):
            tiles = {d: math.prod(f for e, f in ordering[:split] if e == d) for d in LOOPS}
            outermost = {d: i for i, (d, _) in enumerate(ordering[split:])}  # the last seen is outermost
            single = "".join(d for d in LOOPS if d not in outermost)
            order = single + "".join(sorted(outermost, key=lambda d: -outermost[d]))
            key = (Tiling(**tiles), order)
            if key not in seen:
                seen.add(key)
                yield key


def loma(tracker: Tracker, space: str, rng: np.random.Generator, lpf_limit: int = LPF_LIMIT) -> None:
    """Enumerate ``tracker``'s layer (the LPF space: ``space`` and ``rng`` are not used: LOMA is
    defined by the prime factors, and exhaustive) until done or the budget stops it."""
    levels = levels_of(tracker.accelerator)
    for tiling, order in allocations(tracker.layer, loop_prime_factors(tracker.layer, lpf_limit)):
        for held in levels:
            tracker.score(Mapping(tiling, order, held))
