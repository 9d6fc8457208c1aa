"""Latency as the hardware runs it: what double buffering and a latency-aware choice are worth.

    python bench/latency.py [--instances resnet50@fpga mobilenet_v2@fpga ...]

For each instance of the bundled suite (or those named), as declared and with its
``double_buffering`` flipped, the program is solved with HiGHS and no fusion three
times: minimising DRAM traffic (``dram``: ties go to the fewest tiles), the latency
among the least-traffic designs (``dram,latency``), and the latency (``latency``,
ties to least traffic). Prints a Markdown table: the latency of each design, the
compute floor (every layer's MACs on every MAC unit, no transfers), the traffic of
the least-latency design against the least traffic, and the wall time of the latency
solve (candidates included). Without double buffering the latency is compute plus
transfers, so the two designs have the same latency; with it, the latency-aware
candidates trade traffic for transfers hidden under compute.

Every accelerator counts bytes here (its DRAM burst set to 1, as ``--burst 1``): these are
the byte model's figures; bench/bursts.py has what the bursts move.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

from dse_milp.cost import Objective
from dse_milp.errors import DseError
from dse_milp.loader import load_accelerator, load_network, load_suite
from dse_milp.solution import solve

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", nargs="*", help="suite instances (default: all)")
    args = parser.parse_args()
    suite = load_suite(ROOT / "instances" / "suite.yaml")
    entries = [entry for entry in suite if not args.instances or entry.name in args.instances]
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| instance | double buffering | `dram` (cycles) | `dram,latency` (cycles) | `latency` (cycles) "
          "| compute floor (cycles) | traffic of `latency` / least | seconds of `latency` |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for entry in entries:
        network = load_network(entry.network)
        declared = replace(load_accelerator(entry.accelerator), burst_bytes=1)  # in bytes
        for double in (declared.double_buffering, not declared.double_buffering):
            accelerator = replace(declared, double_buffering=double)
            try:
                traffic = solve(network, accelerator, Objective.DRAM, prices=False)
                second = solve(network, accelerator, (Objective.DRAM, Objective.LATENCY), prices=False)
                start = time.perf_counter()
                fast = solve(network, accelerator, Objective.LATENCY, prices=False)
                seconds = time.perf_counter() - start
            except DseError as error:  # a design that does not fit is a row, not a crash
                print(f"| {entry.name} | {double} | {type(error).__name__} | | | | | |", flush=True)
                continue
            floor = sum(math.ceil(layer.macs / accelerator.macs) for layer in network.layers)
            print(f"| {entry.name} | {'yes' if double else 'no'} | {traffic.latency_cycles:,.0f} "
                  f"| {second.latency_cycles:,.0f} | {fast.latency_cycles:,.0f} | {floor:,} "
                  f"| {fast.dram_bytes / traffic.dram_bytes:.4f} | {seconds:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
