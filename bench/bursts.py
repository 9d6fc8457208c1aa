"""What DRAM bursts do to the byte figures: the least-traffic designs counted in bursts.

    python bench/bursts.py [--burst 64] [--instances resnet50@npu-128k ...]

For each instance of the bundled suite (or those named), the program is solved with
HiGHS, no fusion, minimising DRAM bytes (the accelerator as bundled, one-byte
bursts); the chosen design's transfers are then counted in bursts of ``--burst``
bytes with every feature map in NCHW, NHWC and NCHW16c. Prints a Markdown table:
the bytes the design uses, and for each layout the bytes its bursts move and the
efficiency (used / moved): what a byte-optimal design costs in each layout, the
baseline of the burst-aware program (``solve --layout``).
"""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import replace
from pathlib import Path

from dse_milp.layouts import NCHW, NHWC, Layout
from dse_milp.loader import load_accelerator, load_network, load_suite
from dse_milp.solve import design_results, solve

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = (NCHW, NHWC, Layout("NCHW", 16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=64, help="burst in bytes (default 64)")
    parser.add_argument("--instances", nargs="*", help="suite instances (default: all)")
    args = parser.parse_args()
    suite = load_suite(ROOT / "instances" / "suite.yaml")
    entries = [entry for entry in suite if not args.instances or entry.name in args.instances]
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"bursts of {args.burst} bytes\n")  # fmt: skip
    header = " | ".join(f"{layout} moved (bytes) | {layout} eff." for layout in LAYOUTS)
    print(f"| instance | used (bytes) | {header} |")
    print("|---|---:|" + "---:|---:|" * len(LAYOUTS))
    for entry in entries:
        network = load_network(entry.network)
        plain = load_accelerator(entry.accelerator)
        solution = solve(network, plain, prices=False)
        bursty = replace(solution.accelerator, burst_bytes=args.burst)  # its split, if free, as chosen
        mappings = {r.layer.name: r.mapping for r in solution.layers if r.mapping is not None}
        cells = []
        used = solution.dram_bytes
        for layout in LAYOUTS:
            layers, _ = design_results(network, bursty, mappings, {}, layouts=layout)
            moved = sum(r.bursts.total for r in layers if r.bursts is not None) * args.burst
            cells.append(f"{moved:,.0f} | {100 * used / moved:.1f}%")
        print(f"| {entry.name} | {used:,.0f} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
