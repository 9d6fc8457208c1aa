"""The benchmark harness: the program against heuristic search and fixed dataflows.

For each suite instance:

- the program, with HiGHS and with OR-Tools (SCIP): time, status, objective, bound;
- each heuristic search with a time budget equal to the program's wall time, and with ten
  times that: traffic, gap to the proven optimum, evaluations, and its best-so-far curve.
  Layer by layer (no fusion, fixed buffers) these are the per-layer mappers of
  ``dse_milp.mappers``, each layer searched on its own in its authors' tile space, as they
  run (the budget shared equally among the layer shapes); with fusion, the joint searches
  of ``dse_milp.heuristics`` over the whole design and, with fixed buffers, the same
  algorithms decomposed per unit, then over the boundaries (``dse_milp.mappers.fused``);
  under a free split (``instances/suite_split.yaml``), also an outer search over the
  complete splits with those searches inside (``dse_milp.mappers.split``);
- an exhaustive search, where the instance is small enough (every tiling,
  order and operand levels of every layer; without fusion the optimum is the sum of the layers');
- fixed-dataflow baselines: one stationary loop order for every layer, with the
  best tiles for it; and, with fusion, no fusion. The reduction the optimum gives
  over each is reported, as SuperSlash reports its reduction.

Every accelerator counts bytes here (its DRAM burst set to 1, as ``--burst 1``): the
heuristics search bytes, so the comparison is in bytes; bench/bursts.py has the bursts.
"""

from __future__ import annotations

import csv
import functools
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dse_milp.caches import clear_caches
from dse_milp.candidates import STATIONARY_ORDERS, least_traffic_for_order
from dse_milp.executors import Executor
from dse_milp.heuristics import METHODS, search
from dse_milp.loader import SuiteEntry, load_accelerator, load_network
from dse_milp.mappers import METHODS as MAPPERS
from dse_milp.mappers import map_layers
from dse_milp.mappers.fused import METHODS as FUSED_METHODS
from dse_milp.mappers.fused import map_fused
from dse_milp.mappers.split import METHODS as SPLIT_METHODS
from dse_milp.mappers.split import map_split
from dse_milp.report import json_text, plot_text, pyplot
from dse_milp.solution import solve
from dse_milp.traffic import LOOPS, ORDERS, Levels, Mapping, Tiling, footprint, traffic
from dse_milp.workload import Operand

EXHAUSTIVE_LIMIT = 200_000
"""Most (tiling, order) pairs, each with every level assignment, summed over the layers for the
exhaustive baseline."""
ORDER_NAMES = dict(zip(STATIONARY_ORDERS, ("weight-stationary", "output-stationary", "input-stationary"), strict=True))


@dataclass(frozen=True)
class BenchSettings:
    fusion: int = 0
    peers: tuple[str, ...] = ()
    """Peer mappers run on every layer shape beside the program (``dse_milp.peers``): ``zigzag``."""
    factors: tuple[float, ...] = (1.0, 10.0)
    """Heuristic time budgets, as multiples of the program's wall time."""
    least_seconds: float = 0.2
    """No heuristic budget is shorter than this."""
    most_seconds: float = 120.0
    """No heuristic budget is longer than this."""
    seed: int = 0


QUICK = ("tiny_dscnn@npu-32k", "tiny_resnet8@npu-32k")
"""The instances of ``bench --quick``."""


def exhaustive(network: Any, accelerator: Any) -> float | None:
    """The least DRAM bytes over every tiling, order and level of each operand of every layer
    (no fusion), or None if the space exceeds EXHAUSTIVE_LIMIT.

    Each operand's traffic and block depend only on its own level (tests/test_levels.py), so
    for each tiling and order the 125 level assignments are sums of five evaluations per operand.
    """
    sizes = [math.prod(layer.dims.values()) * len(ORDERS) for layer in network.layers]
    if sum(sizes) > EXHAUSTIVE_LIMIT or accelerator.split is not None:
        return None
    levels = range(len(LOOPS) + 1) if accelerator.operand_levels else [len(LOOPS)]
    fields = {Operand.INPUT: ("input_read",), Operand.WEIGHT: ("weight_read",),
              Operand.OUTPUT: ("output_write", "psum_read", "psum_write")}  # fmt: skip
    spread = {Operand.INPUT: np.s_[:, None, None], Operand.WEIGHT: np.s_[None, :, None],
              Operand.OUTPUT: np.s_[None, None, :]}  # fmt: skip
    total = 0.0
    for layer in network.layers:
        best = math.inf
        for dims in _tilings(layer.dims):
            for order in ORDERS:
                mappings = [Mapping(Tiling(*dims), order, Levels(x, x, x)) for x in levels]
                moved = [traffic(layer, m) for m in mappings]
                held = [footprint(layer, m, accelerator.double_buffering, accelerator.accumulate_in_buffer)
                        for m in mappings]  # fmt: skip
                bits = {op: np.array([sum(getattr(t, f) for f in fields[op]) for t in moved]) for op in Operand}
                block = {op: np.array([h[op] for h in held]) for op in Operand}
                fits = np.ones((len(levels),) * 3, dtype=bool)
                for b in accelerator.buffers:
                    fits &= sum(block[op][spread[op]] for op in b.operands) <= 8 * b.capacity_bytes
                if fits.any():
                    combined = sum(bits[op][spread[op]] for op in Operand)
                    best = min(best, int(np.broadcast_to(combined, fits.shape)[fits].min()))
        if best == math.inf:
            return None
        total += best / 8
    return total


def _tilings(dims: dict[str, int]) -> itertools.product:
    return itertools.product(*(range(1, extent + 1) for extent in dims.values()))


def run_instance(entry: SuiteEntry, settings: BenchSettings) -> dict[str, Any]:
    """Every run of one instance; a plain dict, so that worker processes can return it."""
    network = load_network(entry.network)
    # the heuristics search bytes: the comparison counts bytes, whatever burst is declared
    accelerator = replace(load_accelerator(entry.accelerator), burst_bytes=1)
    record: dict[str, Any] = {"instance": entry.name, "program": [], "heuristics": [], "baselines": []}
    clear_caches()  # each program's time starts cold, candidates included, as a fresh command's does
    start = time.perf_counter()
    optimum = solve(network, accelerator, fusion=settings.fusion, prices=False)
    wall = time.perf_counter() - start
    best = optimum.dram_bytes
    record["optimum"] = best
    record["compulsory"] = optimum.compulsory_bytes
    for solver, s, seconds in (("highs", optimum, wall), ("ortools-scip", None, 0.0)):
        if s is None:
            clear_caches()
            start = time.perf_counter()
            s = solve(network, accelerator, solver=solver, fusion=settings.fusion, prices=False)
            seconds = time.perf_counter() - start
        r = s.result
        record["program"].append(
            {
                "solver": solver,
                "seconds": seconds,
                "status": r.status.value,
                "dram_bytes": s.dram_bytes,
                "bound": r.bound,
            }
        )
    per_layer = settings.fusion <= 1 and accelerator.split is None
    searches = [(m, "per layer, own space") for m in MAPPERS] if per_layer else [(m, "joint") for m in METHODS]
    if settings.fusion > 1 and accelerator.split is None:
        searches += [(m, "per unit, then boundaries") for m in FUSED_METHODS]
    if accelerator.split is not None:
        searches += [(m, "per split") for m in SPLIT_METHODS]
    for factor in settings.factors:
        budget = min(settings.most_seconds, max(settings.least_seconds, factor * wall))
        for method, kind in searches:
            clear_caches()
            if kind == "per layer, own space":
                run = map_layers(method, network, accelerator, seconds=budget, seed=settings.seed)
                found = math.isfinite(run.cost)
                value, evaluations, curve = run.cost, run.evaluations, run.curve()
            elif kind == "per unit, then boundaries":
                fused = map_fused(method, network, accelerator, fusion=settings.fusion, seconds=budget,
                                  seed=settings.seed)  # fmt: skip
                found, value, evaluations, curve = (math.isfinite(fused.cost), fused.cost, fused.evaluations,
                                                    list(fused.curve))  # fmt: skip
            elif kind == "per split":
                split = map_split(method, network, accelerator, fusion=settings.fusion, seconds=budget,
                                  seed=settings.seed)  # fmt: skip
                found, value, evaluations, curve = (math.isfinite(split.cost), split.cost, split.evaluations,
                                                    list(split.curve))  # fmt: skip
            else:
                joint = search(method, network, accelerator, fusion=settings.fusion, evaluations=10**9,
                               seconds=budget, seed=settings.seed)  # fmt: skip
                found, value, evaluations, curve = joint.design is not None, joint.cost, joint.evaluations, joint.curve
            record["heuristics"].append(
                {
                    "method": method, "budget_factor": factor, "budget_seconds": budget,
                    "search": kind,
                    "dram_bytes": value if found else None, "gap": value / best - 1 if found else None,
                    "evaluations": evaluations, "curve": curve,
                }
            )  # fmt: skip
    for order in STATIONARY_ORDERS:
        values = [least_traffic_for_order(layer, accelerator, order) for layer in network.layers]
        value = None if None in values else sum(values) / 8  # type: ignore[arg-type]
        record["baselines"].append({"baseline": f"{ORDER_NAMES[order]} ({order}) everywhere", "dram_bytes": value})
    if settings.fusion > 1:
        alone = solve(network, accelerator, prices=False).dram_bytes
        record["baselines"].append({"baseline": "no fusion", "dram_bytes": alone})
    record["exhaustive"] = exhaustive(network, accelerator) if settings.fusion <= 1 else None
    record["program_wall_seconds"] = wall
    if "zigzag" in settings.peers:
        from dse_milp.peers.compare import compare_zigzag

        record["peers"] = [compare_zigzag(network, accelerator)]
    return record


def run_bench(
    entries: Sequence[SuiteEntry],
    settings: BenchSettings,
    jobs: int = 1,
    advance: Callable[[], None] = lambda: None,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Every instance, on ``executor`` (``jobs`` local worker processes by default); results in
    suite order. After Ctrl-C (see ``dse_milp.stopping``) it returns the instances finished
    before it, fewer than ``entries``: an instance running at that moment is left out, as its
    budgets were cut short."""
    return (executor or Executor(jobs=jobs)).run(functools.partial(run_instance, settings=settings), entries, advance)


def markdown(records: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| instance | program (HiGHS) | s | OR-Tools s | heuristic | search | budget | DRAM bytes | gap "
        "| evaluations |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for rec in records:
        highs, scip = rec["program"]
        for h in rec["heuristics"]:
            gap = "-" if h["gap"] is None else f"{100 * h['gap']:.1f}%"
            value = "-" if h["dram_bytes"] is None else f"{h['dram_bytes']:,.0f}"
            lines.append(
                f"| {rec['instance']} | {highs['dram_bytes']:,.0f} ({highs['status']}) | {highs['seconds']:.2f} "
                f"| {scip['seconds']:.2f} | {h['method']} | {h['search']} "
                f"| {h['budget_factor']:g}x ({h['budget_seconds']:.2f} s) "
                f"| {value} | {gap} | {h['evaluations']:,} |"
            )
    lines += ["", "| instance | baseline | DRAM bytes | optimum's reduction |", "|---|---|---:|---:|"]
    for rec in records:
        for b in rec["baselines"]:
            value = b["dram_bytes"]
            cells = "infeasible | -" if value is None else f"{value:,.0f} | {value / rec['optimum']:.3f}x"
            lines.append(f"| {rec['instance']} | {b['baseline']} | {cells} |")
        if rec["exhaustive"] is not None:
            lines.append(f"| {rec['instance']} | exhaustive search | {rec['exhaustive']:,.0f} | (equal: a check) |")
    return "\n".join(lines + peers(records)) + "\n"


def peers(records: Sequence[dict[str, Any]]) -> list[str]:
    """The peers' table (``dse_milp.peers.compare``), and a loud line for every layer where a
    peer's mapping moves less in our own model than the program's least: a hole in our space."""
    runs = [(rec["instance"], p) for rec in records for p in rec.get("peers", [])]
    if not runs:
        return []
    lines = ["", "| instance | peer | its DRAM bytes (its model) | program's least | its / program | same layers "
             "in our model: it | program | layers scored (not fitting ours) | its s | not representable |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    loud = []
    for instance, p in runs:
        if "skipped" in p:
            lines.append(f"| {instance} | {p['peer']} | skipped: {p['skipped']} | | | | | | | |")
            continue
        total = sum(len(r["layers"]) for r in p["layers"])
        odd = "; ".join(f"{r['layers'][0]}: {r['not_representable']}" for r in p["layers"] if r["not_representable"])
        lines.append(
            f"| {instance} | {p['peer']} ({p['criterion']}, lpf_limit {p['lpf_limit']}) | {p['zigzag_bytes']:,.0f} "
            f"| {p['program_least_bytes']:,.0f} | {p['zigzag_bytes'] / p['program_least_bytes']:.3f} "
            f"| {p['zigzag_in_our_model_bytes']:,.0f} | {p['program_least_representable_bytes']:,.0f} "
            f"| {p['representable_layers']} of {total} ({p['not_fitting_layers']}) | {p['zigzag_seconds']:.1f} "
            f"| {odd or '-'} |"
        )
        loud += [f"**{p['peer']} beats the program's least traffic on {instance}, layer {name}, in our own "
                 "model: a hole in the program's mapping space.**" for name in p["beats_program"]]  # fmt: skip
    return lines + (["", *loud] if loud else [])


def summary(records: Sequence[dict[str, Any]]) -> str:
    """The gaps of each search at each budget over all instances (median, best, worst, how many
    within 1%, how many without a design), then one row per instance: the tables of
    docs/BENCHMARKS.md."""
    searches = list(dict.fromkeys((h["method"], h["search"]) for rec in records for h in rec["heuristics"]))
    factors = sorted({h["budget_factor"] for rec in records for h in rec["heuristics"]})
    lines = ["| search | budget | median gap | best gap | worst gap | instances within 1% | no design found |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for factor in factors:
        for method, kind in searches:
            runs = [h for rec in records for h in rec["heuristics"]
                    if (h["method"], h["search"], h["budget_factor"]) == (method, kind, factor)]  # fmt: skip
            gaps = sorted(h["gap"] for h in runs if h["gap"] is not None)
            cells = [_gap(gaps[len(gaps) // 2]), _gap(gaps[0]), _gap(gaps[-1])] if gaps else ["-"] * 3
            near = sum(1 for g in gaps if g <= 0.01)
            lines.append(f"| {method} ({kind}) | {factor:g}x | {' | '.join(cells)} | {near} of {len(runs)} "
                         f"| {len(runs) - len(gaps)} |")  # fmt: skip
    head = " | ".join(f"{method} ({kind}) {' / '.join(f'{f:g}x' for f in factors)}" for method, kind in searches)
    lines += ["", f"| instance | optimum (bytes) | HiGHS s | OR-Tools s | {head} |",
              "|---|---:|---:|---:|" + "---:|" * len(searches)]  # fmt: skip
    for rec in records:
        highs, scip = rec["program"]
        cells = []
        for method, kind in searches:
            mine = [h for h in rec["heuristics"] if (h["method"], h["search"]) == (method, kind)]
            by = {h["budget_factor"]: h["gap"] for h in mine}
            cells.append(" / ".join("-" if by.get(f) is None else _gap(by[f]) for f in factors))
        lines.append(f"| {rec['instance']} | {rec['optimum']:,.0f} | {highs['seconds']:.2f} | {scip['seconds']:.2f} "
                     f"| {' | '.join(cells)} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _gap(gap: float) -> str:
    return f"{100 * gap:.1f}%" if gap < 0.1 else f"{100 * gap:.0f}%"


def write(records: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """results.json, results.csv, results.md and one convergence plot per instance, under ``out``."""
    plt = pyplot()

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "results.csv", out / "results.md"]
    written[0].write_text(json_text(list(records)), encoding="utf-8")
    with written[1].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["instance", "kind", "name", "budget_factor", "seconds", "status", "dram_bytes", "gap", "evaluations"]
        )
        for rec in records:
            for p in rec["program"]:
                w.writerow([rec["instance"], "program", p["solver"], "", p["seconds"], p["status"], p["dram_bytes"],
                            0.0, ""])  # fmt: skip
            for h in rec["heuristics"]:
                w.writerow([rec["instance"], "heuristic", f"{h['method']} ({h['search']})", h["budget_factor"],
                            h["budget_seconds"],
                            "feasible", h["dram_bytes"], h["gap"], h["evaluations"]])  # fmt: skip
            for b in rec["baselines"]:
                w.writerow([rec["instance"], "baseline", b["baseline"], "", "", "", b["dram_bytes"], "", ""])
    written[2].write_text(markdown(records) + "\n" + summary(records), encoding="utf-8")
    for rec in records:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        longest = max(rec["heuristics"], key=lambda h: h["budget_factor"])["budget_factor"]
        for h in rec["heuristics"]:
            if h["budget_factor"] == longest and h["curve"]:
                times = [t for t, _, _ in h["curve"]] + [h["budget_seconds"]]
                values = [v for _, _, v in h["curve"]] + [h["curve"][-1][2]]
                ax.step(times, values, where="post", label=f"{h['method']} ({h['search']})")
        ax.axhline(rec["optimum"], color="black", linestyle="--", label="proven optimum (program)")
        ax.set_yscale("log")
        ax.set_xlabel("seconds")
        ax.set_ylabel("best DRAM traffic found (bytes)")
        ax.set_title(plot_text(rec["instance"]))
        ax.legend()
        fig.tight_layout()
        path = out / f"convergence_{rec['instance'].replace('@', '_at_')}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
