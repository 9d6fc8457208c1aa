"""Independent jobs here or on Dask (dse_milp/executors.py), and sweeps over grids of design
points (dse_milp/sweeps.py): a sweep on a 2-worker LocalCluster writes what the local run
writes, in the same order; a grid holds every combination; the Pareto front is what a brute
force keeps."""

from __future__ import annotations

import csv
import itertools
import random
from pathlib import Path

import pytest

from dse_milp.cli import EXIT_INPUT, EXIT_OK, main
from dse_milp.errors import InputError
from dse_milp.executors import Executor
from dse_milp.sweeps import SweepPoint, pareto_front

ROOT = Path(__file__).resolve().parent.parent
NET, ACC = ROOT / "instances" / "networks", ROOT / "instances" / "accelerators"


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("executor", [Executor(), Executor(jobs=2)])
def test_local_executors_keep_the_tasks_order(executor):
    assert executor.run(square, list(range(9, 0, -1))) == [x * x for x in range(9, 0, -1)]


def test_a_dask_sweep_over_a_grid_writes_what_the_local_one_writes(tmp_path):
    pytest.importorskip("distributed")
    grid = ["--capacities", "16KiB,64KiB", "--bandwidths", "4,8", "--macs", "64", "--fusion", "3",
            "--networks", str(NET / "tiny_fc_autoencoder.yaml")]  # fmt: skip
    outs = {}
    for executor in ("local", "dask"):
        csv_path, png = tmp_path / f"{executor}.csv", tmp_path / f"{executor}.png"
        args = ["sweep", str(NET / "tiny_dscnn.yaml"), str(ACC / "npu_32k.yaml"), *grid, "--executor", executor,
                "--workers", "2", "--out", str(csv_path), "--plot", str(png)]  # fmt: skip
        assert main(args) == EXIT_OK
        assert png.read_bytes()[:4] == b"\x89PNG"
        outs[executor] = rows(csv_path)
    assert outs["local"] == outs["dask"]
    points = outs["local"]
    assert len(points) == 2 * 2 * 2 * 2  # networks x capacities x bandwidths x (alone, fused)
    combos = {(p["network"], p["capacity_bytes"], p["dram_bandwidth"], p["macs"], p["fusion"]) for p in points}
    assert len(combos) == len(points)
    assert [p["network"] for p in points[:8]] == ["tiny_dscnn"] * 8  # networks outermost
    assert {p["macs"] for p in points} == {"64"}
    fast = [p for p in points if p["dram_bandwidth"] == "8.0"]
    faster = {(p["network"], p["capacity_bytes"], p["macs"], p["fusion"]): p for p in fast}
    for p in points:  # twice the bandwidth never takes longer, and moves the same bytes
        if p["dram_bandwidth"] == "4.0":
            q = faster[p["network"], p["capacity_bytes"], p["macs"], p["fusion"]]
            assert float(q["latency_cycles"]) <= float(p["latency_cycles"]) and q["dram_bytes"] == p["dram_bytes"]


def test_bank_sizes_need_a_free_split_and_are_refused_before_solving(capsys):
    args = ["sweep", str(NET / "tiny_dscnn.yaml"), str(ACC / "npu_32k.yaml"), "--banks", "4KiB"]
    assert main(args) == EXIT_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--banks: 'npu-32k' has fixed buffers, not a free split in banks" in line


def test_a_free_split_s_bank_sizes_are_a_grid_axis(tmp_path):
    out = tmp_path / "s.csv"
    args = ["sweep", str(NET / "tiny_dscnn.yaml"), str(ACC / "npu_128k_split.yaml"), "--capacities", "64KiB",
            "--banks", "4KiB,16KiB", "--out", str(out), "--plot", str(tmp_path / "p.png"), "--burst", "1"]  # fmt: skip
    assert main(args) == EXIT_OK
    points = rows(out)
    assert [p["bank_bytes"] for p in points] == ["4096", "16384"]
    assert all(p["status"] == "optimal" for p in points)
    assert float(points[0]["dram_bytes"]) <= float(points[1]["dram_bytes"])  # finer banks waste less


def test_the_pareto_front_is_what_brute_force_keeps():
    rng = random.Random(5)
    for _ in range(200):
        points = [
            SweepPoint(rng.choice([1, 2, 4, 8, 16]) * 1024, 0, "optimal", float(rng.randint(1, 30)), None, 1.0,
                       None, None, 0, {}, 0.0)
            for _ in range(rng.randint(1, 12))
        ]  # fmt: skip
        front = pareto_front(points, lambda p: p.dram_bytes)
        expected = {
            (p.capacity_bytes, p.dram_bytes) for p in points
            if not any((q.capacity_bytes <= p.capacity_bytes and q.dram_bytes < p.dram_bytes)
                       or (q.capacity_bytes < p.capacity_bytes and q.dram_bytes <= p.dram_bytes) for q in points)
        }  # fmt: skip
        assert [(p.capacity_bytes, p.dram_bytes) for p in front] == sorted(expected)


def test_executor_settings_that_cannot_work_are_input_errors():
    with pytest.raises(InputError, match="--executor: 'ray' is not one of local, dask"):
        Executor("ray")
    with pytest.raises(InputError, match="--scheduler: needs --executor dask"):
        Executor("local", scheduler="tcp://127.0.0.1:1")


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys):
    pytest.importorskip("distributed")
    args = ["sweep", str(NET / "tiny_dscnn.yaml"), str(ACC / "npu_32k.yaml"), "--points", "1", "--executor", "dask",
            "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "s.csv"),
            "--plot", str(tmp_path / "p.png")]  # fmt: skip
    assert main(args) == EXIT_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --scheduler: cannot reach 'tcp://127.0.0.1:9'")


def test_grid_combinations_come_capacities_first():
    from dse_milp.loader import load_accelerator
    from dse_milp.sweeps import Grid

    grid = Grid((16384, 65536), (None,), (4.0, 8.0), (64, 256))
    designs = grid.designs(load_accelerator(ACC / "npu_32k.yaml"))
    assert [(t, a.dram_bandwidth, a.macs) for t, a in designs] == list(
        itertools.product((16384, 65536), (4.0, 8.0), (64, 256))
    )
    assert all(sum(b.capacity_bytes for b in a.buffers) == t for t, a in designs)


def test_bench_on_dask_keeps_the_suite_order_and_the_program_s_results(tmp_path):
    """The searches' budgets are wall-clock time, so only what does not depend on it is compared:
    the instances' order, the proven optima, the baselines."""
    pytest.importorskip("distributed")
    import json

    suite = tmp_path / "suite.yaml"
    entries = [("fc", "tiny_fc_autoencoder", "npu_32k"), ("dscnn", "tiny_dscnn", "npu_32k")]
    lines = [f"  - {{name: {n}, network: {NET / net}.yaml, accelerator: {ACC / acc}.yaml}}\n"
             for n, net, acc in entries]  # fmt: skip
    suite.write_text("instances:\n" + "".join(lines))
    records = {}
    for executor in ("local", "dask"):
        out = tmp_path / executor
        assert main(["bench", "--suite", str(suite), "--quick", "--executor", executor, "--workers", "2",
                     "--out", str(out)]) == EXIT_OK  # fmt: skip
        records[executor] = [
            (r["instance"], r["optimum"], [b["dram_bytes"] for b in r["baselines"]])
            for r in json.loads((out / "results.json").read_text(encoding="utf-8"))
        ]
    assert records["local"] == records["dask"] and [r[0] for r in records["dask"]] == ["fc", "dscnn"]
