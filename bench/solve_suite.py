"""Time `solve` on every instance of a suite and print a Markdown table.

    python bench/solve_suite.py [--suite instances/suite.yaml] [--solver highs] [--repeat 3]

Each instance is solved in this process, ``--repeat`` times, each time with cold
caches. The table shows the DRAM bytes and, where the accelerator declares a burst,
the bytes its whole bursts move; and the fastest run of each step (candidate
generation, model build, solve) and their sum, so interpreter start-up and imports
are not counted (run `time python -m dse_milp solve NAME`, or see the second table,
for the end-to-end figure).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from dse_milp.caches import clear_caches
from dse_milp.cli import BUNDLED_SUITE
from dse_milp.loader import load_accelerator, load_network, load_suite
from dse_milp.solution import solve
from dse_milp.solvers import SolverOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=BUNDLED_SUITE)
    parser.add_argument("--solver", default="highs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--end-to-end", nargs="*", default=["resnet50@npu-128k", "mobilenet_v2@npu-128k"], metavar="NAME",
        help="suite entries also timed as whole command-line runs",
    )  # fmt: skip
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, solver {args.solver}, best of {args.repeat}\n")  # fmt: skip
    print("| instance | layers | binaries | status | DRAM bytes | compulsory | ratio | burst | moved bytes "
          "| candidates s | build s | solve s | total s |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    started = time.perf_counter()
    for entry in load_suite(args.suite):
        network, accelerator = load_network(entry.network), load_accelerator(entry.accelerator)
        runs = []
        for _ in range(args.repeat):
            clear_caches()  # every run starts cold, as a fresh `python -m dse_milp solve` does
            runs.append(solve(network, accelerator, solver=args.solver, options=SolverOptions(), prices=False))
        best = {step: min(run.seconds[step] for run in runs) for step in ("candidates", "build", "solve")}
        s = runs[0]
        binaries = sum(r.candidates for r in s.layers)
        print(
            f"| {entry.name} | {len(s.layers)} | {binaries} | {s.result.status.value} | {s.dram_bytes:,.0f} "
            f"| {s.compulsory_bytes:,.0f} | {s.dram_bytes / s.compulsory_bytes:.3f} | {accelerator.burst_bytes} B "
            f"| {'-' if s.moved_bytes is None else f'{s.moved_bytes:,.0f}'} | {best['candidates']:.2f} "
            f"| {best['build']:.2f} | {best['solve']:.2f} | {sum(best.values()):.2f} |"
        )
    print(f"\nwhole suite: {time.perf_counter() - started:.1f} s")

    print("\nEnd to end, `python -m dse_milp solve NAME --quiet` in a fresh process (best of the runs):\n")
    print("| instance | wall s |")
    print("|---|---:|")
    for name in args.end_to_end:
        walls = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            command = [sys.executable, "-m", "dse_milp", "solve", name, "--suite", str(args.suite), "--quiet"]
            subprocess.run(command, check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
        print(f"| {name} | {min(walls):.2f} |")


if __name__ == "__main__":
    main()
