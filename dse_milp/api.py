"""The Python API: what the command line does, with typed arguments (docs/api.md).

``import dse_milp`` gives ``load_network``, ``load_accelerator``, ``solve``, ``sweep`` and
``bench``; the command line is a thin shell over them (it adds the files it writes and the
tables it prints). Every argument has the command line's default, and the same bad value is
refused with the same one-line ``InputError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from dse_milp.accelerator import Accelerator
from dse_milp.cost import Objective
from dse_milp.errors import InputError, InterruptedRun, NoSolutionError
from dse_milp.executors import Executor
from dse_milp.layouts import AUTO, NCHW, Layout
from dse_milp.loader import SuiteEntry, load_accelerator, load_network, load_suite
from dse_milp.solution import Solution
from dse_milp.solvers import DEFAULT, SolverOptions
from dse_milp.sweeps import Grid, SweepPoint
from dse_milp.workload import Network

BUNDLED_SUITE = Path(__file__).resolve().parent.parent / "instances" / "suite.yaml"

__all__ = ["BUNDLED_SUITE", "bench", "load_accelerator", "load_network", "objectives", "solve", "sweep"]


def objectives(objective: str | Objective | Sequence[str | Objective]) -> tuple[Objective, ...]:
    """``dram``, ``energy``, ``latency`` (or a list of them, lexicographic: ``"dram,latency"``)."""
    items = objective.split(",") if isinstance(objective, str) else [objective] if isinstance(objective, Objective) \
        else list(objective)  # fmt: skip
    found = []
    for item in items:
        try:
            found.append(item if isinstance(item, Objective) else Objective(str(item).strip().lower()))
        except ValueError:
            known = ", ".join(o.value for o in Objective)
            raise InputError([f"objective: {item!r} is not one of {known}"]) from None
    if not found:
        raise InputError(["objective: none given"])
    return tuple(found)


def _fusion(fusion: int | str, network: Network) -> int:
    """The longest fused group; ``"all"``: groups of any length, up to the whole network."""
    if isinstance(fusion, str):
        if fusion.strip().lower() != "all":
            raise InputError([f"fusion: {fusion!r} is neither an integer nor 'all'"])
        return len(network.layers)
    return fusion


def _network(network: Network | str | Path) -> Network:
    return network if isinstance(network, Network) else load_network(network)


def _accelerator(accelerator: Accelerator | str | Path) -> Accelerator:
    return accelerator if isinstance(accelerator, Accelerator) else load_accelerator(accelerator)


def solve(
    network: Network | str | Path,
    accelerator: Accelerator | str | Path,
    *,
    objective: str | Objective | Sequence[str | Objective] = Objective.DRAM,
    fusion: int | str = 0,
    solver: str = DEFAULT,
    time_limit: float | None = None,
    mip_gap: float = 0.0,
    threads: int = 1,
    seed: int = 0,
    jobs: int = 1,
    decompose: bool = True,
    prices: bool = True,
    layout: Layout | str = AUTO,
    method: str = "milp",
    space: str = "own",
    evaluations: int = 2000,
    marginals: bool = False,
) -> Solution:
    """The proven-optimal design of ``network`` on ``accelerator`` (files, or loaded), as
    ``python -m dse_milp solve`` finds it; or, with ``method``, a heuristic search's best
    (docs/heuristics.md). ``fusion``: the longest fused group (0 or 1: none). ``jobs``: worker
    processes for the candidates and prices (the answer does not depend on it). ``marginals``
    adds each layer's marginal traffic per output channel. A stop before any solution
    (``time_limit``, Ctrl-C under ``dse_milp.stopping.sigint_requests_stop``) raises
    NoSolutionError or InterruptedRun; an infeasible instance InfeasibleError."""
    import time

    from dse_milp.heuristics import METHODS, heuristic_solution
    from dse_milp.mappers import METHODS as MAPPERS
    from dse_milp.marginals import marginal_traffic
    from dse_milp.solution import solve as solve_program

    net, acc, goals = _network(network), _accelerator(accelerator), objectives(objective)
    fusion = _fusion(fusion, net)
    if method not in ("milp", *MAPPERS):
        raise InputError([f"method: {method!r} is not one of milp, {', '.join(MAPPERS)}"])
    if method != "milp" and (marginals or len(goals) > 1):
        raise InputError(["--method: a heuristic search takes one objective and no --marginals"])
    if method not in ("milp", *METHODS) and (fusion > 1 or acc.split is not None):
        raise InputError([f"--method {method}: searches layer by layer only; with --fusion or a free split use "
                          f"{', '.join(METHODS)}"])  # fmt: skip
    options = SolverOptions(time_limit=time_limit, mip_gap=mip_gap, threads=threads, seed=seed,
                            decompose=decompose, jobs=jobs).started()  # fmt: skip
    if method != "milp":
        return heuristic_solution(method, net, acc, goals[0], fusion, evaluations, options.seconds_left(), seed,
                                  NCHW if layout == AUTO else Layout.parse(str(layout)), space)  # fmt: skip
    settings: dict[str, Any] = {"objective": goals, "solver": solver, "options": options, "fusion": fusion,
                                "layout": layout}  # fmt: skip
    solution = solve_program(net, acc, prices=prices, **settings)
    if not marginals:
        return solution
    start = time.perf_counter()
    try:
        found = marginal_traffic(solution, **settings)
    except (InterruptedRun, NoSolutionError) as exc:
        return replace(solution, notes=(*solution.notes, f"marginals skipped: {exc}"))
    return replace(solution, marginals=found, seconds=solution.seconds | {"marginals": time.perf_counter() - start})


def sweep(
    network: Network | str | Path | Sequence[Network | str | Path],
    accelerator: Accelerator | str | Path,
    capacities: Sequence[int] | Grid | None = None,
    *,
    low: int = 16 * 1024,
    high: int = 1024 * 1024,
    points: int = 7,
    fusion: int | str = 0,
    objective: str | Objective | Sequence[str | Objective] = Objective.DRAM,
    solver: str = DEFAULT,
    time_limit: float | None = None,
    mip_gap: float = 0.0,
    threads: int = 1,
    seed: int = 0,
    jobs: int = 1,
    decompose: bool = True,
    executor: Executor | None = None,
    advance: Callable[[], None] = lambda: None,
) -> list[SweepPoint]:
    """The least traffic of each network (one, or a list) at each design point: the total
    buffer ``capacities`` (bytes), or ``points`` of them log-spaced from ``low`` to ``high``, or a
    ``dse_milp.sweeps.Grid`` over capacities, bank sizes, DRAM bandwidths and MAC counts;
    without fusion and, if ``fusion`` is 2 or more, with it. Each point has its parameters,
    DRAM bytes (None where nothing fits), status, latency and energy. ``executor``: where the
    points run (``dse_milp.executors``: here by default, or Dask); the same points, in the same
    order, either way."""
    from dse_milp.sweeps import capacities as spaced
    from dse_milp.sweeps import run_sweep

    if capacities is None:
        if low > high:
            raise InputError([f"--min: {low:,} bytes is more than --max {high:,} bytes"])
        capacities = spaced(low, high, points)
    options = SolverOptions(time_limit=time_limit, mip_gap=mip_gap, threads=threads, seed=seed, jobs=jobs,
                            decompose=decompose).started()  # fmt: skip
    many = network if isinstance(network, Sequence) and not isinstance(network, str) else [network]
    networks = [_network(n) for n in many]  # type: ignore[arg-type]
    depth = max(_fusion(fusion, n) for n in networks)
    grid = capacities if isinstance(capacities, Grid) else Grid(tuple(capacities))
    return run_sweep(networks, _accelerator(accelerator), grid, depth, objectives(objective), solver, options,
                     advance, executor)  # fmt: skip


def bench(
    suite: str | Path | Sequence[SuiteEntry] = BUNDLED_SUITE,
    *,
    fusion: int = 0,
    jobs: int = 1,
    seed: int = 0,
    quick: bool = False,
    peers: Sequence[str] = (),
    executor: Executor | None = None,
    advance: Callable[[], None] = lambda: None,
) -> list[dict[str, Any]]:
    """The program against the heuristic searches and fixed dataflows on every instance of
    ``suite`` (a suite file, or its entries), ``jobs`` instances at a time: one record per
    instance, as ``results.json`` holds them (``dse_milp.benchmark``). ``quick``: two tiny
    instances and short budgets. ``peers``: ``("zigzag",)`` also runs ZigZag on every layer
    shape (``dse_milp.peers.compare``; needs the ``peers`` extra). ``executor``: where the
    instances run (``dse_milp.executors``; ``jobs`` local processes by default)."""
    from dse_milp.benchmark import QUICK, BenchSettings, run_bench

    entries = list(suite) if not isinstance(suite, str | Path) else load_suite(suite)
    if quick:
        entries = [e for e in entries if e.name in QUICK] or entries[:2]
        settings = BenchSettings(fusion=fusion, least_seconds=0.05, most_seconds=1.0, seed=seed, peers=tuple(peers))
    else:
        settings = BenchSettings(fusion=fusion, seed=seed, peers=tuple(peers))
    return run_bench(entries, settings, jobs, advance, executor)
