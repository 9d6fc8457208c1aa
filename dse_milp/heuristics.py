"""Heuristic search over the same decisions as the program, with the same cost model.

The baselines reviewers compare against (Timeloop's random mapper, ZigZag's
LOMA and SALSA, GAMMA's genetic algorithm) search mappings heuristically. Here
three searches explore exactly the program's design space, every design scored
by the same exact closed forms and checked by the same rules:

- per layer, the tile sizes (any integers from 1 to each loop's extent), the
  loop order (all 24) and each operand's level (0 to 4);
- with fusion, where the fusion boundaries fall, and each fused group's tile and
  resident weights;
- with a free split, the banks of each buffer.

A design is a vector of genes in [0, 1) (``SearchSpace.decode``); the searches
come from well-kept libraries: random search and a genetic algorithm from
pymoo, simulated annealing from SciPy (``dual_annealing`` without its local
search, i.e. generalised simulated annealing). A design whose tiles overflow a
buffer is repaired deterministically (tiles halved, resident weights dropped,
levels moved inward, groups split) so that every design scored is feasible, or scored as a penalty
when even the smallest tiles do not fit.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from importlib import metadata

import numpy as np

from dse_milp.accelerator import Accelerator, sized
from dse_milp.cost import Objective, cost
from dse_milp.errors import NoSolutionError, show
from dse_milp.fusion import GroupMapping, Segment, fusible, group_cost, group_objective
from dse_milp.layouts import NCHW, Layout
from dse_milp.levels import OPERANDS
from dse_milp.solution import Solution, design_results
from dse_milp.solvers import SolveResult, Status
from dse_milp.stopping import interrupted
from dse_milp.traffic import INNERMOST, LOOPS, ORDERS, Levels, Mapping, Tiling, exposed, footprint, traffic
from dse_milp.workload import Network

METHODS = ("random", "anneal", "genetic")
PENALTY = 1e30
"""The score of a design that fits nowhere, even with its smallest tiles."""


def split_banks(first: float, second: float, banks: int) -> tuple[int, int, int]:
    """A complete split of ``banks`` from two genes in [0, 1): the first buffer's banks, then the
    second's of what is left; the third buffer takes the rest."""
    a = min(banks, int(first * (banks + 1)))
    b = min(banks - a, int(second * (banks + 1 - a)))
    return a, b, banks - a - b


@dataclass(frozen=True)
class Design:
    mappings: dict[str, Mapping]
    """Layers run alone."""
    groups: dict[tuple[str, str], GroupMapping]
    sizes: dict[str, int]
    """Bytes of each buffer."""


@dataclass
class SearchSpace:
    """The genes of a design and their meaning, for one network on one accelerator."""

    network: Network
    accelerator: Accelerator
    objective: Objective
    fusion: int = 0
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def genes(self) -> int:
        halo = len(self.accelerator.halo) > 1  # a gene for the halo mode only where there is a choice
        per_layer = 8 + ((5 if halo else 4) if self.fusion > 1 else 0)
        return per_layer * len(self.network.layers) + (2 if self.accelerator.split else 0)

    def decode(self, x: np.ndarray) -> Design:
        """The design the genes ``x`` (each in [0, 1)) describe, before any repair."""
        layers = self.network.layers
        pick = lambda g, n: min(n - 1, int(g * n))  # noqa: E731 - a gene in [0, 1) to one of n choices
        genes = iter(np.clip(x, 0.0, 1.0 - 1e-12))
        mappings = {}
        for layer in layers:
            tiles = [1 + pick(next(genes), extent) for extent in layer.dims.values()]
            order = ORDERS[pick(next(genes), len(ORDERS))]
            levels = Levels(*(pick(next(genes), len(LOOPS) + 1) for _ in OPERANDS))
            levels = levels if self.accelerator.operand_levels else INNERMOST
            mappings[layer.name] = Mapping(Tiling(*tiles), order, levels)
        groups: dict[tuple[str, str], GroupMapping] = {}
        if self.fusion > 1:
            joins, tiles, resident, halo = [], [], [], []
            modes = self.accelerator.halo
            for _ in layers:
                joins.append(next(genes) >= 0.5)
                tiles.append((next(genes), next(genes)))
                resident.append(next(genes) >= 0.5)
                halo.append(modes[pick(next(genes), len(modes))] if len(modes) > 1 else modes[0])
            start = 0
            for i in range(len(layers)):
                if i + 1 < len(layers) and joins[i]:
                    continue
                if i + 1 - start >= 2 and i + 1 - start <= self.fusion and fusible(self.network, start, i + 1):
                    out = self.network.output_shapes[layers[i].name]
                    keep = frozenset(
                        layer.name for layer, r in zip(layers[start : i + 1], resident[start : i + 1], strict=True)
                        if r and layer.has_weights
                    )  # fmt: skip
                    rows, cols = tiles[i]
                    groups[layers[start].name, layers[i].name] = GroupMapping(
                        1 + pick(rows, out.height), 1 + pick(cols, out.width), keep, halo[i]
                    )
                    for layer in layers[start : i + 1]:
                        del mappings[layer.name]
                start = i + 1
        sizes = {b.name: b.capacity_bytes for b in self.accelerator.buffers}
        split = self.accelerator.split
        if split is not None:
            banks = split_banks(next(genes), next(genes), split.banks)
            sizes = {b.name: n * split.bank_bytes for b, n in zip(self.accelerator.buffers, banks, strict=True)}
        return Design(mappings, groups, sizes)

    def repair(self, design: Design) -> Design | None:
        """The design with every unit made to fit its buffers, or None if one never can."""
        acc = sized(self.accelerator, design.sizes)
        mappings = dict(design.mappings)
        groups = {}
        for key, mapping in design.groups.items():
            fitted = self._fit_group(acc, key, mapping)
            if fitted is None:  # run the group's layers alone instead
                for layer in Segment.of(self.network, *key).layers:
                    mappings[layer.name] = Mapping(Tiling(1, 1, 1, 1), ORDERS[0])  # every operand innermost
            else:
                groups[key] = fitted
        for name, mapping in mappings.items():
            fitted = self._fit_layer(acc, name, mapping)
            if fitted is None:
                return None
            mappings[name] = fitted
        return Design(mappings, groups, design.sizes)

    def score(self, design: Design) -> float:
        """The objective's cost of a repaired design."""
        acc = sized(self.accelerator, design.sizes)
        total = 0.0
        for name, mapping in design.mappings.items():
            key = ("layer", name, mapping, tuple(design.sizes.values()))
            if key not in self._memo:
                layer = self.network.by_name[name]
                moved, hidden = traffic(layer, mapping).total / 8, exposed(layer, mapping) / 8
                self._memo[key] = cost(self.objective, layer, acc, moved, hidden).item()
            total += self._memo[key]
        for group, mapping in design.groups.items():
            key = ("group", group, mapping, tuple(design.sizes.values()))
            if key not in self._memo:
                segment = Segment.of(self.network, *group)
                c = group_cost(segment, mapping, acc.double_buffering, acc.liveness)
                self._memo[key] = group_objective(self.objective, acc, segment, c)
            total += self._memo[key]
        return total

    def evaluate(self, x: np.ndarray) -> tuple[float, Design | None]:
        design = self.repair(self.decode(x))
        return (PENALTY, None) if design is None else (self.score(design), design)

    def _fit_layer(self, acc: Accelerator, name: str, mapping: Mapping) -> Mapping | None:
        """Move the level of the largest block one loop inward until every operand is innermost,
        then halve the largest tile, until the layer fits; None if even 1x1x1x1 does not."""
        layer = self.network.by_name[name]
        while not acc.holds(held := footprint(layer, mapping, acc.double_buffering, acc.accumulate_in_buffer)):
            outer = [op for op in OPERANDS if mapping.levels.of(op) < len(LOOPS)]
            if outer:
                op = max(outer, key=lambda op: (held[op], -OPERANDS.index(op)))
                mapping = replace(mapping, levels=mapping.levels._replace(**{op.value: mapping.levels.of(op) + 1}))
                continue
            tiling = mapping.tiling.as_dict()
            d = max(tiling, key=lambda d: (tiling[d], "mnrc".index(d)))
            if tiling[d] == 1:
                return None
            tiling[d] = math.ceil(tiling[d] / 2)
            mapping = replace(mapping, tiling=Tiling(**tiling))
        return mapping

    def _fit_group(self, acc: Accelerator, key: tuple[str, str], mapping: GroupMapping) -> GroupMapping | None:
        """Drop resident weights (largest first), then halve the tile, until the group fits."""
        segment = Segment.of(self.network, *key)
        weights = {layer.name: layer.weight_elements for layer in segment.layers}
        while not acc.holds(group_cost(segment, mapping, acc.double_buffering, acc.liveness).footprint):
            if mapping.resident:
                heaviest = max(mapping.resident, key=lambda n: (weights[n], n))
                mapping = replace(mapping, resident=mapping.resident - {heaviest})
            elif mapping.rows > 1 or mapping.cols > 1:
                rows, cols = mapping.rows, mapping.cols
                rows, cols = (math.ceil(rows / 2), cols) if rows >= cols else (rows, math.ceil(cols / 2))
                mapping = replace(mapping, rows=rows, cols=cols)
            else:
                return None
        return mapping


@dataclass(frozen=True)
class SearchResult:
    method: str
    version: str
    design: Design | None
    """The best feasible design found; None if none was."""
    cost: float
    evaluations: int
    seconds: float
    curve: list[tuple[float, int, float]]
    """Best cost so far whenever it improved: (seconds, evaluations, cost)."""


class _Budget(Exception):
    """Raised inside an objective function to stop a search at its budget."""


def search(
    method: str,
    network: Network,
    accelerator: Accelerator,
    objective: Objective = Objective.DRAM,
    fusion: int = 0,
    evaluations: int = 2000,
    seconds: float | None = None,
    seed: int = 0,
) -> SearchResult:
    """Run one heuristic search until ``evaluations`` designs are scored, ``seconds`` pass, or
    Ctrl-C asks it to stop (see ``dse_milp.stopping``)."""
    space = SearchSpace(network, accelerator, objective, fusion)
    best: list = [math.inf, None]
    curve: list[tuple[float, int, float]] = []
    count = [0]
    start = time.perf_counter()

    def f(x: np.ndarray) -> float:
        if count[0] >= evaluations or (seconds is not None and time.perf_counter() - start >= seconds) or interrupted():
            raise _Budget
        count[0] += 1
        value, design = space.evaluate(np.asarray(x, dtype=float))
        if design is not None and value < best[0]:
            best[:] = [value, design]
            curve.append((time.perf_counter() - start, count[0], value))
        return value

    with contextlib.suppress(_Budget):
        drive(method, f, space.genes, evaluations, seed)
    version = metadata.version("scipy" if method == "anneal" else "pymoo")
    return SearchResult(method, version, best[1], best[0], count[0], time.perf_counter() - start, curve)


def drive(method: str, f: object, genes: int, evaluations: int, seed: int) -> None:
    """Drive ``f`` (genes in [0, 1) to a cost) with the chosen library (``anneal``: SciPy,
    ``genetic`` or ``random``: pymoo) for ``evaluations`` calls, or until ``f`` raises."""
    if method == "anneal":
        from scipy.optimize import dual_annealing

        dual_annealing(f, bounds=[(0.0, 1.0)] * genes, seed=seed, maxfun=evaluations, no_local_search=True)
        return
    from pymoo.algorithms.soo.nonconvex.ga import GA
    from pymoo.algorithms.soo.nonconvex.random_search import RandomSearch
    from pymoo.core.problem import ElementwiseProblem
    from pymoo.optimize import minimize

    class Problem(ElementwiseProblem):
        def __init__(self) -> None:
            super().__init__(n_var=genes, n_obj=1, xl=0.0, xu=1.0)

        def _evaluate(self, x: np.ndarray, out: dict, *args: object, **kwargs: object) -> None:
            out["F"] = f(x)  # type: ignore[operator]

    algorithm = RandomSearch() if method == "random" else GA(pop_size=min(100, max(10, evaluations // 20)))
    minimize(Problem(), algorithm, ("n_eval", evaluations + 1), seed=seed, verbose=False)


def heuristic_solution(
    method: str,
    network: Network,
    accelerator: Accelerator,
    objective: Objective = Objective.DRAM,
    fusion: int = 0,
    evaluations: int = 2000,
    seconds: float | None = None,
    seed: int = 0,
    layout: Layout = NCHW,
    space: str = "own",
) -> Solution:
    """The best design a search finds, checked and reported like the program's solution.

    Layer by layer (no fusion, fixed buffers), ``method`` is one of ``dse_milp.mappers``'s,
    run on each layer on its own in ``space``, as its authors run it; with fusion and fixed
    buffers, ``random``, ``anneal`` or ``genetic`` search per unit, then over the fusion
    boundaries (``dse_milp.mappers.fused``); under a free split, over the complete splits,
    each split tried searched so (``dse_milp.mappers.split``). ``search`` (this module)
    searches the whole design at once, for comparison. Its status is ``feasible`` (a search
    proves nothing); NoSolutionError if no design found fits. The searches score bytes;
    with DRAM bursts the design found is
    reported with every feature map in ``layout``.
    """
    from dse_milp.mappers import map_layers
    from dse_milp.mappers.fused import METHODS as FUSED_METHODS
    from dse_milp.mappers.fused import map_fused
    from dse_milp.mappers.split import METHODS as SPLIT_METHODS
    from dse_milp.mappers.split import map_split

    if fusion <= 1 and accelerator.split is None:
        run = map_layers(method, network, accelerator, objective, space, evaluations, seconds, seed)
        if run.mappings is None:
            stuck = [r.layers[0] for r in run.runs if r.mapping is None]
            names = ", ".join(show(name) for name in stuck[:3])
            names += f" and {len(stuck) - 3} more" if len(stuck) > 3 else ""
            raise NoSolutionError(f"{method} found no mapping that fits for layer {names} within its budget "
                                  f"({run.evaluations} evaluations, {run.seconds:.2f} s)")  # fmt: skip
        sizes = {b.name: b.capacity_bytes for b in accelerator.buffers}
        design, cost_, curve = Design(run.mappings, {}, sizes), run.cost, tuple(run.curve())
        found, spent, version = run.evaluations, run.seconds, _version(method)
    elif accelerator.split is None and method in FUSED_METHODS:
        fused = map_fused(method, network, accelerator, objective, fusion, evaluations, seconds, seed, space)
        if not math.isfinite(fused.cost):
            raise NoSolutionError(f"{method} found no design that fits within its budget ({fused.evaluations} "
                                  f"evaluations, {fused.seconds:.2f} s)")  # fmt: skip
        sizes = {b.name: b.capacity_bytes for b in accelerator.buffers}
        design, cost_, curve = Design(fused.mappings, fused.groups, sizes), fused.cost, ()
        found, spent, version = fused.evaluations, fused.seconds, _version(method)
    elif method in SPLIT_METHODS:
        found_split = map_split(method, network, accelerator, objective, fusion, evaluations, seconds, seed, space)
        if not math.isfinite(found_split.cost):
            raise NoSolutionError(f"{method} found no design that fits in the {found_split.splits} splits it tried "
                                  f"({found_split.evaluations} evaluations, {found_split.seconds:.2f} s)")  # fmt: skip
        design = Design(found_split.mappings, found_split.groups, found_split.sizes)
        cost_, curve = found_split.cost, found_split.curve
        found, spent, version = found_split.evaluations, found_split.seconds, _version(method)
    else:
        result = search(method, network, accelerator, objective, fusion, evaluations, seconds, seed)
        if result.design is None:
            raise NoSolutionError(f"{method} found no design that fits in {result.evaluations} evaluations")
        design, cost_, curve = result.design, result.cost, tuple(result.curve)
        found, spent, version = result.evaluations, result.seconds, result.version
    acc = sized(accelerator, design.sizes)
    layers, groups = design_results(network, acc, design.mappings, design.groups, layouts=layout)
    status = SolveResult(Status.FEASIBLE, cost_, None, spent, method, version)
    return Solution(
        network, accelerator, (objective,), status, layers, groups, {"search": spent}, dict(design.sizes),
        curve=curve, evaluations=found, layout=str(layout),
        layouts=_tensor_layouts(network, layout) if accelerator.burst_bytes > 1 else {},
    )  # fmt: skip


def _version(method: str) -> str:
    """What ran a per-layer search: the library and its version, or this package's mapper."""
    if method == "anneal":
        return f"scipy {metadata.version('scipy')}"
    if method in ("genetic", "random"):
        return f"pymoo {metadata.version('pymoo')}"
    return f"dse_milp {metadata.version('dse_milp')} ({'Timeloop-style' if method == 'timeloop' else 'LOMA-style'})"


def _tensor_layouts(network: Network, layout: Layout) -> dict[str, Layout]:
    """Every tensor of ``network`` in DRAM, in ``layout``."""
    return {tensor: layout for layer in network.layers for tensor in (*layer.inputs, layer.name)}
