"""The loop orders and operand levels a layer's candidates need, reduced exactly.

A mapping places the four tile loops in one of 24 orders and each operand at
one of 5 levels (``dse_milp.traffic.Levels``): 3,000 combinations per tiling.
For a fixed tiling, an operand's footprint depends only on which of its
relevant loops sit inside its level (its block spans them whole: its *full*
loops), and its traffic on that and on which loops it does not depend on sit
outside its innermost active relevant loop (its *refetch* loops, whose trip
counts multiply its reads). So a combination is summed up by a *pattern*:
per operand, the full loops and the refetch loops.

With every trip count above 1, enumerating the 3,000 combinations gives 214
sets of full loops and 259 patterns. A pattern is dropped when another has
no more full loops for the weights and outputs, no more for the input with
the same full spatial loops (a full row or column loop changes how often the
input halo is read), and no more refetch loops for any operand: the other's
footprint is no larger and its traffic no larger, at every tiling. 51 remain;
``tests/test_levels.py`` checks that their least traffic equals every order x
every level assignment x every tiling on small layers.

With some trip counts equal to 1 the reduction still holds: a loop of one
trip never moves, so moving it outermost (outside every level) changes no
block and no refetch count, and the result is a combination whose pattern,
evaluated with all trip counts, gives the same traffic (a refetch loop of one
trip multiplies by 1). The least traffic over the patterns is therefore the
least over all combinations, and a pattern's mapping attains it; every
candidate's traffic is recomputed from its mapping by the scalar closed form.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dse_milp.traffic import LOOPS, ORDERS, RELEVANT, Levels
from dse_milp.workload import Operand

STATIONARY_ORDERS = ("mnrc", "rcmn", "rcnm")
"""Weight-, output- and input-stationary: with every operand innermost, the orders of least
traffic (docs/traffic_model.md, section 6), in tie-breaking order."""

OPERANDS = (Operand.INPUT, Operand.WEIGHT, Operand.OUTPUT)
PREFERRED_ORDERS = STATIONARY_ORDERS + tuple(o for o in ORDERS if o not in STATIONARY_ORDERS)
"""The order in which a pattern's representative mapping is picked, and ties are broken."""


@dataclass(frozen=True)
class Pattern:
    """What one (order, levels) combination means for the traffic and footprint of every tiling."""

    order: str
    levels: Levels
    """The representative: the first combination (by ``PREFERRED_ORDERS``, then the
    innermost levels) that has this pattern."""
    full: tuple[str, str, str]
    """Per operand (``OPERANDS``): its relevant loops that its block spans whole."""
    refetch: tuple[str, str, str]
    """Per operand: the loops whose trip counts multiply its reads (for the output, its visits)."""


def summary(order: str, levels: Levels) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(full loops, refetch loops) per operand of ``order`` and ``levels``, every trip count above 1."""
    full, refetch = [], []
    for operand in OPERANDS:
        cut, relevant = levels.of(operand), RELEVANT[operand]
        full.append(_loops(d for d in order[cut:] if d in relevant))
        outer = [i for i, d in enumerate(order[:cut]) if d in relevant]
        refetch.append(_loops(d for d in order[: max(outer)] if d not in relevant) if outer else "")
    return tuple(full), tuple(refetch)


def _loops(loops: Iterable[str]) -> str:
    """A set of loops, written in the order ``mnrc``."""
    chosen = set(loops)
    return "".join(d for d in LOOPS if d in chosen)


def _mask(loops: str) -> int:
    return sum(1 << LOOPS.index(d) for d in loops)


def _dominated(masks: np.ndarray) -> np.ndarray:
    """Which summaries another one dominates: no larger footprint and no more traffic at every
    tiling. ``masks`` holds one summary per row, six loop sets as bit masks: the full loops of
    each operand, then the refetch loops of each operand."""
    a, b = masks[:, None, :], masks[None, :, :]  # does row i dominate row j?
    subset = np.all(a & ~b == 0, axis=2)
    same_spatial = (a[..., 0] ^ b[..., 0]) & _mask("rc") == 0
    dominates = subset & same_spatial & ~np.eye(len(masks), dtype=bool)
    return dominates.any(axis=0)


@functools.cache
def _combinations(per_operand: bool) -> dict[tuple, tuple[str, Levels]]:
    """Every summary, with the first (order, levels) that has it: by ``PREFERRED_ORDERS``, then
    innermost levels first."""
    cuts = list(itertools.product(range(len(LOOPS) + 1), repeat=3)) if per_operand else [tuple(Levels())]
    cuts.sort(key=lambda c: tuple(-x for x in c))
    first: dict[tuple, tuple[str, Levels]] = {}
    for order in PREFERRED_ORDERS:
        for cut in cuts:
            first.setdefault(summary(order, Levels(*cut)), (order, Levels(*cut)))
    return first


@functools.cache
def patterns(per_operand: bool = True, trivial: str = "") -> tuple[Pattern, ...]:
    """The patterns the candidates need, in tie-breaking order (fewest full loops first).

    With ``per_operand`` False every operand stays innermost (one tile each), and
    the patterns are the three stationary orders. ``trivial`` names loops of extent 1
    in the layer at hand: they never move and their blocks are whole, so they are
    left out of every set, and patterns that then coincide are kept once.
    """
    first: dict[tuple, tuple[str, Levels]] = {}
    drop = lambda loops: "".join(d for d in loops if d not in trivial)  # noqa: E731
    for (full, refetch), mapping in _combinations(per_operand).items():
        first.setdefault((tuple(map(drop, full)), tuple(map(drop, refetch))), mapping)
    summaries = list(first)
    masks = np.array([[_mask(loops) for loops in s[0] + s[1]] for s in summaries])
    kept = [s for s, dominated in zip(summaries, _dominated(masks), strict=True) if not dominated]
    rank = {key: i for i, key in enumerate(first)}
    kept.sort(key=lambda s: (sum(map(len, s[0])), rank[s]))
    return tuple(Pattern(*first[s], full=s[0], refetch=s[1]) for s in kept)
