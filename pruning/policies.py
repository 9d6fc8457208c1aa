"""How one pruning step chooses its channels: the program's knapsack, and the baselines.

Every policy prunes through Torch-Pruning's dependency graph. ``uniform``,
``cost-rank`` and ``program`` pick the channels inside a group by the same
criterion, the Optimal Brain Damage scores of ``pruning.channels.importance``
(the least important go). The size of a step is set by ``--step`` s and each
group's width at the start of the run, w0:

- ``uniform``: Torch-Pruning's iterative local pruning (``BasePruner``), the same
  ratio in every group: after step i each group keeps about (1 - i s) of w0;
- ``magnitude``: Torch-Pruning's iterative global pruning by weight magnitude (its
  ``GroupMagnitudeImportance`` with its defaults), the same total as ``uniform``
  but ranked across all groups at once;
- ``random``: Torch-Pruning's iterative global pruning with random importance;
- ``cost-rank`` (SuperSlash, Ahmad et al., TCAD 2020): the groups ranked by their
  share of the DRAM traffic alone, the costliest pruned first, each by as much as
  a step allows (below), until a uniform step's count of channels is removed;
- ``program``: the knapsack of ``formulations.knapsack``: the most predicted DRAM
  bytes saved (``pruning.predict``) for at most the importance a uniform step
  would lose now (the k least important channels of every group, k = round(s w0))
  and at most as many channels: a uniform step's size, placed by the program.

In one step neither ``cost-rank`` nor ``program`` takes more than 2 s w0 channels
(rounded up) from a group, nor more than half of what it has left: the
predictions and the importance scores are local estimates, good for small steps.
Over several steps either may still take a group far below the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch_pruning as tp

from dse_milp.errors import DseError
from dse_milp.marginals import coupled_tensors
from dse_milp.solution import Solution
from dse_milp.solvers import SolverOptions, get_backend
from formulations.knapsack import build_knapsack, chosen_counts, hold_saving
from pruning.channels import Channels, Group
from pruning.predict import predicted_savings

POLICIES = ("program", "uniform", "magnitude", "cost-rank", "random")


@dataclass
class Step:
    """What a policy sees at one step (the model is ``channels.model``)."""

    iteration: int
    """1 for the first pruning step."""
    solution: Solution
    """The program solved on the model's current shapes, shadow prices included."""
    marginals: dict[str, float | None]
    """Exact marginal traffic of one channel, by layer (``dse_milp.marginals``)."""
    channels: Channels
    importance: tp.importance.Importance | None
    """The shared criterion, estimated for this step (``pruning.channels.importance``) if the
    policy uses it."""
    initial: dict[str, int]
    """Each group's channels at the start of the run, by group name."""
    step: float
    schedule: int
    """The steps of the whole schedule (``pruning.loop.Settings.schedule``)."""
    seed: int
    solver: str
    options: SolverOptions

    def uniform_count(self, group: Group) -> int:
        """The channels a uniform step removes from ``group`` now."""
        return min(group.channels - 1, math.floor(self.step * self.initial[group.name] + 0.5))

    def most(self, group: Group) -> int:
        """The most channels ``program`` and ``cost-rank`` may take from ``group`` in one step: twice a
        uniform step's share of its starting width, rounded up, and at most half of what is left."""
        return min(group.channels // 2, math.ceil(2 * self.step * self.initial[group.name] - 1e-9))


def least_important(scores: torch.Tensor, count: int) -> list[int]:
    """The ``count`` channels of least importance (ties: lower index first)."""
    return torch.argsort(scores, stable=True)[:count].tolist()


class Policy:
    """Prunes the model of a ``Step`` in place; returns the channels removed, by group name."""

    name: str
    uses_importance = True
    """Whether it needs the shared criterion."""

    def prune(self, step: Step) -> dict[str, int]:
        raise NotImplementedError


class TorchPruning(Policy):
    """A baseline run by Torch-Pruning's own iterative pruner (``uniform``, ``magnitude``, ``random``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.uses_importance = name == "uniform"
        self.pruner: tp.pruner.BasePruner | None = None

    def _make(self, step: Step) -> tp.pruner.BasePruner:
        model = step.channels.model
        model.eval()  # tracing runs the model: keep BatchNorm statistics as they are
        return tp.pruner.BasePruner(
            model,
            torch.zeros(1, *step.channels.input_shape),
            importance=self._criterion(step),
            global_pruning=self.name != "uniform",
            pruning_ratio=step.schedule * step.step,
            iterative_steps=step.schedule,
            ignored_layers=step.channels.ignored,
        )

    def _criterion(self, step: Step) -> tp.importance.Importance:
        if self.name == "magnitude":
            return tp.importance.GroupMagnitudeImportance(p=2)  # Torch-Pruning's defaults
        if self.name == "random":
            return tp.importance.RandomImportance()
        assert step.importance is not None
        return step.importance

    def prune(self, step: Step) -> dict[str, int]:
        if self.pruner is None:
            self.pruner = self._make(step)
        self.pruner.importance = self._criterion(step)  # the shared one is estimated anew every step
        torch.manual_seed(step.seed * 1000 + step.iteration)  # random importance
        removed: dict[str, int] = {}
        for group in self.pruner.step(interactive=True) or ():
            count = len(group[0].idxs)
            if count:
                name = step.channels.name_of(group)
                removed[name] = removed.get(name, 0) + count
                group.prune()
        return removed


def _prune_least_important(step: Step, counts: dict[str, int]) -> dict[str, int]:
    """Remove the ``counts[g]`` least important channels of each group g, all chosen before any
    goes (the scores belong to the unpruned model)."""
    assert step.importance is not None
    chosen = [
        (group, least_important(step.channels.scores(group, step.importance), counts[group.name]))
        for group in step.channels.groups()
        if counts.get(group.name)
    ]
    for group, channels in chosen:
        step.channels.prune(group, channels)
    return {group.name: len(channels) for group, channels in chosen}


class CostRank(Policy):
    """SuperSlash's way: the costliest groups by DRAM share first (see the module docstring)."""

    name = "cost-rank"

    def prune(self, step: Step) -> dict[str, int]:
        groups = step.channels.groups()
        share = {r.layer.name: r.dram_bytes for r in step.solution.layers}
        network = step.solution.network
        cost = {g.name: sum(share[t] for t in coupled_tensors(network, g.name) or ()) for g in groups}
        left = sum(step.uniform_count(g) for g in groups)
        counts = {}
        for group in sorted(groups, key=lambda g: -cost[g.name]):  # stable: network order among ties
            counts[group.name] = min(left, step.most(group))
            left -= counts[group.name]
        return _prune_least_important(step, counts)


class Program(Policy):
    """The program's knapsack (``formulations.knapsack``) over predicted savings and importance."""

    name = "program"

    def counts(self, step: Step) -> dict[str, int]:
        assert step.importance is not None
        saved, lost, budget, channels = {}, {}, 0.0, 0
        for group in step.channels.groups():
            scores = step.channels.scores(group, step.importance).numpy()
            cumulative = np.concatenate([[0.0], np.cumsum(np.sort(scores))])
            budget += cumulative[step.uniform_count(group)]
            channels += step.uniform_count(group)
            most, marginal = step.most(group), step.marginals.get(group.name)
            if most and marginal is not None:  # a group without a marginal is left alone
                saved[group.name] = predicted_savings(step.solution, group.name, marginal, most)[1:]
                lost[group.name] = cumulative[1 : most + 1]
        if not saved or budget <= 0:
            return {}
        model = build_knapsack(saved, lost, budget, channels)
        backend = get_backend(step.solver)
        result = backend.solve(model, step.options)
        if not result.has_solution:
            raise DseError(f"the pruning knapsack was not solved ({result.status})")
        counts = chosen_counts(model)
        hold_saving(model, float(model.saving()))
        if backend.solve(model, step.options).has_solution:
            counts = chosen_counts(model)
        return counts

    def prune(self, step: Step) -> dict[str, int]:
        return _prune_least_important(step, self.counts(step))


def make_policy(name: str) -> Policy:
    if name == "program":
        return Program()
    if name == "cost-rank":
        return CostRank()
    if name in POLICIES:
        return TorchPruning(name)
    raise DseError(f"--policy: unknown policy {name!r} (choose from {', '.join(POLICIES)}, all)")
