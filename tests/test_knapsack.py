"""The pruning knapsack against brute force on tiny instances, with every installed backend."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dse_milp.solvers import BACKENDS, SolverOptions
from formulations.knapsack import build_knapsack, chosen_counts, hold_saving

INSTALLED = [name for name, backend in BACKENDS.items() if backend.available()]


def brute_force(
    saved: dict[str, list[float]], lost: dict[str, list[float]], budget: float, channels: int
) -> tuple[float, float]:
    """(most saving, least loss among the most saving) over every choice of options."""
    best = (0.0, 0.0)
    groups = list(saved)
    for counts in itertools.product(*(range(len(saved[g]) + 1) for g in groups)):
        loss = sum(lost[g][k - 1] for g, k in zip(groups, counts, strict=True) if k)
        if loss > budget + 1e-9 or sum(counts) > channels:
            continue
        saving = sum(saved[g][k - 1] for g, k in zip(groups, counts, strict=True) if k)
        if saving > best[0] + 1e-9 or (abs(saving - best[0]) <= 1e-9 and loss < best[1] - 1e-9):
            best = (saving, loss)
    return best


def instance(seed: int) -> tuple[dict[str, list[float]], dict[str, list[float]], float, int]:
    """Savings that grow with the channels removed (with steps and ties), importance sorted and
    accumulated as the policy builds it."""
    rng = np.random.default_rng(seed)
    saved, lost = {}, {}
    for g in range(rng.integers(1, 5)):
        k = int(rng.integers(1, 5))
        saved[f"g{g}"] = np.cumsum(rng.choice([0, 50, 100, 250], size=k)).tolist()
        lost[f"g{g}"] = np.cumsum(np.sort(rng.choice([0.5, 1.0, 1.5], size=k))).tolist()
    total = sum(v[-1] for v in lost.values())
    return saved, lost, float(rng.uniform(0, total)), int(rng.integers(0, sum(len(v) for v in saved.values()) + 1))


@pytest.mark.parametrize("solver", INSTALLED)
@pytest.mark.parametrize("seed", range(25))
def test_knapsack_equals_brute_force(solver, seed):
    saved, lost, budget, channels = instance(seed)
    model = build_knapsack(saved, lost, budget, channels)
    backend = BACKENDS[solver]
    assert backend.solve(model, SolverOptions()).has_solution
    best, least = brute_force(saved, lost, budget, channels)
    counts = chosen_counts(model)
    assert sum(saved[g][k - 1] for g, k in counts.items() if k) == pytest.approx(best)
    hold_saving(model, float(model.saving()))
    assert backend.solve(model, SolverOptions()).has_solution
    counts = chosen_counts(model)
    assert sum(saved[g][k - 1] for g, k in counts.items() if k) == pytest.approx(best)
    assert sum(lost[g][k - 1] for g, k in counts.items() if k) == pytest.approx(least)
    assert sum(lost[g][k - 1] for g, k in counts.items() if k) <= budget + 1e-9
    assert sum(counts.values()) <= channels


def test_each_budget_binds():
    saved, lost = {"a": [10.0, 20.0], "b": [5.0, 30.0]}, {"a": [1.0, 2.0], "b": [1.0, 2.0]}
    for budget, channels, expected in ((0.5, 4, {"a": 0, "b": 0}), (4.0, 1, {"a": 1, "b": 0}),
                                       (2.0, 4, {"a": 0, "b": 2}), (4.0, 4, {"a": 2, "b": 2})):  # fmt: skip
        model = build_knapsack(saved, lost, budget, channels)
        assert BACKENDS["highs"].solve(model, SolverOptions()).has_solution
        assert chosen_counts(model) == expected
