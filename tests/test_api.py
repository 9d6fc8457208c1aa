"""The Python API (dse_milp/api.py, docs/api.md): every snippet of docs/api.md runs, the
command line gives what the functions give, and the public names are the functions even
after their modules are imported."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path

import pytest

import dse_milp
from dse_milp.cli import main
from dse_milp.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


def test_every_snippet_of_docs_api_runs_in_order(monkeypatch):
    pytest.importorskip("pandas")
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```python\n(.*?)```", DOC, re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, block in enumerate(blocks):
            exec(compile(block, f"docs/api.md, snippet {i + 1}", "exec"), namespace)
    printed = out.getvalue()
    assert printed.startswith("optimal 0.0\n")
    assert "objective: 'speed' is not one of dram, energy, latency" in printed
    assert "fits no mapping" in printed
    assert namespace["search"].dram_bytes >= namespace["solution"].dram_bytes
    assert len(namespace["frame"]) == len(namespace["network"].layers)
    assert len(namespace["points"]) == 16 and namespace["fastest"]


def test_the_public_names_are_the_functions_after_their_modules_are_imported():
    import dse_milp.benchmark
    import dse_milp.solution
    import dse_milp.sweeps
    from dse_milp import api

    for name in dse_milp.API:
        assert getattr(dse_milp, name) is getattr(api, name)
    with pytest.raises(AttributeError):
        dse_milp.no_such_function  # noqa: B018


def test_the_command_line_writes_what_the_function_returns(tmp_path):
    out = tmp_path / "r.json"
    network, accelerator = "instances/networks/tiny_dscnn.yaml", "instances/accelerators/npu_32k.yaml"
    assert main(["solve", str(ROOT / network), str(ROOT / accelerator), "--fusion", "3", "--objective",
                 "energy,dram", "--jobs", "1", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    by_cli = json.loads(out.read_text())
    by_api = json.loads(json.dumps(dse_milp.solve(ROOT / network, ROOT / accelerator, fusion=3,
                                                  objective="energy,dram").to_dict()))  # fmt: skip
    for record in (by_cli, by_api):
        record.pop("seconds"), record.pop("solve_seconds")
    assert by_cli == by_api


def test_bad_arguments_are_one_line_input_errors():
    network = ROOT / "instances/networks/tiny_dscnn.yaml"
    accelerator = ROOT / "instances/accelerators/npu_32k.yaml"
    for kwargs, message in (
        ({"objective": "dram,fast"}, "objective: 'fast' is not one of dram, energy, latency"),
        ({"fusion": "most"}, "fusion: 'most' is neither an integer nor 'all'"),
        ({"method": "tabu"}, "method: 'tabu' is not one of milp, timeloop"),
        ({"method": "loma", "fusion": 3}, "--method loma: searches layer by layer only"),
    ):
        with pytest.raises(InputError) as info:
            dse_milp.solve(network, accelerator, **kwargs)
        assert message in str(info.value) and "\n" not in str(info.value)


def test_fusion_all_is_the_whole_network():
    solution = dse_milp.solve(ROOT / "instances/networks/tiny_dscnn.yaml",
                              ROOT / "instances/accelerators/npu_256k.yaml", fusion="all", prices=False)  # fmt: skip
    assert solution.dram_bytes == solution.compulsory_bytes or len(solution.groups) >= 1


def test_layers_frame_says_what_it_needs_without_pandas(monkeypatch):
    solution = dse_milp.solve(ROOT / "instances/networks/tiny_dscnn.yaml",
                              ROOT / "instances/accelerators/npu_32k.yaml", prices=False)  # fmt: skip
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"needs pandas \(pip install pandas\)"):
        solution.layers_frame()
