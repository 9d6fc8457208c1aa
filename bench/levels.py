"""What per-operand levels save against one resident tile per operand, at the same capacity.

    python bench/levels.py [--extra npu_4k]

For every instance of the bundled suite, and for every MLPerf Tiny and Fashion-MNIST
model on each accelerator named with ``--extra`` (small buffers, where blocks matter most), the
program is solved twice with HiGHS and no fusion: with ``levels: innermost`` (one
tile of each operand resident, the mapping space of older versions) and with
per-operand levels (the default). Prints a Markdown table: DRAM bytes of both, what
the levels save, the ratio to the compulsory traffic, and the wall time of each
solve (candidates included).

Every accelerator counts bytes here (its DRAM burst set to 1, as ``--burst 1``): these are
the byte model's figures; bench/bursts.py has what the bursts move.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

from dse_milp.loader import SuiteEntry, load_accelerator, load_network, load_suite
from dse_milp.solution import solve

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["tiny_resnet8", "tiny_mobilenet_v1_025", "tiny_dscnn", "tiny_fc_autoencoder",
         "fmnist_resnet8", "fmnist_mobilenet_v1_025", "fmnist_dscnn", "fmnist_small_vgg"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", nargs="*", default=["npu_4k"], help="accelerators for the small models")
    args = parser.parse_args()
    entries = list(load_suite(ROOT / "instances" / "suite.yaml"))
    for acc in args.extra:
        for net in SMALL:
            path = ROOT / "instances"
            entries.append(SuiteEntry(f"{net}@{acc}", path / "networks" / f"{net}.yaml",
                                      path / "accelerators" / f"{acc}.yaml"))  # fmt: skip
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| instance | one tile per operand (bytes) | per-operand levels (bytes) | saved "
          "| / compulsory, before -> after | seconds, before -> after |")  # fmt: skip
    print("|---|---:|---:|---:|---|---|")
    for entry in entries:
        network = load_network(entry.network)
        accelerator = replace(load_accelerator(entry.accelerator), burst_bytes=1)  # in bytes
        start = time.perf_counter()
        before = solve(network, replace(accelerator, operand_levels=False), prices=False)
        middle = time.perf_counter()
        after = solve(network, replace(accelerator, operand_levels=True), prices=False)
        end = time.perf_counter()
        floor = before.compulsory_bytes
        saved = 1 - after.dram_bytes / before.dram_bytes
        print(f"| {entry.name} | {before.dram_bytes:,.0f} | {after.dram_bytes:,.0f} | {100 * saved:.2f}% "
              f"| {before.dram_bytes / floor:.3f} -> {after.dram_bytes / floor:.3f} "
              f"| {middle - start:.2f} -> {end - middle:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
