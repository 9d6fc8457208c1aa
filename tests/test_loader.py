"""Validation of the YAML inputs (docs/formats.md): every problem names the file, the field and the value."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dse_milp.errors import InputError
from dse_milp.halo import Halo
from dse_milp.loader import load_accelerator, load_network, load_suite
from dse_milp.workload import LayerKind, Precision, Shape
from tests.layers import TINY_NETWORK

REPO = Path(__file__).resolve().parent.parent
NETWORKS = sorted((REPO / "instances" / "networks").glob("*.yaml"))
SUITE = REPO / "instances" / "suite.yaml"

NETWORK = TINY_NETWORK

ACCELERATOR: dict[str, Any] = {
    "name": "acc",
    "buffer": {"unified": "32 KiB"},
    "double_buffering": False,
    "dram_bandwidth": 8,
    "clock_mhz": 500,
    "macs": 256,
    "energy_pj": {"dram_byte": 20.0, "sram_byte": 0.6, "mac": 0.2},
}


def write(tmp_path: Path, data: Any, name: str = "doc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def network(**layers: dict[str, Any]) -> dict[str, Any]:
    """NETWORK with the layers at the given indices (``l0``, ``l1``, ...) updated."""
    data = copy.deepcopy(NETWORK)
    for key, fields in layers.items():
        data["layers"][int(key[1:])].update(fields)
    return data


def network_problems(tmp_path: Path, data: Any) -> tuple[str, list[str]]:
    path = write(tmp_path, data, "net.yaml")
    with pytest.raises(InputError) as info:
        load_network(path)
    assert info.value.problems, "an InputError must carry at least one problem"
    return str(path), info.value.problems


def accelerator_problems(tmp_path: Path, data: Any) -> tuple[str, list[str]]:
    path = write(tmp_path, data, "acc.yaml")
    with pytest.raises(InputError) as info:
        load_accelerator(path)
    return str(path), info.value.problems


def assert_problem(problems: list[str], source: str, field: str, *fragments: str) -> str:
    """Exactly one of ``problems`` reads '<source>: <field>: ...' and holds every fragment."""
    prefix = f"{source}: {field}: "
    matching = [p for p in problems if p.startswith(prefix)]
    assert len(matching) == 1, f"expected one problem starting {prefix!r}, got {problems}"
    for fragment in fragments:
        assert fragment in matching[0], f"{fragment!r} not in {matching[0]!r}"
    return matching[0]


def test_the_base_documents_are_valid(tmp_path):
    net = load_network(write(tmp_path, NETWORK, "net.yaml"))
    assert [layer.name for layer in net.layers] == ["c1", "c2", "p", "fc"]
    assert load_accelerator(write(tmp_path, ACCELERATOR, "acc.yaml")).buffers[0].capacity_bytes == 32 * 1024


# --------------------------------------------------------------------------- field errors (the schema)


def test_missing_field(tmp_path):
    data = copy.deepcopy(NETWORK)
    del data["layers"][1]["out_channels"]
    source, problems = network_problems(tmp_path, data)
    assert problems == [f"{source}: layers[1].out_channels: missing required field"]


def test_missing_top_level_field(tmp_path):
    data = copy.deepcopy(NETWORK)
    del data["input"]
    source, problems = network_problems(tmp_path, data)
    assert problems == [f"{source}: input: missing required field"]


def test_negative_dimension(tmp_path):
    source, problems = network_problems(tmp_path, network(l0={"out_channels": -4}))
    assert problems == [f"{source}: layers[0].out_channels: must be >= 1, got -4"]


def test_zero_input_height(tmp_path):
    data = copy.deepcopy(NETWORK)
    data["input"]["height"] = 0
    source, problems = network_problems(tmp_path, data)
    assert_problem(problems, source, "input.height", ">= 1", "got 0")


@pytest.mark.parametrize("stride", [0, [1, 0], [1, 1, 1], "2", True])
def test_bad_stride(tmp_path, stride):
    source, problems = network_problems(tmp_path, network(l1={"stride": stride}))
    assert len(problems) == 1
    assert_problem(problems, source, "layers[1].stride", ">= 1", f"got {stride!r}")


def test_negative_padding(tmp_path):
    source, problems = network_problems(tmp_path, network(l0={"padding": -1}))
    assert problems == [f"{source}: layers[0].padding: must be an integer >= 0 and <= 1048576 or a list of two, got -1"]


def test_non_integer_channels(tmp_path):
    source, problems = network_problems(tmp_path, network(l0={"out_channels": 4.5}))
    assert problems == [f"{source}: layers[0].out_channels: must be an integer, got 4.5"]


def test_unknown_layer_kind(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"kind": "conv3d"}))
    assert len(problems) == 1
    line = assert_problem(problems, source, "layers[1]", "unknown layer kind", "'conv3d'")
    for kind in ("conv2d", "matmul", "pool", "add"):
        assert repr(kind) in line


def test_missing_layer_kind(tmp_path):
    data = copy.deepcopy(NETWORK)
    del data["layers"][2]["kind"]
    source, problems = network_problems(tmp_path, data)
    assert problems == [f"{source}: layers[2]: missing the field 'kind'"]


def test_unknown_field_typo(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"strides": 2}))
    assert problems == [f"{source}: layers[1].strides: unknown field"]


def test_unknown_top_level_field(tmp_path):
    data = copy.deepcopy(NETWORK)
    data["layer"] = []
    source, problems = network_problems(tmp_path, data)
    assert problems == [f"{source}: layer: unknown field"]


@pytest.mark.parametrize(
    ("precision", "fragment"),
    [({"psum": 0}, "must be >= 1, got 0"), ({"psum": 65}, "must be <= 64, got 65"), ({"weights": 4}, "unknown field")],
)
def test_bad_layer_precision(tmp_path, precision, fragment):
    source, problems = network_problems(tmp_path, network(l0={"precision": precision}))
    field = f"layers[0].precision.{next(iter(precision))}"
    assert problems == [f"{source}: {field}: {fragment}"]


def test_empty_layer_list(tmp_path):
    data = copy.deepcopy(NETWORK)
    data["layers"] = []
    source, problems = network_problems(tmp_path, data)
    assert_problem(problems, source, "layers", "at least 1")


def test_add_with_one_input(tmp_path):
    data = copy.deepcopy(NETWORK)
    data["layers"].insert(2, {"name": "a", "kind": "add", "inputs": ["c2"]})
    source, problems = network_problems(tmp_path, data)
    assert_problem(problems, source, "layers[2].inputs", "at least 2", "['c2']")


# --------------------------------------------------------------------------- how the layers fit together


def test_conv_in_channels_do_not_match_producer(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"in_channels": 4}))
    assert problems == [f"{source}: layers[1].in_channels: 4 does not match the 8 channels of 'c1' (8x8x8)"]


def test_add_of_two_shapes(tmp_path):
    data = copy.deepcopy(NETWORK)
    data["layers"].insert(2, {"name": "a", "kind": "add", "inputs": ["c1", "c2"]})
    source, problems = network_problems(tmp_path, data)
    assert problems == [f"{source}: layers[2].inputs: shape mismatch: 'c1' is 8x8x8 but 'c2' is 8x4x4"]


def test_matmul_in_features_match_neither_reading(tmp_path):
    source, problems = network_problems(tmp_path, network(l2={"kernel": 2}, l3={"in_features": 7}))
    # p is 8x2x2: token-wise would need 8, flattened 32
    assert problems == [
        f"{source}: layers[3].in_features: 7 matches neither the channels (8) "
        "nor the flattened size (32) of 'p' (8x2x2)"
    ]


def test_weight_from_element_count_mismatch(tmp_path):
    source, problems = network_problems(tmp_path, network(l3={"weight_from": "c1"}))
    assert_problem(problems, source, "layers[3].weight_from", "'c1'", "8x8x8", "512", "need 32")
    assert len(problems) == 1


@pytest.mark.parametrize("producer", ["zz", "input", "fc"])
def test_weight_from_not_an_earlier_layer(tmp_path, producer):
    source, problems = network_problems(tmp_path, network(l3={"weight_from": producer}))
    assert problems == [f"{source}: layers[3].weight_from: {producer!r} is not an earlier layer"]


def test_unknown_producer(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"inputs": ["nope"]}))
    assert problems == [f"{source}: layers[1].inputs: 'nope' is not the network input or an earlier layer"]


def test_later_layer_is_not_an_earlier_layer(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"inputs": ["fc"]}))
    assert_problem(problems, source, "layers[1].inputs", "'fc'")


def test_duplicate_layer_name(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"name": "c1"}))
    assert problems == [f"{source}: layers[1].name: 'c1' is used by an earlier layer"]


def test_layer_named_input_is_reserved(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"name": "input"}))
    assert problems == [f"{source}: layers[1].name: 'input' is reserved for the network input"]


def test_conv_reads_one_tensor(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"inputs": ["c1", "input"]}))
    assert problems == [f"{source}: layers[1].inputs: a conv2d layer reads exactly one tensor, got ['c1', 'input']"]


def test_kernel_larger_than_padded_input(tmp_path):
    # the pool reads c2 (8x4x4); fc then falls back to c2 as well and reads it token-wise
    source, problems = network_problems(tmp_path, network(l2={"kernel": 5}))
    assert problems == [f"{source}: layers[2].kernel: [5, 5] is larger than the padded input 4x4"]


def test_padding_not_smaller_than_kernel(tmp_path):
    source, problems = network_problems(tmp_path, network(l2={"kernel": 2, "padding": 2}))
    assert_problem(problems, source, "layers[2].padding", "[2, 2]", "[2, 2]")


def test_groups_do_not_divide_channels(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"groups": 3}))
    assert problems == [
        f"{source}: layers[1].groups: 3 does not divide in_channels 8",
        f"{source}: layers[1].groups: 3 does not divide out_channels 8",
    ]


def test_heads_do_not_divide_features(tmp_path):
    source, problems = network_problems(tmp_path, network(l3={"heads": 3}))
    assert f"{source}: layers[3].heads: 3 does not divide in_features 8" in problems


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("text", "where"),
    [("name: t\ninput: {channels: 3\nlayers: []\n", None), ("a: b\n  c: d\n", "2:4"), ("a: *nope\n", "1:4")],
)
def test_malformed_yaml(tmp_path, text, where):
    source, problems = network_problems(tmp_path, text)
    assert len(problems) == 1
    assert re.match(rf"{re.escape(source)}:\d+:\d+: malformed YAML: \S", problems[0]), problems
    if where:
        assert problems[0].startswith(f"{source}:{where}: malformed YAML: ")


def test_python_tags_are_not_executed(tmp_path):
    source, problems = network_problems(tmp_path, "!!python/object/apply:os.system ['true']\n")
    assert problems[0].startswith(f"{source}:1:1: malformed YAML")


@pytest.mark.parametrize(("text", "shown"), [("- a\n- b\n", "['a', 'b']"), ("", "null"), ("42\n", "42")])
def test_top_level_is_not_a_mapping(tmp_path, text, shown):
    source, problems = network_problems(tmp_path, text)
    assert problems == [f"{source}: (top level): must be a mapping, got {shown}"]


def test_layer_is_not_a_mapping(tmp_path):
    data = copy.deepcopy(NETWORK)
    data["layers"][1] = "conv"
    source, problems = network_problems(tmp_path, data)
    assert_problem(problems, source, "layers[1]", "'conv'")


@pytest.mark.parametrize("loader", [load_network, load_accelerator, load_suite])
def test_missing_file(tmp_path, loader):
    path = tmp_path / "absent.yaml"
    with pytest.raises(InputError) as info:
        loader(path)
    assert info.value.problems == [f"{path}: cannot read file (No such file or directory)"]


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(InputError) as info:
        load_network(tmp_path)
    assert info.value.problems[0].startswith(f"{tmp_path}: cannot read file")


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: r\xe9seau\n")
    with pytest.raises(InputError) as info:
        load_network(path)
    assert info.value.problems == [f"{path}: cannot read file (not UTF-8 text: byte 7)"]


def test_a_key_given_twice_is_an_error(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: x\nlayers:\n  - {name: c1, kind: conv2d, kind: pool}\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_network(path)
    assert info.value.problems == [f"{path}:3:30: malformed YAML: duplicate key 'kind'"]


# --------------------------------------------------------------------------- several problems at once


def test_several_field_errors_are_all_reported(tmp_path):
    data = network(l0={"out_channels": -4}, l1={"stride": 0, "strides": 2})
    data["input"]["width"] = 0
    source, problems = network_problems(tmp_path, data)
    assert len(problems) >= 2
    assert_problem(problems, source, "layers[0].out_channels", ">= 1", "-4")
    assert_problem(problems, source, "layers[1].stride", ">= 1", "0")
    assert_problem(problems, source, "layers[1].strides", "unknown field")
    assert_problem(problems, source, "input.width", ">= 1", "0")


def test_several_shape_errors_are_all_reported(tmp_path):
    source, problems = network_problems(tmp_path, network(l1={"groups": 3}, l3={"in_features": 7}))
    assert len(problems) >= 2
    assert any(p.startswith(f"{source}: layers[1].groups: ") for p in problems)
    assert_problem(problems, source, "layers[3].in_features", "7")


def test_a_failed_layer_does_not_cascade(tmp_path):
    # c1 is wrong; c2 names it explicitly and is right about its shape
    data = network(l0={"in_channels": 4}, l1={"inputs": ["c1"]})
    source, problems = network_problems(tmp_path, data)
    assert problems == [f"{source}: layers[0].in_channels: 4 does not match the 3 channels of 'input' (3x8x8)"]


def test_a_duplicate_layer_does_not_cascade_to_its_default_reader(tmp_path):
    data = network()
    data["layers"][1]["name"] = data["layers"][0]["name"]
    source, problems = network_problems(tmp_path, data)
    assert problems == [f"{source}: layers[1].name: {data['layers'][0]['name']!r} is used by an earlier layer"]


# --------------------------------------------------------------------------- accelerator


def test_bad_size_string(tmp_path):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"]["unified"] = "12 parsecs"
    source, problems = accelerator_problems(tmp_path, data)
    assert problems == [
        f"{source}: buffer.unified: must be a positive size in bytes such as 65536 or '64 KiB', got '12 parsecs'"
    ]


@pytest.mark.parametrize("size", [0, -5, 1024.0, "0.5 B", "1024", True])
def test_bad_sizes(tmp_path, size):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"]["unified"] = size
    source, problems = accelerator_problems(tmp_path, data)
    assert len(problems) == 1
    assert_problem(problems, source, "buffer.unified", f"got {size!r}")


@pytest.mark.parametrize(
    ("size", "expected"), [(4096, 4096), ("64 KiB", 65536), ("64 KB", 65536), ("1.5 KiB", 1536), ("2MiB", 2**21)]
)
def test_sizes(tmp_path, size, expected):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"]["unified"] = size
    assert load_accelerator(write(tmp_path, data)).buffers[0].capacity_bytes == expected


def test_buffer_with_unified_and_input(tmp_path):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"]["input"] = "1 KiB"
    source, problems = accelerator_problems(tmp_path, data)
    assert problems == [
        f"{source}: buffer: give 'unified' alone, all of 'input', 'weight', 'output', or 'total' with "
        "'split: free' (and optionally 'bank'), got ['input', 'unified']"
    ]


def test_free_split_buffer(tmp_path):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"] = {"total": "64 KiB", "split": "free", "bank": "4 KiB"}
    accelerator = load_accelerator(write(tmp_path, data))
    assert accelerator.split is not None and accelerator.split.banks == 16
    assert [b.capacity_bytes for b in accelerator.buffers] == [64 * 1024] * 3
    data["buffer"]["bank"] = "3 KiB"
    source, problems = accelerator_problems(tmp_path, data)
    assert problems == [f"{source}: buffer.bank: 3072 bytes must divide the total 65536 bytes"]


def test_buffer_with_two_of_three_separate(tmp_path):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"] = {"input": 1024, "weight": 1024}
    source, problems = accelerator_problems(tmp_path, data)
    assert_problem(problems, source, "buffer", "['input', 'weight']")


def test_separate_buffers(tmp_path):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"] = {"input": "1 KiB", "weight": 2048, "output": "4 KB"}
    acc = load_accelerator(write(tmp_path, data))
    assert [(b.name, b.capacity_bytes) for b in acc.buffers] == [("input", 1024), ("weight", 2048), ("output", 4096)]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("dram_bandwidth", -1, "must be >= 0.001"),
        ("dram_bandwidth", 0, "must be >= 0.001"),
        ("dram_bandwidth", 1e-300, "must be >= 0.001"),
        ("dram_bandwidth", float("inf"), "must be a finite number, got inf"),
        ("clock_mhz", float("nan"), "must be a finite number, got nan"),
        ("clock_mhz", 1e308, "must be <= 1000000.0"),
        ("macs", 2**40, "must be <= 16777216"),
        ("dram_bandwidth", "8", "must be a number"),
        ("clock_mhz", -2.5, "must be > 0"),
        ("macs", 0, "must be >= 1"),
        ("double_buffering", "yes", "must be true or false"),
    ],
)
def test_bad_accelerator_numbers(tmp_path, field, value, fragment):
    data = copy.deepcopy(ACCELERATOR)
    data[field] = value
    source, problems = accelerator_problems(tmp_path, data)
    assert len(problems) == 1
    assert_problem(problems, source, field, fragment, f"got {value!r}")


@pytest.mark.parametrize(
    ("value", "modes"),
    [("any", tuple(Halo)), ("rows", (Halo.ROWS,)), (["rows+columns", "recompute", "rows"],
     (Halo.RECOMPUTE, Halo.ROWS, Halo.BOTH))],
)  # fmt: skip
def test_halo_modes_one_or_a_list_in_halo_order(tmp_path, value, modes):
    data = copy.deepcopy(ACCELERATOR) | {"halo": value}
    assert load_accelerator(write(tmp_path, data)).halo == modes
    assert load_accelerator(write(tmp_path, copy.deepcopy(ACCELERATOR))).halo == (Halo.RECOMPUTE,)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(["rows", "sideways"], "got 'sideways'"), ([], "must name at least one of"), (3, "got 3"),
     ("Rows", "got 'Rows'"), ({"rows": 1}, "got {'rows': 1}")],
)  # fmt: skip
def test_bad_halo_modes(tmp_path, value, fragment):
    data = copy.deepcopy(ACCELERATOR) | {"halo": value}
    source, problems = accelerator_problems(tmp_path, data)
    assert len(problems) == 1
    assert_problem(problems, source, "halo", fragment, "recompute, columns, rows, rows+columns, any")


def test_keep_tensors_is_a_boolean(tmp_path):
    assert load_accelerator(write(tmp_path, copy.deepcopy(ACCELERATOR) | {"keep_tensors": True})).keep_tensors
    source, problems = accelerator_problems(tmp_path, copy.deepcopy(ACCELERATOR) | {"keep_tensors": "yes"})
    assert len(problems) == 1
    assert_problem(problems, source, "keep_tensors", "must be true or false", "got 'yes'")


def test_negative_energy(tmp_path):
    data = copy.deepcopy(ACCELERATOR)
    data["energy_pj"]["mac"] = -0.5
    source, problems = accelerator_problems(tmp_path, data)
    assert problems == [f"{source}: energy_pj.mac: must be >= 0.0, got -0.5"]


def test_several_accelerator_errors_are_all_reported(tmp_path):
    data = copy.deepcopy(ACCELERATOR)
    data.update(dram_bandwidth=-1, macs=0, sram=1)
    data["buffer"]["unified"] = "12 parsecs"
    source, problems = accelerator_problems(tmp_path, data)
    assert len(problems) == 4
    assert_problem(problems, source, "dram_bandwidth", "-1")
    assert_problem(problems, source, "macs", "0")
    assert_problem(problems, source, "sram", "unknown field")
    assert_problem(problems, source, "buffer.unified", "'12 parsecs'")


# --------------------------------------------------------------------------- suite


def test_suite_entry_with_missing_files(tmp_path):
    path = write(
        tmp_path, {"instances": [{"name": "x@y", "network": "networks/x.yaml", "accelerator": "y.yaml"}]}, "suite.yaml"
    )
    with pytest.raises(InputError) as info:
        load_suite(path)
    assert info.value.problems == [
        f"{path}: instances[0].network: {str(tmp_path / 'networks/x.yaml')!r} does not exist",
        f"{path}: instances[0].accelerator: {str(tmp_path / 'y.yaml')!r} does not exist",
    ]


def test_suite_schema_errors(tmp_path):
    path = write(tmp_path, {"instances": [{"name": "x@y", "network": "n.yaml", "acelerator": "a.yaml"}]}, "s.yaml")
    with pytest.raises(InputError) as info:
        load_suite(path)
    assert f"{path}: instances[0].acelerator: unknown field" in info.value.problems
    assert f"{path}: instances[0].accelerator: missing required field" in info.value.problems


def test_suite_paths_are_relative_to_the_suite(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", NETWORK, "n.yaml")
    write(tmp_path, ACCELERATOR, "a.yaml")
    path = write(tmp_path, {"instances": [{"name": "n@a", "network": "sub/n.yaml", "accelerator": "a.yaml"}]})
    (entry,) = load_suite(path)
    assert (entry.name, entry.network, entry.accelerator) == ("n@a", tmp_path / "sub/n.yaml", tmp_path / "a.yaml")


# --------------------------------------------------------------------------- valid networks: inferred shapes


def load(tmp_path: Path, channels: int, height: int, width: int, *layers: dict[str, Any], **top: Any):
    data = {"name": "n", "input": {"channels": channels, "height": height, "width": width}, "layers": list(layers)}
    data.update(top)
    return load_network(write(tmp_path, data))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "rows", "cols"),
    [
        (3, 1, 1, 17, 13),
        ([5, 3], [2, 3], [2, 1], 9, 5),  # (17+4-5)//2+1, (13+2-3)//3+1
        (4, 2, 0, 7, 5),  # (17-4)//2+1, (13-4)//2+1
        ([17, 13], 1, 0, 1, 1),
    ],
)
def test_conv_output_size(tmp_path, kernel, stride, padding, rows, cols):
    conv = {"name": "c", "kind": "conv2d", "in_channels": 3, "out_channels": 5}
    conv.update(kernel=kernel, stride=stride, padding=padding)
    net = load(tmp_path, 3, 17, 13, conv)
    layer = net.layers[0]
    assert net.output_shapes["c"] == Shape(5, rows, cols)
    assert (layer.kind, layer.m, layer.n, layer.groups) == (LayerKind.CONV2D, 5, 3, 1)
    assert (layer.r, layer.c, layer.h, layer.w) == (rows, cols, 17, 13)
    pair = lambda v: tuple(v) if isinstance(v, list) else (v, v)  # noqa: E731
    assert (layer.kh, layer.kw) == pair(kernel)
    assert (layer.sh, layer.sw) == pair(stride)
    assert (layer.ph, layer.pw) == pair(padding)
    assert layer.inputs == ("input",)


def test_depthwise_conv(tmp_path):
    net = load(
        tmp_path, 16, 10, 10,
        {"name": "dw", "kind": "conv2d", "in_channels": 16, "out_channels": 16, "kernel": 3, "padding": 1,
         "groups": 16},
        {"name": "pw", "kind": "conv2d", "in_channels": 16, "out_channels": 32, "kernel": 1},
    )  # fmt: skip
    dw, pw = net.layers
    assert net.output_shapes["dw"] == Shape(16, 10, 10)
    assert (dw.groups, dw.mg, dw.ng) == (16, 1, 1)
    assert dw.weight_elements == 16 * 3 * 3
    assert dw.macs == 16 * 10 * 10 * 9
    assert net.output_shapes["pw"] == Shape(32, 10, 10)
    assert pw.inputs == ("dw",)


def test_grouped_conv_with_channel_multiplier(tmp_path):
    net = load(tmp_path, 8, 6, 6, {"name": "g", "kind": "conv2d", "in_channels": 8, "out_channels": 16, "kernel": 1,
                                   "groups": 4})  # fmt: skip
    assert (net.layers[0].mg, net.layers[0].ng) == (4, 2)


def test_pool_global_and_windowed(tmp_path):
    net = load(
        tmp_path, 8, 12, 9,
        {"name": "win", "kind": "pool", "kernel": 3},
        {"name": "strided", "kind": "pool", "kernel": [2, 3], "stride": 1},
        {"name": "glob", "kind": "pool", "kernel": "global"},
    )  # fmt: skip
    win, strided, glob = net.layers
    assert net.output_shapes["win"] == Shape(8, 4, 3)  # stride defaults to the kernel
    assert (win.sh, win.sw) == (3, 3)
    assert net.output_shapes["strided"] == Shape(8, 3, 1)  # from 4x3: (4-2)+1, (3-3)+1
    assert (strided.kh, strided.kw, strided.sh, strided.sw) == (2, 3, 1, 1)
    assert net.output_shapes["glob"] == Shape(8, 1, 1)
    assert (glob.kh, glob.kw, glob.h, glob.w) == (3, 1, 3, 1)
    assert (glob.kind, glob.m, glob.n, glob.groups, glob.weight_elements) == (LayerKind.POOL, 8, 8, 8, 0)


def test_matmul_token_wise_and_flattened(tmp_path):
    net = load(
        tmp_path, 16, 4, 2,
        {"name": "tok", "kind": "matmul", "in_features": 16, "out_features": 32},
        {"name": "flat", "kind": "matmul", "in_features": 32 * 4 * 2, "out_features": 10},
    )  # fmt: skip
    tok, flat = net.layers
    assert net.output_shapes["tok"] == Shape(32, 4, 2)
    assert (tok.m, tok.n, tok.r, tok.c) == (32, 16, 8, 1)
    assert net.output_shapes["flat"] == Shape(10, 1, 1)
    assert (flat.m, flat.n, flat.r, flat.c) == (10, 256, 1, 1)
    assert flat.weight_elements == 10 * 256


def test_matmul_with_weight_from_and_heads(tmp_path):
    # self-attention scores: 2 heads of width 4 over 6 tokens
    net = load(
        tmp_path, 8, 6, 1,
        {"name": "q", "kind": "matmul", "in_features": 8, "out_features": 8},
        {"name": "k", "kind": "matmul", "in_features": 8, "out_features": 8, "inputs": ["input"]},
        {"name": "s", "kind": "matmul", "in_features": 8, "out_features": 12, "heads": 2, "inputs": ["q"],
         "weight_from": "k"},
    )  # fmt: skip
    s = net.by_name["s"]
    assert net.output_shapes["s"] == Shape(12, 6, 1)
    assert (s.groups, s.weight_from, s.parameter_elements, s.weight_elements) == (2, "k", 0, 12 * 4)
    assert net.parameters == 2 * 8 * 8


def test_add(tmp_path):
    net = load(
        tmp_path, 4, 5, 5,
        {"name": "a", "kind": "conv2d", "in_channels": 4, "out_channels": 4, "kernel": 3, "padding": 1},
        {"name": "sum", "kind": "add", "inputs": ["a", "input", "a"]},
    )  # fmt: skip
    add = net.by_name["sum"]
    assert net.output_shapes["sum"] == Shape(4, 5, 5)
    assert (add.kind, add.input_tensors, add.groups, add.macs) == (LayerKind.ADD, 3, 4, 4 * 5 * 5 * 2)


def test_default_inputs_are_the_previous_layer(tmp_path):
    net = load_network(write(tmp_path, NETWORK))
    assert [layer.inputs for layer in net.layers] == [("input",), ("c1",), ("c2",), ("p",)]
    assert net.output_shapes == {
        "c1": Shape(8, 8, 8), "c2": Shape(8, 4, 4), "p": Shape(8, 1, 1), "fc": Shape(4, 1, 1),
    }  # fmt: skip


def test_precision_defaults_and_overrides(tmp_path):
    net = load(
        tmp_path, 3, 4, 4,
        {"name": "a", "kind": "conv2d", "in_channels": 3, "out_channels": 4, "kernel": 1},
        {"name": "b", "kind": "conv2d", "in_channels": 4, "out_channels": 4, "kernel": 1,
         "precision": {"psum": 16, "input": 4}},
        precision={"weight": 4, "output": 16},
    )  # fmt: skip
    assert net.by_name["a"].precision == Precision(input=8, weight=4, output=16, psum=32)
    assert net.by_name["b"].precision == Precision(input=4, weight=4, output=16, psum=16)
    plain = load(tmp_path, 3, 4, 4, {"name": "a", "kind": "conv2d", "in_channels": 3, "out_channels": 4, "kernel": 1})
    assert plain.layers[0].precision == Precision(8, 8, 8, 32)


# --------------------------------------------------------------------------- bundled instances


def test_bundled_networks_exist():
    assert len(NETWORKS) >= 10


@pytest.mark.parametrize("path", NETWORKS, ids=lambda p: p.stem)
def test_bundled_network_loads(path):
    net = load_network(path)
    assert net.layers
    assert set(net.output_shapes) == {layer.name for layer in net.layers}


def test_every_suite_entry_loads():
    entries = load_suite(SUITE)
    names = [entry.name for entry in entries]
    assert len(names) == len(set(names)), "suite entry names must be unique"
    networks: dict[Path, Any] = {}
    accelerators: dict[Path, Any] = {}
    for entry in entries:
        net = networks.get(entry.network) or networks.setdefault(entry.network, load_network(entry.network))
        acc = accelerators.get(entry.accelerator) or accelerators.setdefault(
            entry.accelerator, load_accelerator(entry.accelerator)
        )
        assert entry.name == f"{entry.name.split('@')[0]}@{acc.name}", entry.name
        assert net.layers


def test_accumulators_and_levels(tmp_path):
    from dse_milp.accelerator import Accumulators

    plain = load_accelerator(write(tmp_path, ACCELERATOR, "plain.yaml"))
    assert plain.accumulators is Accumulators.ARRAY and plain.operand_levels
    spec = ACCELERATOR | {"accumulators": "buffer", "levels": "innermost"}
    acc = load_accelerator(write(tmp_path, spec, "acc.yaml"))
    assert acc.accumulators is Accumulators.BUFFER and not acc.operand_levels
    _, problems = accelerator_problems(tmp_path, ACCELERATOR | {"levels": "some"})
    assert len(problems) == 1 and "levels" in problems[0] and "'some'" in problems[0], problems


def test_dram_burst(tmp_path):
    assert load_accelerator(write(tmp_path, ACCELERATOR, "plain.yaml")).burst_bytes == 1
    acc = load_accelerator(write(tmp_path, ACCELERATOR | {"dram": {"burst": "64 B"}}, "burst.yaml"))
    assert acc.burst_bytes == 64
    for bad, shown in (({"burst": 0}, "0"), ({"burst": "8 KiB"}, "'8 KiB'"), ({"bursts": 64}, "bursts")):
        _, problems = accelerator_problems(tmp_path, ACCELERATOR | {"dram": bad})
        assert len(problems) == 1 and "dram.burst" in problems[0] and shown in problems[0], problems
