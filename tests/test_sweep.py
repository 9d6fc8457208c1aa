"""The capacity sweep: CSV, plot, and what must hold along the curve."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

from dse_milp.cli import EXIT_INPUT, EXIT_OK, main
from dse_milp.loader import load_accelerator
from dse_milp.sweeps import capacities, with_capacity

ROOT = Path(__file__).resolve().parent.parent


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_sweep_writes_a_csv_and_a_plot(tmp_path):
    out, png = tmp_path / "s.csv", tmp_path / "s.png"
    # in bytes, where more buffer provably never costs traffic (under bursts: docs/traffic_model.md, 5b)
    argv = ["sweep", "tiny_resnet8@npu-32k", "--min", "64", "--max", "256 KiB", "--points", "6", "--fusion", "6",
            "--burst", "1"]  # fmt: skip
    assert main([*argv, "--out", str(out), "--plot", str(png)]) == EXIT_OK
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = rows(out)
    assert len(table) == 2 * len(capacities(64, 256 * 1024, 6))
    assert table[0]["status"] == "infeasible"  # 64 bytes hold no 3x3 convolution's tile
    by_fusion: dict[str, list[float]] = {}
    for row in table:
        if row["status"] == "optimal":
            by_fusion.setdefault(row["fusion"], []).append(float(row["dram_bytes"]))
    for curve in by_fusion.values():  # more buffer never costs traffic
        assert all(a >= b for a, b in itertools.pairwise(curve))
    fused = {r["capacity_bytes"]: float(r["dram_bytes"]) for r in table if r["fusion"] == "6" and r["dram_bytes"]}
    alone = {r["capacity_bytes"]: float(r["dram_bytes"]) for r in table if r["fusion"] == "0" and r["dram_bytes"]}
    assert all(fused[c] <= alone[c] for c in alone if c in fused)
    assert any(fused[c] < alone[c] for c in alone if c in fused)


def test_sweep_of_a_free_split_records_the_chosen_sizes(tmp_path):
    out = tmp_path / "s.csv"
    argv = [
        "sweep",
        str(ROOT / "instances/networks/tiny_dscnn.yaml"),
        str(ROOT / "instances/accelerators/npu_128k_split.yaml"),
    ]
    assert (
        main(
            [
                *argv,
                "--min",
                "32 KiB",
                "--max",
                "128 KiB",
                "--points",
                "3",
                "--out",
                str(out),
                "--plot",
                str(tmp_path / "p.png"),
            ]
        )
        == EXIT_OK
    )
    for row in rows(out):
        sizes = dict(part.split("=") for part in row["buffer_sizes"].split(";"))
        assert sum(int(v) for v in sizes.values()) == int(row["capacity_bytes"])
        assert all(int(v) % (8 * 1024) == 0 for v in sizes.values())


def test_with_capacity_keeps_proportions_and_banks():
    fpga = load_accelerator(ROOT / "instances/accelerators/fpga.yaml")  # 64 + 64 + 32 KiB
    scaled = with_capacity(fpga, 80 * 1024)
    assert [b.capacity_bytes for b in scaled.buffers] == [32 * 1024, 32 * 1024, 16 * 1024]
    split = with_capacity(load_accelerator(ROOT / "instances/accelerators/npu_128k_split.yaml"), 100 * 1024)
    assert split.split is not None and split.split.total_bytes == 96 * 1024  # whole 8 KiB banks


@pytest.mark.parametrize(("option", "value"), [("--min", "lots"), ("--points", "0")])
def test_bad_sweep_options(capsys, option, value):
    assert main(["sweep", "tiny_dscnn@npu-32k", option, value]) == EXIT_INPUT
    assert option in capsys.readouterr().err


def test_a_sweep_in_bursts_reports_the_bytes_they_move(tmp_path):
    """With --burst, each solved point's moved bytes (whole bursts) are at least its bytes;
    without, the column is empty."""
    for burst in ("64", "1"):
        out = tmp_path / f"{burst}.csv"
        argv = ["sweep", "tiny_dscnn@npu-32k", "--min", "8 KiB", "--max", "64 KiB", "--points", "3"]
        assert main([*argv, "--burst", burst, "--out", str(out), "--plot", str(tmp_path / f"{burst}.png")]) == EXIT_OK
        solved = [row for row in rows(out) if row["status"] == "optimal"]
        assert solved
        for row in solved:
            if burst == "1":
                assert row["moved_bytes"] == ""
            else:
                assert float(row["moved_bytes"]) >= float(row["dram_bytes"])
