"""PyTorch to the program: the bundled models against their YAML files, pruned shapes, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from dse_milp.errors import InputError  # noqa: E402
from dse_milp.loader import load_accelerator, load_network, parse_network  # noqa: E402
from dse_milp.marginals import without_channels  # noqa: E402
from dse_milp.outputs import network_yaml  # noqa: E402
from dse_milp.solution import solve  # noqa: E402
from pruning.bridge import network_from_torch, trace  # noqa: E402
from pruning.channels import Channels, rebuild, widths  # noqa: E402
from pruning.models import MODELS, ORIGINALS, load_model  # noqa: E402
from tests import torch_models  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NPU_32K = ROOT / "instances" / "accelerators" / "npu_32k.yaml"


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_torch_definitions_give_the_mlperf_tiny_yaml_files(name):
    bundled = ORIGINALS[name]
    network = network_from_torch(bundled.model(), bundled.input_shape)
    expected = load_network(bundled.yaml)
    assert network.layers == expected.layers  # names, kinds, inputs, every dimension
    assert network.output_shapes == expected.output_shapes
    assert network.macs == expected.macs
    assert network.parameters == expected.parameters
    module = bundled.model()
    weights = sum(p.numel() for n, p in module.named_parameters() if n.endswith("weight") and p.dim() > 1)
    assert network.parameters == weights  # every convolution and linear weight, nothing else


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bundled_models_give_their_yaml_files(name):
    model, shape = load_model(name)
    expected = load_network(MODELS[name].yaml)
    assert shape == (1, 28, 28)
    assert network_from_torch(model, shape).layers == expected.layers


def test_functional_forms_map_like_modules():
    model, shape = torch_models.functional()
    network = network_from_torch(model, shape)
    assert network.layers == parse_network(torch_models.FUNCTIONAL_YAML).layers


def test_written_yaml_reads_back_to_the_same_network(tmp_path):
    traced = trace(*torch_models.functional())
    path = tmp_path / "network.yaml"
    path.write_text(network_yaml(traced.spec, "a comment\nover two lines"), encoding="utf-8")
    assert load_network(path).layers == parse_network(traced.spec).layers
    assert traced.outputs == ["add_1"]


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (torch_models.Recurrent, "node 'lstm': unsupported op LSTM (module 'lstm')"),
        (torch_models.Concatenating, "node 'cat': unsupported op torch.cat"),
        (torch_models.Dilated, "node 'conv': Conv2d with dilation (2, 2)"),
        (torch_models.Gated, "node 'mul': unsupported op mul of two tensors"),
        (torch_models.Branching, "cannot trace with torch.fx"),
        (torch_models.Mismatched, "at node 'fc': mat1 and mat2 shapes cannot be multiplied"),
    ],
)
def test_an_unsupported_op_is_one_line_naming_the_op_and_the_node(module, message, capsys):
    with pytest.raises(InputError) as error:
        trace(module(), (1, 28, 28))
    (problem,) = error.value.problems
    assert message in problem
    assert "\n" not in problem
    assert "Traceback" not in capsys.readouterr().err


def test_tracing_keeps_batchnorm_statistics():
    model = MODELS["resnet8"].model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace(model, (1, 28, 28))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _run_shapes(model: torch.nn.Module, shape: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """The output shape of every convolution and linear module, found by running the model."""
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear)
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize(("name", "group", "count"), [("resnet8", "conv1", 5), ("resnet8", "s2.conv2", 7),
                                                      ("ds_cnn", "b2.pw", 9), ("small_vgg", "conv5", 20)])  # fmt: skip
def test_a_pruned_module_rebuilds_to_its_real_shapes(name, group, count, tmp_path):
    model, shape = load_model(name)
    network = network_from_torch(model, shape)
    traced = trace(model, shape)
    channels = Channels(model, shape, traced.outputs)
    (target,) = [g for g in channels.groups() if g.name == group]
    channels.prune(target, list(range(1, 2 * count, 2)))  # every other channel: not a contiguous block

    pruned = network_from_torch(model, shape)
    # the program's coupling of channels is Torch-Pruning's
    assert pruned.layers == without_channels(network, group, count).layers
    # the rebuilt network is what the module computes
    real = _run_shapes(model, shape)
    for layer in pruned.layers:
        if layer.name in real:
            out = pruned.output_shapes[layer.name]
            assert real[layer.name] in ((out.channels, out.height, out.width), (out.channels,))
    # and its written network.yaml solves to the same traffic
    path = tmp_path / "network.yaml"
    path.write_text(network_yaml(trace(model, shape).spec), encoding="utf-8")
    accelerator = load_accelerator(NPU_32K)
    assert solve(load_network(path), accelerator).dram_bytes == solve(pruned, accelerator).dram_bytes


def test_widths_rebuild_a_fresh_model_that_loads_the_pruned_weights():
    model, shape = load_model("resnet8")
    outputs = trace(model, shape).outputs
    channels = Channels(model, shape, outputs)
    for group in channels.groups()[:3]:
        channels.prune(group, [0, 2])
    fresh, _ = load_model("resnet8")
    rebuild(fresh, shape, outputs, widths(model), "test")
    fresh.load_state_dict(model.state_dict())
    x = torch.randn(2, *shape)
    assert torch.equal(fresh.eval()(x), model.eval()(x))
    with pytest.raises(InputError, match=r"widths\.conv1: 17 channels do not fit"):
        rebuild(load_model("resnet8")[0], shape, outputs, {"conv1": 17}, "test")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("resnet9", "unknown model 'resnet9'"),
        ("no_such_package.models:net", "cannot import 'no_such_package.models'"),
        ("tests.torch_models:missing", "has no function 'missing'"),
        ("tests.torch_models:wrong_return", "must return (nn.Module, (channels, height, width))"),
        ("tests.torch_models:raising", "raised RuntimeError: no weights here"),
    ],
)
def test_model_specs_that_do_not_load(spec, message):
    with pytest.raises(InputError) as error:
        load_model(spec)
    assert message in error.value.problems[0]
