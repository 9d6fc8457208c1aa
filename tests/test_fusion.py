"""Fused groups: the closed forms against a simulation, candidates against exhaustive search."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from dse_milp.accelerator import Accelerator, Energy, separate_buffers, unified_buffer
from dse_milp.candidates import TRAFFIC_FIELDS, generate
from dse_milp.check import check_mappings
from dse_milp.cost import Objective
from dse_milp.errors import InfeasibleError
from dse_milp.fusion import (
    GroupMapping,
    Segment,
    coarsest_group,
    generate_group,
    group_cost,
    group_objective,
)
from dse_milp.halo import Halo
from dse_milp.loader import parse_network
from dse_milp.simulate import simulate_group
from dse_milp.solution import solve
from dse_milp.solvers import SolverOptions, Status
from dse_milp.units import build_problem, segments
from dse_milp.workload import Network, Operand
from tests.brute_force import best_fused_network_cost, residency_choices
from tests.layers import TINY_NETWORK, conv_chain, random_network_spec

ENERGY = Energy(20.0, 0.6, 0.2)


def random_networks(count: int, seed: int = 0) -> list[Network]:
    rng = random.Random(seed)
    return [parse_network(random_network_spec(rng, rng.randint(2, 5)), f"random-{i}") for i in range(count)]


def every_group_mapping(segment: Segment, halo: tuple[Halo, ...] = (Halo.RECOMPUTE,)) -> list[GroupMapping]:
    last = segment.shape(segment.last.name)
    return [
        GroupMapping(r, c, resident, mode)
        for r in range(1, last.height + 1)
        for c in range(1, last.width + 1)
        for resident in residency_choices(segment)
        for mode in halo
    ]


def random_pieces(rng: random.Random, segment: Segment, resident: frozenset[str]) -> tuple[tuple[str, int], ...]:
    """Random pieces (channels per piece, more than one) for some of the streamed layers."""
    streamed = [x for x in segment.layers if x.has_weights and x.name not in resident and x.m > 1]
    return tuple((x.name, rng.randint(2, x.m)) for x in streamed if rng.random() < 0.5)


@pytest.mark.parametrize("halo", list(Halo))
@pytest.mark.parametrize("liveness", [None, False, True])
def test_group_closed_form_matches_simulation(liveness: bool | None, halo: Halo):
    """Without liveness (None), and with it for separate (False) or shared (True) input and
    output buffers, under each halo mode: the closed form against the walk that allocates
    and frees every slot and finds what each cache holds from sets of positions."""
    rng = random.Random(7)
    checked = smaller = cached = 0
    for network in random_networks(150, seed=1):
        for segment in segments(network, 6):
            mappings = every_group_mapping(segment, (halo,))
            for mapping in rng.sample(mappings, k=min(6, len(mappings))):
                mapping = replace(mapping, pieces=random_pieces(rng, segment, mapping.resident))
                double = rng.random() < 0.5
                cost = group_cost(segment, mapping, double, liveness)
                assert cost == simulate_group(segment, mapping, double, liveness)
                checked += 1
                plain = group_cost(segment, replace(mapping, halo=Halo.RECOMPUTE), double)
                smaller += sum(cost.footprint.values()) < sum(plain.footprint.values())
                cached += cost.traffic.input_read < plain.traffic.input_read
    assert checked > 500
    assert liveness is None or smaller > 100
    assert halo is Halo.RECOMPUTE or cached > 50  # the caches save DRAM reads somewhere


def test_halo_caches_of_a_chain_of_two_convs_by_hand():
    """Two 3x3 convs (pad 1, 1 channel) over 6x6, tiles of 2x3 (three bands of two tiles).

    conv1's output tile rows [0,2) [2,4) [4,6) need conv0's output rows [0,3) [1,5) [3,6)
    and the input rows [0,4) [0,6) [2,6); columns [0,3) [3,6) need conv0's [0,4) [2,6) and
    the input's [0,5) [1,6). Recomputed: the input read 4*5+4*5+6*5+6*5+4*5+4*5 = 140
    elements, conv0 computes (3+4+3)*(4+4) = 80 outputs (36 needed). Rows cached: rows
    produced 4+2+0 (input), 3+2+1 (conv0); columns cached: 5+1 (input), 4+2 (conv0). The
    line buffer holds the most rows a band shares with the next (input 4, conv0 2) over
    every column used (6); the column cache the most columns a tile shares with the next
    (input 4, conv0 2) over the tallest region (input 6 rows, conv0 4)."""
    segment = Segment(parse_network(conv_chain("conv", 2, channels=1, size=6)), 0, 2)
    costs = {mode: group_cost(segment, GroupMapping(2, 3, frozenset(), mode), False) for mode in Halo}
    reads = {mode: cost.traffic.input_read // 8 for mode, cost in costs.items()}
    assert reads == {Halo.RECOMPUTE: 140, Halo.ROWS: 6 * 10, Halo.COLUMNS: 14 * 6, Halo.BOTH: 6 * 6}
    extra = {mode: cost.extra_macs["conv0"] // 9 for mode, cost in costs.items()}
    assert extra == {Halo.RECOMPUTE: 80 - 36, Halo.ROWS: 6 * 8 - 36, Halo.COLUMNS: 10 * 6 - 36, Halo.BOTH: 0}
    plain = costs[Halo.RECOMPUTE].footprint
    caches = {
        mode: (
            cost.footprint[Operand.INPUT] - plain[Operand.INPUT],
            cost.footprint[Operand.OUTPUT] - plain[Operand.OUTPUT],
        )
        for mode, cost in costs.items()
    }
    assert caches == {
        Halo.RECOMPUTE: (0, 0),
        Halo.ROWS: (4 * 6 * 8, 2 * 6 * 8),
        Halo.COLUMNS: (6 * 4 * 8, 4 * 2 * 8),
        Halo.BOTH: ((24 + 24) * 8, (12 + 8) * 8),
    }


def test_liveness_frees_a_chain_s_regions_after_their_reader():
    """Three 1x1 convs in a chain over 2x2 maps of 4 channels, one tile: the sum holds every
    region (input 16, three outputs of 16 = 64 bytes); with liveness the peak is two
    regions at a time (32 bytes), the input and conv1's output, then conv1's and conv2's...
    and double buffering doubles the input and the last output only."""
    spec = {
        "name": "chain",
        "input": {"channels": 4, "height": 2, "width": 2},
        "layers": [
            {"name": f"c{i}", "kind": "conv2d", "in_channels": 4, "out_channels": 4, "kernel": 1} for i in range(3)
        ],
    }
    segment = Segment(parse_network(spec), 0, 3)
    mapping = GroupMapping(2, 2, frozenset())
    total = group_cost(segment, mapping, False).footprint
    assert (total[Operand.INPUT], total[Operand.OUTPUT]) == (16 * 8, 48 * 8)
    shared = group_cost(segment, mapping, False, True).footprint
    assert shared[Operand.INPUT] + shared[Operand.OUTPUT] == 32 * 8  # step 0: input + c0
    separate = group_cost(segment, mapping, False, False).footprint
    assert (separate[Operand.INPUT], separate[Operand.OUTPUT]) == (16 * 8, 32 * 8)  # c0 + c1, then c1 + c2
    double = group_cost(segment, mapping, True, False).footprint
    assert (double[Operand.INPUT], double[Operand.OUTPUT]) == (32 * 8, 48 * 8)  # c1 + 2 x c2


def test_residual_block_group_reads_the_skip_tensor_once_per_tile():
    """conv 3x3 (pad 1) then add with the block input: one group, tiles of 2 rows over 4x4.

    The block input x is read by the conv (with a one-row halo) and by the add
    (no halo): it is read once per tile, over the conv's larger range: rows [0,3)
    and [1,4), all 4 columns, 2 channels -> 2*(3+3)*4 = 48 elements.
    """
    spec = {
        "name": "block",
        "input": {"channels": 2, "height": 4, "width": 4},
        "layers": [
            {"name": "conv", "kind": "conv2d", "in_channels": 2, "out_channels": 2, "kernel": 3, "padding": 1},
            {"name": "add", "kind": "add", "inputs": ["conv", "input"]},
        ],
    }
    network = parse_network(spec)
    segment = Segment(network, 0, 2)
    assert segment.externals == ("input",)
    cost = group_cost(segment, GroupMapping(2, 4, frozenset({"conv"})), double_buffering=False)
    assert cost.traffic.input_read == 48 * 8
    assert cost.traffic.weight_read == 2 * 2 * 9 * 8
    assert cost.traffic.output_write == 2 * 16 * 8
    assert cost.tiles == 2
    assert cost.extra_macs == {"conv": 0, "add": 0}  # the add needs no halo, so the conv computes its own rows


def _keys(segment: Segment, accelerator: Accelerator, objectives: tuple[Objective, ...], costs: list) -> list:
    """The lexicographic key of each group cost: its cost under each objective, then its traffic."""
    return [(*(group_objective(o, accelerator, segment, c) for o in objectives), c.traffic.total) for c in costs]


ALL_HALO = tuple(Halo)


@pytest.mark.parametrize(
    ("separate", "objectives", "liveness", "halo"),
    [(False, (Objective.ENERGY,), False, ()), (True, (Objective.LATENCY, Objective.DRAM), False, ()),
     (False, (Objective.DRAM,), False, ()), (False, (Objective.LATENCY, Objective.DRAM), False, ()),
     (False, (Objective.DRAM,), True, ()), (True, (Objective.LATENCY, Objective.DRAM), True, ()),
     (False, (Objective.DRAM,), False, ALL_HALO), (True, (Objective.LATENCY, Objective.DRAM), True, ALL_HALO),
     (False, (Objective.ENERGY,), False, ALL_HALO), (True, (Objective.DRAM,), False, (Halo.ROWS, Halo.COLUMNS))],
)  # fmt: skip
def test_group_candidates_equal_exhaustive_search(separate: bool, objectives: tuple[Objective, ...], liveness: bool,
                                                  halo: tuple[Halo, ...]):  # fmt: skip
    """Every tile, resident set and halo mode allowed (``halo``; () for the default)."""
    rng = random.Random(3)
    compared = 0
    for network in random_networks(60, seed=2):
        for segment in segments(network, longest=4):
            capacity = rng.randint(16, 600)
            buffers = separate_buffers(capacity, capacity, capacity) if separate else unified_buffer(capacity)
            accelerator = Accelerator("a", buffers, rng.random() < 0.5, 4.0, 100.0, 8, ENERGY, fused_liveness=liveness)
            accelerator = replace(accelerator, halo=halo) if halo else accelerator
            cands = generate_group(segment, accelerator, objectives)
            assert {m.halo for m in cands.mappings} <= set(accelerator.halo)
            costs = [group_cost(segment, m, accelerator.double_buffering, accelerator.liveness)
                     for m in every_group_mapping(segment, accelerator.halo)]  # fmt: skip
            fitting = [
                c
                for c in costs
                if all(sum(c.footprint[op] for op in b.operands) <= 8 * b.capacity_bytes for b in buffers)
            ]
            if not fitting:
                assert len(cands) == 0
                continue
            compared += 1
            found = [group_cost(segment, mapping, accelerator.double_buffering, accelerator.liveness)
                     for mapping in cands.mappings]  # fmt: skip
            for k, cost in enumerate(found):
                assert tuple(cands.traffic[k]) == tuple(getattr(cost.traffic, f) for f in TRAFFIC_FIELDS)
                assert list(cands.footprint[k]) == list(cost.footprint.values())
                assert list(cands.extra_macs[k]) == list(cost.extra_macs.values())
                assert cands.exposed[k] == cost.exposed
            keys = _keys(segment, accelerator, objectives, found)
            # the best of every mapping that fits, lexicographically, is a candidate
            assert min(keys) == min(_keys(segment, accelerator, objectives, fitting))
            # no candidate is beaten by another no larger
            size = cands.footprint.sum(axis=1)
            for a, b in itertools.permutations(range(len(cands)), 2):
                assert not (keys[a] <= keys[b] and size[a] <= size[b] and (keys[a], size[a]) != (keys[b], size[b]))
    assert compared > 30


@pytest.mark.parametrize("objectives", [(Objective.DRAM,), (Objective.LATENCY, Objective.DRAM)])
def test_coarsest_group_has_the_fewest_tiles_of_what_costs_the_same(objectives: tuple[Objective, ...]):
    """Brute force over every tile and residency: of the mappings that fit and cost the same
    as the least-footprint optimum, ``coarsest_group`` finds one with the fewest tiles."""
    rng = random.Random(5)
    compared = coarser = 0
    for network in random_networks(40, seed=4):
        for segment in segments(network, longest=3):
            capacity = rng.randint(16, 2000)
            accelerator = Accelerator("a", unified_buffer(capacity), rng.random() < 0.5, 4.0, 100.0, 8, ENERGY)
            cands = generate_group(segment, accelerator, objectives)
            if not len(cands):
                continue
            everything = every_group_mapping(segment)
            costs = [group_cost(segment, m, accelerator.double_buffering) for m in everything]
            keys = _keys(segment, accelerator, objectives, costs)
            held = [sum(c.footprint.values()) for c in costs]
            fitting = [i for i, h in enumerate(held) if h <= 8 * capacity]
            best = min(fitting, key=lambda i: (keys[i], held[i]))  # what the candidates hold: least footprint
            chosen = everything[best]
            same = [i for i in fitting if keys[i] <= keys[best] and costs[i].traffic.total == costs[best].traffic.total]
            mapping = coarsest_group(segment, accelerator, objectives, chosen)
            cost = group_cost(segment, mapping, accelerator.double_buffering)
            assert sum(cost.footprint.values()) <= 8 * capacity
            assert cost.traffic.total == costs[best].traffic.total
            assert _keys(segment, accelerator, objectives, [cost])[0] <= keys[best]
            assert cost.tiles == min(costs[i].tiles for i in same)
            compared += 1
            coarser += cost.tiles < costs[best].tiles
    assert compared > 20 and coarser > 5


def random_fusion_instance(seed: int) -> tuple[Network, Accelerator]:
    """A random tiny chain or DAG (residual adds) and a buffer where some layers fit only alone."""
    rng = random.Random(seed)
    network = parse_network(random_network_spec(rng, rng.randint(2, 5)), f"random-{seed}")
    roomy = Accelerator("roomy", unified_buffer(10**6), False, 4.0, 100.0, 8, ENERGY)
    need = max(generate(layer, roomy).smallest_footprint.sum() / 8 for layer in network.layers)
    capacity = int(need * rng.uniform(1.0, 6.0)) + 1
    double = rng.random() < 0.3
    buffers = separate_buffers(capacity, capacity, capacity) if rng.random() < 0.3 else unified_buffer(capacity)
    return network, Accelerator("random", buffers, double, 4.0, 100.0, rng.choice([1, 8]), ENERGY)


@pytest.mark.parametrize("seed", range(40))
def test_joint_optimum_equals_brute_force_over_segmentations(seed: int):
    """Through each unit's best candidate alone (the default where only the segmentation
    couples the units: ``decompose``) and through every candidate (``decompose`` off)."""
    network, accelerator = random_fusion_instance(seed)
    objective = [Objective.DRAM, Objective.DRAM, Objective.ENERGY, Objective.LATENCY][seed % 4]
    expected = best_fused_network_cost(network, accelerator, objective, longest=4)
    for solver, decompose in (("highs", True), ("ortools-scip", True), ("highs", False)):
        options = SolverOptions(decompose=decompose)
        solution = solve(network, accelerator, objective, solver, options=options, fusion=4)
        assert solution.result.status is Status.OPTIMAL
        assert solution.result.objective == pytest.approx(expected, rel=1e-9), (solver, decompose)


@pytest.mark.parametrize("seed", range(15))
def test_each_unit_s_best_candidate_alone_keeps_every_lexicographic_optimum(seed: int):
    """Fixed buffers, fused groups, two objectives in turn: the program over each unit's best
    candidate and the program over all of them reach the same value under both; and the
    candidate counts reported are those generated."""
    network, accelerator = random_fusion_instance(seed)
    objectives = [(Objective.LATENCY, Objective.DRAM), (Objective.DRAM, Objective.LATENCY),
                  (Objective.DRAM, Objective.ENERGY)][seed % 3]  # fmt: skip
    if objectives[1] is Objective.LATENCY:  # then the exposed bits separate mappings of equal traffic
        accelerator = replace(accelerator, double_buffering=True)
    whole = SolverOptions(decompose=False)
    try:
        fast = solve(network, accelerator, objectives, fusion=4)
    except InfeasibleError:  # doubled, some layer no longer fits
        with pytest.raises(InfeasibleError):
            solve(network, accelerator, objectives, options=whole, fusion=4)
        return
    slow = solve(network, accelerator, objectives, options=whole, fusion=4)
    value = {Objective.DRAM: "dram_bytes", Objective.LATENCY: "latency_cycles", Objective.ENERGY: "energy_pj"}
    for objective in objectives:
        assert getattr(fast, value[objective]) == pytest.approx(getattr(slow, value[objective]), rel=1e-9)
    assert [r.candidates for r in fast.layers] == [r.candidates for r in slow.layers]
    counts = {g.name: g.candidates for g in slow.groups}
    assert all(g.candidates == counts[g.name] for g in fast.groups if g.name in counts)


@pytest.mark.parametrize("seed", range(20))
def test_joint_optimum_with_liveness_equals_brute_force_over_segmentations(seed: int):
    network, accelerator = random_fusion_instance(seed)
    accelerator = replace(accelerator, fused_liveness=True)
    objective = [Objective.DRAM, Objective.LATENCY][seed % 2]
    expected = best_fused_network_cost(network, accelerator, objective, longest=4)
    solution = solve(network, accelerator, objective, fusion=4)
    assert solution.result.status is Status.OPTIMAL
    assert solution.result.objective == pytest.approx(expected, rel=1e-9)
    assert solution.result.objective <= solve(network, replace(accelerator, fused_liveness=False), objective,
                                              fusion=4).result.objective * (1 + 1e-9)  # fmt: skip


@pytest.mark.parametrize("seed", [*range(12), 18, 20, 22, 35, 36])
def test_joint_optimum_with_halo_caches_equals_brute_force_over_segmentations(seed: int):
    """Every halo mode allowed: the program's choice per group against every segmentation,
    tile, resident set and mode; never worse than recomputing, and better somewhere (below)."""
    network, accelerator = random_fusion_instance(seed)
    accelerator = replace(accelerator, halo=ALL_HALO, fused_liveness=seed % 3 == 0)
    objective = [Objective.DRAM, Objective.LATENCY, Objective.ENERGY][seed % 3]
    expected = best_fused_network_cost(network, accelerator, objective, longest=4)
    optimal_and_no_worse(network, accelerator, replace(accelerator, halo=(Halo.RECOMPUTE,)), objective, expected, 4)


def optimal_and_no_worse(network: Network, accelerator: Accelerator, without: Accelerator, objective: Objective,
                         expected: float, fusion: int) -> None:  # fmt: skip
    """The program on ``accelerator`` is proven optimal at ``expected`` (a brute force), and no
    worse than on ``without`` (the same with a new option off)."""
    solution = solve(network, accelerator, objective, fusion=fusion)
    assert solution.result.status is Status.OPTIMAL
    assert solution.result.objective == pytest.approx(expected, rel=1e-9)
    plain = solve(network, without, objective, fusion=fusion)
    assert solution.result.objective <= plain.result.objective * (1 + 1e-9)


def test_halo_caches_win_on_some_random_instances():
    """The comparison above is not vacuous: some optimum caches a halo, for less traffic."""
    wins = 0
    for seed in range(40):
        network, accelerator = random_fusion_instance(seed)
        cached = solve(network, replace(accelerator, halo=ALL_HALO), fusion=4)
        wins += any(group.mapping.halo is not Halo.RECOMPUTE for group in cached.groups) and (
            cached.result.objective < solve(network, accelerator, fusion=4).result.objective
        )
    assert wins >= 3  # 4 of these 40 when written


def test_the_checker_accepts_a_cached_halo_only_where_the_accelerator_allows_it():
    network, accelerator = random_fusion_instance(18)  # an instance whose optimum caches
    solution = solve(network, replace(accelerator, halo=ALL_HALO), fusion=4)
    groups = {(g.segment.layers[0].name, g.segment.last.name): g.mapping for g in solution.groups}
    assert any(mapping.halo is not Halo.RECOMPUTE for mapping in groups.values())
    mappings = {r.layer.name: r.mapping for r in solution.layers if r.group is None}
    assert check_mappings(network, replace(accelerator, halo=ALL_HALO), mappings, groups).feasible
    refused = check_mappings(network, accelerator, mappings, groups).violations
    assert any("is not among the accelerator's modes" in v for v in refused)


def test_fusion_helps_on_some_random_instances():
    """The brute-force comparison above is not vacuous: fused groups win somewhere."""
    wins = 0
    for seed in range(40):
        network, accelerator = random_fusion_instance(seed)
        wins += len(solve(network, accelerator, fusion=4).groups) > 0
    assert wins >= 5


def test_fusion_off_or_impossible_is_the_core_program():
    network = parse_network(TINY_NETWORK)
    roomy = Accelerator("roomy", unified_buffer(10**6), False, 4.0, 100.0, 8, ENERGY)
    tight = max(generate(layer, roomy).smallest_footprint.sum() // 8 for layer in network.layers)
    small = Accelerator("small", unified_buffer(int(tight)), False, 4.0, 100.0, 8, ENERGY)
    assert not build_problem(network, small, (Objective.DRAM,), fusion=4).groups  # no group fits
    core = solve(network, small)
    for fusion in (0, 1, 4):
        fused = solve(network, small, fusion=fusion)
        assert [r.mapping for r in fused.layers] == [r.mapping for r in core.layers]
        assert fused.dram_bytes == core.dram_bytes and not fused.groups
    roomy_core, roomy_fused = solve(network, roomy), solve(network, roomy, fusion=0)
    assert [r.mapping for r in roomy_fused.layers] == [r.mapping for r in roomy_core.layers]


def test_groups_of_the_same_shapes_share_their_candidates_renamed():
    """A chain of identical convolutions and a residual network: every group's candidates in
    the program (shared between groups of the same signature) equal those generated for
    that group alone, resident layers named as its own."""
    chain = conv_chain("c", 7, channels=4, size=6)
    accelerator = Accelerator("a", unified_buffer(700), False, 4.0, 100.0, 8, ENERGY)
    shared = 0
    for network in (parse_network(chain), parse_network(TINY_NETWORK)):
        problem = build_problem(network, accelerator, (Objective.DRAM,), fusion=3)
        for (first, last), cands in problem.groups.items():
            alone = generate_group(Segment.of(network, first, last), accelerator)
            assert cands.mappings == alone.mappings
            assert (cands.traffic == alone.traffic).all() and (cands.footprint == alone.footprint).all()
            shared += cands.segment.layers[0].name != "c0" and any(m.resident for m in cands.mappings)
    assert shared > 3
