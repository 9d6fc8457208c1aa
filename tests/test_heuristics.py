"""Heuristic searches: feasible, reproducible, and searching the program's own space."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from dse_milp.accelerator import Accelerator, Energy, sized, unified_buffer
from dse_milp.candidates import generate
from dse_milp.check import check_mappings
from dse_milp.cli import EXIT_OK, main
from dse_milp.halo import Halo
from dse_milp.heuristics import METHODS, search
from dse_milp.loader import load_accelerator, load_network, parse_network
from dse_milp.solution import solve
from tests.brute_force import best_network_cost
from tests.layers import random_network_spec

ROOT = Path(__file__).resolve().parent.parent
ENERGY = Energy(20.0, 0.6, 0.2)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("accelerator", "fusion"), [("npu_32k", 0), ("npu_32k", 6), ("npu_128k_split", 4), ("fpga", 0)]
)
def test_searches_return_feasible_designs(method: str, accelerator: str, fusion: int):
    network = load_network(ROOT / "instances/networks/tiny_resnet8.yaml")
    acc = load_accelerator(ROOT / f"instances/accelerators/{accelerator}.yaml")
    result = search(method, network, acc, fusion=fusion, evaluations=300, seed=3)
    assert result.design is not None
    check = check_mappings(network, sized(acc, result.design.sizes), result.design.mappings, result.design.groups)
    assert check.feasible, check.violations
    assert check.dram_bits / 8 == pytest.approx(result.cost)
    if acc.split is not None:
        assert sum(result.design.sizes.values()) == acc.split.total_bytes
    costs = [c for _, _, c in result.curve]
    assert costs == sorted(costs, reverse=True) and costs[-1] == result.cost


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("halo", [(Halo.ROWS,), tuple(Halo)])
def test_searches_choose_among_the_halo_modes_allowed(method: str, halo: tuple[Halo, ...]):
    """A group of a searched design uses a mode the accelerator allows (the only one, or one
    its genes choose), and the checker accepts the design."""
    network = load_network(ROOT / "instances/networks/tiny_resnet8.yaml")
    acc = replace(load_accelerator(ROOT / "instances/accelerators/npu_32k.yaml"), halo=halo)
    result = search(method, network, acc, fusion=4, evaluations=300, seed=3)
    assert result.design is not None and result.design.groups
    assert {mapping.halo for mapping in result.design.groups.values()} <= set(halo)
    check = check_mappings(network, sized(acc, result.design.sizes), result.design.mappings, result.design.groups)
    assert check.feasible, check.violations


@pytest.mark.parametrize("method", METHODS)
def test_a_seeded_search_is_reproducible(method: str):
    network = load_network(ROOT / "instances/networks/tiny_dscnn.yaml")
    acc = load_accelerator(ROOT / "instances/accelerators/npu_32k.yaml")
    first, second = (search(method, network, acc, fusion=4, evaluations=400, seed=7) for _ in range(2))
    assert first.design == second.design and first.cost == second.cost
    assert [(n, c) for _, n, c in first.curve] == [(n, c) for _, n, c in second.curve]


def tiny_instance(seed: int, layers: int) -> tuple:
    rng = random.Random(seed)
    network = parse_network(random_network_spec(rng, layers))
    roomy = Accelerator("roomy", unified_buffer(10**6), False, 4.0, 100.0, 8, ENERGY)
    need = max(generate(layer, roomy).smallest_footprint.sum() / 8 for layer in network.layers)
    return network, Accelerator("a", unified_buffer(int(need * 2) + 1), False, 4.0, 100.0, 8, ENERGY)


@pytest.mark.parametrize("seed", range(4))
def test_searches_reach_the_brute_force_optimum_with_enough_budget(seed: int):
    """On tiny networks every search finds the proven optimum: they search the same space,
    scored the same way. Random search gets the smaller networks: its chance of drawing the
    optimum shrinks with the product of the layers' spaces."""
    for method, layers in (("anneal", 2), ("genetic", 2), ("random", 1)):
        network, acc = tiny_instance(seed, layers)
        best = best_network_cost(network, acc)
        result = search(method, network, acc, evaluations=8000, seed=0)
        assert result.cost == pytest.approx(best, rel=1e-12), method


def test_solve_method_writes_the_program_format_and_never_beats_it(tmp_path):
    out = tmp_path / "h.json"
    argv = ["solve", "tiny_resnet8@npu-32k", "--method", "anneal", "--evaluations", "500", "--quiet"]
    assert main([*argv, "--out", str(out)]) == EXIT_OK
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["status"] == "feasible" and record["solver"] == "anneal" and record["bound"] is None
    assert record["evaluations"] == 500 and record["curve"][-1]["objective_value"] == record["objective_value"]
    assert sum(layer["dram_bytes"]["total"] for layer in record["layers"]) == record["totals"]["dram_bytes"]
    network = load_network(ROOT / "instances/networks/tiny_resnet8.yaml")
    optimum = solve(network, load_accelerator(ROOT / "instances/accelerators/npu_32k.yaml"), prices=False)
    assert record["objective_value"] >= optimum.dram_bytes
