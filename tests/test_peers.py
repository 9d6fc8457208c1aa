"""ZigZag side by side (dse_milp/peers): its chosen mapping translated into our model is scored
exactly as the checker scores it, never moves less than the program's least in our model on
the bundled tiny layers, and bench says in one line when ZigZag is not installed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dse_milp.check import check_mappings
from dse_milp.cli import EXIT_OK, main
from dse_milp.loader import load_accelerator, load_network

ROOT = Path(__file__).resolve().parent.parent


def _instance(network: str, accelerator: str) -> tuple:
    acc = replace(load_accelerator(ROOT / "instances/accelerators" / f"{accelerator}.yaml"), burst_bytes=1)
    return load_network(ROOT / "instances/networks" / f"{network}.yaml"), acc


def test_zigzag_s_mappings_are_scored_as_the_checker_scores_them():
    pytest.importorskip("zigzag")
    from dse_milp.peers.zigzag import our_score, run_layer

    network, accelerator = _instance("tiny_resnet8", "npu_32k")
    for name in ("conv1", "s2.conv2", "fc"):
        layer = network.by_name[name]
        found = run_layer(layer, accelerator, opt="dram")
        assert found.mapping is not None, found.reason
        score = our_score(layer, accelerator, found.mapping)
        checked = check_mappings(network, accelerator, {name: found.mapping}, {}).layers[name]
        assert checked.traffic.total / 8 == score.bytes
        assert checked.buffer_bytes == pytest.approx(score.held_bytes)
        assert score.fits == all(checked.buffer_bytes[b.name] <= b.capacity_bytes for b in accelerator.buffers)


def test_zigzag_never_beats_the_program_in_our_model_on_ds_cnn():
    pytest.importorskip("zigzag")
    from dse_milp.peers.compare import compare_zigzag

    record = compare_zigzag(*_instance("tiny_dscnn", "npu_32k"))
    assert record["beats_program"] == []
    assert record["representable_layers"] >= 8
    for row in record["layers"]:
        if row["zigzag_in_our_model"] is not None and row["fits_our_buffer"]:
            assert row["zigzag_in_our_model"] >= row["program_least_bytes"]
    assert record["zigzag_in_our_model_bytes"] >= record["program_least_representable_bytes"]


def test_a_free_split_is_skipped_with_a_reason():
    from dse_milp.peers.compare import compare_zigzag

    record = compare_zigzag(*_instance("tiny_dscnn", "npu_128k_split"))
    assert record["skipped"].startswith("a free split")


def test_bench_says_in_one_line_when_zigzag_is_not_installed(tmp_path, capsys, monkeypatch):
    import dse_milp.peers.zigzag as zigzag

    monkeypatch.setattr(zigzag, "zigzag_available", lambda: False)
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"instances:\n  - {{name: fc, network: {ROOT}/instances/networks/tiny_fc_autoencoder.yaml, "
                     f"accelerator: {ROOT}/instances/accelerators/npu_32k.yaml}}\n")  # fmt: skip
    out = tmp_path / "bench"
    assert main(["bench", "--suite", str(suite), "--quick", "--peers", "zigzag", "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "peers: zigzag is not installed (pip install -e '.[peers]'): skipped" in printed
    assert "| peer |" not in (out / "results.md").read_text()
