"""`python -m dse_milp bench --quick` end to end."""

from __future__ import annotations

import json

from dse_milp.cli import EXIT_OK, main
from dse_milp.mappers import METHODS


def test_bench_quick_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--jobs", "2", "--out", str(out)]) == EXIT_OK
    records = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [r["instance"] for r in records] == ["tiny_resnet8@npu-32k", "tiny_dscnn@npu-32k"]
    for rec in records:
        assert [p["solver"] for p in rec["program"]] == ["highs", "ortools-scip"]
        assert all(p["status"] == "optimal" and p["dram_bytes"] == rec["optimum"] for p in rec["program"])
        assert sorted((h["method"], h["budget_factor"]) for h in rec["heuristics"]) == sorted(
            (m, f) for m in METHODS for f in (1.0, 10.0)
        )
        for h in rec["heuristics"]:  # no search beats the proven optimum; layer by layer, each as its authors run
            assert h["dram_bytes"] is None or h["dram_bytes"] >= rec["optimum"]
            assert h["search"] == "per layer, own space"
        for b in rec["baselines"]:  # nor does any fixed dataflow
            assert b["dram_bytes"] is None or b["dram_bytes"] >= rec["optimum"]
        assert (out / f"convergence_{rec['instance'].replace('@', '_at_')}.png").read_bytes()[:4] == b"\x89PNG"
    assert "| instance | baseline |" in (out / "results.md").read_text(encoding="utf-8")
    assert "tiny_dscnn@npu-32k" in capsys.readouterr().out


def test_exhaustive_baseline_equals_the_program_on_tiny_networks():
    import random

    from dse_milp.accelerator import Accelerator, Energy, unified_buffer
    from dse_milp.benchmark import exhaustive
    from dse_milp.loader import parse_network
    from dse_milp.solution import solve
    from tests.layers import random_network_spec

    energy = Energy(20.0, 0.6, 0.2)
    for seed in range(5):
        network = parse_network(random_network_spec(random.Random(seed), 2))
        accelerator = Accelerator("a", unified_buffer(300), False, 4.0, 100.0, 8, energy)
        value = exhaustive(network, accelerator)
        assert value is not None
        assert value == solve(network, accelerator, prices=False).dram_bytes
