"""The command line: a thin shell over the library.

Exit codes: 0 a solution; 1 a solver failure; 2 bad input; 3 infeasible (a layer
fits no mapping); 4 time limit reached without a solution; 130 ``compress``
interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from dse_milp.accelerator import Accelerator
from dse_milp.api import BUNDLED_SUITE
from dse_milp.cost import Objective
from dse_milp.errors import DseError, InfeasibleError, InputError, InterruptedRun, NoSolutionError, show
from dse_milp.halo import Halo, halo_modes
from dse_milp.layouts import AUTO, Layout
from dse_milp.loader import burst_bytes, load_accelerator, load_network, load_suite
from dse_milp.mappers import METHODS as MAPPERS
from dse_milp.mappers import SPACES
from dse_milp.outputs import check_file, check_folder, silence_stdout, write_text
from dse_milp.solvers import BACKENDS, DEFAULT, SolverOptions
from dse_milp.stopping import ever_interrupted, interrupted, sigint_requests_stop
from dse_milp.workers import available_cores
from dse_milp.workload import Network

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_TIME_LIMIT = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        message = message.replace("\n", "\\n").replace("\r", "\\r")  # one line, whatever was typed
        self.exit(EXIT_INPUT, f"error: {message} (see {self.prog} --help)\n")


def _number(kind: type[int] | type[float], interval: str) -> Callable[[str], float]:
    """A parser of finite numbers in ``interval``: '> 0', '>= 0', or a range such as '(0, 1)',
    '[0, 1)' or '[1, 1024]' (every range the solvers accept is stated here, not found inside them)."""
    noun = "an integer" if kind is int else "a number"
    if interval.startswith(">"):
        low, high = float(interval.split()[-1]), math.inf
        closed_low, closed_high = interval.startswith(">="), False
        wording = interval
    else:
        match = re.fullmatch(r"([\[(])(\S+), (\S+)([\])])", interval)
        assert match, interval
        low, high = float(match.group(2)), float(match.group(3))
        closed_low, closed_high = match.group(1) == "[", match.group(4) == "]"
        wording = f"in {interval}"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {noun}, got {show(text)}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {show(text)}")
        above = value >= low if closed_low else value > low
        below = value <= high if closed_high else value < high
        if not (above and below):
            raise argparse.ArgumentTypeError(f"must be {wording}, got {show(text)}")
        return value

    return parse


MAX_THREADS = 1024
SEEDS = "[0, 2147483647]"
"""Seeds every backend takes (HiGHS and CP-SAT read a 32-bit signed integer)."""


def _objectives(text: str) -> tuple[Objective, ...]:
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in {o.value for o in Objective}]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"must be dram, energy or latency (or a list of them), got {text!r}")
    return tuple(Objective(name) for name in names)


ALL_LAYERS = 1 << 30
"""``--fusion all``: a group length no network reaches (``_load`` reads it as the network's length)."""


def _fusion(text: str) -> int:
    if text.strip().lower() in ("all", "0"):
        return ALL_LAYERS
    try:
        return int(_number(int, "[1, 4096]")(text))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be all, 0 or an integer in [1, 4096], got {show(text)}") from None


def _burst(text: str) -> int:
    try:
        return burst_bytes(int(text) if text.strip().isdigit() else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _halo(text: str) -> tuple[Halo, ...]:
    try:
        return halo_modes([name.strip().lower() for name in text.split(",")])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (comma-separated)") from None


def _layout(text: str) -> Layout | str:
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return Layout.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="python -m dse_milp", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    solve = commands.add_parser(
        "solve",
        help="optimal tiling and loop order of every layer",
        description="Find the tiling and loop order of every layer that minimise the objective, "
        "solved to proven optimality.",
    )
    _common(solve)
    solve.add_argument(
        "--method",
        choices=["milp", *MAPPERS],
        default="milp",
        help="the program (default), or a heuristic search over the same design space: layer by layer, each "
        "layer searched on its own as its authors run it (timeloop: Timeloop's random-pruned mapper; loma: "
        "ZigZag's LOMA; anneal, genetic, random: SciPy and pymoo); with fusion, anneal, genetic or random "
        "search each unit, then the fusion boundaries; under a free split, an outer search tries complete splits "
        "and searches each so",
    )
    solve.add_argument(
        "--space",
        choices=list(SPACES),
        default="own",
        help="the tile sizes a per-layer search may pick: its authors' own (divisors of each loop; LOMA: "
        "products of its loop prime factors) or every integer, as the program (default own)",
    )
    solve.add_argument(
        "--evaluations",
        type=_number(int, "[1, 1000000000]"),
        default=2000,
        metavar="N",
        help="designs a heuristic search may score (default 2000); --time-limit also bounds it",
    )
    solve.add_argument("--out", type=Path, default=None, metavar="RESULT.json", help="write the JSON result here")
    solve.add_argument(
        "--marginals",
        action="store_true",
        help="also find each layer's marginal traffic per output channel (one re-solve per coupled channel set)",
    )
    solve.add_argument("--quiet", action="store_true", help="print the totals only, not the per-layer table")
    solve.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="FILE.png",
        help="draw each layer's DRAM bytes by kind of transfer, the fused groups and the compulsory traffic",
    )
    solve.add_argument(
        "--layout",
        type=_layout,
        default=AUTO,
        metavar="{auto,NCHW,NHWC,NCHW<b>c}",
        help="with DRAM bursts (dram: {burst: ...}), the layout of every feature map in DRAM, or auto (default): "
        "the program chooses each tensor's among NCHW, NHWC and NCHW16c",
    )

    sweep = commands.add_parser(
        "sweep",
        help="least traffic against on-chip capacity",
        description="Solve the network at buffer capacities from --min to --max (log-spaced), without and, "
        "with --fusion, with fused groups; write a CSV and a PNG plot with the compulsory traffic as the floor.",
    )
    _common(sweep)
    sweep.add_argument("--min", type=_size_argument, default=16 * 1024, metavar="SIZE", help="default 16 KiB")
    sweep.add_argument("--max", type=_size_argument, default=1024 * 1024, metavar="SIZE", help="default 1 MiB")
    sweep.add_argument(
        "--points", type=_number(int, "[1, 1000]"), default=7, help="capacities to solve, up to 1000 (default 7)"
    )
    sweep.add_argument(
        "--capacities", type=_list(_size_argument), default=None, metavar="SIZES",
        help="total buffer sizes to solve, comma-separated, in place of --min/--max/--points (16KiB,64KiB)",
    )  # fmt: skip
    sweep.add_argument(
        "--banks", type=_list(_size_argument), default=None, metavar="SIZES",
        help="a free split's bank sizes, comma-separated: a grid with the capacities (4KiB,8KiB)",
    )  # fmt: skip
    sweep.add_argument(
        "--bandwidths", type=_list(_number(float, "(0, 1000000]")), default=None, metavar="B/CYCLE",
        help="DRAM bandwidths in bytes per cycle, comma-separated: a grid with the rest",
    )  # fmt: skip
    sweep.add_argument(
        "--macs", type=_list(_number(int, "[1, 1000000000]")), default=None, metavar="N",
        help="MAC counts, comma-separated: a grid with the rest",
    )  # fmt: skip
    sweep.add_argument(
        "--networks", nargs="+", type=Path, default=[], metavar="NETWORK",
        help="more networks (YAML or ONNX) to solve at every point, after the instance's",
    )  # fmt: skip
    _executor_options(sweep)
    sweep.add_argument("--out", type=Path, default=Path("sweep.csv"), metavar="SWEEP.csv")
    sweep.add_argument("--plot", type=Path, default=Path("sweep.png"), metavar="SWEEP.png")

    bench = commands.add_parser(
        "bench",
        help="the program against heuristic search and fixed dataflows, over a suite",
        description="For every suite instance: the program with HiGHS and OR-Tools, each heuristic search with the "
        "program's wall time and ten times it, fixed-dataflow baselines, and an exhaustive search where small; "
        "writes results.{md,csv,json} and a convergence plot per instance.",
    )
    bench.add_argument("--suite", type=Path, default=BUNDLED_SUITE, help="suite file (default: the bundled one)")
    bench.add_argument(
        "--fusion", type=_number(int, "[1, 4096]"), default=0, metavar="N", help="fused groups of up to N layers"
    )
    bench.add_argument("--jobs", type=_number(int, "[1, 256]"), default=1, help="instances run in parallel processes")
    bench.add_argument("--seed", type=_number(int, SEEDS), default=0, help=f"in {SEEDS} (default 0)")
    bench.add_argument("--quick", action="store_true", help="two tiny instances and short budgets (for tests)")
    _executor_options(bench)
    bench.add_argument(
        "--peers",
        nargs="+",
        choices=["zigzag"],
        default=[],
        help="also run a peer mapper on every layer shape: zigzag (ZigZag's LOMA; the optional extra 'peers')",
    )
    bench.add_argument("--out", type=Path, default=Path("bench-results"), metavar="DIR")
    _compress_parser(commands)
    imported = commands.add_parser(
        "import",
        help="the network YAML of an ONNX model",
        description="Map an ONNX model onto the network format (docs/formats.md: what each op becomes) and write "
        "the YAML, to edit it or to see what `solve MODEL.onnx` solves.",
    )
    imported.add_argument("model", type=Path, metavar="MODEL.onnx")
    imported.add_argument(
        "--out", type=Path, default=None, metavar="NETWORK.yaml", help="write here (default: standard output)"
    )
    return top


POLICY_CHOICES = ("program", "uniform", "magnitude", "cost-rank", "random", "all")


def _compress_parser(commands: argparse._SubParsersAction) -> None:
    compress = commands.add_parser(
        "compress",
        help="prune a PyTorch model by the program's costs and shadow prices, tracking accuracy against traffic",
        description="Train MODEL (or load --checkpoint), then for each policy: solve the program on the model's "
        "shapes, prune channels, fine-tune, re-solve; until the traffic target, the accuracy limit or the step "
        "schedule is reached. Writes log.csv, log.json, pareto.png, widths.png and each policy's models to --out.",
    )
    compress.add_argument(
        "model", metavar="MODEL", help="resnet8, ds_cnn, mobilenet_v1_025, small_vgg, or package.module:function"
    )
    compress.add_argument(
        "--accelerator", required=True, metavar="ACCEL", help="accelerator YAML file, or a bundled name (npu-32k)"
    )
    _accelerator_options(compress)
    _solver_options(compress)
    _executor_options(compress)
    compress.add_argument(
        "--data",
        default=None,
        metavar="DIR|synthetic",
        help="folder of Fashion-MNIST IDX files (default: where dataset-fashion-mnist installs them), or synthetic",
    )
    compress.add_argument("--policy", choices=POLICY_CHOICES, default="program", help="default program")
    compress.add_argument(
        "--target-traffic",
        type=_number(float, "(0, 1)"),
        default=0.5,
        metavar="F",
        help="stop at this share of the starting DRAM traffic, in (0, 1) (default 0.5)",
    )
    compress.add_argument(
        "--max-drop",
        type=_number(float, ">= 0"),
        default=1.0,
        metavar="POINTS",
        help="stop once the accuracy is more than this below the start (default 1.0)",
    )
    compress.add_argument(
        "--step",
        type=_number(float, "(0, 1)"),
        default=0.1,
        metavar="F",
        help="share of each layer's starting channels one step removes, in (0, 1) (default 0.1)",
    )
    compress.add_argument(
        "--epochs",
        type=_number(float, ">= 0"),
        default=8.0,
        metavar="N",
        help="epochs of training from scratch (default 8; cached between runs)",
    )
    compress.add_argument(
        "--finetune-epochs",
        type=_number(float, ">= 0"),
        default=1.0,
        metavar="N",
        help="epochs of fine-tuning after each step; fractions allowed (default 1)",
    )
    compress.add_argument(
        "--iterations",
        type=_number(int, "> 0"),
        default=None,
        metavar="N",
        help="the most pruning steps (default: until the step schedule is spent)",
    )
    compress.add_argument(
        "--train-threads",
        type=_number(int, f"[1, {MAX_THREADS}]"),
        default=2,
        metavar="N",
        help="threads PyTorch trains with (default 2; the same seed and count give the same run)",
    )
    compress.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="FILE",
        help="start from these weights (a state dict, or a model.pt written by compress)",
    )
    compress.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="where trained models are kept (default ~/.cache/dse_milp/trained)",
    )
    compress.add_argument("--no-cache", action="store_true", help="always train from scratch")
    compress.add_argument("--out", type=Path, required=True, metavar="RUN_DIR")


def _common(parser: argparse.ArgumentParser) -> None:
    """The instance and solver arguments that ``solve`` and ``sweep`` share."""
    parser.add_argument(
        "instance",
        nargs="+",
        metavar="INSTANCE",
        help="NETWORK.yaml ACCELERATOR.yaml, or the name of a suite entry (e.g. resnet50@npu-128k)",
    )
    parser.add_argument("--suite", type=Path, default=BUNDLED_SUITE, help="suite file for entry names")
    _accelerator_options(parser)
    _solver_options(parser)


def _accelerator_options(parser: argparse.ArgumentParser) -> None:
    """What the command line may change of an accelerator file (``_with_overrides``)."""
    parser.add_argument(
        "--fused-footprint",
        choices=["sum", "liveness"],
        default=None,
        help="a fused group holds every feature map for the whole tile (sum), or frees each after its "
        "last reader (liveness; double buffering then doubles only what crosses DRAM) "
        "(default: as the accelerator declares, sum if it does not)",
    )
    parser.add_argument(
        "--halo",
        type=_halo,
        default=None,
        metavar="MODES",
        help="how a fused group may handle the halo between its tiles, the program choosing one per group: "
        "recompute, columns, rows (a line buffer), rows+columns, comma-separated, or any "
        "(default: as the accelerator declares, recompute if it does not)",
    )
    parser.add_argument(
        "--keep-tensors",
        choices=["yes", "no"],
        default=None,
        help="whether a tensor crossing a unit boundary may stay on chip, whole, from the unit that writes it "
        "to the unit that last reads it, the program deciding per tensor (default: as the accelerator "
        "declares, no if it does not)",
    )
    parser.add_argument(
        "--burst",
        type=_burst,
        default=None,
        metavar="BYTES",
        help="the DRAM burst, in place of the accelerator's dram: {burst: ...}; 1 counts bytes (default: as declared)",
    )


def _solver_options(parser: argparse.ArgumentParser) -> None:
    """The program's options: objective, fusion and the solver's settings."""
    parser.add_argument(
        "--objective",
        type=_objectives,
        default=(Objective.DRAM,),
        metavar="{dram,energy,latency}[,...]",
        help="what to minimise; a comma-separated list is lexicographic, e.g. dram,latency (default dram)",
    )
    parser.add_argument(
        "--fusion",
        type=_fusion,
        default=0,
        metavar="N",
        help="let up to N consecutive layers run as one fused group; all (or 0): groups of any length "
        "(default: no fusion)",
    )
    parser.add_argument("--solver", choices=list(BACKENDS), default=DEFAULT)
    parser.add_argument(
        "--time-limit",
        type=_number(float, "(0, 1000000000]"),
        default=None,
        metavar="SECONDS",
        help="bound the whole command; the best solution found by then is reported (default: none)",
    )
    parser.add_argument(
        "--mip-gap",
        type=_number(float, "[0, 1)"),
        default=0.0,
        help="relative gap to stop at (default 0: proven optimum)",
    )
    parser.add_argument(
        "--threads", type=_number(int, f"[1, {MAX_THREADS}]"), default=1, help="solver threads (default 1)"
    )
    parser.add_argument("--seed", type=_number(int, SEEDS), default=0, help=f"solver seed in {SEEDS} (default 0)")
    parser.add_argument(
        "--jobs",
        type=_number(int, f"[1, {MAX_THREADS}]"),
        default=available_cores(),
        help="processes generating the candidates and the shadow prices; the answer does not depend on it "
        f"(default: the cores available, {available_cores()} here)",
    )
    parser.add_argument(
        "--no-decompose",
        action="store_true",
        help="solve the whole program (every candidate, every split) rather than keep each unit's best "
        "candidate for each pair of layouts (fixed buffers) or search the complete splits first (a free "
        "split); all exact, the default faster",
    )


def _list(item: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    """A comma-separated list of ``item``s, at least one, without repeats."""

    def parse(text: str) -> tuple[Any, ...]:
        values = tuple(item(part.strip()) for part in text.split(","))
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"a value is repeated in {show(text)}")
        return values

    return parse


def _executor_options(parser: argparse.ArgumentParser) -> None:
    """Where the independent jobs run (``dse_milp.executors``)."""
    parser.add_argument(
        "--executor", choices=["local", "dask"], default="local",
        help="run the independent jobs here (local, default) or on Dask (a LocalCluster, or --scheduler)",
    )  # fmt: skip
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="with --executor dask, an existing Dask scheduler (tcp://host:8786) instead of a LocalCluster",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=_number(int, "[1, 1024]"), default=available_cores(),
        help=f"with --executor dask and no --scheduler, the LocalCluster's workers (default: the cores, "
        f"{available_cores()} here)",
    )  # fmt: skip


def _executor(args: argparse.Namespace, jobs: int = 1) -> Any:
    from dse_milp.executors import Executor

    return Executor(args.executor, jobs, args.workers, args.scheduler)


def _size_argument(text: str) -> int:
    from dse_milp.loader import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _instance_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    if len(args.instance) == 2:
        return Path(args.instance[0]), Path(args.instance[1])
    if len(args.instance) != 1:
        raise InputError([f"INSTANCE: give NETWORK.yaml ACCELERATOR.yaml or one suite entry, got {args.instance}"])
    name = args.instance[0]
    entries = {entry.name: entry for entry in load_suite(args.suite)}
    if name not in entries:
        raise InputError([f"{args.suite}: no instance named {name!r} (known: {', '.join(entries)})"])
    return entries[name].network, entries[name].accelerator


def _load(args: argparse.Namespace) -> tuple[Network, Accelerator]:
    """The network and accelerator the arguments name; every problem with both reported at once."""
    network_path, accelerator_path = _instance_paths(args)
    problems: list[str] = []
    network = accelerator = None
    try:
        network = load_network(network_path)
    except InputError as exc:
        problems += exc.problems
    try:
        accelerator = load_accelerator(accelerator_path)
    except InputError as exc:
        problems += exc.problems
    if problems or network is None or accelerator is None:
        raise InputError(problems)
    if getattr(args, "fusion", 0) == ALL_LAYERS:
        args.fusion = len(network.layers)
    return network, _with_overrides(accelerator, args)


def _with_overrides(accelerator: Accelerator, args: argparse.Namespace) -> Accelerator:
    """``accelerator`` with what ``_accelerator_options`` asked for, if anything: the DRAM burst,
    the fused footprint, the halo modes and whether tensors may stay on chip."""
    if args.burst is not None:
        accelerator = replace(accelerator, burst_bytes=args.burst)
    if args.fused_footprint is not None:
        accelerator = replace(accelerator, fused_liveness=args.fused_footprint == "liveness")
    if args.halo is not None:
        accelerator = replace(accelerator, halo=args.halo)
    if args.keep_tensors is not None:
        accelerator = replace(accelerator, keep_tensors=args.keep_tensors == "yes")
    return accelerator


def _options(args: argparse.Namespace) -> SolverOptions:
    """The solver options, with the deadline of ``--time-limit`` counted from now."""
    options = SolverOptions(time_limit=args.time_limit, mip_gap=args.mip_gap, threads=args.threads, seed=args.seed,
                            decompose=not args.no_decompose, jobs=args.jobs)  # fmt: skip
    return options.started()


def run_import(args: argparse.Namespace, console: Console) -> int:
    from dse_milp.loader import parse_network
    from dse_milp.onnx_import import onnx_spec
    from dse_milp.outputs import network_yaml

    check_file("--out", args.out)
    spec = onnx_spec(args.model)
    parse_network(spec, str(args.model))  # what solve would refuse is refused here
    text = network_yaml(spec, f"Imported from {args.model.name} by python -m dse_milp import (docs/formats.md).")
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text("--out", args.out, text)
    return EXIT_OK


def run_solve(args: argparse.Namespace, console: Console) -> int:
    from dse_milp.api import solve
    from dse_milp.report import json_text, print_solution, solution_record, stopped_record

    options = _options(args)
    network, accelerator = _load(args)
    check_file("--out", args.out)
    check_file("--plot", args.plot)
    if args.plot is not None:
        _plot_format(args.plot)
    try:
        solution = solve(
            network, accelerator, objective=args.objective, fusion=args.fusion, solver=args.solver,
            time_limit=options.seconds_left(), mip_gap=args.mip_gap, threads=args.threads, seed=args.seed,
            jobs=args.jobs, decompose=not args.no_decompose, layout=args.layout, method=args.method,
            space=args.space, evaluations=args.evaluations, marginals=args.marginals,
        )  # fmt: skip
    except (InterruptedRun, NoSolutionError) as exc:
        if args.out is not None:
            status = "interrupted" if isinstance(exc, InterruptedRun) else "no_solution"
            write_text("--out", args.out, json_text(stopped_record(network.name, accelerator.name, status, str(exc))))
        raise
    failed: InputError | None = None
    if args.out is not None:  # first: a closed or broken standard output must not lose it
        try:
            write_text("--out", args.out, json_text(solution_record(solution)))
        except InputError as exc:
            failed = exc
    if args.plot is not None:
        from dse_milp.solution_plot import plot_solution

        try:
            plot_solution(solution, args.plot)
        except OSError as exc:
            failed = failed or InputError([f"--plot: cannot write {str(args.plot)!r} ({exc.strerror or exc})"])
    print_solution(solution, console, table=not args.quiet)
    if failed is not None:
        raise failed
    return EXIT_OK


def _plot_format(path: Path) -> None:
    """Raise InputError unless matplotlib can write a plot with ``path``'s extension."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise InputError(
            [f"--plot: {show(path.suffix or str(path))} is not a plot format ({', '.join(sorted(formats))})"]
        )


def run_sweep(args: argparse.Namespace, console: Console) -> int:
    from dse_milp.api import sweep
    from dse_milp.report import human_bytes, progress_bar
    from dse_milp.sweeps import Grid, capacities, plot, plot_grid, write_csv

    options = _options(args)
    network, accelerator = _load(args)
    networks = [network, *(load_network(path) for path in args.networks)]
    executor = _executor(args)
    check_file("--out", args.out)
    check_file("--plot", args.plot)
    _plot_format(args.plot)
    if args.capacities is None and args.min > args.max:
        raise InputError([f"--min: {args.min:,} bytes is more than --max {args.max:,} bytes"])
    totals = args.capacities or tuple(capacities(args.min, args.max, args.points))
    grid = Grid(totals, args.banks or (None,), args.bandwidths or (None,), args.macs or (None,))
    grid.designs(accelerator)  # a bank size for fixed buffers is refused before any solve
    runs = len(networks) * grid.size * (2 if args.fusion > 1 else 1)
    with progress_bar(console) as progress:
        task = progress.add_task(f"sweeping {runs} points on {accelerator.name}", total=runs)
        points = sweep(
            networks, accelerator, grid, fusion=args.fusion, objective=args.objective, solver=args.solver,
            time_limit=options.seconds_left(), mip_gap=args.mip_gap, threads=args.threads, seed=args.seed,
            jobs=args.jobs, decompose=not args.no_decompose, executor=executor,
            advance=lambda: progress.advance(task),
        )  # fmt: skip
    title = f"{', '.join(n.name for n in networks)} on {accelerator.name}"
    latency = args.objective[0] is Objective.LATENCY

    def draw() -> None:
        if len(networks) > 1 or grid.size > len(grid.capacities):
            plot_grid(points, args.plot, title, latency)
        else:
            plot(points, args.plot, title)

    failed: list[str] = []  # the points are printed even when a file cannot be written
    for option, path, write in (
        ("--out", args.out, lambda: write_csv(points, args.out)),
        ("--plot", args.plot, draw),
    ):
        try:
            write()
        except OSError as exc:
            failed.append(f"{option}: cannot write {str(path)!r} ({exc.strerror or exc})")
    for p in points:
        traffic = (
            p.status.replace("_", " ")
            if p.dram_bytes is None
            else f"{p.dram_bytes:,.0f} bytes ({p.dram_bytes / p.compulsory_bytes:.3f})"
        )
        where = [p.network] if len(networks) > 1 else []
        where.append(f"{human_bytes(p.capacity_bytes):>10}")
        where += [f"banks of {human_bytes(p.bank_bytes)}"] if args.banks and p.bank_bytes else []
        where += [f"{p.dram_bandwidth:g} B/cycle"] if args.bandwidths else []
        where += [f"{p.macs} MACs"] if args.macs else []
        where += [f"fusion {p.fusion}"] if p.fusion else []
        console.print(f"{', '.join(where)}: {traffic}")
    if failed:
        raise InputError(failed)
    console.print(f"wrote {args.out} and {args.plot}")
    if interrupted():
        console.print(f"interrupted: {len(points)} of {runs} points solved")
        return EXIT_INTERRUPTED
    return EXIT_OK


def run_bench(args: argparse.Namespace, console: Console) -> int:
    from dse_milp.api import bench
    from dse_milp.benchmark import QUICK, markdown, write
    from dse_milp.report import progress_bar

    entries = load_suite(args.suite)
    if args.quick:
        entries = [e for e in entries if e.name in QUICK] or entries[:2]
    check_folder("--out", args.out)
    peers = list(args.peers)
    if "zigzag" in peers:
        from dse_milp.peers.zigzag import zigzag_available

        if not zigzag_available():
            console.print("peers: zigzag is not installed (pip install -e '.[peers]'): skipped")
            peers.remove("zigzag")
    with progress_bar(console) as progress:
        task = progress.add_task(f"benchmarking {len(entries)} instances", total=len(entries))
        records = bench(
            entries, fusion=args.fusion, jobs=args.jobs, seed=args.seed, quick=args.quick, peers=peers,
            executor=_executor(args, args.jobs), advance=lambda: progress.advance(task),
        )  # fmt: skip
    written = write(records, args.out)
    console.print(markdown(records))
    console.print(f"wrote {len(written)} files under {args.out}")
    if len(records) < len(entries):
        console.print(f"interrupted: {len(records)} of {len(entries)} instances done")
        return EXIT_INTERRUPTED
    return EXIT_OK


ACCELERATORS = BUNDLED_SUITE.parent / "accelerators"


def _accelerator_path(text: str) -> Path:
    """A file, or a bundled accelerator by its file name or declared name (npu-32k, npu_32k)."""
    path = Path(text)
    if path.is_file():
        return path
    bundled = ACCELERATORS / f"{text.replace('-', '_')}.yaml"
    if bundled.is_file():
        return bundled
    known = ", ".join(sorted(p.stem.replace("_", "-") for p in ACCELERATORS.glob("*.yaml")))
    raise InputError([f"--accelerator: {text!r} is neither a file nor a bundled accelerator ({known})"])


def run_compress(args: argparse.Namespace, console: Console) -> int:
    try:
        import torch

        from pruning.compress import Training, compress, default_cache
        from pruning.data import load_data
        from pruning.loop import Settings
        from pruning.policies import POLICIES
        from pruning.record import RichReporter
    except ImportError as exc:
        raise InputError([f"compress needs the 'prune' extra (pip install -e '.[prune]'): {exc}"]) from None

    declared = load_accelerator(_accelerator_path(args.accelerator))
    accelerator = _with_overrides(declared, args)
    check_folder("--out", args.out)
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise InputError([f"--checkpoint: {str(args.checkpoint)!r} is not a file"])
    data = load_data(args.data)
    torch.set_num_threads(args.train_threads)
    settings = Settings(
        objective=args.objective, solver=args.solver, options=_options(args), fusion=args.fusion, step=args.step,
        target_traffic=args.target_traffic, max_drop=args.max_drop, finetune_epochs=args.finetune_epochs,
        seed=args.seed, iterations=args.iterations,
    )  # fmt: skip
    cache = None if args.no_cache else (args.cache or default_cache())
    training = Training(epochs=args.epochs, cache=cache, checkpoint=args.checkpoint)
    policies = list(POLICIES) if args.policy == "all" else [args.policy]
    try:
        with RichReporter(console) as reporter:
            rows = compress(args.model, data, accelerator, policies, settings, args.out, training, reporter,
                            _executor(args))  # fmt: skip
    except KeyboardInterrupt:
        console.print(f"interrupted: {args.out / 'log.csv'} holds every iteration finished so far")
        return EXIT_INTERRUPTED
    reporter.summary(rows, settings.max_drop)
    console.print(f"wrote log.csv, log.json, pareto.png, widths.png and the models under {args.out}")
    return EXIT_OK


class _Console(Console):
    """A console whose closed pipe (``solve ... | head``) raises BrokenPipeError for ``main`` to
    end the run quietly, rather than rich's own ``SystemExit(1)``."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError  # main() points standard output at /dev/null


def main(argv: list[str] | None = None) -> int:
    ends = argv is None and threading.current_thread() is threading.main_thread()  # the process ends after
    try:
        code = _main(argv, ends)
    except KeyboardInterrupt:  # a second Ctrl-C while the first one's outcome is reported
        if not (ends and ever_interrupted()):
            raise
        code = EXIT_INTERRUPTED
    if ends and ever_interrupted():
        # after a Ctrl-C, end now: a second one during the interpreter's shutdown (which resets
        # the handlers) would kill the process with SIGINT instead of exit code 130
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    return code


def _ctrl_c_outside_a_run(signum: int, frame: object) -> None:
    """SIGINT in the command's own process outside a run's own handling (reading the inputs,
    reporting, ending, or after a first Ctrl-C asked the run to stop): end at once, exit code
    130, without a traceback; what was written stays written."""
    with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: a write it interrupted
        sys.stdout.flush()
        sys.stderr.flush()
    if not ever_interrupted():  # after a first Ctrl-C, its outcome is being reported already
        with contextlib.suppress(OSError):
            os.write(2, b"interrupted\n")
    os._exit(EXIT_INTERRUPTED)


def _main(argv: list[str] | None, ends: bool = False) -> int:
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        # undo __main__'s start-up handler
        signal.signal(signal.SIGINT, _ctrl_c_outside_a_run if ends else signal.default_int_handler)
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    # Every string printed is data: no rich markup, emoji codes or highlighting in names.
    plain = {"markup": False, "emoji": False, "highlight": False}
    console = _Console(**plain)  # type: ignore[arg-type]
    if not console.is_terminal:  # pipes and files get the whole table, unwrapped
        console = _Console(width=200, **plain)  # type: ignore[arg-type]
    errors = Console(stderr=True, soft_wrap=True, **plain)  # type: ignore[arg-type]
    commands = {"solve": run_solve, "sweep": run_sweep, "bench": run_bench, "compress": run_compress,
                "import": run_import}  # fmt: skip
    # compress keeps Ctrl-C's usual meaning (stop now; its log keeps every finished iteration)
    stops = contextlib.nullcontext() if args.command == "compress" else sigint_requests_stop()
    if args.command == "compress" and signal.getsignal(signal.SIGINT) is _ctrl_c_outside_a_run:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # its KeyboardInterrupt says where the log is
    try:
        with stops:
            return commands[args.command](args, console)
    except BrokenPipeError:  # solve ... | head: the results are written; stop quietly
        silence_stdout()
        return EXIT_OK
    except InputError as exc:
        for problem in exc.problems:
            errors.print(f"error: {_one_line(problem)}")
        return EXIT_INPUT
    except InfeasibleError as exc:
        for problem in exc.problems:
            errors.print(f"infeasible: {_one_line(problem)}")
        return EXIT_INFEASIBLE
    except NoSolutionError as exc:
        errors.print(f"time limit: {_one_line(str(exc))}")
        return EXIT_TIME_LIMIT
    except InterruptedRun as exc:
        errors.print(_one_line(str(exc)))
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        errors.print("interrupted")
        if threading.current_thread() is threading.main_thread() and argv is None:
            # a second Ctrl-C may leave a solver's C++ threads running: end the process now, before
            # the interpreter's shutdown tears their state down under them (std::terminate, exit -6)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except MemoryError:
        errors.print("error: out of memory (a smaller --fusion depth needs less)")
        return EXIT_FAILED
    except DseError as exc:
        errors.print(f"error: {_one_line(str(exc))}")
        return EXIT_FAILED


def _one_line(text: str) -> str:
    """``text`` with every character that would break the line (or print invisibly) escaped,
    such as a newline in a file name."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


if __name__ == "__main__":
    sys.exit(main())
