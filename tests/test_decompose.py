"""The exact decompositions: the complete splits, the lexicographic comparison, and each
unit's best candidate when only the segmentation couples the units."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dse_milp.accelerator import Accelerator, Energy, unified_buffer
from dse_milp.candidates import generate
from dse_milp.cost import Objective
from dse_milp.decompose import best_of_each_unit, better, complete_splits
from dse_milp.loader import parse_network
from formulations import MappingProblem


@pytest.mark.parametrize("banks", [0, 1, 5, 16])
def test_complete_splits_are_every_assignment_of_all_banks(banks: int):
    splits = complete_splits(banks)
    assert len(splits) == (banks + 1) * (banks + 2) // 2
    assert len({tuple(s) for s in splits}) == len(splits)
    assert np.all(splits.sum(axis=1) == banks) and np.all(splits >= 0)
    assert [tuple(s) for s in splits] == sorted(tuple(s) for s in splits)


def test_better_compares_measure_by_measure_within_the_tolerance():
    a = np.array([[1.0, 5.0], [1.0, 5.0], [1.0 + 1e-12, 4.0], [np.inf, 0.0], [2.0, 0.0]])
    b = np.array([[1.0, 6.0], [1.0, 5.0], [1.0, 5.0], [1.0, 9.0], [np.inf, np.inf]])
    assert better(a, b).tolist() == [True, False, True, False, True]


def test_each_unit_keeps_its_lexicographically_best_candidate():
    """Two mappings of one layer move the same bytes; the smaller exposes more, so under
    (dram, latency) with double buffering the larger is best, and under dram alone the first
    (the smaller) is kept."""
    spec = {"name": "one", "input": {"channels": 8, "height": 8, "width": 8},
            "layers": [{"name": "c", "kind": "conv2d", "in_channels": 8, "out_channels": 8, "kernel": 3}]}  # fmt: skip
    network = parse_network(spec)
    acc = Accelerator("a", unified_buffer(1 << 20), True, 1.0, 100.0, 64, Energy(20.0, 0.6, 0.2))
    cands = generate(network.layers[0], acc).take(np.array([0, 0]))
    cands = replace(cands, exposed=np.array([10**6, 8]), footprint=cands.footprint + np.array([[0, 0, 0], [8, 0, 0]]))
    for objectives, pick in (((Objective.DRAM, Objective.LATENCY), 1), ((Objective.DRAM,), 0)):
        problem = MappingProblem(network, acc, {"c": cands}, objectives)
        kept = best_of_each_unit(problem).candidates["c"]
        assert len(kept) == 1 and kept.exposed[0] == cands.exposed[pick]
