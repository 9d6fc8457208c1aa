"""How long a compression run takes, step by step.

    python bench/compress_speed.py [--model resnet8] [--accelerator npu-32k] [--iterations 5]
                                   [--finetune-epochs 1] [--epochs 8] [--policy program] [--fusion 0]

Runs ``python -m dse_milp compress`` as a user would, in a fresh process, from
scratch (no cache of trained models) on Fashion-MNIST, with ``--max-drop`` and
``--target-traffic`` out of the way so that it takes all ``--iterations`` steps.
Prints the wall time of the whole command, then per iteration the time of each
step of the loop (the program's solve, the marginal re-solves, the importance
estimate, the policy with its knapsack, and fine-tuning), read from the run's
``log.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = ("solve", "marginals", "importance", "policy", "finetune")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--accelerator", default="npu-32k")
    parser.add_argument("--policy", default="program")
    parser.add_argument("--fusion", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--epochs", type=float, default=8)
    parser.add_argument("--finetune-epochs", type=float, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        command = [
            sys.executable, "-m", "dse_milp", "compress", args.model, "--accelerator", args.accelerator,
            "--policy", args.policy, *(["--fusion", str(args.fusion)] if args.fusion > 1 else []),
            "--iterations", str(args.iterations),
            "--epochs", str(args.epochs), "--finetune-epochs", str(args.finetune_epochs), "--no-cache",
            "--max-drop", "100", "--target-traffic", "0.01", "--out", str(out),
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        log = json.loads((out / "log.json").read_text(encoding="utf-8"))
    run, rows = log["run"], log["rows"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {run['torch']} ({run['threads']} threads)")  # fmt: skip
    print(f"{args.model} on {args.accelerator}, policy {args.policy}, fusion {args.fusion}, "
          f"{args.epochs:g} epochs from scratch, {args.finetune_epochs:g} of fine-tuning per step\n")  # fmt: skip
    print("| iteration | accuracy | DRAM bytes | " + " | ".join(f"{s} s" for s in STEPS) + " | total s |")
    print("|---:|---:|---:|" + "---:|" * (len(STEPS) + 1))
    for row in rows:
        seconds = row["seconds"]
        cells = " | ".join(f"{seconds.get(s, 0.0):.2f}" for s in STEPS)
        print(f"| {row['iteration']} | {row['accuracy']:.2f}% | {row['dram_bytes']:,} | {cells} | "
              f"{sum(seconds.values()):.1f} |")  # fmt: skip
    loop = sum(sum(r["seconds"].values()) for r in rows)
    program = sum(sum(v for k, v in r["seconds"].items() if k in ("solve", "marginals", "policy")) for r in rows)
    print(f"\ntraining from scratch {run['training_seconds']:.1f} s; the loop {loop:.1f} s, of which the program "
          f"(solves, marginals, knapsack) {program:.1f} s ({100 * program / loop:.1f}%); whole command {wall:.1f} s "
          f"({wall / 60:.1f} min)")  # fmt: skip


if __name__ == "__main__":
    main()
