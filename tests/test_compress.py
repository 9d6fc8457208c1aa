"""The compression loop end to end on synthetic data: every policy, the files, determinism, bad input."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from dse_milp.cli import EXIT_INFEASIBLE, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, main  # noqa: E402
from dse_milp.loader import load_accelerator, load_network  # noqa: E402
from dse_milp.solution import solve  # noqa: E402
from pruning.bridge import network_from_torch  # noqa: E402
from pruning.channels import rebuild  # noqa: E402
from pruning.compress import Training, compress, prepare  # noqa: E402
from pruning.data import synthetic  # noqa: E402
from pruning.loop import Row, Settings, rescore, run_policy  # noqa: E402
from pruning.models import load_model  # noqa: E402
from pruning.policies import POLICIES  # noqa: E402
from pruning.record import band_edge  # noqa: E402
from pruning.train import Recipe, trained  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ACCELERATORS = ROOT / "instances" / "accelerators"
DATA = synthetic()
QUICK = ["--data", "synthetic", "--epochs", "0.5", "--finetune-epochs", "0.1", "--no-cache"]


@pytest.fixture(scope="module")
def every_policy(tmp_path_factory) -> Path:
    """One step of every policy on ResNet-8 (its residual stages couple channels), npu-32k."""
    out = tmp_path_factory.mktemp("compress")
    args = ["compress", "resnet8", "--accelerator", "npu-32k", "--policy", "all", "--step", "0.5",
            "--max-drop", "100", "--target-traffic", "0.01", *QUICK, "--out", str(out)]  # fmt: skip
    assert main(args) == EXIT_OK
    return out


def test_one_iteration_of_every_policy_runs_end_to_end(every_policy):
    log = json.loads((every_policy / "log.json").read_text(encoding="utf-8"))
    rows = log["rows"]
    assert [(r["policy"], r["iteration"]) for r in rows] == [(p, i) for p in POLICIES for i in (0, 1)]
    start = rows[0]["dram_bytes"]
    for first, step in zip(rows[::2], rows[1::2], strict=True):
        assert first["dram_bytes"] == start and first["accuracy"] == rows[0]["accuracy"]
        assert step["removed"] and step["stop"] == "step schedule spent"
        assert step["dram_bytes"] < start and step["parameters"] < first["parameters"]
        assert step["actual_saved"] == start - step["dram_bytes"]
        assert step["predicted_saved"] > 0
    with (every_policy / "log.csv").open(encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    for plot in ("pareto.png", "widths.png"):
        assert (every_policy / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("policy", POLICIES)
def test_each_saved_model_and_network_are_the_logged_iteration(every_policy, policy):
    rows = [r for r in json.loads((every_policy / "log.json").read_text(encoding="utf-8"))["rows"]
            if r["policy"] == policy]  # fmt: skip
    accelerator = load_accelerator(ACCELERATORS / "npu_32k.yaml")
    for row in rows:
        folder = every_policy / policy / f"iter-{row['iteration']:02d}"
        network = load_network(folder / "network.yaml")
        assert solve(network, accelerator).dram_bytes == row["dram_bytes"]
        assert {layer.name: layer.m for layer in network.layers if layer.has_weights} == row["widths"]
        saved = torch.load(folder / "model.pt", weights_only=True)
        model, shape = load_model("resnet8")
        rebuild(model, shape, ["fc"], saved["widths"], "model.pt")
        model.load_state_dict(saved["state_dict"])
        assert network_from_torch(model, shape).layers == network.layers
    final = (every_policy / policy / "network.yaml").read_text(encoding="utf-8")
    assert final == (every_policy / policy / "iter-01" / "network.yaml").read_text(encoding="utf-8")


def test_the_same_seed_gives_the_same_run(tmp_path):
    settings = Settings(step=0.34, finetune_epochs=0.1, max_drop=100, target_traffic=0.01, seed=3)
    runs = []
    for name in ("a", "b"):
        rows = compress("resnet8", DATA, load_accelerator(ACCELERATORS / "npu_32k.yaml"), ["program", "random"],
                        settings, tmp_path / name, Training(epochs=0.3))  # fmt: skip
        runs.append([replace(r, seconds={}) for r in rows])
    assert runs[0] == runs[1]
    assert len(runs[0]) == 6  # two steps of each
    model = Path("program") / "model.pt"
    assert (tmp_path / "a" / model).read_bytes() == (tmp_path / "b" / model).read_bytes()


def test_policies_on_a_dask_local_cluster_give_the_local_run(tmp_path):
    """compress --policy all --executor dask: each policy on a worker, the same rows in the
    same order as here, and the log written."""
    pytest.importorskip("distributed")
    from dse_milp.executors import Executor

    settings = Settings(step=0.34, finetune_epochs=0.1, max_drop=100, target_traffic=0.01, seed=3)
    runs = []
    for name, executor in (("here", None), ("dask", Executor("dask", workers=2))):
        rows = compress("resnet8", DATA, load_accelerator(ACCELERATORS / "npu_32k.yaml"), ["program", "random"],
                        settings, tmp_path / name, Training(epochs=0.3), executor=executor)  # fmt: skip
        runs.append([replace(r, seconds={}) for r in rows])
    assert runs[0] == runs[1] and len(runs[0]) == 6
    logged = json.loads((tmp_path / "dask" / "log.json").read_text(encoding="utf-8"))["rows"]
    assert [(r["policy"], r["iteration"]) for r in logged] == [(r.policy, r.iteration) for r in runs[1]]


def test_rescoring_a_baseline_equals_running_it_under_other_settings(tmp_path):
    start, data = prepare("small_vgg", DATA, Training(epochs=0.3), seed=0)
    here = Settings(step=0.34, finetune_epochs=0.1, max_drop=100, target_traffic=0.01)
    there = replace(here, fusion=4)
    npu_32k, fpga = load_accelerator(ACCELERATORS / "npu_32k.yaml"), load_accelerator(ACCELERATORS / "fpga.yaml")
    rows = run_policy("magnitude", start, data, npu_32k, here, tmp_path / "here")
    scored = rescore(rows, tmp_path / "here" / "magnitude", fpga, there)
    direct = run_policy("magnitude", start, data, fpga, there, tmp_path / "there")
    assert [replace(r, seconds={}) for r in scored] == [replace(r, seconds={}) for r in direct]
    assert scored[1].dram_bytes != rows[1].dram_bytes


def test_training_from_scratch_is_cached(tmp_path):
    torch.manual_seed(0)
    first, _ = load_model("small_vgg")
    torch.manual_seed(0)
    second, _ = load_model("small_vgg")
    recipe = Recipe(0.2, 2e-3)
    score, cached, seconds = trained(first, DATA, recipe, tmp_path, "small_vgg")
    again, cached_again, seconds_again = trained(second, DATA, recipe, tmp_path, "small_vgg")
    assert (cached, cached_again) == (False, True)
    assert score == again
    assert seconds_again == seconds > 0  # the time the training took, not the time loading it took
    weights = zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in weights)
    (entry,) = tmp_path.glob("small_vgg-*.pt")
    entry.write_bytes(b"damaged")
    torch.manual_seed(0)
    third, _ = load_model("small_vgg")
    assert trained(third, DATA, recipe, tmp_path, "small_vgg")[:2] == (score, False)  # trained again, same result


def test_a_run_starts_from_a_pruned_checkpoint(every_policy, tmp_path):
    args = ["compress", "resnet8", "--accelerator", "npu-32k", "--policy", "uniform", "--step", "0.5",
            "--checkpoint", str(every_policy / "program" / "model.pt"), *QUICK, "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == EXIT_OK
    rows = json.loads((tmp_path / "log.json").read_text(encoding="utf-8"))["rows"]
    program = json.loads((every_policy / "log.json").read_text(encoding="utf-8"))["rows"][1]
    assert rows[0]["widths"] == program["widths"]
    assert rows[0]["dram_bytes"] == program["dram_bytes"]


def one_line_error(capsys, args: list[str], needle: str) -> None:
    assert main(args) == EXIT_INPUT
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: ") and needle in line, line
    assert "Traceback" not in captured.out + captured.err


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    def run(*args: str) -> list[str]:
        return ["compress", "resnet8", "--accelerator", "npu-32k", *QUICK, "--out", str(tmp_path / "run"), *args]

    one_line_error(capsys, ["compress", "resnet9", "--accelerator", "npu-32k", *QUICK, "--out", str(tmp_path)],
                   "unknown model 'resnet9'")  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(capsys, [*run(), "--data", str(empty)], "apt-get install -y dataset-fashion-mnist")
    for bad in ("0", "1", "1.5", "nan", "half"):
        one_line_error(capsys, [*run(), "--target-traffic", bad], "--target-traffic: must be")
    one_line_error(capsys, ["compress", "tests.torch_models:recurrent", "--accelerator", "npu-32k", *QUICK,
                            "--out", str(tmp_path)], "unsupported op LSTM")  # fmt: skip
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    one_line_error(capsys, [*run(), "--checkpoint", str(garbage)], f"--checkpoint: {garbage}: cannot load")
    other = tmp_path / "other.pt"
    torch.save(load_model("small_vgg")[0].state_dict(), other)
    one_line_error(capsys, [*run(), "--checkpoint", str(other)], "does not fit the model")
    one_line_error(capsys, [*run(), "--accelerator", "npu-33k"], "neither a file nor a bundled accelerator")
    one_line_error(capsys, [*run(), "--step", "0"], "--step: must be in (0, 1)")


def test_the_python_example_of_the_docs_runs(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "COMPRESSION.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example.replace('"instances/', f'"{ROOT}/instances/'), "COMPRESSION.md", "exec"), namespace)
    assert [(r.policy, r.iteration) for r in namespace["rows"]] == [
        (p, i) for p in ("program", "uniform") for i in (0, 1)
    ]
    assert (tmp_path / "compress-run" / "pareto.png").is_file()


def test_a_buffer_too_small_is_found_before_training(tmp_path, capsys):
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text((ACCELERATORS / "npu_32k.yaml").read_text(encoding="utf-8").replace("32 KiB", "16 B"))
    args = ["compress", "resnet8", "--accelerator", str(tiny), "--data", "synthetic", "--epochs", "100",
            "--no-cache", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == EXIT_INFEASIBLE  # at once: 100 epochs would take minutes
    assert "fits no mapping" in capsys.readouterr().err


def test_ctrl_c_keeps_the_log(tmp_path, capsys, monkeypatch):
    import pruning.loop

    real = pruning.loop.fit
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pruning.loop, "fit", interrupted)
    args = ["compress", "small_vgg", "--accelerator", "npu-32k", "--step", "0.3", "--max-drop", "100", *QUICK,
            "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err and "interrupted" in captured.out
    rows = json.loads((tmp_path / "log.json").read_text(encoding="utf-8"))["rows"]
    assert [r["iteration"] for r in rows] == [0, 1]


def test_the_band_edge_is_interpolated_where_the_curve_leaves_the_band():
    def row(iteration: int, accuracy: float, ratio: float) -> Row:
        return Row("p", iteration, accuracy, 0, 0, ratio * 1000, ratio, None, None, "optimal", {}, {}, {})

    run = [row(0, 90.0, 1.0), row(1, 89.6, 0.8), row(2, 88.6, 0.6)]  # leaves 89.0 two fifths into the last step
    assert band_edge(run, 90.0, 1.0) == pytest.approx(0.8 - 0.6 * 0.2)
    assert band_edge(run[:2], 90.0, 1.0) == 0.8  # never leaves: its last ratio within
    assert band_edge([row(0, 90.0, 1.0), row(1, 85.0, 0.7)], 90.0, 1.0) == pytest.approx(1.0 - 0.2 * 0.3)
