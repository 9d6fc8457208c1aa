"""A fused schedule searched as Stream and SET-style tools decompose it: inner searches per
unit, then an outer search over where the fusion boundaries fall.

- **Inner, every unit up front** (as Stream costs every layer with ZigZag before its outer
  search): each layer shape alone, by the per-layer search of ``map_layers``; each group of
  2 to ``fusion`` consecutive layers that can fuse, by the same algorithm over the group's
  own genes (its tile's rows and columns, whether each layer's weights stay resident, its
  halo mode where the accelerator allows several), groups of the same signature (a chain of
  identical blocks) searched once, as the program shares their candidates. A group mapping
  that does not fit scores a penalty.
- **Outer**: the same algorithm over one gene per layer (whether it fuses with the next),
  each design costed from the inner results: a run of joined layers that cannot fuse, or is
  longer than ``fusion``, runs its layers alone.

The budget is shared in a stated way: half to the inner searches, equally among the units
(layer shapes and group signatures), half to the outer search. With fixed buffers only: a
free split couples every unit's fit, and is still searched whole (``dse_milp.heuristics``).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import shape_of
from dse_milp.cost import Objective
from dse_milp.fusion import GroupMapping, Segment, group_cost, group_objective
from dse_milp.heuristics import PENALTY, drive
from dse_milp.mappers import map_layers
from dse_milp.mappers.space import OWN, Budget, Stop
from dse_milp.traffic import Mapping
from dse_milp.units import segments, signature
from dse_milp.workload import Network

METHODS = ("anneal", "genetic", "random")


@dataclass(frozen=True)
class FusedRun:
    """A decomposed search of a fused schedule."""

    mappings: dict[str, Mapping]
    """Layers run alone."""
    groups: dict[tuple[str, str], GroupMapping]
    cost: float
    """Infinite if no design was found."""
    evaluations: int
    seconds: float
    curve: tuple[tuple[float, int, float], ...] = ()
    """(seconds, evaluations, best cost) at every improvement of the outer search, from the
    design with every layer alone that the inner searches give."""


def _search(method: str, genes: int, f: object, budget: Budget, seed: int) -> None:
    if budget.evaluations is not None and budget.evaluations <= 0:
        return  # not even the library's set-up
    with contextlib.suppress(Stop):
        drive(method, f, genes, budget.evaluations if budget.evaluations is not None else 1 << 40, seed)


def _group_search(method: str, segment: Segment, accelerator: Accelerator, objective: Objective, budget: Budget,
                  seed: int) -> tuple[float, GroupMapping | None]:  # fmt: skip
    """The best mapping of one fused group found by ``method`` within ``budget``."""
    out = segment.last
    weighted = [layer.name for layer in segment.layers if layer.has_weights]
    modes = accelerator.halo
    genes = 2 + len(weighted) + (1 if len(modes) > 1 else 0)
    best: list = [math.inf, None]

    def pick(gene: float, n: int) -> int:
        return min(n - 1, int(gene * n))

    def f(x: np.ndarray) -> float:
        budget.spend()
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0 - 1e-12)
        resident = frozenset(name for name, g in zip(weighted, x[2 : 2 + len(weighted)], strict=True) if g >= 0.5)
        halo = modes[pick(x[-1], len(modes))] if len(modes) > 1 else modes[0]
        mapping = GroupMapping(1 + pick(x[0], out.r), 1 + pick(x[1], out.c), resident, halo)
        c = group_cost(segment, mapping, accelerator.double_buffering, accelerator.liveness)
        if not accelerator.holds(c.footprint):
            return PENALTY
        value = group_objective(objective, accelerator, segment, c)
        if value < best[0]:
            best[:] = [value, mapping]
        return value

    _search(method, genes, f, budget, seed)
    return best[0], best[1]


def map_fused(method: str, network: Network, accelerator: Accelerator, objective: Objective = Objective.DRAM,
              fusion: int = 2, evaluations: int | None = None, seconds: float | None = None, seed: int = 0,
              space: str = OWN) -> FusedRun:  # fmt: skip
    """Search ``network``'s fused schedule with ``method`` (module docstring); layers alone
    take their tiles from ``space``, a group's tile any rows and columns."""
    assert accelerator.split is None and method in METHODS
    start = time.perf_counter()
    layers = network.layers
    units_of = segments(network, fusion)
    signatures = list(dict.fromkeys(signature(s) for s in units_of))
    shapes = len({shape_of(layer) for layer in layers})
    units = shapes + len(signatures)
    inner_evals = None if evaluations is None else evaluations // 2  # half to the inner searches
    inner_seconds = None if seconds is None else seconds / 2
    alone = map_layers(method, network, accelerator, objective,
                       evaluations=None if inner_evals is None else inner_evals * shapes // units,
                       seconds=None if inner_seconds is None else inner_seconds * shapes / units,
                       seed=seed, space=space)  # fmt: skip
    used = alone.evaluations
    by_signature: dict[tuple, tuple[float, GroupMapping | None, Segment]] = {}
    for i, shared in enumerate(signatures):
        share = Budget(None if inner_evals is None else inner_evals // units,
                        None if inner_seconds is None else inner_seconds / units)  # fmt: skip
        segment = next(s for s in units_of if signature(s) == shared)
        found = _group_search(method, segment, accelerator, objective, share, seed + 1 + i)
        by_signature[shared] = (*found, segment)
        used += share.used
    layer_cost = {name: run.cost for run in alone.runs for name in run.layers}
    layer_map = {name: run.mapping for run in alone.runs for name in run.layers}
    group_of: dict[tuple[int, int], tuple[float, GroupMapping | None]] = {}
    for s in units_of:
        value, mapping, model = by_signature[signature(s)]
        group_of[s.start, s.stop] = (value, None if mapping is None else _renamed(mapping, model, s))

    def design(x: np.ndarray) -> tuple[float, dict[str, Mapping], dict[tuple[str, str], GroupMapping]]:
        mappings: dict[str, Mapping] = {}
        groups: dict[tuple[str, str], GroupMapping] = {}
        total, begin = 0.0, 0
        for i in range(len(layers)):
            if i + 1 < len(layers) and x[i] >= 0.5:
                continue
            unit = group_of.get((begin, i + 1))
            if unit is not None and unit[1] is not None:
                total += unit[0]
                groups[layers[begin].name, layers[i].name] = unit[1]
            else:
                for layer in layers[begin : i + 1]:
                    total += layer_cost[layer.name]
                    if layer_map[layer.name] is not None:
                        mappings[layer.name] = layer_map[layer.name]
            begin = i + 1
        return total, mappings, groups

    best: list = [math.inf, {}, {}]
    outer = Budget(None if evaluations is None else evaluations - used,
                    None if seconds is None else max(0.0, seconds - (time.perf_counter() - start)))  # fmt: skip

    curve: list[tuple[float, int, float]] = []

    def f(x: np.ndarray) -> float:
        outer.spend()
        total, mappings, groups = design(np.clip(np.asarray(x, dtype=float), 0.0, 1.0))
        if total < best[0]:
            best[:] = [total, mappings, groups]
            curve.append((time.perf_counter() - start, used + outer.used, total))
        return min(total, PENALTY)

    best[:] = list(design(np.zeros(len(layers))))  # every layer alone: the inner results as they are
    if math.isfinite(best[0]):
        curve.append((time.perf_counter() - start, used, best[0]))
    _search(method, len(layers), f, outer, seed)
    return FusedRun(best[1], best[2], best[0], used + outer.used, time.perf_counter() - start, tuple(curve))


def _renamed(mapping: GroupMapping, model: Segment, segment: Segment) -> GroupMapping:
    """``mapping`` of ``model``'s group, for ``segment`` of the same signature."""
    names = {a.name: b.name for a, b in zip(model.layers, segment.layers, strict=True)}
    return GroupMapping(mapping.rows, mapping.cols, frozenset(names[n] for n in mapping.resident), mapping.halo)
