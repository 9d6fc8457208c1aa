"""The main job: candidates for every layer and fused group, the MILP, a solver, a checked solution."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dse_milp.accelerator import Accelerator, sized
from dse_milp.burst_candidates import AUTO_LAYOUTS
from dse_milp.bursts import group_bursts, layer_bursts
from dse_milp.candidates import OnChip, fewest_tiles, shape_of
from dse_milp.check import check_mappings, kept_bytes
from dse_milp.cost import Objective, cost, ranked_by_objectives
from dse_milp.decompose import best_of_each_unit, split_bounds
from dse_milp.diagnose import infeasibility
from dse_milp.duals import shadow_prices
from dse_milp.errors import DseError, InfeasibleError, InterruptedRun, NoSolutionError
from dse_milp.fusion import (
    GroupCost,
    GroupMapping,
    Segment,
    coarsest_group,
    group_objective,
)
from dse_milp.layouts import AUTO, NCHW, Layout, Layouts
from dse_milp.program import search_splits, solve_program
from dse_milp.solvers import DEFAULT, SolveResult, SolverOptions, Status, get_backend
from dse_milp.stopping import interrupted, stop_reason
from dse_milp.traffic import Mapping, Traffic, exposed, tile_count
from dse_milp.units import build_problem, stop_if_asked
from dse_milp.workers import ordered
from dse_milp.workload import NETWORK_INPUT, Layer, Network, Operand
from formulations import (
    MappingProblem,
)


@dataclass(frozen=True)
class GroupResult:
    """A fused group of the solution."""

    segment: Segment
    mapping: GroupMapping
    cost: GroupCost
    buffer_bytes: dict[str, float]
    candidates: int
    latency_cycles: float
    energy_pj: float
    shadow_price: dict[str, float] | None
    """Objective units saved per extra byte of each buffer for this group (see dse_milp.duals)."""
    bursts: dict[str, Traffic] | None = None
    """DRAM bursts by layer and kind of transfer (counts), when the accelerator's burst is
    more than a byte."""
    layouts: Layouts | None = None
    """With DRAM bursts, the layouts of the tensors it reads and of its output."""

    @property
    def dram_bytes(self) -> float:
        return self.cost.traffic.total / 8

    @property
    def name(self) -> str:
        return f"{self.segment.layers[0].name}..{self.segment.last.name}"


@dataclass(frozen=True)
class LayerResult:
    layer: Layer
    mapping: Mapping | None
    """Its tiling and loop order when it runs alone; None inside a fused group."""
    group: GroupResult | None
    traffic: Traffic
    """Bits, by kind of transfer (inside a group: the group's transfers charged to this layer)."""
    buffer_bytes: dict[str, float]
    """Bytes of each buffer its tiles (or its group's) occupy."""
    candidates: int
    latency_cycles: float | None
    """None inside a fused group (see the group)."""
    energy_pj: float | None
    shadow_price: dict[str, float] | None
    """Objective units saved per extra byte of each buffer for this layer (its group's when
    fused); None when not computed."""
    bursts: Traffic | None = None
    """DRAM bursts by kind of transfer (counts; inside a group, those charged to this layer),
    when the accelerator's burst is more than a byte."""
    layouts: Layouts | None = None
    """With DRAM bursts, the layouts of what it reads and writes (its group's when fused)."""

    @property
    def dram_bytes(self) -> float:
        return self.traffic.total / 8


@dataclass(frozen=True)
class Solution:
    network: Network
    accelerator: Accelerator
    objectives: tuple[Objective, ...]
    result: SolveResult
    """Status, objective and bound of the first objective."""
    layers: tuple[LayerResult, ...]
    groups: tuple[GroupResult, ...]
    seconds: dict[str, float]
    """Wall time of each step: candidates, build, solve, prices."""
    buffer_sizes: dict[str, int]
    """Bytes of each buffer: the accelerator's, or the program's choice under a free split."""
    notes: tuple[str, ...] = ()
    """What the run left out or cut short, and why (``prices skipped (time limit)``)."""
    marginals: dict[str, float | None] | None = None
    """DRAM bytes saved per removed output channel, by layer (see ``dse_milp.marginals``)."""
    curve: tuple[tuple[float, int, float], ...] | None = None
    """For a heuristic search: its best cost whenever it improved, (seconds, evaluations, cost)."""
    evaluations: int | None = None
    """For a heuristic search: the designs it scored."""
    layout: str = AUTO
    """The layouts asked for: ``auto`` (the program's choice) or one layout for every tensor."""
    layouts: dict[str, Layout] = field(default_factory=dict)
    """With DRAM bursts: the layout of each tensor in DRAM, by tensor (the network input's
    name, or the layer that writes it)."""
    kept_tensors: frozenset[str] = frozenset()
    """Tensors kept on chip between units (``Accelerator.keep_tensors``)."""

    @property
    def moved_bytes(self) -> float | None:
        """Bytes the DRAM bursts move (every burst whole); None when the burst is one byte."""
        if self.accelerator.burst_bytes == 1:
            return None
        return sum(r.bursts.total for r in self.layers if r.bursts is not None) * self.accelerator.burst_bytes

    @property
    def dram_bytes(self) -> float:
        return sum(layer.dram_bytes for layer in self.layers)

    @property
    def compulsory_bytes(self) -> float:
        return compulsory_bytes(self.network)

    @property
    def latency_cycles(self) -> float:
        return sum(r.latency_cycles for r in (*self.layers, *self.groups) if r.latency_cycles is not None)

    @property
    def energy_pj(self) -> float:
        return sum(r.energy_pj for r in (*self.layers, *self.groups) if r.energy_pj is not None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON result, as ``solve --out`` writes it (keys in README.md)."""
        from dse_milp.report import solution_record

        return solution_record(self)

    def layers_frame(self) -> Any:
        """One row per layer (a pandas DataFrame; pandas is not a dependency): its name, kind,
        fused group, tiles, order, DRAM bytes by kind and in total, buffer bytes, latency,
        energy and shadow prices, flattened from ``to_dict()``'s layers (``tiles.m``,
        ``dram_bytes.total``, ``shadow_price.unified``, ...)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Solution.layers_frame needs pandas (pip install pandas)") from None
        return pd.json_normalize(self.to_dict()["layers"], sep=".")


def layout_choices(accelerator: Accelerator, layout: Layout | str) -> tuple[Layout, ...]:
    """The layouts the program may give each tensor: none to choose without DRAM bursts, the
    one asked for, or under ``AUTO`` every layout of ``AUTO_LAYOUTS``."""
    if accelerator.burst_bytes == 1:
        return ()
    return AUTO_LAYOUTS if layout == AUTO else (Layout.parse(str(layout)),)


def compulsory_bytes(network: Network) -> float:
    """Every weight, the network input and every layer output, each moved once."""
    first_reader = next(layer for layer in network.layers if NETWORK_INPUT in layer.inputs)
    bits = network.input_shape.elements * first_reader.precision.input
    for layer in network.layers:
        bits += layer.parameter_elements * layer.precision.weight + layer.output_elements * layer.precision.output
    return bits / 8


def lexicographic(objectives: Sequence[Objective]) -> tuple[Objective, ...]:
    """The objectives in order, and a tie-breaker: equal latencies are settled by least traffic.

    (DRAM bytes and energy have no systematic ties: the candidates of a layer or
    group that cost the same are reduced to one, in the stated order.)
    """
    order = list(dict.fromkeys(objectives))
    if order[-1] is Objective.LATENCY and Objective.DRAM not in order:
        order.append(Objective.DRAM)
    return tuple(order)


def solve(
    network: Network,
    accelerator: Accelerator,
    objective: Objective | Sequence[Objective] = Objective.DRAM,
    solver: str = DEFAULT,
    options: SolverOptions | None = None,
    fusion: int = 0,
    prices: bool = True,
    cache: dict | None = None,
    layout: Layout | str = AUTO,
) -> Solution:
    """The proven-optimal mapping of every layer (or the best found within the time limit).

    ``objective`` may list several objectives, minimised lexicographically.
    ``fusion`` is the most layers one fused group may hold; 0 or 1 runs every
    layer alone. ``prices`` computes every layer's and group's shadow price of
    each buffer (see ``dse_milp.duals``). ``cache`` is passed to ``build_problem``.
    With DRAM bursts (an accelerator's burst of more than a byte) the program minimises the
    bytes its whole bursts move, with each tensor in ``layout``, or under ``AUTO`` in the
    layout it chooses for it (one per tensor, shared by its writer and readers).
    """
    options = (options or SolverOptions()).started()
    backend = get_backend(solver)
    objectives = lexicographic([objective] if isinstance(objective, Objective) else objective)
    seconds: dict[str, float] = {}
    notes: list[str] = []

    start = time.perf_counter()
    choices = layout_choices(accelerator, layout)
    problem = build_problem(network, accelerator, objectives, fusion, cache, options.deadline, choices, options.jobs)
    counts = {name: len(cands) for name, cands in problem.candidates.items()}
    counts |= {f"{key[0]}..{key[1]}": len(cands) for key, cands in problem.groups.items()}
    generated = problem  # the shadow prices' LP steps take every candidate of a unit
    decompose = options.decompose and not accelerator.keep_tensors
    if decompose and accelerator.split is None:
        problem = best_of_each_unit(problem)  # only the segmentation and the layouts couple the units
    seconds["candidates"] = time.perf_counter() - start

    start = time.perf_counter()
    stop_if_asked(options.deadline, f"before {solver} started")
    if decompose and accelerator.split:
        solved = search_splits(problem, split_bounds(problem), backend, options, choices)
        if solved is None:
            raise InfeasibleError(infeasibility(problem))
    else:
        solved = solve_program(problem, backend, options, choices)
    problem, result = solved.problem, solved.result
    seconds["build"] = solved.build_seconds
    if result.status is Status.INFEASIBLE:
        raise InfeasibleError(infeasibility(problem))
    if result.status is Status.NO_SOLUTION:
        message = f"{solver} stopped after {result.seconds:.1f} s without a solution"
        raise InterruptedRun(f"interrupted: {message}") if interrupted() else NoSolutionError(message)
    if not result.has_solution:
        raise DseError(f"{solver} failed ({result.status})")
    notes += solved.notes
    chosen, fused, sizes, stored, kept = solved.chosen, solved.fused, solved.sizes, solved.stored, solved.kept
    seconds["solve"] = time.perf_counter() - start - solved.build_seconds

    settled = replace(problem, accelerator=sized(accelerator, sizes))  # a free split, now chosen
    shadow: dict[str, dict[str, float]] = {}
    if prices:
        start = time.perf_counter()
        units = [name for name in chosen] + [Segment.of(network, *key) for key in fused]
        held = {name: problem.candidates[name].layouts[k] for name, k in chosen.items() if choices}
        held |= {f"{a}..{b}": problem.groups[a, b].layouts[k] for (a, b), k in fused.items() if choices}
        every = replace(generated, accelerator=settled.accelerator)
        on_chip = _kept_by_unit(problem, chosen, fused, kept)
        shadow, note = shadow_prices(every, units, options.deadline, held, on_chip, options.jobs)
        notes += [note] if note else []
        seconds["prices"] = time.perf_counter() - start
    by_name = {str(x): x for x in choices}
    tensor_layouts = {tensor: by_name[name] for tensor, name in stored.items()}
    layers, groups, note = _results(settled, chosen, fused, shadow, counts, options.deadline, kept, options.jobs)
    notes += [note] if note else []
    primary = Solution(network, accelerator, objectives, result, layers, groups, seconds, sizes)
    value = {
        Objective.DRAM: primary.dram_bytes if primary.moved_bytes is None else primary.moved_bytes,
        Objective.LATENCY: primary.latency_cycles,
        Objective.ENERGY: primary.energy_pj,
    }[objectives[0]]
    if result.objective is not None and value < result.objective * (1 - 1e-9):
        notes.append(
            f"coarsening after the solve moves less than the program's optimum over its candidates "
            f"({_figure(value)} against {_figure(result.objective)} {objectives[0].unit}): the coarser "
            f"mappings it found are not among the candidates priced in bursts"
        )
    status = result.status
    if status is Status.FEASIBLE and interrupted():
        notes.insert(0, f"{solver} was interrupted (Ctrl-C)")
    result = SolveResult(status, value, result.bound, seconds["solve"], result.solver, result.version)
    return Solution(
        network, accelerator, objectives, result, layers, groups, seconds, sizes, notes=tuple(notes),
        layout=str(layout), layouts=tensor_layouts, kept_tensors=kept,
    )  # fmt: skip


def _less(accelerator: Accelerator, held: float) -> Accelerator:
    """``accelerator`` with ``held`` bytes of its output operand's buffer taken."""
    holder = accelerator.buffer_of(Operand.OUTPUT).name
    buffers = tuple(replace(b, capacity_bytes=int(b.capacity_bytes - held)) if b.name == holder else b
                    for b in accelerator.buffers)  # fmt: skip
    return replace(accelerator, buffers=buffers)


def _kept_by_unit(problem: MappingProblem, chosen: dict[str, int], fused: dict[tuple[str, str], int],
                  kept: frozenset[str]) -> dict[str, tuple[frozenset[str], float]]:  # fmt: skip
    """Each chosen unit's tensors found or left on chip, and the bytes the kept tensors hold
    while it runs (in whole banks under a free split, as the program counts them): for the
    shadow prices, and the room a coarser mapping must leave."""
    if not kept:
        return {}
    network, split = problem.network, problem.accelerator.split
    bank = None if split is None else split.bank_bytes
    position = {layer.name: i for i, layer in enumerate(network.layers)}
    units = {name: (problem.candidates[name], k, position[name], position[name]) for name, k in chosen.items()}
    units |= {f"{a}..{b}": (problem.groups[a, b], k, position[a], position[b]) for (a, b), k in fused.items()}
    return {
        name: (cands.kept[k] if cands.kept else frozenset(), kept_bytes(network, kept, start, stop, bank))
        for name, (cands, k, start, stop) in units.items()
    }


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _results(
    problem: MappingProblem,
    chosen: dict[str, int],
    fused: dict[tuple[str, str], int],
    shadow: dict[str, dict[str, float]],
    counts: dict[str, int],
    deadline: float | None = None,
    kept: frozenset[str] = frozenset(),
    jobs: int = 1,
) -> tuple[tuple[LayerResult, ...], tuple[GroupResult, ...], str | None]:
    """The program's choices, re-evaluated by the independent checker, which must agree with
    the candidates' own figures, and a note on the units left uncoarsened (``counts``: each
    unit's candidate mappings, as generated, for the report). Until Ctrl-C or
    ``deadline``, a layer run alone gets, of the mappings that move the same traffic in its
    buffers, the one with the fewest tiles (``fewest_tiles``), and a fused group, of those
    that cost no more, likewise (``coarsest_group``); with DRAM bursts, only if it moves no
    more bursts than the candidate (and, for a layer, has no more tiles: a candidate's tiles
    may span several groups, which ``fewest_tiles`` does not try). The layers' searches, one
    per shape, run on up to ``jobs`` worker processes."""
    stopped: list[str] = []  # why the coarsening stopped, once it has
    skipped = 0

    def coarsening() -> bool:
        nonlocal skipped
        if not stopped and (reason := stop_reason(deadline)) is not None:
            stopped.append(reason)
        skipped += bool(stopped)
        return not stopped

    acc = problem.accelerator
    burst = acc.burst_bytes if problem.layouts else 0
    mappings, layouts = {}, {}
    # with the exposed bits in the costs, the coarser mapping may not expose more of them
    exposing = ranked_by_objectives(problem.objectives, acc)
    # a coarser mapping must leave room for the tensors kept on chip while its unit runs
    room = {name: _less(acc, held) for name, (_, held) in _kept_by_unit(problem, chosen, fused, kept).items()}
    asked: dict[str, tuple[Layer, Accelerator, int, int | None]] = {}  # what fewest_tiles looks for
    for name, k in chosen.items():
        cands = problem.candidates[name]
        mappings[name] = cands.mapping(k)
        if burst:
            layouts[name] = cands.layouts[k]
        bound = int(cands.exposed[k]) if exposing else None
        if not (cands.kept and cands.kept[k]):  # its figures leave out what it keeps: not the search's
            asked[name] = (shape_of(cands.layer), room.get(name, acc), int(cands.useful_bits[k]), bound)
    distinct = list(dict.fromkeys(asked.values()))  # layers of one shape share the search
    with contextlib.closing(ordered(_fewest_tiles, distinct, jobs, deadline)) as results:
        found = dict(zip(distinct, results, strict=False))
    if len(found) < len(distinct) and (reason := stop_reason(deadline)) is not None:
        stopped.append(reason)  # the searches stopped short
    for name, query in asked.items():
        k = chosen[name]
        cands = problem.candidates[name]
        if query not in found:
            skipped += 1
            continue
        coarsest = found[query]
        if coarsest is not None and (
            not burst
            or (
                _moved(cands.layer, coarsest, layouts[name], burst) <= cands.total_bits[k]
                and tile_count(cands.layer, coarsest) <= tile_count(cands.layer, mappings[name])
            )
        ):
            mappings[name] = coarsest
    group_mappings = {}
    for key, k in fused.items():
        chosen_group = problem.groups[key]
        mapping = chosen_group.mappings[k]
        name = f"{key[0]}..{key[1]}"
        if burst:
            layouts[name] = chosen_group.layouts[k]
        if coarsening() and not (chosen_group.kept and chosen_group.kept[k]):
            coarse = coarsest_group(chosen_group.segment, room.get(name, acc), problem.objectives, mapping)
            if not burst or _moved(chosen_group.segment, coarse, layouts[name], burst) <= chosen_group.total_bits[k]:
                mapping = coarse
        group_mappings[key] = mapping
    layers, groups = design_results(
        problem.network, acc, mappings, group_mappings, counts, shadow, layouts if burst else NCHW, kept
    )
    expected = {name: int(problem.candidates[name].useful_bits[k]) for name, k in chosen.items()}
    expected |= {f"{a}..{b}": int(problem.groups[a, b].useful_bits[k]) for (a, b), k in fused.items()}
    found = {r.layer.name: r.traffic.total for r in layers if r.group is None}
    found |= {g.name: g.cost.traffic.total for g in groups}
    if expected != found:
        raise DseError("internal error: closed forms and candidate traffic differ")
    if burst:  # what the bursts move: the candidate's figure, or less once coarsened
        priced = {name: int(problem.candidates[name].total_bits[k]) for name, k in chosen.items()}
        priced |= {f"{a}..{b}": int(problem.groups[a, b].total_bits[k]) for (a, b), k in fused.items()}
        moved = {r.layer.name: 8 * burst * r.bursts.total for r in layers if r.group is None and r.bursts}
        moved |= {g.name: 8 * burst * sum(g.bursts.values(), Traffic()).total for g in groups if g.bursts}
        if any(moved[name] > priced[name] for name in priced):
            raise DseError("internal error: the bursts counted exceed the candidates' own")
    units = len(chosen) + len(fused)
    note = f"tiles of {skipped} of {units} units not coarsened ({stopped[0]})" if stopped else None
    return layers, groups, note


def _fewest_tiles(query: tuple[Layer, Accelerator, int, int | None]) -> Mapping | None:
    return fewest_tiles(*query)


def _moved(unit: Layer | Segment, mapping: Mapping | GroupMapping, layouts: Layouts, burst: int) -> int:
    """The bits the whole bursts of a layer's or a fused group's mapping move."""
    if isinstance(unit, Segment):
        assert isinstance(mapping, GroupMapping)
        return 8 * burst * sum(group_bursts(unit, mapping, layouts, burst).values(), Traffic()).total
    assert isinstance(mapping, Mapping)
    return 8 * burst * layer_bursts(unit, mapping, layouts, burst).total


def design_results(
    network: Network,
    accelerator: Accelerator,
    mappings: dict[str, Mapping],
    group_mappings: dict[tuple[str, str], GroupMapping],
    candidates: dict[str, int] | None = None,
    shadow: dict[str, dict[str, float]] | None = None,
    layouts: Layout | dict[str, Layouts] = NCHW,
    kept: frozenset[str] = frozenset(),
) -> tuple[tuple[LayerResult, ...], tuple[GroupResult, ...]]:
    """Evaluate a design (layers alone with their mappings, fused groups with theirs) with the
    independent checker; raise DseError if it breaks a rule. ``candidates`` counts each unit's
    candidate mappings (by layer name, or ``first..last``), ``shadow`` gives their prices.
    With a burst of more than a byte, the bursts are counted with the layouts of each unit
    (by unit name, as ``candidates``), or with every feature map in one layout, and the
    latency and energy are those of the bytes the bursts move."""
    burst = accelerator.burst_bytes

    def pair(name: str) -> Layouts:
        return layouts[name] if isinstance(layouts, dict) else Layouts(layouts, layouts)

    candidates, shadow = candidates or {}, shadow or {}
    acc = accelerator
    check = check_mappings(network, acc, mappings, group_mappings, kept)
    if check.violations:
        raise DseError("internal error: the design fails its check: " + "; ".join(check.violations))

    groups: dict[str, GroupResult] = {}
    for key, mapping in group_mappings.items():
        checked = check.groups[key]
        name = f"{key[0]}..{key[1]}"
        outer = frozenset(x for x in kept if x in checked.segment.externals or x == checked.segment.last.name)
        bursts = group_bursts(checked.segment, mapping, pair(name), burst, outer) if burst > 1 else None
        moved = None if bursts is None else 8 * burst * sum(bursts.values(), Traffic()).total
        result = GroupResult(
            segment=checked.segment,
            mapping=mapping,
            cost=checked.cost,
            buffer_bytes=checked.buffer_bytes,
            candidates=candidates.get(name, 0),
            latency_cycles=group_objective(Objective.LATENCY, acc, checked.segment, checked.cost, moved),
            energy_pj=group_objective(Objective.ENERGY, acc, checked.segment, checked.cost, moved),
            shadow_price=shadow.get(name),
            bursts=bursts,
            layouts=pair(name) if burst > 1 else None,
        )
        for layer in checked.segment.layers:
            groups[layer.name] = result

    results = []
    for layer in network.layers:
        group = groups.get(layer.name)
        if group is not None:
            results.append(
                LayerResult(
                    layer, None, group, group.cost.by_layer[layer.name], group.buffer_bytes,
                    candidates.get(layer.name, 0), None, None, group.shadow_price,
                    None if group.bursts is None else group.bursts[layer.name], group.layouts,
                )
            )  # fmt: skip
            continue
        checked = check.layers[layer.name]
        on_chip = OnChip.of(layer, kept)
        moved = (
            on_chip.less(layer, layer_bursts(layer, mappings[layer.name], pair(layer.name), burst))
            if burst > 1
            else None
        )
        dram = (checked.traffic.total / 8) if moved is None else moved.total * burst
        hidden = exposed(layer, mappings[layer.name], on_chip) / 8
        results.append(
            LayerResult(
                layer=layer,
                mapping=mappings[layer.name],
                group=None,
                traffic=checked.traffic,
                buffer_bytes=checked.buffer_bytes,
                candidates=candidates.get(layer.name, 0),
                latency_cycles=cost(Objective.LATENCY, layer, acc, dram, hidden).item(),
                energy_pj=cost(Objective.ENERGY, layer, acc, dram, hidden).item(),
                shadow_price=shadow.get(layer.name),
                bursts=moved,
                layouts=pair(layer.name) if burst > 1 else None,
            )
        )
    distinct = {id(group): group for group in groups.values()}  # in network order
    return tuple(results), tuple(distinct.values())
