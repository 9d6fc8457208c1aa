"""The terminal tables: every cell sits under a named column."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dse_milp.loader import load_accelerator, load_network
from dse_milp.report import group_table, layer_table
from dse_milp.solution import solve

ROOT = Path(__file__).resolve().parent.parent


def test_every_column_has_a_header():
    network = load_network(ROOT / "instances/networks/tiny_resnet8.yaml")
    accelerator = load_accelerator(ROOT / "instances/accelerators/npu_32k.yaml")
    solution = solve(network, accelerator, fusion=6)
    marginals = {layer.name: 1.0 for layer in network.layers}
    for s in (solution, replace(solution, marginals=marginals)):
        for table in (layer_table(s), group_table(s)):
            headers = [str(column.header) for column in table.columns]
            assert all(headers), headers
            assert all(len(column._cells) == table.row_count for column in table.columns)
    assert "per channel" in [str(c.header) for c in layer_table(replace(solution, marginals=marginals)).columns]


def test_solve_plot_draws_each_layer_s_traffic_and_the_compulsory_ticks(tmp_path):
    """The PNG is written; the ticks add up to the network's compulsory traffic, and the bars
    (each layer's transfers, a group's charged to its layers) to its DRAM bytes."""
    from dse_milp.cli import main
    from dse_milp.loader import load_accelerator, load_network
    from dse_milp.solution_plot import compulsory_by_layer

    png = tmp_path / "layers.png"
    assert main(["solve", "tiny_resnet8@npu-32k", "--fusion", "6", "--quiet", "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    root = Path(__file__).resolve().parent.parent
    network = load_network(root / "instances/networks/tiny_resnet8.yaml")
    solution = solve(network, load_accelerator(root / "instances/accelerators/npu_32k.yaml"), fusion=6, prices=False)
    assert sum(compulsory_by_layer(solution)) == solution.compulsory_bytes
    assert sum(r.traffic.total for r in solution.layers) / 8 == solution.dram_bytes


def test_solve_plot_refuses_a_format_before_solving(tmp_path, capsys):
    from dse_milp.cli import EXIT_INPUT, main

    assert main(["solve", "tiny_dscnn@npu-32k", "--plot", str(tmp_path / "p.txt")]) == EXIT_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --plot: '.txt' is not a plot format")
