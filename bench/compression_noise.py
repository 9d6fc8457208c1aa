"""How much a compression curve moves with the seed alone: the yardstick for comparing policies.

    python bench/compression_noise.py [--model resnet8] [--accelerator npu-32k] [--fusion 6]
                                      [--policies program uniform] [--seeds 0 1 2] [--out noise-results]

The same trained model (trained once with seed 0, cached), the same settings,
and only the seed of each step changed: it draws the Fisher batches, the
fine-tuning order and dropout (and random importance). Prints, for each policy
and step, the accuracy and the traffic of every seed, their spread, and where
each curve leaves the 1-point band (interpolated, as in bench/compression.py).

Every accelerator counts bytes here (its DRAM burst set to 1, as ``--burst 1``): these are
the byte model's figures; bench/bursts.py has what the bursts move.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from dataclasses import replace
from pathlib import Path

import torch

from dse_milp.cli import _accelerator_path
from dse_milp.loader import load_accelerator
from pruning.compress import Training, default_cache, prepare
from pruning.data import load_data
from pruning.loop import Settings, run_policy
from pruning.record import band_edge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--accelerator", default="npu-32k")
    parser.add_argument("--fusion", type=int, default=6)
    parser.add_argument("--policies", nargs="+", default=["program", "uniform"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--epochs", type=float, default=8)
    parser.add_argument("--out", type=Path, default=Path("noise-results"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    accelerator = replace(load_accelerator(_accelerator_path(args.accelerator)), burst_bytes=1)  # in bytes
    start, data = prepare(args.model, load_data(None), Training(epochs=args.epochs, cache=default_cache()), seed=0)
    base = Settings(fusion=args.fusion, max_drop=args.max_drop, target_traffic=0.01)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.model} ({start.accuracy:.2f}%) on {args.accelerator}, fusion {args.fusion}\n")  # fmt: skip
    print("| policy | seed | accuracy after each step | traffic ratio after each step | leaves the band at |")
    print("|---|---:|---|---|---:|")
    edges: dict[str, list[float]] = {}
    for policy in args.policies:
        for seed in args.seeds:
            rows = run_policy(policy, start, data, accelerator, replace(base, seed=seed), args.out / f"seed{seed}")
            edge = 1 - band_edge(rows, start.accuracy, args.max_drop)
            edges.setdefault(policy, []).append(edge)
            accuracies = ", ".join(f"{r.accuracy:.2f}" for r in rows[1:])
            ratios = ", ".join(f"{r.ratio:.3f}" for r in rows[1:])
            print(f"| {policy} | {seed} | {accuracies} | {ratios} | {100 * edge:.1f}% |", flush=True)
    print("\n| policy | band edge: mean | min | max | spread |")
    print("|---|---:|---:|---:|---:|")
    for policy, values in edges.items():
        print(f"| {policy} | {100 * statistics.mean(values):.1f}% | {100 * min(values):.1f}% | "
              f"{100 * max(values):.1f}% | {100 * (max(values) - min(values)):.1f} points |")  # fmt: skip


if __name__ == "__main__":
    main()
