"""The resident-weights knapsack (dse_milp.residency) and the group candidates built on it,
against every subset."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse_milp.accelerator import Accelerator, Energy, Split, separate_buffers
from dse_milp.cost import Objective
from dse_milp.fusion import GroupMapping, generate_group, group_cost, group_objective
from dse_milp.halo import Halo
from dse_milp.loader import parse_network
from dse_milp.residency import Residency
from dse_milp.units import segments
from tests.brute_force import residency_choices
from tests.layers import random_network_spec

items = st.lists(st.tuples(st.integers(1, 40), st.integers(0, 30)), min_size=0, max_size=7)


def _subsets(value: list[int], size: list[int]) -> list[tuple[int, int, frozenset[int]]]:
    """(A, B, set) of every subset."""
    n = len(value)
    return [
        (sum(value[j] for j in c), sum(size[j] for j in c), frozenset(c))
        for k in range(n + 1)
        for c in itertools.combinations(range(n), k)
    ]


@settings(max_examples=200, deadline=None)
@given(items, st.integers(0, 120), st.sampled_from([1, 2, 8]))
def test_every_budget_gets_the_most_weight_and_then_the_least_room(pairs, budget, scale):
    value = [a * scale for a, _ in pairs]
    size = [b * scale for _, b in pairs]
    names = [f"l{j}" for j in range(len(pairs))]
    knapsack = Residency.of(names, value, size, budget * scale)
    everything = _subsets(value, size)
    for limit in range(-1, budget * scale + 3):
        step = int(knapsack.step(np.array(limit)))
        fitting = [(a, b) for a, b, _ in everything if b <= min(limit, budget * scale)]
        if limit < 0:
            assert step == -1
            continue
        best = max(a for a, _ in fitting)
        least = min(b for a, b in fitting if a == best)
        assert (knapsack.best[step], knapsack.least[step]) == (best, least)
        chosen = knapsack.subset(step)
        members = [int(n[1:]) for n in chosen]
        assert (sum(value[j] for j in members), sum(size[j] for j in members)) == (best, least)


@settings(max_examples=100, deadline=None)
@given(items, st.integers(0, 120))
def test_hull_is_the_upper_concave_hull_of_every_subset(pairs, budget):
    value, size = [a for a, _ in pairs], [b for _, b in pairs]
    knapsack = Residency.of([f"l{j}" for j in range(len(pairs))], value, size, budget)
    points = {(b, a) for a, b, _ in _subsets(value, size) if b <= min(budget, sum(size))}
    hull = {(int(knapsack.least[c]), int(knapsack.best[c])) for c in knapsack.hull()}
    # every point lies on or below the hull's chords, and every hull point is a subset's
    assert hull <= points
    corners = sorted(hull)
    for b, a in points:
        assert b >= corners[0][0]
        if b >= corners[-1][0]:  # past the last corner nothing holds more weight
            assert a <= corners[-1][1]
        for (b0, a0), (b1, a1) in itertools.pairwise(corners):
            if b0 <= b <= b1:
                assert (a - a0) * (b1 - b0) <= (a1 - a0) * (b - b0) + 1e-9


ENERGY = Energy(20.0, 0.6, 0.2)


@pytest.mark.parametrize(
    ("objectives", "halo"),
    [((Objective.DRAM,), (Halo.RECOMPUTE,)), ((Objective.LATENCY, Objective.DRAM), (Halo.RECOMPUTE,)),
     ((Objective.DRAM,), tuple(Halo))],
)  # fmt: skip
def test_free_split_candidates_hold_the_best_of_every_bank_allocation(objectives, halo):
    """Under a free split, for every allocation of banks to the three buffers, the best
    candidate that fits it is as good as the best of every tile, resident set and halo mode."""
    rng = random.Random(11)
    compared = 0
    for seed in range(40):
        network = parse_network(random_network_spec(random.Random(seed), rng.randint(2, 4)), f"r{seed}")
        for segment in segments(network, longest=4):
            bank = rng.choice([16, 32, 64])
            banks = rng.randint(3, 12)
            total = bank * banks
            split = Split(total, bank)
            acc = Accelerator("s", separate_buffers(total, total, total), rng.random() < 0.5, 4.0, 100.0, 8, ENERGY,
                              split, halo=halo)  # fmt: skip
            cands = generate_group(segment, acc, objectives)
            last = segment.shape(segment.last.name)
            everything = [
                group_cost(segment, GroupMapping(r, c, res, mode), acc.double_buffering)
                for r in range(1, last.height + 1)
                for c in range(1, last.width + 1)
                for res in residency_choices(segment)
                for mode in halo
            ]
            found = [group_cost(segment, m, acc.double_buffering) for m in cands.mappings]
            scored = {
                name: [
                    ((*(group_objective(o, acc, segment, c) for o in objectives), c.traffic.total),
                     tuple(-(-c.footprint[op] // (8 * bank)) for op in c.footprint))
                    for c in costs
                ]
                for name, costs in (("all", everything), ("candidates", found))
            }  # fmt: skip
            for alloc in itertools.product(range(banks + 1), repeat=3):
                if sum(alloc) > banks:
                    continue
                best = {
                    name: min((k for k, need in pairs if all(n <= a for n, a in zip(need, alloc, strict=True))),
                              default=None)
                    for name, pairs in scored.items()
                }  # fmt: skip
                assert best["all"] == best["candidates"], alloc
            compared += 1
    assert compared > 30
