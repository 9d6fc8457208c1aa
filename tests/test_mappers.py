"""Per-layer mappers as their authors run them: feasible, reproducible, and each reaching the
brute-force optimum of its own space (and of the integer space) on tiny layers."""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dse_milp.check import check_mappings
from dse_milp.cli import EXIT_INPUT, EXIT_OK, EXIT_TIME_LIMIT, main
from dse_milp.cost import Objective, cost
from dse_milp.loader import load_accelerator, load_network, parse_network
from dse_milp.mappers import INTEGERS, METHODS, OWN, SPACES, map_layers, searcher
from dse_milp.mappers.fused import METHODS as FUSED_METHODS
from dse_milp.mappers.fused import map_fused
from dse_milp.mappers.loma import allocations, loma, loop_prime_factors
from dse_milp.mappers.space import Stop, Tracker, divisors, prime_factors
from dse_milp.mappers.timeloop import random_pruned
from dse_milp.solution import solve
from dse_milp.traffic import LOOPS
from dse_milp.workload import Layer
from tests.brute_force import every_mapping
from tests.layers import small_accelerator

ROOT = Path(__file__).resolve().parent.parent


def _conv(m: int, n: int, size: tuple[int, int], kernel: int = 3) -> Layer:
    spec = {"name": "one", "input": {"channels": n, "height": size[0], "width": size[1]},
            "layers": [{"name": "c", "kind": "conv2d", "in_channels": n, "out_channels": m, "kernel": kernel,
                        "padding": kernel // 2}]}  # fmt: skip
    return parse_network(spec).layers[0]


def _best_in(layer: Layer, accelerator, allowed: dict[str, set[int]], objective: Objective = Objective.DRAM) -> float:
    """The brute-force optimum over the tilings whose every tile is in ``allowed`` (tests.brute_force
    evaluates every tiling, order and level independently of dse_milp.mappers)."""
    every = every_mapping(layer, accelerator)
    keep = np.array([all(getattr(t, d) in allowed[d] for d in LOOPS) for t in every.tilings])
    fits = every.fits & keep[:, None, None, None, None]
    values = cost(objective, layer, accelerator, every.traffic[fits] / 8, every.exposed[fits] / 8)
    return float(values.min())


def test_divisors_and_prime_factors():
    assert divisors(1) == (1,) and divisors(12) == (1, 2, 3, 4, 6, 12) and divisors(49) == (1, 7, 49)
    assert prime_factors(1) == () and prime_factors(360) == (2, 2, 2, 3, 3, 5)


def test_loop_prime_factors_are_merged_as_zigzag_merges_them():
    """64 x 8 x 6 (11 LPFs) down to 6: the loop with most LPFs (the first on a tie) has its two
    smallest merged each time; ZigZag's LOMA gives (4, 16), (2, 4), (2, 3) on these loops."""
    layer = _conv(64, 8, (6, 1), kernel=1)
    assert dict(layer.dims) == {"m": 64, "n": 8, "r": 6, "c": 1}
    merged = loop_prime_factors(layer, 6)
    assert sorted(merged) == sorted([("m", 4), ("m", 16), ("n", 2), ("n", 4), ("r", 2), ("r", 3)])
    # never fewer LPFs than loops that have factors
    assert {d for d, _ in loop_prime_factors(layer, 1)} == {"m", "n", "r"}
    assert len(loop_prime_factors(layer, 1)) == 3


def _lpf_tiles(lpfs: list[tuple[str, int]]) -> dict[str, set[int]]:
    """Every tile made of a sub-multiset of each loop's LPFs."""
    tiles: dict[str, set[int]] = {d: {1} for d in LOOPS}
    for d in LOOPS:
        mine = [f for e, f in lpfs if e == d]
        tiles[d] = {math.prod(c) for k in range(len(mine) + 1) for c in itertools.combinations(mine, k)}
    return tiles


@pytest.mark.parametrize(("m", "n", "size", "limit"), [(4, 3, (2, 1), 6), (16, 2, (1, 1), 2), (6, 4, (3, 2), 6)])
def test_loma_enumeration_equals_brute_force_over_the_prime_factor_space(m, n, size, limit):
    """Unbounded, LOMA's enumeration reaches the optimum over every tile made of the (merged) LPFs,
    every order and every operand level; capped at 2 on 16 x 2, the output channels take 1 or 16."""
    layer = _conv(m, n, size)
    accelerator = small_accelerator(96)
    lpfs = loop_prime_factors(layer, limit)
    tracker = Tracker(layer, accelerator, Objective.DRAM)
    loma(tracker, OWN, np.random.default_rng(0), limit)
    tiles = _lpf_tiles(lpfs)
    seen = {tiling for tiling, _ in allocations(layer, lpfs)}
    assert {tuple(getattr(t, d) for d in LOOPS) for t in seen} == set(itertools.product(*(tiles[d] for d in LOOPS)))
    assert tracker.best_cost == _best_in(layer, accelerator, tiles)
    if limit == 2:
        assert tiles["m"] == {1, 16}


TINY = [(4, 2, (4, 3)), (3, 4, (2, 5))]


@pytest.mark.parametrize("method", [m for m in METHODS if m != "loma"])
@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("shape", TINY)
def test_each_search_reaches_the_brute_force_optimum_of_its_space_given_the_budget(method, space, shape):
    """Twenty times its space's size in evaluations (Timeloop's termination rules off), on a tiny
    layer with every operand innermost: the optimum over divisor tiles (own) or every tile."""
    m, n, size = shape
    layer = _conv(m, n, size)
    accelerator = small_accelerator(64, operand_levels=False)
    allowed = {d: set(divisors(layer.dims[d])) if space == OWN else set(range(1, layer.dims[d] + 1)) for d in LOOPS}
    size_of_space = math.prod(len(allowed[d]) for d in LOOPS) * 24
    tracker = Tracker(layer, accelerator, Objective.DRAM, evaluations=20 * size_of_space)
    rng = np.random.default_rng(7)
    with contextlib.suppress(Stop):
        if method == "timeloop":
            random_pruned(tracker, space, rng, victory=0, timeout=0)
        else:
            searcher(method)(tracker, space, rng)
    assert tracker.best is not None
    assert all(getattr(tracker.best.tiling, d) in allowed[d] for d in LOOPS)
    assert tracker.best_cost == _best_in(layer, accelerator, allowed)


def test_the_integer_optimum_of_the_searches_is_the_program_s():
    """The integer space is the program's: brute force over it equals the program's optimum."""
    layer = _conv(4, 2, (4, 3))
    accelerator = small_accelerator(64)
    network = parse_network({"name": "one", "input": {"channels": 2, "height": 4, "width": 3},
                             "layers": [{"name": "c", "kind": "conv2d", "in_channels": 2, "out_channels": 4,
                                         "kernel": 3, "padding": 1}]})  # fmt: skip
    every = {d: set(range(1, layer.dims[d] + 1)) for d in LOOPS}
    assert solve(network, accelerator, prices=False).dram_bytes == _best_in(layer, accelerator, every)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("space", SPACES)
def test_searches_return_feasible_designs_and_repeat_with_their_seed(method: str, space: str):
    network = load_network(ROOT / "instances/networks/tiny_resnet8.yaml")
    accelerator = replace(load_accelerator(ROOT / "instances/accelerators/npu_32k.yaml"), burst_bytes=1)
    runs = [map_layers(method, network, accelerator, space=space, evaluations=1500, seed=s) for s in (3, 3, 4)]
    first = runs[0]
    assert first.mappings is not None
    check = check_mappings(network, accelerator, first.mappings)
    assert check.feasible, check.violations
    assert check.dram_bits / 8 == pytest.approx(first.cost)
    assert first.evaluations <= 1500
    assert first.mappings == runs[1].mappings and first.cost == runs[1].cost
    assert first.evaluations == runs[1].evaluations
    for run in first.runs:
        costs = [c for _, _, c in run.curve]
        assert costs == sorted(costs, reverse=True) and (not costs or costs[-1] == run.cost)
    if space == OWN and method != "loma":
        for name, mapping in first.mappings.items():
            layer = network.by_name[name]
            assert all(layer.dims[d] % getattr(mapping.tiling, d) == 0 for d in LOOPS), name


def test_timeloop_stops_at_its_victory_condition():
    """Unbounded, the random-pruned mapper ends after 500 valid mappings that do not improve (or
    1000 invalid ones in a row); the loops of one trip lead every order it tries."""
    network = load_network(ROOT / "instances/networks/tiny_resnet8.yaml")
    accelerator = load_accelerator(ROOT / "instances/accelerators/npu_32k.yaml")
    layer = network.layers[1]
    tracker = Tracker(layer, accelerator, Objective.DRAM)
    orders = []
    score = tracker.score

    def spy(mapping):
        orders.append(mapping)
        return score(mapping)

    tracker.score = spy  # type: ignore[method-assign]
    random_pruned(tracker, INTEGERS, np.random.default_rng(0))
    assert tracker.best is not None and tracker.scored >= 500
    last = tracker.curve[-1][1]
    assert tracker.scored - last >= 500 or tracker.scored < 1500
    for mapping in orders:
        trips = {d: -(-layer.dims[d] // getattr(mapping.tiling, d)) for d in LOOPS}
        single = [d for d in mapping.order if trips[d] == 1]
        assert mapping.order[: len(single)] == "".join(single)


def test_cli_runs_a_per_layer_search_and_refuses_one_that_cannot_decompose(capsys):
    assert main(["solve", "tiny_resnet8@npu-32k", "--method", "timeloop", "--space", "integers", "--quiet",
                 "--burst", "1", "--evaluations", "3000"]) == EXIT_OK  # fmt: skip
    assert "Timeloop-style" in capsys.readouterr().out
    assert main(["solve", "tiny_resnet8@npu-32k", "--method", "loma", "--fusion", "3"]) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--method loma: searches layer by layer only" in err[0]


def test_a_budget_too_small_for_some_layer_says_which_in_one_line(capsys):
    """A per-layer search whose share leaves a layer without a fitting mapping: exit 4, one line
    naming the first such layers and the budget."""
    code = main(["solve", "resnet50@npu-128k", "--method", "genetic", "--evaluations", "30", "--burst", "1"])
    assert code == EXIT_TIME_LIMIT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "genetic found no mapping that fits for layer 'layer1.0.conv3'" in err[0]
    assert "more within its budget (30 evaluations" in err[0]


@pytest.mark.parametrize("method", FUSED_METHODS)
def test_a_fused_schedule_searched_per_unit_is_feasible_exact_and_repeats(method: str):
    network = load_network(ROOT / "instances/networks/tiny_resnet8.yaml")
    accelerator = replace(load_accelerator(ROOT / "instances/accelerators/npu_32k.yaml"), burst_bytes=1)
    runs = [map_fused(method, network, accelerator, fusion=4, evaluations=4000, seed=s) for s in (5, 5)]
    first = runs[0]
    check = check_mappings(network, accelerator, first.mappings, first.groups)
    assert check.feasible, check.violations
    assert check.dram_bits / 8 == pytest.approx(first.cost)
    assert first.evaluations <= 4000 and first.groups
    assert (first.mappings, first.groups, first.cost) == (runs[1].mappings, runs[1].groups, runs[1].cost)
    assert first.cost >= solve(network, accelerator, fusion=4, prices=False).dram_bytes


@pytest.mark.parametrize("seed", range(4))
def test_a_fused_schedule_searched_per_unit_reaches_the_program_s_optimum_on_tiny_chains(seed: int):
    """In the integer space, with a generous budget, the decomposed annealing reaches the
    program's fused optimum on tiny random networks (the same space: tiles, residency,
    boundaries)."""
    import random

    from tests.layers import random_network_spec

    network = parse_network(random_network_spec(random.Random(40 + seed), 3))
    accelerator = small_accelerator(400)
    optimum = solve(network, accelerator, fusion=3, prices=False).dram_bytes
    run = map_fused("anneal", network, accelerator, fusion=3, evaluations=60_000, seed=seed, space=INTEGERS)
    assert run.cost == pytest.approx(optimum, rel=1e-12)


@pytest.mark.parametrize(("method", "fusion"), [("anneal", 0), ("genetic", 3), ("random", 0)])
def test_a_free_split_searched_split_by_split_is_feasible_exact_and_repeats(method: str, fusion: int):
    """The outer search over complete splits: its design passes the checker in the split it
    found, at the cost it reports, never below the program's; a seeded run repeats; it tries
    at most its share of splits and stays within the budget."""
    import random

    from dse_milp.accelerator import sized
    from dse_milp.mappers.split import OUTER, map_split
    from tests.layers import random_free_split

    network, free = random_free_split(random.Random(61), (3, 5), (6, 9))
    runs = [map_split(method, network, free, fusion=fusion, evaluations=3000, seed=7) for _ in range(2)]
    first = runs[0]
    assert math.isfinite(first.cost) and 1 < first.splits <= OUTER and first.evaluations <= 3000
    assert sum(first.sizes.values()) == free.split.total_bytes
    check = check_mappings(network, sized(free, first.sizes), first.mappings, first.groups)
    assert check.feasible, check.violations
    assert check.dram_bits / 8 == pytest.approx(first.cost)
    assert (first.sizes, first.mappings, first.groups, first.cost) == (
        runs[1].sizes, runs[1].mappings, runs[1].groups, runs[1].cost,
    )  # fmt: skip
    assert first.cost >= solve(network, free, fusion=fusion, prices=False).dram_bytes * (1 - 1e-12)
    assert [c for _, _, c in first.curve] == sorted({c for _, _, c in first.curve}, reverse=True)


@pytest.mark.parametrize("seed", range(4))
def test_a_free_split_searched_split_by_split_reaches_the_program_s_optimum(seed: int):
    """With every complete split tried (a few banks) and a generous budget in the integer
    space, the per-split searches reach the program's co-designed optimum."""
    import random

    from dse_milp.errors import InfeasibleError
    from dse_milp.mappers.split import map_split
    from tests.layers import random_free_split

    network, free = random_free_split(random.Random(70 + seed), (2, 3), (3, 4))
    run = map_split("random", network, free, evaluations=200_000, seed=seed, space=INTEGERS, outer=15)
    assert run.splits == (free.split.banks + 1) * (free.split.banks + 2) // 2  # every complete split
    try:
        optimum = solve(network, free, prices=False).dram_bytes
    except InfeasibleError:  # no split holds some layer: nor does any the search tries
        assert run.cost == math.inf and not run.sizes
        return
    assert run.cost == pytest.approx(optimum, rel=1e-12)


def test_the_command_searches_a_free_split_split_by_split(tmp_path: Path):
    out = tmp_path / "r.json"
    args = ["solve", "instances/networks/tiny_dscnn.yaml", "instances/accelerators/npu_128k_split.yaml"]
    assert main([*args, "--method", "anneal", "--evaluations", "3000", "--quiet", "--out", str(out)]) == EXIT_OK
    import json

    record = json.loads(out.read_text())
    assert record["status"] == "feasible" and record["evaluations"] <= 3000
    assert sum(record["buffer_sizes"].values()) == 128 * 1024
