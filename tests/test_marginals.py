"""Marginal traffic per output channel, against networks with the channel removed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dse_milp.loader import load_accelerator, load_network, parse_network
from dse_milp.marginals import coupled_tensors, marginal_traffic, without_channels
from dse_milp.solution import solve

ROOT = Path(__file__).resolve().parent.parent


def spec(name: str) -> dict:
    return yaml.safe_load((ROOT / "instances" / "networks" / f"{name}.yaml").read_text(encoding="utf-8"))


def edit(data: dict, changes: dict[str, dict[str, int]]) -> dict:
    """The network spec with fields of named layers changed."""
    for layer in data["layers"]:
        layer.update(changes.get(layer["name"], {}))
    return data


CASES = [
    # ResNet-8: conv1 feeds the first residual stream, so s1.conv2 and the add lose the channel too
    ("tiny_resnet8", "npu_32k", 0, "conv1",
     {"conv1": {"out_channels": 15}, "s1.conv1": {"in_channels": 15}, "s1.conv2": {"out_channels": 15},
      "s2.conv1": {"in_channels": 15}, "s2.downsample": {"in_channels": 15}}),
    # a layer inside a block: only its reader shrinks
    ("tiny_resnet8", "npu_32k", 0, "s2.conv1", {"s2.conv1": {"out_channels": 31}, "s2.conv2": {"in_channels": 31}}),
    # DS-CNN: a pointwise conv feeds a depthwise one, which passes the channel on
    ("tiny_dscnn", "npu_32k", 0, "b1.pw",
     {"b1.pw": {"out_channels": 63}, "b2.dw": {"in_channels": 63, "out_channels": 63, "groups": 63},
      "b2.pw": {"in_channels": 63}}),
    # the last pointwise conv feeds the global pool and the classifier
    ("tiny_dscnn", "npu_32k", 4, "b4.pw", {"b4.pw": {"out_channels": 63}, "fc": {"in_features": 63}}),
    # with fusion the re-optimised program may regroup layers
    ("tiny_resnet8", "npu_32k", 6, "s3.conv1", {"s3.conv1": {"out_channels": 63}, "s3.conv2": {"in_channels": 63}}),
]  # fmt: skip


@pytest.mark.parametrize(("network", "accelerator", "fusion", "layer", "changes"), CASES)
def test_marginal_equals_removing_the_channel_by_hand(network, accelerator, fusion, layer, changes):
    net = load_network(ROOT / "instances" / "networks" / f"{network}.yaml")
    acc = load_accelerator(ROOT / "instances" / "accelerators" / f"{accelerator}.yaml")
    solution = solve(net, acc, fusion=fusion)
    by_hand = solve(parse_network(edit(spec(network), changes)), acc, fusion=fusion)
    marginals = marginal_traffic(solution, fusion=fusion)
    assert marginals[layer] == solution.dram_bytes - by_hand.dram_bytes
    assert marginals[layer] > 0


def test_flattening_classifier_loses_a_plane_of_features():
    data = {
        "name": "flat",
        "input": {"channels": 2, "height": 4, "width": 4},
        "layers": [
            {"name": "conv", "kind": "conv2d", "in_channels": 2, "out_channels": 3, "kernel": 3, "padding": 1},
            {"name": "fc", "kind": "matmul", "in_features": 48, "out_features": 5},
        ],
    }
    network = parse_network(data)
    pruned = without_channels(network, "conv")
    data["layers"][0]["out_channels"], data["layers"][1]["in_features"] = 2, 32
    assert pruned is not None
    assert pruned.layers == parse_network(data).layers


def test_channels_that_cannot_go_alone():
    bert = load_network(ROOT / "instances" / "networks" / "bert_base_block.yaml")
    assert coupled_tensors(bert, "attn.q") is None  # scores multiply q by k: both would have to shrink
    assert coupled_tensors(bert, "attn.out") is None  # the residual stream reaches the network input
    assert without_channels(bert, "attn.context") is None  # 12 heads: a channel cannot leave one head alone
    resnet = load_network(ROOT / "instances" / "networks" / "resnet50.yaml")
    stream = coupled_tensors(resnet, "layer1.0.conv3")
    assert stream == {"layer1.0.conv3", "layer1.0.downsample", "layer1.0.add", "layer1.1.conv3", "layer1.1.add",
                      "layer1.2.conv3", "layer1.2.add"}  # fmt: skip
