"""Sweeps: the least traffic of a network as the on-chip capacity grows, and grids of design
points over networks and accelerator parameters.

Each point solves a network to optimality on the accelerator with its buffer
capacity scaled to the point's total: a unified buffer becomes that size;
separate buffers keep their proportions; a free split shares that total (in
whole banks). A ``Grid`` also varies the bank size (a free split's), the DRAM
bandwidth and the MAC count, every combination one point, for every network. With
fusion, every point is solved twice, without and with fused groups, so the two
curves can be compared. The points are independent jobs: they run here or on Dask
(``dse_milp.executors``), and come back in the same order either way.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dse_milp.accelerator import Accelerator, Buffer, Split
from dse_milp.cost import Objective
from dse_milp.errors import InfeasibleError, InputError, InterruptedRun, NoSolutionError
from dse_milp.executors import Executor
from dse_milp.loader import MAX_BANKS
from dse_milp.report import plot_text, pyplot
from dse_milp.solution import compulsory_bytes, solve
from dse_milp.solvers import SolverOptions
from dse_milp.workload import Network

FIELDS = (
    "capacity_bytes", "fusion", "status", "dram_bytes", "moved_bytes", "compulsory_bytes", "ratio_to_compulsory",
    "latency_cycles", "energy_pj", "fused_groups", "buffer_sizes", "seconds", "network", "bank_bytes",
    "dram_bandwidth", "macs",
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
    network: str = ""
    bank_bytes: int | None = None
    """A free split's bank size; None for fixed buffers."""
    dram_bandwidth: float | None = None
    """Bytes per cycle."""
    macs: int | None = None


@dataclass(frozen=True)
class Grid:
    """What a sweep varies: every combination of these, for every network, is one point;
    None keeps the accelerator's own value."""

    capacities: tuple[int, ...]
    """Total on-chip bytes (``with_capacity``)."""
    banks: tuple[int | None, ...] = (None,)
    """Bank sizes of a free split, in bytes."""
    bandwidths: tuple[float | None, ...] = (None,)
    """DRAM bandwidths, bytes per cycle."""
    macs: tuple[int | None, ...] = (None,)

    @property
    def size(self) -> int:
        return len(self.capacities) * len(self.banks) * len(self.bandwidths) * len(self.macs)

    def designs(self, accelerator: Accelerator) -> list[tuple[int, Accelerator]]:
        """(total bytes, the accelerator at that point) for every combination, capacities
        outermost; an InputError if a bank size is given for fixed buffers."""
        if accelerator.split is None and self.banks != (None,):
            raise InputError([f"--banks: {accelerator.name!r} has fixed buffers, not a free split in banks"])
        points = []
        for total, bank, bandwidth, macs in itertools.product(self.capacities, self.banks, self.bandwidths, self.macs):
            acc = accelerator
            if bank is not None and acc.split is not None:
                acc = replace(acc, split=replace(acc.split, bank_bytes=bank))
            acc = with_capacity(acc, total)
            if bandwidth is not None:
                acc = replace(acc, dram_bandwidth=float(bandwidth))
            if macs is not None:
                acc = replace(acc, macs=macs)
            points.append((total, acc))
        return points


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


@dataclass(frozen=True)
class _Job:
    """One point: a network on a designed accelerator, with or without fusion."""

    network: Network
    accelerator: Accelerator
    total: int
    depth: int
    objective: tuple[Objective, ...]
    solver: str
    options: SolverOptions
    ends: float | None
    """When the whole sweep ends, as ``SolverOptions.ends`` gives it."""


def solve_point(job: _Job) -> SweepPoint:
    """Solve one point (``run_sweep``); a layer that fits nowhere, or the sweep's deadline, is
    the point's status, not an error."""
    acc, floor = job.accelerator, compulsory_bytes(job.network)
    options = job.options.ending(job.ends)
    split = acc.split
    about = {"network": job.network.name, "bank_bytes": None if split is None else split.bank_bytes,
             "dram_bandwidth": acc.dram_bandwidth, "macs": acc.macs}  # fmt: skip
    try:
        s = solve(job.network, acc, job.objective, job.solver, options, fusion=job.depth, prices=False)
    except InfeasibleError:
        return SweepPoint(job.total, job.depth, "infeasible", None, None, floor, None, None, 0, {}, 0.0, **about)
    except NoSolutionError:  # the deadline of the whole sweep has passed
        return SweepPoint(job.total, job.depth, "no_solution", None, None, floor, None, None, 0, {}, 0.0, **about)
    except InterruptedRun:
        return SweepPoint(job.total, job.depth, "interrupted", None, None, floor, None, None, 0, {}, 0.0, **about)
    return SweepPoint(
        job.total, job.depth, s.result.status.value, s.dram_bytes, s.moved_bytes, floor, s.latency_cycles,
        s.energy_pj, len(s.groups), s.buffer_sizes, sum(s.seconds.values()), **about,
    )  # fmt: skip


def run_sweep(
    network: Network | Sequence[Network],
    accelerator: Accelerator,
    totals: Sequence[int] | Grid,
    fusion: int = 0,
    objective: Sequence[Objective] = (Objective.DRAM,),
    solver: str = "highs",
    options: SolverOptions | None = None,
    advance: Callable[[], None] = lambda: None,
    executor: Executor | None = None,
) -> list[SweepPoint]:
    """Solve each network (one, or several) at every point of ``totals`` (capacities, or a
    ``Grid``), without fusion and, if ``fusion`` is 2 or more, with it, on ``executor``
    (here by default); networks outermost, then the grid, then the fusion. ``advance`` is
    called after each point (for a progress bar). Ctrl-C returns the points finished before."""
    options = (options or SolverOptions()).started()
    grid = totals if isinstance(totals, Grid) else Grid(tuple(totals))
    networks = [network] if isinstance(network, Network) else list(network)
    jobs = [
        _Job(net, acc, total, depth, tuple(objective), solver, options, options.ends())
        for net in networks
        for total, acc in grid.designs(accelerator)
        for depth in ((0, fusion) if fusion > 1 else (0,))
    ]
    return (executor or Executor()).run(solve_point, jobs, advance)


def write_csv(points: Sequence[SweepPoint], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        for p in points:
            ratio = None if p.dram_bytes is None else p.dram_bytes / p.compulsory_bytes
            sizes = ";".join(f"{name}={size}" for name, size in p.buffer_sizes.items())
            writer.writerow(
                [p.capacity_bytes, p.fusion, p.status, p.dram_bytes, p.moved_bytes, p.compulsory_bytes, ratio,
                 p.latency_cycles, p.energy_pj, p.fused_groups, sizes, f"{p.seconds:.3f}", p.network, p.bank_bytes,
                 p.dram_bandwidth, p.macs]
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


def pareto_front(points: Sequence[SweepPoint], value: Callable[[SweepPoint], float | None]) -> list[SweepPoint]:
    """The points not dominated in (total buffer, ``value``), by increasing buffer: no other
    point has as little buffer and less of the value, or less buffer and no more of it."""
    solved = sorted((p for p in points if value(p) is not None), key=lambda p: (p.capacity_bytes, value(p)))
    front: list[SweepPoint] = []
    for p in solved:
        if not front or value(p) < value(front[-1]):  # type: ignore[operator]
            front.append(p)  # the least value at its capacity (sorted), below every smaller buffer's
    return front


def plot_grid(points: Sequence[SweepPoint], path: Path, title: str, latency: bool = False) -> None:
    """Every design point of a grid, DRAM traffic (moved bytes with bursts; or latency) against
    the total buffer, and the Pareto front of each network and fusion setting."""
    plt = pyplot()

    def value(p: SweepPoint) -> float | None:
        if latency:
            return p.latency_cycles
        return p.dram_bytes if p.moved_bytes is None else p.moved_bytes

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    series = list(dict.fromkeys((p.network, p.fusion) for p in points))
    for k, (network, depth) in enumerate(series):
        mine = [p for p in points if (p.network, p.fusion) == (network, depth) and value(p) is not None]
        label = f"{network}" + (f", fused groups of up to {depth}" if depth else "")
        color = f"C{k % 10}"
        ax.scatter([p.capacity_bytes / 1024 for p in mine], [value(p) for p in mine], s=12, alpha=0.35, color=color)
        front = pareto_front(mine, value)
        ax.step([p.capacity_bytes / 1024 for p in front], [value(p) for p in front], where="post", color=color,
                marker="o", markersize=4, label=f"{plot_text(label)}: Pareto front")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("total on-chip buffer (KiB)")
    bursts = any(p.moved_bytes is not None for p in points)
    ax.set_ylabel("latency (cycles)" if latency else "DRAM bytes moved, in whole bursts" if bursts
                  else "DRAM traffic (bytes)")  # fmt: skip
    ax.set_title(plot_text(title))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
