"""Shadow prices of the buffers: the LP step against finite differences and the convex envelope."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from dse_milp.accelerator import Accelerator, Energy, separate_buffers, unified_buffer
from dse_milp.burst_candidates import AUTO_LAYOUTS
from dse_milp.candidates import generate
from dse_milp.cost import Objective
from dse_milp.duals import UNBOUNDED, unit_lp
from dse_milp.fusion import GroupMapping, group_cost
from dse_milp.loader import load_accelerator, load_network, parse_network
from dse_milp.solution import solve
from dse_milp.units import build_problem, segments
from formulations import MappingProblem
from tests.brute_force import residency_choices
from tests.layers import random_network_spec

ENERGY = Energy(20.0, 0.6, 0.2)
DELTA = 1e-3


def envelope(footprint: np.ndarray, cost: np.ndarray, capacity: float) -> float:
    """The lower convex envelope of the (footprint, cost) points at ``capacity``, by brute force:
    the least of every point and every chord between two points that reaches ``capacity``."""
    points = [c for f, c in zip(footprint, cost, strict=True) if f <= capacity]
    chords = [
        cost[i] + (cost[j] - cost[i]) * (capacity - footprint[i]) / (footprint[j] - footprint[i])
        for i in range(len(cost))
        for j in range(len(cost))
        if footprint[i] < capacity < footprint[j]
    ]
    return min(points + chords, default=np.inf)


def lower_envelope_slope(footprint: np.ndarray, cost: np.ndarray, capacity: float) -> tuple[float, float]:
    """(left, right) slopes of the lower convex envelope at ``capacity``."""
    at = envelope(footprint, cost, capacity)
    return (
        (at - envelope(footprint, cost, capacity - DELTA)) / DELTA,
        (envelope(footprint, cost, capacity + DELTA) - at) / DELTA,
    )


@pytest.mark.parametrize("seed", range(25))
def test_layer_price_matches_finite_difference_and_envelope(seed: int):
    rng = random.Random(seed)
    network = parse_network(random_network_spec(rng, 3))
    roomy = Accelerator("roomy", unified_buffer(UNBOUNDED), False, 4.0, 100.0, 8, ENERGY)
    layer = max(network.layers, key=lambda layer: len(generate(layer, roomy)))
    front = generate(layer, roomy)
    sizes = front.footprint.sum(axis=1) / 8
    capacity = int(rng.uniform(sizes.min(), sizes.max() * 1.2)) + 1
    accelerator = Accelerator("a", unified_buffer(capacity), False, 4.0, 100.0, 8, ENERGY)
    problem = MappingProblem(network, accelerator, {}, (Objective.DRAM,))  # the LP step makes its own candidates
    value, price = unit_lp(problem, layer.name, "unified")
    right = (value - unit_lp(problem, layer.name, "unified", DELTA)[0]) / DELTA
    left = (unit_lp(problem, layer.name, "unified", -DELTA)[0] - value) / DELTA
    assert right - 1e-6 <= price <= left + 1e-6  # a subgradient: the slope where the capacity sits
    envelope_left, envelope_right = lower_envelope_slope(sizes, front.total_bits / 8, capacity)
    assert -envelope_right == pytest.approx(right, abs=1e-6)
    assert -envelope_left == pytest.approx(left, abs=1e-6)


def test_prices_on_a_bundled_instance_match_finite_differences():
    network = load_network("instances/networks/resnet50.yaml")
    accelerator = replace(load_accelerator("instances/accelerators/npu_32k.yaml"), burst_bytes=1)  # in bytes
    solution = solve(network, accelerator)
    problem = build_problem(network, accelerator, (Objective.DRAM,))
    priced = [r for r in solution.layers if r.shadow_price["unified"] > 0]
    assert len(priced) >= 10  # a small buffer leaves many layers short of room
    for r in priced[:10]:
        value, price = unit_lp(problem, r.layer.name, "unified")
        assert price == pytest.approx(r.shadow_price["unified"])
        plus = unit_lp(problem, r.layer.name, "unified", 1.0)[0]
        assert value - plus == pytest.approx(price, rel=1e-6)  # capacities sit inside a linear piece here


def test_group_and_separate_buffer_prices_match_finite_differences():
    network = load_network("instances/networks/mobilenet_v2.yaml")
    accelerator = replace(load_accelerator("instances/accelerators/fpga.yaml"), burst_bytes=1)  # in bytes
    solution = solve(network, accelerator, fusion=4)
    problem = build_problem(network, accelerator, (Objective.DRAM,), fusion=4)
    checked = 0
    for group in solution.groups:
        for buffer, price in group.shadow_price.items():
            value, again = unit_lp(problem, group.segment, buffer)
            assert again == pytest.approx(price)
            right = (value - unit_lp(problem, group.segment, buffer, DELTA)[0]) / DELTA
            left = (unit_lp(problem, group.segment, buffer, -DELTA)[0] - value) / DELTA
            assert right - 1e-6 <= price <= left + 1e-6
            checked += price > 0
    assert checked >= 1


def test_no_price_once_the_least_traffic_fits():
    network = load_network("instances/networks/tiny_dscnn.yaml")
    big = Accelerator("big", separate_buffers(1 << 20, 1 << 20, 1 << 20), False, 4.0, 100.0, 8, ENERGY)
    solution = solve(network, big)
    assert all(price == 0 for r in solution.layers for price in r.shadow_price.values())


def test_prices_in_bursts_match_finite_differences():
    """With DRAM bursts each unit's LP prices its candidates in the layouts the solution gave
    its tensors; the reported price is that LP's dual, between its one-sided slopes."""
    network = load_network("instances/networks/tiny_mobilenet_v1_025.yaml")
    accelerator = replace(load_accelerator("instances/accelerators/npu_4k.yaml"), burst_bytes=64)
    solution = solve(network, accelerator)
    problem = build_problem(network, accelerator, (Objective.DRAM,), layouts=AUTO_LAYOUTS)
    priced = [r for r in solution.layers if r.shadow_price["unified"] > 0]
    assert len(priced) >= 10
    for r in priced[:10]:
        assert r.layouts is not None
        value, price = unit_lp(problem, r.layer.name, "unified", 0.0, r.layouts)
        assert price == pytest.approx(r.shadow_price["unified"])
        right = (value - unit_lp(problem, r.layer.name, "unified", DELTA, r.layouts)[0]) / DELTA
        left = (unit_lp(problem, r.layer.name, "unified", -DELTA, r.layouts)[0] - value) / DELTA
        assert right - 1e-6 <= price <= left + 1e-6


@pytest.mark.parametrize("seed", range(12))
def test_group_lp_equals_the_envelope_of_every_tile_and_resident_set(seed: int):
    """A fused group's LP step over its candidates (kept tiles, each with the staircase's hull
    of resident sets) equals the lower convex envelope of every tile with every subset of
    resident weights: no mapping a convex combination needs is missing."""
    rng = random.Random(seed)
    network = parse_network(random_network_spec(rng, rng.randint(3, 4)), f"r{seed}")
    checked = 0
    for segment in segments(network, longest=4):
        last = segment.shape(segment.last.name)
        costs = [
            group_cost(segment, GroupMapping(r, c, res), False)
            for r in range(1, last.height + 1)
            for c in range(1, last.width + 1)
            for res in residency_choices(segment)
        ]
        sizes = np.array([sum(c.footprint.values()) / 8 for c in costs])
        traffic = np.array([c.traffic.total / 8 for c in costs])
        capacity = int(rng.uniform(sizes.min(), sizes.max())) + 1
        accelerator = Accelerator("a", unified_buffer(capacity), False, 4.0, 100.0, 8, ENERGY)
        problem = MappingProblem(network, accelerator, {}, (Objective.DRAM,))
        value, _ = unit_lp(problem, segment, "unified")
        assert value == pytest.approx(envelope(sizes, traffic, capacity), rel=1e-9)
        checked += 1
    assert checked >= 1
