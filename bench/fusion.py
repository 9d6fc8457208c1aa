"""Traffic with fusion against without, and how solving with fusion scales.

    python bench/fusion.py [--suite instances/suite.yaml] [--fusion 6] [--chain 10 100 1000]

First table: every suite instance solved layer by layer and with fused groups
of up to ``--fusion`` layers (HiGHS, one thread), with the traffic, its ratio
to the compulsory traffic, and the wall time of the fused solve (candidates,
build and solve, in-process). Second table: synthetic chains of 3x3
convolutions (16 channels, 32x32, on the 32 KiB NPU) of growing length, with the
time and the peak memory of the process.

Every accelerator counts bytes here (its DRAM burst set to 1, as ``--burst 1``): these are
the byte model's figures; bench/bursts.py has what the bursts move.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from dataclasses import replace
from pathlib import Path

from dse_milp.cli import BUNDLED_SUITE
from dse_milp.loader import load_accelerator, load_network, load_suite, parse_network
from dse_milp.solution import solve

ROOT = Path(__file__).resolve().parent.parent


def chain(length: int) -> dict:
    layers = [
        {"name": f"conv{i}", "kind": "conv2d", "in_channels": 16, "out_channels": 16, "kernel": 3, "padding": 1}
        for i in range(length)
    ]
    return {"name": f"chain{length}", "input": {"channels": 16, "height": 32, "width": 32}, "layers": layers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=BUNDLED_SUITE)
    parser.add_argument("--fusion", type=int, default=6)
    parser.add_argument("--chain", type=int, nargs="*", default=[10, 100, 1000])
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"HiGHS, fused groups of up to {args.fusion} layers\n")  # fmt: skip

    print("| instance | DRAM bytes alone | ratio | DRAM bytes fused | ratio | fused / alone | groups | fused s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for entry in load_suite(args.suite):
        network = load_network(entry.network)
        accelerator = replace(load_accelerator(entry.accelerator), burst_bytes=1)  # in bytes
        alone = solve(network, accelerator)
        start = time.perf_counter()
        fused = solve(network, accelerator, fusion=args.fusion)
        seconds = time.perf_counter() - start
        floor = alone.compulsory_bytes
        print(
            f"| {entry.name} | {alone.dram_bytes:,.0f} | {alone.dram_bytes / floor:.3f} | {fused.dram_bytes:,.0f} "
            f"| {fused.dram_bytes / floor:.3f} | {fused.dram_bytes / alone.dram_bytes:.3f} | {len(fused.groups)} "
            f"| {seconds:.2f} |"
        )

    accelerator = replace(load_accelerator(ROOT / "instances" / "accelerators" / "npu_32k.yaml"), burst_bytes=1)
    print("\n| chain length | fused groups chosen | DRAM bytes | status | candidates s | build s | solve s | total s "
          "| peak memory MiB |")  # fmt: skip
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for length in args.chain:
        network = parse_network(chain(length))
        start = time.perf_counter()
        s = solve(network, accelerator, fusion=args.fusion)
        total = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"| {length} | {len(s.groups)} | {s.dram_bytes:,.0f} | {s.result.status.value} "
            f"| {s.seconds['candidates']:.2f} | {s.seconds['build']:.2f} | {s.seconds['solve']:.2f} | {total:.2f} "
            f"| {peak:.0f} |"
        )


if __name__ == "__main__":
    main()
