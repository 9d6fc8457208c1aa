"""Tensors kept on chip between units (issue 10 §2): candidates whose tensors on chip move
and expose nothing, against every mapping."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse_milp.accelerator import Accelerator, sized, unified_buffer
from dse_milp.burst_candidates import layer_in_bursts
from dse_milp.bursts import group_bursts, layer_bursts
from dse_milp.candidates import TRAFFIC_FIELDS, OnChip, generate
from dse_milp.check import kept_bytes
from dse_milp.cost import Objective, cost
from dse_milp.decompose import complete_splits
from dse_milp.duals import unit_lp
from dse_milp.errors import InfeasibleError
from dse_milp.fusion import Segment, generate_group, group_cost, group_objective
from dse_milp.halo import Halo
from dse_milp.layouts import NCHW, NHWC, Layouts
from dse_milp.loader import load_accelerator, load_network
from dse_milp.simulate import simulate_group, simulate_group_bursts
from dse_milp.solution import solve
from dse_milp.solvers import Status
from dse_milp.traffic import traffic
from dse_milp.units import build_problem, segments
from dse_milp.workload import NETWORK_INPUT, Layer
from tests.brute_force import best_kept_network_cost, every_mapping
from tests.layers import random_free_split, small_accelerator, small_layers
from tests.test_fusion import (
    ENERGY,
    every_group_mapping,
    optimal_and_no_worse,
    random_fusion_instance,
    random_networks,
)


@st.composite
def on_chip(draw: st.DrawFn, layer: Layer) -> OnChip:
    return OnChip(draw(st.integers(0, layer.input_tensors)), layer.has_weights and draw(st.booleans()),
                  draw(st.booleans()))  # fmt: skip


@settings(max_examples=120, deadline=None)
@given(data=st.data(), layer=small_layers(), capacity=st.integers(4, 400), double=st.booleans(),
       separate=st.booleans(), objective=st.sampled_from(list(Objective)))  # fmt: skip
def test_candidates_with_tensors_on_chip_hold_the_best_of_every_mapping(
    data: st.DataObject, layer: Layer, capacity: int, double: bool, separate: bool, objective: Objective
):
    """For every mapping that fits, some candidate is no larger and costs no more, with the
    tensors on chip moving nothing; each candidate's traffic is the closed form's less
    theirs."""
    kept = data.draw(on_chip(layer))
    acc = small_accelerator(capacity, double, separate, True)
    cands = generate(layer, acc, (objective,), kept)
    every = every_mapping(layer, acc, kept)
    fits = every.fits
    if not fits.any():
        assert len(cands) == 0
        return
    for k in range(len(cands)):
        full = traffic(layer, cands.mapping(k))
        expected = dict(zip(TRAFFIC_FIELDS, (getattr(full, f) for f in TRAFFIC_FIELDS), strict=True))
        expected["input_read"] = expected["input_read"] // layer.input_tensors * (layer.input_tensors - kept.inputs)
        expected["weight_read"] *= not kept.weights
        expected["output_write"] *= not kept.output
        assert tuple(int(v) for v in cands.traffic[k]) == tuple(expected[f] for f in TRAFFIC_FIELDS)
    size = sum(every.held.values())
    value = cost(objective, layer, acc, every.traffic / 8, every.exposed / 8)
    mine = cost(objective, layer, acc, cands.total_bits / 8, cands.exposed / 8)
    held = cands.footprint.sum(axis=1)
    for v, s in zip(np.broadcast_to(value, fits.shape)[fits], np.broadcast_to(size, fits.shape)[fits], strict=True):
        assert np.any((held <= s) & (mine <= v * (1 + 1e-12))), (v, s)


def random_kept(rng: random.Random, segment: Segment) -> frozenset[str]:
    """A random subset of what a group could keep on chip: its outside tensors (not the
    network input) and its output."""
    choices = [x for x in segment.externals if x != NETWORK_INPUT] + [segment.last.name]
    return frozenset(x for x in choices if rng.random() < 0.5)


def test_group_closed_form_with_tensors_on_chip_matches_simulation():
    rng = random.Random(21)
    checked = saved = 0
    for network in random_networks(80, seed=12):
        for segment in segments(network, 4):
            mappings = every_group_mapping(segment, tuple(Halo))
            for mapping in rng.sample(mappings, k=min(4, len(mappings))):
                kept, double = random_kept(rng, segment), rng.random() < 0.5
                cost = group_cost(segment, mapping, double, None, kept)
                assert cost == simulate_group(segment, mapping, double, None, kept)
                plain = group_cost(segment, mapping, double)
                assert cost.footprint == plain.footprint  # the slots stay
                saved += cost.traffic.total < plain.traffic.total
                checked += 1
    assert checked > 300 and saved > 100


@pytest.mark.parametrize("objectives", [(Objective.DRAM,), (Objective.LATENCY, Objective.DRAM)])
def test_group_candidates_with_tensors_on_chip_equal_exhaustive_search(objectives: tuple[Objective, ...]):
    """The best of every tile, resident set and halo mode that fits, with some tensors on chip,
    is a candidate generated for them; no candidate is beaten by another no larger."""
    rng = random.Random(8)
    compared = 0
    for network in random_networks(50, seed=13):
        for segment in segments(network, longest=3):
            capacity = rng.randint(16, 600)
            acc = Accelerator("a", unified_buffer(capacity), rng.random() < 0.5, 4.0, 100.0, 8, ENERGY,
                              halo=tuple(Halo))  # fmt: skip
            kept = random_kept(rng, segment)
            cands = generate_group(segment, acc, objectives, kept=kept)
            costs = [group_cost(segment, m, acc.double_buffering, None, kept)
                     for m in every_group_mapping(segment, acc.halo)]  # fmt: skip
            fitting = [c for c in costs if sum(c.footprint.values()) <= 8 * capacity]
            if not fitting:
                assert len(cands) == 0
                continue
            found = [group_cost(segment, m, acc.double_buffering, None, kept) for m in cands.mappings]
            for k, c in enumerate(found):
                assert tuple(cands.traffic[k]) == tuple(getattr(c.traffic, f) for f in TRAFFIC_FIELDS)
                assert cands.exposed[k] == c.exposed
            keys = [(*(group_objective(o, acc, segment, c) for o in objectives), c.traffic.total) for c in found]
            best = min((*(group_objective(o, acc, segment, c) for o in objectives), c.traffic.total) for c in fitting)
            assert min(keys) == best
            compared += 1
    assert compared > 30


@settings(max_examples=60, deadline=None)
@given(data=st.data(), layer=small_layers(), capacity=st.integers(8, 400), burst=st.sampled_from([2, 8, 32]))
def test_layer_candidates_in_bursts_with_tensors_on_chip_move_the_rest(
    data: st.DataObject, layer: Layer, capacity: int, burst: int
):
    """Priced in bursts, a candidate moves what its mapping's bursts move, less every burst of
    the tensors on chip (each input tensor's share, the weights, the final output)."""
    kept = data.draw(on_chip(layer))
    acc = replace(small_accelerator(capacity, False, False, True), burst_bytes=burst)
    pair = Layouts(NCHW, NHWC)
    cands = layer_in_bursts(layer, acc, (Objective.DRAM,), (pair,), kept)
    for k in range(len(cands)):
        full = layer_bursts(layer, cands.mapping(k), pair, burst)
        moved_inputs = layer.input_tensors - kept.inputs
        expected = (full.input_read // layer.input_tensors * moved_inputs, full.weight_read * (not kept.weights),
                    full.output_write * (not kept.output), full.psum_read, full.psum_write)  # fmt: skip
        assert tuple(int(v) for v in cands.traffic[k] // (8 * burst)) == expected


def test_group_bursts_with_tensors_on_chip_equal_the_element_walk():
    rng = random.Random(17)
    compared = 0
    for network in random_networks(40, seed=14):
        for segment in segments(network, longest=3):
            mapping = rng.choice(every_group_mapping(segment, tuple(Halo)))
            kept, burst = random_kept(rng, segment), rng.choice([2, 4, 16])
            found = group_bursts(segment, mapping, Layouts(NCHW, NHWC), burst, kept)
            assert found == simulate_group_bursts(segment, mapping, (NCHW, NHWC), burst, kept)
            compared += 1
    assert compared > 40


@pytest.mark.parametrize("seed", range(24))
def test_program_with_tensors_kept_on_chip_equals_brute_force(seed: int):
    """Every segmentation, every set of boundary-crossing tensors kept on chip, each unit's best
    candidate in what the kept tensors leave of the buffer: the program finds that optimum,
    never worse than keeping nothing, and its design passes the checker."""
    network, accelerator = random_fusion_instance(seed)
    if accelerator.split is not None:
        return
    accelerator = replace(accelerator, keep_tensors=True)
    objective = [Objective.DRAM, Objective.LATENCY, Objective.ENERGY][seed % 3]
    expected = best_kept_network_cost(network, accelerator, objective, longest=3)
    optimal_and_no_worse(network, accelerator, replace(accelerator, keep_tensors=False), objective, expected, 3)


def test_keeping_tensors_wins_on_some_random_instances():
    wins = 0
    for seed in range(24):
        network, accelerator = random_fusion_instance(seed)
        kept = solve(network, replace(accelerator, keep_tensors=True), fusion=3)
        wins += bool(kept.kept_tensors) and kept.dram_bytes < solve(network, accelerator, fusion=3).dram_bytes
    assert wins >= 5


@pytest.mark.parametrize("seed", range(8))
def test_a_free_split_with_tensors_kept_on_chip_equals_the_best_fixed_split(seed: int):
    """Under a free split a kept tensor takes whole banks of the output buffer: the program
    equals the best, over every complete split, of the brute force with that rule."""
    network, free = random_free_split(random.Random(300 + seed), (2, 4), (3, 6), keep_tensors=True)
    split = free.split
    assert split is not None
    bank = split.bank_bytes
    objective = [Objective.DRAM, Objective.LATENCY][seed % 2]
    names = ("input", "weight", "output")
    fixed = [
        sized(free, {name: bank * b for name, b in zip(names, s, strict=True)}) for s in complete_splits(split.banks)
    ]
    expected = min(best_kept_network_cost(network, acc, objective, 3, bank) for acc in fixed)
    if not np.isfinite(expected):
        with pytest.raises(InfeasibleError):
            solve(network, free, objective, fusion=3, prices=False)
        return
    solution = solve(network, free, objective, fusion=3, prices=False)
    assert solution.result.status is Status.OPTIMAL
    assert solution.result.objective == pytest.approx(expected, rel=1e-9)


def test_shadow_prices_take_the_kept_tensors_into_account():
    """A unit's LP step prices its candidates with what it keeps on chip, in the buffer the
    kept tensors leave: the design's own choice is feasible there, so the step's optimum is
    no more than that choice's cost; and every price is finite and not negative."""
    checked = 0
    for seed in range(24):
        network, accelerator = random_fusion_instance(seed)
        accelerator = replace(accelerator, keep_tensors=True)
        solution = solve(network, accelerator, fusion=3)
        if not solution.kept_tensors:
            continue
        problem = build_problem(network, sized(accelerator, solution.buffer_sizes), (Objective.DRAM,), 3)
        position = {layer.name: i for i, layer in enumerate(network.layers)}
        for result in solution.layers:
            assert all(np.isfinite(p) and p >= 0 for p in (result.shadow_price or {}).values())
            if result.group is not None:
                continue
            name = result.layer.name
            on_chip = frozenset(x for x in solution.kept_tensors if x in (*result.layer.inputs, name))
            held = kept_bytes(network, solution.kept_tensors, position[name], position[name])
            value, price = unit_lp(problem, name, accelerator.buffers[0].name, 0.0, None, (on_chip, held))
            assert value <= result.traffic.total / 8 + 1e-6 and price >= 0
            checked += 1
    assert checked > 20


@pytest.mark.parametrize(("network", "accelerator", "fusion"), [("mobilenet_v2", "npu_128k", 0),
                         ("tiny_mobilenet_v1_025", "npu_32k", 6), ("tiny_resnet8", "fpga", 3)])  # fmt: skip
def test_bundled_networks_with_tensors_kept_pass_the_checker(network: str, accelerator: str, fusion: int):
    """Real networks, in bytes: the design (its tiles coarsened within what the kept tensors
    leave of the buffer) passes the checker inside ``solve``, and keeps some tensors for less
    traffic than keeping none."""
    net = load_network(f"instances/networks/{network}.yaml")
    acc = replace(load_accelerator(f"instances/accelerators/{accelerator}.yaml"), burst_bytes=1)
    kept = solve(net, replace(acc, keep_tensors=True), fusion=fusion, prices=False)
    plain = solve(net, acc, fusion=fusion, prices=False)
    assert kept.kept_tensors and kept.dram_bytes < plain.dram_bytes


@pytest.mark.parametrize("seed", [1, 4, 9])
def test_every_backend_keeps_tensors_alike(seed: int):
    """The program with kept tensors is a pure integer program: CP-SAT and SCIP reach the
    optimum HiGHS does."""
    network, accelerator = random_fusion_instance(seed)
    accelerator = replace(accelerator, keep_tensors=True)
    values = {s: solve(network, accelerator, solver=s, fusion=3, prices=False).result.objective
              for s in ("highs", "ortools-sat", "ortools-scip")}  # fmt: skip
    assert values["ortools-sat"] == pytest.approx(values["highs"], rel=1e-9)
    assert values["ortools-scip"] == pytest.approx(values["highs"], rel=1e-9)
