"""Compression results: accuracy against DRAM traffic for every policy, model and accelerator setting.

    python bench/compression.py [--models resnet8 ds_cnn mobilenet_v1_025] [--accelerators npu-32k npu-128k]
                                [--fusion 6] [--step 0.1] [--max-drop 1] [--epochs 8] [--finetune-epochs 1]
                                [--out compression-results] [--figures docs/compression]

Every model is trained once on Fashion-MNIST (seeded, cached), then run under
every setting (each accelerator, layer by layer and with fused groups of up to
``--fusion`` layers) with every policy, until the accuracy falls more than
``--max-drop`` points below the start or the step schedule is spent. ``uniform``,
``magnitude`` and ``random`` choose their channels without the program, so each
runs once and its saved networks are solved under the other settings
(``pruning.loop.rescore``, which equals running it there; a test checks it);
``program`` and ``cost-rank`` run under each setting. Each run's files go under
``--out/MODEL/SETTING``; a policy whose rows are already in that
directory's log.json is not run again, so an interrupted run resumes where it
stopped (delete the directory to start over). One figure per model (accuracy against traffic, a panel
per setting) goes to ``--figures``; the Markdown tables of docs/COMPRESSION.md are
printed.

Every accelerator counts bytes here (its DRAM burst set to 1, as ``--burst 1``): these are
the byte model's figures; bench/bursts.py has what the bursts move.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import torch

from dse_milp.cli import _accelerator_path
from dse_milp.loader import load_accelerator
from dse_milp.report import pyplot
from pruning.compress import Training, default_cache, prepare
from pruning.data import load_data
from pruning.loop import Row, Settings, rescore, run_policy
from pruning.policies import POLICIES
from pruning.record import (
    band_edge,
    best_reductions,
    by_policy,
    final_iterations,
    plot_pareto,
    plot_widths,
    write_log,
)

INDEPENDENT = ("uniform", "magnitude", "random")
"""Policies whose choices do not depend on the program's settings."""


def setting_name(accelerator: str, fusion: int) -> str:
    return accelerator + (f"+fusion{fusion}" if fusion > 1 else "")


def figure(model: str, runs: dict[str, list[Row]], max_drop: float, path: Path) -> None:
    """One panel per setting: accuracy against DRAM bytes, a line per policy, the band marked."""
    plt = pyplot()

    columns = 2
    rows_ = (len(runs) + columns - 1) // columns
    fig, axes = plt.subplots(rows_, columns, figsize=(11, 4 * rows_), squeeze=False)
    for ax, (setting, rows) in zip(axes.flat, runs.items(), strict=False):
        start = rows[0]
        ax.axhspan(start.accuracy - max_drop, start.accuracy, color="tab:green", alpha=0.12)
        for policy, run in by_policy(rows).items():
            ax.plot([r.dram_bytes / 1024 for r in run], [r.accuracy for r in run], marker="o", markersize=3,
                    label=policy)  # fmt: skip
        ax.plot([start.dram_bytes / 1024], [start.accuracy], marker="*", markersize=12, color="black")
        ax.set_title(setting, fontsize=10)
        ax.set_xlabel("DRAM traffic (KiB)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(start.accuracy - 4 * max_drop, start.accuracy + 0.5 * max_drop)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(runs) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{model} on Fashion-MNIST: accuracy against DRAM traffic (green: within {max_drop:g} point)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet8", "ds_cnn", "mobilenet_v1_025"])
    parser.add_argument("--accelerators", nargs="+", default=["npu-32k", "npu-128k"])
    parser.add_argument("--fusion", type=int, default=6)
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--epochs", type=float, default=8)
    parser.add_argument("--finetune-epochs", type=float, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("compression-results"))
    parser.add_argument("--figures", type=Path, default=Path("docs/compression"))
    parser.add_argument("--report", action="store_true", help="print the tables from the logs under --out")
    args = parser.parse_args()
    if args.report:
        models, results = read_results(args)
        report(models, results, args)
        return
    torch.set_num_threads(2)
    data = load_data(None)
    settings_of = {
        setting_name(name, fusion): (replace(load_accelerator(_accelerator_path(name)), burst_bytes=1), fusion)
        for name in args.accelerators
        for fusion in (0, args.fusion)
    }
    base = Settings(step=args.step, max_drop=args.max_drop, finetune_epochs=args.finetune_epochs,
                    target_traffic=0.01, seed=args.seed)  # fmt: skip
    models, results = {}, {}
    for model in args.models:
        start, fitted = prepare(model, data, Training(epochs=args.epochs, cache=default_cache()), args.seed)
        models[model] = start
        training_seconds = None if math.isnan(start.seconds) else start.seconds
        runs: dict[str, list[Row]] = {setting: [] for setting in settings_of}
        done = {setting: by_policy(logged(args.out / model / setting)) for setting in settings_of}
        first = next(iter(settings_of))
        for policy in POLICIES:
            for setting, (accelerator, fusion) in settings_of.items():
                out = args.out / model / setting
                clock = time.perf_counter()
                if policy in done[setting]:
                    rows = done[setting][policy]
                elif policy in INDEPENDENT and setting != first:
                    ran = [r for r in runs[first] if r.policy == policy]
                    rows = rescore(ran, args.out / model / first / policy, accelerator, replace(base, fusion=fusion))
                else:
                    rows = run_policy(policy, start, fitted, accelerator, replace(base, fusion=fusion), out)
                runs[setting] += rows
                about = {"model": model, "setting": setting, "training_seconds": training_seconds}
                write_log(runs[setting], start.accuracy, out, about)
                print(f"{model} {setting} {policy}: {len(rows) - 1} steps, {time.perf_counter() - clock:.0f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
        for setting, rows in runs.items():
            out = args.out / model / setting
            plot_pareto(rows, start.accuracy, args.max_drop, f"{model} on {setting}", out / "pareto.png")
            plot_widths(rows, final_iterations(rows, start.accuracy, args.max_drop), f"{model} on {setting}",
                        out / "widths.png")  # fmt: skip
        figure(model, runs, args.max_drop, args.figures / f"{model}.png")
        results[model] = runs
    report(models, results, args)


def logged(out: Path) -> list[Row]:
    """The rows already in ``out/log.json`` (none when there is no log yet)."""
    path = out / "log.json"
    if not path.exists():
        return []
    fields = set(Row.__dataclass_fields__)
    log = json.loads(path.read_text(encoding="utf-8"))
    return [Row(**{k: v for k, v in r.items() if k in fields}) for r in log["rows"]]


def read_results(args: argparse.Namespace) -> tuple[dict, dict[str, dict[str, list[Row]]]]:
    """The starts and rows of a finished run, from its logs."""
    models, results = {}, {}
    for model in args.models:
        for accelerator in args.accelerators:
            for fusion in (0, args.fusion):
                setting = setting_name(accelerator, fusion)
                rows = logged(args.out / model / setting)
                if not rows:
                    continue
                log = json.loads((args.out / model / setting / "log.json").read_text(encoding="utf-8"))
                results.setdefault(model, {})[setting] = rows
                models[model] = SimpleNamespace(accuracy=rows[0].accuracy, seconds=log["run"].get("training_seconds"))
    return models, results


def table(
    results: dict[str, dict[str, list[Row]]], columns: list[str], cells: Callable[[list[Row]], list[str]]
) -> None:
    """A Markdown table with a line per model and setting, ``cells`` giving the rest of the line."""
    print("| model | setting | " + " | ".join(columns) + " |")
    print("|---|---|" + "---:|" * len(columns))
    for model, runs in results.items():
        for setting, rows in runs.items():
            print(f"| {model} | {setting} | " + " | ".join(cells(rows)) + " |")


def report(models: dict, results: dict[str, dict[str, list[Row]]], args: argparse.Namespace) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__} (2 threads); step {args.step:g}, {args.finetune_epochs:g} epoch(s) of "
          f"fine-tuning per step, fusion up to {args.fusion} layers\n")  # fmt: skip
    print("| model | parameters | MACs | accuracy after training |")
    print("|---|---:|---:|---:|")
    for model, start in models.items():
        first = next(iter(results[model].values()))[0]
        print(f"| {model} | {first.parameters:,} | {first.macs:,} | {start.accuracy:.2f}% |")

    print(f"\nLeast DRAM traffic within {args.max_drop:g} point of the starting accuracy, as a reduction "
          "(accuracy there); the last columns: bytes removed by program over those removed by uniform and by "
          "magnitude.\n")  # fmt: skip

    def versus(removed: dict[str, float]) -> list[str]:
        """Bytes removed by program over those removed by uniform and by magnitude."""
        return [
            f"{removed['program'] / removed[p]:.2f}" if removed.get(p) and "program" in removed else "-"
            for p in ("uniform", "magnitude")
        ]

    def reductions(rows: list[Row]) -> list[str]:
        best = best_reductions(rows, args.max_drop)
        removed = {p: rows[0].dram_bytes - r.dram_bytes for p, r in best.items()}
        cells = [f"{100 * (1 - best[p].ratio):.1f}% ({best[p].accuracy:.2f})" if p in best else "-" for p in POLICIES]
        return [f"{rows[0].dram_bytes:,.0f}", *cells, *versus(removed)]

    table(results, ["start bytes", *POLICIES, "program ÷ uniform", "program ÷ magnitude"], reductions)

    print("\nThe same iterations: parameters and MACs.\n")

    def sizes(rows: list[Row]) -> list[str]:
        best = best_reductions(rows, args.max_drop)
        return [f"{best[p].parameters:,} / {best[p].macs / 1e6:.2f}M" if p in best else "-" for p in POLICIES]

    table(results, list(POLICIES), sizes)

    print(f"\nWhere each curve leaves the band: the traffic reduction interpolated between the last step within "
          f"{args.max_drop:g} point and the first below (the less quantised figure), and program over uniform and "
          "magnitude by it.\n")  # fmt: skip

    def edges(rows: list[Row]) -> list[str]:
        cut = {p: 1 - band_edge(run, rows[0].accuracy, args.max_drop) for p, run in by_policy(rows).items()}
        return [*(f"{100 * cut[p]:.1f}%" if p in cut else "-" for p in POLICIES), *versus(cut)]

    table(results, [*POLICIES, "program ÷ uniform", "program ÷ magnitude"], edges)

    print("\nPredicted against re-solved saving of every step: median and largest |predicted - actual| / actual.\n")

    def errors(rows: list[Row]) -> list[str]:
        cells = []
        for policy in POLICIES:
            errors = [abs(r.predicted_saved - r.actual_saved) / r.actual_saved for r in rows
                      if r.policy == policy and r.iteration and r.predicted_saved and r.actual_saved]  # fmt: skip
            cells.append(f"{100 * statistics.median(errors):.1f}% / {100 * max(errors):.1f}%" if errors else "-")
        return cells

    table(results, list(POLICIES), errors)

    print("\nTime per iteration (median seconds): fine-tuning, importance, and the program's part (solve, marginal "
          "re-solves, policy with its knapsack); the loop's whole time for the run (training from scratch "
          "excluded; the baselines that choose without the program ran once, under the first setting).\n")  # fmt: skip
    print("| model | setting | policy | steps | fine-tune | importance | program | program share | run s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for model, runs in results.items():
        for setting, rows in runs.items():
            for policy, run in by_policy(rows).items():
                steps = [r.seconds for r in run if r.iteration]
                if not any("finetune" in s for s in steps):
                    continue  # solved again here, run elsewhere
                tune = statistics.median(s.get("finetune", 0) for s in steps)
                imp = statistics.median(s.get("importance", 0) for s in steps)
                own = statistics.median(s.get("solve", 0) + s.get("marginals", 0) + s.get("policy", 0) for s in steps)
                whole = sum(sum(r.seconds.values()) for r in run)
                print(f"| {model} | {setting} | {policy} | {len(steps)} | {tune:.1f} | {imp:.1f} | {own:.2f} | "
                      f"{100 * own / (tune + imp + own):.1f}% | {whole:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
