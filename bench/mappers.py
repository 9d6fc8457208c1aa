"""Per-layer mappers, run as their authors run them, against the program, layer by layer.

    python bench/mappers.py [INSTANCE ...] [--seeds 5] [--long 100] [--short 10] [--jobs 2]

For each suite instance, in bytes (every DRAM burst set to 1, as the searches score bytes):

- P, the program's in-process time from cold caches (candidates, build, solve; no shadow
  prices), the median of three runs;
- each search of ``dse_milp.mappers`` (Timeloop's random-pruned mapper, ZigZag's LOMA,
  simulated annealing, a genetic algorithm, random search), each in its authors' own tile
  space (divisors; LOMA: products of its loop prime factors) and in the complete integer
  space, one layer shape at a time, the budget shared equally among the shapes. Seed 0 runs
  for ``--long`` x P, the other seeds for ``--short`` x P (LOMA, deterministic, once). A
  search's best at any smaller budget is read from its curve: each shape's search is the same
  run, cut earlier.

Reported per search and space: the gap to the proven optimum at 1x, 10x and 100x P (median
over the seeds that ran that long), and the time to within 1% of the optimum (median over the
seeds; "> b" where a seed did not get there within its budget b).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from dse_milp.caches import clear_caches
from dse_milp.cli import BUNDLED_SUITE
from dse_milp.loader import load_accelerator, load_network, load_suite
from dse_milp.mappers import METHODS, SPACES, NetworkRun, map_layers
from dse_milp.solution import solve

DEFAULT = ("resnet50@npu-128k", "mobilenet_v2@npu-128k", "vgg16@npu-128k", "tiny_dscnn@npu-32k")
FACTORS = (1.0, 10.0, 100.0)


def load(name: str) -> tuple:
    entry = next(e for e in load_suite(BUNDLED_SUITE) if e.name == name)
    return load_network(entry.network), replace(load_accelerator(entry.accelerator), burst_bytes=1)


def program_seconds(name: str) -> tuple[float, float]:
    """(the program's optimum in bytes, its cold in-process time: median of three)."""
    network, accelerator = load(name)
    times, optimum = [], 0.0
    for _ in range(3):
        clear_caches()
        start = time.perf_counter()
        optimum = solve(network, accelerator, prices=False).dram_bytes
        times.append(time.perf_counter() - start)
    return optimum, statistics.median(times)


def one_run(name: str, method: str, space: str, seed: int, seconds: float) -> NetworkRun:
    network, accelerator = load(name)
    clear_caches()
    return map_layers(method, network, accelerator, space=space, seconds=seconds, seed=seed)


def within(run: NetworkRun, optimum: float, margin: float = 0.01) -> float | None:
    """The least total budget (seconds, shared equally among the shapes) at which the run is
    within ``margin`` of ``optimum``; None if it never is."""
    shapes = len(run.runs)
    for t in sorted({t for r in run.runs for t, _, _ in r.curve}):
        if run.cost_by(t) <= optimum * (1 + margin):
            return t * shapes
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="*", default=list(DEFAULT))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--long", type=float, default=100.0, help="seed 0's budget, in multiples of P")
    parser.add_argument("--short", type=float, default=10.0, help="the other seeds' budget, in multiples of P")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, in worker processes")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.jobs} run(s) at once\n")  # fmt: skip
    for name in args.instances:
        optimum, p = program_seconds(name)
        jobs = []
        for method in METHODS:
            for space in SPACES if method != "loma" else SPACES[:1]:
                for seed in range(args.seeds if method != "loma" else 1):
                    budget = (args.long if seed == 0 else args.short) * p
                    jobs.append((method, space, seed, budget))
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            runs = list(pool.map(one_run, *zip(*[(name, m, s, seed, b) for m, s, seed, b in jobs], strict=True)))
        print(f"### {name}: optimum {optimum:,.0f} bytes, program P = {p:.2f} s "
              f"(runs took {time.perf_counter() - started:.0f} s)\n")  # fmt: skip
        print("| search | space | gap at 1x P | 10x | 100x | time to within 1% | mappings scored per s |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for method in METHODS:
            for space in SPACES if method != "loma" else SPACES[:1]:
                mine = [(job, run) for job, run in zip(jobs, runs, strict=True) if job[:2] == (method, space)]
                cells = []
                for factor in FACTORS:
                    gaps = [run.cost_by(factor * p / len(run.runs)) / optimum - 1 for (_, _, _, budget), run in mine
                            if budget >= factor * p * (1 - 1e-9) or run.seconds < budget * 0.99]  # fmt: skip
                    cells.append(_percent(statistics.median(gaps)) if gaps else "-")
                reach = [within(run, optimum) for _, run in mine]
                times = sorted(math.inf if t is None else t for t in reach)
                middle = times[len(times) // 2]
                longest = max(budget for (_, _, _, budget), _ in mine)
                when = f"> {longest:.1f} s" if math.isinf(middle) else f"{middle:.2f} s ({middle / p:.1f}x)"
                rate = sum(run.evaluations for _, run in mine) / max(1e-9, sum(run.seconds for _, run in mine))
                print(f"| {method} | {space} | {' | '.join(cells)} | {when} | {rate:,.0f} |")
        print()


def _percent(gap: float) -> str:
    if math.isinf(gap):
        return "no design"
    return f"{100 * gap:.2f}%" if gap < 0.1 else f"{100 * gap:.0f}%"


if __name__ == "__main__":
    main()
