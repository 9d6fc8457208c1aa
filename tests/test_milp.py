"""The whole-network program against brute force, and the solver backends against each other."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from dse_milp.accelerator import Accelerator, Energy, separate_buffers, unified_buffer
from dse_milp.candidates import generate
from dse_milp.check import check_mappings
from dse_milp.cost import Objective
from dse_milp.errors import InfeasibleError
from dse_milp.loader import load_accelerator, load_network, parse_network
from dse_milp.solution import solve
from dse_milp.solvers import BACKENDS, SolveResult, SolverOptions, Status
from tests.brute_force import best_network_cost
from tests.layers import random_network_spec

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = [name for name, backend in BACKENDS.items() if backend.available()]


def random_instance(seed: int) -> tuple:
    """A random tiny network and an accelerator whose buffers leave some layers short of room."""
    rng = random.Random(seed)
    network = parse_network(random_network_spec(rng, rng.randint(2, 4)), f"random-{seed}")
    double_buffering = rng.random() < 0.3
    roomy = Accelerator("roomy", unified_buffer(10**6), double_buffering, 4.0, 100.0, 8, Energy(20, 0.6, 0.2))
    need = max(generate(layer, roomy).smallest_footprint.sum() / 8 for layer in network.layers)
    capacity = int(need * rng.uniform(1.0, 4.0)) + 1
    separate = rng.random() < 0.3
    buffers = separate_buffers(capacity, capacity, capacity) if separate else unified_buffer(capacity)
    return network, Accelerator("random", buffers, double_buffering, 4.0, 100.0, rng.choice([1, 8]), roomy.energy)


@pytest.mark.parametrize("seed", range(60))
def test_optimum_equals_brute_force_on_random_tiny_networks(seed: int):
    network, accelerator = random_instance(seed)
    objective = [Objective.DRAM, Objective.DRAM, Objective.ENERGY, Objective.LATENCY][seed % 4]
    expected = best_network_cost(network, accelerator, objective)
    for solver in INSTALLED:
        solution = solve(network, accelerator, objective, solver)
        assert solution.result.status is Status.OPTIMAL, solver
        assert solution.result.objective == pytest.approx(expected, rel=1e-9), solver
        assert solution.result.bound == pytest.approx(expected, rel=1e-9), solver
        check = check_mappings(network, accelerator, {r.layer.name: r.mapping for r in solution.layers})
        assert check.feasible, check.violations


@pytest.mark.parametrize(
    ("network", "accelerator", "burst"),
    [("tiny_resnet8", "npu_32k", None), ("tiny_dscnn", "npu_32k", None), ("mobilenet_v2", "fpga", 1),
     ("bert_base_block", "npu_128k", 1)],
)  # fmt: skip
@pytest.mark.parametrize("objective", list(Objective))
def test_backends_agree_on_bundled_instances(network: str, accelerator: str, burst: int | None, objective: Objective):
    """The small networks with their accelerators' bursts, the large ones in bytes (``burst``
    1) to keep the suite fast: every backend reads the same linear form either way."""
    net = load_network(ROOT / "instances" / "networks" / f"{network}.yaml")
    acc = load_accelerator(ROOT / "instances" / "accelerators" / f"{accelerator}.yaml")
    acc = acc if burst is None else replace(acc, burst_bytes=burst)
    results = {solver: solve(net, acc, objective, solver) for solver in INSTALLED}
    values = {solver: s.result.objective for solver, s in results.items()}
    assert all(s.result.status is Status.OPTIMAL for s in results.values())
    reference = values["highs"]
    assert all(v == pytest.approx(reference, rel=1e-9) for v in values.values()), values


def test_latency_ties_are_broken_by_least_traffic():
    """Under the latency objective a compute-bound layer has many optimal mappings; the
    one reported is the least traffic among them (in the NPU's 128-byte bursts), the same
    with every solver, and so are the tensors' layouts, which tie here (the earliest wins)."""
    net = load_network(ROOT / "instances" / "networks" / "tiny_resnet8.yaml")
    acc = load_accelerator(ROOT / "instances" / "accelerators" / "npu_128k.yaml")
    by_latency = {solver: solve(net, acc, Objective.LATENCY, solver) for solver in INSTALLED}
    by_traffic = solve(net, acc, Objective.DRAM)
    for solution in by_latency.values():
        mappings = [r.mapping for r in solution.layers]
        assert mappings == [r.mapping for r in by_latency["highs"].layers]
        assert solution.layouts == by_latency["highs"].layouts
        assert solution.latency_cycles == pytest.approx(by_latency["highs"].latency_cycles)
    # least traffic is also least latency here, so the tie-break lands on the traffic optimum
    assert by_latency["highs"].dram_bytes == by_traffic.dram_bytes


@pytest.mark.parametrize(
    ("network", "accelerator", "burst"), [("mobilenet_v2", "npu_128k", 1), ("tiny_mobilenet_v1_025", "npu_32k", None)]
)
def test_same_input_same_answer(network: str, accelerator: str, burst: int | None):
    """Twice the same answer, ties included: in bytes on a network with many ties, and in
    bursts with the layouts chosen by the program."""
    net = load_network(ROOT / "instances" / "networks" / f"{network}.yaml")
    acc = load_accelerator(ROOT / "instances" / "accelerators" / f"{accelerator}.yaml")
    acc = acc if burst is None else replace(acc, burst_bytes=burst)
    first, second = solve(net, acc), solve(net, acc)
    assert [r.mapping for r in first.layers] == [r.mapping for r in second.layers]
    assert first.layouts == second.layouts


def test_a_buffer_too_small_names_each_layer_and_its_smallest_footprint():
    """With 20 bytes, the least tile of a 3x3 conv (one channel: 3x3 inputs, 3x3 weights and
    one 4-byte partial sum = 22 bytes) and of the 8x8 global pool (64 input bytes) do not
    fit; 1x1 convs, adds and the classifier do."""
    net = load_network(ROOT / "instances" / "networks" / "tiny_resnet8.yaml")
    acc = Accelerator("tiny", unified_buffer(20), False, 4.0, 100.0, 8, Energy(1, 1, 1))
    with pytest.raises(InfeasibleError) as raised:
        solve(net, acc)
    named = {p.split("'")[1] for p in raised.value.problems}
    assert named == {layer.name for layer in net.layers if layer.kh == 3 or layer.kind == "pool"}
    conv = next(p for p in raised.value.problems if "'conv1'" in p)
    assert "input 9 + weight 9 + output 4 bytes" in conv and "22 bytes > 20 bytes" in conv


def test_time_limit_reports_feasible_or_optimal():
    net = load_network(ROOT / "instances" / "networks" / "resnet18.yaml")
    acc = load_accelerator(ROOT / "instances" / "accelerators" / "npu_64k.yaml")
    solution = solve(net, acc, options=SolverOptions(time_limit=30.0))
    assert solution.result.status in (Status.OPTIMAL, Status.FEASIBLE)


def test_the_gap_is_zero_at_or_below_the_bound():
    """A design coarsened after the solve in bursts may move less than the program's bound
    over its candidates: its gap reads 0, not the distance to a bound it is below."""
    assert SolveResult(Status.OPTIMAL, 99.0, 100.0, 0.0, "x", "1").gap == 0.0
    assert SolveResult(Status.FEASIBLE, 110.0, 100.0, 0.0, "x", "1").gap == pytest.approx(10 / 110)
