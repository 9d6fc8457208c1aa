"""The command line: exit codes, the JSON result, and one-line messages instead of tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import dse_milp.solvers
from dse_milp.cli import EXIT_FAILED, EXIT_INFEASIBLE, EXIT_INPUT, EXIT_OK, EXIT_TIME_LIMIT, main
from dse_milp.loader import load_network
from dse_milp.solvers import SolveResult, Status
from tests.layers import TINY_NETWORK

REPO = Path(__file__).resolve().parent.parent
NETWORK = REPO / "instances" / "networks" / "tiny_resnet8.yaml"
ACCELERATOR = REPO / "instances" / "accelerators" / "npu_32k.yaml"
TIMING_KEYS = ("solve_seconds", "seconds")


def solve(tmp_path: Path, *args: str, name: str = "result.json") -> dict[str, Any]:
    """Run ``solve`` in-process, expect exit 0 and return the JSON result."""
    out = tmp_path / name
    assert main(["solve", *args, "--quiet", "--out", str(out)]) == EXIT_OK
    return json.loads(out.read_text(encoding="utf-8"))


def without_timing(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict[str, Any]:
    """tiny_resnet8 on the 32 KiB NPU, minimising DRAM traffic with HiGHS."""
    return solve(tmp_path_factory.mktemp("cli"), str(NETWORK), str(ACCELERATOR))


def write_network(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "net.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def broken(layer: int, *remove: str, **fields: Any) -> dict[str, Any]:
    """TINY_NETWORK with fields of one layer removed or changed."""
    data = json.loads(json.dumps(TINY_NETWORK))
    for field in remove:
        del data["layers"][layer][field]
    data["layers"][layer].update(fields)
    return data


# --------------------------------------------------------------------------- success and the JSON result


def test_result_keys(result):
    for key in ("status", "objective_value", "bound", "solver", "solve_seconds", "totals", "layers"):
        assert key in result, key
    assert result["status"] == "optimal"
    assert result["solver"] == "highs"
    assert result["objective"] == "dram"
    assert isinstance(result["solve_seconds"], float) and result["solve_seconds"] >= 0
    assert {"dram_bytes", "compulsory_bytes"} <= set(result["totals"])
    assert result["bound"] == pytest.approx(result["objective_value"])


def test_result_layers(result):
    names = [layer["name"] for layer in result["layers"]]
    assert names == [
        "conv1", "s1.conv1", "s1.conv2", "s1.add", "s2.conv1", "s2.conv2", "s2.downsample", "s2.add",
        "s3.conv1", "s3.conv2", "s3.downsample", "s3.add", "pool", "fc",
    ]  # fmt: skip
    capacity = 32 * 1024
    for layer in result["layers"]:
        assert layer["kind"] in ("conv2d", "matmul", "pool", "add")
        dims, tiles = layer["dims"], layer["tiles"]
        assert {"m", "n", "r", "c", "kh", "kw", "stride"} <= set(dims)
        assert set(tiles) == {"m", "n", "r", "c"}
        per_group = {"m": dims["m"] // dims["groups"], "n": dims["n"] // dims["groups"], "r": dims["r"], "c": dims["c"]}
        for d in "mnrc":
            assert 1 <= tiles[d] <= per_group[d], (layer["name"], d, tiles, dims)
        assert sorted(layer["order"]) == sorted("mnrc"), layer["order"]
        assert 0 < layer["footprint_bytes"] <= capacity
        parts = ("input_read", "weight_read", "output_write", "psum_read", "psum_write")
        assert set(parts) <= set(layer["dram_bytes"])
        assert all(layer["dram_bytes"][p] >= 0 for p in parts)
        assert sum(layer["dram_bytes"][p] for p in parts) == layer["dram_bytes"]["total"]
    first = result["layers"][0]["dims"]
    assert (first["m"], first["n"], first["r"], first["c"], first["kh"], first["kw"], first["stride"]) == (
        16, 3, 32, 32, 3, 3, 1,
    )  # fmt: skip
    assert result["layers"][4]["dims"]["stride"] == 2  # s2.conv1


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NCHW8c"])
def test_bursts_are_reported_in_the_layout_asked_for(tmp_path, capsys, layout: str):
    """An accelerator with 64-byte bursts: every layer and group reports its bursts, the bytes
    they move (at least the bytes used) and the efficiency, in the table and the JSON."""
    spec = yaml.safe_load(ACCELERATOR.read_text(encoding="utf-8")) | {"dram": {"burst": "64 B"}}
    acc = tmp_path / "acc.yaml"
    acc.write_text(yaml.safe_dump(spec), encoding="utf-8")
    out = tmp_path / "r.json"
    assert main(["solve", str(NETWORK), str(acc), "--fusion", "3", "--layout", layout, "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "moved" in printed and f"in bursts of 64 bytes, feature maps in {layout}" in printed
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["burst_bytes"] == 64 and record["layout"] == layout
    moved = 0
    for unit in [layer for layer in record["layers"] if layer["group"] is None] + record["groups"]:
        bursts = unit["dram_bursts"]
        assert bursts["moved_bytes"] == 64 * bursts["bursts"]["total"] >= unit["dram_bytes"]["total"]
        assert bursts["efficiency"] == pytest.approx(unit["dram_bytes"]["total"] / bursts["moved_bytes"])
        moved += bursts["moved_bytes"]
    assert record["totals"]["moved_bytes"] == moved
    assert record["totals"]["burst_efficiency"] == pytest.approx(record["totals"]["dram_bytes"] / moved)


def test_the_program_chooses_the_layouts_by_default_when_bursts_are_declared(tmp_path, capsys):
    """No --layout with 64-byte bursts: every tensor gets one of the automatic layouts, each
    unit reports the layouts it reads and writes, and they agree with the tensors'; the
    result moves no more than with every feature map in NCHW."""
    spec = yaml.safe_load(ACCELERATOR.read_text(encoding="utf-8")) | {"dram": {"burst": "64 B"}}
    acc = tmp_path / "acc.yaml"
    acc.write_text(yaml.safe_dump(spec), encoding="utf-8")
    records = {}
    for layout in ("auto", "NCHW"):
        out = tmp_path / f"{layout}.json"
        args = ["solve", str(NETWORK), str(acc), "--fusion", "3", "--out", str(out)]
        assert main(args + (["--layout", layout] if layout != "auto" else [])) == EXIT_OK
        records[layout] = json.loads(out.read_text(encoding="utf-8"))
    assert "layouts chosen by the program" in capsys.readouterr().out
    record = records["auto"]
    assert record["layout"] == "auto" and set(record["tensor_layouts"].values()) <= {"NCHW", "NHWC", "NCHW16c"}
    for layer in record["layers"]:
        if layer["group"] is None:
            assert layer["layouts"]["output"] == record["tensor_layouts"][layer["name"]]
    assert record["totals"]["moved_bytes"] <= records["NCHW"]["totals"]["moved_bytes"]


def test_burst_replaces_the_declared_one(tmp_path):
    """--burst 64 on an accelerator without bursts solves in bursts, as if it declared them;
    --burst 1 on one with bursts counts bytes, as if it declared none."""
    spec = yaml.safe_load(ACCELERATOR.read_text(encoding="utf-8"))
    spec.pop("dram", None)
    declared, plain = tmp_path / "declared.yaml", tmp_path / "plain.yaml"
    declared.write_text(yaml.safe_dump(spec | {"dram": {"burst": "64 B"}}), encoding="utf-8")
    plain.write_text(yaml.safe_dump(spec), encoding="utf-8")
    runs = {"declared": [str(declared)], "asked": [str(plain), "--burst", "64"],
            "bytes": [str(declared), "--burst", "1"], "plain": [str(plain)]}  # fmt: skip
    records = {}
    for name, args in runs.items():
        out = tmp_path / f"{name}.json"
        assert main(["solve", str(NETWORK), *args, "--out", str(out)]) == EXIT_OK
        records[name] = json.loads(out.read_text(encoding="utf-8"))
    assert records["asked"]["burst_bytes"] == 64 and records["asked"]["totals"] == records["declared"]["totals"]
    assert records["bytes"]["burst_bytes"] == 1 and records["bytes"]["totals"] == records["plain"]["totals"]
    assert records["asked"]["totals"]["moved_bytes"] is not None


@pytest.mark.parametrize(
    ("value", "says"), [("0", "positive"), ("9000", "at most 4096"), ("64 KB", "at most 4096"), ("abc", "positive")]
)
def test_a_bad_burst_is_one_line(capsys, value: str, says: str):
    for command in (["solve", str(NETWORK), str(ACCELERATOR)], ["compress", "resnet8", "--accelerator", "npu-32k"]):
        assert main([*command, "--burst", value]) == EXIT_INPUT
        (line,) = error_lines(capsys)
        assert "--burst" in line and value in line and says in line


def test_only_the_program_claims_optimality_over_the_burst_candidates(capsys):
    """Under bursts the program's status says the space it is optimal over; a heuristic search's
    (feasible, searching bytes) does not."""
    claim = "over the candidates priced in bursts"
    assert main(["solve", str(NETWORK), str(ACCELERATOR), "--quiet"]) == EXIT_OK
    assert f"optimal {claim}" in capsys.readouterr().out
    assert (
        main(["solve", str(NETWORK), str(ACCELERATOR), "--quiet", "--method", "random", "--evaluations", "2000"])
        == EXIT_OK
    )
    assert claim not in capsys.readouterr().out


def test_one_byte_bursts_report_no_bursts(tmp_path):
    bytes_only = solve(tmp_path, str(NETWORK), str(ACCELERATOR), "--burst", "1")
    assert bytes_only["burst_bytes"] == 1 and bytes_only["totals"]["moved_bytes"] is None
    assert all(layer["dram_bursts"] is None for layer in bytes_only["layers"])
    assert bytes_only["objective_value"] == bytes_only["totals"]["dram_bytes"]


def test_a_bad_layout_is_one_line(capsys):
    assert main(["solve", str(NETWORK), str(ACCELERATOR), "--layout", "NCWH"]) == EXIT_INPUT
    (line,) = error_lines(capsys)
    assert "--layout" in line and "'NCWH'" in line


def test_layer_totals_sum_to_the_total(result):
    total = result["totals"]["dram_bytes"]
    assert sum(layer["dram_bytes"]["total"] for layer in result["layers"]) == total
    assert total >= result["totals"]["compulsory_bytes"] > 0


def test_objective_value_is_the_dram_total(result):
    """With the NPU's bursts, the bytes its whole bursts move."""
    assert result["burst_bytes"] == 128
    assert result["objective_value"] == result["totals"]["moved_bytes"] >= result["totals"]["dram_bytes"]


def test_table_goes_to_stdout(tmp_path, capsys):
    assert main(["solve", str(NETWORK), str(ACCELERATOR)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "s2.downsample" in captured.out  # the per-layer table
    assert "optimal" in captured.out
    assert captured.err == ""


def test_suite_entry_name(tmp_path, capsys):
    record = solve(tmp_path, "tiny_dscnn@npu-32k")
    assert (record["network"], record["accelerator"], record["status"]) == ("tiny_dscnn", "npu-32k", "optimal")
    assert capsys.readouterr().err == ""


def test_own_suite_file(tmp_path):
    suite = tmp_path / "suite.yaml"
    entry = {"name": "mine", "network": str(NETWORK), "accelerator": str(ACCELERATOR)}
    suite.write_text(yaml.safe_dump({"instances": [entry]}), encoding="utf-8")
    assert solve(tmp_path, "mine", "--suite", str(suite))["network"] == "tiny_resnet8"


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_other_objectives(tmp_path, objective, result):
    record = solve(tmp_path, str(NETWORK), str(ACCELERATOR), "--objective", objective)
    assert (record["objective"], record["status"]) == (objective, "optimal")
    key = {"latency": "latency_cycles", "energy": "energy_pj"}[objective]
    assert record["objective_value"] == pytest.approx(record["totals"][key], rel=1e-9)
    # the DRAM optimum is a lower bound on the traffic of any other objective's optimum
    assert record["totals"]["dram_bytes"] >= result["totals"]["dram_bytes"]
    # and the dram-optimal mapping is no better on this objective
    assert record["objective_value"] <= result["totals"][key] * (1 + 1e-9)
    assert record["tie_breakers"] == (["dram"] if objective == "latency" else [])


@pytest.mark.parametrize("solver", ["ortools-sat", "ortools-scip"])
def test_other_solvers_agree_with_highs(tmp_path, solver, result):
    if not dse_milp.solvers.BACKENDS[solver].available():
        pytest.skip(f"{solver} is not installed")
    record = solve(tmp_path, str(NETWORK), str(ACCELERATOR), "--solver", solver)
    assert (record["solver"], record["status"]) == (solver, "optimal")
    assert record["objective_value"] == result["objective_value"]
    assert record["totals"]["dram_bytes"] == result["totals"]["dram_bytes"]


@pytest.mark.parametrize("solver", ["ortools-sat", "ortools-scip"])
def test_other_solvers_agree_on_latency(tmp_path, solver):
    """Latency is lexicographic (ties broken by traffic): both stages must agree across solvers."""
    if not dse_milp.solvers.BACKENDS[solver].available():
        pytest.skip(f"{solver} is not installed")
    args = ("tiny_dscnn@npu-32k", "--objective", "latency")
    reference = solve(tmp_path, *args, name="highs.json")
    record = solve(tmp_path, *args, "--solver", solver, name="other.json")
    assert (record["solver"], record["status"]) == (solver, "optimal")
    assert record["objective_value"] == reference["objective_value"]
    assert record["totals"]["dram_bytes"] == reference["totals"]["dram_bytes"]


def test_same_input_same_json(tmp_path):
    first = solve(tmp_path, str(NETWORK), str(ACCELERATOR), name="a.json")
    second = solve(tmp_path, str(NETWORK), str(ACCELERATOR), name="b.json")
    assert json.dumps(first["layers"]) == json.dumps(second["layers"])
    assert json.dumps(without_timing(first)) == json.dumps(without_timing(second))


def test_two_threads_then_one_in_one_process(tmp_path, result):
    """HiGHS sizes one thread scheduler per process: the shadow-price LPs (one thread) after a
    solve with two, and a solve with one after that, must all run."""
    args = (str(NETWORK), str(ACCELERATOR), "--fusion", "4", "--marginals")
    two = solve(tmp_path, *args, "--threads", "2", name="two.json")
    one = solve(tmp_path, *args, name="one.json")
    assert two["status"] == one["status"] == "optimal"
    assert two["totals"] == one["totals"]
    assert [layer["shadow_price"] for layer in two["layers"]] == [layer["shadow_price"] for layer in one["layers"]]


# --------------------------------------------------------------------------- bad input: exit 2


def error_lines(capsys) -> list[str]:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert lines, "expected a message on stderr"
    return lines


@pytest.mark.parametrize(
    ("data", "field", "value"),
    [
        (broken(0, "kernel"), "layers[0].kernel", "missing required field"),
        (broken(0, out_channels=-4), "layers[0].out_channels", "-4"),
        (broken(1, kind="conv3d"), "layers[1]", "'conv3d'"),
        (broken(1, in_channels=4), "layers[1].in_channels", "4 does not match the 8 channels"),
        (broken(3, in_features=7), "layers[3].in_features", "7"),
    ],
    ids=["missing-field", "negative-dimension", "unknown-kind", "conv-shape-mismatch", "matmul-shape-mismatch"],
)  # fmt: skip
def test_bad_network(tmp_path, capsys, data, field, value):
    path = write_network(tmp_path, data)
    assert main(["solve", str(path), str(ACCELERATOR)]) == EXIT_INPUT
    lines = error_lines(capsys)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path}: {field}: "), lines[0]
    assert value in lines[0]


def test_malformed_yaml(tmp_path, capsys):
    path = write_network(tmp_path, "name: tiny\nlayers:\n  - {name: c1, kind: conv2d\n")
    assert main(["solve", str(path), str(ACCELERATOR)]) == EXIT_INPUT
    lines = error_lines(capsys)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path}:4:1: malformed YAML: ")


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "absent.yaml"
    assert main(["solve", str(path), str(ACCELERATOR)]) == EXIT_INPUT
    assert error_lines(capsys) == [f"error: {path}: cannot read file (No such file or directory)"]


def test_problems_of_both_files_are_reported(tmp_path, capsys):
    net = write_network(tmp_path, broken(0, out_channels=-4))
    acc = tmp_path / "acc.yaml"
    acc.write_text(ACCELERATOR.read_text(encoding="utf-8").replace("32 KiB", "12 parsecs"), encoding="utf-8")
    assert main(["solve", str(net), str(acc)]) == EXIT_INPUT
    lines = error_lines(capsys)
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {net}: layers[0].out_channels: ")
    assert lines[1].startswith(f"error: {acc}: buffer.unified: ") and "'12 parsecs'" in lines[1]


def test_unknown_suite_entry(capsys):
    assert main(["solve", "nope@npu-32k"]) == EXIT_INPUT
    lines = error_lines(capsys)
    assert len(lines) == 1
    assert "suite.yaml: no instance named 'nope@npu-32k'" in lines[0]
    assert "tiny_dscnn@npu-32k" in lines[0]  # lists the known names


def test_three_instance_arguments(capsys):
    assert main(["solve", str(NETWORK), str(ACCELERATOR), "extra"]) == EXIT_INPUT
    assert error_lines(capsys)[0].startswith("error: INSTANCE: ")


def test_unwritable_out(tmp_path, capsys):
    out = tmp_path / "no" / "such" / "dir" / "r.json"
    assert main(["solve", str(NETWORK), str(ACCELERATOR), "--quiet", "--out", str(out)]) == EXIT_INPUT
    assert error_lines(capsys) == [f"error: --out: cannot write '{out}' (No such file or directory)"]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--mip-gap", "2", "must be in [0, 1), got '2'"),
        ("--mip-gap", "abc", "must be a number, got 'abc'"),
        ("--time-limit", "0", "must be in (0, 1000000000], got '0'"),
        ("--threads", "1.5", "must be an integer, got '1.5'"),
        ("--solver", "gurobi", "invalid choice: 'gurobi'"),
    ],
)
def test_bad_option(capsys, option, value, message):
    assert main(["solve", str(NETWORK), str(ACCELERATOR), option, value]) == EXIT_INPUT
    (line,) = error_lines(capsys)  # one line, no usage block
    assert line.startswith("error: argument ")
    assert option in line and message in line


# --------------------------------------------------------------------------- no mapping fits: exit 3


def test_buffer_too_small(tmp_path, capsys):
    acc = tmp_path / "acc.yaml"
    acc.write_text(ACCELERATOR.read_text(encoding="utf-8").replace("32 KiB", "64"), encoding="utf-8")
    assert main(["solve", str(NETWORK), str(acc), "--out", str(tmp_path / "r.json")]) == EXIT_INFEASIBLE
    lines = error_lines(capsys)
    # only the global pool (an 8x8 window of 64 bytes plus one output byte) cannot fit in 64 bytes
    assert lines == [
        "infeasible: layer 'pool' fits no mapping: its smallest footprint (input 64 + weight 0 + output 1 bytes) "
        "needs 65 bytes > 64 bytes in the unified buffer"
    ]
    assert not (tmp_path / "r.json").exists()


def test_every_layer_that_does_not_fit_is_named(tmp_path, capsys):
    acc = tmp_path / "acc.yaml"
    acc.write_text(ACCELERATOR.read_text(encoding="utf-8").replace("32 KiB", "8"), encoding="utf-8")
    assert main(["solve", str(NETWORK), str(acc)]) == EXIT_INFEASIBLE
    lines = error_lines(capsys)
    assert len(lines) >= 2
    assert all(line.startswith("infeasible: layer '") and "> 8 bytes in the unified buffer" in line for line in lines)
    assert any("'conv1'" in line for line in lines)


# --------------------------------------------------------------------------- solver outcomes: exit 4, 3, 1


class FakeBackend:
    name = "highs"

    def __init__(self, status: Status) -> None:
        self.status = status

    def available(self) -> bool:
        return True

    def version(self) -> str:
        return "0"

    def solve(self, model, options) -> SolveResult:
        return SolveResult(self.status, None, None, 0.0, "fake", "0")


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (Status.NO_SOLUTION, EXIT_TIME_LIMIT, "time limit: highs stopped after 0.0 s without a solution"),
        (Status.INFEASIBLE, EXIT_INFEASIBLE, "infeasible: the mapping program is infeasible"),
        (Status.ERROR, EXIT_FAILED, "error: highs failed (error)"),
    ],
)
def test_solver_outcomes(tmp_path, capsys, monkeypatch, status, code, message):
    monkeypatch.setitem(dse_milp.solvers.BACKENDS, "highs", FakeBackend(status))
    out = tmp_path / "r.json"
    assert main(["solve", str(NETWORK), str(ACCELERATOR), "--out", str(out)]) == code
    assert error_lines(capsys) == [message]
    if status is Status.NO_SOLUTION:  # the result file says so, for scripts that read it
        assert json.loads(out.read_text())["status"] == "no_solution"
    else:
        assert not out.exists()


# --------------------------------------------------------------------------- a real process


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dse_milp", "solve", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_subprocess_success(tmp_path, result):
    out = tmp_path / "result.json"
    proc = run(str(NETWORK), str(ACCELERATOR), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "fc" in proc.stdout and "optimal" in proc.stdout
    record = json.loads(out.read_text(encoding="utf-8"))
    assert without_timing(record) == without_timing(result)


def test_subprocess_bad_input_has_no_traceback(tmp_path):
    path = write_network(tmp_path, broken(0, out_channels=-4))
    proc = run(str(path), str(ACCELERATOR), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr == f"error: {path}: layers[0].out_channels: must be >= 1, got -4\n"
    assert proc.stdout == ""


# --------------------------------------------------------------------------- fusion and lexicographic objectives


def test_fusion_result(tmp_path, result):
    fused = solve(tmp_path, str(NETWORK), str(ACCELERATOR), "--fusion", "6")
    assert fused["groups"], "ResNet-8 in 32 KiB gains from fusion"
    assert fused["totals"]["dram_bytes"] < result["totals"]["dram_bytes"]
    covered = [name for group in fused["groups"] for name in group["layers"]]
    assert len(covered) == len(set(covered))
    for i, group in enumerate(fused["groups"]):
        assert group["footprint_bytes"] <= 32 * 1024
        assert set(group["resident_weights"]) <= set(group["layers"])
        members = [layer for layer in fused["layers"] if layer["group"] == i]
        assert [layer["name"] for layer in members] == group["layers"]
        assert all(layer["tiles"] is None and layer["order"] is None for layer in members)
        assert sum(layer["dram_bytes"]["total"] for layer in members) == group["dram_bytes"]["total"]
    alone = [layer for layer in fused["layers"] if layer["group"] is None]
    assert all(set(layer["order"]) == set("mnrc") for layer in alone)
    assert sum(layer["dram_bytes"]["total"] for layer in fused["layers"]) == fused["totals"]["dram_bytes"]


@pytest.mark.parametrize("spelling", ["all", "0"])
def test_fusion_of_any_length_is_the_whole_network_as_the_limit(tmp_path, spelling):
    """``--fusion all`` (or 0) lets a group hold every layer: the same answer as a limit of
    the network's length, and no more traffic than a limit of 6."""
    layers = len(load_network(NETWORK).layers)
    every = solve(tmp_path, str(NETWORK), str(ACCELERATOR), "--fusion", spelling, "--burst", "1", name="a.json")
    limit = solve(tmp_path, str(NETWORK), str(ACCELERATOR), "--fusion", str(layers), "--burst", "1", name="b.json")
    assert without_timing(every) == without_timing(limit)
    six = solve(tmp_path, str(NETWORK), str(ACCELERATOR), "--fusion", "6", "--burst", "1", name="c.json")
    assert every["totals"]["dram_bytes"] <= six["totals"]["dram_bytes"]


def flag_and_field(tmp_path: Path, flag: tuple[str, str], field: dict) -> tuple[dict, dict, dict]:
    """The tiny ResNet-8 with groups of up to 6 layers, in bytes: as declared, with ``flag``,
    and with ``field`` written into a copy of the accelerator file."""
    args = (str(NETWORK), "--fusion", "6", "--burst", "1")
    plain = solve(tmp_path, args[0], str(ACCELERATOR), *args[1:], name="plain.json")
    flagged = solve(tmp_path, args[0], str(ACCELERATOR), *args[1:], *flag, name="flagged.json")
    path = tmp_path / "declared.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(ACCELERATOR.read_text(encoding="utf-8")) | field), encoding="utf-8")
    return plain, flagged, solve(tmp_path, args[0], str(path), *args[1:], name="declared.json")


def test_liveness_from_the_command_line_or_the_accelerator_file(tmp_path):
    """``--fused-footprint liveness`` and ``fused_footprint: liveness`` in the accelerator file
    give the same answer, which moves no more than holding every slot."""
    held, live, declared = flag_and_field(tmp_path, ("--fused-footprint", "liveness"), {"fused_footprint": "liveness"})
    assert held["fused_footprint"] == "sum" and live["fused_footprint"] == declared["fused_footprint"] == "liveness"
    assert live["totals"] == declared["totals"]
    assert live["totals"]["dram_bytes"] <= held["totals"]["dram_bytes"]
    assert all(group["footprint_bytes"] <= 32 * 1024 for group in live["groups"])


def test_halo_modes_from_the_command_line_or_the_accelerator_file(tmp_path):
    """``--halo any`` and ``halo: any`` give the same answer, which moves no more than
    recomputing; the report names each group's mode."""
    plain, chosen, declared = flag_and_field(tmp_path, ("--halo", "any"), {"halo": "any"})
    assert plain["halo_modes"] == ["recompute"]
    assert chosen["halo_modes"] == declared["halo_modes"] == ["recompute", "columns", "rows", "rows+columns"]
    assert without_timing(chosen) == without_timing(declared)
    assert chosen["totals"]["dram_bytes"] <= plain["totals"]["dram_bytes"]
    assert {group["halo"] for group in plain["groups"]} == {"recompute"}
    assert {group["halo"] for group in chosen["groups"]} <= set(chosen["halo_modes"])


def test_kept_tensors_from_the_command_line_or_the_accelerator_file(tmp_path):
    """``--keep-tensors yes`` and ``keep_tensors: true`` give the same answer, which moves no
    more than keeping nothing; the report lists what is kept."""
    plain, kept, declared = flag_and_field(tmp_path, ("--keep-tensors", "yes"), {"keep_tensors": True})
    assert not plain["keep_tensors"] and plain["kept_tensors"] == []
    assert kept["keep_tensors"] and declared["keep_tensors"]
    assert without_timing(kept) == without_timing(declared)
    assert kept["kept_tensors"] and kept["totals"]["dram_bytes"] < plain["totals"]["dram_bytes"]


def test_a_bad_halo_mode_is_one_line(capsys):
    assert main(["solve", str(NETWORK), str(ACCELERATOR), "--halo", "rows,\x1b[31mred"]) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--halo: must be one of recompute, columns, rows, rows+columns, any" in err
    assert "\x1b" not in err


def test_a_bad_fusion_depth_names_every_spelling(capsys):
    assert main(["solve", str(NETWORK), str(ACCELERATOR), "--fusion", "deep"]) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must be all, 0 or an integer in [1, 4096], got 'deep'" in err


def test_lexicographic_objective_keeps_the_least_traffic(tmp_path, result):
    lexi = solve(tmp_path, str(NETWORK), str(ACCELERATOR), "--objective", "dram,latency")
    assert lexi["objective"] == "dram" and lexi["tie_breakers"] == ["latency"]
    assert lexi["totals"]["dram_bytes"] == result["totals"]["dram_bytes"]
    assert lexi["totals"]["latency_cycles"] <= result["totals"]["latency_cycles"]


def test_unknown_objective_in_a_list(capsys):
    assert main(["solve", str(NETWORK), str(ACCELERATOR), "--objective", "dram,speed"]) == EXIT_INPUT
    (line,) = error_lines(capsys)
    assert "--objective" in line and "'dram,speed'" in line
