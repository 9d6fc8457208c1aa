"""Issue 8: every documented option with every other, output that survives closed pipes and bad
paths, a time limit for the whole command, Ctrl-C that keeps the best solution, and messages
that say which layers conflict."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dse_milp.cli import EXIT_INFEASIBLE, EXIT_INPUT, EXIT_OK, EXIT_TIME_LIMIT, main
from dse_milp.errors import InfeasibleError, InterruptedRun
from dse_milp.loader import load_accelerator, load_network, parse_accelerator
from dse_milp.solution import solve
from dse_milp.solvers import SolverOptions
from dse_milp.stopping import sigint_requests_stop

REPO = Path(__file__).resolve().parent.parent
NETWORKS = REPO / "instances" / "networks"
ACCELERATORS = REPO / "instances" / "accelerators"
DSCNN = NETWORKS / "tiny_dscnn.yaml"
NPU32 = ACCELERATORS / "npu_32k.yaml"

ACCELERATOR: dict[str, Any] = yaml.safe_load(NPU32.read_text(encoding="utf-8"))


def accelerator_file(tmp_path: Path, buffer: dict[str, Any], name: str = "acc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(dict(ACCELERATOR, buffer=buffer)), encoding="utf-8")
    return path


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


# --------------------------------------------------------------------------- options together


@pytest.mark.parametrize("extra", [[], ["--fusion", "3"], ["--objective", "dram,latency"], ["--marginals"]])
def test_two_threads_work_with_every_step(tmp_path, extra):
    """Before: the LP step after a 2-thread solve failed ("Not Set") on every instance."""
    out = tmp_path / "r.json"
    assert main(["solve", str(DSCNN), str(NPU32), "--threads", "2", "--quiet", "--out", str(out), *extra]) == EXIT_OK
    record = json.loads(out.read_text())
    assert record["status"] == "optimal"
    assert all(layer["shadow_price"] is not None for layer in record["layers"])
    one = tmp_path / "one.json"
    assert main(["solve", str(DSCNN), str(NPU32), "--quiet", "--out", str(one), *extra]) == EXIT_OK
    assert json.loads(one.read_text())["totals"] == record["totals"]


@pytest.mark.parametrize("solver", ["ortools-sat", "ortools-scip"])
def test_other_backends_take_two_threads_and_a_seed(tmp_path, solver):
    out = tmp_path / "r.json"
    args = ["solve", str(DSCNN), str(NPU32), "--solver", solver, "--threads", "2", "--seed", "2147483647"]
    assert main([*args, "--quiet", "--out", str(out)]) == EXIT_OK
    assert json.loads(out.read_text())["status"] == "optimal"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--seed", "-1", "must be in [0, 2147483647], got '-1'"),
        ("--seed", "2147483648", "must be in [0, 2147483647], got '2147483648'"),
        ("--threads", "100000", "must be in [1, 1024], got '100000'"),
        ("--time-limit", "nan", "must be a finite number, got 'nan'"),
        ("--time-limit", "1e300", "must be in (0, 1000000000], got '1e300'"),
        ("--fusion", "1000000000", "must be all, 0 or an integer in [1, 4096], got '1000000000'"),
    ],
)
def test_numbers_out_of_a_backend_range_are_refused_at_the_command_line(capsys, option, value, message):
    assert main(["solve", str(DSCNN), str(NPU32), option, value]) == EXIT_INPUT
    assert error_lines(capsys) == [f"error: argument {option}: {message} (see python -m dse_milp solve --help)"]


def test_a_usage_error_stays_on_one_line(capsys):
    assert main(["solve", str(DSCNN), str(NPU32), "--bogus\nsecond line"]) == EXIT_INPUT
    (line,) = error_lines(capsys)
    assert "--bogus\\nsecond line" in line


# --------------------------------------------------------------------------- an optional step never sinks a solution


@pytest.mark.parametrize("output", [1, 2, 3])
def test_a_tiny_output_buffer_still_solves_with_prices(output):
    """Before: the LP step's candidates (generated with one buffer unbounded) all overflowed the
    few-byte output buffer, its LP was infeasible and the solved program exited 1."""
    network = load_network(DSCNN)
    accelerator = parse_accelerator(dict(ACCELERATOR, buffer={"input": "64 KiB", "weight": "64 KiB", "output": output}))
    solution = solve(network, accelerator)
    assert solution.result.status.value == "optimal" and not solution.notes
    for layer in solution.layers:
        assert layer.shadow_price is not None and all(math.isfinite(p) for p in layer.shadow_price.values())


# --------------------------------------------------------------------------- output


def test_the_json_survives_a_closed_pipe(tmp_path):
    out = tmp_path / "r.json"
    command = f"{sys.executable} -m dse_milp solve {DSCNN} {NPU32} --out {out} | head -c 10"
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(out.read_text())["status"] == "optimal"


@pytest.mark.parametrize("where", ["folder", "missing folder", "file in a file", "name too long"])
def test_an_out_that_cannot_be_written_is_found_before_solving(tmp_path, capsys, monkeypatch, where):
    (tmp_path / "file").write_text("x")
    path = {"folder": tmp_path, "missing folder": tmp_path / "no" / "r.json", "file in a file": tmp_path / "file" / "r",
            "name too long": tmp_path / ("x" * 300 + ".json")}  # fmt: skip
    path = path[where]
    monkeypatch.setattr("dse_milp.solution.solve", lambda *a, **k: pytest.fail("solved before checking --out"))
    assert main(["solve", str(DSCNN), str(NPU32), "--out", str(path)]) == EXIT_INPUT
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: --out: cannot write '{path}' (")


def test_a_write_that_fails_at_the_end_keeps_the_table(capsys):
    """A device that fills up is found only when written: the table is printed all the same."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    assert main(["solve", str(DSCNN), str(NPU32), "--quiet", "--out", "/dev/full"]) == EXIT_INPUT
    captured = capsys.readouterr()
    assert captured.out.startswith("DRAM traffic ")
    assert captured.err.strip().splitlines() == ["error: --out: cannot write '/dev/full' (No space left on device)"]


def test_sweep_and_bench_outputs_are_checked_first(tmp_path, capsys):
    assert main(["sweep", str(DSCNN), str(NPU32), "--out", str(tmp_path)]) == EXIT_INPUT
    assert error_lines(capsys) == [f"error: --out: cannot write '{tmp_path}' (it is a folder)"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["bench", "--quick", "--out", str(blocker / "sub")]) == EXIT_INPUT
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: --out: cannot write in '{blocker / 'sub'}' (")


def test_a_sweep_of_one_infeasible_point_still_plots(tmp_path, capsys):
    csv, png = tmp_path / "s.csv", tmp_path / "s.png"
    args = ["sweep", str(DSCNN), str(NPU32), "--points", "1", "--min", "1B", "--max", "1B"]
    assert main([*args, "--out", str(csv), "--plot", str(png)]) == EXIT_OK
    assert png.stat().st_size > 0 and "infeasible" in csv.read_text()


def test_sweep_files_that_fail_at_the_end_keep_the_points(tmp_path, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    args = ["sweep", str(DSCNN), str(NPU32), "--points", "1", "--out", "/dev/full", "--plot", str(tmp_path / "s.png")]
    assert main(args) == EXIT_INPUT
    captured = capsys.readouterr()
    assert re.search(r"16\.0 KiB: [\d,]+ bytes \(\d\.\d+\)", captured.out), captured.out
    assert captured.err.strip().splitlines() == ["error: --out: cannot write '/dev/full' (No space left on device)"]


def test_a_plot_format_matplotlib_cannot_write_is_refused_first(tmp_path, capsys):
    assert main(["sweep", str(DSCNN), str(NPU32), "--plot", str(tmp_path / "p.txt")]) == EXIT_INPUT
    (line,) = error_lines(capsys)
    assert line.startswith("error: --plot: '.txt' is not a plot format (") and "png" in line


def test_ortools_sat_keeps_its_first_stage_when_a_tie_break_row_is_not_integral(tmp_path):
    out = tmp_path / "r.json"
    args = ["solve", str(DSCNN), str(NPU32), "--solver", "ortools-sat", "--objective", "energy,latency"]
    assert main([*args, "--quiet", "--out", str(out)]) == EXIT_OK
    record = json.loads(out.read_text())
    assert record["status"] == "optimal"
    (note,) = record["notes"]
    assert re.fullmatch(
        r"latency ties not broken \(ortools-sat: row \d+ has coefficients that no power of two makes integral\)", note
    )
    highs = tmp_path / "h.json"
    assert main(["solve", str(DSCNN), str(NPU32), "--objective", "energy", "--quiet", "--out", str(highs)]) == EXIT_OK
    assert record["objective_value"] == pytest.approx(json.loads(highs.read_text())["objective_value"], rel=1e-9)


@pytest.mark.parametrize("option", ["--min", "--max"])
def test_sweep_sizes_of_hundreds_of_digits(capsys, option):
    assert main(["sweep", str(DSCNN), str(NPU32), option, "9" * 400 + "KiB"]) == EXIT_INPUT
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: argument {option}: must be at most 1 TiB")


def test_names_are_printed_as_data(tmp_path, capsys):
    network = tmp_path / "names.yaml"
    network.write_text(
        'name: "[bold red]net[/] :x:"\n'
        "input: {channels: 1, height: 8, width: 8}\n"
        "layers:\n"
        '  - {name: "[/]", kind: conv2d, in_channels: 1, out_channels: 2, kernel: 3}\n'
        '  - {name: ":x:", kind: conv2d, in_channels: 3, out_channels: 2, kernel: 3}\n',
        encoding="utf-8",
    )
    assert main(["solve", str(network), str(NPU32)]) == EXIT_INPUT
    assert error_lines(capsys) == [
        f"error: {network}: layers[1].in_channels: 3 does not match the 2 channels of '[/]' (2x6x6)"
    ]
    network.write_text(network.read_text().replace("in_channels: 3", "in_channels: 2"), encoding="utf-8")
    assert main(["solve", str(network), str(NPU32)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "[bold red]net[/] :x: on npu-32k" in out and "│ [/] " in out and "│ :x: " in out


def test_json_has_no_infinity(tmp_path, monkeypatch):
    from dse_milp.report import json_text

    text = json_text({"bound": float("-inf"), "gap": float("nan"), "nested": [{"x": float("inf")}]})
    assert json.loads(text) == {"bound": None, "gap": None, "nested": [{"x": None}]}


# --------------------------------------------------------------------------- messages


def conflicting(tmp_path: Path) -> Path:
    """Two layers that each fit a 4-bank split alone, but need different splits."""
    path = tmp_path / "conflict.yaml"
    path.write_text(
        "name: conflict\n"
        "input: {channels: 1, height: 40, width: 40}\n"
        "layers:\n"
        "  - {name: a, kind: conv2d, in_channels: 1, out_channels: 1, kernel: 32, precision: {input: 16}}\n"
        "  - {name: b, kind: conv2d, in_channels: 1, out_channels: 1, kernel: 32, precision: {weight: 16},"
        " inputs: [input]}\n",
        encoding="utf-8",
    )
    return path


def test_a_free_split_that_fits_no_pair_names_both_layers(tmp_path):
    network = load_network(conflicting(tmp_path))
    accelerator = load_accelerator(accelerator_file(tmp_path, {"total": "4 KiB", "split": "free", "bank": "1 KiB"}))
    for layer in network.layers:  # each fits alone
        alone = type(network)(network.name, network.input_shape, (layer,), network.output_shapes)
        assert solve(alone, accelerator, prices=False).result.status.value == "optimal"
    with pytest.raises(InfeasibleError) as info:
        solve(network, accelerator)
    assert info.value.problems == [
        "no one split of the 4,096-byte buffer (4 banks of 1,024 bytes) fits both layers 'a' and 'b': "
        "'a' needs at least input 2,048, weight 1,024, output 1,024 bytes; "
        "'b' needs at least input 1,024, weight 2,048, output 1,024 bytes (each fits alone)"
    ]


@pytest.mark.parametrize("burst", ["1", "64"])
def test_too_few_banks_says_how_many_are_needed(tmp_path, capsys, burst: str):
    """Also with DRAM bursts, where before the empty set of candidates raised a ValueError."""
    accelerator = accelerator_file(tmp_path, {"total": "2 KiB", "split": "free", "bank": "1 KiB"})
    assert main(["solve", str(conflicting(tmp_path)), str(accelerator), "--burst", burst]) == EXIT_INFEASIBLE
    assert error_lines(capsys)[0] == (
        "infeasible: layer 'a' fits no mapping: its smallest footprint (input 2048 + weight 1024 + output 1 bytes) "
        "needs input 2 + weight 1 + output 1 = 4 banks of 1,024 bytes, more than the 2 banks of the 2,048-byte total"
    )


# --------------------------------------------------------------------------- time limit and Ctrl-C


def test_the_time_limit_bounds_candidate_generation(capsys):
    network = load_network(NETWORKS / "resnet50.yaml")
    accelerator = load_accelerator(ACCELERATORS / "npu_128k_split.yaml")
    options = SolverOptions(time_limit=0.2)
    start = time.perf_counter()
    with pytest.raises(Exception) as info:
        solve(network, accelerator, options=options, fusion=6)
    assert time.perf_counter() - start < 1.5  # before: candidates alone took over a second, unbounded
    assert type(info.value).__name__ == "NoSolutionError"
    assert "before any solution" in str(info.value)


def ctrl_c_as_in_a_terminal() -> None:
    """SIGINT's default action in a test's child process: a shell's background job (and a CI
    runner started as one) ignores SIGINT, and its children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Python's own SIGINT handler in this process for the test, however the tests were started."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_the_tie_break_keeps_the_mappings_found(monkeypatch):
    """Ctrl-C after the solver, while the tiles are being coarsened: the rest of the units keep
    the program's own mappings (the same traffic), at once, and the note says how many."""
    import dse_milp.solution as solving
    from dse_milp import stopping

    network, accelerator = load_network(DSCNN), load_accelerator(NPU32)
    whole = solve(network, accelerator, prices=False)
    calls = []

    def ctrl_c_after_the_first(*args: object) -> object:
        calls.append(args)
        stopping._requested.set()
        return fewest(*args)

    fewest = solving.fewest_tiles
    monkeypatch.setattr(solving, "fewest_tiles", ctrl_c_after_the_first)
    try:
        cut = solve(network, accelerator, prices=False)
    finally:
        stopping._requested.clear()
    units = len(cut.layers) + len(cut.groups)
    assert len(calls) == 1
    assert f"tiles of {units - 1} of {units} units not coarsened (interrupted)" in cut.notes
    assert cut.dram_bytes == whole.dram_bytes


def test_the_time_limit_bounds_the_whole_command(tmp_path):
    """Before: each solver call had the whole limit, and the prices were not bounded at all."""
    out = tmp_path / "r.json"
    args = [str(NETWORKS / "resnet50.yaml"), str(ACCELERATORS / "npu_128k_split.yaml"), "--fusion", "6"]
    start = time.perf_counter()
    code = main(["solve", *args, "--time-limit", "3", "--quiet", "--out", str(out)])
    elapsed = time.perf_counter() - start
    assert code in (EXIT_OK, EXIT_TIME_LIMIT)
    assert elapsed < 3 + 1.0, elapsed
    record = json.loads(out.read_text())
    if code == EXIT_OK:  # the unlimited run takes about 11 s here
        assert record["status"] in ("feasible", "optimal") and record["bound"] is not None


def interrupt(args: list[str], tmp_path: Path, after: float) -> tuple[subprocess.CompletedProcess[str], float, dict]:
    """Run ``solve`` in a real process, send SIGINT ``after`` seconds in; the process, the seconds it
    took to end after the signal, and its JSON result."""
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dse_milp", "solve", *args, "--quiet", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    time.sleep(after)
    assert proc.poll() is None, "the run ended before the signal: the instance is too easy for this test"
    proc.send_signal(signal.SIGINT)
    sent = time.perf_counter()
    stdout, stderr = proc.communicate(timeout=60)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return done, time.perf_counter() - sent, json.loads(out.read_text())


def test_ctrl_c_keeps_the_best_solution(tmp_path):
    """SIGINT during branch and bound (5 s into an ~11 s run; on a slow machine, maybe still
    during candidate generation): the incumbent with its bound and gap and exit 0, or status
    interrupted and exit 130; the JSON written either way, quickly, and no traceback."""
    args = [str(NETWORKS / "resnet50.yaml"), str(ACCELERATORS / "npu_128k_split.yaml"), "--fusion", "6"]
    proc, latency, record = interrupt(args, tmp_path, 5.0)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert latency < 3.0, latency
    if proc.returncode == 0:
        assert record["status"] in ("feasible", "optimal")
        assert record["bound"] is not None and record["gap"] is not None
        assert "highs was interrupted (Ctrl-C)" in record["notes"]
        assert any(note.startswith("prices of ") and note.endswith("skipped (interrupted)") for note in record["notes"])
    else:
        assert proc.returncode == 130, proc.stderr
        assert record["status"] == "interrupted"
        assert proc.stderr.startswith("interrupted")


def test_ctrl_c_during_candidate_generation_stops_it(ctrl_c_raises):
    network = load_network(NETWORKS / "resnet50.yaml")
    accelerator = load_accelerator(ACCELERATORS / "npu_128k_split.yaml")
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    with sigint_requests_stop(), pytest.raises(InterruptedRun) as info:
        timer.start()
        solve(network, accelerator, fusion=6)
    assert time.perf_counter() - start < 1.0  # generation alone takes over a second
    assert str(info.value) == "interrupted while generating candidates, before any solution"


def test_ctrl_c_while_starting_up_exits_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "dse_milp", "solve", str(DSCNN), str(NPU32)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    time.sleep(0.3)  # importing numpy, pydantic and pyomo
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (130, 0) and "Traceback" not in stderr + stdout


def test_ctrl_c_while_the_command_line_is_read_exits_130_without_a_traceback():
    """Before the run's own handling starts (reading the command line), Ctrl-C ends the command
    at once with 130; a KeyboardInterrupt there used to escape main and kill the process by
    SIGINT, with a traceback (a rare failure of the start-up test in CI)."""
    script = (
        "import os, signal, sys, time\n"
        "import dse_milp.cli as cli\n"
        "built = cli.parser\n"
        "def parser():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(0.5)\n"
        "    return built()\n"
        "cli.parser = parser\n"
        f"sys.argv = ['dse_milp', 'solve', {str(DSCNN)!r}, {str(NPU32)!r}]\n"
        "sys.exit(cli.main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          preexec_fn=ctrl_c_as_in_a_terminal)  # fmt: skip
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == "interrupted"


@pytest.mark.parametrize("gap", [0.01, 0.05, 0.2])
def test_a_second_ctrl_c_while_the_first_one_s_outcome_is_reported_ends_quietly(tmp_path, gap):
    """The first Ctrl-C during candidate generation ends the run at once (the workers are
    terminated), so the second may come while "interrupted ..." is printed or the process is
    ending: exit 130 all the same, never a traceback."""
    args = [str(NETWORKS / "resnet50.yaml"), str(ACCELERATORS / "npu_128k_split.yaml"), "--fusion", "6"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dse_milp", "solve", *args, "--quiet", "--out", str(tmp_path / "r.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    time.sleep(1.2)  # past the imports, in candidate generation
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(gap)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr


def test_ctrl_c_twice_ends_at_once(tmp_path):
    out = tmp_path / "r.json"
    args = [str(NETWORKS / "resnet50.yaml"), str(ACCELERATORS / "npu_128k_split.yaml"), "--fusion", "6"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dse_milp", "solve", *args, "--quiet", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    time.sleep(5.0)  # in branch and bound, whose first Ctrl-C would leave HiGHS to return its incumbent
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    sent = time.perf_counter()
    _, stderr = proc.communicate(timeout=60)
    assert time.perf_counter() - sent < 2.0
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
