"""What DRAM bursts do to the byte figures: the least-traffic designs counted in bursts,
against the burst-aware program.

    python bench/bursts.py [--burst 64] [--instances resnet50@npu-128k ...]

For each instance of the bundled suite (or those named), the program is solved with
HiGHS, no fusion, minimising DRAM bytes with one-byte bursts (the byte model, whatever
burst the accelerator declares); the chosen design's transfers are then counted in
bursts of ``--burst`` bytes with every feature map in NCHW, NHWC and NCHW16c. Then the
program is solved with those bursts, choosing each feature map's layout
(``--layout auto``). Prints a Markdown table: the bytes the byte-optimal design uses,
for each layout the bytes its bursts move and the efficiency (used / moved), and what
the burst-aware program moves, its efficiency, its gain over the best fixed layout, the
layouts it chose and its time (candidates, build, solve; no prices)."""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from dse_milp.layouts import NCHW, NHWC, Layout
from dse_milp.loader import load_accelerator, load_network, load_suite
from dse_milp.solution import design_results, solve

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
    print(f"| instance | used (bytes) | {header} | burst-aware moved (bytes) | eff. | gain | layouts | s |")
    print("|---|---:|" + "---:|---:|" * len(LAYOUTS) + "---:|---:|---:|---|---:|")
    for entry in entries:
        network = load_network(entry.network)
        plain = replace(load_accelerator(entry.accelerator), burst_bytes=1)
        solution = solve(network, plain, prices=False)
        bursty = replace(solution.accelerator, burst_bytes=args.burst)  # its split, if free, as chosen
        mappings = {r.layer.name: r.mapping for r in solution.layers if r.mapping is not None}
        cells = []
        used = solution.dram_bytes
        fixed = []
        for layout in LAYOUTS:
            layers, _ = design_results(network, bursty, mappings, {}, layouts=layout)
            moved = sum(r.bursts.total for r in layers if r.bursts is not None) * args.burst
            fixed.append(moved)
            cells.append(f"{moved:,.0f} | {100 * used / moved:.1f}%")
        start = time.perf_counter()
        aware = solve(network, replace(plain, burst_bytes=args.burst), prices=False)
        seconds = time.perf_counter() - start
        moved = aware.moved_bytes
        chosen = Counter(str(layout) for layout in aware.layouts.values())
        names = ", ".join(f"{count} {name}" for name, count in sorted(chosen.items()))
        cells.append(f"{moved:,.0f} | {100 * aware.dram_bytes / moved:.1f}% | {100 * (moved / min(fixed) - 1):+.1f}% "
                     f"| {names} | {seconds:.1f}")  # fmt: skip
        print(f"| {entry.name} | {used:,.0f} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
