"""The main job: candidates for every layer, the MILP, a solver, a checked solution."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import OPERANDS, generate
from dse_milp.check import check_mappings
from dse_milp.cost import Objective, cost
from dse_milp.errors import DseError, InfeasibleError, NoSolutionError
from dse_milp.solvers import DEFAULT, SolveResult, SolverOptions, Status, get_backend
from dse_milp.traffic import Mapping, Traffic
from dse_milp.workload import NETWORK_INPUT, Layer, Network
from formulations import MappingProblem, build_model, chosen_candidates, fix_stage


@dataclass(frozen=True)
class LayerResult:
    layer: Layer
    mapping: Mapping
    traffic: Traffic
    """Bits, by kind of transfer."""
    buffer_bytes: dict[str, float]
    candidates: int
    latency_cycles: float
    energy_pj: float

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
    seconds: dict[str, float]
    """Wall time of each step: candidates, build, solve."""

    @property
    def dram_bytes(self) -> float:
        return sum(layer.dram_bytes for layer in self.layers)

    @property
    def compulsory_bytes(self) -> float:
        return compulsory_bytes(self.network)

    @property
    def latency_cycles(self) -> float:
        return sum(layer.latency_cycles for layer in self.layers)

    @property
    def energy_pj(self) -> float:
        return sum(layer.energy_pj for layer in self.layers)


def compulsory_bytes(network: Network) -> float:
    """Every weight, the network input and every layer output, each moved once."""
    first_reader = next(layer for layer in network.layers if NETWORK_INPUT in layer.inputs)
    bits = network.input_shape.elements * first_reader.precision.input
    for layer in network.layers:
        bits += layer.parameter_elements * layer.precision.weight + layer.output_elements * layer.precision.output
    return bits / 8


def lexicographic(objective: Objective) -> tuple[Objective, ...]:
    """The objective and its tie-breakers: equal latencies are settled by least traffic.

    (DRAM bytes and energy have no ties to settle: every candidate of a layer has
    a different traffic, and energy grows strictly with it.)
    """
    return (objective, Objective.DRAM) if objective is Objective.LATENCY else (objective,)


def build_problem(network: Network, accelerator: Accelerator, objectives: tuple[Objective, ...]) -> MappingProblem:
    """Generate every layer's candidates; raise InfeasibleError naming each layer that fits none."""
    candidates = {layer.name: generate(layer, accelerator) for layer in network.layers}
    problems = [
        _does_not_fit(network.by_name[name], cands.smallest_footprint, accelerator)
        for name, cands in candidates.items()
        if len(cands) == 0
    ]
    if problems:
        raise InfeasibleError(problems)
    return MappingProblem(network, accelerator, candidates, objectives)


def _does_not_fit(layer: Layer, smallest: np.ndarray, accelerator: Accelerator) -> str:
    """The message for a layer none of whose mappings fits: its mapping of least total
    footprint (which therefore overflows some buffer) against the capacities."""
    per_operand = dict(zip(OPERANDS, smallest, strict=True))  # bits
    parts = " + ".join(f"{op.value} {per_operand[op] / 8:g}" for op in OPERANDS)
    over = [
        f"{sum(per_operand[op] for op in b.operands) / 8:g} bytes > {b.capacity_bytes} bytes in the {b.name} buffer"
        for b in accelerator.buffers
        if sum(per_operand[op] for op in b.operands) > 8 * b.capacity_bytes
    ]
    return f"layer {layer.name!r} fits no mapping: its smallest footprint ({parts} bytes) needs " + "; ".join(over)


def solve(
    network: Network,
    accelerator: Accelerator,
    objective: Objective = Objective.DRAM,
    solver: str = DEFAULT,
    options: SolverOptions | None = None,
) -> Solution:
    """The proven-optimal mapping of every layer (or the best found within the time limit)."""
    options = options or SolverOptions()
    backend = get_backend(solver)
    objectives = lexicographic(objective)
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    problem = build_problem(network, accelerator, objectives)
    seconds["candidates"] = time.perf_counter() - start

    start = time.perf_counter()
    model = build_model(problem)
    seconds["build"] = time.perf_counter() - start

    start = time.perf_counter()
    result = backend.solve(model, options)
    if result.status is Status.INFEASIBLE:
        raise InfeasibleError(["the mapping program is infeasible"])
    if result.status is Status.NO_SOLUTION:
        raise NoSolutionError(f"{solver} stopped after {result.seconds:.1f} s without a solution")
    if not result.has_solution:
        raise DseError(f"{solver} failed ({result.status})")
    chosen = chosen_candidates(model)
    for measure, tie_break in itertools.pairwise(objectives):
        fix_stage(model, measure.value, float(model.total[measure.value]()), tie_break.value)
        if backend.solve(model, options).has_solution:
            chosen = chosen_candidates(model)
    seconds["solve"] = time.perf_counter() - start

    layers = _layer_results(problem, chosen)
    primary = sum(cost(objective, r.layer, accelerator, r.dram_bytes).item() for r in layers)
    result = SolveResult(result.status, primary, result.bound, seconds["solve"], result.solver, result.version)
    return Solution(network, accelerator, objectives, result, layers, seconds)


def _layer_results(problem: MappingProblem, chosen: dict[str, int]) -> tuple[LayerResult, ...]:
    """The chosen mappings, re-evaluated by the independent checker."""
    mappings = {name: problem.candidates[name].mapping(k) for name, k in chosen.items()}
    check = check_mappings(problem.network, problem.accelerator, mappings)
    if check.violations:
        raise DseError("internal error: the solution fails its check: " + "; ".join(check.violations))
    results = []
    for layer in problem.network.layers:
        cands, k = problem.candidates[layer.name], chosen[layer.name]
        checked = check.layers[layer.name]
        if checked.traffic.total != int(cands.total_bits[k]):
            raise DseError(f"internal error: layer {layer.name!r}: closed form and candidate traffic differ")
        dram = checked.traffic.total / 8
        results.append(
            LayerResult(
                layer=layer,
                mapping=mappings[layer.name],
                traffic=checked.traffic,
                buffer_bytes=checked.buffer_bytes,
                candidates=len(cands),
                latency_cycles=cost(Objective.LATENCY, layer, problem.accelerator, dram).item(),
                energy_pj=cost(Objective.ENERGY, layer, problem.accelerator, dram).item(),
            )
        )
    return tuple(results)
