"""The terminal tables: every cell sits under a named column."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dse_milp.loader import load_accelerator, load_network
from dse_milp.report import group_table, layer_table
from dse_milp.solve import solve

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
