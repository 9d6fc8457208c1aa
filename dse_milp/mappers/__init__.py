"""Per-layer mappers, run as their authors run them: one layer at a time.

Timeloop's mapper, ZigZag's LOMA and GAMMA each search one layer's mapping on its own; layer
by layer (no fusion, fixed buffers) nothing couples the layers, so a network's best design is
each layer's best. ``map_layers`` runs one search per distinct layer shape (layers of the
same shape share it, as the program shares their candidates), with the budget shared
equally among the shapes: ``evaluations`` split as evenly as integers allow (the first
shapes take the remainder), ``seconds`` split evenly. A search that ends before its share
(Timeloop's victory condition, LOMA's exhausted enumeration) leaves the rest unused.

The searches (``METHODS``):

- ``timeloop``: Timeloop's random-pruned mapper (``dse_milp.mappers.timeloop``);
- ``loma``: ZigZag's LOMA, exhaustive over orderings of loop prime factors
  (``dse_milp.mappers.loma``);
- ``anneal``, ``genetic``, ``random``: SciPy's generalised simulated annealing, pymoo's GA
  and random search on each layer's genes (``dse_milp.mappers.library``).

Each runs in its authors' own tile space or in the complete integer space
(``dse_milp.mappers.space``), so that what the complete space is worth and what the search
finds can be told apart.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import shape_of
from dse_milp.cost import Objective
from dse_milp.mappers.space import INTEGERS, OWN, SPACES, Stop, Tracker
from dse_milp.stopping import interrupted
from dse_milp.traffic import Mapping
from dse_milp.workload import Layer, Network

Search = Callable[[Tracker, str, np.random.Generator], None]

METHODS = ("timeloop", "loma", "anneal", "genetic", "random")


def searcher(method: str) -> Search:
    """The search ``method`` names (its libraries imported now, not on a search's clock)."""
    if method == "timeloop":
        from dse_milp.mappers.timeloop import random_pruned

        return random_pruned
    if method == "loma":
        from dse_milp.mappers.loma import loma

        return loma
    from dse_milp.mappers.library import library_search

    return functools.partial(library_search, method)


__all__ = ["INTEGERS", "METHODS", "OWN", "SPACES", "LayerRun", "NetworkRun", "map_layers", "searcher"]


@dataclass(frozen=True)
class LayerRun:
    """One search of one layer shape."""

    layers: tuple[str, ...]
    """The layers of this shape."""
    mapping: Mapping | None
    """The best mapping found that fits; None if none was."""
    cost: float
    evaluations: int
    seconds: float
    curve: tuple[tuple[float, int, float], ...]
    """(seconds, mappings scored, best cost) at every improvement."""

    def best_by(self, seconds: float) -> tuple[float, int]:
        """The best cost found within ``seconds`` of its start (infinite before the first), and
        how many mappings it had scored when it found it."""
        found = [(value, scored) for t, scored, value in self.curve if t <= seconds]
        return found[-1] if found else (math.inf, 0)


@dataclass(frozen=True)
class NetworkRun:
    """A per-layer search of every layer of a network."""

    method: str
    space: str
    runs: tuple[LayerRun, ...]

    @property
    def cost(self) -> float:
        """The network's cost: every layer's best (infinite if one has none)."""
        return sum(run.cost * len(run.layers) for run in self.runs)

    @property
    def seconds(self) -> float:
        return sum(run.seconds for run in self.runs)

    @property
    def evaluations(self) -> int:
        return sum(run.evaluations for run in self.runs)

    @property
    def mappings(self) -> dict[str, Mapping] | None:
        """Every layer's best mapping, by name; None if a layer has none."""
        if any(run.mapping is None for run in self.runs):
            return None
        return {name: run.mapping for run in self.runs for name in run.layers if run.mapping is not None}

    def cost_by(self, seconds: float) -> float:
        """The network's cost had each shape's search run ``seconds`` (its curve read there)."""
        return sum(run.best_by(seconds)[0] * len(run.layers) for run in self.runs)

    def curve(self) -> list[tuple[float, int, float]]:
        """(budget in seconds, mappings scored, the network's cost) wherever the cost improves:
        the budget shared equally among the shapes, each shape's best within its share, and the
        mappings the shapes had scored when they found those bests; from the first budget at
        which every layer has a mapping."""
        points: list[tuple[float, int, float]] = []
        for t in sorted({t for run in self.runs for t, _, _ in run.curve}):
            bests = [run.best_by(t) for run in self.runs]
            value = sum(best * len(run.layers) for (best, _), run in zip(bests, self.runs, strict=True))
            if math.isfinite(value) and (not points or value < points[-1][2]):
                points.append((t * len(self.runs), sum(scored for _, scored in bests), value))
        return points


def map_layers(method: str, network: Network, accelerator: Accelerator, objective: Objective = Objective.DRAM,
               space: str = OWN, evaluations: int | None = None, seconds: float | None = None,
               seed: int = 0) -> NetworkRun:  # fmt: skip
    """Search every layer shape of ``network`` with ``method`` in ``space`` (module docstring),
    the budget shared equally among the shapes; Ctrl-C stops the shape in progress and skips
    the rest. Shape i's search draws from ``np.random.default_rng([seed, i])``."""
    search = searcher(method)
    shapes: dict[Layer, list[str]] = {}
    for layer in network.layers:
        shapes.setdefault(shape_of(layer), []).append(layer.name)
    k = len(shapes)
    runs = []
    for i, (shape, names) in enumerate(shapes.items()):
        share = None if evaluations is None else evaluations // k + (1 if i < evaluations % k else 0)
        tracker = Tracker(shape, accelerator, objective, share, None if seconds is None else seconds / k)
        if not interrupted():
            with contextlib.suppress(Stop):
                search(tracker, space, np.random.default_rng([seed, i]))
        runs.append(LayerRun(tuple(names), tracker.best, tracker.best_cost, tracker.scored, tracker.elapsed,
                             tuple(tracker.curve)))  # fmt: skip
    return NetworkRun(method, space, tuple(runs))
