"""Latency as the hardware runs it: compute and transfers take turns without double buffering,
and overlap with it except for the first load and the last store. Hand-derived cases, then
the candidates and the program against brute force over every mapping."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse_milp.accelerator import Accelerator, free_split, separate_buffers, unified_buffer
from dse_milp.candidates import generate
from dse_milp.cost import Objective, cost
from dse_milp.loader import parse_network
from dse_milp.solution import solve
from dse_milp.solvers import Status
from dse_milp.traffic import Levels, Mapping, Tiling, exposed, traffic
from dse_milp.workload import Layer, LayerKind, Precision
from tests.brute_force import best_network_cost, every_mapping
from tests.layers import ENERGY, random_network_spec, small_layers

# A 1x1 conv, 4 -> 4 channels over 4x4 pixels, 8-bit: 256 MACs; inputs, weights and outputs
# are 64, 16 and 64 bytes. On 8 MAC units it computes for 32 cycles; at 4 bytes per cycle
# moving the 144 bytes once takes 36.
CONV = Layer("conv", LayerKind.CONV2D, ("input",), m=4, n=4, r=4, c=4, h=4, w=4, precision=Precision(8, 8, 8, 32))


def accelerator(double_buffering: bool, capacity: int = 10**6, bandwidth: float = 4.0, macs: int = 8) -> Accelerator:
    return Accelerator("hand", unified_buffer(capacity), double_buffering, bandwidth, 100.0, macs, ENERGY)


def latency(layer: Layer, mapping: Mapping, acc: Accelerator) -> float:
    moved, hidden = traffic(layer, mapping).total / 8, exposed(layer, mapping) / 8
    return cost(Objective.LATENCY, layer, acc, moved, hidden).item()


def test_one_tile_never_overlaps():
    """One tile of everything: load 80 bytes, compute 32 cycles, store 64 bytes; double
    buffering has nothing to overlap, so both take 20 + 32 + 16 = 68 cycles."""
    whole = Mapping(Tiling(4, 4, 4, 4), "mnrc")
    assert exposed(CONV, whole) == (64 + 16 + 64) * 8
    assert latency(CONV, whole, accelerator(False)) == 68
    assert latency(CONV, whole, accelerator(True)) == 68


def test_row_tiles_overlap_only_with_double_buffering():
    """Four row tiles (t_r = 1), every operand innermost. Traffic is unchanged (144 bytes, 36
    cycles). Without double buffering each step loads, computes, then stores: 32 + 36 = 68.
    With it, the first step's 16 input and 16 weight bytes (8 cycles) and the last row's 16
    output bytes (4 cycles) are exposed; the other 24 cycles of transfers hide under the 32 of
    compute: 8 + 32 + 4 = 44."""
    rows = Mapping(Tiling(4, 4, 1, 4), "mnrc")
    assert traffic(CONV, rows).total == 144 * 8
    assert exposed(CONV, rows) == (16 + 16 + 16) * 8
    assert latency(CONV, rows, accelerator(False)) == 68
    assert latency(CONV, rows, accelerator(True)) == 44


def test_transfer_bound_layers_take_the_transfers():
    """At 1 byte per cycle the transfers (144 cycles) outlast compute plus the exposed bytes
    (32 + 48), so double buffering gives 144, and without it 32 + 144 = 176."""
    rows = Mapping(Tiling(4, 4, 1, 4), "mnrc")
    assert latency(CONV, rows, accelerator(True, bandwidth=1.0)) == 144
    assert latency(CONV, rows, accelerator(False, bandwidth=1.0)) == 176


def test_a_block_at_an_outer_level_is_exposed_whole():
    """The input held whole (level 0) is the first load in full: 64 + 16 bytes, plus one 16-byte
    output row: 96 bytes, 24 cycles, so 32 + 24 = 56 with double buffering."""
    mapping = Mapping(Tiling(4, 4, 1, 4), "mnrc", Levels(0, 4, 4))
    assert exposed(CONV, mapping) == (64 + 16 + 16) * 8
    assert latency(CONV, mapping, accelerator(True)) == 56


def test_the_program_picks_the_mapping_that_hides_its_transfers():
    """With double buffering the least-latency mapping is not the one-tile mapping (68) but one
    whose first and last blocks are small; with traffic alone they would tie."""
    solution = solve(parse_network(CONV_NETWORK, "conv"), accelerator(True), (Objective.LATENCY,))
    assert solution.result.status is Status.OPTIMAL
    best = min(
        latency(CONV, Mapping(Tiling(m, n, r, c), order, Levels(i, w, o)), accelerator(True))
        for m in range(1, 5) for n in range(1, 5) for r in range(1, 5) for c in range(1, 5)
        for order in ("mnrc", "nmrc", "rcmn") for i in range(5) for w in range(5) for o in range(5)
    )  # fmt: skip
    assert solution.result.objective == best < 68
    assert solution.layers[0].latency_cycles == best


CONV_NETWORK = {
    "name": "conv",
    "input": {"channels": 4, "height": 4, "width": 4},
    "layers": [{"name": "conv", "kind": "conv2d", "in_channels": 4, "out_channels": 4, "kernel": 1}],
}


def _keys(layer: Layer, acc: Accelerator, objectives: tuple[Objective, ...], moved: np.ndarray,
          hidden: np.ndarray) -> list[tuple]:  # fmt: skip
    values = [cost(o, layer, acc, moved / 8, hidden / 8) for o in objectives]
    return list(zip(*(v.ravel().tolist() for v in values), moved.ravel().tolist(), strict=True))


OBJECTIVES = st.sampled_from([(Objective.LATENCY, Objective.DRAM), (Objective.DRAM, Objective.LATENCY)])


@settings(max_examples=80, deadline=None)
@given(
    layer=small_layers(),
    capacity=st.integers(4, 400),
    bandwidth=st.sampled_from([0.5, 4.0, 64.0]),
    macs=st.sampled_from([1, 8]),
    separate=st.booleans(),
    objectives=OBJECTIVES,
)
def test_least_latency_equals_every_order_level_and_tiling(
    layer: Layer, capacity: int, bandwidth: float, macs: int, separate: bool, objectives: tuple[Objective, ...]
):
    """With double buffering the candidates keep the lexicographic optimum of every mapping
    that fits: (latency, traffic) or (traffic, latency)."""
    buffers = separate_buffers(capacity, capacity, capacity) if separate else unified_buffer(capacity)
    acc = Accelerator("db", buffers, True, bandwidth, 100.0, macs, ENERGY)
    every = every_mapping(layer, acc)
    cands = generate(layer, acc, objectives)
    if not every.fits.any():
        assert len(cands) == 0
        return
    hidden = np.broadcast_to(every.exposed, every.traffic.shape)
    best = min(_keys(layer, acc, objectives, every.traffic[every.fits], hidden[every.fits]))
    assert min(_keys(layer, acc, objectives, cands.total_bits, cands.exposed)) == best


@settings(max_examples=60, deadline=None)
@given(layer=small_layers(), bandwidth=st.sampled_from([0.5, 4.0, 64.0]), objectives=OBJECTIVES)
def test_the_latency_front_equals_brute_force_at_every_capacity(
    layer: Layer, bandwidth: float, objectives: tuple[Objective, ...]
):
    """Every candidate is on the brute-force front of (footprint, lexicographic cost), and
    every point of that front has a candidate."""
    acc = accelerator(True, bandwidth=bandwidth, macs=1)
    every = every_mapping(layer, acc)
    size = np.broadcast_to(sum(every.held.values()), every.traffic.shape)
    hidden = np.broadcast_to(every.exposed, every.traffic.shape)
    keys = _keys(layer, acc, objectives, every.traffic, hidden)
    front, best = [], None
    for s, key in sorted(set(zip(size.ravel().tolist(), keys, strict=True))):
        if best is None or key < best:
            front.append((s, key))
            best = key
    cands = generate(layer, acc, objectives)
    keys = _keys(layer, acc, objectives, cands.total_bits, cands.exposed)
    assert sorted(zip(cands.footprint.sum(axis=1).tolist(), keys, strict=True)) == front


@settings(max_examples=40, deadline=None)
@given(layer=small_layers(), banks=st.integers(1, 8), bank=st.sampled_from([4, 16]))
def test_least_latency_under_a_free_split_equals_brute_force(layer: Layer, banks: int, bank: int):
    buffers, split = free_split(banks * bank, bank)
    acc = Accelerator("split", buffers, True, 4.0, 100.0, 1, ENERGY, split)
    every = every_mapping(layer, acc)
    fit = every.fits & (sum(-(-block // (8 * bank)) for block in every.held.values()) <= banks)
    objectives = (Objective.LATENCY, Objective.DRAM)
    cands = generate(layer, acc, objectives)
    if not fit.any():
        assert len(cands) == 0
        return
    hidden = np.broadcast_to(every.exposed, every.traffic.shape)
    best = min(_keys(layer, acc, objectives, every.traffic[fit], hidden[fit]))
    assert min(_keys(layer, acc, objectives, cands.total_bits, cands.exposed)) == best


@pytest.mark.parametrize("seed", range(12))
def test_network_latency_equals_brute_force_with_double_buffering(seed: int):
    """The whole program under ``latency`` on a double-buffered accelerator, and the reported
    per-layer latencies (after the tie-break to fewer tiles) add up to its optimum."""
    rng = random.Random(seed)
    network = parse_network(random_network_spec(rng, rng.randint(2, 4)), f"random-{seed}")
    roomy = accelerator(True)
    need = max(generate(layer, roomy).smallest_footprint.sum() / 8 for layer in network.layers)
    capacity = int(need * rng.uniform(1.0, 4.0)) + 1
    acc = Accelerator("db", unified_buffer(capacity), True, rng.choice([1.0, 8.0]), 100.0, rng.choice([1, 8]), ENERGY)
    expected = best_network_cost(network, acc, Objective.LATENCY)
    solution = solve(network, acc, Objective.LATENCY)
    assert solution.result.status is Status.OPTIMAL
    assert solution.result.objective == pytest.approx(expected, rel=1e-9)
    assert sum(r.latency_cycles for r in solution.layers) == pytest.approx(expected, rel=1e-9)
