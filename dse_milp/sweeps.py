"""Sweeps: the least traffic of a network as the on-chip capacity grows.

Each point solves the network to optimality on the accelerator with its buffer
capacity scaled to the point's total: a unified buffer becomes that size;
separate buffers keep their proportions; a free split shares that total (in
whole banks). With fusion, every point is solved twice, without and with fused
groups, so the two curves can be compared.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dse_milp.accelerator import Accelerator, Buffer, Split
from dse_milp.cost import Objective
from dse_milp.errors import InfeasibleError, InterruptedRun, NoSolutionError
from dse_milp.loader import MAX_BANKS
from dse_milp.report import plot_text, pyplot
from dse_milp.solution import compulsory_bytes, solve
from dse_milp.solvers import SolverOptions
from dse_milp.stopping import interrupted
from dse_milp.workload import Network

FIELDS = (
    "capacity_bytes", "fusion", "status", "dram_bytes", "moved_bytes", "compulsory_bytes", "ratio_to_compulsory",
    "latency_cycles", "energy_pj", "fused_groups", "buffer_sizes", "seconds",
)  # fmt: skip


@dataclass(frozen=True)
class SweepPoint:
    capacity_bytes: int
    fusion: int
    status: str
    """``optimal``, ``feasible`` (time limit), or ``infeasible`` (a layer fits no mapping)."""
    dram_bytes: float | None
    moved_bytes: float | None
    """With DRAM bursts: the bytes their whole bursts move (what the program minimises)."""
    compulsory_bytes: float
    latency_cycles: float | None
    energy_pj: float | None
    fused_groups: int
    buffer_sizes: dict[str, int]
    seconds: float


def capacities(low: int, high: int, points: int) -> list[int]:
    """``points`` capacities from ``low`` to ``high`` bytes, evenly spaced on a log scale
    (in whole KiB when they are that large)."""
    if points == 1:
        return [low]
    values = np.geomspace(low, high, points)
    return sorted({int(v) if v < 1024 else round(v / 1024) * 1024 for v in values} | {low, high})


def with_capacity(accelerator: Accelerator, total: int) -> Accelerator:
    """``accelerator`` with ``total`` bytes of buffer, shared as its own buffers are (under a
    free split, in its banks, doubled until there are at most ``MAX_BANKS``)."""
    split = accelerator.split
    if split is not None:
        bank = split.bank_bytes
        while total // bank > MAX_BANKS:  # larger banks where the accelerator's would be too many
            bank *= 2
        total = max(bank, total // bank * bank)
        buffers = tuple(replace(b, capacity_bytes=total) for b in accelerator.buffers)
        return replace(accelerator, buffers=buffers, split=Split(total, bank))
    scale = total / sum(b.capacity_bytes for b in accelerator.buffers)
    buffers = tuple(
        Buffer(b.name, max(1, math.floor(b.capacity_bytes * scale)), b.operands) for b in accelerator.buffers
    )
    return replace(accelerator, buffers=buffers)


def run_sweep(
    network: Network,
    accelerator: Accelerator,
    totals: Sequence[int],
    fusion: int = 0,
    objective: Sequence[Objective] = (Objective.DRAM,),
    solver: str = "highs",
    options: SolverOptions | None = None,
    advance: Callable[[], None] = lambda: None,
) -> list[SweepPoint]:
    """Solve ``network`` at every capacity of ``totals``, without fusion and, if ``fusion``
    is 2 or more, with it; ``advance`` is called after each solve (for a progress bar)."""
    floor = compulsory_bytes(network)
    cache: dict = {}
    points = []
    for total in totals:
        sized = with_capacity(accelerator, total)
        for depth in (0, fusion) if fusion > 1 else (0,):
            if interrupted():
                return points
            try:
                s = solve(network, sized, objective, solver, options, fusion=depth, prices=False, cache=cache)
            except InfeasibleError:
                points.append(SweepPoint(total, depth, "infeasible", None, None, floor, None, None, 0, {}, 0.0))
            except NoSolutionError:  # the deadline of the whole sweep has passed
                points.append(SweepPoint(total, depth, "no_solution", None, None, floor, None, None, 0, {}, 0.0))
            except InterruptedRun:
                return points
            else:
                points.append(
                    SweepPoint(
                        total, depth, s.result.status.value, s.dram_bytes, s.moved_bytes, floor, s.latency_cycles,
                        s.energy_pj,
                        len(s.groups), s.buffer_sizes, sum(s.seconds.values()),
                    )
                )  # fmt: skip
            advance()
    return points


def write_csv(points: Sequence[SweepPoint], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        for p in points:
            ratio = None if p.dram_bytes is None else p.dram_bytes / p.compulsory_bytes
            sizes = ";".join(f"{name}={size}" for name, size in p.buffer_sizes.items())
            writer.writerow(
                [p.capacity_bytes, p.fusion, p.status, p.dram_bytes, p.moved_bytes, p.compulsory_bytes, ratio,
                 p.latency_cycles, p.energy_pj, p.fused_groups, sizes, f"{p.seconds:.3f}"]
            )  # fmt: skip


def plot(points: Sequence[SweepPoint], path: Path, title: str) -> None:
    """Least DRAM traffic against capacity (log-log), one line per fusion setting, with the
    compulsory traffic drawn as the floor; with DRAM bursts, the bytes the bursts move."""
    plt = pyplot()

    def least(p: SweepPoint) -> float | None:
        return p.dram_bytes if p.moved_bytes is None else p.moved_bytes

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for depth in sorted({p.fusion for p in points}):
        solved = [p for p in points if p.fusion == depth and least(p) is not None]
        label = "layer by layer" if depth == 0 else f"fused groups of up to {depth} layers"
        ax.plot([p.capacity_bytes / 1024 for p in solved], [least(p) for p in solved], marker="o", label=label)
    floor = points[0].compulsory_bytes
    ax.axhline(floor, color="black", linestyle="--", linewidth=1, label="compulsory traffic")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    kib = [p.capacity_bytes / 1024 for p in points]
    ax.set_xlim(min(kib) / 1.5, max(kib) * 1.5)  # also when no point was feasible, or only one was solved
    traffic = [floor, *(y for p in points if (y := least(p)) is not None)]
    ax.set_ylim(min(traffic) / 1.5, max(traffic) * 1.5)
    ax.set_xlabel("on-chip buffer (KiB)")
    bursts = any(p.moved_bytes is not None for p in points)
    ax.set_ylabel("least DRAM bytes moved, in whole bursts" if bursts else "least DRAM traffic (bytes)")
    ax.set_title(plot_text(title))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
