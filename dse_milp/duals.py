"""Shadow prices of the buffer capacities, from an explicit LP step.

A MILP has no duals, so they come from a documented LP. The solved program
splits the network into *units*: layers run alone, and fused groups. For a unit
and a buffer b, the LP step relaxes the unit's one-hot choice to weights
``w_k >= 0`` summing to 1 over the unit's candidates, generated as if b were
unbounded (so that mappings a larger b would admit take part), subject to
every buffer's capacity:

    min  sum_k cost_k w_k   s.t.  sum_k w_k = 1,   sum_k footprint_k[b'] w_k <= capacity[b']  for every b'

The dual of b's row is the unit's **shadow price** of b: objective units (DRAM
bytes by default) saved per extra byte of b for that unit alone. With one
buffer the LP is the lower convex envelope of the unit's (footprint, cost)
candidates and the price is the envelope's slope at the capacity; it is 0 once
the capacity exceeds the footprint where the envelope bottoms out. The cost is
the first objective's.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.burst_candidates import group_in_bursts, layer_in_bursts
from dse_milp.candidates import OPERANDS, Candidates, generate
from dse_milp.errors import DseError
from dse_milp.fusion import GroupCandidates, Segment, generate_group
from dse_milp.layouts import Layouts
from dse_milp.solvers.highs import convex_choice_lp
from dse_milp.stopping import stop_reason
from dse_milp.traffic import OnChip
from dse_milp.workload import Operand
from formulations import MappingProblem

Kept = tuple[frozenset[str], float]
"""Tensors a unit finds or leaves on chip, and the bytes kept tensors hold while it runs."""

UNBOUNDED = 1 << 40
"""Bytes: a buffer size no tile reaches."""


def _lifted(accelerator: Accelerator, buffer: str) -> Accelerator:
    buffers = tuple(replace(b, capacity_bytes=UNBOUNDED) if b.name == buffer else b for b in accelerator.buffers)
    return replace(accelerator, buffers=buffers)


def _usage(accelerator: Accelerator, footprint: np.ndarray) -> np.ndarray:
    """Bytes of each buffer (columns) each candidate (rows of per-operand bits) occupies."""
    return np.column_stack(
        [footprint[:, [OPERANDS.index(op) for op in b.operands]].sum(axis=1) / 8 for b in accelerator.buffers]
    )


def unit_lp(problem: MappingProblem, unit: Segment | str, buffer: str, extra: float = 0.0,
            layouts: Layouts | None = None, kept: Kept = (frozenset(), 0.0)) -> tuple[float, float]:  # fmt: skip
    """The LP step of one unit (a layer name, or a fused group's segment) for ``buffer``,
    whose capacity is raised by ``extra`` bytes: (optimum, shadow price of ``buffer``).
    With DRAM bursts, its candidates are priced in the bursts of ``layouts``, the layouts the
    solution gave the tensors it reads and writes. With tensors kept on chip, ``kept``: those
    the unit finds or leaves on chip (its candidates move none of them) and the bytes of the
    output's buffer the kept tensors live while it runs hold."""
    on_chip, reserved = kept
    acc = problem.accelerator
    lifted = _lifted(acc, buffer)
    objective = problem.objectives[0]
    # The candidates generated for the lifted buffer, and the program's own, which hold the
    # mapping it chose: the lifted set is pruned as if b were unbounded, and may have dropped
    # every mapping that fits the other buffers (an output buffer of a few bytes).
    if isinstance(unit, Segment):
        key = (unit.layers[0].name, unit.last.name)
        cands = generate_group(unit, lifted, (objective,), hull=True, kept=on_chip)
        if layouts is not None:
            cands = group_in_bursts(cands, lifted, (objective,), (layouts,), on_chip)
        view = replace(problem, groups={key: cands}, objectives=(objective,))
        cost, footprint = view.group_cost(objective, key), cands.footprint
        if key in problem.groups:
            same = _held(problem.groups[key], layouts, on_chip)
            cost = np.concatenate([cost, problem.group_cost(objective, key)[same]])
            footprint = np.concatenate([footprint, problem.groups[key].footprint[same]])
    else:
        layer = problem.network.by_name[unit]
        if layouts is None:
            cands = generate(layer, lifted, (objective,), OnChip.of(layer, on_chip))
        else:
            cands = layer_in_bursts(layer, lifted, (objective,), (layouts,), OnChip.of(layer, on_chip))
        view = replace(problem, candidates={unit: cands}, objectives=(objective,))
        cost, footprint = view.cost(objective, unit), cands.footprint
        if unit in problem.candidates:
            same = _held(problem.candidates[unit], layouts, on_chip)
            cost = np.concatenate([cost, problem.cost(objective, unit)[same]])
            footprint = np.concatenate([footprint, problem.candidates[unit].footprint[same]])
    holder = acc.buffer_of(Operand.OUTPUT).name
    raised = {b.name: float(b.capacity_bytes) for b in acc.buffers}
    raised[buffer] += extra
    raised[holder] -= reserved
    capacity = np.array(list(raised.values()))
    value, duals = convex_choice_lp(cost, _usage(acc, footprint), capacity)
    index = [b.name for b in acc.buffers].index(buffer)
    return value, max(0.0, -float(duals[index]))


def _held(cands: Candidates | GroupCandidates, chosen: Layouts | None, kept: frozenset[str]) -> np.ndarray:
    """Which of a unit's candidates keep the ``chosen`` layouts (all, without bursts) and the
    ``kept`` tensors on chip (all, when none keeps any)."""
    same = np.ones(len(cands), dtype=bool)
    if chosen is not None:
        same &= np.array([pair == chosen for pair in cands.layouts], dtype=bool)
    if cands.kept:
        same &= np.array([k == kept for k in cands.kept], dtype=bool)
    return same


def shadow_prices(
    problem: MappingProblem,
    units: list[Segment | str],
    deadline: float | None = None,
    layouts: dict[str, Layouts] | None = None,
    kept: dict[str, Kept] | None = None,
) -> tuple[dict[str, dict[str, float]], str | None]:
    """The shadow price of every buffer for each unit (a layer name or a group's segment),
    by unit name (a layer's, or ``first..last`` for a group), and a note on what is missing.
    With DRAM bursts, ``layouts`` holds the layouts the solution gave each unit's tensors;
    with tensors kept on chip, ``kept`` what each unit keeps (``unit_lp``).

    An optional report step: Ctrl-C or ``deadline`` ends it early, and a unit whose LP fails
    is left without a price; both are said in the note, and neither sinks the solution.
    """
    prices: dict[str, dict[str, float]] = {}
    failed: list[str] = []
    for unit in units:
        if (reason := stop_reason(deadline)) is not None:
            return (
                prices,
                f"prices of {len(units) - len(prices) - len(failed)} of {len(units)} units skipped ({reason})",
            )
        name = unit if isinstance(unit, str) else f"{unit.layers[0].name}..{unit.last.name}"
        try:
            held, on_chip = (layouts or {}).get(name), (kept or {}).get(name, (frozenset(), 0.0))
            prices[name] = {b.name: unit_lp(problem, unit, b.name, 0.0, held, on_chip)[1]
                            for b in problem.accelerator.buffers}  # fmt: skip
        except DseError as exc:
            failed.append(f"{name!r} ({exc})")
    return prices, (f"no price for {', '.join(failed)}" if failed else None)
