"""ONNX models in (dse_milp/onnx_import.py): models written in PyTorch and exported by
``torch.onnx.export`` map onto the same network as the hand-written YAML and the PyTorch
bridge, and solve to the identical result; graphs built with ``onnx.helper`` cover the edge
cases, and every op that cannot be mapped is a one-line error naming the node and its op."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402

from dse_milp.candidates import shape_of  # noqa: E402
from dse_milp.cli import EXIT_INPUT, EXIT_OK, main  # noqa: E402
from dse_milp.errors import InputError  # noqa: E402
from dse_milp.loader import load_accelerator, load_network, parse_network  # noqa: E402
from dse_milp.onnx_import import onnx_spec  # noqa: E402
from dse_milp.solution import solve  # noqa: E402
from dse_milp.workload import Network  # noqa: E402
from pruning.bridge import network_from_torch  # noqa: E402
from pruning.models import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NETWORKS, ACCELERATORS = ROOT / "instances" / "networks", ROOT / "instances" / "accelerators"


def export(model: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, *shape),), str(path), dynamo=False, opset_version=17)
    return path


def structure(network: Network) -> list[tuple]:
    """Each layer's shape and where its inputs come from (by position), names left out."""
    position = {layer.name: i for i, layer in enumerate(network.layers)}
    return [
        (shape_of(layer), tuple(position.get(x, -1) for x in layer.inputs),
         position.get(layer.weight_from) if layer.weight_from else None)
        for layer in network.layers
    ]  # fmt: skip


def same_solution(a: Network, b: Network, accelerator_file: str, fusion: int = 0) -> None:
    accelerator = load_accelerator(ACCELERATORS / accelerator_file)
    x, y = (solve(n, accelerator, fusion=fusion, prices=False) for n in (a, b))
    assert x.result.objective == y.result.objective and x.dram_bytes == y.dram_bytes
    assert [(r.traffic, r.mapping) for r in x.layers] == [(r.traffic, r.mapping) for r in y.layers]
    assert [(g.segment.start, g.segment.stop, g.mapping.rows, g.mapping.cols) for g in x.groups] == [
        (g.segment.start, g.segment.stop, g.mapping.rows, g.mapping.cols) for g in y.groups
    ]


@pytest.mark.parametrize(
    ("model", "yaml"),
    [("resnet8", "fmnist_resnet8"), ("ds_cnn", "fmnist_dscnn"), ("mobilenet_v1_025", "fmnist_mobilenet_v1_025"),
     ("small_vgg", "fmnist_small_vgg")],
)  # fmt: skip
def test_exported_cnns_map_as_their_yaml_and_the_torch_bridge_and_solve_identically(model, yaml, tmp_path):
    """Conv (grouped, depthwise, strided, padded), BatchNorm and ReLU folded, residual Add,
    pools, Flatten and Gemm."""
    module, shape = load_model(model)
    imported = load_network(export(module, shape, tmp_path / f"{model}.onnx"))
    by_hand = load_network(NETWORKS / f"{yaml}.yaml")
    assert structure(imported) == structure(by_hand) == structure(network_from_torch(module, shape))
    same_solution(imported, by_hand, "npu_32k.yaml", fusion=3)


class Block(nn.Module):
    """A transformer encoder block: attention (two MatMuls of computed tensors), LayerNorm,
    an FFN, residual adds."""

    def __init__(self, d: int = 64, heads: int = 4, ffn: int = 128) -> None:
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        return x.reshape(b, s, self.h, self.dk).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        p = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.dk), dim=-1)
        c = (p @ v).transpose(1, 2).reshape(x.shape)
        x = self.norm1(x + self.o(c))
        return self.norm2(x + self.fc2(torch.relu(self.fc1(x))))


BLOCK_YAML = {
    "name": "block",
    "input": {"channels": 64, "height": 16, "width": 1},
    "layers": [
        {"name": "q", "kind": "matmul", "in_features": 64, "out_features": 64},
        {"name": "k", "kind": "matmul", "inputs": ["input"], "in_features": 64, "out_features": 64},
        {"name": "v", "kind": "matmul", "inputs": ["input"], "in_features": 64, "out_features": 64},
        {"name": "scores", "kind": "matmul", "inputs": ["q"], "in_features": 64, "out_features": 64, "heads": 4,
         "weight_from": "k"},
        {"name": "context", "kind": "matmul", "in_features": 64, "out_features": 64, "heads": 4, "weight_from": "v"},
        {"name": "o", "kind": "matmul", "in_features": 64, "out_features": 64},
        {"name": "add1", "kind": "add", "inputs": ["input", "o"]},
        {"name": "fc1", "kind": "matmul", "in_features": 64, "out_features": 128},
        {"name": "fc2", "kind": "matmul", "in_features": 128, "out_features": 64},
        {"name": "add2", "kind": "add", "inputs": ["add1", "fc2"]},
    ],
}  # fmt: skip


def test_an_exported_transformer_block_maps_attention_as_matmuls_of_two_tensors(tmp_path):
    imported = load_network(export(Block(), (16, 64), tmp_path / "block.onnx"))
    by_hand = parse_network(BLOCK_YAML)
    assert structure(imported) == structure(by_hand) == structure(network_from_torch(Block(), (16, 64)))
    same_solution(imported, by_hand, "npu_32k.yaml")


def test_the_import_command_writes_yaml_that_loads_to_the_same_network_and_solve_reads_onnx(tmp_path, capsys):
    module, shape = load_model("resnet8")
    model = export(module, shape, tmp_path / "resnet8.onnx")
    out = tmp_path / "resnet8.yaml"
    assert main(["import", str(model), "--out", str(out)]) == EXIT_OK
    assert structure(load_network(out)) == structure(load_network(model))
    assert main(["import", str(model)]) == EXIT_OK
    assert capsys.readouterr().out == out.read_text()
    result = tmp_path / "r.json"
    assert main(["solve", str(model), str(ACCELERATORS / "npu_32k.yaml"), "--quiet", "--out", str(result)]) == EXIT_OK


# -- graphs built with onnx.helper ---------------------------------------------------------------


def graph_file(path: Path, nodes: list, inputs: list, outputs: list, weights: dict[str, np.ndarray]) -> Path:
    initializers = [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def tensor(name: str, shape: list) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def conv_file(path: Path, x_shape: list, **attrs: object) -> Path:
    channels = x_shape[1]
    w = np.zeros((8, channels // int(attrs.get("group", 1)), 3, 3))
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="the conv", **attrs)
    return graph_file(path, [node], [tensor("x", x_shape)], [tensor("y", None)], {"w": w})


def one_error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_network(path)
    (problem,) = info.value.problems
    assert "\n" not in problem
    return problem


def test_asymmetric_pads_take_the_symmetric_padding_with_onnx_s_output_size(tmp_path):
    """TensorFlow's stride-2 SAME convolution pads one more row after than before."""
    for attrs in ({"strides": [2, 2], "pads": [0, 0, 1, 1]}, {"strides": [2, 2], "auto_pad": "SAME_UPPER"}):
        (conv,) = load_network(conv_file(tmp_path / "c.onnx", [1, 4, 32, 32], **attrs)).layers
        assert (conv.r, conv.c) == (16, 16) and (conv.sh, conv.sw) == (2, 2)


def test_a_padding_no_symmetric_one_reproduces_is_an_error(tmp_path):
    problem = one_error(conv_file(tmp_path / "c.onnx", [1, 4, 8, 8], pads=[0, 0, 2, 2]))
    assert "node 'the conv' ('Conv')" in problem and "no symmetric padding" in problem


def test_dilation_is_an_error_naming_the_node(tmp_path):
    problem = one_error(conv_file(tmp_path / "c.onnx", [1, 4, 16, 16], dilations=[2, 2]))
    assert problem.endswith("node 'the conv' ('Conv'): dilations [2, 2] (only 1 is supported)")


def test_grouped_and_depthwise_convolutions(tmp_path):
    (conv,) = load_network(conv_file(tmp_path / "c.onnx", [1, 8, 8, 8], group=2, pads=[1, 1, 1, 1])).layers
    assert (conv.m, conv.n, conv.groups, conv.r) == (8, 8, 2, 8)


def test_an_unsupported_op_names_the_node_and_its_op_type_and_the_command_exits_2(tmp_path, capsys):
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("LSTM", ["a", "w", "r"], ["y"], name="rnn\x1b[31m"),
    ]
    path = graph_file(tmp_path / "m.onnx", nodes, [tensor("x", [1, 4, 8])], [tensor("y", None)],
                      {"w": np.zeros((1, 4, 8)), "r": np.zeros((1, 4, 1))})  # fmt: skip
    assert main(["import", str(path)]) == EXIT_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "node 'rnn\\x1b[31m' ('LSTM'): unsupported op" in line and "\x1b" not in line


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [([tensor("x", [1, 4, 8, 8]), tensor("z", [1, 4, 8, 8])], "2 model inputs"),
     ([tensor("x", ["batch", 4, 8, 8])], "is not fixed"),
     ([tensor("x", [2, 4, 8, 8])], "batch 2: only batch 1 is supported")],
)  # fmt: skip
def test_the_model_input_must_be_one_fixed_sample(tmp_path, inputs, expected):
    node = helper.make_node("Relu", ["x"], ["y"])
    assert expected in one_error(graph_file(tmp_path / "m.onnx", [node], inputs, [tensor("y", None)], {}))


def test_gemm_pools_a_global_mean_and_a_folded_bias(tmp_path):
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["p"], ["q"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),  # stride 1
        helper.make_node("ReduceMean", ["q"], ["g"], axes=[2, 3], keepdims=1),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w"], ["y0"], transB=1),
        helper.make_node("Add", ["y0", "b"], ["y"]),
    ]
    path = graph_file(tmp_path / "m.onnx", nodes, [tensor("x", [1, 4, 8, 8])], [tensor("y", None)],
                      {"w": np.zeros((10, 4)), "b": np.zeros(10)})  # fmt: skip
    maxpool, avgpool, mean, fc = load_network(path).layers
    assert (maxpool.kh, maxpool.sh, maxpool.r) == (2, 2, 4)
    assert (avgpool.kh, avgpool.sh, avgpool.ph, avgpool.r) == (3, 1, 1, 4)
    assert (mean.kh, mean.kw, mean.r) == (4, 4, 1)
    assert (fc.m, fc.n) == (10, 4)


def test_arithmetic_of_two_computed_tensors_other_than_add_is_an_error(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Mul", ["x", "a"], ["y"], name="gate")]
    path = graph_file(tmp_path / "m.onnx", nodes, [tensor("x", [1, 4, 8, 8])], [tensor("y", None)], {})
    assert "node 'gate' ('Mul'): Mul of two computed tensors is not supported" in one_error(path)


def test_a_file_that_is_not_onnx_is_one_line(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x00\xffnot a model")
    assert one_error(path).startswith(f"{path}: cannot read an ONNX model")


def test_a_device_or_a_folder_is_refused_before_reading(tmp_path):
    link = tmp_path / "zero.onnx"
    link.symlink_to("/dev/zero")
    assert one_error(link) == f"{link}: not a regular file"
    assert one_error(tmp_path / "missing.onnx").startswith(f"{tmp_path / 'missing.onnx'}: cannot read file")


def test_the_spec_is_the_yaml_format(tmp_path):
    module, shape = load_model("ds_cnn")
    spec = onnx_spec(export(module, shape, tmp_path / "ds_cnn.onnx"))
    assert spec["name"] == "ds_cnn" and spec["input"] == {"channels": shape[0], "height": shape[1], "width": shape[2]}
    assert spec["layers"][0]["kind"] == "conv2d"
