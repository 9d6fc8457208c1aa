"""Hostile and careless input files (issue 8): every one is exit-2 material, one line naming the
file, the field and the value, found in bounded time and memory."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import pytest

from dse_milp.errors import InputError, show
from dse_milp.loader import MAX_BANKS, MAX_OUTPUT_EXTENT, load_accelerator, load_network, load_suite
from dse_milp.yaml_input import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, read_yaml
from tests.test_loader import ACCELERATOR, NETWORK, accelerator_problems, network_problems, write


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        read_yaml(path)
    return info.value.problems


# --------------------------------------------------------------------------- YAML edge cases


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: !!int ''\n", "1:7: malformed YAML: bad value for !!int"),
        ("name: !!bool maybe\n", "1:7: malformed YAML: bad value for !!bool: 'maybe'"),
        ("? [a, b]\n: 1\n", "1:3: malformed YAML: a key must be a plain value such as a name, found a list"),
        ("? {a: 1}\n: 1\n", "1:3: malformed YAML: a key must be a plain value such as a name, found a mapping"),
        ("name: !!int abc\n", "1:7: malformed YAML: bad value for !!int: invalid literal"),
        ("name: !!timestamp 2001-13-45\n", "1:7: malformed YAML: bad value for !!timestamp: month must be in 1..12"),
        ("name: !!map [1]\n", "1:7: malformed YAML: expected a mapping, found a sequence"),
        ("name: !!float x\n", "1:7: malformed YAML: bad value for !!float"),
        ("a: &a [*a]\n", "1:4: malformed YAML: an alias inside itself"),
    ],
)
def test_bad_yaml_values_are_reported_with_their_place(tmp_path, text, fragment):
    path = write(tmp_path, text)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{fragment}"), problem


def test_a_control_character_is_refused(tmp_path):
    path = tmp_path / "bell.yaml"
    path.write_bytes(b"name: a\x07b\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: malformed YAML: unacceptable character #x0007")


def test_nesting_hundreds_deep_is_refused(tmp_path):
    path = write(tmp_path, "a: " + "[" * 400 + "]" * 400 + "\n")
    assert problems_of(path) == [f"{path}: nested more than {MAX_DEPTH} levels deep (the limit)"]
    path = write(tmp_path, "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")
    assert read_yaml(path) is not None  # the limit itself is allowed


def billion_laughs(used: bool) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines + (["b: *a9"] if used else [])) + "\n"


@pytest.mark.parametrize("used", [False, True])
def test_an_alias_bomb_is_refused_quickly(tmp_path, used):
    path = write(tmp_path, billion_laughs(used))
    start = time.perf_counter()
    assert problems_of(path) == [f"{path}: more than {MAX_NODES:,} values once its aliases are expanded (the limit)"]
    assert time.perf_counter() - start < 5  # before: over 60 s, most of it formatting the value


def test_a_bomb_inside_a_network_is_refused_by_load_network(tmp_path):
    path = write(tmp_path, billion_laughs(False) + "name: n\n")
    with pytest.raises(InputError) as info:
        load_network(path)
    assert "values once its aliases are expanded" in info.value.problems[0]


def test_merge_keys_are_accepted_as_safe_load_accepts_them(tmp_path):
    text = (
        "name: m\n"
        "input: {channels: 3, height: 8, width: 8}\n"
        "layers:\n"
        "  - &conv {name: c1, kind: conv2d, in_channels: 3, out_channels: 4, kernel: 3, padding: 1}\n"
        "  - <<: *conv\n"
        "    name: c2\n"
        "    in_channels: 4\n"
    )
    network = load_network(write(tmp_path, text))
    assert [(layer.name, layer.n, layer.m) for layer in network.layers] == [("c1", 3, 4), ("c2", 4, 4)]


def test_an_explicit_key_twice_is_still_an_error_next_to_a_merge(tmp_path):
    path = write(tmp_path, "b: &b {x: 1}\nc:\n  <<: *b\n  y: 1\n  y: 2\n")
    (problem,) = problems_of(path)
    assert "duplicate key 'y'" in problem


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_only_regular_files_are_read(tmp_path, special):
    if special == "fifo":
        path = tmp_path / "pipe.yaml"
        os.mkfifo(path)  # opening it would block forever
    elif special == "folder":
        path = tmp_path
    else:
        path = Path(special)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: cannot read file (it is ")


def test_a_file_over_the_size_limit_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_FILE_BYTES + "\n", encoding="utf-8")
    assert problems_of(path) == [f"{path}: cannot read file (larger than the limit of {MAX_FILE_BYTES:,} bytes)"]


def test_a_long_bad_value_is_shown_short(tmp_path):
    data = copy.deepcopy(NETWORK)
    data["name"] = list(range(10_000))
    source, problems = network_problems(tmp_path, data)
    (problem,) = problems
    assert problem.startswith(f"{source}: name: must be a string, got [0, 1, 2, 3, ...]")
    assert len(show("x" * 10**6)) < 100 and len(show(10**4000)) < 100


def test_an_odd_unknown_key_is_quoted_in_the_path(tmp_path):
    data = copy.deepcopy(NETWORK)
    data["bad\nkey"] = 1
    source, problems = network_problems(tmp_path, data)
    assert problems == [f"{source}: 'bad\\nkey': unknown field"]


# --------------------------------------------------------------------------- numbers and limits


@pytest.mark.parametrize("digits", [400, 5000])
def test_size_strings_of_hundreds_of_digits(tmp_path, digits):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"]["unified"] = "9" * digits + " KiB"
    source, problems = accelerator_problems(tmp_path, data)
    (problem,) = problems
    assert problem.startswith(f"{source}: buffer.unified: must be at most 1 TiB")


def test_unified_null_names_the_null_field(tmp_path):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"]["unified"] = None
    source, problems = accelerator_problems(tmp_path, data)
    assert problems == [
        f"{source}: buffer.unified: must be a positive size in bytes such as 65536 or '64 KiB', got null"
    ]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("dram_byte", float("inf"), "must be a finite number, got inf"),
        ("sram_byte", float("nan"), "must be a finite number, got nan"),
        ("mac", 1e308, "must be <= 1000000.0, got 1e+308"),
    ],
)
def test_energies_are_finite_and_sane(tmp_path, field, value, fragment):
    data = copy.deepcopy(ACCELERATOR)
    data["energy_pj"][field] = value
    source, problems = accelerator_problems(tmp_path, data)
    assert problems == [f"{source}: energy_pj.{field}: {fragment}"]


def test_too_many_banks_is_refused_with_the_limit(tmp_path):
    data = copy.deepcopy(ACCELERATOR)
    data["buffer"] = {"total": "32 KiB", "split": "free", "bank": 1}
    source, problems = accelerator_problems(tmp_path, data)
    least = 32 * 1024 // MAX_BANKS
    assert problems == [
        f"{source}: buffer.bank: 1 makes 32,768 banks of the 32,768-byte total; the limit is {MAX_BANKS} banks "
        f"(a bank of at least {least:,} bytes)"
    ]
    data["buffer"]["bank"] = least
    assert load_accelerator(write(tmp_path, data)).split.banks == MAX_BANKS
    data["buffer"] = {"total": "1 MiB", "split": "free"}  # the default bank grows to keep within the limit
    assert load_accelerator(write(tmp_path, data)).split.banks == MAX_BANKS


@pytest.mark.parametrize(("field", "value"), [("kernel", 2**62), ("out_channels", 2**31), ("stride", [1, 2**40])])
def test_numbers_too_large_to_represent(tmp_path, field, value):
    data = copy.deepcopy(NETWORK)
    data["layers"][0][field] = value
    source, problems = network_problems(tmp_path, data)
    assert any(p.startswith(f"{source}: layers[0].{field}: must be ") and "1048576" in p for p in problems), problems


def test_a_layer_too_wide_names_the_layer_and_the_limit(tmp_path):
    data = {
        "name": "wide",
        "input": {"channels": 1, "height": 1, "width": 1_000_000},
        "layers": [{"name": "c1", "kind": "conv2d", "in_channels": 1, "out_channels": 2, "kernel": [1, 3]}],
    }
    source, problems = network_problems(tmp_path, data)
    assert problems == [
        f"{source}: layers[0]: layer 'c1' is too large: its output width 999,998 is more than the limit of "
        f"{MAX_OUTPUT_EXTENT:,}"
    ]


def test_a_layer_with_too_many_macs(tmp_path):
    data = {
        "name": "heavy",
        "input": {"channels": 2**20, "height": 64, "width": 64},
        "layers": [{"name": "c1", "kind": "conv2d", "in_channels": 2**20, "out_channels": 2**20, "kernel": 1}],
    }
    source, problems = network_problems(tmp_path, data)
    (problem,) = problems
    assert problem.startswith(f"{source}: layers[0]: layer 'c1' is too large: its MAC count ")


def test_duplicate_suite_entry_names_are_an_error(tmp_path):
    write(tmp_path, NETWORK, "n.yaml")
    write(tmp_path, ACCELERATOR, "a.yaml")
    entry = {"name": "n@a", "network": "n.yaml", "accelerator": "a.yaml"}
    path = write(tmp_path, {"instances": [entry, dict(entry), dict(entry, name="other")]}, "suite.yaml")
    with pytest.raises(InputError) as info:
        load_suite(path)
    assert info.value.problems == [f"{path}: instances[1].name: 'n@a' is used by instances[0] too"]
