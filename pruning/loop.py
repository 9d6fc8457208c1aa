"""The outer compression loop: solve, rank, prune, fine-tune, re-solve.

From a trained model, each policy (``pruning.policies``) runs on its own copy:

1. the program is solved on the model's current shapes (the network rebuilt from
   the module by ``pruning.bridge``), with shadow prices, and each channel group's
   exact marginal traffic is found (``dse_milp.marginals``);
2. the policy removes channels through Torch-Pruning;
3. the model is fine-tuned (seeded) and its test accuracy measured;
4. the program is solved again on the pruned shapes, and the saving it finds is
   recorded next to the one predicted (``pruning.predict``).

A run stops once the DRAM traffic is at most ``target_traffic`` of the start,
when the accuracy has fallen more than ``max_drop`` points below the start,
when the step schedule is spent, or when nothing is left to prune. The final
model of a policy is its last iteration within ``max_drop`` of the start.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from dse_milp.accelerator import Accelerator
from dse_milp.cost import Objective
from dse_milp.loader import load_network
from dse_milp.marginals import marginal_traffic
from dse_milp.outputs import network_yaml
from dse_milp.solution import Solution, solve
from dse_milp.solvers import DEFAULT, SolverOptions
from dse_milp.workload import Network
from pruning.bridge import trace
from pruning.channels import Channels, importance, widths
from pruning.data import DataSet
from pruning.policies import Step, make_policy
from pruning.predict import predicted_step
from pruning.train import FINETUNE, Recipe, accuracy, fit


@dataclass(frozen=True)
class Settings:
    objective: tuple[Objective, ...] = (Objective.DRAM,)
    solver: str = DEFAULT
    options: SolverOptions = field(default_factory=SolverOptions)
    fusion: int = 0
    step: float = 0.1
    """Each step removes about this share of every group's starting channels (``pruning.policies``)."""
    target_traffic: float = 0.5
    """Stop once the DRAM traffic is at most this share of the start."""
    max_drop: float = 1.0
    """Stop once the accuracy is more than this many points below the start."""
    finetune_epochs: float = 1.0
    seed: int = 0
    iterations: int | None = None
    """The most pruning steps; None: until the step schedule is spent."""

    @property
    def solve_settings(self) -> dict[str, Any]:
        return {"objective": self.objective, "solver": self.solver, "options": self.options, "fusion": self.fusion}

    @property
    def schedule(self) -> int:
        """The steps of the schedule: together they remove less than every channel."""
        return max(1, math.ceil(1 / self.step - 1e-9) - 1)

    @property
    def steps(self) -> int:
        """The most pruning steps this run takes."""
        return self.schedule if self.iterations is None else min(self.iterations, self.schedule)


@dataclass(frozen=True)
class Row:
    """One iteration of one policy (iteration 0: the trained model before any pruning)."""

    policy: str
    iteration: int
    accuracy: float
    parameters: int
    """Weights of the network's layers (biases and BatchNorm not counted, as in the YAML model)."""
    macs: int
    dram_bytes: float
    ratio: float
    """DRAM bytes against the start."""
    predicted_saved: float | None
    """DRAM bytes the step was predicted to save; None for iteration 0, or where no group has a marginal."""
    actual_saved: float | None
    """DRAM bytes the re-solved program found saved against the previous iteration."""
    status: str
    """The solver's status on this iteration's shapes."""
    removed: dict[str, int]
    """Channels removed in this step, by group."""
    widths: dict[str, int]
    """Output channels of every convolution and matmul layer, by layer."""
    seconds: dict[str, float]
    stop: str | None = None
    """Why the run stopped after this iteration."""


@dataclass(frozen=True)
class Start:
    """The trained model every policy starts from."""

    model: nn.Module
    input_shape: tuple[int, int, int]
    name: str
    """The model's name (for the network files)."""
    accuracy: float
    seconds: float = 0.0
    """The time training it from scratch took (read from the cache entry when it came from the
    cache; nan for an entry that predates the field), or loading its checkpoint took."""


class Reporter(Protocol):
    """Where the loop says what it is doing (the command line draws progress bars and a table)."""

    def begin(self, what: str, total: int) -> Callable[[], None]:
        """A long step starts: ``total`` units; returns the callback that advances it by one."""

    def end(self) -> None:
        """The long step is over."""

    def row(self, row: Row) -> None:
        """An iteration is done."""


class Silent:
    def begin(self, what: str, total: int) -> Callable[[], None]:
        return lambda: None

    def end(self) -> None:
        pass

    def row(self, row: Row) -> None:
        pass


def network_of(model: nn.Module, start: Start) -> tuple[Network, dict[str, Any], list[str]]:
    """The network of the model's current shapes, its YAML document, and its output layers."""
    traced = trace(model, start.input_shape, start.name)
    return traced.network(), traced.spec, traced.outputs


def save_iteration(folder: Path, model: nn.Module, spec: dict[str, Any], start: Start, row: Row) -> None:
    """``model.pt`` (a state dict and the widths that rebuild the model, loadable with
    ``torch.load(..., weights_only=True)``) and ``network.yaml`` (solvable with ``solve``)."""
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "model": start.name,
        "input_shape": list(start.input_shape),
        "widths": widths(model),
        "state_dict": model.state_dict(),
        "accuracy": row.accuracy,
        "dram_bytes": row.dram_bytes,
        "iteration": row.iteration,
        "policy": row.policy,
    }
    torch.save(checkpoint, folder / "model.pt")
    comment = (
        f"{start.name} after {row.iteration} step(s) of the {row.policy} policy: accuracy {row.accuracy:.2f}%, "
        f"{row.dram_bytes:,.0f} DRAM bytes ({row.ratio:.3f} of the start). Written by python -m dse_milp compress."
    )
    (folder / "network.yaml").write_text(network_yaml(spec, comment), encoding="utf-8")


def _layer_widths(network: Network) -> dict[str, int]:
    return {layer.name: layer.m for layer in network.layers if layer.has_weights}


def run_policy(
    policy_name: str,
    start: Start,
    data: DataSet,
    accelerator: Accelerator,
    settings: Settings,
    out: Path,
    reporter: Reporter | None = None,
    on_rows: Callable[[list[Row]], None] | None = None,
) -> list[Row]:
    """Run one policy from ``start``; write each iteration under ``out/POLICY/iter-NN`` and the final
    model under ``out/POLICY``; return its rows (``on_rows`` sees them whenever one is added or
    updated, so that nothing computed is lost if the run is stopped)."""
    reporter = reporter or Silent()
    model = copy.deepcopy(start.model)
    policy = make_policy(policy_name)
    folder = out / policy_name
    cache: dict = {}

    def measure(network: Network) -> Solution:
        return solve(network, accelerator, cache=cache, **settings.solve_settings)

    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    network, spec, outputs = network_of(model, start)
    solution = measure(network)
    seconds["solve"] = time.perf_counter() - clock
    first = Row(
        policy_name, 0, start.accuracy, network.parameters, network.macs, solution.dram_bytes, 1.0, None, None,
        solution.result.status.value, {}, _layer_widths(network), seconds,
    )  # fmt: skip
    rows = [first]
    save_iteration(folder / "iter-00", model, spec, start, first)
    if on_rows:
        on_rows(rows)
    reporter.row(first)
    channels = Channels(model, start.input_shape, outputs)
    initial = {group.name: group.channels for group in channels.groups()}
    best = 0  # the last iteration within max_drop of the start
    for iteration in range(1, settings.steps + 1):
        seconds = {}
        clock = time.perf_counter()
        advance = reporter.begin(f"{policy_name}: marginal traffic of each layer", len(solution.network.layers))
        marginals = marginal_traffic(solution, advance, **settings.solve_settings)
        reporter.end()
        seconds["marginals"] = time.perf_counter() - clock
        clock = time.perf_counter()
        criterion = importance(model, data, settings.seed) if policy.uses_importance else None
        seconds["importance"] = time.perf_counter() - clock
        clock = time.perf_counter()
        step = Step(iteration, solution, marginals, channels, criterion, initial, settings.step, settings.schedule,
                    settings.seed, settings.solver, settings.options)  # fmt: skip
        removed = policy.prune(step)
        model.zero_grad(set_to_none=True)  # the importance left its curvature there
        predicted = predicted_step(solution, marginals, removed)
        seconds["policy"] = time.perf_counter() - clock
        if not removed:
            rows[-1] = replace(rows[-1], stop="nothing left to prune")
            if on_rows:
                on_rows(rows)
            break
        clock = time.perf_counter()
        recipe = Recipe(settings.finetune_epochs, FINETUNE, seed=settings.seed * 1000 + iteration)
        advance = reporter.begin(
            f"{policy_name}: fine-tuning after step {iteration}", recipe.batches(len(data.train_x))
        )
        fit(model, data, recipe, advance)
        reporter.end()
        score = accuracy(model, data)
        seconds["finetune"] = time.perf_counter() - clock
        clock = time.perf_counter()
        network, spec, outputs = network_of(model, start)
        previous = solution
        solution = measure(network)
        seconds["solve"] = time.perf_counter() - clock
        row = Row(
            policy_name, iteration, score, network.parameters, network.macs, solution.dram_bytes,
            solution.dram_bytes / first.dram_bytes, predicted, previous.dram_bytes - solution.dram_bytes,
            solution.result.status.value, removed, _layer_widths(network), seconds,
        )  # fmt: skip
        if solution.dram_bytes <= settings.target_traffic * first.dram_bytes:
            row = replace(row, stop=f"traffic at most {settings.target_traffic:g} of the start")
        elif score < start.accuracy - settings.max_drop:
            row = replace(row, stop=f"accuracy more than {settings.max_drop:g} points below the start")
        elif iteration == settings.schedule:
            row = replace(row, stop="step schedule spent")
        elif iteration == settings.steps:
            row = replace(row, stop=f"{iteration} iteration(s) done")
        rows.append(row)
        save_iteration(folder / f"iter-{iteration:02d}", model, spec, start, row)
        if score >= start.accuracy - settings.max_drop:
            best = iteration
        if on_rows:
            on_rows(rows)
        reporter.row(row)
        if row.stop:
            break
        channels = Channels(model, start.input_shape, outputs)
    for name in ("model.pt", "network.yaml"):
        (folder / name).write_bytes((folder / f"iter-{best:02d}" / name).read_bytes())
    return rows


def rescore(rows: list[Row], folder: Path, accelerator: Accelerator, settings: Settings) -> list[Row]:
    """A finished run of a policy that chooses its channels without the program (``uniform``,
    ``magnitude``, ``random``), scored under other program settings (another accelerator, fusion):
    each iteration's ``network.yaml`` under ``folder`` is solved again, with the predicted and the
    actual saving there. It equals running the policy under those settings, up to the first
    iteration that reaches ``settings.target_traffic``, where that run would have stopped."""
    cache: dict = {}
    scored: list[Row] = []
    previous: Solution | None = None
    for row in rows:
        clock = time.perf_counter()
        network = load_network(folder / f"iter-{row.iteration:02d}" / "network.yaml")
        solution = solve(network, accelerator, cache=cache, **settings.solve_settings)
        predicted = actual = None
        if previous is not None:
            predicted = predicted_step(previous, marginal_traffic(previous, **settings.solve_settings), row.removed)
            actual = previous.dram_bytes - solution.dram_bytes
        ratio = solution.dram_bytes / scored[0].dram_bytes if scored else 1.0
        stop = row.stop
        if row.iteration and ratio <= settings.target_traffic:
            stop = f"traffic at most {settings.target_traffic:g} of the start"
        elif row.stop and row.stop.startswith("traffic"):
            raise ValueError(f"the run stopped at its traffic target at iteration {row.iteration}; score a run "
                             "with a lower target")  # fmt: skip
        seconds = {"solve": time.perf_counter() - clock}
        scored.append(
            replace(row, dram_bytes=solution.dram_bytes, ratio=ratio, predicted_saved=predicted, actual_saved=actual,
                    status=solution.result.status.value, seconds=seconds, stop=stop)
        )  # fmt: skip
        if stop:
            break
        previous = solution
    return scored
