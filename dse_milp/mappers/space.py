"""One layer's mapping space as a per-layer mapper sees it, and the record of a search over it.

A mapping is the program's: tile sizes for the four tile loops (m, n, r, c), a loop order,
and each operand's level (``dse_milp.traffic``). The searches differ in which tile sizes
they may pick:

- ``own``: their authors' space. Timeloop splits each loop bound into factors, so a tile
  divides its loop (``divisors``); ZigZag's LOMA builds tiles from a loop's prime factors
  (``dse_milp.mappers.loma``); the annealing and genetic searches take divisors, as the
  factor-based mapspaces they are run in.
- ``integers``: the complete integer space the program covers, every tile from 1 to the
  loop's extent (edge tiles included).

Every mapping scored is checked against the buffers and costed by the same closed forms as
the program's candidates, so a search's best is exactly comparable with the optimum.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from dataclasses import dataclass, field

from dse_milp.accelerator import Accelerator
from dse_milp.cost import Objective, cost
from dse_milp.stopping import interrupted
from dse_milp.traffic import INNERMOST, Levels, Mapping, exposed, footprint, traffic
from dse_milp.workload import Layer

OWN = "own"
INTEGERS = "integers"
SPACES = (OWN, INTEGERS)


@functools.cache
def divisors(n: int) -> tuple[int, ...]:
    """Every divisor of ``n``, ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return tuple(sorted({*small, *(n // d for d in small)}))


def prime_factors(n: int) -> tuple[int, ...]:
    """The prime factors of ``n`` with multiplicity, ascending (none for 1)."""
    from sympy import factorint  # only LOMA needs it; sympy takes a fifth of a second to import

    return tuple(p for p, k in sorted(factorint(n).items()) for _ in range(k))


def tile_options(extent: int, space: str) -> tuple[int, ...]:
    """The tile sizes a search in ``space`` may give a loop of ``extent``, ascending."""
    return divisors(extent) if space == OWN else tuple(range(1, extent + 1))


def levels_of(accelerator: Accelerator) -> tuple[Levels, ...]:
    """Every level combination the accelerator allows (each operand 0 to 4), innermost first."""
    if not accelerator.operand_levels:
        return (INNERMOST,)
    return (INNERMOST, *(Levels(*x) for x in itertools.product(range(5), repeat=3) if Levels(*x) != INNERMOST))


class Stop(Exception):
    """Raised by ``Budget.spend`` once the budget is spent: the search ends there."""


@dataclass
class Budget:
    """What one search may spend: evaluations and wall-clock seconds (None: no limit)."""

    evaluations: int | None = None
    seconds: float | None = None
    used: int = 0
    start: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def spend(self) -> None:
        """Count one evaluation; raise ``Stop`` instead once the budget is spent or Ctrl-C has
        asked the run to stop."""
        spent = self.evaluations is not None and self.used >= self.evaluations
        if spent or (self.seconds is not None and self.elapsed >= self.seconds) or interrupted():
            raise Stop
        self.used += 1


@dataclass
class Tracker:
    """Scores one layer's mappings under a budget and keeps the best found and when."""

    layer: Layer
    accelerator: Accelerator
    objective: Objective
    evaluations: int | None = None
    """Mappings the search may score; None for no limit."""
    seconds: float | None = None
    """Wall-clock seconds the search may take; None for no limit."""
    best: Mapping | None = None
    best_cost: float = math.inf
    curve: list[tuple[float, int, float]] = field(default_factory=list)
    """(seconds, mappings scored, best cost) at every improvement."""
    budget: Budget = field(init=False, repr=False)
    _memo: dict[Mapping, float | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.budget = Budget(self.evaluations, self.seconds)

    @property
    def scored(self) -> int:
        return self.budget.used

    @property
    def elapsed(self) -> float:
        return self.budget.elapsed

    def score(self, mapping: Mapping) -> float | None:
        """The objective's cost of ``mapping``, None if it does not fit the buffers; raises
        ``Stop`` when the budget is spent, or Ctrl-C asked to stop (before scoring)."""
        self.budget.spend()
        if mapping not in self._memo:
            self._memo[mapping] = self._cost(mapping)
        value = self._memo[mapping]
        if value is not None and value < self.best_cost:
            self.best, self.best_cost = mapping, value
            self.curve.append((self.elapsed, self.scored, value))
        return value

    def _cost(self, mapping: Mapping) -> float | None:
        layer, acc = self.layer, self.accelerator
        if not acc.holds(footprint(layer, mapping, acc.double_buffering, acc.accumulate_in_buffer)):
            return None
        moved, hidden = traffic(layer, mapping).total / 8, exposed(layer, mapping) / 8
        return float(cost(self.objective, layer, acc, moved, hidden))
