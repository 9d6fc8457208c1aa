"""The DRAM bytes a pruning step is predicted to save, from the solved program.

For a coupled channel set g (``dse_milp.marginals``) that loses k output
channels, the prediction is

    saved(g, k) = m(g) + [fixed(g, k) - fixed(g, 1)] + sum_{u, b} price[u, b] * [freed(g, k)[u, b] - freed(g, 1)[u, b]]

with, from the solved program and its shadow prices:

- ``m(g)``: the **marginal** traffic of one channel of g: the optimal traffic now
  minus the optimal traffic with one channel gone, the whole program re-solved.
  It is exact, and it is a step function of the width: one channel may free
  just enough for a better tiling (a large step), or too little to change any
  (only the bytes of the channel itself);
- ``fixed(g, k)``: the bytes saved when the k channels go and **every mapping is
  kept** (tiles clipped to the smaller extents, fused groups and the buffer split
  unchanged). It is exact, evaluated by the independent checker, and a lower
  bound of the true saving: the kept mappings still fit, since footprints only
  shrink;
- ``freed(g, k)[u, b]``: the bytes of buffer b that unit u (a layer run alone or a
  fused group) no longer occupies under the kept mappings, and ``price[u, b]``
  the unit's **shadow price** of b (``dse_milp.duals``): DRAM bytes saved per extra
  byte of b. Where the marginal is a step function, the price says what the
  smaller footprint of the further channels is worth once the program re-tiles.

So one channel is predicted exactly, and each further one adds its own bytes
exactly plus its freed footprint at the shadow price: a first-order estimate
that ignores new steps beyond the first and the interaction of groups that
lose channels at the same time (the loop reports the prediction next to the
saving the re-solved program finds). The price term is used only when the
program minimises DRAM bytes; under another objective the prices are in that
objective's units and the prediction is m + the fixed-mapping bytes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dse_milp.accelerator import sized
from dse_milp.check import check_mappings
from dse_milp.cost import Objective
from dse_milp.errors import DseError
from dse_milp.marginals import without_channels
from dse_milp.solution import GroupResult, Solution
from dse_milp.traffic import Mapping, Tiling
from dse_milp.workload import Network

Unit = str | tuple[str, str]
"""A layer run alone (its name) or a fused group (its first and last layer)."""


def _unit(group: GroupResult) -> tuple[str, str]:
    """The unit of a fused group: its first and last layer."""
    return group.segment.layers[0].name, group.segment.last.name


def _kept(solution: Solution, network: Network) -> tuple[dict[str, Mapping], dict[tuple[str, str], object]]:
    """The solution's mappings applied to ``network`` (the same layers, fewer channels)."""
    mappings = {}
    for result in solution.layers:
        if result.mapping is not None:
            layer, t = network.by_name[result.layer.name], result.mapping.tiling
            tiling = Tiling(min(t.m, layer.mg), min(t.n, layer.ng), t.r, t.c)
            groups = min(result.mapping.groups, layer.groups)  # tiles of whole groups stay whole
            mappings[layer.name] = replace(result.mapping, tiling=tiling, groups=groups)
    return mappings, {_unit(g): g.mapping for g in solution.groups}


def _by_unit(solution: Solution, field: str) -> dict[Unit, dict[str, float]]:
    """``field`` (by buffer) of every unit of ``solution``: its layers run alone, then its fused groups."""
    units: dict[Unit, dict[str, float]] = {
        r.layer.name: getattr(r, field) or {} for r in solution.layers if r.mapping is not None
    }
    return units | {_unit(g): getattr(g, field) or {} for g in solution.groups}


def kept_mapping_saving(solution: Solution, group: str, count: int) -> tuple[float, dict[Unit, dict[str, float]]]:
    """``fixed(g, count)`` and ``freed(g, count)`` of the module docstring: the DRAM bytes saved
    and the buffer bytes each unit frees when ``count`` channels of ``group`` go and every
    mapping is kept."""
    network = without_channels(solution.network, group, count)
    if network is None:
        raise DseError(f"internal error: {count} channels of {group!r} cannot be removed")
    mappings, groups = _kept(solution, network)
    check = check_mappings(network, sized(solution.accelerator, solution.buffer_sizes), mappings, groups)  # type: ignore[arg-type]
    if check.violations:
        raise DseError("internal error: a kept mapping no longer fits: " + "; ".join(check.violations))
    now: dict[Unit, dict[str, float]] = {name: c.buffer_bytes for name, c in check.layers.items()}
    now |= {key: c.buffer_bytes for key, c in check.groups.items()}
    before = _by_unit(solution, "buffer_bytes")
    freed = {unit: {b: held[b] - now[unit][b] for b in held} for unit, held in before.items()}
    return solution.dram_bytes - check.dram_bits / 8, freed


def predicted_savings(solution: Solution, group: str, marginal: float, most: int) -> np.ndarray:
    """``saved(g, k)`` of the module docstring for k = 0 .. ``most`` (index k), given the exact
    ``marginal`` of one channel of ``group`` (a layer of the coupled set)."""
    priced = solution.objectives[0] is Objective.DRAM
    prices = _by_unit(solution, "shadow_price")

    def first_order(count: int) -> float:
        fixed, freed = kept_mapping_saving(solution, group, count)
        if not priced:
            return fixed
        return fixed + sum(prices[u].get(b, 0.0) * bytes_ for u, by in freed.items() for b, bytes_ in by.items())

    saved = np.zeros(most + 1)
    if most >= 1:
        base = first_order(1)
        saved[1] = marginal
        saved[2:] = [marginal + (first_order(k) - base) for k in range(2, most + 1)]
    return saved


def predicted_step(solution: Solution, marginals: dict[str, float | None], removed: dict[str, int]) -> float | None:
    """The predicted saving of a whole step, ``removed[g]`` channels from each group g: the sum
    of the groups' own predictions (None if a group has no marginal)."""
    total = 0.0
    for group, count in removed.items():
        marginal = marginals.get(group)
        if marginal is None:
            return None
        total += predicted_savings(solution, group, marginal, count)[count]
    return total
