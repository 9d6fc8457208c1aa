"""The predicted saving of a pruning step, against the program re-solved on the pruned network."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

import itertools

from dse_milp.cost import Objective
from dse_milp.loader import load_accelerator, load_network
from dse_milp.marginals import marginal_traffic, without_channels
from dse_milp.solution import solve
from pruning.predict import kept_mapping_saving, predicted_savings, predicted_step

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    # network, accelerator, fusion, group
    ("fmnist_resnet8", "npu_32k", 0, "conv1"),
    ("fmnist_resnet8", "npu_32k", 6, "s2.conv1"),
    ("fmnist_resnet8", "npu_128k_split", 6, "s3.conv2"),
    ("fmnist_dscnn", "npu_32k", 4, "b2.pw"),
    ("fmnist_small_vgg", "fpga", 0, "conv4"),
]


def setting(network: str, accelerator: str):
    return (
        load_network(ROOT / "instances" / "networks" / f"{network}.yaml"),
        load_accelerator(ROOT / "instances" / "accelerators" / f"{accelerator}.yaml"),
    )


@pytest.mark.parametrize(("network", "accelerator", "fusion", "group"), CASES)
def test_one_channel_is_exact_and_kept_mappings_bound_the_saving(network, accelerator, fusion, group):
    net, acc = setting(network, accelerator)
    solution = solve(net, acc, fusion=fusion)
    marginal = marginal_traffic(solution, fusion=fusion)[group]
    predicted = predicted_savings(solution, group, marginal, 6)
    for count in (1, 2, 4, 6):
        actual = solution.dram_bytes - solve(without_channels(net, group, count), acc, fusion=fusion).dram_bytes
        kept, freed = kept_mapping_saving(solution, group, count)
        assert 0 < kept <= actual  # the kept mappings still fit: re-solving can only do better
        assert all(v >= 0 for by in freed.values() for v in by.values())  # footprints only shrink
        if count == 1:
            assert predicted[1] == actual  # the marginal, re-solved
    assert predicted[0] == 0
    assert all(b >= a for a, b in itertools.pairwise(predicted))  # more channels, more bytes


def test_without_dram_objective_the_prediction_is_the_marginal_and_the_kept_bytes():
    net, acc = setting("fmnist_resnet8", "npu_32k")
    solution = solve(net, acc, objective=Objective.LATENCY, fusion=4)
    marginal = marginal_traffic(solution, objective=Objective.LATENCY, fusion=4)["s2.conv2"]
    predicted = predicted_savings(solution, "s2.conv2", marginal, 3)
    one, _ = kept_mapping_saving(solution, "s2.conv2", 1)
    three, _ = kept_mapping_saving(solution, "s2.conv2", 3)
    assert predicted[3] == pytest.approx(marginal + three - one)


def test_a_step_adds_its_groups_and_needs_every_marginal():
    net, acc = setting("fmnist_resnet8", "npu_32k")
    solution = solve(net, acc)
    marginals = marginal_traffic(solution)
    step = {"conv1": 2, "s3.conv1": 5}
    expected = sum(predicted_savings(solution, g, marginals[g], k)[k] for g, k in step.items())
    assert predicted_step(solution, marginals, step) == expected
    assert predicted_step(solution, marginals | {"s3.conv1": None}, step) is None
