"""Per-layer simulated annealing, a genetic algorithm and random search, from the libraries.

One layer's mapping is eight genes in [0, 1): a tile size per loop (an index into the
space's tile options), the loop order (one of 24) and each operand's level (0 to 4; none
where the accelerator keeps every operand innermost). The searches are SciPy's
``dual_annealing`` without its local search (generalised simulated annealing) and pymoo's
GA and random search, as the joint searches of ``dse_milp.heuristics`` use them, but on one
layer at a time, as GAMMA, Timeloop and ZigZag search. A mapping that does not fit scores a
penalty above any cost.
"""

from __future__ import annotations

import numpy as np

# imported here, not on a search's clock: the first import of each library takes most of a second
import pymoo.algorithms.soo.nonconvex.ga
import pymoo.algorithms.soo.nonconvex.random_search
import pymoo.optimize  # noqa: F401
import scipy.optimize  # noqa: F401

from dse_milp.heuristics import PENALTY, drive
from dse_milp.mappers.space import Tracker, levels_of, tile_options
from dse_milp.traffic import LOOPS, ORDERS, Levels, Mapping, Tiling


def library_search(method: str, tracker: Tracker, space: str, rng: np.random.Generator) -> None:
    """Run ``method`` (``anneal``, ``genetic`` or ``random``) on ``tracker``'s layer until it
    ends or the tracker's budget stops it; its seed is drawn from ``rng``."""
    layer = tracker.layer
    options = [tile_options(layer.dims[d], space) for d in LOOPS]
    levels = levels_of(tracker.accelerator)
    genes = len(LOOPS) + 1 + (3 if len(levels) > 1 else 0)

    def pick(gene: float, n: int) -> int:
        return min(n - 1, int(gene * n))

    def f(x: np.ndarray) -> float:
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0 - 1e-12)
        tiles = Tiling(*(opts[pick(g, len(opts))] for opts, g in zip(options, x[:4], strict=True)))
        order = ORDERS[pick(x[4], len(ORDERS))]
        held = levels[0] if len(levels) == 1 else Levels(*(pick(g, 5) for g in x[5:8]))
        value = tracker.score(Mapping(tiles, order, held))
        return PENALTY if value is None else value

    budget = tracker.evaluations if tracker.evaluations is not None else 1 << 40
    if budget <= 0:
        return  # not even the library's set-up
    drive(method, f, genes, budget, int(rng.integers(1 << 31)))
