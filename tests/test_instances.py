"""The bundled networks have the shapes of the published models."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from dse_milp.loader import load_network
from dse_milp.workload import LayerKind

NETWORKS = Path(__file__).resolve().parent.parent / "instances" / "networks"

# Published figures: parameters (biases and BatchNorm included, which these files
# leave out: up to 1.5% of the total, hence the 2% tolerance) and multiply-accumulates of the conv and FC layers.
PUBLISHED = {
    "alexnet": (60_965_224, 724e6),  # Caffe bvlc_alexnet; Sze et al., Proc. IEEE 2017, Table III
    "vgg16": (138_357_544, 15.5e9),  # Simonyan & Zisserman 2015; Sze et al. Table III
    "resnet18": (11_689_512, 1.81e9),  # torchvision
    "resnet50": (25_557_032, 4.09e9),  # torchvision (v1.5)
    "mobilenet_v1": (4.2e6, 569e6),  # Howard et al. 2017, Table 8
    "mobilenet_v2": (3_504_872, 300e6),  # torchvision; Sandler et al. 2018, Table 4
    "resnet56_cifar": (0.85e6, 125e6),  # He et al. 2016, Table 6
}


def conv_and_fc_macs(network) -> int:
    return sum(layer.macs for layer in network.layers if layer.kind in (LayerKind.CONV2D, LayerKind.MATMUL))


@pytest.mark.parametrize(("name", "figures"), PUBLISHED.items())
def test_parameters_and_macs_match_the_papers(name: str, figures: tuple[float, float]):
    network = load_network(NETWORKS / f"{name}.yaml")
    params, macs = figures
    assert network.parameters == pytest.approx(params, rel=0.02)
    assert conv_and_fc_macs(network) == pytest.approx(macs, rel=0.02)


def test_exact_counts_of_the_fully_connected_models():
    autoencoder = load_network(NETWORKS / "tiny_fc_autoencoder.yaml")
    widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    assert autoencoder.parameters == sum(a * b for a, b in itertools.pairwise(widths))
    bert = load_network(NETWORKS / "bert_base_block.yaml")
    assert bert.parameters == 4 * 768 * 768 + 2 * 768 * 3072  # q, k, v, out; the two FFN layers
    scores = bert.by_name["attn.scores"]
    assert (scores.groups, scores.mg, scores.ng, scores.r) == (12, 128, 64, 128)  # per head: keys x width, queries


@pytest.mark.parametrize(
    ("name", "shape"),
    [("tiny_resnet8", (10, 1, 1)), ("tiny_mobilenet_v1_025", (2, 1, 1)), ("tiny_dscnn", (12, 1, 1))],
)
def test_mlperf_tiny_outputs(name: str, shape: tuple[int, int, int]):
    network = load_network(NETWORKS / f"{name}.yaml")
    last = network.layers[-1].name
    out = network.output_shapes[last]
    assert (out.channels, out.height, out.width) == shape


def test_the_split_suite_holds_free_splits_of_bundled_networks():
    from dse_milp.loader import load_accelerator, load_suite

    entries = load_suite(NETWORKS.parent / "suite_split.yaml")
    assert len(entries) >= 5
    for entry in entries:
        load_network(entry.network)
        assert load_accelerator(entry.accelerator).split is not None, entry.name
