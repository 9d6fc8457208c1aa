"""Buffer-partition co-design: the free split against every fixed split."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from dse_milp.accelerator import Accelerator, Energy, Split, free_split, separate_buffers, unified_buffer
from dse_milp.candidates import generate, non_dominated, split_front
from dse_milp.cost import Objective
from dse_milp.errors import InfeasibleError
from dse_milp.loader import load_accelerator, load_network, parse_network
from dse_milp.solution import solve
from dse_milp.solvers import SolverOptions, Status
from tests.layers import random_free_split, random_network_spec

ENERGY = Energy(20.0, 0.6, 0.2)


def test_split_front_equals_brute_force_dominance():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 300))
        banks = rng.integers(0, 6, size=(n, 3))
        traffic = rng.integers(0, 40, size=n)
        size = rng.integers(0, 10, size=n)
        kept = split_front(traffic, banks, size)
        points = np.column_stack([traffic, banks])
        expected = set(np.flatnonzero(non_dominated(points)))
        # of identical (traffic, banks) points, split_front keeps the smallest size: compare the values
        assert {tuple(points[k]) for k in kept} == {tuple(points[k]) for k in expected}
        assert len(kept) == len({tuple(points[k]) for k in kept})


def best_fixed_split(network, split: Split, objective: Objective, fusion: int) -> tuple[float, tuple[int, int, int]]:
    """The best of every fixed split of the banks (each buffer 0..banks banks, all banks used)."""
    best = (np.inf, (0, 0, 0))
    for i, w in itertools.product(range(split.banks + 1), repeat=2):
        o = split.banks - i - w
        if o < 0:
            continue
        sizes = [split.bank_bytes * b for b in (i, w, o)]
        accelerator = Accelerator("fixed", separate_buffers(*sizes), False, 4.0, 100.0, 8, ENERGY)
        try:
            value = solve(network, accelerator, objective, fusion=fusion, prices=False).result.objective
        except InfeasibleError:
            continue
        best = min(best, (value, (i, w, o)))
    return best


@pytest.mark.parametrize("decompose", [True, False])
@pytest.mark.parametrize("seed", range(12))
def test_free_split_equals_the_best_fixed_split(seed: int, decompose: bool):
    """Through the enumeration of complete splits (``decompose``) or the program alone."""
    rng = random.Random(seed)
    network = parse_network(random_network_spec(rng, rng.randint(2, 4)))
    roomy = Accelerator("roomy", unified_buffer(1 << 20), False, 4.0, 100.0, 8, ENERGY)
    need = max(generate(layer, roomy).smallest_footprint.sum() / 8 for layer in network.layers)
    bank = max(1, int(need * rng.uniform(0.3, 1.0)))
    banks = rng.randint(3, 7)
    buffers, split = free_split(bank * banks, bank)
    free = Accelerator("free", buffers, False, 4.0, 100.0, 8, ENERGY, split)
    objective = [Objective.DRAM, Objective.LATENCY, Objective.ENERGY][seed % 3]
    fusion = 4 if seed % 2 else 0
    expected, _ = best_fixed_split(network, split, objective, fusion)
    options = SolverOptions(decompose=decompose)
    if not np.isfinite(expected):
        with pytest.raises(InfeasibleError):
            solve(network, free, objective, options=options, fusion=fusion)
        return
    solution = solve(network, free, objective, options=options, fusion=fusion)
    assert solution.result.status is Status.OPTIMAL
    assert solution.result.objective == pytest.approx(expected, rel=1e-9)
    assert solution.result.bound == pytest.approx(expected, rel=1e-9)
    assert any("complete splits" in note for note in solution.notes) == decompose
    assert sum(solution.buffer_sizes.values()) == split.total_bytes
    assert all(size % bank == 0 for size in solution.buffer_sizes.values())


def test_free_split_never_worse_than_the_fixed_fpga_split():
    network = load_network("instances/networks/mobilenet_v2.yaml")
    fixed = load_accelerator("instances/accelerators/fpga.yaml")  # 64 + 64 + 32 KiB, double-buffered
    total = sum(b.capacity_bytes for b in fixed.buffers)
    buffers, split = free_split(total, 16 * 1024)
    free = Accelerator(
        "fpga-free", buffers, True, fixed.dram_bandwidth, fixed.clock_mhz, fixed.macs, fixed.energy, split
    )
    assert solve(network, free, prices=False).dram_bytes <= solve(network, fixed, prices=False).dram_bytes


@pytest.mark.parametrize("seed", range(8))
def test_lexicographic_objectives_through_the_split_enumeration_equal_the_program(seed: int):
    """Several objectives, fused groups, double buffering: the enumeration of complete splits
    then the program with that split fixed, and the program alone, reach the same optimum
    under every objective in turn."""
    network, free = random_free_split(random.Random(100 + seed), (3, 5), (3, 8), double_buffering=seed % 2 == 1)
    objectives = [(Objective.LATENCY, Objective.DRAM), (Objective.DRAM, Objective.ENERGY)][seed % 2]
    try:
        fast = solve(network, free, objectives, fusion=4, prices=False)
    except InfeasibleError:
        with pytest.raises(InfeasibleError):
            solve(network, free, objectives, options=SolverOptions(decompose=False), fusion=4, prices=False)
        return
    slow = solve(network, free, objectives, options=SolverOptions(decompose=False), fusion=4, prices=False)
    second = objectives[1]
    for solution in (fast, slow):
        assert solution.result.status is Status.OPTIMAL
    assert fast.result.objective == pytest.approx(slow.result.objective, rel=1e-9)
    value = {Objective.DRAM: "dram_bytes", Objective.LATENCY: "latency_cycles", Objective.ENERGY: "energy_pj"}
    assert getattr(fast, value[second]) == pytest.approx(getattr(slow, value[second]), rel=1e-9)


def test_a_gap_on_the_split_s_program_is_no_internal_error():
    """With a relative gap asked for, the program with the enumerated split fixed may stop
    above the enumeration's optimum: the run reports it, bounded by the enumeration."""
    network = load_network("instances/networks/tiny_resnet8.yaml")
    buffers, split = free_split(32 * 1024, 4 * 1024)
    free = Accelerator("free", buffers, False, 4.0, 100.0, 8, ENERGY, split)
    exact = solve(network, free, fusion=4, prices=False)
    loose = solve(network, free, options=SolverOptions(mip_gap=0.5), fusion=4, prices=False)
    assert loose.result.bound == pytest.approx(exact.result.objective, rel=1e-9)
    assert loose.result.objective >= exact.result.objective * (1 - 1e-9)
