"""A free split searched as a designer searches buffer partitions: an outer search over the
complete splits, each split it tries searched with its buffers fixed.

- **Outer**: ``method``'s algorithm over two genes, the input and weight buffers' banks
  (the output buffer takes the rest: a complete split), decoded as the joint search decodes
  them (``split_banks``).
  It tries ``OUTER`` distinct splits (every complete split where there are fewer), within
  ``DRAWS * OUTER`` draws; a split drawn again costs nothing.
- **Inner**: each split tried is searched with its buffers fixed, as without a split: layer
  by layer (``map_layers``: one search per layer shape), or with fusion per unit and then
  over the boundaries (``map_fused``).

The budget is shared in a stated way: each split tried gets an equal share of the
evaluations and of the seconds. Every inner search draws from the same seed, so a split's
result does not depend on when it is tried.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np

from dse_milp.accelerator import Accelerator, sized
from dse_milp.cost import Objective
from dse_milp.fusion import GroupMapping
from dse_milp.heuristics import PENALTY, drive, split_banks
from dse_milp.mappers import map_layers
from dse_milp.mappers.fused import map_fused
from dse_milp.mappers.space import OWN, Stop
from dse_milp.stopping import interrupted
from dse_milp.traffic import Mapping
from dse_milp.workload import Network

OUTER = 16
"""Distinct splits the outer search tries: about a tenth of a 16-bank NPU's 153."""

DRAWS = 4
"""Draws of the outer search per split it may try: it ends at ``OUTER`` distinct splits, or
after ``DRAWS * OUTER`` draws (a GA then keeps its population of 10)."""

METHODS = ("anneal", "genetic", "random")


@dataclass(frozen=True)
class SplitRun:
    """An outer search over a free split's complete splits, with inner searches per split."""

    sizes: dict[str, int]
    """Bytes of each buffer in the best split found (empty if none fits)."""
    mappings: dict[str, Mapping]
    groups: dict[tuple[str, str], GroupMapping]
    cost: float
    """Infinite if no design was found."""
    evaluations: int
    seconds: float
    splits: int
    """Distinct splits tried."""
    curve: tuple[tuple[float, int, float], ...]
    """(seconds, designs scored, best cost) at every improvement."""


def map_split(method: str, network: Network, accelerator: Accelerator, objective: Objective = Objective.DRAM,
              fusion: int = 0, evaluations: int | None = None, seconds: float | None = None, seed: int = 0,
              space: str = OWN, outer: int = OUTER) -> SplitRun:  # fmt: skip
    """Search ``network`` on ``accelerator``'s free split with ``method`` (module docstring);
    layers take their tiles from ``space``."""
    split = accelerator.split
    assert split is not None and method in METHODS
    start = time.perf_counter()
    count = (split.banks + 1) * (split.banks + 2) // 2  # complete splits
    tries = min(outer, count)
    share_evals = None if evaluations is None else evaluations // tries
    share_seconds = None if seconds is None else seconds / tries
    tried: dict[tuple[int, int, int], float] = {}
    best: list = [math.inf, {}, {}, {}]
    curve: list[tuple[float, int, float]] = []
    used = [0]

    def inner(banks: tuple[int, int, int]) -> float:
        sizes = {b.name: n * split.bank_bytes for b, n in zip(accelerator.buffers, banks, strict=True)}
        fixed = sized(accelerator, sizes)
        if fusion > 1:
            fused = map_fused(method, network, fixed, objective, fusion, share_evals, share_seconds, seed, space)
            cost, mappings, groups, spent = fused.cost, fused.mappings, fused.groups, fused.evaluations
        else:
            run = map_layers(method, network, fixed, objective, space, share_evals, share_seconds, seed)
            cost, mappings, groups, spent = run.cost, run.mappings or {}, {}, run.evaluations
        used[0] += spent
        if cost < best[0]:
            best[:] = [cost, sizes, mappings, groups]
            curve.append((time.perf_counter() - start, used[0], cost))
        return cost

    def f(x: np.ndarray) -> float:
        genes = np.clip(np.asarray(x, dtype=float), 0.0, 1.0 - 1e-12)
        banks = split_banks(float(genes[0]), float(genes[1]), split.banks)
        if banks not in tried:
            if len(tried) >= tries or interrupted():
                raise Stop
            tried[banks] = inner(banks)
        return min(tried[banks], PENALTY)

    with contextlib.suppress(Stop):
        drive(method, f, 2, DRAWS * tries, seed)
    return SplitRun(best[1], best[2], best[3], best[0], used[0], time.perf_counter() - start, len(tried),
                    tuple(curve))  # fmt: skip
